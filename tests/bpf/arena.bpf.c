/* BPF arena map (6.9+). The program does not touch it: the map type alone
 * decides. */
#include "common.h"

struct {
	__uint(type, BPFCOMPAT_MAP_TYPE_ARENA);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 2); /* pages */
} arena SEC(".maps");

SEC("tracepoint/sched/sched_switch")
int arena_on_switch(void *ctx)
{
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
