/* A kfunc no kernel has, used by one program of two: libbpf fails the whole
 * object at extern resolution, and the checker must still name the program. */
#include "common.h"

extern int bpfcompat_no_such_kfunc(int x) __ksym;

SEC("tracepoint/sched/sched_switch")
int innocent(void *ctx)
{
	return 0;
}

SEC("tp_btf/sched_switch")
int uses_missing_kfunc(void *ctx)
{
	return bpfcompat_no_such_kfunc(1);
}

char LICENSE[] SEC("license") = "GPL";
