//! End-to-end: the real binary boots the real test kernels under TCG.

mod common;

use common::*;

/// Every kernel, one boot each: a command that fails only on 6.1 and shows
/// what it sees. The 7.2 kernel comes as a .deb over HTTP, so the package
/// path and the url source are exercised too.
#[test]
fn verdicts_on_every_test_kernel() {
    let _lock = boot_lock();
    let s = Scratch::new();
    let dir = kernels_dir();
    let server = serve_file(dir.join(K72.file));
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
        K72.id, server.url, K72.sha256
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
    let ids: Vec<&str> = report["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
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
    assert_eq!(server.requests.load(std::sync::atomic::Ordering::SeqCst), 1);
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
    // A dynamically linked program built here: its libraries must come along.
    let src = s.write(
        "loader.c",
        "#include <stdio.h>\n#include <sys/utsname.h>\nint main(int c, char **v) { struct utsname u; uname(&u); printf(\"loader %s on %s\\n\", c > 1 ? v[1] : \"-\", u.release); return 7; }\n",
    );
    let bin = s.path("myloader");
    let cc = std::process::Command::new("cc")
        .arg("-o")
        .arg(&bin)
        .arg(&src)
        .status()
        .expect("a C compiler (cc) is installed");
    assert!(cc.success());
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
}

/// Ctrl-C (SIGINT) mid-run stops every QEMU the run started and writes no
/// report.
#[test]
fn ctrl_c_kills_every_qemu() {
    let _lock = boot_lock();
    let s = Scratch::new();
    let matrix = s.matrix(&[(&K61, ""), (&TINY, "")]);
    let out = s.path("report.json");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_bpfcompat"))
        .args([
            "test-command",
            "--cmd",
            "sleep 600",
            "--accel",
            "tcg",
            "--matrix",
        ])
        .arg(&matrix)
        .arg("--out")
        .arg(&out)
        .arg("--workdir")
        .arg(s.path("work"))
        .arg("--cache-dir")
        .arg(s.path("cache"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Our QEMUs are the ones booting an initramfs from this scratch dir.
    let ours = || qemus_under(&s.path("work")).len();
    let started = std::time::Instant::now();
    while ours() < 2 {
        assert!(started.elapsed().as_secs() < 60, "the QEMUs never started");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    // SAFETY: plain kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("interrupted by Ctrl-C"), "{stderr}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while ours() > 0 {
        assert!(std::time::Instant::now() < deadline, "QEMU survived Ctrl-C");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(!out.exists(), "no report for an interrupted run");
}

/// `--accel auto` must end in a working accelerator: KVM where a KVM guest
/// really starts, else TCG with the reason (here /dev/kvm exists and creates
/// VMs, but QEMU cannot run a vCPU on it).
#[test]
fn auto_accel_picks_one_that_works() {
    let _lock = boot_lock();
    let s = Scratch::new();
    let matrix = s.matrix(&[(&TINY, "")]);
    let run = s.test_command("true", &matrix, &["--accel", "auto"]);
    assert_eq!(run.code, 0, "{}", run.context());
    let accel = run.report()["accel"].as_str().unwrap().to_owned();
    if accel == "tcg" && std::path::Path::new("/dev/kvm").exists() {
        assert!(run.stderr.contains("KVM not used ("), "{}", run.stderr);
    }
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
