/* bpf_loop helper (5.17+): older kernels do not know helper #181. */
#include "common.h"

static long step(__u32 i, void *ctx)
{
	return 0;
}

SEC("tracepoint/sched/sched_switch")
int loop_on_switch(void *ctx)
{
	bpf_loop(16, step, NULL, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
