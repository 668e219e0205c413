/* A uprobe on the loader's own binary, as libbpf-bootstrap's examples do:
 * in the guest /proc/self/exe is bpfcompat's agent, so the attach is
 * skipped with the reason (the check is partial), never a failure. */
#include "common.h"

SEC("uprobe//proc/self/exe:uprobed_function")
int BPF_KPROBE(on_own_function)
{
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
