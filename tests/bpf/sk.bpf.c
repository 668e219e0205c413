/* Socket-level programs: targets made inside the guest (a sockmap, a socket,
 * the network namespace). */
#include "common.h"

struct {
	__uint(type, BPF_MAP_TYPE_SOCKMAP);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u32);
} sock_map SEC(".maps");

SEC("sk_skb/stream_verdict")
int sk_verdict(struct __sk_buff *skb)
{
	return SK_PASS;
}

SEC("sk_msg")
int sk_msg_pass(struct sk_msg_md *msg)
{
	return SK_PASS;
}

SEC("socket")
int socket_filter(struct __sk_buff *skb)
{
	return skb->len;
}

SEC("sk_reuseport")
int reuseport_pass(struct sk_reuseport_md *md)
{
	return SK_PASS;
}

SEC("sk_lookup")
int sk_lookup_pass(struct bpf_sk_lookup *ctx)
{
	return SK_PASS;
}

SEC("flow_dissector")
int dissect(struct __sk_buff *skb)
{
	return BPF_OK;
}

char LICENSE[] SEC("license") = "GPL";
