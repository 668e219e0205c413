/* fmod_ret (5.7+): only on functions marked for error injection. */
#include "common.h"

SEC("fmod_ret/__x64_sys_getpgid")
int BPF_PROG(on_getpgid_modret, void *regs, int ret)
{
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
