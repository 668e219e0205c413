//! `bpfcompat compare`: every exit code, the diff it writes, and the history
//! lookup by version.

mod common;

use std::path::Path;

use common::offline::*;
use common::{boot_lock, Scratch, K510, K61};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const PASS: &str = "pass";
const FAIL: &str = "fail";

/// Compares `base` with `head` (written to files) with extra flags, expects
/// `code`, and returns the diff JSON.
fn compare(code: i32, base: &Value, head: &Value, extra: &[&str]) -> (Value, String) {
    let dir = tempfile::tempdir().unwrap();
    let (b, h) = (
        write_json(dir.path(), "base.json", base),
        write_json(dir.path(), "head.json", head),
    );
    let diff = dir.path().join("diff.json").display().to_string();
    let mut args = vec!["compare", "--base", &b, "--head", &h, "--out", &diff];
    args.extend_from_slice(extra);
    let out = expect(code, dir.path(), &args);
    (read_json(Path::new(&diff)), stdout(&out))
}

fn change_of(diff: &Value, id: &str) -> String {
    let k = diff["kernels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == id);
    k.unwrap_or_else(|| panic!("{id} not in {diff}"))["change"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn unchanged_reports_exit_0() {
    let r = report(&[("a", PASS, None), ("b", FAIL, CVF)]);
    let (diff, text) = compare(0, &r, &r, &[]);
    assert_eq!(diff["counts"]["unchanged"], 2);
    assert_eq!(diff["exit_code"], 0);
    assert!(
        text.contains("0 regressed") && text.contains("2 unchanged"),
        "{text}"
    );
    compare(0, &r, &r, &["--fail-on", "any-change"]);
}

#[test]
fn a_required_regression_exits_2_unless_fail_on_never() {
    let base = report(&[("a", PASS, None), ("b", PASS, None), ("c", PASS, None)]);
    let head = report(&[
        ("a", PASS, None),
        ("b", FAIL, CVF),
        ("c", "infra_error", Some("KERNEL_PANIC")),
    ]);
    let (diff, text) = compare(2, &base, &head, &[]);
    assert_eq!(change_of(&diff, "a"), "unchanged");
    assert_eq!(change_of(&diff, "b"), "regressed");
    assert_eq!(change_of(&diff, "c"), "regressed");
    assert_eq!(diff["counts"]["regressed"], 2);
    assert_eq!(diff["fail_on"], "regression");
    assert!(text.contains("FAIL (COMMAND_VALIDATION_FAILURE)"), "{text}");
    compare(0, &base, &head, &["--fail-on", "never"]);
}

#[test]
fn an_optional_regression_exits_0_unless_fail_on_any_change() {
    let base = report(&[("a", PASS, None)]);
    let mut head = report(&[("a", FAIL, CVF)]);
    head["targets"][0]["required"] = json!(false);
    let (diff, _) = compare(0, &base, &head, &[]);
    assert_eq!(change_of(&diff, "a"), "regressed");
    compare(2, &base, &head, &["--fail-on", "any-change"]);
}

#[test]
fn fixes_and_reclassifications_are_changes_but_not_regressions() {
    let base = report(&[("a", FAIL, CVF), ("b", FAIL, CVF), ("c", FAIL, CVF)]);
    let head = report(&[
        ("a", PASS, None),
        ("b", FAIL, Some("INFRA_TIMEOUT")),
        ("c", "infra_error", Some("INFRA_ERROR")),
    ]);
    let (diff, _) = compare(0, &base, &head, &[]);
    assert_eq!(change_of(&diff, "a"), "fixed");
    assert_eq!(change_of(&diff, "b"), "class_changed");
    assert_eq!(change_of(&diff, "c"), "status_changed");
    compare(2, &base, &head, &["--fail-on", "any-change"]);
}

#[test]
fn different_matrices_exit_1_unless_allowed_then_show_added_and_removed() {
    let base = report(&[("a", PASS, None), ("gone", PASS, None)]);
    let mut head = report(&[("a", PASS, None), ("new", FAIL, CVF)]);
    head["matrix"]["digest"] = json!("cd".repeat(32));
    let dir = tempfile::tempdir().unwrap();
    let (b, h) = (
        write_json(dir.path(), "base.json", &base),
        write_json(dir.path(), "head.json", &head),
    );
    let out = expect(1, dir.path(), &["compare", "--base", &b, "--head", &h]);
    let e = stderr(&out);
    assert!(
        e.contains("different matrices") && e.contains("--allow-matrix-change"),
        "{e}"
    );
    assert!(e.contains("base.json") && e.contains("head.json"), "{e}");

    let (diff, _) = compare(0, &base, &head, &["--allow-matrix-change"]);
    assert_eq!(diff["matrix_changed"], true);
    assert_eq!(change_of(&diff, "new"), "added");
    assert_eq!(change_of(&diff, "gone"), "removed");
    // Kernels the head checks first, then those it dropped.
    let ids: Vec<&str> = diff["kernels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["a", "new", "gone"]);
    compare(
        2,
        &base,
        &head,
        &["--allow-matrix-change", "--fail-on", "any-change"],
    );
}

#[test]
fn bad_inputs_exit_1_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let good = write_json(dir.path(), "good.json", &report(&[("a", PASS, None)]));
    let missing = dir.path().join("missing.json").display().to_string();
    let e = stderr(&expect(
        1,
        dir.path(),
        &["compare", "--base", &missing, "--head", &good],
    ));
    assert!(
        e.contains("cannot read report") && e.contains("missing.json"),
        "{e}"
    );

    std::fs::write(dir.path().join("junk.json"), "{not json").unwrap();
    let junk = dir.path().join("junk.json").display().to_string();
    let e = stderr(&expect(
        1,
        dir.path(),
        &["compare", "--base", &good, "--head", &junk],
    ));
    assert!(e.contains("junk.json is not a bpfcompat report"), "{e}");

    let mut v2 = report(&[("a", PASS, None)]);
    v2["schema"] = json!("bpfcompat.report/v2");
    let v2 = write_json(dir.path(), "v2.json", &v2);
    let e = stderr(&expect(
        1,
        dir.path(),
        &["compare", "--base", &good, "--head", &v2],
    ));
    assert!(
        e.contains("bpfcompat.report/v2") && e.contains("same schema"),
        "{e}"
    );

    // Half of each form, or both forms, is a usage error.
    for args in [
        &["compare", "--base", &good][..],
        &["compare", "--artifact-name", "x", "--base-version", "1"],
        &[
            "compare",
            "--base",
            &good,
            "--head",
            &good,
            "--artifact-name",
            "x",
            "--base-version",
            "1",
            "--head-version",
            "2",
        ],
        &[
            "compare",
            "--base",
            &good,
            "--head",
            &good,
            "--fail-on",
            "sometimes",
        ],
    ] {
        expect(1, dir.path(), args);
    }
}

#[test]
fn the_markdown_escapes_what_the_reports_say() {
    let base = report(&[("a", PASS, None)]);
    let mut head = report(&[("a", FAIL, CVF)]);
    head["targets"][0]["classification"]["reason"] = json!("exit 1 | <img src=x> @octocat");
    head["targets"][0]["checks"] = json!([{
        "kind": "command", "status": "fail", "classification": null,
        "artifact": {"name": "loader", "path": null, "sha256": null},
        "validation": {"load_status": "skipped"},
        "functional": {"tests": [{
            "name": "command", "status": "fail", "exit_code": 1, "expected_exit_code": 0,
            "signal": null, "error": null, "stdout_tail": "", "stderr_tail": "```\n</details> boom",
            "stdout_bytes": 0, "stderr_bytes": 20, "duration_ms": 5
        }]}
    }]);
    let dir = tempfile::tempdir().unwrap();
    let (b, h) = (
        write_json(dir.path(), "base.json", &base),
        write_json(dir.path(), "head.json", &head),
    );
    expect(
        2,
        dir.path(),
        &[
            "compare",
            "--base",
            &b,
            "--head",
            &h,
            "--markdown",
            "diff.md",
        ],
    );
    let md = std::fs::read_to_string(dir.path().join("diff.md")).unwrap();
    assert!(md.contains("❌ 1 regressed"), "{md}");
    assert!(
        md.contains("| a | ❌ regressed | ✅ pass | ❌ fail (COMMAND\\_VALIDATION\\_FAILURE) |"),
        "{md}"
    );
    assert!(
        md.contains("exit 1 \\| &lt;img src=x&gt; @\u{200b}octocat"),
        "{md}"
    );
    assert!(md.contains("````text\n```\n</details> boom\n````"), "{md}");
}

/// One history line, as `test-command` appends it.
fn record(name: &str, version: &str, report: &Path, shard: Option<Value>) -> String {
    let sha = hex::encode(Sha256::digest(std::fs::read(report).unwrap()));
    let r = json!({
        "schema": "bpfcompat.history/v1", "recorded_at": "2025-01-01T00:00:00Z",
        "tool_version": env!("CARGO_PKG_VERSION"),
        "artifact": {"id": "command://loader@0123456789abcdef", "name": name, "version": version},
        "matrix": {"name": "ci", "digest": "ab".repeat(32), "path": "/m/ci.yaml"},
        "shard": shard, "status": "pass", "kernels": [],
        "report": {"path": report, "sha256": sha}
    });
    serde_json::to_string(&r).unwrap() + "\n"
}

#[test]
fn versions_are_looked_up_in_the_history() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let r1 = write_json(d, "r1.json", &report(&[("a", PASS, None)]));
    let r2 = write_json(d, "r2.json", &report(&[("a", FAIL, CVF)]));
    let stale = write_json(d, "stale.json", &report(&[("a", PASS, None)]));
    let shard = write_json(d, "shard.json", &report(&[("a", PASS, None)]));
    let history = [
        record("loader", "v1", Path::new(&stale), None),
        record("loader", "v1", Path::new(&r1), None),
        record("other", "v2", Path::new(&r1), None),
        record("loader", "v2", Path::new(&r2), None),
        // A later shard run of v2 is not the whole matrix: not used.
        record(
            "loader",
            "v2",
            Path::new(&shard),
            Some(json!({"index": 1, "count": 2})),
        ),
    ]
    .concat();
    std::fs::create_dir(d.join("work")).unwrap();
    std::fs::write(d.join("work/history.jsonl"), history).unwrap();
    // `compare` by artifact name and versions, looked up in the history.
    let compare_versions = |code: i32, base: &str, head: &str, extra: &[&str]| {
        let mut args = vec![
            "compare",
            "--workdir",
            "work",
            "--artifact-name",
            "loader",
            "--base-version",
            base,
            "--head-version",
            head,
        ];
        args.extend_from_slice(extra);
        expect(code, d, &args)
    };
    let by_version = |code: i32, base: &str, head: &str| {
        compare_versions(code, base, head, &["--out", "diff.json"]);
        read_json(&d.join("diff.json"))
    };
    let diff = by_version(2, "v1", "v2");
    assert_eq!(diff["base"]["report"], r1.as_str(), "the latest v1 run");
    assert_eq!(diff["head"]["report"], r2.as_str());
    assert_eq!(diff["head"]["version"], "v2");
    assert_eq!(change_of(&diff, "a"), "regressed");
    by_version(0, "v2", "v1");

    let e = stderr(&compare_versions(1, "v0", "v2", &[]));
    assert!(
        e.contains("no run of loader version v0")
            && e.contains("recorded versions of loader: v1, v2"),
        "{e}"
    );

    // The v1 report was overwritten by a later run.
    write_json(
        d,
        "r1.json",
        &report(&[("a", PASS, None), ("b", PASS, None)]),
    );
    let e = stderr(&compare_versions(1, "v1", "v2", &[]));
    assert!(e.contains("r1.json") && e.contains("overwrote"), "{e}");
}

/// Needs the booting engine: a loader whose v2 breaks on 6.1, run for real
/// on two kernels (4 boots), compared by version and by file.
#[test]
fn real_loader_v2_breaking_on_6_1_is_a_regression() {
    let _lock = boot_lock();
    let s = Scratch::new();
    let matrix = s.matrix(&[(&K510, ""), (&K61, "")]);
    let matrix = matrix.to_str().unwrap();
    let (r1, r2) = (s.path("v1.json"), s.path("v2.json"));
    let version = |v| ["--artifact-name", "loader", "--artifact-version", v];
    let v1 = s.run_to(
        &r1,
        &[
            &["test-command", "--cmd", "true", "--matrix", matrix][..],
            &version("v1"),
        ]
        .concat(),
    );
    assert_eq!(v1.code, 0, "v1: {}", v1.context());
    let broken = r#"[ "$(uname -r)" != 6.1.0-47-cloud-amd64 ]"#;
    let v2 = s.run_to(
        &r2,
        &[
            &["test-command", "--cmd", broken, "--matrix", matrix][..],
            &version("v2"),
        ]
        .concat(),
    );
    assert_eq!(v2.code, 2, "v2: {}", v2.context());

    let d = s.dir.path();
    expect(
        2,
        d,
        &[
            "compare",
            "--workdir",
            "work",
            "--artifact-name",
            "loader",
            "--base-version",
            "v1",
            "--head-version",
            "v2",
            "--out",
            "diff.json",
            "--markdown",
            "diff.md",
        ],
    );
    let diff = read_json(&d.join("diff.json"));
    assert_eq!(change_of(&diff, K510.id), "unchanged");
    assert_eq!(change_of(&diff, K61.id), "regressed");
    let k61 = diff["kernels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == K61.id)
        .unwrap();
    assert_eq!(k61["head"]["release"], K61.release);
    assert_eq!(k61["head"]["class"], "COMMAND_VALIDATION_FAILURE");
    let md = std::fs::read_to_string(d.join("diff.md")).unwrap();
    assert!(
        md.contains("### Regressions") && md.contains(K61.release),
        "{md}"
    );

    let (r1, r2) = (r1.to_str().unwrap(), r2.to_str().unwrap());
    expect(2, d, &["compare", "--base", r1, "--head", r2]);
    expect(0, d, &["compare", "--base", r2, "--head", r1]);
}
