/* Dereferences a hash map lookup without a NULL check: the verifier
 * refuses it (EACCES) on every kernel. */
#include "common.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

SEC("tracepoint/sched/sched_switch")
int null_deref(void *ctx)
{
	__u32 key = 0;
	__u64 *v = bpf_map_lookup_elem(&counters, &key);

	return *v & 1;
}

char LICENSE[] SEC("license") = "GPL";
