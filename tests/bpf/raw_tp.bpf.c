/* raw_tp (4.17+): attach by tracepoint name, no BTF needed. */
#include "common.h"

SEC("raw_tp/sched_switch")
int on_raw_sched_switch(void *ctx)
{
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
