//! Attaching one program to its target: a link, a hook, a socket option
//! or a perf event, and what must be held (and undone) meanwhile.

use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};

use libbpf_rs::{AsRawLibbpf, Link, MapCore, Object, ProgramMut};

use super::overrides::Site;
use super::plan::Plan;
use crate::object::load::{errno_of, MapDecl};
const ITER_READ_MAX: usize = 1 << 20;

/// Things to undo after attaching.
pub enum Held {
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

/// An attached program: what keeps it attached, and where it is.
pub struct Done {
    pub held: Held,
    pub target: String,
    pub iter_bytes: Option<u64>,
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

/// An errno, if there is one, and the error.
pub type Failure = (Option<i32>, String);

/// Prefix of the error when the clsact qdisc cannot be created.
const CLSACT_CREATE: &str = "creating the clsact qdisc on";

/// The clsact qdisc is missing from the kernel: Debian builds `sch_ingress`
/// as a module and the guest carries no modules, so a classic tc program
/// cannot be attached here although a real system would load the module.
/// That makes it a skip (the program did load), not a failure.
pub fn clsact_unavailable(plan: &Plan, e: &Failure) -> bool {
    matches!(plan, Plan::Tc)
        && e.1.starts_with(CLSACT_CREATE)
        && matches!(e.0, Some(libc::ENOENT | libc::EOPNOTSUPP | libc::EINVAL))
}

pub fn err(e: libbpf_rs::Error) -> Failure {
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

/// The interface's index and how to name it (`lo (ifindex 1)`).
fn interface(site: &Site) -> Result<(i32, String), Failure> {
    let c = std::ffi::CString::new(site.ifname.as_str()).map_err(|e| (None, e.to_string()))?;
    let index = unsafe { libc::if_nametoindex(c.as_ptr()) } as i32;
    if index == 0 {
        return Err((
            Some(libc::ENODEV),
            format!(
                "no interface {} in the guest (it has lo only): give attach.interface: lo, or \
                 check this program with --command and your loader",
                site.ifname
            ),
        ));
    }
    Ok((index, format!("{} (ifindex {index})", site.ifname)))
}

pub fn attach_one(
    prog: &ProgramMut<'_>,
    plan: &Plan,
    obj: &Object,
    maps: &[MapDecl],
    site: &Site,
) -> Result<Done, Failure> {
    match plan {
        Plan::Auto { target, .. } => {
            let link = prog.attach().map_err(err)?;
            Ok(Done::new(Held::Link(link), target))
        }
        Plan::Kprobe { func, retprobe } => {
            let link = prog.attach_kprobe(*retprobe, func).map_err(err)?;
            Ok(Done::new(Held::Link(link), func))
        }
        Plan::Tracepoint { category, name } => {
            let cat = libbpf_rs::TracepointCategory::Custom(category.clone());
            let link = prog.attach_tracepoint(cat, name).map_err(err)?;
            Ok(Done::new(Held::Link(link), format!("{category}/{name}")))
        }
        Plan::RawTracepoint(name) => {
            let link = prog.attach_raw_tracepoint(name).map_err(err)?;
            Ok(Done::new(Held::Link(link), name))
        }
        Plan::Uprobe {
            binary,
            symbol,
            retprobe,
        } => {
            let opts = libbpf_rs::UprobeOpts {
                retprobe: *retprobe,
                func_name: Some(symbol.clone()),
                ..Default::default()
            };
            let link = prog
                .attach_uprobe_with_opts(-1, binary, 0, opts)
                .map_err(err)?;
            Ok(Done::new(Held::Link(link), format!("{binary}:{symbol}")))
        }
        Plan::Iter => attach_iter(prog),
        Plan::Xdp => {
            let (index, name) = interface(site)?;
            let link = prog.attach_xdp(index).map_err(err)?;
            Ok(Done::new(Held::Link(link), name))
        }
        Plan::Tcx { ingress } => attach_tcx(prog, *ingress, site),
        Plan::Tc => attach_tc(prog, site),
        Plan::Cgroup => {
            let cg = open_fd(&site.cgroup, libc::O_RDONLY | libc::O_DIRECTORY)?;
            let link = prog.attach_cgroup(cg.as_raw_fd()).map_err(err)?;
            Ok(Done::new(Held::Link(link), site.cgroup.clone()))
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

fn attach_tcx(prog: &ProgramMut<'_>, ingress: bool, site: &Site) -> Result<Done, Failure> {
    let (index, ifname) = interface(site)?;
    let raw = prog.as_libbpf_object().as_ptr();
    let link = unsafe { libbpf_sys::bpf_program__attach_tcx(raw, index, std::ptr::null()) };
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
                "bpf_program__attach_tcx({}): {}",
                site.ifname,
                std::io::Error::from_raw_os_error(e)
            ),
        ));
    }
    let dir = if ingress { "ingress" } else { "egress" };
    Ok(Done::new(
        Held::RawLink(link),
        format!("{ifname} tcx {dir}"),
    ))
}

fn attach_tc(prog: &ProgramMut<'_>, site: &Site) -> Result<Done, Failure> {
    let (index, ifname) = interface(site)?;
    let mut hook = libbpf_rs::TcHookBuilder::new(prog.as_fd())
        .ifindex(index)
        .replace(true)
        .handle(1)
        .priority(1)
        .hook(libbpf_rs::TC_INGRESS);
    hook.create().map_err(|e| {
        (
            errno_of(&e),
            format!("{CLSACT_CREATE} {}: {e:#}", site.ifname),
        )
    })?;
    hook.attach().map_err(err)?;
    Ok(Done::new(
        Held::Tc(hook),
        format!("{ifname} clsact ingress"),
    ))
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
