/* A task's run state, read the way tools that support every kernel read
 * it: 5.14 renamed task_struct.state to __state, so the object asks with
 * bpf_core_field_exists which one this kernel has and reads that one. Both
 * relocations are guarded: it loads on every kernel with BTF. */
#include "common.h"

struct task_struct___new {
	unsigned int __state;
} __attribute__((preserve_access_index));

struct task_struct___old {
	long state;
} __attribute__((preserve_access_index));

SEC("kprobe/vfs_read")
int read_state_guarded(void *ctx)
{
	void *t = (void *)bpf_get_current_task();

	if (bpf_core_field_exists(((struct task_struct___new *)t)->__state))
		return BPF_CORE_READ((struct task_struct___new *)t, __state) & 1;
	return BPF_CORE_READ((struct task_struct___old *)t, state) & 1;
}

char LICENSE[] SEC("license") = "GPL";
