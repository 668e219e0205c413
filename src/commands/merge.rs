//! `merge`: shard reports back into the report of the whole matrix.

use std::path::PathBuf;

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

pub fn run(options: MergeOptions) -> anyhow::Result<u8> {
    let merged = read_merged(&options.reports, options.allow_partial)?;
    write_report(&merged, &options.out, options.markdown.as_deref())?;
    Ok(merged.summary.exit_code as u8)
}

/// One report, or the shard reports of one run merged (with the merge's
/// warnings said).
pub fn read_merged(paths: &[PathBuf], allow_partial: bool) -> anyhow::Result<Report> {
    let inputs = paths
        .iter()
        .map(|path| Ok((path.clone(), Report::read(path)?)))
        .collect::<Result<Vec<(PathBuf, Report)>, ReadError>>()?;
    if let [(_, one)] = &inputs[..] {
        if one.shard.is_none() {
            return Ok(one.clone());
        }
    }
    let merged = merge::merge(inputs, allow_partial)?;
    for w in &merged.warnings {
        eprintln!("bpfcompat: warning: {}", escape::plain(w));
    }
    Ok(merged.report)
}

/// `bpfcompat report`: existing reports rendered as HTML (and Markdown).
pub fn render(
    reports: &[PathBuf],
    html: &std::path::Path,
    markdown: Option<&std::path::Path>,
    allow_partial: bool,
    workdir: &std::path::Path,
) -> anyhow::Result<u8> {
    let report = read_merged(reports, allow_partial)?;
    let json = report.to_json();
    if let Some(md) = markdown {
        crate::report::write_atomically(md, crate::report::render_markdown(&report).as_bytes())
            .map_err(|e| anyhow::anyhow!("cannot write Markdown report {}: {e}", md.display()))?;
    }
    crate::commands::write_html(&report, json.as_bytes(), workdir, html)?;
    Ok(0)
}
