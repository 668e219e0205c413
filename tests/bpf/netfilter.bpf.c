/* BPF_PROG_TYPE_NETFILTER (6.4+): an unknown program type on older kernels. */
#include "common.h"

SEC("netfilter")
int nf_accept(void *ctx)
{
	return 1; /* NF_ACCEPT */
}

char LICENSE[] SEC("license") = "GPL";
