//! The sticky pull-request comment: one per check name, found again by a
//! hidden marker and edited in place, so reruns and pushes do not pile up
//! comments.

use serde_json::{json, Value};

use super::api::{ApiError, Client};
use super::env::Repo;

#[derive(Debug, PartialEq)]
pub enum Posted {
    Created(u64),
    Updated(u64),
}

/// The hidden first line of our comment. Check names are the user's: `>`
/// and other odd characters become `_`, so no name can end the comment.
pub fn marker(check_name: &str) -> String {
    let name: String = check_name
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | ' ' | '/') {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("<!-- bpfcompat:matrix:{name} -->")
}

/// Updates the comment that starts with `marker` (searching every page), or
/// creates one. A comment merely quoting the marker does not start with it.
pub fn upsert(
    client: &Client,
    repo: &Repo,
    pr: u64,
    marker: &str,
    body: &str,
) -> Result<Posted, ApiError> {
    let comments = client.get_all(
        &format!("/repos/{repo}/issues/{pr}/comments"),
        &[("per_page", "100")],
    )?;
    let existing = comments.iter().find_map(|c| {
        let body = c.get("body").and_then(Value::as_str)?;
        body.starts_with(marker)
            .then(|| c.get("id").and_then(Value::as_u64))
            .flatten()
    });
    let body = json!({ "body": body });
    match existing {
        // PATCH, as GitHub documents (octocrab's update_comment POSTs).
        Some(id) => {
            client.patch(&format!("/repos/{repo}/issues/comments/{id}"), &body)?;
            Ok(Posted::Updated(id))
        }
        None => {
            let created = client.post(&format!("/repos/{repo}/issues/{pr}/comments"), &body)?;
            Ok(Posted::Created(
                created
                    .get("id")
                    .and_then(Value::as_u64)
                    .unwrap_or_default(),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_cannot_close_the_comment() {
        assert_eq!(marker("bpfcompat"), "<!-- bpfcompat:matrix:bpfcompat -->");
        assert_eq!(marker("x --> <b>"), "<!-- bpfcompat:matrix:x --_ _b_ -->");
    }
}
