/* Global variables a loader sets before load, one per data section:
 * .rodata (const volatile, the usual knobs), .data and .bss. A manifest's
 * `globals:` patches them; as compiled, they keep the program a no-op. */
#include "common.h"

const volatile __u32 target_pid = 0;
const volatile char comm_prefix[16] = "";
__u32 sample_every = 1;
__u64 seen;

SEC("tracepoint/sched/sched_switch")
int globals_on_switch(void *ctx)
{
	__u32 pid = bpf_get_current_pid_tgid() >> 32;

	if (target_pid && pid != target_pid)
		return 0;
	if (comm_prefix[0] || sample_every)
		__sync_fetch_and_add(&seen, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
