/* An LPM trie without BPF_F_NO_PREALLOC in its map_flags: no kernel
 * creates a trie without it (trie_alloc, EINVAL), so its loader sets the
 * flag before load (bpf_map__set_map_flags). The automatic fixups add it,
 * or a manifest does (lpm_unflagged.manifest.yaml). */
#include "common.h"

struct ipv4_prefix {
	__u32 prefixlen;
	__u32 addr;
};

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 256);
	__type(key, struct ipv4_prefix);
	__type(value, __u32);
} allowed_nets SEC(".maps");

SEC("xdp")
int match_prefix(struct xdp_md *ctx)
{
	struct ipv4_prefix loopback = { .prefixlen = 32, .addr = 0x0100007f };

	return bpf_map_lookup_elem(&allowed_nets, &loopback) ? XDP_PASS : XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
