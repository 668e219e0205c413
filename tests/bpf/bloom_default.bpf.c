/* A bloom filter (5.16+) without map_extra: the kernel then hashes each
 * value 5 times (bloom_map_alloc takes 0 as 5), so the object leaves
 * nothing to its loader and nothing is fixed up. */
#include "common.h"

struct {
	__uint(type, BPF_MAP_TYPE_BLOOM_FILTER);
	__uint(max_entries, 128);
	__type(value, __u64);
} recent_cookies SEC(".maps");

SEC("tracepoint/sched/sched_switch")
int peek_cookie(void *ctx)
{
	__u64 cookie = 42;

	return bpf_map_peek_elem(&recent_cookies, &cookie) == 0;
}

char LICENSE[] SEC("license") = "GPL";
