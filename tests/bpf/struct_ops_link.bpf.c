/* struct_ops.bpf.c's congestion control registered through a link:
 * SEC(".struct_ops.link") makes libbpf create the map with BPF_F_LINK, a
 * flag of 6.4. A flag the object really sets: 5.10 and 6.1 refuse the map
 * (EINVAL), which is the kernel's to answer for; newer kernels create it
 * and the agent registers it with bpf_link_create. */
#define BPFCOMPAT_STRUCT_OPS_SEC ".struct_ops.link"
#define BPFCOMPAT_CC bpfcompat_ccl
#include "struct_ops.bpf.c"
