/* fentry on a function the kernel's BTF does not have: with kernel BTF this
 * is a missing attach target, without kernel BTF it is missing BTF. */
#include "common.h"

SEC("fentry/bpfcompat_no_such_function")
int BPF_PROG(on_missing_fentry)
{
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
