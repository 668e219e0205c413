/* fmod_ret on a syscall: allowed only where the kernel has
 * CONFIG_FUNCTION_ERROR_INJECTION (Debian's cloud kernels do not). */
#include "common.h"

SEC("fmod_ret/__x64_sys_getpgid")
int BPF_PROG(on_getpgid_modret, void *regs, int ret)
{
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
