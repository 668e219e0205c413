//! Choosing the accelerator: KVM only after a guest has run code under it.
//!
//! Some hosts (nested or paravirtual KVM) open `/dev/kvm`, create VMs and
//! even start a paused KVM QEMU, yet never execute a guest instruction: every
//! boot then waits for its timeout. So `auto` boots a 64 KiB firmware under
//! KVM, with the very CPU options the real boots use, that writes a marker to
//! the first serial port and leaves through `isa-debug-exit`; only a marker
//! seen within [`PROBE_DEADLINE`] makes KVM the choice. The answer is kept
//! per boot of the host and QEMU binary, so it is paid once, not per kernel.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::report::Accel;

/// How long the probe guest may take to print its marker. QEMU starts and
/// runs it in tens of milliseconds under KVM or TCG.
pub const PROBE_DEADLINE: Duration = Duration::from_secs(2);

const MARKER: &[u8] = b"bpfcompat-probe-ok\n";

/// The options that select an accelerator and its CPU model, shared by the
/// probe and every boot so the probe proves what the boots will use.
pub(super) fn accel_args(accel: Accel) -> [&'static str; 4] {
    match accel {
        Accel::Kvm => ["-accel", "kvm", "-cpu", "host"],
        // microvm is reported to hang without KVM; `pc` is the default.
        // Keep cx16 (in `max`): turning it off changes verdicts.
        Accel::Tcg => ["-accel", "tcg", "-cpu", "max"],
    }
}

/// Real-mode code at the reset vector: print [`MARKER`] on COM1, then write
/// to the `isa-debug-exit` port so QEMU exits by itself.
fn firmware() -> Vec<u8> {
    const MSG_AT: u8 = 22;
    #[rustfmt::skip]
    let code: [u8; MSG_AT as usize] = [
        0xBA, 0xF8, 0x03,       // mov dx, 0x3f8      (COM1)
        0xBE, MSG_AT, 0x00,     // mov si, MSG_AT
        0x2E, 0xAC,             // next: lodsb cs:[si]
        0x84, 0xC0,             // test al, al
        0x74, 0x03,             // jz done
        0xEE,                   // out dx, al
        0xEB, 0xF7,             // jmp next
        0xB0, 0x00,             // done: mov al, 0
        0xE6, 0xF4,             // out 0xf4, al       (isa-debug-exit)
        0xF4,                   // halt: hlt
        0xEB, 0xFD,             // jmp halt
    ];
    // Filled with hlt; 64 KiB is the smallest firmware QEMU maps, at
    // 0xF0000 and just below 4 GiB.
    let mut image = vec![0xF4; 64 << 10];
    image[..code.len()].copy_from_slice(&code);
    let msg = &mut image[usize::from(MSG_AT)..];
    msg[..MARKER.len()].copy_from_slice(MARKER);
    msg[MARKER.len()] = 0;
    // The reset vector (F000:FFF0): jmp far F000:0000, the code above.
    image[0xFFF0..0xFFF5].copy_from_slice(&[0xEA, 0x00, 0x00, 0x00, 0xF0]);
    image
}

/// Runs the probe guest under `accel`; how long it took to print its
/// marker, or why it did not.
pub fn probe(qemu: &Path, accel: Accel, deadline: Duration) -> Result<Duration, String> {
    let dir = tempfile::Builder::new()
        .prefix("bpfcompat-probe-")
        .tempdir()
        .map_err(|e| format!("cannot create a directory for the probe guest ({e})"))?;
    let bios = dir.path().join("probe.bin");
    std::fs::write(&bios, firmware())
        .map_err(|e| format!("cannot write the probe guest {} ({e})", bios.display()))?;
    let start = Instant::now();
    let mut child = Command::new(qemu)
        .args([
            "-nodefaults",
            "-no-user-config",
            "-no-reboot",
            "-display",
            "none",
        ])
        .args(accel_args(accel))
        .args(["-m", "16", "-serial", "stdio"])
        .args(["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"])
        .arg("-bios")
        .arg(&bios)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {} ({e})", qemu.display()))?;
    let (seen_tx, seen_rx) = mpsc::channel();
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let reader = std::thread::spawn(move || {
        let mut seen = Vec::new();
        let mut buf = [0u8; 256];
        while let Ok(n @ 1..) = stdout.read(&mut buf) {
            seen.extend_from_slice(&buf[..n]);
            if seen.windows(MARKER.len()).any(|w| w == MARKER) {
                let _ = seen_tx.send(true);
                return;
            }
        }
        let _ = seen_tx.send(false);
    });
    // Some(true): the marker; Some(false): QEMU closed its output (exited)
    // without it; None: the deadline passed with the guest silent.
    let seen = seen_rx.recv_timeout(deadline).ok();
    let took = start.elapsed();
    let _ = child.kill();
    let _ = child.wait();
    let _ = reader.join();
    if seen == Some(true) {
        return Ok(took);
    }
    let mut said = String::new();
    if let Some(mut stderr) = child.stderr.take() {
        let _ = stderr.read_to_string(&mut said);
    }
    let said = said
        .lines()
        .map(|l| {
            let l = l.trim_start_matches("qemu-system-x86_64: ");
            l.trim_start_matches("error: ").trim()
        })
        .find(|l| !l.is_empty() && !l.starts_with("terminating on signal"));
    let name = accel.to_string().to_uppercase();
    Err(match (seen, said) {
        (Some(_), Some(said)) => format!("QEMU could not run a guest under {name}: {said}"),
        (Some(_), None) => format!("QEMU exited before a guest ran under {name}"),
        (None, _) => format!(
            "{name} accepts a guest but ran no guest code in {} s",
            deadline.as_secs_f64()
        ),
    })
}

/// The probe's verdict on KVM for one boot of the host and one QEMU binary.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct Remembered {
    key: String,
    /// The probe's time in milliseconds, or why KVM ran nothing.
    kvm: Result<u64, String>,
}

/// Everything the answer depends on: the host's boot (a reboot or a new
/// kernel module can change it) and the exact QEMU binary.
fn probe_key(qemu: &Path) -> Option<String> {
    let boot_id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let meta = std::fs::metadata(qemu).ok()?;
    let modified = meta
        .modified()
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?;
    Some(format!(
        "{} {} {} {}",
        boot_id.trim(),
        qemu.display(),
        meta.len(),
        modified.as_nanos()
    ))
}

/// Probes KVM, or reads the answer remembered in `state` for this boot and
/// QEMU. Returns the probe's result and whether it was remembered.
pub fn probe_kvm_cached(qemu: &Path, state: &Path) -> (Result<Duration, String>, bool) {
    let key = probe_key(qemu);
    let remembered = std::fs::read(state)
        .ok()
        .and_then(|b| serde_json::from_slice::<Remembered>(&b).ok())
        .filter(|r| key.as_ref() == Some(&r.key));
    if let Some(r) = remembered {
        return (r.kvm.map(Duration::from_millis), true);
    }
    let result = probe(qemu, Accel::Kvm, PROBE_DEADLINE);
    if let Some(key) = key {
        let record = Remembered {
            key,
            kvm: result.clone().map(|d| d.as_millis() as u64),
        };
        // Only a cache: a failure to remember costs another probe next time.
        let _ = remember(state, &record);
    }
    (result, false)
}

fn remember(state: &Path, record: &Remembered) -> std::io::Result<()> {
    let dir = state
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_owned);
    std::fs::create_dir_all(&dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(&dir)?;
    serde_json::to_writer(&mut tmp, record)?;
    tmp.persist(state)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn qemu() -> PathBuf {
        super::super::find_on_path(super::super::QEMU).expect("QEMU is installed for the tests")
    }

    #[test]
    fn the_probe_guest_runs_under_tcg() {
        let took = probe(&qemu(), Accel::Tcg, PROBE_DEADLINE).expect("TCG always runs guests");
        assert!(took < PROBE_DEADLINE);
    }

    /// A QEMU that starts its guest paused is what a KVM that accepts VMs
    /// but never runs them looks like from outside.
    #[test]
    fn a_guest_that_never_runs_fails_the_probe_at_its_deadline() {
        let dir = tempfile::tempdir().unwrap();
        let paused = dir.path().join("qemu-paused");
        std::fs::write(
            &paused,
            format!("#!/bin/sh\nexec {} -S \"$@\"\n", qemu().display()),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&paused, std::fs::Permissions::from_mode(0o755)).unwrap();
        let start = Instant::now();
        let why = probe(&paused, Accel::Tcg, Duration::from_millis(700)).unwrap_err();
        assert!(why.contains("ran no guest code in 0.7 s"), "{why}");
        // Bounded, not timed: a loaded host starts QEMU slowly.
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{:?}",
            start.elapsed()
        );
    }

    #[test]
    fn a_qemu_that_dies_says_why() {
        let why = probe(Path::new("/bin/false"), Accel::Kvm, PROBE_DEADLINE).unwrap_err();
        assert_eq!(why, "QEMU exited before a guest ran under KVM");
    }

    #[test]
    fn the_answer_is_remembered_per_boot_and_binary() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("accel-probe.json");
        let (first, remembered) = probe_kvm_cached(Path::new("/bin/false"), &state);
        assert!(first.is_err() && !remembered);
        let (second, remembered) = probe_kvm_cached(Path::new("/bin/false"), &state);
        assert!(remembered);
        assert_eq!(first, second);
        // Another binary is another question.
        let (_, remembered) = probe_kvm_cached(Path::new("/bin/true"), &state);
        assert!(!remembered);
    }
}
