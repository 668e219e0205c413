/* A task's run state read as 5.14 and later name it (task_struct.__state),
 * with no bpf_core_field_exists check: the CO-RE relocation cannot resolve
 * on 5.10, whose task_struct calls it `state`. */
#include "common.h"

struct task_struct___new {
	unsigned int __state;
} __attribute__((preserve_access_index));

SEC("kprobe/vfs_read")
int read_state_unguarded(void *ctx)
{
	struct task_struct___new *t = (void *)bpf_get_current_task();

	return BPF_CORE_READ(t, __state) & 1;
}

char LICENSE[] SEC("license") = "GPL";
