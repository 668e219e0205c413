/* BPF LSM (5.7+): needs CONFIG_BPF_LSM; it only runs if "bpf" is in the
 * active LSM list, but attaching succeeds either way. */
#include "common.h"

SEC("lsm/file_open")
int BPF_PROG(on_file_open, struct file *file, int ret)
{
	return ret;
}

char LICENSE[] SEC("license") = "GPL";
