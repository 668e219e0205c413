//! Suites: the Go bpfcompat's `bpfcompat suite --suite FILE` format, a list
//! of objects (cases) with their manifests, checked here by
//! `bpfcompat test --suite FILE`. Every case runs in the same boot of each
//! kernel, so they share one matrix, and the report's checks name their
//! case. Paths resolve against the suite file's directory.
//!
//! Fields of the Go format that have no meaning here (per-case reports, the
//! runner, keeping VMs) are accepted with a warning, so a suite file serves
//! both tools unchanged.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bpfcompat_proto::object::{FunctionalTest, ValidationMode};
use serde::Deserialize;

use super::functional::TestSpec;
use super::{Doc, ManifestError};
use crate::matrix::parse_duration;
use crate::yaml::Field;

#[derive(Debug, Clone)]
pub struct Suite {
    pub path: PathBuf,
    pub name: String,
    /// `defaults.matrix` (or the one matrix all cases name).
    pub matrix: Option<PathBuf>,
    pub workdir: Option<PathBuf>,
    /// The longest of `defaults.timeout` and the cases' `timeout`: every
    /// case runs in each kernel's one boot.
    pub timeout: Option<Duration>,
    pub concurrency: Option<u16>,
    pub cases: Vec<Case>,
    /// Fields accepted for the Go tool's sake but not used, as
    /// `FILE:LINE: field: why`.
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Case {
    pub name: String,
    pub artifact: PathBuf,
    pub manifest: Option<PathBuf>,
    /// The case's `validation_mode`, else `behavior` if its `test:` says
    /// so, else `defaults.validation_mode`.
    pub mode: Option<ValidationMode>,
    /// The inline `test:` block, as a functional test named after the case.
    pub test: Option<FunctionalTest>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSuite {
    name: String,
    #[serde(default)]
    defaults: RawDefaults,
    #[serde(default)]
    cases: Vec<RawCase>,
}

/// What `defaults:` and a case share.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDefaults {
    matrix: Option<String>,
    workdir: Option<String>,
    report_dir: Option<String>,
    runner: Option<String>,
    timeout: Option<String>,
    concurrency: Option<u16>,
    keep_vm_on_failure: Option<bool>,
    validation_mode: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCase {
    name: String,
    artifact: Option<String>,
    artifact_uri: Option<String>,
    /// Labels of the Go tool's registry: accepted, not used (the check is
    /// known by its case name).
    #[serde(rename = "artifact_name")]
    _artifact_name: Option<String>,
    #[serde(rename = "artifact_version")]
    _artifact_version: Option<String>,
    #[serde(rename = "artifact_variant")]
    _artifact_variant: Option<String>,
    matrix: Option<String>,
    manifest: Option<String>,
    out: Option<String>,
    markdown: Option<String>,
    workdir: Option<String>,
    runner: Option<String>,
    timeout: Option<String>,
    concurrency: Option<u16>,
    keep_vm_on_failure: Option<bool>,
    validation_mode: Option<String>,
    test: Option<RawTest>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTest {
    mode: Option<String>,
    command: String,
    timeout: Option<String>,
    #[serde(default)]
    expect: RawExpect,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawExpect {
    exit_code: Option<i64>,
    stdout_contains: Option<String>,
}

/// `load_only`, `load_attach`, `behavior` (the Go spellings) or
/// `load-only`, `load-attach` (ours).
pub fn validation_mode(word: &str) -> Option<ValidationMode> {
    match word {
        "load_only" | "load-only" => Some(ValidationMode::LoadOnly),
        "load_attach" | "load-attach" => Some(ValidationMode::LoadAttach),
        "behavior" => Some(ValidationMode::Behavior),
        _ => None,
    }
}

/// The Go tool's suite and case names: 1 to 64 of A-Z a-z 0-9 . _ -, not
/// starting with . _ -.
fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

impl Suite {
    pub fn load(path: &Path) -> Result<Suite, ManifestError> {
        let path = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
        let doc = Doc::read("suite", &path)?;
        let raw: RawSuite = doc.parse()?;
        Loader {
            base: path.parent().unwrap_or(Path::new("/")).to_owned(),
            doc: &doc,
            warnings: Vec::new(),
        }
        .suite(raw)
    }
}

/// What the cases of a suite share: the defaults, then what cases add.
struct RunSettings {
    mode: Option<ValidationMode>,
    timeout: Option<Duration>,
    /// The matrix and the field that named it first.
    matrix: Option<(PathBuf, Field)>,
    workdir: Option<PathBuf>,
}

struct Loader<'a> {
    base: PathBuf,
    doc: &'a Doc,
    warnings: Vec<String>,
}

impl Loader<'_> {
    fn path(&self, relative: &str) -> PathBuf {
        self.base.join(relative)
    }

    fn mode(
        &self,
        field: &Field,
        word: &Option<String>,
    ) -> Result<Option<ValidationMode>, ManifestError> {
        word.as_deref()
            .map(|w| {
                validation_mode(w).ok_or_else(|| {
                    self.doc.err(
                        field,
                        format!("{w:?} is not load_only, load_attach or behavior"),
                    )
                })
            })
            .transpose()
    }

    fn timeout(
        &self,
        field: &Field,
        text: &Option<String>,
    ) -> Result<Option<Duration>, ManifestError> {
        text.as_deref()
            .map(|t| parse_duration(t).map_err(|m| self.doc.err(field, m)))
            .transpose()
    }

    fn unused(&mut self, field: Field, given: bool, why: &str) {
        if given {
            self.warnings.push(self.doc.warning(&field, why));
        }
    }

    /// Warnings for what a case or the defaults set that has no meaning
    /// here.
    fn unused_settings(&mut self, field: &Field, d: &RawDefaults) {
        self.unused(
            field.key("report_dir"),
            d.report_dir.is_some(),
            "not used: bpfcompat writes one report for the whole suite, to --out, and each check names its case",
        );
        self.unused(
            field.key("runner"),
            d.runner.as_deref().is_some_and(|r| r != "vm"),
            "not used: bpfcompat boots every kernel in QEMU",
        );
        self.unused(
            field.key("keep_vm_on_failure"),
            d.keep_vm_on_failure == Some(true),
            "not used: every guest powers off; its console log stays in the run directory",
        );
    }

    fn suite(mut self, raw: RawSuite) -> Result<Suite, ManifestError> {
        let root = Field::root();
        self.check_name(&root.key("name"), &raw.name)?;
        if raw.cases.is_empty() {
            return Err(self.doc.err(
                &root.key("cases"),
                "the suite has no cases; list the objects to check",
            ));
        }
        let defaults = root.key("defaults");
        let d = &raw.defaults;
        self.unused_settings(&defaults, d);
        let mut run = RunSettings {
            mode: self.mode(&defaults.key("validation_mode"), &d.validation_mode)?,
            timeout: self.timeout(&defaults.key("timeout"), &d.timeout)?,
            matrix: d
                .matrix
                .as_deref()
                .map(|m| (self.path(m), defaults.key("matrix"))),
            workdir: d.workdir.as_deref().map(|w| self.path(w)),
        };
        let mut names = BTreeSet::new();
        let mut cases = Vec::with_capacity(raw.cases.len());
        for (i, c) in raw.cases.iter().enumerate() {
            let field = root.key("cases").index(i);
            if !names.insert(&c.name) {
                self.check_name(&field.key("name"), &c.name)?;
                return Err(self.doc.err(
                    &field.key("name"),
                    format!("{:?} is used by an earlier case", c.name),
                ));
            }
            cases.push(self.case(&field, c, &mut run)?);
        }
        let RunSettings {
            timeout,
            matrix,
            workdir,
            ..
        } = run;
        Ok(Suite {
            path: self.doc.path.clone(),
            name: raw.name,
            matrix: matrix.map(|(m, _)| m),
            workdir,
            timeout,
            concurrency: d.concurrency.filter(|&c| c > 0),
            cases,
            warnings: self.warnings,
        })
    }

    fn check_name(&self, field: &Field, name: &str) -> Result<(), ManifestError> {
        if valid_name(name) {
            return Ok(());
        }
        Err(self.doc.err(
            field,
            format!(
                "{name:?} must be 1 to 64 of A-Z a-z 0-9 . _ -, starting with a letter or digit"
            ),
        ))
    }

    /// One case, checked; what it says of the whole run goes into `run`.
    fn case(
        &mut self,
        field: &Field,
        c: &RawCase,
        run: &mut RunSettings,
    ) -> Result<Case, ManifestError> {
        self.check_name(&field.key("name"), &c.name)?;
        let Some(artifact) = &c.artifact else {
            return Err(self
                .doc
                .err(field, "has no artifact: give the .bpf.o to check"));
        };
        if let Some(m) = &c.matrix {
            let here = self.path(m);
            match &run.matrix {
                Some((first, at)) if !same_file(first, &here) => {
                    return Err(self.doc.err(
                        &field.key("matrix"),
                        format!(
                            "{} differs from {} ({at}): every case runs in the same boot of each kernel, so a suite has one matrix; split the suite",
                            here.display(),
                            first.display()
                        ),
                    ))
                }
                Some(_) => {}
                None => run.matrix = Some((here, field.key("matrix"))),
            }
        }
        self.unused_case_settings(field, c, run.workdir.as_deref());
        if let Some(t) = self.timeout(&field.key("timeout"), &c.timeout)? {
            run.timeout = Some(run.timeout.map_or(t, |d| d.max(t)));
        }
        let test = c
            .test
            .as_ref()
            .map(|t| self.test(&field.key("test"), &c.name, t))
            .transpose()?;
        let test_mode = c
            .test
            .as_ref()
            .and_then(|t| t.mode.as_ref())
            .map(|_| ValidationMode::Behavior);
        let mode = self
            .mode(&field.key("validation_mode"), &c.validation_mode)?
            .or(test_mode)
            .or(run.mode);
        Ok(Case {
            name: c.name.clone(),
            artifact: self.path(artifact),
            manifest: c.manifest.as_deref().map(|m| self.path(m)),
            mode,
            test,
        })
    }

    /// The Go tool's per-case settings a suite here does not use: warned.
    fn unused_case_settings(&mut self, field: &Field, c: &RawCase, workdir: Option<&Path>) {
        self.unused_settings(
            field,
            &RawDefaults {
                report_dir: None,
                runner: c.runner.clone(),
                keep_vm_on_failure: c.keep_vm_on_failure,
                ..RawDefaults::default()
            },
        );
        for (key, given) in [("out", c.out.is_some()), ("markdown", c.markdown.is_some())] {
            self.unused(
                field.key(key),
                given,
                "not used: the suite's report goes to --out (and --markdown); each check names its case",
            );
        }
        self.unused(
            field.key("artifact_uri"),
            c.artifact_uri.is_some(),
            "not used: bpfcompat checks the local artifact",
        );
        self.unused(
            field.key("workdir"),
            c.workdir
                .as_deref()
                .is_some_and(|w| Some(self.path(w).as_path()) != workdir),
            "not used: a suite is one run, with defaults.workdir (or --workdir)",
        );
        self.unused(
            field.key("concurrency"),
            c.concurrency.is_some(),
            "not used: a suite is one run, with defaults.concurrency (or --concurrency)",
        );
    }

    fn test(
        &self,
        field: &Field,
        case: &str,
        t: &RawTest,
    ) -> Result<FunctionalTest, ManifestError> {
        if let Some(mode) = t.mode.as_deref().filter(|m| *m != "behavior") {
            return Err(self.doc.err(
                &field.key("mode"),
                format!("{mode:?}: a test runs in behavior mode (mode: behavior, or leave it out)"),
            ));
        }
        TestSpec {
            name: case,
            command: &t.command,
            required: true,
            timeout: t.timeout.as_deref(),
            exit_code: t.expect.exit_code,
            stdout_contains: t.expect.stdout_contains.as_deref(),
            stderr_contains: None,
        }
        .resolve(self.doc, field, (&field.key("expect"), ""))
    }
}

/// The same file, also when one path has `..` or a symlink in it.
fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    //! Suites in the Go tool's format (the fixtures under
    //! tests/fixtures/contract/).

    use super::*;
    use crate::manifest::fixture;

    #[test]
    fn the_go_suite_format_parses() {
        let s = Suite::load(&fixture("suite.yaml")).unwrap();
        let dir = fixture("");
        assert_eq!(s.name, "exec-monitor-suite");
        assert_eq!(
            s.matrix,
            Some(dir.join("../../../matrices/test-kernels.yaml"))
        );
        assert_eq!(s.workdir, Some(dir.join("../../../target/suite-work")));
        // The longest of the defaults' and the cases' timeouts.
        assert_eq!(s.timeout, Some(Duration::from_secs(360)));
        assert_eq!(s.concurrency, Some(2));
        let names: Vec<_> = s.cases.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "exec-tracepoint",
                "net-xdp",
                "exec-behavior",
                "legacy-fields"
            ]
        );
        let exec = &s.cases[0];
        assert_eq!(exec.artifact, dir.join("build/exec.bpf.o"));
        assert_eq!(exec.manifest, Some(dir.join("manifests/exec.yaml")));
        assert_eq!(exec.mode, Some(ValidationMode::LoadAttach));
        assert_eq!(s.cases[1].mode, Some(ValidationMode::LoadOnly));
        assert_eq!(s.cases[1].manifest, None);
        let behavior = &s.cases[2];
        assert_eq!(behavior.mode, Some(ValidationMode::Behavior));
        let test = behavior.test.as_ref().unwrap();
        assert_eq!(test.name, "exec-behavior");
        assert_eq!(test.command, "./scripts/smoke-exec.sh");
        assert_eq!(test.timeout_ms, 30_000);
        assert_eq!(test.expect_stdout_contains.as_deref(), Some("saw-execve"));

        // What the Go tool's runner used and bpfcompat does not: a warning each,
        // naming file, line and field.
        let fields: Vec<&str> = s
            .warnings
            .iter()
            .map(|w| w.split(": ").nth(1).unwrap())
            .collect();
        assert_eq!(
            fields,
            [
                "defaults.report_dir",
                "cases[3].runner",
                "cases[3].keep_vm_on_failure",
                "cases[3].out",
                "cases[3].markdown",
                "cases[3].artifact_uri",
                "cases[3].workdir",
                "cases[3].concurrency",
            ],
            "{:#?}",
            s.warnings
        );
        assert!(
            s.warnings[0].contains("suite.yaml:6: defaults.report_dir: not used"),
            "{}",
            s.warnings[0]
        );
    }

    fn suite_error(text: &str) -> String {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.yaml");
        std::fs::write(&path, text).unwrap();
        let e = Suite::load(&path).unwrap_err().to_string();
        e.strip_prefix(&path.display().to_string())
            .unwrap_or_else(|| panic!("names the file: {e}"))
            .to_owned()
    }

    #[test]
    fn suite_errors_name_line_and_field() {
        let cases: &[(&str, &str, &str)] = &[
            ("name: s\ncases:\n  - name: a\n    artifact: a.o\n    bogus: 1\n", ":5: ", "unknown field `bogus`"),
            ("name: s\ncases: []\n", ":2: ", "cases: the suite has no cases"),
            ("name: -s\ncases:\n  - {name: a, artifact: a.o}\n", ":1: ", "name: \"-s\" must be"),
            ("name: s\ncases:\n  - name: a\n", ":3: ", "cases[0]: has no artifact"),
            (
                "name: s\ncases:\n  - {name: a, artifact: a.o}\n  - name: a\n    artifact: b.o\n",
                ":4: ",
                "cases[1].name: \"a\" is used by an earlier case",
            ),
            (
                "name: s\ndefaults:\n  validation_mode: attach\ncases:\n  - {name: a, artifact: a.o}\n",
                ":3: ",
                "defaults.validation_mode: \"attach\" is not load_only, load_attach or behavior",
            ),
            (
                "name: s\ndefaults:\n  timeout: soon\ncases:\n  - {name: a, artifact: a.o}\n",
                ":3: ",
                "defaults.timeout: \"soon\" is not a duration",
            ),
            (
                "name: s\ndefaults:\n  matrix: a.yaml\ncases:\n  - name: a\n    artifact: a.o\n    matrix: b.yaml\n",
                ":7: ",
                "cases[0].matrix: ",
            ),
            (
                "name: s\ncases:\n  - name: a\n    artifact: a.o\n    test:\n      mode: load_only\n      command: x\n",
                ":6: ",
                "cases[0].test.mode: \"load_only\": a test runs in behavior mode",
            ),
            (
                "name: s\ncases:\n  - name: a\n    artifact: a.o\n    test:\n      command: x\n      expect:\n        exit_code: 300\n",
                ":8: ",
                "cases[0].test.expect.exit_code: 300 is not an exit code",
            ),
        ];
        for (text, line, part) in cases {
            let e = suite_error(text);
            assert!(e.starts_with(line), "{text:?}: expected line {line}: {e}");
            assert!(e.contains(part), "{text:?}: expected {part:?} in: {e}");
        }
    }
}
