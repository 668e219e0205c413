/* A helper the program type may not call (XDP has no current task). */
#include "common.h"

SEC("xdp")
int xdp_wants_pid(struct xdp_md *ctx)
{
	return bpf_get_current_pid_tgid() & 1 ? XDP_PASS : XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
