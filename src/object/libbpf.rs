//! Copies of libbpf's own tables (libbpf 1.7): map and program type names
//! by id, and what program type, attach type and attach target each section
//! name means. Kept in step with the vendored libbpf the agent links.

use crate::report::inspection::AttachTarget;

/// The UAPI's map flags by bit (`BPF_F_NO_PREALLOC` is bit 0), as
/// `include/uapi/linux/bpf.h` names them.
pub const MAP_FLAGS: [&str; 19] = [
    "BPF_F_NO_PREALLOC",
    "BPF_F_NO_COMMON_LRU",
    "BPF_F_NUMA_NODE",
    "BPF_F_RDONLY",
    "BPF_F_WRONLY",
    "BPF_F_STACK_BUILD_ID",
    "BPF_F_ZERO_SEED",
    "BPF_F_RDONLY_PROG",
    "BPF_F_WRONLY_PROG",
    "BPF_F_CLONE",
    "BPF_F_MMAPABLE",
    "BPF_F_PRESERVE_ELEMS",
    "BPF_F_INNER_MAP",
    "BPF_F_LINK",
    "BPF_F_PATH_FD",
    "BPF_F_VTYPE_BTF_OBJ_FD",
    "BPF_F_TOKEN_FD",
    "BPF_F_SEGV_ON_FAULT",
    "BPF_F_NO_USER_CONV",
];

/// A struct_ops map that registers through a link.
pub const BPF_F_LINK: u32 = 1 << 13;

/// libbpf's map type names, by id.
const MAP_TYPES: [&str; 34] = [
    "unspec",
    "hash",
    "array",
    "prog_array",
    "perf_event_array",
    "percpu_hash",
    "percpu_array",
    "stack_trace",
    "cgroup_array",
    "lru_hash",
    "lru_percpu_hash",
    "lpm_trie",
    "array_of_maps",
    "hash_of_maps",
    "devmap",
    "sockmap",
    "cpumap",
    "xskmap",
    "sockhash",
    "cgroup_storage",
    "reuseport_sockarray",
    "percpu_cgroup_storage",
    "queue",
    "stack",
    "sk_storage",
    "devmap_hash",
    "struct_ops",
    "ringbuf",
    "inode_storage",
    "task_storage",
    "bloom_filter",
    "user_ringbuf",
    "cgrp_storage",
    "arena",
];
pub(super) const MAP_TYPE_STRUCT_OPS: u32 = 26;

pub fn map_type_name(id: u32) -> Option<&'static str> {
    MAP_TYPES.get(id as usize).copied()
}

/// The id of libbpf's map type `name` (`hash` → 1); not `unspec`.
pub fn map_type_id(name: &str) -> Option<u32> {
    id_of(&MAP_TYPES, name)
}

/// libbpf's program type names, by id (`enum bpf_prog_type`).
const PROG_TYPES: [&str; 33] = [
    "unspec",
    "socket_filter",
    "kprobe",
    "sched_cls",
    "sched_act",
    "tracepoint",
    "xdp",
    "perf_event",
    "cgroup_skb",
    "cgroup_sock",
    "lwt_in",
    "lwt_out",
    "lwt_xmit",
    "sock_ops",
    "sk_skb",
    "cgroup_device",
    "sk_msg",
    "raw_tracepoint",
    "cgroup_sock_addr",
    "lwt_seg6local",
    "lirc_mode2",
    "sk_reuseport",
    "flow_dissector",
    "cgroup_sysctl",
    "raw_tracepoint_writable",
    "cgroup_sockopt",
    "tracing",
    "struct_ops",
    "ext",
    "lsm",
    "sk_lookup",
    "syscall",
    "netfilter",
];

/// The id of libbpf's program type `name` (`socket_filter` → 1); not
/// `unspec`.
pub fn prog_type_id(name: &str) -> Option<u32> {
    id_of(&PROG_TYPES, name)
}

/// Every program type name, for messages.
pub fn prog_type_names() -> &'static [&'static str] {
    &PROG_TYPES[1..]
}

fn id_of(names: &[&str], name: &str) -> Option<u32> {
    names
        .iter()
        .skip(1)
        .position(|n| *n == name)
        .map(|i| i as u32 + 1)
}

/// Section prefix -> (libbpf program type, needs kernel BTF). Longest
/// prefix wins; an entry ending in `/` needs something after it, the others
/// also match exactly or followed by `/` or `.`.
const SECTIONS: &[(&str, &str, bool)] = &[
    ("socket", "socket_filter", false),
    ("sk_reuseport", "sk_reuseport", false),
    ("kprobe/", "kprobe", false),
    ("kretprobe/", "kprobe", false),
    ("kprobe.multi/", "kprobe", false),
    ("kretprobe.multi/", "kprobe", false),
    ("kprobe.session/", "kprobe", false),
    ("ksyscall/", "kprobe", false),
    ("kretsyscall/", "kprobe", false),
    ("uprobe", "kprobe", false),
    ("uretprobe", "kprobe", false),
    ("uprobe.multi", "kprobe", false),
    ("uretprobe.multi", "kprobe", false),
    ("uprobe.session", "kprobe", false),
    ("usdt", "kprobe", false),
    ("tc", "sched_cls", false),
    ("tcx/", "sched_cls", false),
    ("netkit/", "sched_cls", false),
    ("classifier", "sched_cls", false),
    ("action", "sched_act", false),
    ("tracepoint/", "tracepoint", false),
    ("tp/", "tracepoint", false),
    ("raw_tracepoint/", "raw_tracepoint", false),
    ("raw_tp/", "raw_tracepoint", false),
    ("raw_tracepoint.w/", "raw_tracepoint_writable", false),
    ("raw_tp.w/", "raw_tracepoint_writable", false),
    ("tp_btf/", "tracing", true),
    ("fentry", "tracing", true),
    ("fexit", "tracing", true),
    ("fmod_ret", "tracing", true),
    ("fentry.s", "tracing", true),
    ("fexit.s", "tracing", true),
    ("fmod_ret.s", "tracing", true),
    ("freplace", "ext", false),
    ("lsm", "lsm", true),
    ("lsm.s", "lsm", true),
    ("lsm_cgroup", "lsm", true),
    ("iter/", "tracing", true),
    ("iter.s/", "tracing", true),
    ("syscall", "syscall", false),
    ("xdp", "xdp", false),
    ("xdp.frags", "xdp", false),
    ("perf_event", "perf_event", false),
    ("lwt_in", "lwt_in", false),
    ("lwt_out", "lwt_out", false),
    ("lwt_xmit", "lwt_xmit", false),
    ("lwt_seg6local", "lwt_seg6local", false),
    ("sockops", "sock_ops", false),
    ("sk_skb", "sk_skb", false),
    ("sk_msg", "sk_msg", false),
    ("lirc_mode2", "lirc_mode2", false),
    ("flow_dissector", "flow_dissector", false),
    ("sk_lookup", "sk_lookup", false),
    ("struct_ops", "struct_ops", true),
    ("struct_ops.s", "struct_ops", true),
    ("netfilter", "netfilter", false),
    ("cgroup_skb/", "cgroup_skb", false),
    ("cgroup/skb", "cgroup_skb", false),
    ("cgroup/sock", "cgroup_sock", false),
    ("cgroup/sock_create", "cgroup_sock", false),
    ("cgroup/sock_release", "cgroup_sock", false),
    ("cgroup/post_bind4", "cgroup_sock", false),
    ("cgroup/post_bind6", "cgroup_sock", false),
    ("cgroup/bind4", "cgroup_sock_addr", false),
    ("cgroup/bind6", "cgroup_sock_addr", false),
    ("cgroup/connect4", "cgroup_sock_addr", false),
    ("cgroup/connect6", "cgroup_sock_addr", false),
    ("cgroup/connect_unix", "cgroup_sock_addr", false),
    ("cgroup/sendmsg4", "cgroup_sock_addr", false),
    ("cgroup/sendmsg6", "cgroup_sock_addr", false),
    ("cgroup/sendmsg_unix", "cgroup_sock_addr", false),
    ("cgroup/recvmsg4", "cgroup_sock_addr", false),
    ("cgroup/recvmsg6", "cgroup_sock_addr", false),
    ("cgroup/recvmsg_unix", "cgroup_sock_addr", false),
    ("cgroup/getpeername4", "cgroup_sock_addr", false),
    ("cgroup/getpeername6", "cgroup_sock_addr", false),
    ("cgroup/getpeername_unix", "cgroup_sock_addr", false),
    ("cgroup/getsockname4", "cgroup_sock_addr", false),
    ("cgroup/getsockname6", "cgroup_sock_addr", false),
    ("cgroup/getsockname_unix", "cgroup_sock_addr", false),
    ("cgroup/sysctl", "cgroup_sysctl", false),
    ("cgroup/getsockopt", "cgroup_sockopt", false),
    ("cgroup/setsockopt", "cgroup_sockopt", false),
    ("cgroup/dev", "cgroup_device", false),
];

/// libbpf's program type for a section name and whether it needs kernel BTF.
pub fn section_prog_type(section: &str) -> Option<(&'static str, bool)> {
    SECTIONS
        .iter()
        .filter(|(prefix, _, _)| prefix_matches(prefix, section))
        .max_by_key(|(prefix, _, _)| prefix.len())
        .map(|(_, t, btf)| (*t, *btf))
}

/// Whether a [`SECTIONS`]-style prefix matches a section name.
fn prefix_matches(prefix: &str, section: &str) -> bool {
    if prefix.ends_with('/') {
        section.starts_with(prefix) && section.len() > prefix.len()
    } else {
        section == prefix
            || section
                .strip_prefix(prefix)
                .is_some_and(|rest| rest.starts_with('/'))
    }
}

/// Section prefix -> the attach type libbpf loads the program with, for
/// sections whose attach type came later than their program type (the
/// `BPF_*` name, lowercase, as `enum bpf_attach_type` has it).
const ATTACH_TYPES: &[(&str, &str)] = &[
    ("cgroup/connect_unix", "cgroup_unix_connect"),
    ("cgroup/sendmsg_unix", "cgroup_unix_sendmsg"),
    ("cgroup/recvmsg_unix", "cgroup_unix_recvmsg"),
    ("cgroup/getpeername_unix", "cgroup_unix_getpeername"),
    ("cgroup/getsockname_unix", "cgroup_unix_getsockname"),
    ("cgroup/getpeername4", "cgroup_inet4_getpeername"),
    ("cgroup/getpeername6", "cgroup_inet6_getpeername"),
    ("cgroup/getsockname4", "cgroup_inet4_getsockname"),
    ("cgroup/getsockname6", "cgroup_inet6_getsockname"),
    ("cgroup/recvmsg4", "cgroup_udp4_recvmsg"),
    ("cgroup/recvmsg6", "cgroup_udp6_recvmsg"),
    ("cgroup/sock_release", "cgroup_inet_sock_release"),
    ("cgroup/getsockopt", "cgroup_getsockopt"),
    ("cgroup/setsockopt", "cgroup_setsockopt"),
    ("cgroup/sysctl", "cgroup_sysctl"),
    ("kprobe.multi/", "trace_kprobe_multi"),
    ("kretprobe.multi/", "trace_kprobe_multi"),
    ("kprobe.session/", "trace_kprobe_session"),
    ("uprobe.multi", "trace_uprobe_multi"),
    ("uretprobe.multi", "trace_uprobe_multi"),
    ("uprobe.session", "trace_uprobe_session"),
    ("tcx/ingress", "tcx_ingress"),
    ("tcx/egress", "tcx_egress"),
    ("netkit/primary", "netkit_primary"),
    ("netkit/peer", "netkit_peer"),
    ("netfilter", "netfilter"),
    ("fmod_ret", "modify_return"),
    ("fmod_ret.s", "modify_return"),
    ("lsm", "lsm_mac"),
    ("lsm.s", "lsm_mac"),
    ("lsm_cgroup", "lsm_cgroup"),
    ("iter/", "trace_iter"),
    ("iter.s/", "trace_iter"),
    ("sk_lookup", "sk_lookup"),
    ("xdp.frags", "xdp"),
];

/// The attach type a section implies, from [`ATTACH_TYPES`].
pub fn section_attach_type(section: &str) -> Option<&'static str> {
    ATTACH_TYPES
        .iter()
        .filter(|(prefix, _)| prefix_matches(prefix, section))
        .max_by_key(|(prefix, _)| prefix.len())
        .map(|(_, t)| *t)
}

/// Section prefix -> the kind of target a kernel's BTF lists.
const TARGET_KINDS: &[(&str, &str)] = &[
    ("fentry/", "fentry"),
    ("fexit/", "fentry"),
    ("fmod_ret/", "fentry"),
    ("fentry.s/", "fentry"),
    ("fexit.s/", "fentry"),
    ("fmod_ret.s/", "fentry"),
    ("lsm/", "lsm"),
    ("lsm.s/", "lsm"),
    ("lsm_cgroup/", "lsm"),
    ("tp_btf/", "tp_btf"),
    ("iter/", "iter"),
    ("iter.s/", "iter"),
    ("kprobe/", "kprobe"),
    ("kretprobe/", "kprobe"),
];

/// What the section names as its attach target, for the kinds a kernel's
/// BTF can be asked about: `fentry/tcp_v4_connect` is the fentry target
/// `tcp_v4_connect`; `kprobe/vfs_read+0x10` the kprobe target `vfs_read`.
pub fn section_attach_target(section: &str) -> Option<AttachTarget> {
    let (prefix, kind) = TARGET_KINDS
        .iter()
        .filter(|(prefix, _)| prefix_matches(prefix, section))
        .max_by_key(|(prefix, _)| prefix.len())?;
    let name = section[prefix.len()..].split('+').next()?;
    let plain = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.');
    plain.then(|| AttachTarget {
        kind: (*kind).to_owned(),
        name: name.to_owned(),
    })
}
