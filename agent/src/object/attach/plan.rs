//! How each program gets attached, decided from its type and section, and
//! how to tell afterwards whether the target it named exists.

use std::path::Path;

use crate::object::load::ProgDecl;

/// How a program gets attached, decided from its type and section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// `bpf_program__attach`, libbpf's auto-attach by section; `target` is
    /// what the section names, `lookup` how to tell whether the guest has it.
    Auto {
        target: String,
        lookup: Lookup,
    },
    /// The contract's kernel function for a kprobe.
    Kprobe {
        func: String,
        retprobe: bool,
    },
    /// The contract's tracepoint.
    Tracepoint {
        category: String,
        name: String,
    },
    RawTracepoint(String),
    /// The contract's binary and symbol.
    Uprobe {
        binary: String,
        symbol: String,
        retprobe: bool,
    },
    Iter,
    Xdp,
    Tc,
    Tcx {
        ingress: bool,
    },
    Cgroup,
    Sockmap,
    SocketFilter,
    Reuseport,
    Netns,
    PerfEvent,
    Netfilter,
    /// Registered through its struct_ops map.
    StructOps,
    Skip(String),
}

impl Plan {
    /// The target a plan names (a kernel function, a tracepoint) and how to
    /// look it up; `None` for plans that attach to a place (an interface,
    /// a cgroup, a socket).
    pub fn named_target(&self) -> Option<(String, Lookup)> {
        match self {
            Plan::Auto { target, lookup } => Some((target.clone(), lookup.clone())),
            Plan::Kprobe { func, .. } => Some((func.clone(), Lookup::Symbol(vec![func.clone()]))),
            Plan::Tracepoint { category, name } => {
                let target = format!("{category}/{name}");
                Some((target.clone(), Lookup::Tracepoint(target)))
            }
            _ => None,
        }
    }
}

/// How to find out whether an attach target exists. Asked only when an
/// attach failed, to tell a missing target from an unsupported attach type:
/// reading kallsyms costs most of a second under emulation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    Unknown,
    /// Known when planning (a uprobe's binary was checked).
    Exists,
    /// A tracepoint `category/name` in tracefs.
    Tracepoint(String),
    /// Any of these names in kallsyms.
    Symbol(Vec<String>),
    /// A kallsyms name matching this glob (kprobe.multi).
    SymbolGlob(String),
}

impl Lookup {
    /// Whether ftrace can patch the function(s) looked up; None for other
    /// targets, without tracefs, or on a kernel without kprobes at all
    /// (there, nothing is traceable by a kprobe, and that is another class).
    pub fn traceable(&self) -> Option<bool> {
        match self {
            Lookup::Symbol(names) if kprobes_supported() => {
                Some(filter_functions()?.iter().any(|f| names.contains(f)))
            }
            _ => None,
        }
    }

    pub fn exists(&self) -> Option<bool> {
        match self {
            Lookup::Unknown => None,
            Lookup::Exists => Some(true),
            Lookup::Tracepoint(name) => tracefs_event_exists(name),
            Lookup::Symbol(names) if names.len() == 1 => kallsyms_contains(&names[0]),
            Lookup::Symbol(names) => kallsyms_has(|n| names.iter().any(|x| x == n)),
            Lookup::SymbolGlob(pattern) => kallsyms_has(|n| glob(pattern, n)),
        }
    }
}

/// Function names in /proc/kallsyms, read once per boot (it is megabytes,
/// slow to read under TCG).
fn kallsyms() -> Option<&'static std::collections::HashSet<String>> {
    static SYMS: std::sync::OnceLock<Option<std::collections::HashSet<String>>> =
        std::sync::OnceLock::new();
    SYMS.get_or_init(|| {
        let text = std::fs::read_to_string("/proc/kallsyms").ok()?;
        Some(
            text.lines()
                .filter_map(|l| l.split_whitespace().nth(2))
                .map(str::to_owned)
                .collect(),
        )
    })
    .as_ref()
}

/// The kernel can make kprobes: the kprobe PMU (4.17+) or tracefs's
/// legacy `kprobe_events`.
fn kprobes_supported() -> bool {
    Path::new("/sys/bus/event_source/devices/kprobe").exists()
        || ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"]
            .iter()
            .any(|root| Path::new(root).join("kprobe_events").exists())
}

/// What ftrace can patch (`available_filter_functions`, `name [module]`
/// per line), read once per boot.
fn filter_functions() -> Option<&'static std::collections::HashSet<String>> {
    static FUNCS: std::sync::OnceLock<Option<std::collections::HashSet<String>>> =
        std::sync::OnceLock::new();
    FUNCS
        .get_or_init(|| {
            let text = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"]
                .iter()
                .find_map(|root| {
                    std::fs::read_to_string(Path::new(root).join("available_filter_functions")).ok()
                })?;
            Some(
                text.lines()
                    .filter_map(|l| l.split_whitespace().next())
                    .map(str::to_owned)
                    .collect(),
            )
        })
        .as_ref()
}

fn kallsyms_has(pred: impl Fn(&str) -> bool) -> Option<bool> {
    Some(kallsyms()?.iter().any(|n| pred(n)))
}

fn kallsyms_contains(name: &str) -> Option<bool> {
    Some(kallsyms()?.contains(name))
}

fn glob(pattern: &str, s: &str) -> bool {
    fn m(p: &[u8], s: &[u8]) -> bool {
        match (p.first(), s.first()) {
            (None, None) => true,
            (Some(b'*'), _) => m(&p[1..], s) || (!s.is_empty() && m(p, &s[1..])),
            (Some(b'?'), Some(_)) => m(&p[1..], &s[1..]),
            (Some(a), Some(b)) if a == b => m(&p[1..], &s[1..]),
            _ => false,
        }
    }
    m(pattern.as_bytes(), s.as_bytes())
}

fn tracefs_event_exists(cat_name: &str) -> Option<bool> {
    for root in ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"] {
        let events = Path::new(root).join("events");
        if events.exists() {
            return Some(events.join(cat_name).exists());
        }
    }
    None
}

/// Whether tracefs has a tracepoint `name` (`category/name`, or a bare name
/// in any category); `None` without tracefs.
pub fn tracepoint_named(name: &str) -> Option<bool> {
    if name.contains('/') {
        return tracefs_event_exists(name);
    }
    for root in ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"] {
        let events = Path::new(root).join("events");
        if events.exists() {
            let categories = std::fs::read_dir(events).ok()?;
            return Some(categories.flatten().any(|c| c.path().join(name).exists()));
        }
    }
    None
}

/// Decides the attach plan; pure except for looking the target up.
pub fn plan(p: &ProgDecl) -> Plan {
    use libbpf_sys as s;
    let sec = p.section.as_str();
    let (kind, arg) = sec.split_once('/').unwrap_or((sec, ""));
    match p.prog_type {
        s::BPF_PROG_TYPE_XDP => Plan::Xdp,
        s::BPF_PROG_TYPE_SCHED_CLS | s::BPF_PROG_TYPE_SCHED_ACT => {
            if p.attach_type == s::BPF_TCX_INGRESS || kind == "tcx" && arg == "ingress" {
                Plan::Tcx { ingress: true }
            } else if p.attach_type == s::BPF_TCX_EGRESS || kind == "tcx" {
                Plan::Tcx { ingress: false }
            } else {
                Plan::Tc
            }
        }
        s::BPF_PROG_TYPE_CGROUP_SKB
        | s::BPF_PROG_TYPE_CGROUP_SOCK
        | s::BPF_PROG_TYPE_CGROUP_SOCK_ADDR
        | s::BPF_PROG_TYPE_CGROUP_SOCKOPT
        | s::BPF_PROG_TYPE_CGROUP_SYSCTL
        | s::BPF_PROG_TYPE_CGROUP_DEVICE
        | s::BPF_PROG_TYPE_SOCK_OPS => Plan::Cgroup,
        s::BPF_PROG_TYPE_SK_SKB | s::BPF_PROG_TYPE_SK_MSG => Plan::Sockmap,
        s::BPF_PROG_TYPE_SOCKET_FILTER => Plan::SocketFilter,
        s::BPF_PROG_TYPE_SK_REUSEPORT => Plan::Reuseport,
        s::BPF_PROG_TYPE_SK_LOOKUP | s::BPF_PROG_TYPE_FLOW_DISSECTOR => Plan::Netns,
        s::BPF_PROG_TYPE_PERF_EVENT => Plan::PerfEvent,
        s::BPF_PROG_TYPE_NETFILTER => Plan::Netfilter,
        s::BPF_PROG_TYPE_STRUCT_OPS => Plan::StructOps,
        s::BPF_PROG_TYPE_EXT => Plan::Skip(
            "freplace programs replace a function of another loaded program, chosen at run time"
                .into(),
        ),
        s::BPF_PROG_TYPE_SYSCALL => {
            Plan::Skip("syscall programs are run with BPF_PROG_TEST_RUN, not attached".into())
        }
        s::BPF_PROG_TYPE_LIRC_MODE2 => {
            Plan::Skip("lirc_mode2 needs an infrared receiver device".into())
        }
        s::BPF_PROG_TYPE_LWT_IN
        | s::BPF_PROG_TYPE_LWT_OUT
        | s::BPF_PROG_TYPE_LWT_XMIT
        | s::BPF_PROG_TYPE_LWT_SEG6LOCAL => {
            Plan::Skip("lwt programs attach to routes through netlink; not attempted".into())
        }
        s::BPF_PROG_TYPE_TRACING if p.attach_type == s::BPF_TRACE_ITER => Plan::Iter,
        s::BPF_PROG_TYPE_KPROBE => plan_kprobe(kind, arg),
        s::BPF_PROG_TYPE_TRACEPOINT => {
            named_target(arg, "tracepoint", Lookup::Tracepoint(arg.to_owned()))
        }
        s::BPF_PROG_TYPE_RAW_TRACEPOINT | s::BPF_PROG_TYPE_RAW_TRACEPOINT_WRITABLE => {
            named_target(arg, "raw tracepoint", Lookup::Unknown)
        }
        // fentry/fexit/fmod_ret name a kernel function; tp_btf a tracepoint,
        // lsm a hook.
        s::BPF_PROG_TYPE_TRACING if kind.starts_with('f') => {
            named_target(arg, "attach target", Lookup::Symbol(vec![arg.to_owned()]))
        }
        s::BPF_PROG_TYPE_TRACING | s::BPF_PROG_TYPE_LSM => {
            named_target(arg, "attach target", Lookup::Unknown)
        }
        _ => Plan::Auto {
            target: sec.to_owned(),
            lookup: Lookup::Unknown,
        },
    }
}

/// Libbpf's auto-attach to `arg`, what the section names after its kind,
/// or a skip when it names no `what`.
fn named_target(arg: &str, what: &str, lookup: Lookup) -> Plan {
    if arg.is_empty() {
        return Plan::Skip(format!("the section names no {what}"));
    }
    Plan::Auto {
        target: arg.to_owned(),
        lookup,
    }
}

fn plan_kprobe(kind: &str, arg: &str) -> Plan {
    let kind = kind.trim_end_matches(".s");
    match kind {
        "kprobe" | "kretprobe" => {
            if arg.is_empty() {
                return Plan::Skip("the section names no kernel function".into());
            }
            let sym = arg.split('+').next().unwrap_or(arg).to_owned();
            Plan::Auto {
                lookup: Lookup::Symbol(vec![sym.clone()]),
                target: sym,
            }
        }
        "kprobe.multi" | "kretprobe.multi" | "kprobe.session" => {
            named_target(arg, "kernel functions", Lookup::SymbolGlob(arg.to_owned()))
        }
        "ksyscall" | "kretsyscall" => named_target(
            arg,
            "syscall",
            Lookup::Symbol(vec![
                format!("__x64_sys_{arg}"),
                format!("sys_{arg}"),
                format!("__se_sys_{arg}"),
            ]),
        ),
        "uprobe" | "uretprobe" | "usdt" | "uprobe.multi" | "uretprobe.multi" => {
            // SEC("uprobe/PATH:FUNC") with an absolute PATH, which makes the
            // section name "uprobe//path:func".
            let path = arg.split(':').next().unwrap_or("");
            if path.is_empty() || !arg.contains(':') {
                return Plan::Skip(format!(
                    "SEC(\"{kind}\") names no binary: the loader chooses the target at run time"
                ));
            }
            if path.starts_with("/proc/self/") {
                return Plan::Skip(format!(
                    "{path} is the loader's own binary: in the guest that is bpfcompat's agent, \
                     not your loader; check it with --command and your loader instead"
                ));
            }
            if !Path::new(path).exists() {
                return Plan::Skip(format!(
                    "{path} (named by the section) does not exist in the guest"
                ));
            }
            Plan::Auto {
                target: arg.to_owned(),
                lookup: Lookup::Exists,
            }
        }
        _ => Plan::Auto {
            target: arg.to_owned(),
            lookup: Lookup::Unknown,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decl(prog_type: u32, attach_type: u32, section: &str) -> ProgDecl {
        ProgDecl {
            name: "p".into(),
            section: section.into(),
            prog_type,
            attach_type,
            autoload: true,
            helpers: vec![],
        }
    }

    #[test]
    fn plans() {
        use libbpf_sys as s;
        assert_eq!(plan(&decl(s::BPF_PROG_TYPE_XDP, 0, "xdp")), Plan::Xdp);
        assert_eq!(
            plan(&decl(
                s::BPF_PROG_TYPE_SCHED_CLS,
                s::BPF_TCX_INGRESS,
                "tcx/ingress"
            )),
            Plan::Tcx { ingress: true }
        );
        assert_eq!(plan(&decl(s::BPF_PROG_TYPE_SCHED_CLS, 0, "tc")), Plan::Tc);
        assert_eq!(
            plan(&decl(s::BPF_PROG_TYPE_SOCK_OPS, 0, "sockops")),
            Plan::Cgroup
        );
        assert!(matches!(
            plan(&decl(s::BPF_PROG_TYPE_KPROBE, 0, "uprobe")),
            Plan::Skip(_)
        ));
        assert!(matches!(
            plan(&decl(s::BPF_PROG_TYPE_KPROBE, 0, "uprobe//no/such/bin:main")),
            Plan::Skip(w) if w.contains("/no/such/bin")
        ));
        assert!(matches!(
            plan(&decl(s::BPF_PROG_TYPE_KPROBE, 0, "kprobe/vfs_read+4")),
            Plan::Auto { target, .. } if target == "vfs_read"
        ));
        assert_eq!(
            plan(&decl(
                s::BPF_PROG_TYPE_TRACING,
                s::BPF_TRACE_ITER,
                "iter/task"
            )),
            Plan::Iter
        );
    }

    #[test]
    fn sections_that_name_no_target_are_skips() {
        use libbpf_sys as s;
        for (prog_type, section, what) in [
            (s::BPF_PROG_TYPE_TRACEPOINT, "tracepoint", "tracepoint"),
            (s::BPF_PROG_TYPE_RAW_TRACEPOINT, "raw_tp", "raw tracepoint"),
            (s::BPF_PROG_TYPE_TRACING, "fentry", "attach target"),
            (s::BPF_PROG_TYPE_KPROBE, "kprobe.multi", "kernel functions"),
            (s::BPF_PROG_TYPE_KPROBE, "ksyscall", "syscall"),
        ] {
            assert_eq!(
                plan(&decl(prog_type, 0, section)),
                Plan::Skip(format!("the section names no {what}"))
            );
        }
        assert_eq!(
            plan(&decl(s::BPF_PROG_TYPE_KPROBE, 0, "ksyscall/openat")),
            Plan::Auto {
                target: "openat".into(),
                lookup: Lookup::Symbol(vec![
                    "__x64_sys_openat".into(),
                    "sys_openat".into(),
                    "__se_sys_openat".into()
                ]),
            }
        );
    }

    #[test]
    fn globs() {
        assert!(glob("vfs_*", "vfs_read"));
        assert!(glob("vfs_rea?", "vfs_read"));
        assert!(!glob("vfs_*", "do_vfs"));
        assert!(glob("vfs_read", "vfs_read"));
    }
}
