/* tp_btf (5.5+): BTF-typed raw tracepoint; needs kernel BTF. */
#include "common.h"

SEC("tp_btf/sched_switch")
int BPF_PROG(on_btf_sched_switch, _Bool preempt, struct task_struct *prev,
	     struct task_struct *next)
{
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
