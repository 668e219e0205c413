/* Common map types (all old): hash, array, per-CPU array, LRU hash,
 * perf event array, prog array. */
#include "common.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 128);
	__type(key, __u32);
	__type(value, __u64);
} h SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} pa SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 128);
	__type(key, __u32);
	__type(value, __u64);
} lru SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} perf_events SEC(".maps");

SEC("tracepoint/sched/sched_switch")
int maps_on_switch(void *ctx)
{
	__u32 k = 0;
	__u64 one = 1, *v;

	bpf_map_update_elem(&h, &k, &one, BPF_ANY);
	bpf_map_update_elem(&lru, &k, &one, BPF_ANY);
	v = bpf_map_lookup_elem(&pa, &k);
	if (v)
		*v += 1;
	bpf_perf_event_output(ctx, &perf_events, BPF_F_CURRENT_CPU, &k, sizeof(k));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
