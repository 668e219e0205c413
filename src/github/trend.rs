//! The pass rate of this check over the base branch's recent commits, for
//! the comment's chart: each commit's check run of the same name carries
//! its results (`compare::Results`), so the history is read back from
//! GitHub itself, one request for the commits and one per commit.

use serde::Serialize;
use serde_json::Value;

use super::api::{ApiError, Client};
use super::check_run;
use super::compare::Results;
use super::env::Repo;
use crate::report::{Report, TargetStatus};

/// Base-branch commits looked at: with this run, the chart's points.
pub const BASE_RUNS: usize = 10;

/// One run of the check: where, and the share of its kernels that passed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PassRate {
    /// A commit's short sha (hex only), or "this PR".
    pub label: String,
    /// Percent of the kernels passing, rounded down.
    pub percent: usize,
}

impl PassRate {
    pub fn new(label: &str, passed: usize, total: usize) -> PassRate {
        PassRate {
            label: label.to_owned(),
            percent: (passed * 100).checked_div(total).unwrap_or(0),
        }
    }

    pub fn of(label: &str, report: &Report) -> PassRate {
        let passed = report
            .targets
            .iter()
            .filter(|t| t.status == TargetStatus::Pass)
            .count();
        PassRate::new(label, passed, report.targets.len())
    }
}

/// The base branch's last [`BASE_RUNS`] commits up to `base_sha` that have
/// a check run named `check_name` with results, oldest first.
pub fn base_runs(
    client: &Client,
    repo: &Repo,
    base_sha: &str,
    check_name: &str,
) -> Result<Vec<PassRate>, ApiError> {
    let per_page = BASE_RUNS.to_string();
    let commits = client.get(
        &format!("/repos/{repo}/commits"),
        &[("sha", base_sha), ("per_page", &per_page)],
    )?;
    let shas = commits
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c.get("sha").and_then(Value::as_str))
        .filter(|s| s.len() >= 7 && s.bytes().all(|b| b.is_ascii_hexdigit()))
        .take(BASE_RUNS);
    let mut runs = Vec::new();
    for sha in shas {
        let results = check_run::find(client, repo, sha, check_name)?
            .and_then(|run| Results::extract(check_run::text_of(&run)));
        if let Some(r) = results {
            let (passed, total) = r.passed();
            runs.push(PassRate::new(&sha[..7], passed, total));
        }
    }
    runs.reverse();
    Ok(runs)
}
