//! `merge`: shard reports back into the report of the whole matrix.

use std::path::{Path, PathBuf};

use crate::commands::write_report;
use crate::escape;
use crate::report::{ReadError, Report};
use crate::results::merge;

pub struct MergeOptions {
    pub reports: Vec<PathBuf>,
    pub out: PathBuf,
    pub markdown: Option<PathBuf>,
    pub allow_partial: bool,
}

/// `bpfcompat report`: existing reports rendered as HTML (and Markdown).
pub struct RenderOptions {
    pub reports: Vec<PathBuf>,
    pub html: PathBuf,
    pub markdown: Option<PathBuf>,
    pub allow_partial: bool,
    /// The reports are a stranger's (another run's artifact): read as
    /// `publish --workflow-run` reads them, checked against the schema.
    pub untrusted: bool,
    pub workdir: PathBuf,
}

pub fn run(options: MergeOptions) -> anyhow::Result<u8> {
    let merged = read_merged(&options.reports, options.allow_partial, false)?;
    write_report(&merged, &options.out, options.markdown.as_deref())?;
    Ok(merged.summary.exit_code as u8)
}

/// One report, or the shard reports of one run merged (with the merge's
/// warnings said).
fn read(path: &Path, untrusted: bool) -> Result<Report, ReadError> {
    match untrusted {
        true => Report::read_untrusted(path),
        false => Report::read(path),
    }
}

fn read_merged(paths: &[PathBuf], allow_partial: bool, untrusted: bool) -> anyhow::Result<Report> {
    let inputs = paths
        .iter()
        .map(|path| Ok((path.clone(), read(path, untrusted)?)))
        .collect::<Result<Vec<(PathBuf, Report)>, ReadError>>()?;
    let merged = merge::merge(inputs, allow_partial)?;
    for w in &merged.warnings {
        eprintln!("bpfcompat: warning: {}", escape::plain(w));
    }
    Ok(merged.report)
}

pub fn render(options: RenderOptions) -> anyhow::Result<u8> {
    let report = match &options.reports[..] {
        // One whole run's report is rendered as it is; shards are merged.
        [path] => Some(read(path, options.untrusted)?).filter(|r| r.shard.is_none()),
        _ => None,
    };
    let report = match report {
        Some(report) => report,
        None => read_merged(&options.reports, options.allow_partial, options.untrusted)?,
    };
    let json = report.to_json();
    if let Some(md) = &options.markdown {
        crate::report::write_atomically(md, crate::report::render_markdown(&report).as_bytes())
            .map_err(|e| anyhow::anyhow!("cannot write Markdown report {}: {e}", md.display()))?;
    }
    crate::commands::write_html(&report, json.as_bytes(), &options.workdir, &options.html)?;
    Ok(0)
}
