//! `bpfcompat publish`: puts a report where a pull request's author sees it
//! (a check run on the head commit, a sticky comment, the job summary) and
//! decides the step's exit code by the `--fail-on` policy.
//!
//! A read-only token (pull requests from forks) is expected, not an error:
//! whatever GitHub refuses with 403 becomes a warning, and the job summary,
//! step outputs and the report.json artifact still carry the results.
//!
//! With [`Trigger::WorkflowRun`] the report is another run's artifact and a
//! stranger's words: it is checked against the schema and its size limits
//! before anything is posted, the commit and pull request come from the
//! event, and no path it names is read.

mod api;
mod check_run;
mod comment;
mod compare;
mod env;
pub mod grid;
mod render;
mod runner;
mod trend;
mod workflow_run;

use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::report::{Report, RunStatus, TargetStatus};
use crate::results::compare::FailOn;
use api::{ApiError, Client};
use check_run::{CheckRun, Conclusion};
use compare::{Baseline, Change, MissingBase, Results};
pub use env::Trigger;
use env::{GithubEnv, PullRequest};
use render::View;

/// When to post the sticky pull-request comment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommentMode {
    Always,
    Never,
    /// Only when a kernel did not pass or regressed; never deletes one.
    OnFailure,
}

/// What `publish` is asked to do.
pub struct PublishOptions {
    /// The report.json written by `bpfcompat test`.
    pub report: PathBuf,
    /// Whose results the report is: this job's, or another run's artifact.
    pub trigger: Trigger,
    /// Without one, only the job summary and the outputs are written.
    pub token: Option<String>,
    pub check_name: String,
    /// Create or update the check run (else the token only reads).
    pub check_run: bool,
    pub comment: CommentMode,
    /// Whose comment carrying our marker is ours; the token's own identity
    /// (GraphQL's `viewer`) when not given.
    pub comment_author: Option<String>,
    pub fail_on: FailOn,
    /// On pull requests, compare with this check run's results on the base.
    pub compare_base: bool,
    /// Where the uploaded report.json is; the workflow run otherwise.
    pub artifact_url: Option<String>,
    /// Where the uploaded report.html is, linked from what is published.
    pub page_url: Option<String>,
}

pub fn publish(args: &PublishOptions) -> anyhow::Result<u8> {
    let untrusted = args.trigger == Trigger::WorkflowRun;
    let report = match untrusted {
        true => Report::read_untrusted(&args.report)?,
        false => Report::read(&args.report)?,
    };
    let gh = GithubEnv::from_env(|name| std::env::var(name).ok(), args.trigger)?;
    let client = match args.token.as_deref().filter(|t| !t.is_empty()) {
        Some(token) => {
            if std::env::var("GITHUB_ACTIONS").as_deref() == Ok("true") {
                runner::add_mask(token);
            }
            Some(Client::new(&gh.api_url, &gh.graphql_url, token))
        }
        None => {
            runner::warning(
                "bpfcompat publish: no GitHub token (--token or GITHUB_TOKEN), so no check run \
                 and no pull-request comment; the results are in the job summary",
            );
            None
        }
    };
    // Errors other than 403 fail the step, but only after the job summary
    // and outputs are written: the results must reach the user either way.
    let mut errors = Vec::new();
    let pull_request = match &gh.workflow_run {
        None => gh.pull_request.clone(),
        Some(run) => {
            let found = workflow_run::pull_request(run, client.as_ref(), &gh.repo);
            let found = settle("pull request lookup", found, &mut errors).flatten();
            if found.is_none() && run.event == "pull_request" {
                println!(
                    "bpfcompat: no open pull request has the run's head {} (pushed again \
                     since?): no comment",
                    run.head_sha
                );
            }
            found
        }
    };
    let baseline = baseline(
        args,
        &gh.repo,
        pull_request.as_ref(),
        client.as_ref(),
        &report,
    );
    let regressions = baseline.count(Change::Regressed);
    let exit_code = args
        .fail_on
        .exit_code(&report, baseline.kernels(), baseline.min_kernel());
    // Another run's console logs are on another machine; a path its report
    // names is nothing to read here.
    if !untrusted {
        for t in &report.targets {
            runner::log_group(
                &kernel_log_title(t),
                &console_tail(Path::new(&t.console_log)),
            );
        }
    }
    let link = args.artifact_url.as_deref().or(gh.run_url.as_deref());
    let trend = trend(
        args,
        &gh.repo,
        pull_request.as_ref(),
        client.as_ref(),
        &report,
    );
    let view = View::new(&report, &baseline, &args.check_name, link)
        .with_page(args.page_url.as_deref())
        .with_trend(trend);

    if let Some(client) = &client {
        if args.check_run {
            let run = CheckRun {
                name: args.check_name.clone(),
                conclusion: conclusion(&report, regressions, exit_code),
                title: view.title(),
                summary: view.check_summary(),
                text: view.check_text(),
                annotations: annotations(&report, &baseline, &gh, untrusted),
            };
            let published = check_run::publish(client, &gh.repo, &gh.head_sha, &run);
            if let Some(p) = settle("check run", published, &mut errors) {
                println!(
                    "bpfcompat: check run {:?} on {}: {p:?}",
                    crate::escape::plain_line(&run.name),
                    gh.head_sha
                );
            }
        }
        match &pull_request {
            Some(pr) if args.comment.wants(&report, regressions) => {
                let marker = comment::marker(&args.check_name);
                let posted = match &args.comment_author {
                    Some(author) => Ok(author.clone()),
                    None => comment::own_login(client),
                }
                .and_then(|author| {
                    let body = view.comment(&marker);
                    comment::upsert(client, &gh.repo, pr.number, &author, &marker, &body)
                });
                if let Some(p) = settle("pull-request comment", posted, &mut errors) {
                    println!("bpfcompat: comment on pull request #{}: {p:?}", pr.number);
                }
            }
            _ => {}
        }
    }
    if let Some(path) = &gh.step_summary {
        runner::append_summary(path, &view.job_summary())?;
    }
    if let Some(path) = &gh.output {
        runner::write_outputs(path, &outputs(args, &report, regressions, &view))?;
    }
    match errors.into_iter().next() {
        Some(e) => Err(e).context("publishing to GitHub failed (the job summary has the results)"),
        None => Ok(exit_code),
    }
}

/// One annotation per kernel that did not pass, on its line of the matrix.
/// Another run's report names a matrix on another machine: its path is used
/// only when it is a plain path inside the repository, and never read.
fn annotations(
    report: &Report,
    baseline: &Baseline,
    gh: &GithubEnv,
    untrusted: bool,
) -> Vec<serde_json::Value> {
    let path = repo_relative(&report.matrix.path, gh.workspace.as_deref());
    if !untrusted {
        let lines = std::fs::read_to_string(&report.matrix.path)
            .map(|text| crate::matrix::id_lines(&text))
            .unwrap_or_default();
        return check_run::annotations(report, baseline, &path, &lines);
    }
    match plain_repo_path(&path) {
        true => check_run::annotations(report, baseline, &path, &Default::default()),
        false => Vec::new(),
    }
}

/// `matrices/ci.yaml`, not `/etc/passwd`, `../x` or anything odd.
fn plain_repo_path(path: &str) -> bool {
    !path.is_empty()
        && path.len() <= 255
        && !path.starts_with('/')
        && path.split('/').all(|part| !matches!(part, "" | "." | ".."))
        && path
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-/".contains(&b))
}

/// The base commit's results, from the check run of the same name there.
/// Whatever is missing is said plainly in the comment, never an error.
fn baseline(
    args: &PublishOptions,
    repo: &env::Repo,
    pull_request: Option<&PullRequest>,
    client: Option<&Client>,
    report: &Report,
) -> Baseline {
    let Some(pr) = pull_request.filter(|_| args.compare_base) else {
        return Baseline::Off;
    };
    let missing = |reason| Baseline::Missing {
        base_sha: pr.base_sha.clone(),
        reason,
    };
    let Some(client) = client else {
        return missing(MissingBase::NoToken);
    };
    match check_run::find(client, repo, &pr.base_sha, &args.check_name) {
        Ok(run) => match run.and_then(|r| Results::extract(check_run::text_of(&r))) {
            Some(base) => Baseline::Compared {
                base_sha: pr.base_sha.clone(),
                changes: compare::compare(report, &base),
                min_kernel: compare::compare_min_kernels(report, &base),
            },
            None => missing(MissingBase::NoCheckRun),
        },
        Err(e) => {
            runner::warning(&format!(
                "bpfcompat publish: cannot read the base commit's check runs, so no comparison: {e}"
            ));
            missing(MissingBase::Unreadable)
        }
    }
}

/// On a pull request, the pass rate of the base branch's last runs of this
/// check and then this run's; empty when there is no earlier run to show.
fn trend(
    args: &PublishOptions,
    repo: &env::Repo,
    pull_request: Option<&PullRequest>,
    client: Option<&Client>,
    report: &Report,
) -> Vec<trend::PassRate> {
    let (Some(pr), Some(client)) = (pull_request.filter(|_| args.compare_base), client) else {
        return Vec::new();
    };
    match trend::base_runs(client, repo, &pr.base_sha, &args.check_name) {
        Ok(runs) if runs.is_empty() => runs,
        Ok(mut runs) => {
            runs.push(trend::PassRate::of("this PR", report));
            runs
        }
        Err(e) => {
            runner::warning(&format!(
                "bpfcompat publish: cannot read the base branch's earlier runs, so no history chart: {e}"
            ));
            Vec::new()
        }
    }
}

/// 403 is what a read-only token gets: a warning, and on with the rest.
fn settle<T>(what: &str, result: Result<T, ApiError>, errors: &mut Vec<ApiError>) -> Option<T> {
    match result {
        Ok(value) => Some(value),
        Err(e) if e.is_forbidden() => {
            runner::warning(&format!(
                "bpfcompat publish: GitHub refused the {what} ({e}). Pull requests from forks get \
                 a read-only token, and other workflows need `permissions: checks: write, \
                 pull-requests: write`. The results are in the job summary and the report.json \
                 artifact."
            ));
            None
        }
        Err(e) => {
            eprintln!(
                "bpfcompat publish: the {what} failed: {}",
                crate::escape::plain(&e.to_string())
            );
            errors.push(e);
            None
        }
    }
}

impl CommentMode {
    fn wants(self, report: &Report, regressions: usize) -> bool {
        match self {
            CommentMode::Always => true,
            CommentMode::Never => false,
            CommentMode::OnFailure => {
                regressions > 0
                    || report
                        .targets
                        .iter()
                        .any(|t| t.status != TargetStatus::Pass)
            }
        }
    }
}

/// Failure when the policy fails the step; neutral when something did not
/// pass but the policy lets it through (branch protection accepts neutral).
fn conclusion(report: &Report, regressions: usize, exit_code: u8) -> Conclusion {
    if exit_code != 0 {
        Conclusion::Failure
    } else if regressions > 0
        || report
            .targets
            .iter()
            .any(|t| t.status != TargetStatus::Pass)
    {
        Conclusion::Neutral
    } else {
        Conclusion::Success
    }
}

fn outputs(
    args: &PublishOptions,
    report: &Report,
    regressions: usize,
    view: &View,
) -> Vec<(&'static str, String)> {
    let s = &report.summary;
    let status = match s.status {
        RunStatus::Pass => "pass",
        RunStatus::Fail => "fail",
        RunStatus::Error => "error",
    };
    vec![
        ("status", status.to_owned()),
        ("passed", s.passed.to_string()),
        ("partial", s.partial.to_string()),
        ("failed", s.failed.to_string()),
        ("infra-errors", s.infra_errors.to_string()),
        ("regressions", regressions.to_string()),
        ("report", args.report.display().to_string()),
        ("markdown", view.markdown()),
    ]
}

/// `lts-6.1: fail (6.1.188), VERIFIER_REJECTION`.
fn kernel_log_title(t: &crate::report::Target) -> String {
    let status = serde_json::to_value(t.status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    let release = t.kernel.release.as_deref().unwrap_or("not booted");
    match &t.classification {
        Some(c) => format!("{}: {status} ({release}), {}", t.id, c.code.as_str()),
        None => format!("{}: {status} ({release})", t.id),
    }
}

/// The end of a kernel's console log, or why there is none.
fn console_tail(path: &Path) -> String {
    const TAIL_BYTES: usize = 64 * 1024;
    match std::fs::read(path) {
        Ok(bytes) => {
            let start = bytes.len().saturating_sub(TAIL_BYTES);
            let text = String::from_utf8_lossy(&bytes[start..]).into_owned();
            if start > 0 {
                format!(
                    "(the last {TAIL_BYTES} bytes of {})\n{text}",
                    path.display()
                )
            } else {
                text
            }
        }
        Err(e) => format!("no console log at {}: {e}", path.display()),
    }
}

/// Annotations name a file in the repository; the report may hold the
/// matrix's absolute path inside the checkout.
fn repo_relative(path: &str, workspace: Option<&Path>) -> String {
    let path = Path::new(path);
    workspace
        .and_then(|w| path.strip_prefix(w).ok())
        .unwrap_or(path)
        .to_string_lossy()
        .trim_start_matches("./")
        .to_owned()
}
