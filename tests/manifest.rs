//! Manifests and suites in the Go bpfcompat's format, through the real
//! binary, on objects of the test corpus (tests/bpf/): bad ones are refused
//! with file, line and field before anything boots; a good suite runs and
//! its report names each check's case. Fixtures: tests/fixtures/contract/.

mod common;

use std::path::{Path, PathBuf};

use common::truth::{
    build_corpus, check_of, corpus_with_fixtures, differences, remarks, table, Expected,
};
use common::*;
use serde_json::Value;

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
    let corpus = corpus_with_fixtures(s.dir.path());
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
    // Optional in the matrix; the manifest's required_profiles makes it
    // required.
    let (corpus, run) =
        run_fixture_suite(&s, "corpus.suite.yaml", &[(&TINY, "    required: false\n")]);
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

/// A suite and a manifest shaped like the Go bpfcompat's documented examples
/// (defaults with a report_dir, artifact_variant, a load_only case, one
/// object in two cases, an inline behavior test) run as they say.
#[test]
fn a_suite_shaped_like_the_go_docs_runs() {
    let _lock = boot_lock();
    let s = Scratch::new();
    let (_, run) = run_fixture_suite(&s, "go-docs.suite.yaml", &[(&TINY, "")]);
    assert_eq!(run.code, 0, "{}", run.context());
    assert!(
        run.stderr.contains("defaults.report_dir: not used"),
        "{}",
        run.stderr
    );
    let checks = run.target(TINY.id)["checks"].as_array().unwrap();
    let cases: Vec<_> = checks
        .iter()
        .map(|c| {
            assert_eq!(c["status"], "pass", "{c}");
            (
                c["artifact"]["case"].as_str().unwrap(),
                c["validation"]["mode"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        cases,
        [
            ("sched-tracepoint", "load_attach"),
            ("network-xdp", "load_only"),
            ("sched-behavior", "behavior"),
        ]
    );
}

/// The corpus objects that stand for loader contracts, each with its
/// manifest from tests/bpf/ beside it.
fn corpus_with_manifests(s: &Scratch) -> (PathBuf, Vec<String>) {
    let corpus = build_corpus(s.dir.path());
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bpf");
    let mut names: Vec<String> = std::fs::read_dir(&src)
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name.strip_suffix(".manifest.yaml").map(str::to_owned)
        })
        .collect();
    names.sort();
    for name in &names {
        let file = format!("{name}.manifest.yaml");
        std::fs::copy(src.join(&file), corpus.join(&file)).unwrap();
    }
    (corpus, names)
}

/// GROUND_TRUTH.md says, for every manifest of the corpus, what each kernel
/// must report with it, in the tables' format.
#[test]
fn every_corpus_manifest_has_its_expected_cells() {
    let s = Scratch::new();
    let (_, names) = corpus_with_manifests(&s);
    assert!(names.len() >= 7, "{names:?}");
    let with = table("| object + manifest | 5.10 | 6.1 | 6.12 | 7.2 | tiny |");
    let objects: Vec<&str> = with.iter().map(|(o, _)| o.as_str()).collect();
    assert_eq!(objects, names);
    assert!(with.iter().all(|(_, cells)| cells.len() == ALL.len()));
    // Where a fixup is what makes an object load, it fails on every kernel
    // with --no-fixups and no manifest, and passes with its manifest.
    let no_auto = table(NO_FIXUPS);
    assert_eq!(no_auto.len(), 5);
    for (object, cells) in &no_auto {
        assert!(
            cells.iter().all(|c| matches!(c, Expected::Load(..))),
            "{object}: {cells:?}"
        );
        let (_, cells) = with.iter().find(|(o, _)| o == object).unwrap();
        assert!(cells.iter().all(|c| *c == Expected::Pass), "{object}");
    }
}

const WITH_MANIFESTS: &str = "| object + manifest | 5.10 | 6.1 | 6.12 | 7.2 | tiny |";
const NO_FIXUPS: &str = "| object, no manifest, --no-fixups | 5.10 | 6.1 | 6.12 | 7.2 | tiny |";
/// The bare kernels' table: the corpus without manifests, automatic
/// fixups on.
const MAIN: &str = "| object | 5.10 | 6.1 | 6.12 | 7.2 | tiny |";
/// Objects whose maps leave nothing to their loader, though they look as
/// if they might (GROUND_TRUTH.md, "What maps leave to their loader").
const LEAVE_NOTHING: [&str; 2] = ["bloom_default", "struct_ops_link"];

/// The rows of table `header` for `objects`.
fn rows_of(header: &str, objects: &[&str]) -> Vec<(String, Vec<Expected>)> {
    table(header)
        .into_iter()
        .filter(|(o, _)| objects.contains(&o.as_str()))
        .collect()
}

/// `bpfcompat test` of the corpus `objects` on the five kernels, with
/// `flags`.
fn run_corpus(s: &Scratch, corpus: &Path, objects: &[&str], flags: &[&str]) -> Run {
    let matrix = s.matrix(&ALL.map(|k| (k, "")));
    let paths: Vec<String> = objects
        .iter()
        .map(|n| corpus.join(format!("{n}.bpf.o")).display().to_string())
        .collect();
    let mut args = vec!["test", "--matrix", matrix.to_str().unwrap()];
    args.extend(flags);
    for p in &paths {
        args.extend(["--artifact", p.as_str()]);
    }
    s.run(&args)
}

/// Every cell of `truth` that `run` contradicts, as lines.
fn contradicted(truth: &[(String, Vec<Expected>)], run: &Run) -> String {
    let ids = ALL.map(|k| k.id);
    differences(truth, &ids, |id| run.target(id).clone()).join("\n")
}

/// The report's fixup `field` of map `map` in `check`.
fn fixup<'a>(check: &'a Value, map: &str, field: &str) -> &'a Value {
    check["validation"]["fixups"]
        .as_array()
        .and_then(|f| f.iter().find(|f| f["map"] == map && f["field"] == field))
        .unwrap_or_else(|| panic!("no fixup of {map} {field}: {check}"))
}

/// The loader-contract objects with their manifests (found beside them) on
/// the five kernels: every cell of GROUND_TRUTH.md's table, the variant
/// each kernel selects, and the fixups each check names.
#[test]
fn the_contract_corpus_with_its_manifests_on_every_test_kernel() {
    let _lock = boot_lock();
    let s = Scratch::new();
    let (corpus, names) = corpus_with_manifests(&s);
    let objects: Vec<&str> = names.iter().map(String::as_str).collect();
    let run = run_corpus(&s, &corpus, &objects, &[]);
    // Some fail on tiny with their manifests too (see GROUND_TRUTH.md).
    assert_eq!(run.code, 2, "{}", run.context());
    for object in &objects {
        let object = corpus.join(format!("{object}.bpf.o"));
        assert!(
            run.stderr.contains(&format!(
                "{}: using the manifest beside it",
                object.display()
            )),
            "{}",
            run.stderr
        );
    }
    let ids = ALL.map(|k| k.id);
    let wrong = contradicted(&table(WITH_MANIFESTS), &run);
    assert!(wrong.is_empty(), "ground truth differs:\n{wrong}");

    // Exactly the winner is loaded; the others say why not.
    for (object, remarks) in remarks(WITH_MANIFESTS) {
        for (id, remark) in ids.iter().zip(remarks) {
            let check = check_of(run.target(id), &object);
            let (Some(groups), Some(winner)) = (check["validation"]["variants"].as_array(), remark)
            else {
                continue;
            };
            let group = &groups[0];
            assert_eq!(
                group["selected"].as_str(),
                Some(winner.as_str()),
                "{object} on {id}: {group}"
            );
            for not in group["not_selected"].as_array().unwrap() {
                let program = check["validation"]["programs"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|p| p["name"] == not["program"])
                    .unwrap();
                assert_eq!(program["load"]["status"], "skipped", "{program}");
                assert!(
                    program["load"]["error"]
                        .as_str()
                        .unwrap()
                        .starts_with("not selected"),
                    "{program}"
                );
            }
        }
    }
    // The fixups are named: sizes from the manifest, the CPU count.
    let rings = check_of(run.target(K61.id), "ringbuf_cpus");
    let fixups = rings["validation"]["fixups"].to_string();
    assert!(
        fixups.contains("possible CPUs") && fixups.contains("ringbuf of 262144 bytes"),
        "{fixups}"
    );
    // stack_depth: 64 frames of 8 bytes; the trie's flag by name.
    let stacks = check_of(run.target(K510.id), "stack_unsized");
    let depth = fixup(stacks, "stack_traces", "value_size");
    assert_eq!(
        (&depth["value"], &depth["why"]),
        (&"512".into(), &"manifest".into())
    );
    let trie = check_of(run.target(TINY.id), "lpm_unflagged");
    assert_eq!(
        fixup(trie, "allowed_nets", "map_flags")["value"],
        "0x1 (BPF_F_NO_PREALLOC)"
    );
    let md = std::fs::read_to_string(s.path("report.md")).unwrap();
    assert!(md.contains("#### Loader contract"), "{md}");
    assert!(
        md.contains("| variant\\_trio.bpf.o: variant group rule\\_added | `rule_added_tracepoint` | `rule_added_kprobe` | `rule_added_fentry` | `rule_added_fentry` | `rule_added_tracepoint` |"),
        "{md}"
    );
}

/// Without manifests and with --no-fixups, what the loader leaves to run
/// time fails on every kernel, named as the object's gap with the manifest
/// field that fills it; no map a kernel refuses for a parameter the object
/// left unset is UNKNOWN; objects that leave nothing are unchanged.
#[test]
fn without_fixups_what_the_loader_sets_fails_everywhere() {
    let _lock = boot_lock();
    let s = Scratch::new();
    let corpus = build_corpus(s.dir.path());
    let truth = table(NO_FIXUPS);
    let mut objects: Vec<&str> = truth.iter().map(|(n, _)| n.as_str()).collect();
    objects.extend(LEAVE_NOTHING);
    let run = run_corpus(&s, &corpus, &objects, &["--no-fixups"]);
    assert_eq!(run.code, 2, "{}", run.context());
    let wrong = contradicted(&truth, &run) + &contradicted(&rows_of(MAIN, &LEAVE_NOTHING), &run);
    assert!(wrong.is_empty(), "ground truth differs:\n{wrong}");
    let stacks = check_of(run.target(K612.id), "stack_sized");
    assert!(stacks["validation"].get("fixups").is_none(), "{stacks}");
    let says = |object: &str, parts: &[&str]| {
        let class = &check_of(run.target(K612.id), object)["classification"];
        let text = format!("{} {}", class["reason"], class["hint"]);
        for part in parts {
            assert!(text.contains(part), "{object}: {part:?} in {class}");
        }
    };
    says("stack_sized", &["manifest", "max_entries: N"]);
    says(
        "stack_unsized",
        &[
            "leaves value_size and max_entries to its loader",
            "name: stack_traces, stack_depth: N (or value_size: N), max_entries: N",
            "drop --no-fixups",
        ],
    );
    says("lpm_unflagged", &["map_flags: [BPF_F_NO_PREALLOC]"]);
    for k in ALL {
        for check in run.target(k.id)["checks"].as_array().unwrap() {
            map_failures_blame_the_kernel_only_for_what_is_set(check);
        }
    }
}

/// Each map of `check` that failed to create: a type the kernel lacks, the
/// object's gap where it leaves the map something to set, and only where
/// it leaves nothing the kernel's refusal of what it set.
fn map_failures_blame_the_kernel_only_for_what_is_set(check: &Value) {
    let inspected = check["artifact"]["inspection"]["maps"].as_array().unwrap();
    for map in check["validation"]["maps"].as_array().unwrap() {
        let Some(class) = map["diagnosis"]["class"].as_str() else {
            continue;
        };
        let left = &inspected.iter().find(|m| m["name"] == map["name"]).unwrap()["left_to_loader"];
        let gap = !left.as_array().unwrap().is_empty();
        match class {
            "UNSUPPORTED_MAP_TYPE" => {}
            "INVALID_OBJECT" => assert!(gap, "{map} leaves nothing: {check}"),
            _ => assert!(!gap, "{map} leaves {left} to its loader: {check}"),
        }
    }
}

/// Maps that leave their value size, max_entries or a flag to their
/// loader load on every kernel with the fixups a loader applies, each
/// named with its value; a bloom filter without map_extra needs none; a
/// flag too new for a kernel is still that kernel's to refuse.
#[test]
fn maps_the_loader_leaves_unset_load_with_their_fixups_named() {
    let _lock = boot_lock();
    let s = Scratch::new();
    let corpus = build_corpus(s.dir.path());
    let mut objects = vec!["stack_unsized", "lpm_unflagged", "stack_sized"];
    objects.extend(LEAVE_NOTHING);
    let run = run_corpus(&s, &corpus, &objects, &[]);
    assert_eq!(run.code, 2, "{}", run.context());
    let wrong = contradicted(&rows_of(MAIN, &objects), &run);
    assert!(wrong.is_empty(), "ground truth differs:\n{wrong}");
    for k in ALL {
        let t = run.target(k.id);
        assert_eq!(t["kernel"]["bpf"]["perf_event_max_stack"], 127, "{}", k.id);
        let stacks = check_of(t, "stack_unsized");
        let depth = fixup(stacks, "stack_traces", "value_size");
        assert_eq!(depth["value"], "1016 (127 frames of 8 bytes)", "{depth}");
        assert!(
            depth["why"]
                .as_str()
                .unwrap()
                .contains("the kernel's perf_event_max_stack"),
            "{depth}"
        );
        assert_eq!(
            fixup(stacks, "stack_traces", "max_entries")["value"],
            "10240"
        );
        let trie = check_of(t, "lpm_unflagged");
        let flags = fixup(trie, "allowed_nets", "map_flags");
        assert_eq!(flags["value"], "0x1 (BPF_F_NO_PREALLOC)", "{flags}");
        assert_eq!(trie["validation"]["fixups"].as_array().unwrap().len(), 1);
        for object in LEAVE_NOTHING {
            let c = check_of(t, object);
            assert!(c["validation"].get("fixups").is_none(), "{c}");
        }
        for check in t["checks"].as_array().unwrap() {
            map_failures_blame_the_kernel_only_for_what_is_set(check);
        }
    }
    // The inspection says what each map leaves to its loader.
    let t510 = run.target(K510.id);
    let left = |object: &str| {
        check_of(t510, object)["artifact"]["inspection"]["maps"][0]["left_to_loader"].clone()
    };
    assert_eq!(
        left("stack_unsized"),
        serde_json::json!(["value_size", "max_entries"])
    );
    assert_eq!(left("lpm_unflagged"), serde_json::json!(["no_prealloc"]));
    assert_eq!(left("bloom_default"), serde_json::json!([]));
    // BPF_F_LINK (6.4) is a flag the object sets: 5.10 refuses it.
    let link = &check_of(t510, "struct_ops_link")["classification"];
    assert_eq!(link["phase"], "map_create", "{link}");
    assert!(
        link["hint"]
            .as_str()
            .unwrap()
            .contains("added after this kernel"),
        "{link}"
    );
    let md = std::fs::read_to_string(s.path("report.md")).unwrap();
    assert!(md.contains("map stack\\_traces value\\_size"), "{md}");
}

/// Runs the fixture suite `name` beside the compiled corpus on `kernels`;
/// returns the corpus directory too.
fn run_fixture_suite(s: &Scratch, name: &str, kernels: &[(&Kernel, &str)]) -> (PathBuf, Run) {
    let corpus = corpus_with_fixtures(s.dir.path());
    let matrix = s.matrix(kernels);
    let suite = corpus.join(name);
    let run = s.run(&[
        "test",
        "--suite",
        suite.to_str().unwrap(),
        "--matrix",
        matrix.to_str().unwrap(),
    ]);
    (corpus, run)
}

/// Behavior mode on every kernel: run statistics, the links held while a
/// functional test runs (only the test triggers on_sethostname), a program
/// the workload does not reach shown as not triggered, a failing test
/// classified with its output, and a program that must run and does not.
#[test]
fn behavior_mode_on_every_test_kernel() {
    let _lock = boot_lock();
    let s = Scratch::new();
    let (_, run) = run_fixture_suite(&s, "behavior.suite.yaml", &ALL.map(|k| (k, "")));
    assert_eq!(run.code, 2, "{}", run.context());
    for k in ALL {
        let checks = run.target(k.id)["checks"].as_array().unwrap().clone();
        let [held, fails, not_triggered] = &checks[..] else {
            panic!("three cases on {}: {checks:?}", k.id)
        };
        assert_eq!(held["status"], "pass", "{} {held}", k.id);
        assert_eq!(held["validation"]["mode"], "behavior");
        assert_eq!(held["validation"]["behavior"]["stats"], "BPF_ENABLE_STATS");
        let runs = |c: &Value, p: &str| -> u64 {
            c["validation"]["programs"]
                .as_array()
                .unwrap()
                .iter()
                .find(|x| x["name"] == p)
                .unwrap()["run"]["run_count"]
                .as_u64()
                .unwrap()
        };
        assert!(runs(held, "on_sethostname") > 0, "{} {held}", k.id);
        assert!(runs(held, "on_switch") > 0, "{} {held}", k.id);
        assert_eq!(runs(held, "on_reboot"), 0);
        let warnings = held["warnings"].to_string();
        assert!(
            warnings.contains("on_reboot: attached but not triggered"),
            "{warnings}"
        );
        let test = &held["functional"]["tests"][0];
        assert_eq!(test["status"], "pass", "{test}");
        assert_eq!(test["stdout_tail"], "bpfcompat-guest\n");

        let class = &fails["classification"];
        assert_eq!(class["code"], "FUNCTIONAL_TEST_FAILURE", "{} {fails}", k.id);
        let reason = class["reason"].as_str().unwrap();
        assert!(
            reason.contains("must-fail")
                && reason.contains("exited 4")
                && reason.contains("no-events-seen"),
            "{reason}"
        );
        assert_eq!(
            fails["functional"]["tests"][0]["failure"],
            "exited 4, expected 0"
        );

        let class = &not_triggered["classification"];
        assert_eq!(
            class["code"], "PROGRAM_NOT_TRIGGERED",
            "{} {not_triggered}",
            k.id
        );
        assert!(
            class["reason"]
                .as_str()
                .unwrap()
                .starts_with("on_reboot never ran"),
            "{class}"
        );
    }
}

/// Attach targets from a manifest replace the section's, on a real kernel:
/// a kprobe's function, a tracepoint, a uprobe's binary and symbol; an
/// interface or a cgroup the guest lacks is a missing target naming it;
/// an optional attach that fails makes the check partial, not failed.
#[test]
fn manifests_choose_attach_targets() {
    let _lock = boot_lock();
    let s = Scratch::new();
    let (_, run) = run_fixture_suite(&s, "attach.suite.yaml", &[(&K61, "")]);
    assert_eq!(run.code, 2, "{}", run.context());
    let checks = run.target(K61.id)["checks"].as_array().unwrap().clone();
    let case = |name: &str| {
        checks
            .iter()
            .find(|c| c["artifact"]["case"] == name)
            .unwrap()
            .clone()
    };
    let attach = |c: &Value, program: &str| {
        c["validation"]["programs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == program)
            .unwrap()["attach"]
            .clone()
    };

    let kprobe = case("kprobe-symbol");
    assert_eq!(kprobe["status"], "pass", "{kprobe}");
    assert_eq!(attach(&kprobe, "on_missing_symbol")["target"], "vfs_read");

    let optional = case("kprobe-optional");
    assert_eq!(optional["status"], "partial", "{optional}");
    assert!(
        optional["skipped"][0]
            .as_str()
            .unwrap()
            .contains("optional"),
        "{optional}"
    );
    assert_eq!(
        optional["validation"]["programs"][0]["attach_optional"],
        true
    );

    let tp = case("tracepoint");
    assert_eq!(tp["status"], "pass", "{tp}");
    assert_eq!(
        attach(&tp, "on_sched_switch")["target"],
        "sched/sched_process_exec"
    );

    let uprobe = case("uprobe");
    assert_eq!(
        attach(&uprobe, "on_unnamed_uprobe")["status"],
        "pass",
        "{uprobe}"
    );
    assert_eq!(
        attach(&uprobe, "on_unnamed_uprobe")["target"],
        "/bin/bash:readline"
    );

    for (name, target) in [
        ("interface", "interface eth0"),
        ("cgroup", "cgroup /sys/fs/cgroup/app"),
    ] {
        let c = case(name);
        assert_eq!(c["status"], "fail", "{c}");
        assert_eq!(c["classification"]["code"], "ATTACH_TARGET_MISSING", "{c}");
        assert!(
            c["classification"]["hint"]
                .as_str()
                .unwrap()
                .contains(target),
            "{c}"
        );
    }
}
