//! `bpfcompat doctor`: what this host gives a run — QEMU, KVM and the
//! accelerator a run would choose, with its reason and where it is kept.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::arch::Arch;
use crate::boot::qemu::{self, AccelChoice, Qemu};

pub struct DoctorOptions {
    pub cache_dir: PathBuf,
    /// Forget the remembered verdict on KVM first, so it is found anew.
    pub forget_accel: bool,
}

pub fn run(options: &DoctorOptions) -> anyhow::Result<u8> {
    let state = options.cache_dir.join(qemu::ACCEL_STATE_FILE);
    if options.forget_accel {
        let qemu = Qemu::detect(Arch::host(), AccelChoice::Tcg, &state)?;
        let forgot = qemu
            .memory
            .forget()
            .with_context(|| format!("cannot remove {}", state.display()))?;
        println!(
            "{}",
            if forgot {
                "forgot the remembered accelerator verdict"
            } else {
                "no accelerator verdict was remembered"
            }
        );
    }
    let qemu = Qemu::detect(Arch::host(), AccelChoice::Auto, &state)?;
    println!("qemu:        {} ({})", qemu.binary.display(), qemu.version);
    for arch in Arch::ALL.into_iter().filter(|a| *a != Arch::host()) {
        // Only a matrix with such kernels needs it.
        match Qemu::detect(arch, AccelChoice::Tcg, &state) {
            Ok(other) => println!(
                "{:<12} {} ({}), under TCG",
                format!("{arch} qemu:"),
                other.binary.display(),
                other.version
            ),
            Err(e) => println!("{:<12} {e}", format!("{arch} qemu:")),
        }
    }
    println!("/dev/kvm:    {}", kvm_device(Path::new("/dev/kvm")));
    println!(
        "accelerator: {} ({})",
        qemu.accel.accel.to_string().to_uppercase(),
        qemu.accel.reason
    );
    println!(
        "remembered:  {} until the host reboots or QEMU changes; `bpfcompat doctor \
         --forget-accel` forgets it",
        state.display()
    );
    println!("cache:       {}", options.cache_dir.display());
    Ok(0)
}

/// Whether this user can use `/dev/kvm`, and what to do if not.
fn kvm_device(path: &Path) -> String {
    match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
    {
        Ok(_) => "present, read-write".to_owned(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            "absent (no KVM on this host: guests run under TCG)".to_owned()
        }
        Err(e) => format!(
            "not usable by this user ({e}); GitHub runners: a udev rule KERNEL==\"kvm\", \
             GROUP=\"kvm\", MODE=\"0666\""
        ),
    }
}
