/* A task iterator whose loader trial-loads it (probe: trial_load) and
 * falls back to a plainer one when that fails. The preferred iterator
 * skips the reading task (bpf_get_current_task_btf, 5.11+) and hands every
 * other task to a companion program through a prog array that libbpf fills
 * at load (`values` initialised with the companion): a trial load of the
 * preferred program alone must keep the companion loaded, or filling the
 * slot fails. Tail calls between tracing programs need the same attach
 * point (6.11+ checks it), so the companion is an iter/task program too. */
#include "common.h"

struct bpf_iter_meta {
	struct seq_file *seq;
	__u64 session_id;
	__u64 seq_num;
} __attribute__((preserve_access_index));

struct bpf_iter__task {
	struct bpf_iter_meta *meta;
	struct task_struct *task;
} __attribute__((preserve_access_index));

SEC("iter/task")
int print_task(struct bpf_iter__task *ctx)
{
	struct task_struct *task = ctx->task;

	if (task)
		BPF_SEQ_PRINTF(ctx->meta->seq, "%d\n", task->pid);
	return 0;
}

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__array(values, int (void *));
} task_printers SEC(".maps") = {
	.values = { [0] = (void *)&print_task },
};

SEC("iter/task")
int walk_others(struct bpf_iter__task *ctx)
{
	struct task_struct *task = ctx->task;

	if (!task || task == bpf_get_current_task_btf())
		return 0;
	bpf_tail_call(ctx, &task_printers, 0);
	return 0;
}

SEC("iter/task")
int walk_all(struct bpf_iter__task *ctx)
{
	struct task_struct *task = ctx->task;

	if (task)
		BPF_SEQ_PRINTF(ctx->meta->seq, "%d\n", task->pid);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
