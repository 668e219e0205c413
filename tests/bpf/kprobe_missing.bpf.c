/* A kprobe on a symbol no kernel has: loads, then the attach target is
 * missing (not an unsupported attach type). */
#include "common.h"

SEC("kprobe/bpfcompat_no_such_function")
int on_missing_symbol(void *ctx)
{
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
