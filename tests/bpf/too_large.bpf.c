/* Too complex for the verifier, as cheaply as it can be: 8193 forks in a
 * row on two unknown values. The verifier follows one side of each fork and
 * keeps the other pending; the 8193rd pending branch is one more than it
 * allows (BPF_COMPLEXITY_LIMIT_JMP_SEQ, 8192 on every test kernel): "The
 * sequence of 8193 jumps is too complex." (EFAULT on 5.10-6.12, E2BIG on
 * 7.2), after about 8200 processed instructions.
 *
 * Assembly, so that each fork is one instruction and no loop is unrolled:
 * the C loop this replaces (`if (bpf_get_prandom_u32() & 1)` 20000 times,
 * 10 instructions a fork) took 2-14 s a load under TCG, a 3-instruction
 * loop still 0.6-4 s, this 0.4-2 s; libbpf loads twice (its retry asks for
 * the log). Each processed instruction is also a line of that log, which
 * the agent sends back: 5.6-17.7 MB then (it sent the last 1 MB), 0.55 MB
 * now. The values are 64-bit (no bounds to print) and compared with each
 * other: compared with a constant (`if r == 5`), the program loads on 7.2. */
#include "common.h"

#define FORK "if %[a] == %[b] goto +0\n"
#define FORK16 FORK FORK FORK FORK FORK FORK FORK FORK FORK FORK FORK FORK FORK FORK FORK FORK
#define FORK256                                                                              \
	FORK16 FORK16 FORK16 FORK16 FORK16 FORK16 FORK16 FORK16 FORK16 FORK16 FORK16 FORK16 \
		FORK16 FORK16 FORK16 FORK16
#define FORK4096                                                                        \
	FORK256 FORK256 FORK256 FORK256 FORK256 FORK256 FORK256 FORK256 FORK256 FORK256 \
		FORK256 FORK256 FORK256 FORK256 FORK256 FORK256

SEC("tracepoint/sched/sched_switch")
int too_complex(void *ctx)
{
	__u64 a = bpf_ktime_get_ns(), b = bpf_ktime_get_ns();

	asm volatile(FORK4096 FORK4096 FORK : : [a] "r"(a), [b] "r"(b));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
