/* Three ways to see one event, "a task adds a Landlock rule", for a loader
 * that loads the best one the kernel supports:
 *  - fentry on landlock_append_net_rule (network rules, 6.7+; fentry needs
 *    kernel BTF),
 *  - kprobe on landlock_append_fs_rule (Landlock, 5.13+, when built in),
 *  - the raw_syscalls/sys_enter tracepoint, filtered on the number of
 *    landlock_add_rule, which every kernel has. (Not the syscall's
 *    __x64_sys_ wrapper: a kernel without Landlock still has that symbol,
 *    a weak alias of sys_ni_syscall.)
 * A manifest's program_variants group picks one with requires_target;
 * loaded all at once, the fentry fails to load where its target is
 * missing. */
#include "common.h"

#define NR_landlock_add_rule 445 /* x86_64 */

__u64 rules_added;

SEC("fentry/landlock_append_net_rule")
int BPF_PROG(rule_added_fentry)
{
	__sync_fetch_and_add(&rules_added, 1);
	return 0;
}

SEC("kprobe/landlock_append_fs_rule")
int BPF_KPROBE(rule_added_kprobe)
{
	__sync_fetch_and_add(&rules_added, 1);
	return 0;
}

/* The raw_syscalls/sys_enter record after its common header: id, args. */
struct sys_enter_args {
	__u64 common;
	long id;
	unsigned long args[6];
};

SEC("tracepoint/raw_syscalls/sys_enter")
int rule_added_tracepoint(struct sys_enter_args *ctx)
{
	if (ctx->id == NR_landlock_add_rule)
		__sync_fetch_and_add(&rules_added, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
