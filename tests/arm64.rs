//! End-to-end: arm64 kernels (Debian's arm64 cloud packages, with their
//! modules) booted under qemu-system-aarch64 on this host, with the agent
//! cross-built for aarch64: the corpus against the arm64 table of
//! `tests/bpf/GROUND_TRUTH.md`, matrices mixing both architectures, arm64
//! snapshots, and what an arm64 guest refuses.

mod common;

use bpfcompat_testkit::agent::aarch64_agent;
use common::truth::*;
use common::*;

const ARCH: &str = "    arch: arm64\n";

/// bpfcompat with the aarch64 agent.
fn arm64_run(s: &Scratch, args: &[&str]) -> Run {
    let agent = aarch64_agent();
    s.run_with_env(
        args,
        &[("BPFCOMPAT_GUEST_AARCH64", agent.to_str().unwrap())],
    )
}

#[test]
fn the_corpus_on_both_arm64_kernels_matches_the_ground_truth() {
    let _lock = boot_lock();
    let s = Scratch::new();
    let corpus = build_corpus(s.dir.path());
    let truth = table("| object | 5.10 arm64 | 6.1 arm64 |");
    assert!(truth.len() >= 50, "the whole corpus");
    let objects: Vec<String> = truth
        .iter()
        .map(|(name, _)| corpus.join(format!("{name}.bpf.o")).display().to_string())
        .chain([corpus
            .join("arm64/pt_regs_core.bpf.o")
            .display()
            .to_string()])
        .collect();
    let matrix = s.matrix(&ARM64.map(|k| (k, ARCH)));
    let mut args = vec![
        "test",
        "--timeout",
        "10m",
        "--matrix",
        matrix.to_str().unwrap(),
    ];
    for o in &objects {
        args.extend(["--artifact", o.as_str()]);
    }
    let run = arm64_run(&s, &args);
    assert_eq!(run.code, 2, "{}", run.context());
    let ids = ARM64.map(|k| k.id);
    // The x86 build of pt_regs_core is the table's row; the arm64 build,
    // checked after it under the same name, is the last check.
    let wrong = differences(&truth, &ids, |id| run.target(id).clone());
    assert!(
        wrong.is_empty(),
        "ground truth differs:\n{}",
        wrong.join("\n")
    );

    for k in ARM64 {
        let t = run.target(k.id);
        assert_eq!(t["kernel"]["arch"], "arm64", "{t}");
        assert_eq!(t["kernel"]["release"], k.release);
        assert_eq!(t["accel"]["accel"], "tcg");
        assert!(
            t["accel"]["reason"]
                .as_str()
                .unwrap()
                .contains("arm64 guests on this x86_64 host"),
            "{}",
            t["accel"]
        );
        let checks = t["checks"].as_array().unwrap();
        assert_eq!(checks.len(), objects.len());
        let own = checks.last().unwrap();
        assert!(own["artifact"]["path"]
            .as_str()
            .unwrap()
            .contains("/arm64/"));
        assert_eq!(own["status"], "pass", "the arm64 build loads: {own}");
        // Hints say what differs on arm64.
        let hint = |object: &str| {
            check_of(t, object)["classification"]["hint"]
                .as_str()
                .unwrap()
                .to_owned()
        };
        assert!(hint("kprobe_x64_syscall").contains("__arm64_sys_getpid"));
        assert!(hint("fentry").contains("direct calls from 6.4"));
        assert!(hint("pt_regs_core").contains("another architecture's layout"));
    }
}

/// One matrix, both architectures: each kernel runs on its own QEMU with its
/// own agent and shell, and the second run restores both from snapshots.
#[test]
fn a_mixed_matrix_runs_each_kernel_on_its_own_architecture_and_restores_both() {
    let _lock = boot_lock();
    let s = Scratch::new();
    let matrix = s.matrix(&[(&TINY, ""), (&ARM64_61, ARCH)]);
    let cmd = "uname -m; echo $SHELL; test -d /sys/fs/bpf";
    let page = s.path("report.html");
    let html = ["--snapshots", "auto", "--html", page.to_str().unwrap()];
    let args = command_args(cmd, &matrix, &html);
    for (round, restored) in [(1, false), (2, true)] {
        let run = arm64_run(&s, &args);
        assert_eq!(run.code, 0, "round {round}: {}", run.context());
        for (k, machine, shell) in [
            (&TINY, "x86_64", "/bin/bash"),
            (&ARM64_61, "aarch64", "/bin/sh"),
        ] {
            let t = run.target(k.id);
            let out = run.command_test(k.id)["stdout_tail"].as_str().unwrap();
            assert_eq!(out, format!("{machine}\n{shell}\n"), "{}", k.id);
            assert_eq!(t["restored"].as_bool().unwrap_or(false), restored, "{t}");
        }
        assert_eq!(run.target(ARM64_61.id)["kernel"]["arch"], "arm64");
        assert_eq!(run.target(TINY.id)["kernel"]["arch"], "x86_64");
    }
    // The page groups the kernels under their architectures.
    let page = std::fs::read_to_string(&page).unwrap();
    let group = |arch: &str| {
        let header = format!("colspan=\"1\" data-group=\"{arch}\">{arch}</th>");
        page.find(&header)
            .unwrap_or_else(|| panic!("no {arch} group in {}", &page[..page.len().min(8000)]))
    };
    let (x86, arm) = (group("x86_64"), group("arm64"));
    assert!(x86 < arm, "in the matrix's order");
}

/// What an arm64 guest cannot run is refused before anything boots, naming
/// the file and both architectures; so is a kernel of the other
/// architecture than the matrix says.
#[test]
fn programs_and_kernels_of_the_wrong_architecture_are_refused_by_name() {
    let s = Scratch::new();
    let matrix = s.matrix(&[(&ARM64_61, ARCH)]);
    let bin = s.cc("loader", "int main(void) { return 0; }\n");
    let args = command_args("true", &matrix, &["--bin", bin.to_str().unwrap()]);
    let run = arm64_run(&s, &args);
    assert_ne!(run.code, 0);
    assert!(
        run.stderr.contains(&format!("--bin {}", bin.display()))
            && run
                .stderr
                .contains("is a program for x86-64, not for the arm64 guest"),
        "{}",
        run.context()
    );

    let wrong = s.matrix(&[(&ARM64_61, "")]);
    let run = arm64_run(&s, &command_args("true", &wrong, &[]));
    let reason = run.target(ARM64_61.id)["classification"]["reason"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        reason.contains("is an arm64 kernel") && reason.contains("set `arch: arm64`"),
        "{reason}"
    );
}

/// `{arch}` in an --artifact path: each kernel checks its architecture's
/// build, and the report says which ran where.
#[test]
fn each_kernel_checks_the_build_for_its_architecture() {
    let _lock = boot_lock();
    let s = Scratch::new();
    let corpus = build_corpus(s.dir.path());
    let template = corpus.join("{arch}/pt_regs_core.bpf.o");
    let template = template.to_str().unwrap();
    let matrix = s.matrix(&[(&K61, ""), (&ARM64_61, ARCH)]);
    let run = arm64_run(
        &s,
        &[
            "test",
            "--matrix",
            matrix.to_str().unwrap(),
            "--artifact",
            template,
        ],
    );
    assert_eq!(run.code, 0, "{}", run.context());
    for (k, build) in [(&K61, "/x86/"), (&ARM64_61, "/arm64/")] {
        let checks = run.target(k.id)["checks"].as_array().unwrap();
        assert_eq!(checks.len(), 1, "{}: its own build only", k.id);
        assert!(checks[0]["artifact"]["path"]
            .as_str()
            .unwrap()
            .contains(build));
        assert_eq!(checks[0]["status"], "pass", "{}", checks[0]);
    }

    // No build at all, or none for an architecture of the matrix.
    let check = |artifact: &std::path::Path| {
        let args = ["test", "--matrix", matrix.to_str().unwrap(), "--artifact"];
        let mut args = args.to_vec();
        args.push(artifact.to_str().unwrap());
        arm64_run(&s, &args)
    };
    let run = check(&s.path("{arch}/nothing.bpf.o"));
    assert_ne!(run.code, 0);
    assert!(
        run.stderr.contains("no build of it exists")
            && run
                .stderr
                .contains(&s.path("arm64/nothing.bpf.o").display().to_string()),
        "{}",
        run.context()
    );
    std::fs::create_dir_all(s.path("x86")).unwrap();
    std::fs::copy(corpus.join("xdp.bpf.o"), s.path("x86/xdp.bpf.o")).unwrap();
    let run = check(&s.path("{arch}/xdp.bpf.o"));
    assert_ne!(run.code, 0);
    assert!(
        run.stderr
            .contains("the matrix has arm64 kernels, but no arm64 build"),
        "{}",
        run.context()
    );
}

/// Behavior mode on arm64: the links held while a functional test runs in
/// busybox's sh, run counts, a failing test and a program never triggered
/// classified as on x86 (tests/manifest.rs).
#[test]
fn behavior_mode_runs_on_both_arm64_kernels() {
    let _lock = boot_lock();
    let s = Scratch::new();
    let corpus = common::truth::corpus_with_fixtures(s.dir.path());
    let matrix = s.matrix(&ARM64.map(|k| (k, ARCH)));
    let suite = corpus.join("behavior.suite.yaml");
    let run = arm64_run(
        &s,
        &[
            "test",
            "--suite",
            suite.to_str().unwrap(),
            "--matrix",
            matrix.to_str().unwrap(),
        ],
    );
    assert_eq!(run.code, 2, "{}", run.context());
    for k in ARM64 {
        let checks = run.target(k.id)["checks"].as_array().unwrap().clone();
        let [held, fails, not_triggered] = &checks[..] else {
            panic!("three cases on {}: {checks:?}", k.id)
        };
        assert_eq!(held["status"], "pass", "{} {held}", k.id);
        let test = &held["functional"]["tests"][0];
        assert_eq!(test["stdout_tail"], "bpfcompat-guest\n", "{test}");
        let program = held["validation"]["programs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "on_sethostname")
            .unwrap()
            .clone();
        assert!(
            program["run"]["run_count"].as_u64().unwrap() > 0,
            "{program}"
        );
        assert_eq!(fails["classification"]["code"], "FUNCTIONAL_TEST_FAILURE");
        assert_eq!(
            not_triggered["classification"]["code"],
            "PROGRAM_NOT_TRIGGERED"
        );
    }
}

/// A job far over the serial port's 128 KiB reaches a restored arm64 guest
/// through fw_cfg (the virt machine's MMIO window and its DMA).
#[test]
fn a_megabyte_job_restores_on_arm64_through_fw_cfg() {
    let _lock = boot_lock();
    let s = Scratch::new();
    let big = big_object(s.dir.path(), 1 << 20, 11);
    let matrix = s.matrix(&[(&ARM64_61, ARCH)]);
    let args = [
        "test",
        "--snapshots",
        "auto",
        "--matrix",
        matrix.to_str().unwrap(),
        "--artifact",
        big.to_str().unwrap(),
    ];
    for restored in [false, true] {
        let run = arm64_run(&s, &args);
        assert_eq!(run.code, 0, "{}", run.context());
        let t = run.target(ARM64_61.id);
        assert_eq!(t["restored"].as_bool().unwrap_or(false), restored, "{t}");
        assert_eq!(t["job_channel"], "fw_cfg", "{t}");
        assert_eq!(t["checks"][0]["status"], "pass");
    }
}
