//! Where `publish` runs: the GitHub Actions environment variables and the
//! event payload that says which commit and pull request the results are for:
//! this run's, or (`--workflow-run`) those of the run a `workflow_run` event
//! names, never what the report of that run claims.

use std::path::{Path, PathBuf};

use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    #[error("{name} is not set: `bpfcompat publish` runs inside a GitHub Actions job")]
    Missing { name: &'static str },
    #[error("GITHUB_REPOSITORY={value:?} is not of the form owner/name")]
    BadRepository { value: String },
    #[error("cannot read the event payload {} (GITHUB_EVENT_PATH): {err}", path.display())]
    ReadEvent { path: PathBuf, err: std::io::Error },
    #[error("the event payload {} (GITHUB_EVENT_PATH) is not JSON: {err}", path.display())]
    ParseEvent {
        path: PathBuf,
        err: serde_json::Error,
    },
    #[error("{what}={value:?} is not a commit sha")]
    BadSha { what: &'static str, value: String },
    #[error("the event payload {} has a pull_request without {field}", path.display())]
    PullRequestField { path: PathBuf, field: &'static str },
    #[error(
        "--workflow-run publishes the results of the run a workflow_run event names, but this \
         job's event ({}) has no workflow_run: run it in a workflow `on: workflow_run` \
         (docs/github-action.md, pull requests from forks)",
        event.as_deref().unwrap_or("GITHUB_EVENT_PATH unset")
    )]
    NotWorkflowRun { event: Option<String> },
    #[error("the event payload {} has a workflow_run without {field}", path.display())]
    WorkflowRunField { path: PathBuf, field: &'static str },
}

/// Whose results are published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// This job's own: its commit, its pull request.
    ThisRun,
    /// The run a `workflow_run` event names: its head commit and pull request.
    WorkflowRun,
}

/// `owner/name`, checked so both parts are safe in an API path.
#[derive(Debug, Clone, PartialEq)]
pub struct Repo {
    pub owner: String,
    pub name: String,
}

impl std::fmt::Display for Repo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.owner, self.name)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct PullRequest {
    pub number: u64,
    pub base_sha: String,
}

/// What a `workflow_run` event says of the run it names: GitHub's words,
/// where the report that run uploaded is a stranger's.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkflowRun {
    pub id: u64,
    pub head_sha: String,
    /// What started the run: `pull_request`, `push`, ...
    pub event: String,
    /// `owner:branch` of the head (a fork's, for a fork's pull request).
    pub head_label: Option<String>,
    /// The pull requests GitHub lists with the run: none for a fork's.
    pub pull_requests: Vec<RunPullRequest>,
    /// The run's page, where its artifacts are.
    pub html_url: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RunPullRequest {
    pub number: u64,
    pub head_sha: String,
    pub base_sha: String,
}

#[derive(Debug, Clone)]
pub struct GithubEnv {
    pub repo: Repo,
    pub api_url: String,
    /// `GITHUB_GRAPHQL_URL`, else the API's `/graphql` (`/api/graphql` of
    /// an Enterprise Server's `/api/v3`).
    pub graphql_url: String,
    /// The commit the check run belongs to: the PR head on pull-request
    /// events, because `GITHUB_SHA` is then a merge commit nobody looks at.
    pub head_sha: String,
    /// This run's pull request; with [`Trigger::WorkflowRun`] it is found
    /// from [`GithubEnv::workflow_run`] instead (an API call for a fork's).
    pub pull_request: Option<PullRequest>,
    /// With [`Trigger::WorkflowRun`]: the run whose results these are.
    pub workflow_run: Option<WorkflowRun>,
    pub step_summary: Option<PathBuf>,
    pub output: Option<PathBuf>,
    /// The workflow run's page, where the report artifact is listed (the
    /// other run's, with [`Trigger::WorkflowRun`]).
    pub run_url: Option<String>,
    /// The repository checkout, to make paths repository-relative.
    pub workspace: Option<PathBuf>,
}

impl GithubEnv {
    /// Reads the environment through `var` (so tests need not set real
    /// variables); empty values count as unset, as they do for the runner.
    pub fn from_env(
        var: impl Fn(&str) -> Option<String>,
        trigger: Trigger,
    ) -> Result<GithubEnv, EnvError> {
        let var = |name: &str| var(name).filter(|v| !v.is_empty());
        let repository = var("GITHUB_REPOSITORY").ok_or(EnvError::Missing {
            name: "GITHUB_REPOSITORY",
        })?;
        let repo = parse_repo(&repository)?;
        let event = match var("GITHUB_EVENT_PATH") {
            Some(path) => Some(read_event(Path::new(&path))?),
            None => None,
        };
        let (pull_request, workflow_run, own_sha) = match (trigger, event) {
            (Trigger::ThisRun, event) => {
                let event = event.unwrap_or_default();
                (event.pull_request, None, event.head_sha)
            }
            (
                Trigger::WorkflowRun,
                Some(Event {
                    workflow_run: Some(run),
                    ..
                }),
            ) => {
                let sha = run.head_sha.clone();
                (None, Some(run), Some(sha))
            }
            (Trigger::WorkflowRun, _) => {
                return Err(EnvError::NotWorkflowRun {
                    event: var("GITHUB_EVENT_NAME"),
                })
            }
        };
        let head_sha = match own_sha {
            Some(sha) => sha,
            None => {
                let sha = var("GITHUB_SHA").ok_or(EnvError::Missing { name: "GITHUB_SHA" })?;
                check_sha("GITHUB_SHA", sha)?
            }
        };
        let run_url = match (
            &workflow_run,
            var("GITHUB_SERVER_URL"),
            var("GITHUB_RUN_ID"),
        ) {
            (Some(run), _, _) => run.html_url.clone(),
            (None, Some(server), Some(run)) => Some(format!(
                "{}/{repo}/actions/runs/{run}",
                server.trim_end_matches('/')
            )),
            _ => None,
        };
        let api_url = var("GITHUB_API_URL")
            .unwrap_or_else(|| "https://api.github.com".into())
            .trim_end_matches('/')
            .to_owned();
        let graphql_url =
            var("GITHUB_GRAPHQL_URL").unwrap_or_else(|| match api_url.strip_suffix("/api/v3") {
                Some(server) => format!("{server}/api/graphql"),
                None => format!("{api_url}/graphql"),
            });
        Ok(GithubEnv {
            repo,
            api_url,
            graphql_url,
            head_sha,
            pull_request,
            workflow_run,
            step_summary: var("GITHUB_STEP_SUMMARY").map(PathBuf::from),
            output: var("GITHUB_OUTPUT").map(PathBuf::from),
            run_url,
            workspace: var("GITHUB_WORKSPACE").map(PathBuf::from),
        })
    }
}

fn parse_repo(value: &str) -> Result<Repo, EnvError> {
    let safe = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    match value.split_once('/') {
        Some((owner, name)) if safe(owner) && safe(name) => Ok(Repo {
            owner: owner.into(),
            name: name.into(),
        }),
        _ => Err(EnvError::BadRepository {
            value: value.into(),
        }),
    }
}

/// Shas go into API paths, so anything but hex is refused.
pub(super) fn check_sha(what: &'static str, value: String) -> Result<String, EnvError> {
    if (7..=64).contains(&value.len()) && value.chars().all(|c| c.is_ascii_hexdigit()) {
        Ok(value)
    } else {
        Err(EnvError::BadSha { what, value })
    }
}

#[derive(Default)]
struct Event {
    head_sha: Option<String>,
    pull_request: Option<PullRequest>,
    workflow_run: Option<WorkflowRun>,
}

fn read_event(path: &Path) -> Result<Event, EnvError> {
    let text = std::fs::read_to_string(path).map_err(|err| EnvError::ReadEvent {
        path: path.into(),
        err,
    })?;
    let payload: Value = serde_json::from_str(&text).map_err(|err| EnvError::ParseEvent {
        path: path.into(),
        err,
    })?;
    if let Some(run) = payload.get("workflow_run").filter(|r| r.is_object()) {
        return Ok(Event {
            workflow_run: Some(read_workflow_run(path, run)?),
            ..Event::default()
        });
    }
    // pull_request and pull_request_target carry the PR; other events
    // (push, workflow_dispatch, schedule) have no PR to comment on.
    let Some(pr) = payload.get("pull_request").filter(|pr| pr.is_object()) else {
        return Ok(Event::default());
    };
    let field = |field: &'static str, value: Option<&str>| {
        value.map(str::to_owned).ok_or(EnvError::PullRequestField {
            path: path.into(),
            field,
        })
    };
    let head = field("head.sha", pr.pointer("/head/sha").and_then(Value::as_str))?;
    let base = field("base.sha", pr.pointer("/base/sha").and_then(Value::as_str))?;
    let number = pr
        .get("number")
        .and_then(Value::as_u64)
        .ok_or(EnvError::PullRequestField {
            path: path.into(),
            field: "number",
        })?;
    Ok(Event {
        head_sha: Some(check_sha("pull_request.head.sha", head)?),
        pull_request: Some(PullRequest {
            number,
            base_sha: check_sha("pull_request.base.sha", base)?,
        }),
        workflow_run: None,
    })
}

fn read_workflow_run(path: &Path, run: &Value) -> Result<WorkflowRun, EnvError> {
    let missing = |field| EnvError::WorkflowRunField {
        path: path.into(),
        field,
    };
    let text = |pointer: &str| run.pointer(pointer).and_then(Value::as_str);
    let id = run.get("id").and_then(Value::as_u64).ok_or(missing("id"))?;
    let head_sha = text("/head_sha").ok_or(missing("head_sha"))?;
    let event = text("/event").ok_or(missing("event"))?;
    let head_label = match (text("/head_repository/owner/login"), text("/head_branch")) {
        (Some(owner), Some(branch)) => Some(format!("{owner}:{branch}")),
        _ => None,
    };
    let mut pull_requests = Vec::new();
    for pr in run
        .get("pull_requests")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let number = pr.get("number").and_then(Value::as_u64);
        let head = pr.pointer("/head/sha").and_then(Value::as_str);
        let base = pr.pointer("/base/sha").and_then(Value::as_str);
        let (Some(number), Some(head), Some(base)) = (number, head, base) else {
            return Err(missing("pull_requests[].number, head.sha and base.sha"));
        };
        pull_requests.push(RunPullRequest {
            number,
            head_sha: check_sha("workflow_run.pull_requests[].head.sha", head.into())?,
            base_sha: check_sha("workflow_run.pull_requests[].base.sha", base.into())?,
        });
    }
    Ok(WorkflowRun {
        id,
        head_sha: check_sha("workflow_run.head_sha", head_sha.into())?,
        event: event.into(),
        head_label,
        pull_requests,
        html_url: text("/html_url").map(str::to_owned),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_with(vars: &[(&str, &str)]) -> Result<GithubEnv, EnvError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        GithubEnv::from_env(|k| vars.get(k).cloned(), Trigger::ThisRun)
    }

    #[test]
    fn pull_request_head_wins_over_the_merge_sha() {
        let dir = tempfile::tempdir().unwrap();
        let event = dir.path().join("event.json");
        std::fs::write(
            &event,
            r#"{"pull_request":{"number":7,"head":{"sha":"aaaaaaa1"},"base":{"sha":"bbbbbbb2"}}}"#,
        )
        .unwrap();
        let env = env_with(&[
            ("GITHUB_REPOSITORY", "o/r"),
            ("GITHUB_SHA", "ccccccc3"),
            ("GITHUB_EVENT_PATH", event.to_str().unwrap()),
            ("GITHUB_API_URL", "http://127.0.0.1:1/"),
        ])
        .unwrap();
        assert_eq!(env.head_sha, "aaaaaaa1");
        assert_eq!(
            env.pull_request,
            Some(PullRequest {
                number: 7,
                base_sha: "bbbbbbb2".into()
            })
        );
        assert_eq!(env.api_url, "http://127.0.0.1:1");
    }

    #[test]
    fn workflow_run_events_name_the_other_runs_head() {
        let dir = tempfile::tempdir().unwrap();
        let event = dir.path().join("event.json");
        std::fs::write(
            &event,
            r#"{"workflow_run":{"id":41,"event":"pull_request","head_sha":"aaaaaaa1",
                "head_branch":"fix","head_repository":{"owner":{"login":"forker"}},
                "pull_requests":[],"html_url":"https://github.com/o/r/actions/runs/41"}}"#,
        )
        .unwrap();
        let vars: HashMap<&str, String> = [
            ("GITHUB_REPOSITORY", "o/r".to_owned()),
            ("GITHUB_SHA", "ccccccc3".to_owned()),
            ("GITHUB_EVENT_NAME", "workflow_run".to_owned()),
            ("GITHUB_EVENT_PATH", event.display().to_string()),
        ]
        .into();
        let var = |k: &str| vars.get(k).cloned();
        let env = GithubEnv::from_env(var, Trigger::WorkflowRun).unwrap();
        assert_eq!(env.head_sha, "aaaaaaa1");
        assert_eq!(env.pull_request, None);
        let run = env.workflow_run.unwrap();
        assert_eq!(run.head_label.as_deref(), Some("forker:fix"));
        assert_eq!(env.run_url, run.html_url);
        assert_eq!(env.graphql_url, "https://api.github.com/graphql");
        // Without --workflow-run the event is this job's: no pull request.
        let own = GithubEnv::from_env(var, Trigger::ThisRun).unwrap();
        assert_eq!(
            (own.head_sha.as_str(), own.workflow_run),
            ("ccccccc3", None)
        );
        let push = |k: &str| (k != "GITHUB_EVENT_PATH").then(|| var(k)).flatten();
        assert!(matches!(
            GithubEnv::from_env(push, Trigger::WorkflowRun),
            Err(EnvError::NotWorkflowRun { .. })
        ));
    }

    #[test]
    fn push_events_use_github_sha() {
        let env = env_with(&[("GITHUB_REPOSITORY", "o/r"), ("GITHUB_SHA", "ccccccc3")]).unwrap();
        assert_eq!(env.head_sha, "ccccccc3");
        assert_eq!(env.pull_request, None);
        assert_eq!(env.api_url, "https://api.github.com");
    }

    #[test]
    fn refuses_what_would_escape_an_api_path() {
        assert!(matches!(
            env_with(&[("GITHUB_REPOSITORY", "o/r/../x"), ("GITHUB_SHA", "abcdef1")]),
            Err(EnvError::BadRepository { .. })
        ));
        assert!(matches!(
            env_with(&[("GITHUB_REPOSITORY", "o/r"), ("GITHUB_SHA", "../../x")]),
            Err(EnvError::BadSha { .. })
        ));
        assert!(matches!(
            env_with(&[("GITHUB_SHA", "abcdef1")]),
            Err(EnvError::Missing {
                name: "GITHUB_REPOSITORY"
            })
        ));
    }
}
