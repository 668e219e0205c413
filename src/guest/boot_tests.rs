//! Boots every test kernel under QEMU with a generated initramfs and checks
//! what the agent reports. These are the proof that the initramfs, the agent
//! and the result channel work on real kernels, old and tiny ones included.
//!
//! The kernels come from `$BPFCOMPAT_TEST_KERNELS` (default
//! `../shared/kernels` from the project root). A missing kernel fails the
//! test: it never skips. Boots run one at a time so their timings mean
//! something on a 2-core machine; each prints its boot time.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use bpfcompat_proto::{self as proto, CheckOutcome, CommandOutcome, Outcome};

use super::cpio::Archive;
use super::{build_initramfs, CommandPayload};

/// Hard limit for one boot under TCG on a busy machine.
const BOOT_TIMEOUT: Duration = Duration::from_secs(240);

fn kernels_dir() -> PathBuf {
    let dir = std::env::var_os("BPFCOMPAT_TEST_KERNELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/kernels"));
    assert!(
        dir.is_dir(),
        "test kernels not found at {} (set BPFCOMPAT_TEST_KERNELS)",
        dir.display()
    );
    dir
}

fn kernel(file: &str) -> PathBuf {
    let path = kernels_dir().join(file);
    assert!(path.is_file(), "test kernel {} is missing", path.display());
    path
}

/// Builds the agent with the cargo running these tests (it is a separate
/// package, so `cargo test` does not build its binary) and returns its path.
fn agent() -> &'static Path {
    static AGENT: OnceLock<PathBuf> = OnceLock::new();
    AGENT.get_or_init(|| {
        if let Some(path) = std::env::var_os(super::AGENT_ENV) {
            return PathBuf::from(path);
        }
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let out = Command::new(cargo)
            .args([
                "build",
                "--quiet",
                "-p",
                "bpfcompat-guest",
                "--bin",
                super::AGENT_NAME,
                "--message-format=json",
            ])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stderr(Stdio::inherit())
            .output()
            .expect("run cargo to build the guest agent");
        assert!(out.status.success(), "building the guest agent failed");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["target"]["name"] == super::AGENT_NAME)
            .find_map(|v| v["executable"].as_str().map(PathBuf::from))
            .expect("cargo reported the agent's executable")
    })
}

struct Boot {
    result: Vec<u8>,
    console: String,
    /// Until the agent's READY line arrived.
    to_ready: Option<Duration>,
    /// Until QEMU exited.
    total: Duration,
}

/// One QEMU at a time: timings stay comparable and the machine usable.
static QEMU: Mutex<()> = Mutex::new(());

fn boot(kernel: &Path, initramfs: &[u8]) -> Boot {
    let _one = QEMU.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let initrd = dir.path().join("initramfs.cpio");
    std::fs::write(&initrd, initramfs).unwrap();
    let result = dir.path().join("result");
    let console = dir.path().join("console");
    let start = Instant::now();
    let mut qemu = Command::new("qemu-system-x86_64")
        .args(["-accel", "tcg", "-cpu", "max", "-m", "512", "-smp", "1"])
        .args(["-nodefaults", "-no-reboot", "-display", "none"])
        .arg("-kernel")
        .arg(kernel)
        .arg("-initrd")
        .arg(&initrd)
        .args(["-append", "console=ttyS0 panic=-1 loglevel=4"])
        .args([
            "-chardev",
            "stdio,id=con,signal=off",
            "-serial",
            "chardev:con",
        ])
        .arg("-chardev")
        .arg(format!("file,id=res,path={}", result.display()))
        .args(["-serial", "chardev:res"])
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&console).unwrap())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("qemu-system-x86_64 is installed (scripts/install-deps.sh)");
    let mut to_ready = None;
    let status = loop {
        if to_ready.is_none()
            && std::fs::read(&result).is_ok_and(|r| proto::ready_offset(&r).is_some())
        {
            to_ready = Some(start.elapsed());
        }
        if let Some(status) = qemu.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > BOOT_TIMEOUT {
            let _ = qemu.kill();
            let _ = qemu.wait();
            panic!(
                "{} did not finish within {BOOT_TIMEOUT:?}; console tail:\n{}",
                kernel.display(),
                tail(&std::fs::read_to_string(&console).unwrap_or_default())
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let total = start.elapsed();
    if let Some(keep) = std::env::var_os("BPFCOMPAT_TEST_KEEP_CONSOLE") {
        // Debugging aid: keep each boot's console log.
        let name = kernel.file_name().unwrap().to_string_lossy().into_owned();
        let _ = std::fs::create_dir_all(&keep);
        let _ = std::fs::copy(&console, Path::new(&keep).join(format!("{name}.console")));
    }
    let console = String::from_utf8_lossy(&std::fs::read(&console).unwrap()).into_owned();
    assert!(
        status.success(),
        "qemu failed ({status}); console:\n{}",
        tail(&console)
    );
    Boot {
        result: std::fs::read(&result).unwrap_or_default(),
        console,
        to_ready,
        total,
    }
}

fn tail(s: &str) -> &str {
    let mut start = s.len().saturating_sub(3000);
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

fn decode(boot: &Boot) -> Outcome {
    proto::decode_frame(&boot.result).unwrap_or_else(|e| {
        panic!(
            "no result frame ({e}); result port:\n{}\nconsole tail:\n{}",
            String::from_utf8_lossy(&boot.result),
            tail(&boot.console)
        )
    })
}

fn command_outcome(outcome: &Outcome) -> &CommandOutcome {
    assert_eq!(outcome.checks.len(), 1, "{outcome:#?}");
    let CheckOutcome::Command(c) = &outcome.checks[0];
    c
}

/// The command every kernel runs: the environment, the copied files, a
/// dynamically linked `--bin` with its own libraries, busybox applets, the
/// mounts, a background child that outlives bash, and a distinctive exit code.
const COMMAND: &str = r#"
echo "bin=$BPFCOMPAT_BIN"
echo "artifact=$BPFCOMPAT_ARTIFACT"
echo "root=$BPFCOMPAT_REMOTE_ROOT"
echo "home=$HOME pwd=$(pwd) uid=$(id -u) path=$PATH"
echo "artifact-content=$(cat "$BPFCOMPAT_ARTIFACT")"
"$BPFCOMPAT_BIN" --version | head -n1 | sed 's/^/bin-says=/'
echo "lo=$(cat /sys/class/net/lo/operstate 2>/dev/null; cat /sys/class/net/lo/flags 2>/dev/null)"
for fs in proc sysfs devtmpfs bpf tracefs debugfs cgroup2 tmpfs; do
  grep -q " $fs " /proc/mounts && echo "mounted=$fs"
done
echo "btf=$(test -e /sys/kernel/btf/vmlinux && echo yes || echo no)"
sleep 100 &
echo "to stderr" >&2
exit 42
"#;

fn check_kernel(kernel: &Path, release: &str, btf: bool) {
    let work = tempfile::tempdir().unwrap();
    let artifact = work.path().join("probe.bpf.o");
    std::fs::write(&artifact, "artifact bytes").unwrap();
    let zstd = Path::new("/usr/bin/zstd");
    assert!(
        zstd.is_file(),
        "install zstd (the dynamic --bin of this test)"
    );
    let payload = CommandPayload {
        command: COMMAND.into(),
        bin: Some(zstd.into()),
        artifact: Some(artifact),
    };
    let initramfs = build_initramfs(agent(), &payload).unwrap();
    let boot = boot(kernel, &initramfs);
    let outcome = decode(&boot);
    let name = kernel.file_name().unwrap().to_string_lossy();
    eprintln!(
        "BOOT {name}: READY after {:.2} s, QEMU exited after {:.2} s, initramfs {} KiB, \
         command {} ms, setup warnings {:?}",
        boot.to_ready.unwrap_or_default().as_secs_f64(),
        boot.total.as_secs_f64(),
        initramfs.len() / 1024,
        command_outcome(&outcome).duration_ms,
        outcome.setup_warnings,
    );
    eprintln!("{}", command_outcome(&outcome).stdout_tail.trim_end());
    assert_eq!(outcome.fatal, None);
    assert_eq!(outcome.kernel.release, release);
    assert_eq!(outcome.kernel.arch, "x86_64");
    assert_eq!(outcome.kernel.btf, btf, "btf flag of {release}");
    let c = command_outcome(&outcome);
    let stdout = &c.stdout_tail;
    assert_eq!(
        c.exit_code,
        Some(42),
        "{c:#?}\nconsole:\n{}",
        tail(&boot.console)
    );
    assert_eq!(c.signal, None);
    assert_eq!(c.error, None);
    assert_eq!(c.stderr_tail, "to stderr\n", "{c:#?}");
    for line in [
        "bin=/bpfcompat/bin/zstd\n",
        "artifact=/bpfcompat/artifact/probe.bpf.o\n",
        "root=/bpfcompat\n",
        "home=/root pwd=/root uid=0 path=/usr/local/sbin:",
        "artifact-content=artifact bytes\n",
        "bin-says=*** Zstandard",
        "mounted=proc\n",
        "mounted=sysfs\n",
        "mounted=tmpfs\n",
        "mounted=bpf\n",
        "mounted=tracefs\n",
    ] {
        assert!(stdout.contains(line), "{line:?} not in:\n{stdout}");
    }
    assert!(
        stdout.contains(&format!("btf={}\n", if btf { "yes" } else { "no" })),
        "{stdout}"
    );
    assert!(
        c.duration_ms < 30_000,
        "the background sleep must not hold the command: {c:#?}"
    );
    assert!(boot.to_ready.is_some(), "READY was seen before the frame");
}

#[test]
fn boots_debian_5_10() {
    check_kernel(
        &kernel("vmlinuz-5.10.0-46-cloud-amd64"),
        "5.10.0-46-cloud-amd64",
        true,
    );
}

#[test]
fn boots_debian_6_1() {
    check_kernel(
        &kernel("vmlinuz-6.1.0-47-cloud-amd64"),
        "6.1.0-47-cloud-amd64",
        true,
    );
}

#[test]
fn boots_debian_6_12() {
    check_kernel(
        &kernel("vmlinuz-6.12.107+deb13-cloud-amd64"),
        "6.12.107+deb13-cloud-amd64",
        true,
    );
}

#[test]
fn boots_tiny_6_1_without_btf() {
    check_kernel(&kernel("vmlinuz-6.1.192-tiny-nobtf"), "6.1.192", false);
}

#[test]
fn boots_debian_7_2_from_its_package() {
    let release = "7.2.13+deb14-cloud-amd64";
    let deb = kernel(&format!(
        "packages/linux-binary-{release}_7.2.13-1_amd64.deb"
    ));
    // Just enough extraction for this test; the real one is the kernel module's.
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new("dpkg-deb")
        .arg("-x")
        .arg(&deb)
        .arg(dir.path())
        .output()
        .expect("dpkg-deb is installed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let vmlinuz = dir
        .path()
        .join(format!("usr/lib/modules/{release}/vmlinuz"));
    // Named like the others in the timings and kept console logs.
    let named = dir.path().join(format!("vmlinuz-{release}"));
    std::fs::rename(&vmlinuz, &named).unwrap();
    check_kernel(&named, release, true);
}

/// A request the agent cannot parse still comes back as a frame (not as a
/// PID 1 panic, which would look like a kernel panic).
#[test]
fn unreadable_request_is_reported_in_a_frame() {
    let payload = CommandPayload {
        command: "true".into(),
        bin: None,
        artifact: None,
    };
    let mut initramfs = build_initramfs(agent(), &payload).unwrap();
    // The kernel unpacks concatenated archives in order: this one replaces
    // the request.
    let mut broken = Archive::new();
    broken.add_file(proto::REQUEST_PATH, b"{not json".to_vec(), 0o644);
    broken.write_to(&mut initramfs).unwrap();
    let boot = boot(&kernel("vmlinuz-6.1.192-tiny-nobtf"), &initramfs);
    let outcome = decode(&boot);
    let fatal = outcome.fatal.as_deref().unwrap_or_default();
    assert!(fatal.contains("cannot parse the request"), "{outcome:#?}");
    assert!(outcome.checks.is_empty());
    assert_eq!(outcome.kernel.release, "6.1.192");
}

#[test]
fn agent_refuses_to_run_outside_the_guest() {
    let out = Command::new(agent()).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("refuses to run"));
}

/// Not a check: a way to look at a kernel from the inside. Run as
/// `EXPLORE_KERNEL=vmlinuz-6.1.192-tiny-nobtf EXPLORE_COMMAND='ls /sys/kernel/tracing'
/// cargo test -p bpfcompat -- --ignored explore_kernel --nocapture`.
#[test]
#[ignore = "a tool, not a test: needs EXPLORE_KERNEL and EXPLORE_COMMAND"]
fn explore_kernel() {
    let file = std::env::var("EXPLORE_KERNEL").expect("EXPLORE_KERNEL: a file in the kernels dir");
    let payload = CommandPayload {
        command: std::env::var("EXPLORE_COMMAND").expect("EXPLORE_COMMAND"),
        bin: None,
        artifact: None,
    };
    let boot = boot(&kernel(&file), &build_initramfs(agent(), &payload).unwrap());
    let outcome = decode(&boot);
    let c = command_outcome(&outcome);
    eprintln!(
        "kernel {:?}\nsetup warnings {:?}\nexit {:?} signal {:?}\n--- stdout\n{}\n--- stderr\n{}\n--- console\n{}",
        outcome.kernel,
        outcome.setup_warnings,
        c.exit_code,
        c.signal,
        c.stdout_tail,
        c.stderr_tail,
        tail(&boot.console)
    );
}
