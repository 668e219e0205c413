/* User ring buffer (6.1+): map type and helper bpf_user_ringbuf_drain. */
#include "common.h"

struct {
	__uint(type, BPF_MAP_TYPE_USER_RINGBUF);
	__uint(max_entries, 4096);
} user_rb SEC(".maps");

static long on_sample(struct bpf_dynptr *dynptr, void *ctx)
{
	return 0;
}

SEC("tracepoint/sched/sched_switch")
int drain_user_rb(void *ctx)
{
	bpf_user_ringbuf_drain(&user_rb, on_sample, NULL, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
