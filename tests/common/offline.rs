//! Helpers for CLI tests that boot nothing: running bpfcompat on report
//! files written by the test, and building those reports.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::{json, Value};

/// Runs bpfcompat in `cwd` and checks its exit code, showing its output if
/// the code is wrong.
pub fn expect(code: i32, cwd: &Path, args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_bpfcompat"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("bpfcompat runs");
    assert_eq!(
        out.status.code(),
        Some(code),
        "bpfcompat {args:?}\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Writes `value` to `dir/name` and returns the path as a string, for argv.
pub fn write_json(dir: &Path, name: &str, value: &Value) -> String {
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_string_pretty(value).unwrap()).unwrap();
    path.display().to_string()
}

/// A kernel's entry in a synthetic report: `(id, status, classification code)`.
pub type Verdict<'a> = (&'a str, &'a str, Option<&'a str>);

pub const CVF: Option<&str> = Some("COMMAND_VALIDATION_FAILURE");

fn target(&(id, status, class): &Verdict) -> Value {
    json!({
        "id": id,
        "required": true,
        "status": status,
        "kernel": {"release": format!("{id}-release"), "arch": "x86_64", "btf": true,
                   "source": format!("file:/k/{id}"), "sha256": "0".repeat(64), "bpf": null},
        "classification": class.map(|c| json!({"code": c, "reason": format!("{c} on {id}"), "hint": "h", "phase": null})),
        "timing_ms": {"boot": 1000, "check": 100, "total": 1100},
        "console_log": format!("/runs/{id}/console.log"),
        "console_tail": null,
        "checks": []
    })
}

/// A complete report of one matrix, with the summary a run would give
/// (every kernel required).
pub fn report(verdicts: &[Verdict]) -> Value {
    let count = |s: &str| verdicts.iter().filter(|k| k.1 == s).count();
    let (status, exit_code) = if count("infra_error") > 0 {
        ("error", 1)
    } else if count("fail") > 0 {
        ("fail", 2)
    } else {
        ("pass", 0)
    };
    json!({
        "schema": "bpfcompat.report/v1",
        "tool_version": env!("CARGO_PKG_VERSION"),
        "mode": "command",
        "artifact": {"id": "command://loader@0123456789abcdef", "name": "loader"},
        "matrix": {"name": "ci", "digest": "ab".repeat(32), "path": "/m/ci.yaml"},
        "accel": "tcg",
        "qemu_version": "10.0.2",
        "libbpf_version": null,
        "started_at": "2025-01-01T00:00:00Z",
        "duration_ms": 5000,
        "summary": {"status": status, "passed": count("pass"), "failed": count("fail"),
                    "infra_errors": count("infra_error"), "required_failed": count("fail"),
                    "exit_code": exit_code},
        "targets": verdicts.iter().map(target).collect::<Vec<_>>()
    })
}

/// A report without what differs between two runs of the same check:
/// times, durations, the paths of per-run files, and whether a kernel was
/// restored from a snapshot (a later run on the same cache is).
pub fn without_run_details(mut report: Value) -> Value {
    fn strip(v: &mut Value) {
        match v {
            Value::Object(map) => {
                for key in [
                    "started_at",
                    "duration_ms",
                    "timing_ms",
                    "console_log",
                    "restored",
                    "restore_ms",
                    // How much memory a guest used varies from boot to boot.
                    "memory",
                ] {
                    map.remove(key);
                }
                map.values_mut().for_each(strip);
            }
            Value::Array(items) => items.iter_mut().for_each(strip),
            _ => {}
        }
    }
    strip(&mut report);
    report
}
