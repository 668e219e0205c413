/* fentry/fexit (5.5+): BPF trampolines, need kernel BTF and the JIT. */
#include "common.h"

SEC("fentry/vfs_read")
int BPF_PROG(on_vfs_read_fentry, struct file *file)
{
	return 0;
}

SEC("fexit/vfs_read")
int BPF_PROG(on_vfs_read_fexit, struct file *file, char *buf, unsigned long count,
	     long long *pos, long ret)
{
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
