/* ksyscall (libbpf 1.0+): libbpf resolves the arch-specific syscall symbol. */
#include "common.h"

SEC("ksyscall/getpid")
int on_getpid(void *ctx)
{
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
