/* tcx (6.6+): a BPF link on the tcx ingress hook. Loads on older kernels
 * (it is a SCHED_CLS program); the attach is what needs 6.6. */
#include "common.h"

SEC("tcx/ingress")
int tcx_pass(struct __sk_buff *skb)
{
	return 0; /* TCX_NEXT */
}

char LICENSE[] SEC("license") = "GPL";
