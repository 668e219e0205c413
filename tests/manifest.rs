//! Manifests and suites in the Go bpfcompat's format, through the real
//! binary, on objects of the test corpus (tests/bpf/): bad ones are refused
//! with file, line and field before anything boots; a good suite runs and
//! its report names each check's case. Fixtures: tests/fixtures/contract/.

mod common;

use std::path::{Path, PathBuf};

use common::truth::build_corpus;
use common::*;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/contract")
        .join(name)
}

/// The corpus, with the fixtures copied beside its objects (suites name
/// their artifacts relative to themselves; `ringbuf.manifest.yaml` is found
/// beside `ringbuf.bpf.o`).
fn corpus_with_fixtures(s: &Scratch) -> PathBuf {
    let corpus = build_corpus(s.dir.path());
    for name in ["corpus.suite.yaml", "globals.yaml", "ringbuf.manifest.yaml"] {
        std::fs::copy(fixture(name), corpus.join(name)).unwrap();
    }
    std::fs::create_dir_all(corpus.join("bad")).unwrap();
    for entry in std::fs::read_dir(fixture("bad")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, corpus.join("bad").join(path.file_name().unwrap())).unwrap();
    }
    corpus
}

/// Runs `args` and checks that it was refused with exit 1, an error line
/// starting `FILE:LINE: ` and holding every part, and that nothing booted.
fn assert_refused(s: &Scratch, args: &[&str], file: &Path, line: usize, parts: &[&str]) {
    let started = std::time::Instant::now();
    let run = s.run(args);
    let context = format!("bpfcompat {}: {}", args.join(" "), run.context());
    assert_eq!(run.code, 1, "{context}");
    let error = run
        .stderr
        .lines()
        .find_map(|l| l.strip_prefix("bpfcompat: error: "))
        .unwrap_or_else(|| panic!("no error line: {context}"));
    let place = format!("{}:{line}: ", file.display());
    assert!(error.starts_with(&place), "expected {place}: {context}");
    for part in parts {
        assert!(error.contains(part), "expected {part:?}: {context}");
    }
    assert!(run.report.is_none(), "{context}");
    assert!(
        !s.path("work").join("runs").exists(),
        "nothing booted: {context}"
    );
    assert!(started.elapsed().as_secs() < 10, "refused without booting");
}

#[test]
fn bad_manifests_and_suites_are_refused_before_booting() {
    let s = Scratch::new();
    let corpus = corpus_with_fixtures(&s);
    let matrix = s.matrix(&[(&TINY, "")]);
    let matrix = matrix.to_str().unwrap();
    let ringbuf = corpus.join("ringbuf.bpf.o");
    let globals = corpus.join("globals.bpf.o");
    let bad = |name: &str| corpus.join("bad").join(name);
    let cases: [(&Path, &str, usize, &[&str]); 6] = [
        (
            &ringbuf,
            "unknown-field.yaml",
            4,
            &["unknown field `sektion`"],
        ),
        (
            &ringbuf,
            "wrong-type.yaml",
            4,
            &["inner_ringbuf_bytes", "invalid type"],
        ),
        (
            &ringbuf,
            "missing-program.yaml",
            4,
            &[
                "programs[1].name: ",
                "has no program \"rb_on_exit\" (its programs: rb_on_switch)",
            ],
        ),
        (
            &ringbuf,
            "missing-map.yaml",
            5,
            &[
                "maps[1].name: ",
                "has no map \"event_counts\" (its maps: events)",
            ],
        ),
        (
            &globals,
            "global-too-big.yaml",
            4,
            &["globals.target_pid: 4294967296 does not fit target_pid (4 bytes in .rodata)"],
        ),
        (
            &globals,
            "global-unknown.yaml",
            3,
            &[
                "globals.target_tgid: ",
                "has no global variable \"target_tgid\"",
                "target_pid (4 bytes in .rodata)",
            ],
        ),
    ];
    for (object, manifest, line, parts) in cases {
        let manifest = bad(manifest);
        assert_refused(
            &s,
            &[
                "test",
                "--artifact",
                object.to_str().unwrap(),
                "--manifest",
                manifest.to_str().unwrap(),
                "--matrix",
                matrix,
            ],
            &manifest,
            line,
            parts,
        );
    }

    // A bad manifest found beside its object is refused the same way.
    let beside = s.path("beside");
    std::fs::create_dir_all(&beside).unwrap();
    let copy = beside.join("ringbuf.bpf.o");
    std::fs::copy(&ringbuf, &copy).unwrap();
    let found = beside.join("ringbuf.manifest.yaml");
    std::fs::copy(bad("missing-map.yaml"), &found).unwrap();
    assert_refused(
        &s,
        &[
            "test",
            "--artifact",
            copy.to_str().unwrap(),
            "--matrix",
            matrix,
        ],
        &found,
        5,
        &["maps[1].name: "],
    );

    for (suite, line, parts) in [
        (
            "unknown-field.suite.yaml",
            5,
            &["unknown field `validation`"][..],
        ),
        ("wrong-type.suite.yaml", 3, &["concurrency", "invalid"][..]),
    ] {
        let suite = bad(suite);
        assert_refused(
            &s,
            &[
                "test",
                "--suite",
                suite.to_str().unwrap(),
                "--matrix",
                matrix,
            ],
            &suite,
            line,
            parts,
        );
    }

    // One --manifest cannot describe several objects.
    let run = s.run(&[
        "test",
        "--artifact",
        ringbuf.to_str().unwrap(),
        "--artifact",
        globals.to_str().unwrap(),
        "--manifest",
        corpus.join("globals.yaml").to_str().unwrap(),
        "--matrix",
        matrix,
    ]);
    assert_eq!(run.code, 1, "{}", run.context());
    assert!(
        run.stderr.contains("--manifest describes one object"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_go_format_suite_runs_in_one_boot_and_names_its_cases() {
    let _lock = boot_lock();
    let s = Scratch::new();
    let corpus = corpus_with_fixtures(&s);
    // Optional in the matrix; the manifest's required_profiles makes it
    // required.
    let matrix = s.matrix(&[(&TINY, "    required: false\n")]);
    let suite = corpus.join("corpus.suite.yaml");
    let run = s.run(&[
        "test",
        "--suite",
        suite.to_str().unwrap(),
        "--matrix",
        matrix.to_str().unwrap(),
    ]);
    assert_eq!(run.code, 0, "{}", run.context());
    // Found beside its object, said so; the Go profile we lack, a warning.
    assert!(
        run.stderr.contains(&format!(
            "{}: using the manifest beside it, {} (ringbuf-events)",
            corpus.join("ringbuf.bpf.o").display(),
            corpus.join("ringbuf.manifest.yaml").display()
        )),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("required_profiles[1]: \"ubuntu-22.04-5.15\" is not a kernel of matrix"),
        "{}",
        run.stderr
    );
    let target = run.target(TINY.id);
    assert_eq!(target["required"], true);
    let checks = target["checks"].as_array().unwrap();
    let cases: Vec<_> = checks
        .iter()
        .map(|c| c["artifact"]["case"].as_str().unwrap())
        .collect();
    assert_eq!(cases, ["ring-events", "knobs"]);
    assert!(checks[0]["artifact"]["manifest"]
        .as_str()
        .unwrap()
        .ends_with("ringbuf.manifest.yaml"));
    assert!(checks[1]["artifact"]["manifest"]
        .as_str()
        .unwrap()
        .ends_with("globals.yaml"));
    // Behavior mode ran: the case's test with the links held, the
    // expect_run program counted.
    assert_eq!(checks[1]["validation"]["mode"], "behavior");
    assert_eq!(checks[1]["status"], "pass", "{}", checks[1]);
    let tests = checks[1]["functional"]["tests"].as_array().unwrap();
    assert_eq!(tests.len(), 1, "{}", checks[1]);
    assert_eq!(tests[0]["status"], "pass");
    assert_eq!(tests[0]["stdout_tail"], "knobs-ok\n");
    let program = &checks[1]["validation"]["programs"][0];
    assert!(
        program["run"]["run_count"].as_u64().unwrap() > 0,
        "{program}"
    );
    assert_eq!(
        checks[1]["validation"]["behavior"]["stats"],
        "BPF_ENABLE_STATS"
    );
    let globals = checks[1]["artifact"]["inspection"]["globals"]
        .as_array()
        .unwrap();
    assert!(globals
        .iter()
        .any(|g| g["name"] == "target_pid" && g["size"] == 4));
    // The history knows the run by the suite's name.
    let history = std::fs::read_to_string(s.path("work").join("history.jsonl")).unwrap();
    assert!(history.contains("\"corpus-suite\""), "{history}");
    let md = std::fs::read_to_string(s.path("report.md")).unwrap();
    assert!(md.contains("| ring-events: ringbuf.bpf.o |"), "{md}");
}
