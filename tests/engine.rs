//! End-to-end: the real binary boots the real test kernels under TCG.

mod common;

use std::path::Path;
use std::time::Duration;

use bpfcompat_testkit::http::{Plan, TestServer};
use common::*;

/// Every kernel, one boot each: a command that fails only on 6.1 and shows
/// what it sees. The 7.2 kernel comes as a .deb over HTTP, so the package
/// path and the url source are exercised too.
#[test]
fn verdicts_on_every_test_kernel() {
    let _lock = boot_lock();
    let s = Scratch::new();
    let dir = kernels_dir();
    let server = TestServer::start(std::fs::read(dir.join(K72.file)).unwrap(), Plan::default());
    let mut yaml = String::from("name: all\nkernels:\n");
    for k in [&K510, &K61, &K612, &TINY] {
        yaml.push_str(&format!(
            "  - id: {}\n    source:\n      file: {}\n",
            k.id,
            dir.join(k.file).display()
        ));
    }
    yaml.push_str(&format!(
        "  - id: {}\n    source:\n      url: {}\n      sha256: {}\n",
        K72.id,
        server.url("linux.deb"),
        K72.sha256
    ));
    let matrix = s.write("matrix.yaml", &yaml);
    let artifact = s.write("probe.bpf.o", "not really an object");
    let cmd = r#"echo "bin=$BPFCOMPAT_BIN art=$BPFCOMPAT_ARTIFACT root=$BPFCOMPAT_REMOTE_ROOT"
cat "$BPFCOMPAT_ARTIFACT"; echo; echo to-stderr >&2
[ "$(uname -r)" != 6.1.0-47-cloud-amd64 ] || exit 3"#;
    let run = s.run(&[
        "test-command",
        "--cmd",
        cmd,
        "--artifact",
        artifact.to_str().unwrap(),
        "--matrix",
        matrix.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 2, "a required kernel failed: {}", run.context());
    let report = run.report();
    assert_eq!(report["mode"], "command");
    assert_eq!(report["accel"], "tcg");
    assert_eq!(report["summary"]["passed"], 4);
    assert_eq!(report["summary"]["failed"], 1);
    assert_eq!(report["summary"]["status"], "fail");
    assert!(report["artifact"]["id"]
        .as_str()
        .unwrap()
        .starts_with("sha256:"));
    let ids = bpfcompat_testkit::reports::target_ids(report);
    assert_eq!(
        ids,
        [K510.id, K61.id, K612.id, TINY.id, K72.id],
        "matrix order"
    );
    for k in ALL {
        let t = run.target(k.id);
        assert_eq!(t["kernel"]["release"], k.release, "{}", k.id);
        assert_eq!(t["kernel"]["btf"], k.btf, "{}", k.id);
        assert_eq!(t["kernel"]["arch"], "x86_64");
        let test = run.command_test(k.id);
        let stdout = test["stdout_tail"].as_str().unwrap();
        assert!(
            stdout.contains("bin= art=/bpfcompat/artifact/probe.bpf.o root=/bpfcompat"),
            "{}: {stdout}",
            k.id
        );
        assert!(stdout.contains("not really an object"), "{stdout}");
        assert_eq!(test["stderr_tail"], "to-stderr\n");
        assert_eq!(test["stderr_bytes"], 10);
        let timing = &t["timing_ms"];
        assert!(timing["boot"].as_u64().unwrap() > 0);
        assert!(std::path::Path::new(t["console_log"].as_str().unwrap()).is_file());
        if k.id == K61.id {
            assert_eq!(t["status"], "fail");
            assert_eq!(t["classification"]["code"], "COMMAND_VALIDATION_FAILURE");
            assert_eq!(test["exit_code"], 3);
        } else {
            assert_eq!(t["status"], "pass", "{}: {t}", k.id);
            assert_eq!(test["exit_code"], 0);
        }
    }
    assert!(
        t_sha(&run, K72.id) != K72.sha256,
        "the image digest, not the package's"
    );
    assert_eq!(server.requests(), 1);
    let md = std::fs::read_to_string(s.path("report.md")).unwrap();
    assert!(
        md.contains(
            "| debian-12-6.1 | 6.1.0-47-cloud-amd64 | ❌ fail | COMMAND_VALIDATION_FAILURE |"
        ),
        "{md}"
    );
    assert!(run.stdout.contains("debian-12-6.1"), "table on stdout");
}

fn t_sha<'a>(run: &'a Run, id: &str) -> &'a str {
    run.target(id)["kernel"]["sha256"].as_str().unwrap()
}

#[test]
fn expect_exit_and_a_shipped_binary() {
    let _lock = boot_lock();
    let s = Scratch::new();
    let bin = s.cc(
        "myloader",
        "#include <stdio.h>\n#include <sys/utsname.h>\nint main(int c, char **v) { struct utsname u; uname(&u); printf(\"loader %s on %s\\n\", c > 1 ? v[1] : \"-\", u.release); return 7; }\n",
    );
    let matrix = s.matrix(&[(&K510, ""), (&TINY, "")]);
    let run = s.run(&[
        "test",
        "--command",
        "$BPFCOMPAT_BIN --self-test",
        "--command-binary",
        bin.to_str().unwrap(),
        "--command-expect-exit",
        "7",
        "--matrix",
        matrix.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 0, "{}", run.context());
    for k in [&K510, &TINY] {
        let test = run.command_test(k.id);
        assert_eq!(test["exit_code"], 7);
        assert_eq!(test["expected_exit_code"], 7);
        let stdout = test["stdout_tail"].as_str().unwrap();
        assert_eq!(stdout, format!("loader --self-test on {}\n", k.release));
    }
    let report = run.report();
    assert!(report["artifact"]["id"]
        .as_str()
        .unwrap()
        .starts_with("command://myloader@"));
    assert_eq!(
        run.target(K510.id)["checks"][0]["artifact"]["name"],
        "myloader"
    );
}

/// Quotes, substitutions, separators, newlines and a leading dash are the
/// guest's business: they run literally inside it and never on the host.
#[test]
fn hostile_command_strings_run_literally_in_the_guest() {
    let _lock = boot_lock();
    let s = Scratch::new();
    let marker = s.path("host-was-touched");
    let cmd = format!(
        "-x 2>/dev/null; mkdir -p {d}; touch {m}; echo 'single \"double\"' \"$(echo sub)\" `echo tick`; echo a;echo b\necho line2 $HOSTNAME_UNSET; [ ! -e {m} ] || echo guest-only",
        m = marker.display(),
        d = s.dir.path().display()
    );
    let matrix = s.matrix(&[(&K612, "")]);
    let run = s.test_command(&cmd, &matrix, &[]);
    assert_eq!(run.code, 0, "{}", run.context());
    let stdout = run.command_test(K612.id)["stdout_tail"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        stdout,
        "single \"double\" sub tick\na\nb\nline2\nguest-only\n",
        "{}",
        run.context()
    );
    assert!(!marker.exists(), "the command touched the host");
}

#[test]
fn an_optional_kernel_never_changes_the_exit_code() {
    let _lock = boot_lock();
    let s = Scratch::new();
    let matrix = s.matrix(&[(&K612, ""), (&TINY, "    required: false\n")]);
    let run = s.test_command("test -e /sys/kernel/btf/vmlinux", &matrix, &[]);
    assert_eq!(run.code, 0, "{}", run.context());
    assert_eq!(run.target(TINY.id)["status"], "fail");
    assert_eq!(run.target(TINY.id)["required"], false);
    assert_eq!(run.report()["summary"]["required_failed"], 0);
}

#[test]
fn bad_matrices_are_rejected_with_the_problem_named() {
    let s = Scratch::new();
    let k = kernels_dir().join(K61.file);
    let k = k.display();
    let cases: Vec<(&str, String, &str)> = vec![
        ("syntax", "name: x\nkernels: [\n".into(), "matrix.yaml:"),
        (
            "unknown field",
            format!("name: x\nkernels:\n  - id: a\n    colour: red\n    source: {{file: {k}}}\n"),
            "matrix.yaml:4: kernels[0]: unknown field `colour`",
        ),
        (
            "duplicate id",
            format!("name: x\nkernels:\n  - id: a\n    source: {{file: {k}}}\n  - id: a\n    source: {{file: {k}}}\n"),
            "matrix.yaml:5: kernels[1] (a).id: duplicate id",
        ),
        (
            "missing file",
            "name: x\nkernels:\n  - id: a\n    source:\n      file: nowhere/vmlinuz\n".into(),
            "matrix.yaml:5: kernels[0] (a).source.file:",
        ),
        (
            "unset variable",
            "name: x\nkernels:\n  - id: a\n    source:\n      file: ${BPFCOMPAT_SURELY_UNSET}/vmlinuz\n".into(),
            "BPFCOMPAT_SURELY_UNSET is not set",
        ),
    ];
    for (what, yaml, expected) in cases {
        let matrix = s.write("matrix.yaml", &yaml);
        let run = s.test_command("true", &matrix, &[]);
        assert_eq!(run.code, 1, "{what}: {}", run.context());
        assert!(
            run.stderr.contains(expected),
            "{what}: expected {expected:?} in {}",
            run.stderr
        );
        assert!(run.report.is_none(), "{what}: no report for a bad matrix");
    }
}

#[test]
fn a_wrong_digest_names_both_digests() {
    let s = Scratch::new();
    let wrong = "0".repeat(64);
    let matrix = s.write(
        "matrix.yaml",
        &format!(
            "name: x\nkernels:\n  - id: a\n    source:\n      file: {}\n      sha256: {wrong}\n",
            kernels_dir().join(K61.file).display()
        ),
    );
    let run = s.test_command("true", &matrix, &[]);
    assert_eq!(run.code, 1, "{}", run.context());
    let reason = run.target("a")["classification"]["reason"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        reason.contains(&wrong) && reason.contains(K61.sha256),
        "{reason}"
    );
    assert!(run.stderr.contains(K61.sha256), "{}", run.stderr);
}

#[test]
fn usage_errors_exit_1() {
    let s = Scratch::new();
    let matrix = s.matrix(&[(&K61, "")]);
    let m = matrix.to_str().unwrap();
    let run = s.run(&[
        "test-command",
        "--cmd",
        "true",
        "--expect-exit",
        "256",
        "--matrix",
        m,
    ]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("--expect-exit"), "{}", run.stderr);
    let run = s.run(&["test", "--matrix", m]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("nothing to check"), "{}", run.stderr);
    // An empty command would pass everywhere without checking anything.
    for (sub, flag, cmd) in [
        ("test-command", "--cmd", ""),
        ("test-command", "--cmd", " \t\n"),
        ("test", "--command", ""),
    ] {
        let run = s.run(&[sub, flag, cmd, "--matrix", m]);
        assert_eq!(run.code, 1, "{}", run.context());
        assert!(
            run.stderr
                .contains(&format!("for '{flag} <CMD>': the command is empty")),
            "{}",
            run.stderr
        );
        assert!(run.report.is_none());
    }
}

/// Starts `bpfcompat test-command` in the background on `matrix`.
fn spawn_run(s: &Scratch, matrix: &Path, cmd: &str, extra: &[&str]) -> std::process::Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_bpfcompat"))
        .args(["test-command", "--cmd", cmd, "--accel", "tcg", "--matrix"])
        .arg(matrix)
        .args(extra)
        .arg("--out")
        .arg(s.path("report.json"))
        .arg("--workdir")
        .arg(s.path("work"))
        .arg("--cache-dir")
        .arg(s.path("cache"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// Our QEMUs are the ones booting an initramfs from this scratch dir.
fn our_qemus(s: &Scratch) -> usize {
    qemus_under(&s.path("work")).len()
}

fn wait_until(what: &str, secs: u64, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while !done() {
        assert!(std::time::Instant::now() < deadline, "{what}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// Sends `signal` and checks what every interrupted run must do: exit at
/// once with 128 + the signal's number, say so, write no report.
fn interrupt(s: &Scratch, mut child: std::process::Child, signal: i32, name: &str) {
    let sent = std::time::Instant::now();
    // SAFETY: plain kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as i32, signal) };
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(sent.elapsed().as_secs() < 5, "took {:?}", sent.elapsed());
    assert_eq!(status.code(), Some(128 + signal), "{stderr}");
    assert!(
        stderr.contains(&format!("interrupted by {name}")),
        "{stderr}"
    );
    wait_until("QEMU survived the signal", 5, || our_qemus(s) == 0);
    assert!(
        !s.path("report.json").exists(),
        "no report for an interrupted run"
    );
}

/// Ctrl-C and SIGTERM while the kernels boot and run stop every QEMU the run
/// started and write no report.
#[test]
fn signals_while_booting_kill_every_qemu() {
    let _lock = boot_lock();
    for (signal, name) in [(libc::SIGINT, "Ctrl-C"), (libc::SIGTERM, "SIGTERM")] {
        let s = Scratch::new();
        let matrix = s.matrix(&[(&K61, ""), (&TINY, "")]);
        let child = spawn_run(&s, &matrix, "sleep 600", &[]);
        wait_until("the QEMUs never started", 60, || our_qemus(&s) == 2);
        interrupt(&s, child, signal, name);
    }
}

/// A signal while a kernel downloads (here: a server that stalls after the
/// headers) stops at once too, and leaves no temp file in the cache.
#[test]
fn a_signal_while_fetching_stops_at_once_and_leaves_no_temp_file() {
    // The headers of a 16 MiB body, then nothing for a minute.
    let plan = Plan {
        stall_first: usize::MAX,
        break_at: Some(0),
        stall_for: Duration::from_secs(60),
        ..Plan::default()
    };
    let server = TestServer::start(vec![0; 16 << 20], plan);
    let s = Scratch::new();
    let matrix = s.write(
        "matrix.yaml",
        &format!(
            "name: t\nkernels:\n  - id: k\n    source:\n      url: {}\n      sha256: {}\n",
            server.url("vmlinuz"),
            K61.sha256
        ),
    );
    let temp_files = || {
        std::fs::read_dir(s.path("cache").join("tmp"))
            .map(|d| d.flatten().map(|e| e.file_name()).collect::<Vec<_>>())
            .unwrap_or_default()
    };
    let child = spawn_run(&s, &matrix, "true", &[]);
    wait_until("the download never started", 30, || {
        !temp_files().is_empty()
    });
    interrupt(&s, child, libc::SIGTERM, "SIGTERM");
    assert!(temp_files().is_empty(), "left behind: {:?}", temp_files());
}

/// More jobs than memory allows: guests wait for their share of the budget
/// instead of starting to die.
#[test]
fn guests_are_admitted_by_the_memory_budget() {
    let _lock = boot_lock();
    let s = Scratch::new();
    let matrix = s.matrix(&[(&K61, ""), (&TINY, ""), (&K510, "")]);
    // Room for one default guest (512 MB + 150 MB for QEMU) at a time.
    let extra = ["--concurrency", "8", "--memory-budget", "700"];
    let mut child = spawn_run(&s, &matrix, "sleep 1", &extra);
    let mut most = 0;
    while child.try_wait().unwrap().is_none() {
        most = most.max(our_qemus(&s));
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(most, 1, "guests booted at once");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(s.path("report.json")).unwrap()).unwrap();
    assert_eq!(report["summary"]["passed"], 3, "{report}");
}

#[test]
fn a_guest_larger_than_the_memory_budget_is_refused_before_it_boots() {
    let s = Scratch::new();
    let matrix = s.matrix(&[(&TINY, "    memory_mb: 256\n")]);
    let run = s.test_command("true", &matrix, &["--memory-budget", "300"]);
    assert_eq!(run.code, 1, "{}", run.context());
    let t = run.target(TINY.id);
    assert_eq!(t["status"], "infra_error");
    assert_eq!(
        t["classification"]["reason"],
        "this kernel needs 406 MB (256 MB of guest memory plus 150 MB for QEMU) but the memory \
         budget is 300 MB"
    );
    assert!(t.get("accel").is_none(), "it never booted: {t}");
}

#[test]
fn a_missing_qemu_says_how_to_install_it() {
    let s = Scratch::new();
    let matrix = s.matrix(&[(&K61, "")]);
    let run = s.run_with_env(
        &[
            "test-command",
            "--cmd",
            "true",
            "--matrix",
            matrix.to_str().unwrap(),
        ],
        &[("PATH", "/nonexistent")],
    );
    assert_eq!(run.code, 1, "{}", run.context());
    assert!(
        run.stderr.contains("qemu-system-x86_64 was not found")
            && run.stderr.contains("apt-get install qemu-system-x86"),
        "{}",
        run.stderr
    );
    assert!(run.report.is_none());
}
