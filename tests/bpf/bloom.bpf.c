/* Bloom filter map (5.16+). */
#include "common.h"

struct {
	__uint(type, BPF_MAP_TYPE_BLOOM_FILTER);
	__uint(max_entries, 64);
	__type(value, __u32);
	__uint(map_extra, 3);
} seen SEC(".maps");

SEC("tracepoint/sched/sched_switch")
int bloom_on_switch(void *ctx)
{
	__u32 v = 7;

	bpf_map_push_elem(&seen, &v, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
