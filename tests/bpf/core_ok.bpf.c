/* CO-RE read of a field every kernel has: needs kernel BTF, nothing else. */
#include "common.h"

SEC("kprobe/vfs_read")
int core_read_pid(void *ctx)
{
	struct task_struct *t = (struct task_struct *)bpf_get_current_task();

	return BPF_CORE_READ(t, pid) & 1;
}

char LICENSE[] SEC("license") = "GPL";
