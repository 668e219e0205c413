//! What a PID 1 does before and after the real work: file systems, the
//! loopback interface, facts about the kernel, and resetting the machine.

use std::ffi::{CStr, CString};
use std::path::Path;

use bpfcompat_proto::KernelFacts;

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
