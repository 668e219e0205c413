//! The sticky pull-request comment: one per check name, found again by a
//! hidden marker and edited in place, so reruns and pushes do not pile up
//! comments. Anyone who can comment can post our marker too: only a comment
//! the token's own identity wrote is ours, and no other is ever edited.

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

/// The login of the identity the token acts as, whose comments are ours:
/// GraphQL's `viewer`, which answers for `GITHUB_TOKEN`
/// (`github-actions[bot]`), an app's installation token (`APP[bot]`) and a
/// person's token alike.
pub fn own_login(client: &Client) -> Result<String, ApiError> {
    let data = client.graphql("query { viewer { login } }")?;
    match data.pointer("/viewer/login").and_then(Value::as_str) {
        Some(login) if !login.is_empty() => Ok(login.to_owned()),
        _ => Err(client.graphql_error("the answer names no viewer.login")),
    }
}

/// Updates the comment `author` wrote that starts with `marker` (searching
/// every page), or creates one. Another user's comment is never ours, marker
/// or not; nor is one merely quoting the marker, which does not start with it.
pub fn upsert(
    client: &Client,
    repo: &Repo,
    pr: u64,
    author: &str,
    marker: &str,
    body: &str,
) -> Result<Posted, ApiError> {
    let comments = client.get_all(
        &format!("/repos/{repo}/issues/{pr}/comments"),
        &[("per_page", "100")],
    )?;
    let existing = comments.iter().find_map(|c| {
        let login = c.pointer("/user/login").and_then(Value::as_str)?;
        let body = c.get("body").and_then(Value::as_str)?;
        // Logins are case-insensitive.
        (login.eq_ignore_ascii_case(author) && body.starts_with(marker))
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
