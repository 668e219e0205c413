/* perf_event program on a software CPU clock event. */
#include "common.h"

SEC("perf_event")
int on_cpu_clock(void *ctx)
{
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
