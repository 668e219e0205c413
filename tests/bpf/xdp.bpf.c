/* XDP (4.8+): attached to lo (ifindex 1) in the guest. */
#include "common.h"

SEC("xdp")
int xdp_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
