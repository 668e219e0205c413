/* uprobes: one naming a binary that exists in the guest (/init, the agent),
 * one without a target (attaching it is impossible; reported as skipped). */
#include "common.h"

SEC("uprobe//init:main")
int BPF_KPROBE(on_init_main)
{
	return 0;
}

SEC("uretprobe//init:main")
int BPF_KRETPROBE(on_init_main_ret)
{
	return 0;
}

SEC("uprobe")
int on_unnamed_uprobe(void *ctx)
{
	return 0;
}

SEC("usdt")
int on_unnamed_usdt(void *ctx)
{
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
