/* kprobe.multi (5.18+, needs CONFIG_FPROBE): loads on older kernels, the
 * attach (BPF_TRACE_KPROBE_MULTI link) is what fails. */
#include "common.h"

SEC("kprobe.multi/vfs_read")
int on_vfs_read_multi(void *ctx)
{
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
