//! Attaching every loaded program to a real target inside the guest.
//!
//! Targets: the program's own section for tracing-family programs (libbpf
//! auto-attach), `lo` (ifindex 1) for XDP and tc/tcx, the cgroup2 root for
//! cgroup programs, a sockmap of the object for sk_skb/sk_msg, a fresh socket
//! for socket filters and reuseport, the network namespace for sk_lookup and
//! the flow dissector, a software perf event for perf_event programs, and
//! the struct_ops maps themselves. "skipped" only where no target can exist
//! in an isolated guest, with the reason.

use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use bpfcompat_proto::object::{AttachResult, Phase, Status};
use libbpf_rs::{AsRawLibbpf, Link, MapCore, Object, ProgramMut};

use super::capture::{Capture, Output};
use super::classify::{classify, Evidence};
use super::load::{errno_of, MapDecl, ProgDecl};
use super::names;

const LO_IFINDEX: i32 = 1;
const CGROUP_ROOT: &str = "/sys/fs/cgroup";
const ITER_READ_MAX: usize = 1 << 20;

/// Context the classifier needs for attach failures.
pub struct AttachCtx<'a> {
    pub kernel_btf: bool,
    pub lockdown: Option<&'a str>,
}

impl AttachCtx<'_> {
    /// What is known about a failed attach of `subject`: the failure and
    /// what libbpf said meanwhile.
    fn evidence(&self, subject: &str, e: &Failure, out: &Output) -> Evidence {
        let mut ev = Evidence::new(Phase::Attach, subject);
        ev.errno = e.0;
        ev.libbpf_lines = out.warn_lines();
        ev.kernel_btf = self.kernel_btf;
        ev
    }
}

/// How a program gets attached, decided from its type and section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// `bpf_program__attach`, libbpf's auto-attach by section; `target` is
    /// what the section names, `lookup` how to tell whether the guest has it.
    Auto {
        target: String,
        lookup: Lookup,
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
    fn exists(&self) -> Option<bool> {
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
            if arg.is_empty() {
                return Plan::Skip("the section names no tracepoint".into());
            }
            Plan::Auto {
                target: arg.to_owned(),
                lookup: Lookup::Tracepoint(arg.to_owned()),
            }
        }
        s::BPF_PROG_TYPE_RAW_TRACEPOINT | s::BPF_PROG_TYPE_RAW_TRACEPOINT_WRITABLE => {
            if arg.is_empty() {
                return Plan::Skip("the section names no raw tracepoint".into());
            }
            Plan::Auto {
                target: arg.to_owned(),
                lookup: Lookup::Unknown,
            }
        }
        s::BPF_PROG_TYPE_TRACING | s::BPF_PROG_TYPE_LSM => {
            if arg.is_empty() {
                return Plan::Skip("the section names no attach target".into());
            }
            Plan::Auto {
                target: arg.to_owned(),
                lookup: Lookup::Unknown,
            }
        }
        _ => Plan::Auto {
            target: sec.to_owned(),
            lookup: Lookup::Unknown,
        },
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
            if arg.is_empty() {
                return Plan::Skip("the section names no kernel functions".into());
            }
            Plan::Auto {
                target: arg.to_owned(),
                lookup: Lookup::SymbolGlob(arg.to_owned()),
            }
        }
        "ksyscall" | "kretsyscall" => {
            if arg.is_empty() {
                return Plan::Skip("the section names no syscall".into());
            }
            Plan::Auto {
                target: arg.to_owned(),
                lookup: Lookup::Symbol(vec![
                    format!("__x64_sys_{arg}"),
                    format!("sys_{arg}"),
                    format!("__se_sys_{arg}"),
                ]),
            }
        }
        "uprobe" | "uretprobe" | "usdt" | "uprobe.multi" | "uretprobe.multi" => {
            // SEC("uprobe/PATH:FUNC") with an absolute PATH, which makes the
            // section name "uprobe//path:func".
            let path = arg.split(':').next().unwrap_or("");
            if path.is_empty() || !arg.contains(':') {
                return Plan::Skip(format!(
                    "SEC(\"{kind}\") names no binary: the loader chooses the target at run time"
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

/// Things to undo after attaching.
enum Held {
    Link(#[allow(dead_code)] Link),
    RawLink(*mut libbpf_sys::bpf_link),
    Fd(#[allow(dead_code)] OwnedFd),
    Tc(libbpf_rs::TcHook),
    Nothing,
}

impl Drop for Held {
    fn drop(&mut self) {
        match self {
            Held::RawLink(l) => unsafe {
                libbpf_sys::bpf_link__destroy(*l);
            },
            Held::Tc(h) => {
                let _ = h.detach();
                let _ = h.destroy();
            }
            _ => {}
        }
    }
}

struct Done {
    held: Held,
    target: String,
    iter_bytes: Option<u64>,
}

impl Done {
    fn new(held: Held, target: impl Into<String>) -> Done {
        Done {
            held,
            target: target.into(),
            iter_bytes: None,
        }
    }
}

type Failure = (Option<i32>, String);

/// Prefix of the error when the clsact qdisc cannot be created on `lo`.
const CLSACT_CREATE: &str = "creating the clsact qdisc on lo";

/// The clsact qdisc is missing from the kernel: Debian builds `sch_ingress`
/// as a module and the guest carries no modules, so a classic tc program
/// cannot be attached here although a real system would load the module.
/// That makes it a skip (the program did load), not a failure.
fn clsact_unavailable(plan: &Plan, e: &Failure) -> bool {
    matches!(plan, Plan::Tc)
        && e.1.starts_with(CLSACT_CREATE)
        && matches!(e.0, Some(libc::ENOENT | libc::EOPNOTSUPP | libc::EINVAL))
}

fn err(e: libbpf_rs::Error) -> Failure {
    (errno_of(&e), format!("{e:#}"))
}

fn os_err(what: &str) -> Failure {
    let e = std::io::Error::last_os_error();
    (e.raw_os_error(), format!("{what}: {e}"))
}

fn open_fd(path: &str, flags: i32) -> Result<OwnedFd, Failure> {
    let c = std::ffi::CString::new(path).expect("no NUL");
    let fd = unsafe { libc::open(c.as_ptr(), flags | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(os_err(&format!("open {path}")));
    }
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn socket(domain: i32, ty: i32) -> Result<OwnedFd, Failure> {
    let fd = unsafe { libc::socket(domain, ty | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(os_err("socket"));
    }
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn setsockopt_int(fd: &OwnedFd, level: i32, opt: i32, val: i32, what: &str) -> Result<(), Failure> {
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            opt,
            &val as *const i32 as *const libc::c_void,
            std::mem::size_of::<i32>() as u32,
        )
    };
    if rc != 0 {
        return Err(os_err(what));
    }
    Ok(())
}

/// `perf_event_open` for a software CPU clock on CPU 0, any task. The
/// attr is laid out by hand (libc does not carry `perf_event_attr`):
/// type u32 @0, size u32 @4, config u64 @8, sample_freq u64 @16, flag bits
/// u64 @40 (bit 10: freq).
fn perf_event_cpu_clock() -> Result<OwnedFd, Failure> {
    const PERF_TYPE_SOFTWARE: u32 = 1;
    const PERF_COUNT_SW_CPU_CLOCK: u64 = 0;
    const PERF_ATTR_SIZE_VER5: u32 = 112;
    const PERF_FLAG_FD_CLOEXEC: libc::c_ulong = 8;
    let mut attr = [0u64; 16];
    attr[0] = PERF_TYPE_SOFTWARE as u64 | ((PERF_ATTR_SIZE_VER5 as u64) << 32);
    attr[1] = PERF_COUNT_SW_CPU_CLOCK;
    attr[2] = 1000;
    attr[5] = 1 << 10;
    let fd = unsafe {
        libc::syscall(
            libc::SYS_perf_event_open,
            attr.as_ptr(),
            -1i32,
            0i32,
            -1i32,
            PERF_FLAG_FD_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(os_err("perf_event_open(software cpu-clock, cpu 0)"));
    }
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

fn attach_one(
    prog: &ProgramMut<'_>,
    plan: &Plan,
    obj: &Object,
    maps: &[MapDecl],
) -> Result<Done, Failure> {
    match plan {
        Plan::Auto { target, .. } => {
            let link = prog.attach().map_err(err)?;
            Ok(Done::new(Held::Link(link), target))
        }
        Plan::Iter => attach_iter(prog),
        Plan::Xdp => {
            let link = prog.attach_xdp(LO_IFINDEX).map_err(err)?;
            Ok(Done::new(Held::Link(link), "lo (ifindex 1)"))
        }
        Plan::Tcx { ingress } => attach_tcx(prog, *ingress),
        Plan::Tc => attach_tc(prog),
        Plan::Cgroup => {
            let cg = open_fd(CGROUP_ROOT, libc::O_RDONLY | libc::O_DIRECTORY)?;
            let link = prog.attach_cgroup(cg.as_raw_fd()).map_err(err)?;
            Ok(Done::new(Held::Link(link), CGROUP_ROOT))
        }
        Plan::Sockmap => attach_sockmap(prog, obj, maps),
        Plan::SocketFilter => attach_socket_filter(prog),
        Plan::Reuseport => attach_reuseport(prog),
        Plan::Netns => {
            let ns = open_fd("/proc/self/ns/net", libc::O_RDONLY)?;
            let link = prog.attach_netns(ns.as_raw_fd()).map_err(err)?;
            Ok(Done::new(Held::Link(link), "the network namespace"))
        }
        Plan::PerfEvent => attach_perf_event(prog),
        Plan::Netfilter => attach_netfilter(prog),
        Plan::StructOps | Plan::Skip(_) => unreachable!("not attached here"),
    }
}

/// Attaches an iterator and reads it once, up to [`ITER_READ_MAX`] bytes.
fn attach_iter(prog: &ProgramMut<'_>) -> Result<Done, Failure> {
    let link = prog.attach().map_err(err)?;
    let mut iter = libbpf_rs::Iter::new(&link).map_err(err)?;
    let bytes = read_once(&mut iter)?;
    Ok(Done {
        held: Held::Link(link),
        target: "iterator (read once)".into(),
        iter_bytes: Some(bytes),
    })
}

/// How many bytes an iterator gives, read to its end or to [`ITER_READ_MAX`].
fn read_once(iter: &mut impl Read) -> Result<u64, Failure> {
    let mut total = 0;
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        match iter.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => {
                total += n;
                if total >= ITER_READ_MAX {
                    break;
                }
            }
            Err(e) => return Err((e.raw_os_error(), format!("reading the iterator: {e}"))),
        }
    }
    Ok(total as u64)
}

fn attach_tcx(prog: &ProgramMut<'_>, ingress: bool) -> Result<Done, Failure> {
    let raw = prog.as_libbpf_object().as_ptr();
    let link = unsafe { libbpf_sys::bpf_program__attach_tcx(raw, LO_IFINDEX, std::ptr::null()) };
    let rc = unsafe { libbpf_sys::libbpf_get_error(link as *const _) } as i32;
    if link.is_null() || rc != 0 {
        let e = if rc != 0 {
            -rc
        } else {
            std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
        };
        return Err((
            Some(e),
            format!(
                "bpf_program__attach_tcx(lo): {}",
                std::io::Error::from_raw_os_error(e)
            ),
        ));
    }
    let dir = if ingress { "ingress" } else { "egress" };
    Ok(Done::new(
        Held::RawLink(link),
        format!("lo (ifindex 1) tcx {dir}"),
    ))
}

fn attach_tc(prog: &ProgramMut<'_>) -> Result<Done, Failure> {
    let mut hook = libbpf_rs::TcHookBuilder::new(prog.as_fd())
        .ifindex(LO_IFINDEX)
        .replace(true)
        .handle(1)
        .priority(1)
        .hook(libbpf_rs::TC_INGRESS);
    hook.create()
        .map_err(|e| (errno_of(&e), format!("{CLSACT_CREATE}: {e:#}")))?;
    hook.attach().map_err(err)?;
    Ok(Done::new(Held::Tc(hook), "lo (ifindex 1) clsact ingress"))
}

/// Attaches to the object's first sockmap or sockhash.
fn attach_sockmap(prog: &ProgramMut<'_>, obj: &Object, maps: &[MapDecl]) -> Result<Done, Failure> {
    let Some(m) = maps.iter().find(|m| {
        m.map_type == libbpf_sys::BPF_MAP_TYPE_SOCKMAP
            || m.map_type == libbpf_sys::BPF_MAP_TYPE_SOCKHASH
    }) else {
        return Err((
            None,
            "no sockmap/sockhash in the object to attach to".into(),
        ));
    };
    let map = obj
        .maps()
        .find(|x| x.name().to_string_lossy() == m.name)
        .ok_or((None, format!("map {} not loaded", m.name)))?;
    prog.attach_sockmap(map.as_fd().as_raw_fd()).map_err(err)?;
    Ok(Done::new(Held::Nothing, format!("sockmap {}", m.name)))
}

fn attach_socket_filter(prog: &ProgramMut<'_>) -> Result<Done, Failure> {
    let s = socket(libc::AF_INET, libc::SOCK_DGRAM)?;
    setsockopt_int(
        &s,
        libc::SOL_SOCKET,
        libc::SO_ATTACH_BPF,
        prog.as_fd().as_raw_fd(),
        "setsockopt(SO_ATTACH_BPF)",
    )?;
    Ok(Done::new(Held::Fd(s), "a UDP socket (SO_ATTACH_BPF)"))
}

fn attach_reuseport(prog: &ProgramMut<'_>) -> Result<Done, Failure> {
    let s = socket(libc::AF_INET, libc::SOCK_DGRAM)?;
    setsockopt_int(
        &s,
        libc::SOL_SOCKET,
        libc::SO_REUSEPORT,
        1,
        "setsockopt(SO_REUSEPORT)",
    )?;
    setsockopt_int(
        &s,
        libc::SOL_SOCKET,
        libc::SO_ATTACH_REUSEPORT_EBPF,
        prog.as_fd().as_raw_fd(),
        "setsockopt(SO_ATTACH_REUSEPORT_EBPF)",
    )?;
    Ok(Done::new(
        Held::Fd(s),
        "a UDP socket (SO_ATTACH_REUSEPORT_EBPF)",
    ))
}

fn attach_perf_event(prog: &ProgramMut<'_>) -> Result<Done, Failure> {
    let pe = perf_event_cpu_clock()?;
    let link = prog.attach_perf_event(pe.as_raw_fd()).map_err(err)?;
    // The link holds its own reference to the event.
    drop(pe);
    Ok(Done::new(
        Held::Link(link),
        "software cpu-clock perf event, cpu 0",
    ))
}

fn attach_netfilter(prog: &ProgramMut<'_>) -> Result<Done, Failure> {
    let opts = libbpf_rs::NetfilterOpts {
        protocol_family: libbpf_rs::NFPROTO_IPV4,
        hooknum: libbpf_rs::NF_INET_LOCAL_IN,
        priority: -128,
        ..Default::default()
    };
    let link = prog.attach_netfilter_with_opts(opts).map_err(err)?;
    Ok(Done::new(Held::Link(link), "netfilter ipv4 local_in"))
}

fn passed(target: String, iter_bytes: Option<u64>) -> AttachResult {
    AttachResult {
        status: Status::Pass,
        errno: None,
        error: None,
        target: Some(target),
        iter_bytes,
        diagnosis: None,
    }
}

fn failed(e: Failure, evidence: Evidence) -> AttachResult {
    AttachResult {
        status: Status::Fail,
        errno: e.0,
        error: Some(e.1),
        target: evidence.target.clone(),
        iter_bytes: None,
        diagnosis: Some(classify(&evidence)),
    }
}

/// Why a struct_ops program is not attached by itself; its struct_ops
/// map's result replaces it.
const VIA_STRUCT_OPS_MAP: &str = "registered through its struct_ops map";

/// Attaches every loaded program of `obj`, one at a time (each link is
/// dropped before the next attach), and registers its struct_ops maps.
/// Returns one result per `progs` entry and one per `maps` entry (None for
/// maps that are not struct_ops).
pub fn attach_all(
    obj: &mut Object,
    progs: &[ProgDecl],
    loaded: &[bool],
    maps: &[MapDecl],
    ctx: &AttachCtx<'_>,
) -> (Vec<AttachResult>, Vec<Option<AttachResult>>) {
    let mut prog_results: Vec<AttachResult> = progs
        .iter()
        .zip(loaded)
        .map(|(decl, &loaded)| {
            if loaded {
                attach_program(obj, decl, maps, ctx)
            } else {
                AttachResult::skipped("not loaded")
            }
        })
        .collect();
    let map_results: Vec<Option<AttachResult>> = maps
        .iter()
        .map(|decl| register_struct_ops(obj, decl, ctx))
        .collect();
    share_struct_ops_fate(progs, &mut prog_results, &map_results);
    (prog_results, map_results)
}

/// Attaches one loaded program as its plan says.
fn attach_program(
    obj: &mut Object,
    decl: &ProgDecl,
    maps: &[MapDecl],
    ctx: &AttachCtx<'_>,
) -> AttachResult {
    let plan = plan(decl);
    match &plan {
        Plan::Skip(why) => return AttachResult::skipped(why.clone()),
        Plan::StructOps => return AttachResult::skipped(VIA_STRUCT_OPS_MAP),
        _ => {}
    }
    let Some(prog) = obj
        .progs_mut()
        .find(|p| p.name().to_string_lossy() == decl.name)
    else {
        return AttachResult::skipped("not in the loaded object");
    };
    let cap = Capture::start();
    let r = attach_one(&prog, &plan, obj, maps);
    let out = cap.take();
    match r {
        Ok(done) => {
            let r = passed(done.target, done.iter_bytes);
            drop(done.held);
            r
        }
        Err(e) if clsact_unavailable(&plan, &e) => AttachResult::skipped(format!(
            "the kernel has no clsact qdisc here ({}): it is a module on this \
             kernel and the guest has no modules; tcx needs none",
            e.1
        )),
        Err(e) => {
            let mut ev = ctx.evidence(&decl.name, &e, &out);
            ev.lockdown = ctx.lockdown.map(str::to_owned);
            ev.prog_type = Some(names::prog_type(decl.prog_type));
            if let Plan::Auto { target, lookup } = &plan {
                ev.target = Some(target.clone());
                ev.target_exists = lookup.exists();
            } else {
                // lo, the cgroup root, the netns, sockets: made or
                // checked by us, they exist.
                ev.target = Some(format!("{plan:?}"));
                ev.target_exists = Some(true);
            }
            if ev.libbpf_lines.is_empty() {
                ev.libbpf_lines.push(e.1.clone());
            }
            failed(e, ev)
        }
    }
}

/// Registers `decl` if it is a struct_ops map; None for other maps.
fn register_struct_ops(
    obj: &mut Object,
    decl: &MapDecl,
    ctx: &AttachCtx<'_>,
) -> Option<AttachResult> {
    if !decl.is_struct_ops() {
        return None;
    }
    let Some(mut map) = obj
        .maps_mut()
        .find(|m| m.name().to_string_lossy() == decl.name)
    else {
        return Some(AttachResult::skipped("not created"));
    };
    let cap = Capture::start();
    let r = map.attach_struct_ops();
    let out = cap.take();
    let target = format!("struct_ops {}", decl.name);
    Some(match r {
        Ok(link) => {
            drop(link);
            passed(target, None)
        }
        Err(e) => {
            let e = err(e);
            let mut ev = ctx.evidence(&decl.name, &e, &out);
            ev.target = Some(target);
            failed(e, ev)
        }
    })
}

/// struct_ops programs share the fate of the struct_ops maps: the first
/// failed map's result, else the first map's.
fn share_struct_ops_fate(
    progs: &[ProgDecl],
    prog_results: &mut [AttachResult],
    map_results: &[Option<AttachResult>],
) {
    let st = map_results.iter().flatten().collect::<Vec<_>>();
    for (decl, r) in progs.iter().zip(prog_results.iter_mut()) {
        if decl.is_struct_ops() && r.error.as_deref() == Some(VIA_STRUCT_OPS_MAP) {
            if let Some(failed) = st.iter().find(|m| m.status == Status::Fail) {
                *r = (*failed).clone();
            } else if let Some(pass) = st.first() {
                *r = (*pass).clone();
            }
        }
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
    fn globs() {
        assert!(glob("vfs_*", "vfs_read"));
        assert!(glob("vfs_rea?", "vfs_read"));
        assert!(!glob("vfs_*", "do_vfs"));
        assert!(glob("vfs_read", "vfs_read"));
    }
}
