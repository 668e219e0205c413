/* fmod_ret (5.7+) on an LSM hook: security_* functions are always modifiable. */
#include "common.h"

SEC("fmod_ret/security_file_open")
int BPF_PROG(on_file_open_modret, struct file *file, int ret)
{
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
