//! The check run: created on the pull request's head commit, or updated in
//! place when a rerun finds the one it published before.

use serde::Serialize;
use serde_json::{json, Value};

use super::api::{ApiError, Client};
use super::compare::{label, Baseline, Change, Results};
use super::env::Repo;
use crate::escape;
use crate::report::{Report, Target, TargetStatus};

/// GitHub takes at most 50 annotations per create or update request.
const ANNOTATIONS_PER_REQUEST: usize = 50;
/// Annotation messages are plain text; GitHub caps them at 64 KiB.
const MESSAGE_CAP: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Conclusion {
    Success,
    Failure,
    /// Something did not pass, but the `--fail-on` policy lets it through.
    Neutral,
}

pub struct CheckRun {
    pub name: String,
    pub conclusion: Conclusion,
    pub title: String,
    pub summary: String,
    pub text: String,
    pub annotations: Vec<Value>,
}

#[derive(Debug, PartialEq)]
pub enum Published {
    Created(u64),
    Updated(u64),
}

/// The newest check run named `name` on `sha` that we published: it carries
/// results. A job of the same name is a check run too, and must never be
/// mistaken for ours (let alone overwritten).
pub fn find(
    client: &Client,
    repo: &Repo,
    sha: &str,
    name: &str,
) -> Result<Option<Value>, ApiError> {
    let runs = client.get(
        &format!("/repos/{repo}/commits/{sha}/check-runs"),
        &[("check_name", name), ("per_page", "100")],
    )?;
    Ok(runs
        .get("check_runs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|r| r.get("name").and_then(Value::as_str) == Some(name))
        .filter(|r| Results::extract(text_of(r)).is_some())
        .max_by_key(|r| r.get("id").and_then(Value::as_u64))
        .cloned())
}

pub fn text_of(run: &Value) -> &str {
    run.pointer("/output/text")
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// Creates or updates the check run on `sha`, then adds the annotations
/// beyond the first request's 50, 50 at a time.
pub fn publish(
    client: &Client,
    repo: &Repo,
    sha: &str,
    run: &CheckRun,
) -> Result<Published, ApiError> {
    let mut batches = run.annotations.chunks(ANNOTATIONS_PER_REQUEST);
    let output = |annotations: &[Value]| {
        json!({
            "title": run.title,
            "summary": run.summary,
            "text": run.text,
            "annotations": annotations,
        })
    };
    let first = json!({
        "name": run.name,
        "head_sha": sha,
        "status": "completed",
        "conclusion": run.conclusion,
        "output": output(batches.next().unwrap_or_default()),
    });
    let published = match find(client, repo, sha, &run.name)? {
        Some(existing) => {
            let id = existing
                .get("id")
                .and_then(Value::as_u64)
                .unwrap_or_default();
            client.patch(&format!("/repos/{repo}/check-runs/{id}"), &first)?;
            Published::Updated(id)
        }
        None => {
            let created = client.post(&format!("/repos/{repo}/check-runs"), &first)?;
            Published::Created(
                created
                    .get("id")
                    .and_then(Value::as_u64)
                    .unwrap_or_default(),
            )
        }
    };
    let id = match published {
        Published::Created(id) | Published::Updated(id) => id,
    };
    for batch in batches {
        client.patch(
            &format!("/repos/{repo}/check-runs/{id}"),
            &json!({ "output": output(batch) }),
        )?;
    }
    Ok(published)
}

/// One annotation per kernel that did not pass, on the matrix file: a
/// failure where it counts (a required kernel, or a regression), a warning
/// otherwise. Annotations are plain text, shown as they are.
/// One annotation per kernel that did not pass, on the line of its `id:` in
/// the matrix (`lines`, by id; line 1 when the matrix cannot be read).
pub fn annotations(
    report: &Report,
    baseline: &Baseline,
    matrix_path: &str,
    lines: &std::collections::HashMap<String, usize>,
) -> Vec<Value> {
    let regressed = baseline.regressed();
    report
        .targets
        .iter()
        .filter(|t| t.status != TargetStatus::Pass)
        .map(|t| {
            let regressed = regressed.contains(&t.id.as_str());
            let level = if t.required || regressed {
                "failure"
            } else {
                "warning"
            };
            let line = lines.get(&t.id).copied().unwrap_or(1);
            json!({
                "path": matrix_path,
                "start_line": line,
                "end_line": line,
                "annotation_level": level,
                "title": annotation_title(t, regressed),
                "message": annotation_message(t),
            })
        })
        .collect()
}

fn annotation_title(t: &Target, regressed: bool) -> String {
    let what = match t.status {
        TargetStatus::InfraError => "could not be checked",
        TargetStatus::Partial => "partially checked",
        _ => "failed",
    };
    let change = if regressed {
        format!(" ({})", label(Change::Regressed))
    } else {
        String::new()
    };
    let title = format!("{} {what}{change}", escape::plain_line(&t.id));
    title.chars().take(255).collect()
}

fn annotation_message(t: &Target) -> String {
    let mut message = match &t.classification {
        Some(c) => format!(
            "{}: {}\n{}",
            c.code.as_str(),
            escape::plain(&c.reason),
            escape::plain(&c.hint)
        ),
        None => format!("{:?}", t.status),
    };
    if message.len() > MESSAGE_CAP {
        let mut end = MESSAGE_CAP;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;
    use bpfcompat_testkit::{inert, reports};

    #[test]
    fn annotations_are_inert_plain_text() {
        let report =
            serde_json::from_value::<crate::report::Report>(reports::hostile_json()).unwrap();
        let annotations = annotations(
            &report,
            &Baseline::Off,
            "matrices/ci.yaml",
            &Default::default(),
        );
        assert_eq!(annotations.len(), 2);
        for a in &annotations {
            let title = a["title"].as_str().unwrap();
            inert::assert_inert_plain("title", title);
            assert_eq!(title.lines().count(), 1);
            inert::assert_inert_plain("message", a["message"].as_str().unwrap());
        }
    }
}
