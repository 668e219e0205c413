//! `--workflow-run`: which pull request the results of another workflow run
//! belong to. GitHub says so, never the report that run uploaded: the run
//! may have run a fork's code, which wrote whatever it liked.

use serde_json::Value;

use super::api::{ApiError, Client};
use super::env::{check_sha, PullRequest, Repo, WorkflowRun};

/// The open pull request whose head is the run's head commit, if the run
/// was started by one: from the event when GitHub lists it there (a branch
/// of this repository), else (a fork's, which the event never lists) from
/// the pull requests open from the run's head branch.
pub fn pull_request(
    run: &WorkflowRun,
    client: Option<&Client>,
    repo: &Repo,
) -> Result<Option<PullRequest>, ApiError> {
    if !matches!(run.event.as_str(), "pull_request" | "pull_request_target") {
        return Ok(None);
    }
    if let Some(pr) = run
        .pull_requests
        .iter()
        .find(|p| p.head_sha == run.head_sha)
    {
        return Ok(Some(PullRequest {
            number: pr.number,
            base_sha: pr.base_sha.clone(),
        }));
    }
    let (Some(client), Some(label)) = (client, &run.head_label) else {
        return Ok(None);
    };
    let pulls = client.get_all(
        &format!("/repos/{repo}/pulls"),
        &[("state", "open"), ("head", label), ("per_page", "100")],
    )?;
    Ok(pulls.iter().find_map(|p| {
        let head = p.pointer("/head/sha").and_then(Value::as_str)?;
        let base = p.pointer("/base/sha").and_then(Value::as_str)?;
        (head == run.head_sha).then_some(())?;
        Some(PullRequest {
            number: p.get("number").and_then(Value::as_u64)?,
            base_sha: check_sha("pull_request.base.sha", base.to_owned()).ok()?,
        })
    }))
}
