/* For behavior mode: three tracepoints, each counting its hits. The
 * built-in workload switches tasks (sched_switch runs); only a functional
 * test that sets the hostname, while the links are held, makes
 * on_sethostname run; nothing in a check reboots, so on_reboot never runs. */
#include "common.h"

__u64 switches, hostnames, reboots;

SEC("tracepoint/sched/sched_switch")
int on_switch(void *ctx)
{
	__sync_fetch_and_add(&switches, 1);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_sethostname")
int on_sethostname(void *ctx)
{
	__sync_fetch_and_add(&hostnames, 1);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_reboot")
int on_reboot(void *ctx)
{
	__sync_fetch_and_add(&reboots, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
