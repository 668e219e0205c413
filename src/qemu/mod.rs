//! Finding QEMU, choosing the accelerator, and booting one kernel.

mod console;
mod vm;

use std::path::{Path, PathBuf};
use std::process::Command;

use thiserror::Error;

use crate::report::Accel;

pub use vm::{boot, BootRecord, BootSpec, Ending};

const QEMU: &str = "qemu-system-x86_64";

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AccelChoice {
    /// KVM when /dev/kvm is usable, otherwise TCG.
    Auto,
    Kvm,
    Tcg,
}

#[derive(Debug, Error)]
pub enum QemuError {
    #[error(
        "{QEMU} was not found on PATH; install it (Debian/Ubuntu: `apt-get install qemu-system-x86`, \
         or run scripts/install-deps.sh)"
    )]
    NotFound,
    #[error(
        "--accel kvm was requested but KVM is not usable: {0}. Check that /dev/kvm exists and is \
         read-write for this user (GitHub runners: add a udev rule \
         KERNEL==\"kvm\", GROUP=\"kvm\", MODE=\"0666\"), or use --accel auto"
    )]
    KvmUnavailable(String),
    #[error("cannot start {QEMU}: {0}")]
    Spawn(std::io::Error),
    #[error("result channel for {kernel}: {source}")]
    Channel {
        kernel: String,
        source: std::io::Error,
    },
    #[error("cannot write the console log {}: {err}", path.display())]
    ConsoleLog { path: PathBuf, err: std::io::Error },
}

#[derive(Debug, Clone)]
pub struct Qemu {
    pub binary: PathBuf,
    pub version: String,
    pub accel: Accel,
    /// Why KVM was not used, when it was not; shown to the user once.
    pub kvm_unavailable: Option<String>,
}

impl Qemu {
    pub fn detect(choice: AccelChoice) -> Result<Qemu, QemuError> {
        let binary = find_on_path(QEMU).ok_or(QemuError::NotFound)?;
        let output = Command::new(&binary)
            .arg("--version")
            .output()
            .map_err(QemuError::Spawn)?;
        let version = String::from_utf8_lossy(&output.stdout)
            .lines()
            .next()
            .unwrap_or_default()
            .trim()
            .to_owned();
        let (accel, kvm_unavailable) = match choice {
            AccelChoice::Tcg => (Accel::Tcg, None),
            _ => match kvm_usable(&binary) {
                Ok(()) => (Accel::Kvm, None),
                Err(why) if choice == AccelChoice::Kvm => {
                    return Err(QemuError::KvmUnavailable(why))
                }
                Err(why) => (Accel::Tcg, Some(why)),
            },
        };
        Ok(Qemu {
            binary,
            version,
            accel,
            kvm_unavailable,
        })
    }

    /// The accelerator-specific part of the command line.
    fn accel_args(&self) -> [&'static str; 4] {
        match self.accel {
            Accel::Kvm => ["-accel", "kvm", "-cpu", "host"],
            // microvm is reported to hang without KVM; `pc` is the default.
            // Keep cx16 (in `max`): turning it off changes verdicts.
            Accel::Tcg => ["-accel", "tcg", "-cpu", "max"],
        }
    }
}

/// KVM is usable when /dev/kvm opens read-write, a VM can be created, *and*
/// QEMU can bring up a KVM vCPU: a readable device node alone is the classic
/// silent-slowness trap, and nested hosts exist where the first two work but
/// QEMU aborts setting up the vCPU (seen here: "failed to set MSR 0x10a").
fn kvm_usable(qemu: &Path) -> Result<(), String> {
    use std::os::fd::AsRawFd;
    const KVM_CREATE_VM: libc::c_ulong = 0xAE01;
    let dev = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .map_err(|e| format!("cannot open /dev/kvm read-write ({e})"))?;
    // SAFETY: KVM_CREATE_VM takes an integer machine type and returns a new
    // fd we own and close at once.
    let vm = unsafe { libc::ioctl(dev.as_raw_fd(), KVM_CREATE_VM, 0) };
    if vm < 0 {
        return Err(format!(
            "KVM_CREATE_VM failed ({})",
            std::io::Error::last_os_error()
        ));
    }
    // SAFETY: vm is a valid fd returned by the ioctl above.
    unsafe { libc::close(vm) };
    qemu_starts_kvm_guest(qemu)
}

/// Starts QEMU paused (`-S`) under KVM and asks its monitor to quit: QEMU
/// only reads the monitor after the accelerator and vCPUs are set up, so a
/// clean exit means a KVM guest can run.
fn qemu_starts_kvm_guest(qemu: &Path) -> Result<(), String> {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = Command::new(qemu)
        .args(["-accel", "kvm", "-cpu", "host", "-S", "-m", "64"])
        .args([
            "-nodefaults",
            "-no-user-config",
            "-display",
            "none",
            "-monitor",
            "stdio",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {QEMU}: {e}"))?;
    // A QEMU that died already makes this write fail; the status tells why.
    let _ = child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(b"quit\n");
    // It answers in milliseconds either way; never let a wedged probe hang
    // the run.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(20))
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{QEMU} did not start a paused KVM guest within 10 s"
                ));
            }
        }
    };
    if status.success() {
        return Ok(());
    }
    let mut said = String::new();
    if let Some(mut stderr) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut stderr, &mut said);
    }
    Err(format!(
        "{QEMU} cannot start a KVM guest here ({})",
        said.lines().next().unwrap_or("no message").trim()
    ))
}

pub fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}
