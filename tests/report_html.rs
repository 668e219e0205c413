//! `bpfcompat report --html` and `test --html`: one self-contained page from
//! the JSON, for one report or a run's shards.

use std::process::Command;

use bpfcompat_testkit::reports;

fn bpfcompat(dir: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_bpfcompat"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (
        out.status.code().unwrap_or(-1),
        text(&out.stdout),
        text(&out.stderr),
    )
}

#[test]
fn a_report_renders_as_one_page_and_a_bad_one_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let report: bpfcompat::report::Report =
        serde_json::from_value(reports::hostile_json()).unwrap();
    std::fs::write(dir.path().join("r.json"), report.to_json()).unwrap();
    let (code, out, err) = bpfcompat(
        dir.path(),
        &["report", "--html", "r.html", "--markdown", "r.md", "r.json"],
    );
    assert_eq!(code, 0, "{out}{err}");
    let page = std::fs::read_to_string(dir.path().join("r.html")).unwrap();
    assert!(page.starts_with("<!DOCTYPE html>"));
    assert!(page.contains("Content-Security-Policy"));
    assert_eq!(page.matches("<tr data-object=").count(), 2);
    assert!(std::fs::read_to_string(dir.path().join("r.md"))
        .unwrap()
        .contains("## bpfcompat"));

    std::fs::write(dir.path().join("bad.json"), "{}").unwrap();
    let (code, _, err) = bpfcompat(dir.path(), &["report", "--html", "b.html", "bad.json"]);
    assert_eq!(code, 1);
    assert!(err.contains("bad.json"), "{err}");
    assert!(!dir.path().join("b.html").exists(), "nothing half-written");
}
