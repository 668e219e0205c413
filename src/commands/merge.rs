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
    let inputs = options
        .reports
        .into_iter()
        .map(|path| Ok((path.clone(), Report::read(&path)?)))
        .collect::<Result<Vec<(PathBuf, Report)>, ReadError>>()?;
    let merged = merge::merge(inputs, options.allow_partial)?;
    for w in &merged.warnings {
        eprintln!("bpfcompat: warning: {}", escape::plain(w));
    }
    write_report(&merged.report, &options.out, options.markdown.as_deref())?;
    Ok(merged.report.summary.exit_code as u8)
}
