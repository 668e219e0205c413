//! What is known about one failure, and how to read it: the lines that
//! say why, errno names, and the verifier log's own summary lines.

use bpfcompat_proto::object::{MapParam, Phase};

pub const EPERM: i32 = 1;
pub const ENOENT: i32 = 2;
pub const ESRCH: i32 = 3;
pub const ENXIO: i32 = 6;
pub const E2BIG: i32 = 7;
pub const ENOMEM: i32 = 12;
pub const EACCES: i32 = 13;
pub const EBUSY: i32 = 16;
pub const EEXIST: i32 = 17;
pub const EINVAL: i32 = 22;
pub const ENOSYS: i32 = 38;
pub const EOPNOTSUPP: i32 = 95;
/// Kernel-internal, but it leaks to user space from BPF syscalls.
pub const ENOTSUPP: i32 = 524;

/// Everything known about one failure.
#[derive(Debug, Clone)]
pub struct Evidence {
    pub phase: Phase,
    pub errno: Option<i32>,
    /// libbpf's lines about this failure (without the verifier log).
    pub libbpf_lines: Vec<String>,
    /// The verifier log of the failing program load, if any.
    pub verifier_log: String,
    /// The program or map the failure is about.
    pub subject: String,
    /// libbpf's program type name (`kprobe`, `tracing`, ...), for hints.
    pub prog_type: Option<String>,
    /// libbpf's map type name, for map failures.
    pub map_type: Option<String>,
    /// The kernel has BTF (`/sys/kernel/btf/vmlinux`).
    pub kernel_btf: bool,
    /// `libbpf_probe_bpf_prog_type` for the program's type.
    pub prog_type_supported: Option<bool>,
    /// `libbpf_probe_bpf_map_type` for the map's type.
    pub map_type_supported: Option<bool>,
    /// Helpers the program calls that the probe says its type cannot use.
    pub unsupported_helpers: Vec<String>,
    /// Attach: whether the named target exists (kallsyms, tracefs, a path).
    pub target_exists: Option<bool>,
    /// Attach: whether ftrace can patch the named function (it is in
    /// `available_filter_functions`); inlined and `notrace` functions exist
    /// in kallsyms but are not.
    pub target_traceable: Option<bool>,
    /// Attach: what was attached to.
    pub target: Option<String>,
    /// `/sys/kernel/security/lockdown`'s selected mode.
    pub lockdown: Option<String>,
    /// The guest is arm64 (the agent's own architecture): hints name what
    /// differs there.
    pub arm64: bool,
    /// Map creation: what the object leaves to its loader and nobody set
    /// (`max_entries` 0, a value size 0, no inner map, a required flag): no
    /// kernel creates it as compiled.
    pub loader_gap: Option<LoaderGap>,
}

/// The parameters a map leaves to its loader that nobody set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoaderGap {
    pub params: Vec<MapParam>,
    pub map_type: u32,
    /// The automatic fixups are off (`--no-fixups`) and would set them all.
    pub fixups_would: bool,
}

impl Evidence {
    pub fn new(phase: Phase, subject: impl Into<String>) -> Self {
        Evidence {
            phase,
            errno: None,
            libbpf_lines: Vec::new(),
            verifier_log: String::new(),
            subject: subject.into(),
            prog_type: None,
            map_type: None,
            kernel_btf: true,
            prog_type_supported: None,
            map_type_supported: None,
            unsupported_helpers: Vec::new(),
            target_exists: None,
            target_traceable: None,
            target: None,
            lockdown: None,
            arm64: cfg!(target_arch = "aarch64"),
            loader_gap: None,
        }
    }
}

/// First line (libbpf's, then the verifier's) containing any of `needles`.
pub fn find_line<'a>(ev: &'a Evidence, needles: &[&str]) -> Option<&'a str> {
    ev.libbpf_lines
        .iter()
        .map(|l| l.as_str())
        .chain(ev.verifier_log.lines())
        .map(|l| l.trim())
        .find(|l| needles.iter().any(|n| l.contains(n)))
}

/// The line [`find_line`] finds, or `fallback` when none has any of `needles`.
pub fn find_line_or(ev: &Evidence, needles: &[&str], fallback: impl FnOnce() -> String) -> String {
    find_line(ev, needles)
        .map(str::to_owned)
        .unwrap_or_else(fallback)
}

pub fn errno_text(errno: Option<i32>) -> String {
    match errno {
        Some(e) => format!("-{} ({e})", errno_name(e)),
        None => "no errno".into(),
    }
}

pub fn errno_name(e: i32) -> &'static str {
    match e {
        EPERM => "EPERM",
        ENOENT => "ENOENT",
        ESRCH => "ESRCH",
        ENXIO => "ENXIO",
        E2BIG => "E2BIG",
        ENOMEM => "ENOMEM",
        EACCES => "EACCES",
        EBUSY => "EBUSY",
        EEXIST => "EEXIST",
        EINVAL => "EINVAL",
        28 => "ENOSPC",
        ENOSYS => "ENOSYS",
        EOPNOTSUPP => "EOPNOTSUPP",
        ENOTSUPP => "ENOTSUPP",
        // libbpf's own error codes (LIBBPF_ERRNO__*).
        4000 => "LIBBPF_ERRNO__LIBELF",
        4001 => "LIBBPF_ERRNO__FORMAT",
        4002 => "LIBBPF_ERRNO__KVERSION",
        4003 => "LIBBPF_ERRNO__ENDIAN",
        4004 => "LIBBPF_ERRNO__INTERNAL",
        4005 => "LIBBPF_ERRNO__RELOC",
        4006 => "LIBBPF_ERRNO__LOAD",
        4007 => "LIBBPF_ERRNO__VERIFY",
        4008 => "LIBBPF_ERRNO__PROG2BIG",
        4009 => "LIBBPF_ERRNO__KVER",
        4010 => "LIBBPF_ERRNO__PROGTYPE",
        _ => "E?",
    }
}

/// EINVAL, EOPNOTSUPP or ENOTSUPP: how a kernel refuses what it does not know.
pub fn says_unsupported(errno: Option<i32>) -> bool {
    matches!(errno, Some(EINVAL) | Some(EOPNOTSUPP) | Some(ENOTSUPP))
}

/// The line of a verifier log that says why it refused: the last one that
/// is not a statistic.
pub fn verifier_error_line(log: &str) -> Option<&str> {
    log.lines().rev().map(str::trim).find(|l| {
        !l.is_empty()
            && !l.starts_with("processed ")
            && !l.starts_with("verification time")
            && !l.starts_with("stack depth")
            && !l.starts_with("Live regs")
            && !l.starts_with("-- END")
    })
}

/// `processed N insns` from a verifier log.
pub fn insns_processed(log: &str) -> Option<u64> {
    log.lines().rev().find_map(|l| {
        let rest = l.trim().strip_prefix("processed ")?;
        rest.split_whitespace().next()?.parse().ok()
    })
}
