/* One ring buffer per CPU, as an array of maps its loader fills: the outer
 * array is compiled with max_entries 0 and no inner map definition (the
 * loader creates the rings, so only it knows their size), and the program
 * picks the ring of the CPU it runs on. A manifest says `max_entries: cpus`
 * and `inner_ringbuf_bytes`; without one the outer map cannot be created. */
#include "common.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 0);
	__type(key, __u32);
	__type(value, __u32);	/* an inner map's fd, set by the loader */
} cpu_rings SEC(".maps");

struct switch_event {
	__u32 cpu;
	__u32 pid;
};

SEC("tracepoint/sched/sched_switch")
int ring_per_cpu(void *ctx)
{
	__u32 cpu = bpf_get_smp_processor_id();
	struct switch_event *e;
	void *ring;

	ring = bpf_map_lookup_elem(&cpu_rings, &cpu);
	if (!ring)
		return 0;
	e = bpf_ringbuf_reserve(ring, sizeof(*e), 0);
	if (!e)
		return 0;
	e->cpu = cpu;
	e->pid = bpf_get_current_pid_tgid() >> 32;
	bpf_ringbuf_submit(e, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
