//! The run history through the CLI: `history list` over a history with a
//! torn last line, and real runs appending to one history at once.
//! (Many concurrent writers and appends after a torn line are unit tests in
//! src/history.rs.)

mod common;

use std::path::Path;

use common::offline::*;
use common::{boot_lock, Scratch, K612};
use serde_json::{json, Value};

fn record(name: &str, version: Option<&str>, status: &str) -> String {
    let r = json!({
        "schema": "bpfcompat.history/v1", "recorded_at": "2025-01-01T00:00:00Z",
        "tool_version": env!("CARGO_PKG_VERSION"),
        "artifact": {"id": format!("command://{name}@0123456789abcdef"), "name": name, "version": version},
        "matrix": {"name": "ci", "digest": "ab".repeat(32), "path": "/m/ci.yaml"},
        "shard": null, "status": status,
        "kernels": [{"id": "a", "status": "pass", "class": null},
                    {"id": "b", "status": "fail", "class": "COMMAND_VALIDATION_FAILURE"}],
        "report": {"path": format!("/r/{name}.json"), "sha256": "0".repeat(64)}
    });
    serde_json::to_string(&r).unwrap() + "\n"
}

fn list(dir: &Path, extra: &[&str]) -> (Vec<Value>, String) {
    let mut args = vec!["history", "list", "--workdir", "work", "--json"];
    args.extend_from_slice(extra);
    let out = expect(0, dir, &args);
    (serde_json::from_slice(&out.stdout).unwrap(), stderr(&out))
}

#[test]
fn list_skips_a_torn_last_line_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("work")).unwrap();
    let torn = record("c", Some("3"), "fail");
    let text = [
        record("a", Some("1"), "fail"),
        record("b", None, "pass"),
        torn[..torn.len() / 2].to_owned(),
    ]
    .concat();
    std::fs::write(d.join("work/history.jsonl"), text).unwrap();

    let (records, warnings) = list(d, &[]);
    let names: Vec<&str> = records
        .iter()
        .map(|r| r["artifact"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["b", "a"], "newest first, torn record skipped");
    assert!(
        warnings.contains("history.jsonl:3: skipped an incomplete last record"),
        "{warnings}"
    );

    let (records, _) = list(d, &["--limit", "1"]);
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["artifact"]["name"], "b");
    let (records, _) = list(d, &["--artifact-name", "a"]);
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["artifact"]["version"], "1");

    let out = expect(0, d, &["history", "list", "--workdir", "work"]);
    let table = stdout(&out);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    assert!(
        lines[0].starts_with("RECORDED") && lines[0].contains("VERSION"),
        "{table}"
    );
    assert!(
        lines[1].contains(" b ") && lines[1].contains(" - ") && lines[1].contains("1/2 passed"),
        "{table}"
    );
    assert!(
        lines[2].contains("FAIL, 1/2 passed") && lines[2].contains("/r/a.json"),
        "{table}"
    );

    expect(
        1,
        d,
        &["history", "list", "--workdir", "work", "--limit", "0"],
    );
}

#[test]
fn list_of_a_workdir_without_history_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let out = expect(
        0,
        dir.path(),
        &["history", "list", "--workdir", "nothing-here"],
    );
    assert!(
        stdout(&out).starts_with("no runs recorded in nothing-here/history.jsonl"),
        "{}",
        stdout(&out)
    );
    let (records, _) = list(dir.path(), &[]);
    assert!(records.is_empty());
}

/// Needs the booting engine: two real runs (one kernel each, 2 boots)
/// finishing into one workdir at the same time both land in the history,
/// with their names, versions (given, or `git describe` of the current
/// repository), absolute report paths and the digests of their reports.
#[test]
fn real_concurrent_runs_both_append_to_the_history() {
    let _lock = boot_lock();
    let s = Scratch::new();
    let matrix = s.matrix(&[(&K612, "")]);
    let matrix = matrix.to_str().unwrap();
    let (ra, rb) = (s.path("a.json"), s.path("b.json"));
    let (a, b) = std::thread::scope(|scope| {
        let a =
            scope.spawn(|| s.run_to(&ra, &["test-command", "--cmd", "true", "--matrix", matrix]));
        let b = scope.spawn(|| {
            s.run_to(
                &rb,
                &[
                    "test-command",
                    "--cmd",
                    "false",
                    "--matrix",
                    matrix,
                    "--artifact-name",
                    "loader",
                    "--artifact-version",
                    "v2",
                ],
            )
        });
        (a.join().unwrap(), b.join().unwrap())
    });
    assert_eq!(a.code, 0, "a: {}", a.context());
    assert_eq!(b.code, 2, "b: {}", b.context());

    // The runs' current directory is this project's.
    let describe = std::process::Command::new("git")
        .args(["describe", "--always", "--dirty"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map_or(Value::Null, |o| {
            json!(String::from_utf8_lossy(&o.stdout).trim())
        });
    let (records, warnings) = list(s.dir.path(), &[]);
    assert!(warnings.is_empty(), "{warnings}");
    assert_eq!(records.len(), 2, "{records:?}");
    for (report, name, version, status) in [
        (&ra, "true", describe, "pass"),
        (&rb, "loader", json!("v2"), "fail"),
    ] {
        let r = records
            .iter()
            .find(|r| r["report"]["path"] == report.to_str().unwrap());
        let r = r.unwrap_or_else(|| panic!("no record of {}: {records:?}", report.display()));
        let written = read_json(report);
        assert_eq!(r["artifact"]["name"], name);
        assert_eq!(r["artifact"]["id"], written["artifact"]["id"]);
        assert_eq!(r["artifact"]["version"], version);
        assert_eq!(r["status"], status);
        assert_eq!(r["matrix"]["digest"], written["matrix"]["digest"]);
        assert_eq!(r["kernels"][0]["id"], K612.id);
        use sha2::Digest;
        let sha = hex::encode(sha2::Sha256::digest(std::fs::read(report).unwrap()));
        assert_eq!(r["report"]["sha256"], sha);
    }
}
