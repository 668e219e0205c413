/* bpf_get_current_pid_tgid in XDP: refused by older kernels ("unknown
 * func"), allowed by newer ones (6.12 and 7.2 load it). */
#include "common.h"

SEC("xdp")
int xdp_wants_pid(struct xdp_md *ctx)
{
	return bpf_get_current_pid_tgid() & 1 ? XDP_PASS : XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
