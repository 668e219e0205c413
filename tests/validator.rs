//! End-to-end: the bundled libbpf validator on the BPF corpus in
//! `tests/bpf/`, compiled with clang here, on the five real test kernels.
//! The expected verdicts are the table in `tests/bpf/GROUND_TRUTH.md`.

mod common;

use std::process::Command;

use common::truth::*;
use common::*;
use serde_json::Value;

/// The table of `GROUND_TRUTH.md` for the bare test kernels, in the column
/// order 5.10, 6.1, 6.12, 7.2, tiny.
fn ground_truth() -> Vec<(String, Vec<Expected>)> {
    table("| object | 5.10 | 6.1 | 6.12 | 7.2 | tiny |")
}

fn program<'a>(check: &'a Value, name: &str) -> &'a Value {
    check["validation"]["programs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no program {name} in {check}"))
}

#[test]
fn the_corpus_on_every_test_kernel_matches_the_ground_truth() {
    let _lock = boot_lock();
    let s = Scratch::new();
    let corpus = build_corpus(s.dir.path());
    let truth = ground_truth();
    let objects: Vec<String> = truth
        .iter()
        .filter(|(_, cells)| cells[0] != Expected::Open)
        .map(|(name, _)| corpus.join(format!("{name}.bpf.o")).display().to_string())
        .collect();
    assert!(
        objects.len() >= 35,
        "the corpus covers every class and program type"
    );
    // With each kernel's config, as its package would ship it.
    let matrix = s.matrix_with_configs(&ALL);
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
    let run = s.run(&args);
    assert_eq!(run.code, 2, "{}", run.context());
    let report = run.report();
    assert_eq!(report["mode"], "artifact");
    assert!(report["libbpf_version"].as_str().unwrap().starts_with("1."));

    // Every cell, collected so one run shows every difference.
    let kernels = [&K510, &K61, &K612, &K72, &TINY];
    let ids = kernels.map(|k| k.id);
    let wrong = differences(&truth, &ids, |id| run.target(id).clone());
    assert!(
        wrong.is_empty(),
        "ground truth differs:\n{}",
        wrong.join("\n")
    );

    // All objects were checked in one boot per kernel.
    for k in kernels {
        let t = run.target(k.id);
        assert_eq!(t["checks"].as_array().unwrap().len(), objects.len());
        assert_eq!(t["kernel"]["btf"], k.btf);
    }

    // The culprit is named, not just the object.
    let t510 = run.target(K510.id);
    let urb = check_of(t510, "user_ringbuf");
    let map = &urb["validation"]["maps"][0];
    assert_eq!(map["name"], "user_rb");
    assert_eq!(map["diagnosis"]["class"], "UNSUPPORTED_MAP_TYPE");
    assert_eq!(map["diagnosis"]["phase"], "map_create");
    let kfunc = check_of(run.target(K612.id), "kfunc_missing");
    assert_eq!(
        program(kfunc, "uses_missing_kfunc")["load"]["diagnosis"]["class"],
        "MISSING_KFUNC"
    );

    // A verifier rejection carries the log tail, and the whole log is kept.
    let null = program(check_of(t510, "verifier_null"), "null_deref");
    assert!(null["load"]["verifier_log_tail"]
        .as_str()
        .unwrap()
        .contains("invalid mem access"));
    let log = null["load"]["verifier_log_file"].as_str().unwrap();
    assert!(std::fs::read_to_string(log).unwrap().contains("processed"));

    // Attach targets: xdp and tcx on lo, iterators read once; classic tc is
    // a skip with the reason (the guest has no clsact module).
    let t612 = run.target(K612.id);
    assert_eq!(
        check_of(t612, "xdp")["validation"]["programs"][0]["attach"]["target"],
        "lo (ifindex 1)"
    );
    let tc = &check_of(t612, "tc")["validation"]["programs"][0]["attach"];
    assert_eq!(tc["status"], "skipped");
    assert!(tc["error"].as_str().unwrap().contains("clsact"), "{tc}");

    // A pass is not silent about what the kernel's facts say: on 5.10 BPF
    // LSM is not active, so the LSM program attaches but never runs.
    let lsm_warnings = check_of(t510, "lsm")["warnings"].to_string();
    assert!(
        lsm_warnings.contains("BPF LSM is not active"),
        "{lsm_warnings}"
    );
    assert!(check_of(t612, "lsm").get("warnings").is_none());

    // Kernel facts: the tiny kernel interprets BPF, the Debian ones JIT it.
    assert_eq!(run.target(TINY.id)["kernel"]["bpf"]["jit"], false);
    assert_eq!(t510["kernel"]["bpf"]["jit"], true);
    assert!(t612["kernel"]["bpf"]["lsms"]
        .as_array()
        .unwrap()
        .iter()
        .any(|l| l == "bpf"));

    let md = std::fs::read_to_string(s.path("report.md")).unwrap();
    assert!(
        md.contains("| ringbuf.bpf.o | ✅ | ✅ | ✅ | ✅ | ✅ |"),
        "{md}"
    );
    assert!(md.contains("| arena.bpf.o | ❌ UNSUPPORTED_MAP_TYPE · predicted | ❌ UNSUPPORTED_MAP_TYPE · predicted | ✅ | ✅ | ❌ UNSUPPORTED_MAP_TYPE · predicted |"), "{md}");
    assert!(
        md.contains("| bpf\\_loop.bpf.o | ≥ 5.17 | bpf\\_loop (5.17, in loop\\_on\\_switch) |"),
        "{md}"
    );

    // The preflight, beside every verdict: zero false blocks over the whole
    // matrix, and a predicted failure's hint leads with the reason.
    let mut false_blocks = Vec::new();
    for k in kernels {
        for c in run.target(k.id)["checks"].as_array().unwrap() {
            assert!(
                c["prediction"].is_object(),
                "{} on {}: no prediction",
                c["artifact"]["name"],
                k.id
            );
            if c["prediction"]["verdict"] == "blocked" && c["status"] != "fail" {
                false_blocks.push(format!(
                    "{} on {}: {}",
                    c["artifact"]["name"], k.id, c["prediction"]
                ));
            }
        }
    }
    assert!(
        false_blocks.is_empty(),
        "predicted blocked, yet passed:\n{}",
        false_blocks.join("\n")
    );
    let agreement = &report["summary"]["prediction"];
    assert_eq!(agreement["blocked_but_passed"], 0, "{agreement}");
    assert!(
        agreement["blocked_and_failed"].as_u64().unwrap() >= 50,
        "{agreement}"
    );
    let from_config = check_of(run.target(K61.id), "fmod_ret_syscall")["classification"]["hint"]
        .as_str()
        .unwrap();
    assert!(
        from_config.contains("its config has no CONFIG_FUNCTION_ERROR_INJECTION"),
        "{from_config}"
    );
    let hint = check_of(t510, "bpf_loop")["classification"]["hint"]
        .as_str()
        .unwrap();
    assert!(
        hint.starts_with("Predicted before booting: helper bpf_loop (181) absent: this kernel's bpf_func_id ends at"),
        "{hint}"
    );
    assert!(
        md.contains("<details><summary>verifier log of null_deref"),
        "{md}"
    );
}

#[test]
fn load_only_mode_attaches_nothing() {
    let _lock = boot_lock();
    let s = Scratch::new();
    let corpus = build_corpus(s.dir.path());
    let matrix = s.matrix(&[(&TINY, "")]);
    let kprobe = corpus.join("kprobe_missing.bpf.o");
    let run = s.run(&[
        "test",
        "--validation-mode",
        "load-only",
        "--artifact",
        kprobe.to_str().unwrap(),
        "--matrix",
        matrix.to_str().unwrap(),
    ]);
    // In load-attach mode this object fails to attach everywhere.
    assert_eq!(run.code, 0, "{}", run.context());
    let check = check_of(run.target(TINY.id), "kprobe_missing");
    assert_eq!(check["validation"]["mode"], "load_only");
    for p in check["validation"]["programs"].as_array().unwrap() {
        assert_eq!(p["load"]["status"], "pass");
        assert_eq!(p["attach"]["status"], "skipped");
    }
}

/// Files that are not BPF objects are refused on the host, before any
/// kernel boots, with INVALID_OBJECT naming the file.
#[test]
fn bad_objects_are_refused_before_booting() {
    let s = Scratch::new();
    let corpus = build_corpus(s.dir.path());
    let matrix = s.matrix(&[(&K61, "")]);
    let real = std::fs::read(corpus.join("tracepoint.bpf.o")).unwrap();
    let bad = s.path("bad");
    std::fs::create_dir_all(&bad).unwrap();
    let write = |name: &str, bytes: &[u8]| {
        let p = bad.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    };
    let no_programs = bad.join("no_programs.bpf.o");
    let compiled = Command::new("clang")
        .args(["-target", "bpf", "-O2", "-g", "-c", "-x", "c", "-", "-o"])
        .arg(&no_programs)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(b"int answer = 42;\n")?;
            c.wait()
        })
        .unwrap();
    assert!(compiled.success());
    let huge = bad.join("huge.bpf.o");
    std::fs::File::create(&huge)
        .unwrap()
        .set_len(200 << 20)
        .unwrap();
    let cases = [
        (
            write("not_elf.bpf.o", b"this is not an ELF object\n"),
            "not an ELF file",
        ),
        (
            write("x86.bpf.o", &std::fs::read("/bin/true").unwrap()),
            "not for BPF",
        ),
        (write("truncated.bpf.o", &real[..600]), "truncated"),
        (write("empty.bpf.o", b""), "empty"),
        (no_programs, "no BPF programs"),
        (huge, "too large"),
    ];
    for (file, why) in cases {
        let started = std::time::Instant::now();
        let run = s.run(&[
            "test",
            "--artifact",
            file.to_str().unwrap(),
            "--matrix",
            matrix.to_str().unwrap(),
        ]);
        assert_eq!(run.code, 1, "{}: {}", file.display(), run.context());
        assert!(run.stderr.contains("INVALID_OBJECT"), "{}", run.stderr);
        assert!(
            run.stderr.contains(file.to_str().unwrap()),
            "{}",
            run.stderr
        );
        assert!(run.stderr.contains(why), "expected {why:?}: {}", run.stderr);
        assert!(run.report.is_none());
        assert!(!s.path("work").join("runs").exists(), "nothing was booted");
        assert!(started.elapsed().as_secs() < 10, "refused without booting");
    }
}
