//! The run history: one JSON line per `test`/`test-command` run in
//! `<workdir>/history.jsonl`, so later runs can be listed and compared by
//! artifact version instead of by report file.
//!
//! Several runs may share a workdir and finish at the same moment, and any of
//! them may be killed mid-write. So an append takes an exclusive lock and
//! writes one whole line with a single `write_all` on an O_APPEND file;
//! readers take a shared lock, and a last line without its newline (a writer
//! that died) is reported and skipped, never truncated away, since it sits
//! after every record that did complete.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::matrix::shard::ShardSpec;
use crate::report::html::HistoryPoint;
use crate::report::{ClassCode, MatrixRef, ReadError, Report, RunStatus, TargetStatus};

pub const FILE_NAME: &str = "history.jsonl";
const SCHEMA: &str = "bpfcompat.history/v1";

/// One run, as appended to the history.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Record {
    pub schema: String,
    pub recorded_at: String,
    pub tool_version: String,
    pub artifact: ArtifactRecord,
    pub matrix: MatrixRef,
    pub shard: Option<ShardSpec>,
    pub status: RunStatus,
    pub kernels: Vec<KernelRecord>,
    pub report: ReportRecord,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ArtifactRecord {
    /// The report's `artifact.id`: what was actually checked.
    pub id: String,
    /// `--artifact-name`, else the report's artifact name: what runs are
    /// grouped by when comparing versions.
    pub name: String,
    /// `--artifact-version`, else `git describe` of the current repository.
    pub version: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct KernelRecord {
    pub id: String,
    pub status: TargetStatus,
    pub class: Option<ClassCode>,
}

/// Where the full report is. The digest tells whether the file at `path` is
/// still the one this run wrote.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ReportRecord {
    pub path: PathBuf,
    pub sha256: String,
}

#[derive(Debug, Error)]
pub enum HistoryError {
    #[error("cannot {action} history {path}: {err}")]
    Io {
        action: &'static str,
        path: PathBuf,
        err: std::io::Error,
    },
    #[error("cannot resolve report path {path}: {err}")]
    ReportPath { path: PathBuf, err: std::io::Error },
    #[error("no run of {name} version {version} in history {path} ({known})")]
    NotFound {
        name: String,
        version: String,
        path: PathBuf,
        known: String,
    },
    #[error(
        "the report of {name} {version}, {report}, is not the one that run wrote (sha256 {actual}, \
         recorded {recorded}): a later run probably overwrote it; give each version its own --out"
    )]
    ReportChanged {
        name: String,
        version: String,
        report: PathBuf,
        actual: String,
        recorded: String,
    },
    #[error(transparent)]
    Report(#[from] ReadError),
}

/// A line of the history file that is not a record.
#[derive(Debug, Clone, PartialEq)]
pub enum Warning {
    /// The last line has no newline: its writer was interrupted.
    Torn { path: PathBuf, line: usize },
    Unreadable {
        path: PathBuf,
        line: usize,
        error: String,
    },
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Warning::Torn { path, line } => write!(
                f,
                "{}:{line}: skipped an incomplete last record (a run was interrupted while \
                 recording it)",
                path.display()
            ),
            Warning::Unreadable { path, line, error } => write!(
                f,
                "{}:{line}: skipped an unreadable record: {error}",
                path.display()
            ),
        }
    }
}

#[derive(Default)]
pub struct History {
    pub records: Vec<Record>,
    pub warnings: Vec<Warning>,
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// `git describe --always --dirty` in `dir`, or None outside a repository
/// (or without git): the default `--artifact-version`.
pub fn git_describe(dir: &Path) -> Option<String> {
    let out = Command::new("git")
        .args(["describe", "--always", "--dirty"])
        .current_dir(dir)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let version = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    (out.status.success() && !version.is_empty()).then_some(version)
}

impl Record {
    /// Describes a run whose report `report_bytes` was written to `out`.
    pub fn of(
        report: &Report,
        out: &Path,
        report_bytes: &[u8],
        name: Option<String>,
        version: Option<String>,
    ) -> Result<Record, HistoryError> {
        let path = std::path::absolute(out).map_err(|err| HistoryError::ReportPath {
            path: out.to_owned(),
            err,
        })?;
        Ok(Record {
            schema: SCHEMA.to_owned(),
            recorded_at: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
            tool_version: report.tool_version.clone(),
            artifact: ArtifactRecord {
                id: report.artifact.id.clone(),
                name: name.unwrap_or_else(|| report.artifact.name.clone()),
                version,
            },
            matrix: report.matrix.clone(),
            shard: report.shard.as_ref().map(ShardSpec::from),
            status: report.summary.status,
            kernels: report
                .targets
                .iter()
                .map(|t| KernelRecord {
                    id: t.id.clone(),
                    status: t.status,
                    class: t.classification.as_ref().map(|c| c.code),
                })
                .collect(),
            report: ReportRecord {
                path,
                sha256: sha256_hex(report_bytes),
            },
        })
    }
}

fn io_err(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> HistoryError {
    let path = path.to_owned();
    move |err| HistoryError::Io { action, path, err }
}

/// Appends `record` to `<workdir>/history.jsonl`.
pub fn append(workdir: &Path, record: &Record) -> Result<(), HistoryError> {
    let path = workdir.join(FILE_NAME);
    std::fs::create_dir_all(workdir).map_err(io_err("create the directory of", &path))?;
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .read(true)
        .open(&path)
        .map_err(io_err("open", &path))?;
    // Held until `file` is dropped; other runs' appends wait here.
    file.lock().map_err(io_err("lock", &path))?;
    let mut line = serde_json::to_string(record).expect("history record serialises");
    line.push('\n');
    // A writer that died mid-line left no newline: start ours on a fresh
    // line so that fragment stays one skippable line and ours stays whole.
    if ends_mid_line(&file).map_err(io_err("read", &path))? {
        line.insert(0, '\n');
    }
    (&file)
        .write_all(line.as_bytes())
        .and_then(|()| file.sync_data())
        .map_err(io_err("append to", &path))
}

fn ends_mid_line(file: &File) -> std::io::Result<bool> {
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(false);
    }
    let mut last = [0u8];
    file.read_exact_at(&mut last, len - 1)?;
    Ok(last[0] != b'\n')
}

/// Reads `<workdir>/history.jsonl`; a history that does not exist yet is empty.
pub fn read(workdir: &Path) -> Result<History, HistoryError> {
    let path = workdir.join(FILE_NAME);
    let mut file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(History::default()),
        Err(e) => return Err(io_err("open", &path)(e)),
    };
    // Appends are not visible half-done to a reader holding this.
    file.lock_shared().map_err(io_err("lock", &path))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)
        .map_err(io_err("read", &path))?;
    Ok(parse(&path, &bytes))
}

fn parse(path: &Path, bytes: &[u8]) -> History {
    let mut lines: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
    // After the final newline comes "" — or the fragment of a torn append.
    let tail = lines.pop().unwrap_or_default();
    let mut history = History::default();
    for (i, line) in lines.iter().enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice(line) {
            Ok(record) => history.records.push(record),
            Err(e) => history.warnings.push(Warning::Unreadable {
                path: path.to_owned(),
                line: i + 1,
                error: e.to_string(),
            }),
        }
    }
    if !tail.is_empty() {
        history.warnings.push(Warning::Torn {
            path: path.to_owned(),
            line: lines.len() + 1,
        });
    }
    history
}

/// The records, oldest first, with every skipped line reported on stderr.
fn load(workdir: &Path) -> Result<Vec<Record>, HistoryError> {
    let history = read(workdir)?;
    for w in &history.warnings {
        eprintln!(
            "bpfcompat: warning: {}",
            crate::escape::plain(&w.to_string())
        );
    }
    Ok(history.records)
}

/// Runs to draw in a report's history chart: the last `limit` whole-matrix
/// runs recorded of the same artifact (`report.artifact.id`'s name as
/// recorded) on the same matrix, oldest first, then `report` itself (whose
/// own record, by its digest, is not counted twice).
pub fn points(
    workdir: &Path,
    report: &Report,
    report_sha256: &str,
    limit: usize,
) -> Vec<HistoryPoint> {
    let records = load(workdir).unwrap_or_default();
    let mut earlier: Vec<HistoryPoint> = records
        .iter()
        .rev()
        .filter(|r| r.shard.is_none() && r.report.sha256 != report_sha256)
        .filter(|r| r.matrix.digest == report.matrix.digest && r.artifact.id == report.artifact.id)
        .take(limit.saturating_sub(1))
        .map(|r| {
            let count = |s: TargetStatus| r.kernels.iter().filter(|k| k.status == s).count();
            HistoryPoint {
                label: r
                    .artifact
                    .version
                    .clone()
                    .unwrap_or_else(|| r.recorded_at.clone()),
                pass: count(TargetStatus::Pass),
                partial: count(TargetStatus::Partial),
                fail: count(TargetStatus::Fail),
            }
        })
        .collect();
    earlier.reverse();
    let s = &report.summary;
    earlier.push(HistoryPoint {
        label: format!("this run ({})", report.started_at),
        pass: s.passed,
        partial: s.partial,
        fail: s.failed,
    });
    earlier
}

/// The report of the latest whole-matrix run of `name` at `version`,
/// provided the file is still the one that run wrote. Shard runs are left
/// out: comparing a share of the matrix would show kernels as removed.
pub fn find_report(
    workdir: &Path,
    name: &str,
    version: &str,
) -> Result<(PathBuf, Report), HistoryError> {
    let records = load(workdir)?;
    let of_name: Vec<&Record> = records
        .iter()
        .filter(|r| r.artifact.name == name && r.shard.is_none())
        .collect();
    let Some(record) = of_name
        .iter()
        .rev()
        .find(|r| r.artifact.version.as_deref() == Some(version))
    else {
        let mut versions: Vec<&str> = Vec::new();
        for v in of_name.iter().filter_map(|r| r.artifact.version.as_deref()) {
            if !versions.contains(&v) {
                versions.push(v);
            }
        }
        let known = if versions.is_empty() {
            format!("no whole-matrix run of {name} with a version is recorded")
        } else {
            format!("recorded versions of {name}: {}", versions.join(", "))
        };
        return Err(HistoryError::NotFound {
            name: name.to_owned(),
            version: version.to_owned(),
            path: workdir.join(FILE_NAME),
            known,
        });
    };
    let path = &record.report.path;
    let bytes = Report::read_bytes(path)?;
    let actual = sha256_hex(&bytes);
    if actual != record.report.sha256 {
        return Err(HistoryError::ReportChanged {
            name: name.to_owned(),
            version: version.to_owned(),
            report: path.clone(),
            actual,
            recorded: record.report.sha256.clone(),
        });
    }
    Ok((path.clone(), Report::parse(path, &bytes)?))
}

/// `history list`: the newest `limit` records (of `name`, if given), newest
/// first, as a table or as a JSON array.
pub fn list(
    workdir: &Path,
    name: Option<&str>,
    limit: Option<usize>,
    json: bool,
) -> Result<String, HistoryError> {
    let records: Vec<Record> = load(workdir)?
        .into_iter()
        .rev()
        .filter(|r| name.is_none_or(|n| r.artifact.name == n))
        .take(limit.unwrap_or(usize::MAX))
        .collect();
    if json {
        return Ok(serde_json::to_string_pretty(&records).expect("records serialise") + "\n");
    }
    if records.is_empty() {
        return Ok(format!(
            "no runs recorded in {}\n",
            workdir.join(FILE_NAME).display()
        ));
    }
    let rows: Vec<[String; 6]> = records.iter().map(row).collect();
    Ok(crate::term::table::render(
        [
            "RECORDED", "ARTIFACT", "VERSION", "MATRIX", "RESULT", "REPORT",
        ],
        &rows,
    ))
}

fn row(r: &Record) -> [String; 6] {
    let passed = r
        .kernels
        .iter()
        .filter(|k| k.status == TargetStatus::Pass)
        .count();
    let status = match r.status {
        RunStatus::Pass => "pass",
        RunStatus::Fail => "FAIL",
        RunStatus::Error => "ERROR",
    };
    let shard = r.shard.map(|s| format!(" (shard {s})")).unwrap_or_default();
    [
        r.recorded_at.clone(),
        r.artifact.name.clone(),
        r.artifact.version.clone().unwrap_or_else(|| "-".into()),
        format!("{}{shard}", r.matrix.name),
        format!("{status}, {passed}/{} passed", r.kernels.len()),
        r.report.path.display().to_string(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(name: &str, version: &str, n: usize) -> Record {
        Record {
            schema: SCHEMA.into(),
            recorded_at: "2025-01-01T00:00:00Z".into(),
            tool_version: "0.1.0".into(),
            artifact: ArtifactRecord {
                id: format!("command://{name}@0"),
                name: name.into(),
                version: Some(version.into()),
            },
            matrix: MatrixRef {
                name: "m".into(),
                digest: "d".into(),
                path: "/m.yaml".into(),
            },
            shard: None,
            status: RunStatus::Pass,
            kernels: vec![KernelRecord {
                id: format!("k{n}"),
                status: TargetStatus::Pass,
                class: None,
            }],
            report: ReportRecord {
                path: format!("/r/{n}.json").into(),
                sha256: "0".repeat(64),
            },
        }
    }

    const WRITERS: usize = 4;
    const PER_WRITER: usize = 200;
    const CHILD_ENV: &str = "BPFCOMPAT_TEST_HISTORY_WRITER";

    fn write_many(workdir: &Path, writer: usize) {
        for n in 0..PER_WRITER {
            append(workdir, &record(&format!("w{writer}"), "v", n)).unwrap();
        }
    }

    /// Two processes and two threads in each append at once: every record
    /// must come back whole. The children are this same test binary, run
    /// again for just this test, in writer mode.
    #[test]
    fn concurrent_writers_lose_no_record() {
        if let Some(dir) = std::env::var_os(CHILD_ENV) {
            let writer: usize = std::env::var("BPFCOMPAT_TEST_WRITER")
                .unwrap()
                .parse()
                .unwrap();
            std::thread::scope(|s| {
                s.spawn(|| write_many(Path::new(&dir), writer));
                write_many(Path::new(&dir), writer + 1);
            });
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let children: Vec<_> = [0, 2]
            .iter()
            .map(|writer| {
                Command::new(std::env::current_exe().unwrap())
                    .args([
                        "--exact",
                        "results::history::tests::concurrent_writers_lose_no_record",
                    ])
                    .env(CHILD_ENV, dir.path())
                    .env("BPFCOMPAT_TEST_WRITER", writer.to_string())
                    .stdout(Stdio::null())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for mut c in children {
            assert!(c.wait().unwrap().success());
        }
        let history = read(dir.path()).unwrap();
        assert_eq!(history.warnings, []);
        assert_eq!(history.records.len(), WRITERS * PER_WRITER);
        for w in 0..WRITERS {
            let mine: Vec<String> = history
                .records
                .iter()
                .filter(|r| r.artifact.name == format!("w{w}"))
                .map(|r| r.kernels[0].id.clone())
                .collect();
            // Each writer's own records keep their order.
            let want: Vec<String> = (0..PER_WRITER).map(|n| format!("k{n}")).collect();
            assert_eq!(mine, want, "writer {w}");
        }
    }

    #[test]
    fn a_torn_last_line_is_warned_about_skipped_and_followed_by_whole_records() {
        let dir = tempfile::tempdir().unwrap();
        append(dir.path(), &record("a", "1", 0)).unwrap();
        append(dir.path(), &record("a", "2", 1)).unwrap();
        // A run killed while writing its record.
        let path = dir.path().join(FILE_NAME);
        let whole = serde_json::to_string(&record("a", "3", 2)).unwrap();
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&whole.as_bytes()[..whole.len() / 2]).unwrap();

        let history = read(dir.path()).unwrap();
        assert_eq!(history.records.len(), 2);
        assert_eq!(
            history.warnings,
            [Warning::Torn {
                path: path.clone(),
                line: 3
            }]
        );
        assert!(history.warnings[0]
            .to_string()
            .contains("history.jsonl:3: skipped"));

        append(dir.path(), &record("a", "4", 3)).unwrap();
        append(dir.path(), &record("a", "5", 4)).unwrap();
        let history = read(dir.path()).unwrap();
        let versions: Vec<_> = history
            .records
            .iter()
            .map(|r| r.artifact.version.clone().unwrap())
            .collect();
        assert_eq!(versions, ["1", "2", "4", "5"]);
        assert!(matches!(
            &history.warnings[..],
            [Warning::Unreadable { line: 3, .. }]
        ));
    }

    #[test]
    fn a_missing_history_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let h = read(&dir.path().join("nope")).unwrap();
        assert!(h.records.is_empty() && h.warnings.is_empty());
        let text = list(dir.path(), None, None, false).unwrap();
        assert!(text.starts_with("no runs recorded in "), "{text}");
    }

    #[test]
    fn list_is_newest_first_filtered_and_limited() {
        let dir = tempfile::tempdir().unwrap();
        for (name, v) in [("a", "1"), ("b", "1"), ("a", "2"), ("a", "3")] {
            append(dir.path(), &record(name, v, 0)).unwrap();
        }
        let json = list(dir.path(), Some("a"), Some(2), true).unwrap();
        let got: Vec<Record> = serde_json::from_str(&json).unwrap();
        let versions: Vec<_> = got.iter().map(|r| r.artifact.version.as_deref()).collect();
        assert_eq!(versions, [Some("3"), Some("2")]);
        let text = list(dir.path(), None, None, false).unwrap();
        assert_eq!(text.lines().count(), 5, "{text}");
        assert!(text.starts_with("RECORDED"), "{text}");
        assert!(text.contains("pass, 1/1 passed"), "{text}");
    }

    #[test]
    fn git_describe_names_the_commit_or_nothing() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(git_describe(dir.path()), None);
        let git = |args: &[&str]| {
            let ok = Command::new("git")
                .args([
                    "-c",
                    "user.name=t",
                    "-c",
                    "user.email=t@t",
                    "-c",
                    "commit.gpgsign=false",
                ])
                .args(args)
                .current_dir(dir.path())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "git {args:?}");
        };
        git(&["init", "-q"]);
        std::fs::write(dir.path().join("f"), "1").unwrap();
        git(&["add", "f"]);
        git(&["commit", "-qm", "x"]);
        let clean = git_describe(dir.path()).unwrap();
        assert!(clean.len() >= 7 && !clean.ends_with("-dirty"), "{clean}");
        std::fs::write(dir.path().join("f"), "2").unwrap();
        assert_eq!(git_describe(dir.path()), Some(format!("{clean}-dirty")));
    }
}
