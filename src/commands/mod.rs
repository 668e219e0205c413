//! The subcommands that run checks or manage their inputs, each taking
//! plain options (built from the command line by `cli`) and returning the
//! process's exit code. `compare`, `publish` and `history` live with their
//! stages (`results::compare::run`, `github::publish`, `results::history`).

pub mod doctor;
pub mod kernels;
pub mod merge;
mod pinning;
pub mod preflight;
pub mod shards;
pub mod test;

use std::path::Path;

use anyhow::Context as _;

use crate::report::{self, Report};
use crate::term::progress;

/// Where runs keep their files and the history, unless `--workdir` (or a
/// suite) says.
pub const DEFAULT_WORKDIR: &str = ".bpfcompat";

/// Writes the JSON report (returned, for its digest) and the Markdown one,
/// then prints the table and the counts.
fn write_report(report: &Report, out: &Path, markdown: Option<&Path>) -> anyhow::Result<String> {
    let json = report.to_json();
    report::write_atomically(out, json.as_bytes())
        .with_context(|| format!("cannot write report {}", out.display()))?;
    if let Some(md) = markdown {
        report::write_atomically(md, report::render_markdown(report).as_bytes())
            .with_context(|| format!("cannot write Markdown report {}", md.display()))?;
    }
    print!("{}", progress::table(&report.targets));
    print!("{}", progress::notes(&report.targets));
    let s = &report.summary;
    let partial = match s.partial {
        0 => String::new(),
        n => format!("{n} partial, "),
    };
    println!(
        "{} passed, {partial}{} failed, {} infra errors; report: {}",
        s.passed,
        s.failed,
        s.infra_errors,
        out.display()
    );
    Ok(json)
}

/// Writes report.html of `report` (whose JSON is `json`), its history chart
/// from the runs recorded in `workdir`.
fn write_html(report: &Report, json: &[u8], workdir: &Path, html: &Path) -> anyhow::Result<()> {
    use sha2::Digest;
    let digest = hex::encode(sha2::Sha256::digest(json));
    let history = crate::results::history::points(workdir, report, &digest, HISTORY_RUNS);
    report::write_atomically(html, report::render_html(report, &history).as_bytes())
        .with_context(|| format!("cannot write HTML report {}", html.display()))?;
    println!("HTML report: {}", html.display());
    Ok(())
}

/// Runs the HTML report's history chart draws.
const HISTORY_RUNS: usize = 20;
