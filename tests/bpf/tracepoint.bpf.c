/* Baseline: a classic tracepoint program; loads and attaches everywhere. */
#include "common.h"

int hits;

SEC("tracepoint/sched/sched_switch")
int on_sched_switch(void *ctx)
{
	__sync_fetch_and_add(&hits, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
