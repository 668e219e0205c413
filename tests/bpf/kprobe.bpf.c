/* kprobe/kretprobe on a function every kernel has. */
#include "common.h"

SEC("kprobe/vfs_read")
int BPF_KPROBE(on_vfs_read_entry)
{
	return 0;
}

SEC("kretprobe/vfs_read")
int BPF_KRETPROBE(on_vfs_read_exit, long ret)
{
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
