/* A helper the program type may never call: an XDP helper in a tracepoint
 * program. */
#include "common.h"

SEC("tracepoint/sched/sched_switch")
int tp_adjusts_xdp(void *ctx)
{
	return bpf_xdp_adjust_head(ctx, 0);
}

char LICENSE[] SEC("license") = "GPL";
