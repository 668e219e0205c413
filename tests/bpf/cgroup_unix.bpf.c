/* cgroup/connect_unix (6.7+): the program type exists everywhere, the
 * expected attach type BPF_CGROUP_UNIX_CONNECT does not; older kernels
 * refuse the load itself. */
#include "common.h"

SEC("cgroup/connect_unix")
int cg_connect_unix(struct bpf_sock_addr *ctx)
{
	return 1;
}

char LICENSE[] SEC("license") = "GPL";
