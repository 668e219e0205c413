/* Maps sized by user space at run time: a stack-trace map and a hash
 * compiled with max_entries 0, as loaders do that pick the size from a
 * config or the machine (a manifest's `maps:` says how much; without one,
 * every kernel refuses them at map create, EINVAL). */
#include "common.h"

#define STACK_DEPTH 32

struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(max_entries, 0);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, STACK_DEPTH * sizeof(__u64));
} stacks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 0);
	__type(key, __u32);	/* stack id */
	__type(value, __u64);	/* times seen */
} stack_counts SEC(".maps");

SEC("tracepoint/sched/sched_switch")
int count_switch_stacks(void *ctx)
{
	long id = bpf_get_stackid(ctx, &stacks, 0);
	__u32 key;
	__u64 one = 1, *seen;

	if (id < 0)
		return 0;
	key = id;
	seen = bpf_map_lookup_elem(&stack_counts, &key);
	if (seen)
		__sync_fetch_and_add(seen, 1);
	else
		bpf_map_update_elem(&stack_counts, &key, &one, BPF_NOEXIST);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
