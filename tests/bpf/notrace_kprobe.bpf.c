/* A kprobe on a function that exists (it is in kallsyms on every test
 * kernel) but is not traceable: native_sched_clock is notrace, absent from
 * available_filter_functions. Its attach must be ATTACH_TARGET_MISSING with
 * the reason, not an unsupported attach type. */
#include "common.h"

SEC("kprobe/native_sched_clock")
int BPF_KPROBE(on_native_sched_clock)
{
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
