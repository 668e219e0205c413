//! Choosing the accelerator on hosts where KVM is there but does not run
//! guests, through the CLI a user types. The broken hosts are played by a
//! QEMU wrapper on PATH: it turns every KVM request into a TCG guest started
//! paused (`-S`), which from outside is exactly a KVM that accepts guests and
//! never runs them.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{boot_lock, Run, Scratch, K61, TINY};

/// Which KVM guests the fake host never runs.
#[derive(Clone, Copy)]
enum Broken {
    /// None: the probe guest stays silent too.
    Everything,
    /// Only real kernels: the probe guest runs, kernels print nothing.
    Kernels,
}

fn broken_kvm_qemu(s: &Scratch, broken: Broken) -> PathBuf {
    let real = which_qemu();
    let dir = s.path("fake-host");
    std::fs::create_dir_all(&dir).unwrap();
    let pause_probe = matches!(broken, Broken::Everything);
    let script = format!(
        r#"#!/bin/bash
# KVM that accepts guests but runs none: KVM requests become paused TCG guests.
args=(); kvm=0; probe=0
for a in "$@"; do
  case "$a" in
    kvm) kvm=1; a=tcg ;;
    host) a=max ;;
    -bios) probe=1 ;;
  esac
  args+=("$a")
done
if [ $kvm = 1 ] && {{ [ $probe = 0 ] || {pause_probe}; }}; then args=(-S "${{args[@]}}"); fi
exec {real} "${{args[@]}}"
"#,
        real = real.display(),
    );
    let path = dir.join("qemu-system-x86_64");
    std::fs::write(&path, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

fn which_qemu() -> PathBuf {
    std::env::split_paths(&std::env::var_os("PATH").unwrap())
        .map(|d| d.join("qemu-system-x86_64"))
        .find(|p| p.is_file())
        .expect("QEMU is installed for the tests")
}

fn run_on(s: &Scratch, host: &Path, matrix: &Path, accel: &str) -> (Run, Duration) {
    let path = format!(
        "{}:{}",
        host.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let start = Instant::now();
    let run = s.run_with_env(
        &[
            "test-command",
            "--cmd",
            "true",
            "--matrix",
            matrix.to_str().unwrap(),
            "--accel",
            accel,
            "--concurrency",
            "1",
        ],
        &[("PATH", &path)],
    );
    (run, start.elapsed())
}

fn reason(run: &Run, id: &str) -> String {
    let accel = &run.target(id)["accel"];
    assert_eq!(accel["accel"], "tcg", "{accel}");
    accel["reason"].as_str().unwrap().to_owned()
}

/// The real host, with the default a user gets: whatever is chosen really
/// ran the kernel (a KVM guest has the kvm-clock clock source, a TCG one
/// does not) and says why it was chosen.
#[test]
fn auto_accel_picks_one_that_works() {
    let _lock = boot_lock();
    let s = Scratch::new();
    let matrix = s.matrix(&[(&TINY, ""), (&K61, "")]);
    let clock =
        "echo clock=$(cat /sys/devices/system/clocksource/clocksource0/available_clocksource)";
    let run = s.test_command(clock, &matrix, &["--accel", "auto"]);
    assert_eq!(run.code, 0, "{}", run.context());
    for id in [TINY.id, K61.id] {
        let target = run.target(id);
        let accel = &target["accel"];
        assert_eq!(accel["accel"], run.report()["accel"]);
        let under_kvm = target.to_string().contains("kvm-clock");
        assert_eq!(under_kvm, accel["accel"] == "kvm", "{target}");
        let why = accel["reason"].as_str().unwrap();
        if accel["accel"] == "tcg" {
            assert!(why.ends_with("using TCG"), "{why}");
            assert!(
                run.stderr.contains(why),
                "said once on stderr: {}",
                run.stderr
            );
        } else {
            assert!(why.starts_with("a probe guest ran under KVM"), "{why}");
        }
    }
}

#[test]
fn a_kvm_that_runs_no_guest_code_falls_back_to_tcg_within_the_probe_deadline() {
    let _lock = boot_lock();
    let s = Scratch::new();
    let host = broken_kvm_qemu(&s, Broken::Everything);
    let matrix = s.matrix(&[(&K61, ""), (&TINY, "")]);
    let (run, took) = run_on(&s, &host, &matrix, "auto");
    assert_eq!(run.code, 0, "{}", run.context());
    let said = "KVM accepts a guest but ran no guest code in 2 s: using TCG";
    assert_eq!(run.stderr.matches(said).count(), 1, "{}", run.stderr);
    for id in [K61.id, TINY.id] {
        assert_eq!(run.target(id)["status"], "pass");
        assert_eq!(reason(&run, id), said);
    }
    // Two TCG boots take a few seconds; a hang would take the 3-minute
    // timeout per kernel.
    assert!(took < Duration::from_secs(60), "{took:?}");

    // The answer is remembered for this boot of the host: no second probe.
    let (again, _) = run_on(&s, &host, &matrix, "auto");
    assert_eq!(again.code, 0, "{}", again.context());
    assert!(
        reason(&again, TINY.id).contains("found earlier in this boot of the host"),
        "{}",
        again.context()
    );
}

#[test]
fn accel_kvm_on_such_a_host_fails_fast_with_the_reason() {
    let s = Scratch::new();
    let host = broken_kvm_qemu(&s, Broken::Everything);
    let matrix = s.matrix(&[(&TINY, "")]);
    let (run, took) = run_on(&s, &host, &matrix, "kvm");
    assert_eq!(run.code, 1, "{}", run.context());
    assert!(
        run.stderr.contains(
            "--accel kvm was requested but KVM cannot run guests here: KVM accepts a guest but \
             ran no guest code in 2 s"
        ),
        "{}",
        run.stderr
    );
    assert!(run.report.is_none());
    assert!(took < Duration::from_secs(15), "{took:?}");
}

#[test]
fn a_silent_kvm_guest_moves_the_rest_of_the_run_to_tcg() {
    let _lock = boot_lock();
    let s = Scratch::new();
    let host = broken_kvm_qemu(&s, Broken::Kernels);
    let matrix = s.matrix(&[(&K61, ""), (&TINY, "")]);
    let (run, took) = run_on(&s, &host, &matrix, "auto");
    assert_eq!(run.code, 0, "{}", run.context());
    let said = "printed nothing in 10 s (a TCG boot prints within a second): using TCG";
    assert_eq!(run.stderr.matches(said).count(), 1, "{}", run.stderr);
    // The first kernel to boot found out and was booted again under TCG;
    // the other never tried KVM. Both say which kernel it was.
    let why = reason(&run, K61.id);
    assert!(
        why.contains(said) && why.contains("the KVM guest of "),
        "{why}"
    );
    assert_eq!(reason(&run, TINY.id), why);
    for id in [K61.id, TINY.id] {
        assert_eq!(run.target(id)["status"], "pass");
    }
    assert!(took < Duration::from_secs(90), "{took:?}");

    // What the fallback found is remembered for this boot of the host: the
    // next default run starts on TCG and never waits for the silence again.
    let (again, _) = run_on(&s, &host, &matrix, "auto");
    assert_eq!(again.code, 0, "{}", again.context());
    let why = reason(&again, K61.id);
    assert!(
        why.contains("the KVM guest of ")
            && why.ends_with("(found earlier in this boot of the host): using TCG"),
        "{why}"
    );
    assert!(!again
        .stderr
        .contains("printed nothing in 10 s (a TCG boot prints within a second): using TCG\n"));
    for id in [K61.id, TINY.id] {
        assert_eq!(again.target(id)["status"], "pass");
    }

    // `doctor` shows it; --forget-accel forgets it.
    let shown = doctor(&s, &host, &[]);
    assert!(
        shown.contains("accelerator: TCG (the KVM guest of "),
        "{shown}"
    );
    let forgot = doctor(&s, &host, &["--forget-accel"]);
    assert!(
        forgot.contains("forgot the remembered accelerator verdict")
            && forgot.contains("accelerator: KVM (a probe guest ran under KVM"),
        "{forgot}"
    );
}

/// `bpfcompat doctor` on the fake host, with the tests' cache; its stdout.
fn doctor(s: &Scratch, host: &Path, extra: &[&str]) -> String {
    let path = format!(
        "{}:{}",
        host.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_bpfcompat"))
        .arg("doctor")
        .args(extra)
        .arg("--cache-dir")
        .arg(s.path("cache"))
        .env("PATH", path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}
