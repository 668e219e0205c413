//! Where `publish` runs: the GitHub Actions environment variables and the
//! event payload that says which commit and pull request the results are for.

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

#[derive(Debug, Clone)]
pub struct GithubEnv {
    pub repo: Repo,
    pub api_url: String,
    /// The commit the check run belongs to: the PR head on pull-request
    /// events, because `GITHUB_SHA` is then a merge commit nobody looks at.
    pub head_sha: String,
    pub pull_request: Option<PullRequest>,
    pub step_summary: Option<PathBuf>,
    pub output: Option<PathBuf>,
    /// The workflow run's page, where the report artifact is listed.
    pub run_url: Option<String>,
    /// The repository checkout, to make paths repository-relative.
    pub workspace: Option<PathBuf>,
}

impl GithubEnv {
    /// Reads the environment through `var` (so tests need not set real
    /// variables); empty values count as unset, as they do for the runner.
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<GithubEnv, EnvError> {
        let var = |name: &str| var(name).filter(|v| !v.is_empty());
        let repository = var("GITHUB_REPOSITORY").ok_or(EnvError::Missing {
            name: "GITHUB_REPOSITORY",
        })?;
        let repo = parse_repo(&repository)?;
        let event = match var("GITHUB_EVENT_PATH") {
            Some(path) => Some(read_event(Path::new(&path))?),
            None => None,
        };
        let pull_request = event.as_ref().and_then(|e| e.pull_request.clone());
        let head_sha = match event.and_then(|e| e.head_sha) {
            Some(sha) => sha,
            None => {
                let sha = var("GITHUB_SHA").ok_or(EnvError::Missing { name: "GITHUB_SHA" })?;
                check_sha("GITHUB_SHA", sha)?
            }
        };
        let run_url = match (var("GITHUB_SERVER_URL"), var("GITHUB_RUN_ID")) {
            (Some(server), Some(run)) => Some(format!(
                "{}/{repo}/actions/runs/{run}",
                server.trim_end_matches('/')
            )),
            _ => None,
        };
        Ok(GithubEnv {
            repo,
            api_url: var("GITHUB_API_URL")
                .unwrap_or_else(|| "https://api.github.com".into())
                .trim_end_matches('/')
                .to_owned(),
            head_sha,
            pull_request,
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
fn check_sha(what: &'static str, value: String) -> Result<String, EnvError> {
    if (7..=64).contains(&value.len()) && value.chars().all(|c| c.is_ascii_hexdigit()) {
        Ok(value)
    } else {
        Err(EnvError::BadSha { what, value })
    }
}

struct Event {
    head_sha: Option<String>,
    pull_request: Option<PullRequest>,
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
    // pull_request and pull_request_target carry the PR; other events
    // (push, workflow_dispatch, schedule) have no PR to comment on.
    let Some(pr) = payload.get("pull_request").filter(|pr| pr.is_object()) else {
        return Ok(Event {
            head_sha: None,
            pull_request: None,
        });
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
        GithubEnv::from_env(|k| vars.get(k).cloned())
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
