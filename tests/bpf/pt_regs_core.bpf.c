/* Reads a kprobe's first argument through CO-RE on the registers, as code
 * built against vmlinux.h does: the type and field it names are the target
 * architecture's (__TARGET_ARCH_x86: struct pt_regs, di; __TARGET_ARCH_arm64:
 * struct user_pt_regs, regs[0]), so an object built for one architecture
 * fails its CO-RE relocation on the other's kernels. The kernel's own
 * layouts are declared here, as vmlinux.h would (no UAPI asm/ptrace.h). */
#define __VMLINUX_H__
#include <linux/types.h>
#include <linux/bpf.h>

#if defined(__TARGET_ARCH_x86)
struct pt_regs {
	unsigned long r15, r14, r13, r12, bp, bx, r11, r10, r9, r8;
	unsigned long ax, cx, dx, si, di;
} __attribute__((preserve_access_index));
#elif defined(__TARGET_ARCH_arm64)
struct user_pt_regs {
	__u64 regs[31];
	__u64 sp;
	__u64 pc;
	__u64 pstate;
} __attribute__((preserve_access_index));
struct pt_regs {
	struct user_pt_regs user_regs;
} __attribute__((preserve_access_index));
#endif

#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

SEC("kprobe/vfs_read")
int on_vfs_read_arg(struct pt_regs *ctx)
{
	unsigned long file = PT_REGS_PARM1_CORE(ctx);

	return file == 0;
}

char LICENSE[] SEC("license") = "GPL";
