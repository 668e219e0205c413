//! Finding QEMU, choosing the accelerator, and booting one kernel.

mod accel;
mod console;
mod job;
mod monitor;
mod vm;

use std::path::{Path, PathBuf};
use std::process::Command;

use thiserror::Error;

use crate::arch::Arch;
use crate::report::{Accel, AccelUse};

pub use job::{Job, JobRecord, Start, MAX_SERIAL_JOB_BYTES};
pub use vm::{boot, kernel_cmdline, BootRecord, BootSpec, Ending};

/// Where the verdict on KVM is remembered, in the cache directory
/// (`bpfcompat doctor` shows it, `--forget-accel` removes it).
pub const ACCEL_STATE_FILE: &str = "accel.json";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccelChoice {
    /// KVM when a probe guest runs under it on this host, otherwise TCG.
    Auto,
    Kvm,
    Tcg,
}

#[derive(Debug, Error)]
pub enum QemuError {
    #[error(
        "{} was not found on PATH; install it (Debian/Ubuntu: `apt-get install {}`, \
         or run scripts/install-deps.sh)",
        arch.qemu(),
        arch.qemu_package()
    )]
    NotFound { arch: Arch },
    #[error(
        "--accel kvm was requested but KVM cannot run guests here: {0}. Check that /dev/kvm \
         exists and is read-write for this user (GitHub runners: add a udev rule \
         KERNEL==\"kvm\", GROUP=\"kvm\", MODE=\"0666\"), or use --accel auto to fall back to TCG"
    )]
    KvmUnavailable(String),
    #[error("cannot start QEMU: {0}")]
    Spawn(std::io::Error),
    #[error("result channel for {kernel}: {err}")]
    Channel { kernel: String, err: std::io::Error },
    #[error("cannot write the console log {}: {err}", path.display())]
    ConsoleLog { path: PathBuf, err: std::io::Error },
}

#[derive(Debug, Clone)]
pub struct Qemu {
    /// The architecture of the guests it runs.
    pub arch: Arch,
    pub binary: PathBuf,
    pub version: String,
    /// What `--accel` settled on for this run.
    pub accel: AccelUse,
    /// Where the verdict on KVM is remembered for this boot of the host.
    pub memory: accel::Memory,
}

impl Qemu {
    /// Finds the QEMU of `arch` and settles the accelerator. `probe_state`
    /// is where the KVM probe's answer is remembered for this boot of the
    /// host. KVM runs only guests of the host's architecture: another's
    /// run under TCG whatever `choice` says.
    pub fn detect(arch: Arch, choice: AccelChoice, probe_state: &Path) -> Result<Qemu, QemuError> {
        let binary = find_on_path(arch.qemu()).ok_or(QemuError::NotFound { arch })?;
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
        let memory = accel::Memory::new(probe_state, &binary, &version);
        let accel = if arch == Arch::host() {
            choose(choice, &binary, &memory)?
        } else {
            AccelUse {
                accel: Accel::Tcg,
                reason: format!(
                    "{arch} guests on this {} host run under TCG (KVM runs only the host's \
                     architecture)",
                    Arch::host()
                ),
            }
        };
        Ok(Qemu {
            arch,
            binary,
            version,
            accel,
            memory,
        })
    }

    /// A kernel's KVM guest printed nothing although the probe ran: `why`
    /// is remembered, so later runs in this boot of the host use TCG from
    /// the start instead of waiting for the silence again.
    pub fn remember_silent(&self, why: &str) {
        if let Some(mut verdict) = self.memory.recall() {
            verdict.silent = Some(why.to_owned());
            self.memory.keep(&verdict);
        }
    }
}

fn choose(choice: AccelChoice, qemu: &Path, memory: &accel::Memory) -> Result<AccelUse, QemuError> {
    let tcg = |reason: String| AccelUse {
        accel: Accel::Tcg,
        reason,
    };
    if choice == AccelChoice::Tcg {
        return Ok(tcg("--accel tcg".to_owned()));
    }
    let (verdict, remembered) = accel::verdict(qemu, Arch::host(), memory);
    let when = if remembered {
        " (found earlier in this boot of the host)"
    } else {
        ""
    };
    // `--accel kvm` insists: only the probe's answer can refuse it.
    if let (Some(why), AccelChoice::Auto) = (verdict.silent, choice) {
        return Ok(tcg(format!("{why}{when}: using TCG")));
    }
    match verdict.probe {
        Ok(ms) => Ok(AccelUse {
            accel: Accel::Kvm,
            reason: format!("a probe guest ran under KVM in {ms} ms{when}"),
        }),
        Err(why) if choice == AccelChoice::Kvm => Err(QemuError::KvmUnavailable(why)),
        Err(why) => Ok(tcg(format!("{why}{when}: using TCG"))),
    }
}

pub fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}
