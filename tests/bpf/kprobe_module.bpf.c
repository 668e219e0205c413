/* kprobe/kretprobe on a function of a module (nf_conntrack, =m on the
 * Debian kernels): it exists once the module is loaded, and bpfcompat
 * loads it (and nf_defrag_ipv4/ipv6, libcrc32c) when the kernel's module
 * tree is at hand. */
#include "common.h"

SEC("kprobe/nf_conntrack_in")
int BPF_KPROBE(on_conntrack_in)
{
	return 0;
}

SEC("kretprobe/nf_conntrack_in")
int BPF_KRETPROBE(on_conntrack_in_exit, long ret)
{
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
