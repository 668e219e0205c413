/* fentry on the same notrace function as notrace_kprobe: the trampoline
 * cannot patch it (-EBUSY), which is a missing target, not "something is
 * already attached". */
#include "common.h"

SEC("fentry/native_sched_clock")
int BPF_PROG(on_native_sched_clock_fentry)
{
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
