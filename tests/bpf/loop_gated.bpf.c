/* A helper-gated pair: `sum_with_loop` walks a table with bpf_loop (5.17+),
 * `sum_unrolled` does the same with a bounded loop the compiler unrolls.
 * A loader probes for bpf_loop and loads one of them; a manifest says so
 * with requires_helper. Loaded together, kernels without bpf_loop refuse
 * the whole object. */
#include "common.h"

#define SLOTS 8

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} table SEC(".maps");

__u64 total;

static long add_slot(__u32 i, void *ctx)
{
	__u64 *sum = ctx;
	__u64 *v = bpf_map_lookup_elem(&table, &i);

	if (v)
		*sum += *v;
	return 0;
}

SEC("tracepoint/sched/sched_switch")
int sum_with_loop(void *ctx)
{
	__u64 sum = 0;

	bpf_loop(SLOTS, add_slot, &sum, 0);
	total = sum;
	return 0;
}

SEC("tracepoint/sched/sched_switch")
int sum_unrolled(void *ctx)
{
	__u64 sum = 0;

#pragma unroll
	for (__u32 i = 0; i < SLOTS; i++) {
		__u32 key = i;
		__u64 *v = bpf_map_lookup_elem(&table, &key);

		if (v)
			sum += *v;
	}
	total = sum;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
