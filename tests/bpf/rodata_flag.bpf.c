/* A loader knob the verifier depends on: with `strict_lookup` false (as
 * compiled) the program dereferences a hash lookup without a NULL check,
 * which every verifier refuses; the skeleton sets it to true before load,
 * and then that path is dead code. .rodata is frozen and read-only to
 * programs, so the verifier reads the knob's value (5.2+) and never walks
 * the branch it rules out. */
#include <stdbool.h>
#include "common.h"

const volatile bool strict_lookup = false;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u64);
} per_pid SEC(".maps");

SEC("tracepoint/sched/sched_switch")
int count_per_pid(void *ctx)
{
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	__u64 *v = bpf_map_lookup_elem(&per_pid, &pid);

	if (strict_lookup) {
		if (v)
			__sync_fetch_and_add(v, 1);
		return 0;
	}
	/* The loader always sets strict_lookup; this is never meant to run. */
	return *v & 1;
}

char LICENSE[] SEC("license") = "GPL";
