/* A socket filter in a section libbpf cannot type ("socket_acl" is not
 * "socket"): its loader names the type itself (bpf_program__set_type), so
 * a manifest's `program_types:` says socket_filter. */
#include "common.h"
#include <bpf/bpf_endian.h>

SEC("socket_acl")
int acl_filter(struct __sk_buff *skb)
{
	/* Keep IPv4 and IPv6, drop the rest. */
	if (skb->protocol == __bpf_constant_htons(0x0800) ||
	    skb->protocol == __bpf_constant_htons(0x86DD))
		return skb->len;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
