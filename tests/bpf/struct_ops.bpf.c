/* struct_ops (5.6+): a do-nothing TCP congestion control, registered by
 * attaching the struct_ops map. */
#include "common.h"

/* struct_ops_link.bpf.c includes this file with its own section and map. */
#ifndef BPFCOMPAT_STRUCT_OPS_SEC
#define BPFCOMPAT_STRUCT_OPS_SEC ".struct_ops"
#define BPFCOMPAT_CC bpfcompat_cc
#endif
#define BPFCOMPAT_STR(x) #x
#define BPFCOMPAT_NAME(x) BPFCOMPAT_STR(x)

struct tcp_congestion_ops {
	__u32 (*ssthresh)(struct sock *sk);
	void (*cong_avoid)(struct sock *sk, __u32 ack, __u32 acked);
	__u32 (*undo_cwnd)(struct sock *sk);
	char name[16];
} __attribute__((preserve_access_index));

SEC("struct_ops/bpfcompat_ssthresh")
__u32 BPF_PROG(bpfcompat_ssthresh, struct sock *sk)
{
	return 2;
}

SEC("struct_ops/bpfcompat_cong_avoid")
void BPF_PROG(bpfcompat_cong_avoid, struct sock *sk, __u32 ack, __u32 acked)
{
}

SEC("struct_ops/bpfcompat_undo_cwnd")
__u32 BPF_PROG(bpfcompat_undo_cwnd, struct sock *sk)
{
	return 2;
}

SEC(BPFCOMPAT_STRUCT_OPS_SEC)
struct tcp_congestion_ops BPFCOMPAT_CC = {
	.ssthresh = (void *)bpfcompat_ssthresh,
	.cong_avoid = (void *)bpfcompat_cong_avoid,
	.undo_cwnd = (void *)bpfcompat_undo_cwnd,
	.name = BPFCOMPAT_NAME(BPFCOMPAT_CC),
};

char LICENSE[] SEC("license") = "GPL";
