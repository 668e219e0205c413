/* A profiler's stack map: a key and nothing else. Its loader sets the
 * value size (the stack depth it wants, perf_event_max_stack by default,
 * times 8 bytes: bpf_map__set_value_size) and max_entries before load, as
 * CPU and off-CPU profilers, memleak and wakeup tracers do. Loaded as
 * compiled, every kernel refuses the map (EINVAL): the automatic fixups
 * size it, or a manifest does (stack_unsized.manifest.yaml). */
#include "common.h"

struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__type(key, __u32);
} stack_traces SEC(".maps");

SEC("perf_event")
int sample_user_stack(void *ctx)
{
	bpf_get_stackid(ctx, &stack_traces, BPF_F_USER_STACK);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
