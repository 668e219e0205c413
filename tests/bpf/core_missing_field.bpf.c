/* CO-RE relocation against a field no kernel's task_struct has. */
#include "common.h"

struct task_struct___bpfcompat {
	int bpfcompat_no_such_field;
} __attribute__((preserve_access_index));

SEC("kprobe/vfs_read")
int core_read_missing(void *ctx)
{
	struct task_struct___bpfcompat *t = (void *)bpf_get_current_task();

	return BPF_CORE_READ(t, bpfcompat_no_such_field) & 1;
}

char LICENSE[] SEC("license") = "GPL";
