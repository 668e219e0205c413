//! `--shard I/N` and `merge` through the CLI. The split itself (5 kernels
//! into 1, 2, 3 and 5 shards) and merging back to the unsharded report are
//! unit tests in src/shard.rs and src/merge.rs.

mod common;

use std::path::Path;

use common::offline::*;
use common::{boot_lock, Scratch, ALL, K510, K72, TINY};
use serde_json::{json, Value};

/// A matrix of `n` kernels whose files exist (they are never booted here).
fn dummy_matrix(dir: &Path, n: usize) -> String {
    let kernels: String = (0..n)
        .map(|i| {
            std::fs::write(dir.join(format!("k{i}")), "not a kernel").unwrap();
            format!("  - id: k{i}\n    source: {{file: k{i}}}\n")
        })
        .collect();
    std::fs::write(dir.join("m.yaml"), format!("name: m\nkernels:\n{kernels}")).unwrap();
    dir.join("m.yaml").display().to_string()
}

#[test]
fn bad_shards_are_usage_errors_before_anything_boots() {
    let dir = tempfile::tempdir().unwrap();
    let matrix = dummy_matrix(dir.path(), 5);
    let run = |shard: &str| {
        let out = expect(
            1,
            dir.path(),
            &[
                "test-command",
                "--cmd",
                "true",
                "--matrix",
                &matrix,
                "--out",
                "r.json",
                "--shard",
                shard,
            ],
        );
        stderr(&out)
    };
    for bad in ["0/3", "4/3", "3", "a/b", "1/0"] {
        let e = run(bad);
        assert!(e.contains("I/N") && e.contains(bad), "{bad}: {e}");
    }
    let e = run("6/6");
    assert!(
        e.contains("--shard 6/6") && e.contains("only 5 kernel"),
        "{e}"
    );
    assert!(!dir.path().join("r.json").exists());
}

/// `report(verdicts)` as shard `index` of `count` of the matrix a..e.
fn shard(verdicts: &[Verdict], index: usize, count: usize) -> Value {
    let mut r = report(verdicts);
    r["shard"] =
        json!({"index": index, "count": count, "matrix_kernels": ["a", "b", "c", "d", "e"]});
    r
}

fn write_shards(dir: &Path) -> [String; 2] {
    [
        write_json(
            dir,
            "shard-1.json",
            &shard(
                &[
                    ("a", "pass", None),
                    ("c", "pass", None),
                    ("e", "pass", None),
                ],
                1,
                2,
            ),
        ),
        write_json(
            dir,
            "shard-2.json",
            &shard(&[("b", "fail", CVF), ("d", "pass", None)], 2, 2),
        ),
    ]
}

#[test]
fn merge_restores_matrix_order_and_exits_with_the_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let s = write_shards(d);
    let out = expect(
        2,
        d,
        &[
            "merge",
            &s[1],
            &s[0],
            "--out",
            "merged.json",
            "--markdown",
            "merged.md",
        ],
    );
    assert!(
        stdout(&out).contains("4 passed, 1 failed, 0 infra errors"),
        "{}",
        stdout(&out)
    );
    let merged = read_json(&d.join("merged.json"));
    common::assert_valid_report(&merged);
    let ids = bpfcompat_testkit::reports::target_ids(&merged);
    assert_eq!(ids, ["a", "b", "c", "d", "e"]);
    assert!(
        merged.get("shard").is_none(),
        "a merged report is a whole-matrix report"
    );
    assert_eq!(merged["summary"]["exit_code"], 2);
    assert_eq!(merged["summary"]["failed"], 1);
    assert_eq!(
        without_run_details(merged),
        without_run_details(report(&[
            ("a", "pass", None),
            ("b", "fail", CVF),
            ("c", "pass", None),
            ("d", "pass", None),
            ("e", "pass", None),
        ]))
    );
    assert!(std::fs::read_to_string(d.join("merged.md"))
        .unwrap()
        .contains("| b |"));
}

#[test]
fn merge_refuses_missing_duplicated_and_foreign_shards() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let s = write_shards(d);

    let e = stderr(&expect(1, d, &["merge", &s[0], "--out", "m.json"]));
    assert!(
        e.contains("missing shard 2/2 (kernels b, d)") && e.contains("--allow-partial"),
        "{e}"
    );
    assert!(!d.join("m.json").exists());
    let out = expect(
        0,
        d,
        &["merge", &s[0], "--out", "m.json", "--allow-partial"],
    );
    assert!(
        stderr(&out).contains("warning: merged without shard 2/2"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        read_json(&d.join("m.json"))["targets"]
            .as_array()
            .unwrap()
            .len(),
        3
    );

    let e = stderr(&expect(
        1,
        d,
        &[
            "merge",
            &s[0],
            &s[1],
            &s[1],
            "--out",
            "m.json",
            "--allow-partial",
        ],
    ));
    assert!(e.contains("shard 2/2 is given twice"), "{e}");

    let mut other = read_json(Path::new(&s[1]));
    other["artifact"]["id"] = json!("sha256:other");
    write_json(d, "other.json", &other);
    let e = stderr(&expect(
        1,
        d,
        &["merge", &s[0], "other.json", "--out", "m.json"],
    ));
    assert!(e.contains("other.json has artifact sha256:other"), "{e}");

    write_json(d, "whole.json", &report(&[("a", "pass", None)]));
    let e = stderr(&expect(1, d, &["merge", "whole.json", "--out", "m.json"]));
    assert!(e.contains("whole.json is not a shard report"), "{e}");

    let e = stderr(&expect(1, d, &["merge", "nope.json", "--out", "m.json"]));
    assert!(e.contains("cannot read report nope.json"), "{e}");
    expect(1, d, &["merge", "--out", "m.json"]);
}

/// Needs the booting engine: three real kernels (the .deb among them) run
/// unsharded and as shards 1/2 and 2/2 (6 boots); the merged shards equal
/// the unsharded report apart from times and run paths, and `compare` finds
/// no change between them.
#[test]
fn real_shards_merge_into_the_unsharded_report() {
    let _lock = boot_lock();
    let s = Scratch::new();
    let matrix = s.matrix(&[(&K510, ""), (&TINY, ""), (&K72, "")]);
    let matrix = matrix.to_str().unwrap();
    // Fails on the tiny kernel only, so the merge carries a failure too.
    let run = |out: &str, extra: &[&str]| {
        let cmd = r#"[ "$(uname -r)" != 6.1.192 ]"#;
        s.run_to(
            &s.path(out),
            &[
                &["test-command", "--cmd", cmd, "--matrix", matrix][..],
                extra,
            ]
            .concat(),
        )
    };
    let whole = run("whole.json", &[]);
    assert_eq!(whole.code, 2, "unsharded: {}", whole.context());
    let one = run("shard-1.json", &["--shard", "1/2"]);
    let two = run("shard-2.json", &["--shard", "2/2"]);
    for (shard, ids) in [(&one, vec![K510.id, K72.id]), (&two, vec![TINY.id])] {
        let r = shard.report();
        assert_eq!(
            r["shard"]["matrix_kernels"],
            json!([K510.id, TINY.id, K72.id])
        );
        let got = bpfcompat_testkit::reports::target_ids(r);
        assert_eq!(got, ids, "{}", shard.context());
    }
    assert_eq!(one.code, 0, "{}", one.context());
    assert_eq!(two.code, 2, "{}", two.context());

    let d = s.dir.path();
    expect(
        2,
        d,
        &[
            "merge",
            "shard-2.json",
            "shard-1.json",
            "--out",
            "merged.json",
        ],
    );
    let merged = read_json(&d.join("merged.json"));
    common::assert_valid_report(&merged);
    assert_eq!(
        without_run_details(merged),
        without_run_details(whole.report().clone())
    );
    expect(
        0,
        d,
        &[
            "compare",
            "--base",
            "whole.json",
            "--head",
            "merged.json",
            "--fail-on",
            "any-change",
        ],
    );
}

#[test]
fn a_plan_that_does_not_split_this_matrix_is_refused_before_anything_boots() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let matrix = dummy_matrix(d, 3);
    let out = expect(
        0,
        d,
        &[
            "shards",
            "plan",
            "--matrix",
            &matrix,
            "--jobs",
            "2",
            "--out",
            "plan.json",
        ],
    );
    assert!(
        stdout(&out).contains("shard 2/2: 1 kernel(s)")
            && stdout(&out).contains("0 of 3 kernels measured"),
        "{}",
        stdout(&out)
    );
    let e = stderr(&expect(
        1,
        d,
        &["shards", "plan", "--matrix", &matrix, "--jobs", "4"],
    ));
    assert!(e.contains("--jobs 4") && e.contains("only 3 kernel"), "{e}");
    // A kernel added since the plan was made.
    let grown = dummy_matrix(d, 4);
    let test = |shard: &str| {
        let args = [
            "test-command",
            "--cmd",
            "true",
            "--matrix",
            &grown,
            "--out",
            "r.json",
            "--shard",
            shard,
            "--shard-plan",
            "plan.json",
        ];
        stderr(&expect(1, d, &args))
    };
    let e = test("1/2");
    assert!(
        e.contains("plan.json has no shard for kernel k3") && e.contains("shards plan"),
        "{e}"
    );
    let e = test("1/3");
    assert!(e.contains("the plan has 2 shard(s)"), "{e}");
    assert!(!d.join("r.json").exists());
}

/// What the fan-out workflow runs, on the five test kernels: one whole run,
/// a plan of three shards from its times, the three shards by that plan
/// and their merge, equal to the whole run cell by cell.
#[test]
fn planned_shards_of_the_test_kernels_merge_into_the_one_runner_report() {
    let _lock = boot_lock();
    let s = Scratch::new();
    let matrix = s.matrix(&ALL.map(|k| (k, "")));
    let matrix = matrix.to_str().unwrap();
    let cmd = r#"[ "$(uname -r)" != 6.1.192 ]"#;
    let run = |out: &str, extra: &[&str]| {
        let args = [
            &["test-command", "--cmd", cmd, "--matrix", matrix][..],
            extra,
        ]
        .concat();
        s.run_to(&s.path(out), &args)
    };
    let whole = run("whole.json", &[]);
    assert_eq!(whole.code, 2, "{}", whole.context());
    let d = s.dir.path();
    let github_output = s.path("github-output");
    let planned = expect(
        0,
        d,
        &[
            "shards",
            "plan",
            "--matrix",
            matrix,
            "--jobs",
            "3",
            "--timings",
            "whole.json",
            "--out",
            "plan.json",
            "--github-output",
            github_output.to_str().unwrap(),
        ],
    );
    assert!(
        stdout(&planned).contains("5 of 5 kernels measured"),
        "{}",
        stdout(&planned)
    );
    assert_eq!(
        std::fs::read_to_string(&github_output).unwrap(),
        "shards=[\"1/3\",\"2/3\",\"3/3\"]\n"
    );
    let plan_file = s.path("plan.json");
    let plan = read_json(&plan_file);
    let mut shards = Vec::new();
    for i in 1..=3 {
        let (spec, out) = (format!("{i}/3"), format!("shard-{i}.json"));
        let plan_file = plan_file.to_str().unwrap();
        let shard = run(&out, &["--shard", &spec, "--shard-plan", plan_file]);
        let ids: Vec<Value> = shard.report()["targets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].clone())
            .collect();
        assert_eq!(
            json!(ids),
            plan["shards"][i - 1]["kernels"],
            "{}",
            shard.context()
        );
        shards.push(out);
    }
    let mut merge = vec!["merge", "--out", "merged.json"];
    merge.extend(shards.iter().map(String::as_str));
    expect(2, d, &merge);
    let merged = read_json(&d.join("merged.json"));
    common::assert_valid_report(&merged);
    assert_eq!(
        without_run_details(merged),
        without_run_details(whole.report().clone())
    );
}
