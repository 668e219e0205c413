/* Too complex for the verifier: every iteration forks on a random bit, so
 * states cannot be pruned and the pending-branch or instruction limit is hit
 * (E2BIG). */
#include "common.h"

SEC("tracepoint/sched/sched_switch")
int too_complex(void *ctx)
{
	__u64 x = 0;

	for (int i = 0; i < 20000; i++) {
		if (bpf_get_prandom_u32() & 1)
			x += i;
		else
			x ^= i;
	}
	return x & 1;
}

char LICENSE[] SEC("license") = "GPL";
