/* Dereferences an array lookup with a constant in-range key without a NULL
 * check. Older verifiers refuse it (EACCES); newer ones prove the result
 * non-NULL (7.2 loads it). */
#include "common.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} arr SEC(".maps");

SEC("tracepoint/sched/sched_switch")
int array_const_key_deref(void *ctx)
{
	__u32 key = 0;
	__u64 *v = bpf_map_lookup_elem(&arr, &key);

	return *v & 1;
}

char LICENSE[] SEC("license") = "GPL";
