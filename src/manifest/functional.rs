//! Functional tests, as a manifest's `functional_tests` and a suite's
//! `test:` write them, checked by the Go tool's rules.

use std::collections::BTreeSet;
use std::time::Duration;

use bpfcompat_proto::object::FunctionalTest;

use super::schema::RawFunctionalTest;
use super::{Doc, ManifestError};
use crate::matrix::parse_duration;
use crate::yaml::Field;

/// Where a functional test stops when its manifest gives no `timeout`.
pub const DEFAULT_TEST_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest `timeout` a functional test may ask for (as in the Go tool).
const MAX_TEST_TIMEOUT: Duration = Duration::from_secs(300);

/// A manifest's `functional_tests`, each resolved, with distinct names.
pub(super) fn manifest_tests(
    doc: &Doc,
    tests: &[RawFunctionalTest],
) -> Result<Vec<FunctionalTest>, ManifestError> {
    let field = Field::root().key("functional_tests");
    let resolved = tests
        .iter()
        .enumerate()
        .map(|(i, t)| {
            TestSpec {
                name: &t.name,
                command: &t.command,
                required: t.required.unwrap_or(true),
                timeout: t.timeout.as_deref(),
                exit_code: t.expect_exit_code,
                stdout_contains: t.expect_stdout_contains.as_deref(),
                stderr_contains: t.expect_stderr_contains.as_deref(),
            }
            .resolve(doc, &field.index(i), (&field.index(i), "expect_"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    unique_tests(doc, &resolved)?;
    Ok(resolved)
}

/// A functional test as written, in a manifest or in a suite's `test:`.
pub(super) struct TestSpec<'a> {
    pub name: &'a str,
    pub command: &'a str,
    pub required: bool,
    pub timeout: Option<&'a str>,
    pub exit_code: Option<i64>,
    pub stdout_contains: Option<&'a str>,
    pub stderr_contains: Option<&'a str>,
}

impl TestSpec<'_> {
    /// The Go tool's rules: single-line name, command and expectations, a
    /// command of at most 1000 bytes, a timeout up to 5m, an exit code
    /// 0..=255. The expectations are `{prefix}exit_code`, ... under `expect`
    /// (`expect_exit_code` in a manifest's test, `expect.exit_code` in a
    /// suite's).
    pub(super) fn resolve(
        &self,
        doc: &Doc,
        field: &Field,
        (expect, prefix): (&Field, &str),
    ) -> Result<FunctionalTest, ManifestError> {
        let expectation = |name: &str| expect.key(&format!("{prefix}{name}"));
        let single_line = |at: Field, value: &str| {
            if value.contains(['\n', '\r']) {
                Err(doc.err(&at, "must be one line (join commands with ; or &&)"))
            } else {
                Ok(())
            }
        };
        if self.name.trim().is_empty() {
            return Err(doc.err(&field.key("name"), "is empty; name the test"));
        }
        single_line(field.key("name"), self.name)?;
        if self.command.trim().is_empty() {
            return Err(doc.err(
                &field.key("command"),
                "is empty; give the command to run in the guest",
            ));
        }
        single_line(field.key("command"), self.command)?;
        if self.command.len() > 1000 {
            return Err(doc.err(
                &field.key("command"),
                format!(
                    "is {} bytes, more than 1000; put it in a script and run that",
                    self.command.len()
                ),
            ));
        }
        for (name, value) in [
            ("stdout_contains", self.stdout_contains),
            ("stderr_contains", self.stderr_contains),
        ] {
            if let Some(v) = value {
                single_line(expectation(name), v)?;
            }
        }
        let timeout = match self.timeout {
            None => DEFAULT_TEST_TIMEOUT,
            Some(t) => {
                let d = parse_duration(t).map_err(|m| doc.err(&field.key("timeout"), m))?;
                if d > MAX_TEST_TIMEOUT {
                    return Err(doc.err(
                        &field.key("timeout"),
                        format!("{t} is longer than the limit of 5m"),
                    ));
                }
                d
            }
        };
        let exit_code = match self.exit_code {
            None => 0,
            Some(c @ 0..=255) => c as i32,
            Some(c) => {
                return Err(doc.err(
                    &expectation("exit_code"),
                    format!("{c} is not an exit code (0 to 255)"),
                ))
            }
        };
        Ok(FunctionalTest {
            name: self.name.to_owned(),
            command: self.command.to_owned(),
            required: self.required,
            timeout_ms: timeout.as_millis() as u64,
            expect_exit_code: exit_code,
            expect_stdout_contains: self.stdout_contains.map(str::to_owned),
            expect_stderr_contains: self.stderr_contains.map(str::to_owned),
        })
    }
}

fn unique_tests(doc: &Doc, tests: &[FunctionalTest]) -> Result<(), ManifestError> {
    let mut seen = BTreeSet::new();
    for (i, t) in tests.iter().enumerate() {
        if !seen.insert(&t.name) {
            return Err(doc.err(
                &Field::root().key("functional_tests").index(i).key("name"),
                format!("{:?} is used by an earlier test; names must differ", t.name),
            ));
        }
    }
    Ok(())
}
