/* Shared by the bpfcompat test corpus. Only libbpf-dev's headers and the
 * kernel UAPI headers; the few kernel structs we need are declared by hand
 * with preserve_access_index (no generated vmlinux.h). */
#pragma once
#include <linux/types.h>
#include <linux/bpf.h>
#include <asm/ptrace.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

/* Newer than the UAPI headers of the build host. */
#define BPFCOMPAT_MAP_TYPE_ARENA 33
#ifndef BPF_F_MMAPABLE
#define BPF_F_MMAPABLE (1U << 10)
#endif

struct task_struct {
	int pid;
	int tgid;
} __attribute__((preserve_access_index));

struct sock_common {
	unsigned short skc_family;
} __attribute__((preserve_access_index));

struct sock {
	struct sock_common __sk_common;
} __attribute__((preserve_access_index));

struct file;
struct seq_file;
