/* A GPL-only helper (bpf_trace_printk) in a program with a proprietary
 * license. */
#include "common.h"

SEC("kprobe/vfs_read")
int printk_not_gpl(void *ctx)
{
	bpf_printk("hi");
	return 0;
}

char LICENSE[] SEC("license") = "Proprietary";
