/* A kprobe on x86's syscall wrapper by name, as hand-written loaders do:
 * arm64 kernels call theirs __arm64_sys_getpid. */
#include "common.h"

SEC("kprobe/__x64_sys_getpid")
int on_x64_getpid(void *ctx)
{
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
