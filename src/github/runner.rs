//! What the Actions runner reads from a step besides its exit code:
//! workflow commands on stdout, the job summary and the step outputs files.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::escape;

#[derive(Debug, thiserror::Error)]
#[error("cannot append to {} ({what}): {err}", path.display())]
pub struct RunnerFileError {
    what: &'static str,
    path: PathBuf,
    err: std::io::Error,
}

/// A `::warning::` annotation on the job. Messages are escaped as the
/// runner expects, so a newline or `%` in an API error cannot cut them short
/// or start a command of their own.
pub fn warning(message: &str) {
    println!("::warning::{}", escape::workflow_command(message));
}

/// Tells the runner to print `secret` as `***` wherever it would appear in
/// the job's log from here on (the command itself is not shown). Its data is
/// escaped as the runner unescapes it, so the whole value is masked.
pub fn add_mask(secret: &str) {
    let data = secret
        .replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A");
    println!("::add-mask::{data}");
}

/// A folded group in the step's log: `title` on its line, `body` inside.
/// The body (a guest's console) is made inert with `::stop-commands::` and
/// a token it cannot guess, so nothing in it is taken as a workflow command.
pub fn log_group(title: &str, body: &str) {
    let token = format!("bpfcompat-{:016x}", random());
    println!("::group::{}", escape::workflow_command(title));
    println!("::stop-commands::{token}");
    println!("{}", escape::plain(body).trim_end());
    println!("::{token}::");
    println!("::endgroup::");
}

/// Appends Markdown to `GITHUB_STEP_SUMMARY`.
pub fn append_summary(path: &Path, markdown: &str) -> Result<(), RunnerFileError> {
    append(path, "GITHUB_STEP_SUMMARY", markdown.as_bytes())
}

/// Writes step outputs to `GITHUB_OUTPUT`, every one as a heredoc with a
/// random delimiter that does not occur in its value, so a multi-line value
/// (the Markdown) cannot end early or forge other outputs.
pub fn write_outputs(path: &Path, outputs: &[(&str, String)]) -> Result<(), RunnerFileError> {
    let mut text = String::new();
    for (name, value) in outputs {
        let delimiter = loop {
            let d = format!("ghadelimiter_{:016x}", random());
            if !value.contains(&d) {
                break d;
            }
        };
        text.push_str(&format!("{name}<<{delimiter}\n{value}\n{delimiter}\n"));
    }
    append(path, "GITHUB_OUTPUT", text.as_bytes())
}

/// Random enough for a delimiter the value's author cannot predict: the
/// standard library seeds each `RandomState` from the OS.
fn random() -> u64 {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(0);
    hasher.finish()
}

fn append(path: &Path, what: &'static str, bytes: &[u8]) -> Result<(), RunnerFileError> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut f| f.write_all(bytes))
        .map_err(|err| RunnerFileError {
            what,
            path: path.into(),
            err,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_are_heredocs_the_value_cannot_end() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let value = "line 1\nEOF\nghadelimiter_\nstatus=pass".to_string();
        write_outputs(&out, &[("markdown", value.clone()), ("passed", "3".into())]).unwrap();
        let text = std::fs::read_to_string(&out).unwrap();
        let first = text.lines().next().unwrap();
        let delimiter = first.strip_prefix("markdown<<").unwrap();
        assert!(!value.contains(delimiter));
        let rest = text
            .strip_prefix(&format!("{first}\n{value}\n{delimiter}\n"))
            .unwrap();
        let second = rest.lines().next().unwrap();
        let delimiter = second.strip_prefix("passed<<").unwrap();
        assert_eq!(rest, format!("{second}\n3\n{delimiter}\n"));
    }
}
