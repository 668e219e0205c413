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
use std::time::{Duration, Instant, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::arch::Arch;
use crate::report::Accel;

/// How long the probe guest may take to print its marker. QEMU starts and
/// runs it in tens of milliseconds under KVM or TCG.
pub const PROBE_DEADLINE: Duration = Duration::from_secs(2);

const MARKER: &[u8] = b"bpfcompat-probe-ok\n";

/// The options that select an accelerator and its CPU model, shared by the
/// probe and every boot so the probe proves what the boots will use.
/// arm64 guests run on the virt machine (the PL011s, GIC and PSCI every
/// arm64 kernel knows); x86 on QEMU's default `pc`.
pub(super) fn accel_args(arch: Arch, accel: Accel) -> Vec<&'static str> {
    let mut args = match arch {
        // microvm is reported to hang without KVM; `pc` is the default.
        Arch::X86_64 => vec![],
        Arch::Arm64 => vec!["-machine", "virt"],
    };
    args.extend(match accel {
        Accel::Kvm => ["-accel", "kvm", "-cpu", "host"],
        // Keep cx16 (in `max`): turning it off changes verdicts.
        Accel::Tcg => ["-accel", "tcg", "-cpu", "max"],
    });
    args
}

/// The probe guest of `arch`, and the options that let it end QEMU.
fn probe_guest(arch: Arch) -> (Vec<u8>, &'static [&'static str]) {
    match arch {
        Arch::X86_64 => (
            firmware(),
            &["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"],
        ),
        Arch::Arm64 => (arm64_firmware(), &[]),
    }
}

/// The arm64 probe, at the virt machine's flash (address 0, where its CPU
/// starts): writes [`MARKER`] to the first PL011 and powers off through
/// PSCI SYSTEM_OFF over HVC (QEMU's and KVM's own PSCI). Assembled from
/// the listing with GNU as, `ld -Ttext=0` and `objcopy -O binary`.
fn arm64_firmware() -> Vec<u8> {
    #[rustfmt::skip]
    let code: &[u32] = &[
        0xd2a12001, // mov  x1, #0x9000000 (PL011 UART0 data register)
        0x10000142, // adr  x2, msg (at 0x2c)
        0x38401443, // 1: ldrb w3, [x2], #1
        0x34000063, // cbz  w3, 2f
        0xb9000023, // str  w3, [x1]
        0x17fffffd, // b    1b
        0xd2b08000, // 2: mov x0, #0x84000000
        0xf2800100, // movk x0, #0x8 (PSCI SYSTEM_OFF)
        0xd4000002, // hvc  #0
        0xd503207f, // 3: wfi
        0x17ffffff, // b    3b
    ];
    let mut image: Vec<u8> = code.iter().flat_map(|w| w.to_le_bytes()).collect();
    image.extend_from_slice(MARKER);
    image.push(0);
    image
}

/// Code at the reset vector that does what a kernel's early boot does before
/// it prints: build identity-mapped page tables in RAM, enable PAE, long
/// mode and paging, enter 64-bit code through a GDT, then print [`MARKER`]
/// on COM1 and write to the `isa-debug-exit` port so QEMU exits by itself.
/// Some paravirtual KVM hosts run real-mode code and nothing past paging;
/// this proves the part a Linux guest needs (assembled from the listing in
/// the comments with GNU as, `ld -Ttext=0 --oformat binary`).
fn firmware() -> Vec<u8> {
    #[rustfmt::skip]
    let code: &[u8] = &[
        // .code16, at F000:0000
        0xFA,                                     // cli
        0x31, 0xC0, 0x8E, 0xC0,                   // xor ax, ax; mov es, ax
        0xBF, 0x00, 0x10,                         // mov di, 0x1000
        0xB9, 0x00, 0x0C,                         // mov cx, 0xc00
        0x66, 0x31, 0xC0, 0xFC,                   // xor eax, eax; cld
        0x66, 0xF3, 0xAB,                         // rep stosd: zero 0x1000-0x3fff
        0x26, 0x66, 0xC7, 0x06, 0x00, 0x10,       // mov dword es:[0x1000], 0x2003 (PML4)
        0x03, 0x20, 0x00, 0x00,
        0x26, 0x66, 0xC7, 0x06, 0x00, 0x20,       // mov dword es:[0x2000], 0x3003 (PDPT)
        0x03, 0x30, 0x00, 0x00,
        0x26, 0x66, 0xC7, 0x06, 0x00, 0x30,       // mov dword es:[0x3000], 0x83 (2 MiB page)
        0x83, 0x00, 0x00, 0x00,
        0x0F, 0x20, 0xE0, 0x66, 0x83, 0xC8, 0x20, // mov eax, cr4; or eax, 0x20 (PAE)
        0x0F, 0x22, 0xE0,                         // mov cr4, eax
        0x66, 0xB8, 0x00, 0x10, 0x00, 0x00,       // mov eax, 0x1000
        0x0F, 0x22, 0xD8,                         // mov cr3, eax
        0x66, 0xB9, 0x80, 0x00, 0x00, 0xC0,       // mov ecx, 0xc0000080 (EFER)
        0x0F, 0x32,                               // rdmsr
        0x66, 0x0D, 0x00, 0x01, 0x00, 0x00,       // or eax, 0x100 (LME)
        0x0F, 0x30,                               // wrmsr
        0x2E, 0x66, 0x0F, 0x01, 0x16, 0x98, 0x00, // lgdt cs:[gdtr]
        0x0F, 0x20, 0xC0,                         // mov eax, cr0
        0x66, 0x0D, 0x01, 0x00, 0x00, 0x80,       // or eax, 0x80000001 (PG, PE)
        0x0F, 0x22, 0xC0,                         // mov cr0, eax
        0x66, 0xEA, 0x6E, 0x00, 0x0F, 0x00,       // jmp far 0x08:0xf006e
        0x08, 0x00,
        // .code64, at 0x6e
        0x66, 0xBA, 0xF8, 0x03,                   // mov dx, 0x3f8 (COM1)
        0x48, 0x8D, 0x35, 0x25, 0x00, 0x00, 0x00, // lea rsi, [rip + msg]
        0xAC,                                     // next: lodsb
        0x84, 0xC0, 0x74, 0x03,                   // test al, al; jz done
        0xEE,                                     // out dx, al
        0xEB, 0xF8,                               // jmp next
        0xB0, 0x00, 0xE6, 0xF4,                   // done: mov al, 0; out 0xf4, al
        0xF4, 0xEB, 0xFD,                         // halt: hlt; jmp halt
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // gdt (at 0x88): null
        0x00, 0x00, 0x00, 0x00, 0x00, 0x9B, 0x20, 0x00, // 64-bit code, accessed
        0x0F, 0x00, 0x88, 0x00, 0x0F, 0x00,       // gdtr (at 0x98): limit 15, base 0xf0088
        // msg (at 0x9e)
    ];
    // Filled with hlt; 64 KiB is the smallest firmware QEMU maps, at
    // 0xF0000 and just below 4 GiB.
    let mut image = vec![0xF4; 64 << 10];
    image[..code.len()].copy_from_slice(code);
    let msg = &mut image[code.len()..];
    msg[..MARKER.len()].copy_from_slice(MARKER);
    msg[MARKER.len()] = 0;
    // The reset vector (F000:FFF0): jmp far F000:0000, the code above.
    image[0xFFF0..0xFFF5].copy_from_slice(&[0xEA, 0x00, 0x00, 0x00, 0xF0]);
    image
}

/// Runs the probe guest under `accel`; how long it took to print its
/// marker, or why it did not.
pub fn probe(
    qemu: &Path,
    arch: Arch,
    accel: Accel,
    deadline: Duration,
) -> Result<Duration, String> {
    let dir = tempfile::Builder::new()
        .prefix("bpfcompat-probe-")
        .tempdir()
        .map_err(|e| format!("cannot create a directory for the probe guest ({e})"))?;
    let bios = dir.path().join("probe.bin");
    let (firmware, exit) = probe_guest(arch);
    std::fs::write(&bios, firmware)
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
        .args(accel_args(arch, accel))
        .args(["-m", "16", "-serial", "stdio"])
        .args(exit)
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
            let l = l.trim_start_matches(&format!("{}: ", arch.qemu()));
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

/// What is known about KVM on this host: the probe's answer and, once a
/// real kernel stayed silent under KVM although the probe ran, why.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Verdict {
    /// The probe's time in milliseconds, or why KVM ran nothing.
    pub probe: Result<u64, String>,
    /// A kernel's KVM guest printed nothing (the silence fallback): why.
    #[serde(default)]
    pub silent: Option<String>,
}

/// A [`Verdict`] for one boot of the host, QEMU and host kernel.
#[derive(Debug, Serialize, Deserialize)]
struct Remembered {
    key: String,
    verdict: Verdict,
}

/// Where the verdict on KVM is kept, and what it is valid for.
#[derive(Debug, Clone)]
pub struct Memory {
    pub state: PathBuf,
    /// `None` when the host's boot cannot be told: nothing is remembered.
    key: Option<String>,
}

impl Memory {
    /// The verdict's place for `qemu` (of `version`) in `state`. Everything
    /// the answer depends on is in the key: the host's boot (a reboot or a
    /// new kernel module can change it), the host kernel, the exact QEMU
    /// binary and its version.
    pub fn new(state: &Path, qemu: &Path, version: &str) -> Memory {
        let key = (|| {
            let boot_id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
            let host = std::fs::read_to_string("/proc/sys/kernel/osrelease").ok()?;
            let meta = std::fs::metadata(qemu).ok()?;
            let modified = meta.modified().ok()?.duration_since(UNIX_EPOCH).ok()?;
            Some(format!(
                "{} {} {} {} {} {version}",
                boot_id.trim(),
                host.trim(),
                qemu.display(),
                meta.len(),
                modified.as_nanos()
            ))
        })();
        Memory {
            state: state.to_owned(),
            key,
        }
    }

    /// The verdict remembered for this key, if any.
    pub fn recall(&self) -> Option<Verdict> {
        let bytes = std::fs::read(&self.state).ok()?;
        let r: Remembered = serde_json::from_slice(&bytes).ok()?;
        (self.key.as_ref() == Some(&r.key)).then_some(r.verdict)
    }

    /// Keeps `verdict`. Only a cache: a failure costs a probe next time.
    pub fn keep(&self, verdict: &Verdict) {
        let Some(key) = self.key.clone() else {
            return;
        };
        let record = Remembered {
            key,
            verdict: verdict.clone(),
        };
        let _ = write_atomically(&self.state, &record);
    }

    /// Forgets whatever was remembered; whether there was anything.
    pub fn forget(&self) -> std::io::Result<bool> {
        match std::fs::remove_file(&self.state) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// The remembered verdict, or a fresh probe's (then remembered). Returns
/// whether it was remembered.
pub fn verdict(qemu: &Path, arch: Arch, memory: &Memory) -> (Verdict, bool) {
    if let Some(verdict) = memory.recall() {
        return (verdict, true);
    }
    let verdict = Verdict {
        probe: probe(qemu, arch, Accel::Kvm, PROBE_DEADLINE).map(|d| d.as_millis() as u64),
        silent: None,
    };
    memory.keep(&verdict);
    (verdict, false)
}

fn write_atomically(state: &Path, record: &Remembered) -> std::io::Result<()> {
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
        qemu_of(Arch::host())
    }

    fn qemu_of(arch: Arch) -> PathBuf {
        super::super::find_on_path(arch.qemu()).expect("QEMU is installed for the tests")
    }

    /// Each architecture's probe prints its marker and ends QEMU itself.
    #[test]
    fn the_probe_guest_runs_under_tcg() {
        for arch in Arch::ALL {
            let took = probe(&qemu_of(arch), arch, Accel::Tcg, PROBE_DEADLINE)
                .unwrap_or_else(|why| panic!("TCG always runs the {arch} probe: {why}"));
            assert!(took < PROBE_DEADLINE, "{arch}: {took:?}");
        }
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
        let why = probe(
            &paused,
            Arch::host(),
            Accel::Tcg,
            Duration::from_millis(700),
        )
        .unwrap_err();
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
        let why = probe(
            Path::new("/bin/false"),
            Arch::host(),
            Accel::Kvm,
            PROBE_DEADLINE,
        )
        .unwrap_err();
        assert_eq!(why, "QEMU exited before a guest ran under KVM");
    }

    #[test]
    fn the_answer_is_remembered_per_boot_binary_and_version() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("accel.json");
        let memory = Memory::new(&state, Path::new("/bin/false"), "QEMU 10");
        let (first, remembered) = verdict(Path::new("/bin/false"), Arch::host(), &memory);
        assert!(first.probe.is_err() && !remembered);
        let (second, remembered) = verdict(Path::new("/bin/false"), Arch::host(), &memory);
        assert!(remembered);
        assert_eq!(first, second);
        // What the silence fallback found is kept beside the probe's answer.
        let silent = Verdict {
            silent: Some("the KVM guest of k printed nothing".into()),
            ..second
        };
        memory.keep(&silent);
        assert_eq!(memory.recall(), Some(silent));
        // Another binary or version is another question.
        let other = Memory::new(&state, Path::new("/bin/true"), "QEMU 10");
        assert_eq!(other.recall(), None);
        let upgraded = Memory::new(&state, Path::new("/bin/false"), "QEMU 11");
        assert_eq!(upgraded.recall(), None);
        assert!(memory.forget().unwrap());
        assert_eq!(memory.recall(), None);
        assert!(!memory.forget().unwrap());
    }

    /// The bytes in [`firmware`] are what its listing assembles to: the
    /// message lands where the `lea` points, the GDT where `lgdt` reads it.
    #[test]
    fn the_probe_firmware_is_laid_out_as_its_listing_says() {
        let image = firmware();
        assert_eq!(&image[0x9e..0x9e + MARKER.len()], MARKER);
        // lea rsi, [rip + 0x25] ends at 0x79.
        assert_eq!(0x79 + 0x25, 0x9e);
        assert_eq!(&image[0x98..0x9e], &[0x0F, 0x00, 0x88, 0x00, 0x0F, 0x00]);
        assert_eq!(image[0x6e..0x70], [0x66, 0xBA]);
    }
}
