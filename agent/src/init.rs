//! What a PID 1 does before and after the real work: file systems, the
//! loopback interface, facts about the kernel, and resetting the machine.

use std::ffi::{CStr, CString};
use std::path::Path;

use std::sync::atomic::{AtomicU64, Ordering};

use bpfcompat_proto::{GuestMemory, KernelFacts};

/// The lowest `MemAvailable` sampled so far, in kB.
static MIN_AVAILABLE_KB: AtomicU64 = AtomicU64::new(u64::MAX);

/// `(source, target, fstype, data)`, mounted in this order. Later targets
/// live in earlier file systems (`/sys/fs/bpf` in sysfs).
const MOUNTS: &[(&str, &str, &str, &str)] = &[
    ("proc", "/proc", "proc", ""),
    ("sysfs", "/sys", "sysfs", ""),
    ("devtmpfs", "/dev", "devtmpfs", "mode=0755"),
    ("bpf", "/sys/fs/bpf", "bpf", "mode=0700"),
    ("tracefs", "/sys/kernel/tracing", "tracefs", ""),
    ("debugfs", "/sys/kernel/debug", "debugfs", ""),
    ("cgroup2", "/sys/fs/cgroup", "cgroup2", ""),
    // `/sys/kernel/security/lsm` says whether BPF LSM programs will run.
    ("securityfs", "/sys/kernel/security", "securityfs", ""),
    ("tmpfs", "/tmp", "tmpfs", "mode=1777"),
    ("tmpfs", "/run", "tmpfs", "mode=0755"),
];

/// Mounts everything and brings `lo` up. Returns what failed: none of it is
/// fatal, and old or tiny kernels lack some of it.
pub fn setup() -> Vec<String> {
    let mut warnings = Vec::new();
    for &(source, target, fstype, data) in MOUNTS {
        // Succeeds in the initramfs' rootfs; inside sysfs the kernel provides
        // the directory or the file system does not exist.
        let _ = std::fs::create_dir_all(target);
        if let Err(e) = mount(source, target, fstype, data) {
            warnings.push(format!("mount {fstype} on {target}: {e}"));
        } else if fstype == "devtmpfs" {
            // devtmpfs has no /dev/fd & co (udev usually makes them); bash's
            // process substitution and many scripts need them.
            for (link, target) in [
                ("/dev/fd", "/proc/self/fd"),
                ("/dev/stdin", "/proc/self/fd/0"),
                ("/dev/stdout", "/proc/self/fd/1"),
                ("/dev/stderr", "/proc/self/fd/2"),
            ] {
                let _ = std::os::unix::fs::symlink(target, link);
            }
        }
    }
    if let Err(e) = loopback_up() {
        warnings.push(format!("bring up lo: {e}"));
    }
    warnings
}

fn mount(source: &str, target: &str, fstype: &str, data: &str) -> std::io::Result<()> {
    let c = |s: &str| CString::new(s).expect("no NUL in mount arguments");
    let (source, target, fstype, data) = (c(source), c(target), c(fstype), c(data));
    // SAFETY: valid NUL-terminated strings for the duration of the call.
    let rc = unsafe {
        libc::mount(
            source.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            libc::MS_NOSUID,
            data.as_ptr().cast(),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// `ip link set lo up`, by ioctl: XDP and tc checks attach to ifindex 1.
fn loopback_up() -> std::io::Result<()> {
    // SAFETY: plain syscalls; `ifreq` is plain data, zero is a valid value.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let mut ifr: libc::ifreq = std::mem::zeroed();
        for (dst, src) in ifr.ifr_name.iter_mut().zip(b"lo\0") {
            *dst = *src as libc::c_char;
        }
        let mut result = Ok(());
        if libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut ifr) < 0 {
            result = Err(std::io::Error::last_os_error());
        } else {
            ifr.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
            if libc::ioctl(fd, libc::SIOCSIFFLAGS, &ifr) < 0 {
                result = Err(std::io::Error::last_os_error());
            }
        }
        libc::close(fd);
        result
    }
}

/// Makes a restored guest its own: its wall clock set to the host's
/// (`clock_ns`), the host's random `seed` (hex) credited to the kernel's RNG
/// and the RNG reseeded from it, so no two guests restored from one
/// snapshot see the same clock or random bytes. Returns what failed.
pub fn make_distinct(clock_ns: u64, seed: &str) -> Vec<String> {
    let mut warnings = Vec::new();
    let now = libc::timespec {
        tv_sec: (clock_ns / 1_000_000_000) as libc::time_t,
        tv_nsec: (clock_ns % 1_000_000_000) as libc::c_long,
    };
    // SAFETY: a valid timespec.
    if unsafe { libc::clock_settime(libc::CLOCK_REALTIME, &now) } != 0 {
        let e = std::io::Error::last_os_error();
        warnings.push(format!("set the clock: {e}"));
    }
    if let Err(e) = reseed(seed) {
        warnings.push(format!("reseed the RNG: {e}"));
    }
    warnings
}

/// `RNDADDENTROPY` with `seed`, credited in full, then `RNDRESEEDCRNG`: the
/// kernel's generator reseeds now rather than at its next interval.
fn reseed(seed: &str) -> std::io::Result<()> {
    const RNDADDENTROPY: libc::c_ulong = 0x4008_5203;
    const RNDRESEEDCRNG: libc::c_ulong = 0x5207;
    let bytes: Vec<u8> = (0..seed.len() / 2)
        .filter_map(|i| u8::from_str_radix(seed.get(2 * i..2 * i + 2)?, 16).ok())
        .collect();
    // struct rand_pool_info { int entropy_count; int buf_size; __u32 buf[]; }
    let mut info = Vec::with_capacity(8 + bytes.len());
    info.extend_from_slice(&((bytes.len() * 8) as i32).to_ne_bytes());
    info.extend_from_slice(&(bytes.len() as i32).to_ne_bytes());
    info.extend_from_slice(&bytes);
    let random = std::fs::File::open("/dev/urandom")?;
    let fd = std::os::fd::AsRawFd::as_raw_fd(&random);
    // SAFETY: `info` is a rand_pool_info of `bytes.len()` bytes, alive for
    // the call; RNDRESEEDCRNG takes no argument.
    unsafe {
        if libc::ioctl(fd, RNDADDENTROPY, info.as_ptr()) != 0 || libc::ioctl(fd, RNDRESEEDCRNG) != 0
        {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Notes how much memory is available now (see [`GuestMemory`]).
pub fn sample_memory() {
    if let Some(kb) = meminfo("MemAvailable:") {
        MIN_AVAILABLE_KB.fetch_min(kb, Ordering::Relaxed);
    }
}

fn meminfo(field: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with(field))?;
    line[field.len()..].split_whitespace().next()?.parse().ok()
}

fn memory_facts() -> Option<GuestMemory> {
    sample_memory();
    let agent_peak_rss_kb = std::fs::read_to_string("/proc/self/status")
        .ok()?
        .lines()
        .find_map(|l| {
            l.strip_prefix("VmHWM:")?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })?;
    // SAFETY: getrusage fills the zeroed struct.
    let children_peak_rss_kb = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage);
        usage.ru_maxrss.max(0) as u64
    };
    Some(GuestMemory {
        total_kb: meminfo("MemTotal:")?,
        min_available_kb: MIN_AVAILABLE_KB.load(Ordering::Relaxed),
        agent_peak_rss_kb,
        children_peak_rss_kb,
    })
}

pub fn kernel_facts() -> KernelFacts {
    // SAFETY: uname fills the zeroed struct with NUL-terminated strings.
    let (release, arch) = unsafe {
        let mut u: libc::utsname = std::mem::zeroed();
        if libc::uname(&mut u) == 0 {
            let s = |f: &[libc::c_char]| CStr::from_ptr(f.as_ptr()).to_string_lossy().into_owned();
            (s(&u.release), s(&u.machine))
        } else {
            (String::new(), String::new())
        }
    };
    KernelFacts {
        release,
        arch,
        btf: Path::new("/sys/kernel/btf/vmlinux").exists(),
        bpf: None,
        modules: Vec::new(),
        memory: memory_facts(),
    }
}

/// Flushes file systems and resets the machine. A reset rather than a power
/// off: QEMU's `-no-reboot` turns it into an exit, and unlike power-off it
/// needs no ACPI in the kernel. Never returns.
pub fn reset_machine() -> ! {
    // SAFETY: plain syscalls.
    unsafe {
        libc::sync();
        libc::reboot(libc::RB_AUTOBOOT);
    }
    let e = std::io::Error::last_os_error();
    eprintln!("bpfcompat-guest: reboot failed: {e}");
    if std::process::id() != 1 {
        std::process::exit(1);
    }
    loop {
        // SAFETY: pause just sleeps until a signal.
        unsafe { libc::pause() };
    }
}
