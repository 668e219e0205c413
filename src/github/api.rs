//! A thin blocking client for the few GitHub REST calls `publish` makes, and
//! its one GraphQL query (who the token acts as).
//!
//! ureq (already our HTTP client for kernel downloads, on rustls) rather than
//! octocrab: we need generic JSON, `Link` pagination and PATCH on issue
//! comments, which is most of what octocrab would have to be worked around
//! for, and it would bring a second HTTP stack for a handful of requests.

use std::time::Duration;

use serde_json::Value;

const API_VERSION: &str = "2022-11-28";
/// A stuck API must not hold a CI job until its own timeout.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{method} {url}: GitHub answered {status}: {message}")]
    Status {
        method: &'static str,
        url: String,
        status: u16,
        message: String,
    },
    /// ureq's error, as text: it may quote the URL, which is redacted.
    #[error("{method} {url}: {message}")]
    Transport {
        method: &'static str,
        url: String,
        message: String,
    },
    #[error("{method} {url}: the answer is not JSON: {err}")]
    Json {
        method: &'static str,
        url: String,
        err: serde_json::Error,
    },
    #[error("POST {url}: GitHub answered the query with errors: {message}")]
    GraphQl { url: String, message: String },
    #[error("GET {url}: the next page {next} is not on {base}; not sending the token there")]
    ForeignLink {
        url: String,
        next: String,
        base: String,
    },
}

impl ApiError {
    /// A read-only token (pull requests from forks) gets 403 on writes.
    pub fn is_forbidden(&self) -> bool {
        matches!(self, ApiError::Status { status: 403, .. })
    }

    /// The error with `token` cut out of every text it carries: whatever
    /// GitHub, a proxy or the URL (`GITHUB_API_URL` may hold credentials)
    /// put there ends up in the job log.
    fn redacted(self, token: &str) -> ApiError {
        let r = |text: String| match token.is_empty() {
            true => text,
            false => text.replace(token, "***"),
        };
        match self {
            ApiError::Status {
                method,
                url,
                status,
                message,
            } => ApiError::Status {
                method,
                url: r(url),
                status,
                message: r(message),
            },
            ApiError::Transport {
                method,
                url,
                message,
            } => ApiError::Transport {
                method,
                url: r(url),
                message: r(message),
            },
            ApiError::Json { method, url, err } => ApiError::Json {
                method,
                url: r(url),
                err,
            },
            ApiError::GraphQl { url, message } => ApiError::GraphQl {
                url: r(url),
                message: r(message),
            },
            ApiError::ForeignLink { url, next, base } => ApiError::ForeignLink {
                url: r(url),
                next: r(next),
                base: r(base),
            },
        }
    }
}

pub struct Client {
    agent: ureq::Agent,
    base: String,
    graphql: String,
    token: String,
}

impl Client {
    /// `base` is the REST API root without a trailing slash
    /// (`GITHUB_API_URL`), `graphql` the GraphQL endpoint
    /// (`GITHUB_GRAPHQL_URL`).
    pub fn new(base: &str, graphql: &str, token: &str) -> Client {
        let agent = ureq::Agent::config_builder()
            // Statuses are answers to read (403 means "degrade"), not errors.
            .http_status_as_error(false)
            .timeout_global(Some(REQUEST_TIMEOUT))
            .user_agent(concat!("bpfcompat/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Client {
            agent,
            base: base.to_owned(),
            graphql: graphql.to_owned(),
            token: token.to_owned(),
        }
    }

    /// The `data` of a GraphQL `query`; an answer with `errors` is an error.
    pub fn graphql(&self, query: &str) -> Result<Value, ApiError> {
        let body = serde_json::json!({ "query": query });
        let (answer, _) = self.send(Method::Post, &self.graphql, &[], Some(&body))?;
        match answer.get("errors").and_then(Value::as_array) {
            Some(errors) if !errors.is_empty() => {
                let message = errors
                    .iter()
                    .filter_map(|e| e.get("message")?.as_str())
                    .collect::<Vec<_>>()
                    .join("; ");
                Err(self.graphql_error(&message))
            }
            _ => Ok(answer.get("data").cloned().unwrap_or(Value::Null)),
        }
    }

    /// An answer of the GraphQL endpoint that is not what was asked for.
    pub fn graphql_error(&self, message: &str) -> ApiError {
        ApiError::GraphQl {
            url: self.graphql.clone(),
            message: message.to_owned(),
        }
        .redacted(&self.token)
    }

    pub fn get(&self, path: &str, query: &[(&str, &str)]) -> Result<Value, ApiError> {
        let url = format!("{}{path}", self.base);
        self.send(Method::Get, &url, query, None).map(|(v, _)| v)
    }

    /// Every page of a list, following the `Link: <...>; rel="next"` headers.
    pub fn get_all(&self, path: &str, query: &[(&str, &str)]) -> Result<Vec<Value>, ApiError> {
        let mut url = format!("{}{path}", self.base);
        let mut query = query;
        let mut items = Vec::new();
        loop {
            let (page, next) = self.send(Method::Get, &url, query, None)?;
            if let Value::Array(page) = page {
                items.extend(page);
            }
            let Some(next) = next else { return Ok(items) };
            // The token goes only to the API it was meant for.
            if !next.starts_with(&format!("{}/", self.base)) {
                let e = ApiError::ForeignLink {
                    url,
                    next,
                    base: self.base.clone(),
                };
                return Err(e.redacted(&self.token));
            }
            // The next link carries the query already.
            url = next;
            query = &[];
        }
    }

    pub fn post(&self, path: &str, body: &Value) -> Result<Value, ApiError> {
        let url = format!("{}{path}", self.base);
        self.send(Method::Post, &url, &[], Some(body))
            .map(|(v, _)| v)
    }

    pub fn patch(&self, path: &str, body: &Value) -> Result<Value, ApiError> {
        let url = format!("{}{path}", self.base);
        self.send(Method::Patch, &url, &[], Some(body))
            .map(|(v, _)| v)
    }

    fn prepare<B>(
        &self,
        builder: ureq::RequestBuilder<B>,
        query: &[(&str, &str)],
    ) -> ureq::RequestBuilder<B> {
        builder
            .header("Accept", "application/vnd.github+json")
            .header("X-GitHub-Api-Version", API_VERSION)
            .header("Authorization", format!("Bearer {}", self.token))
            .query_pairs(query.iter().copied())
    }

    /// One request (with a body for POST and PATCH); returns the JSON
    /// answer and the next page's URL, if any. Errors never carry the token.
    fn send(
        &self,
        method: Method,
        url: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<(Value, Option<String>), ApiError> {
        self.exchange(method, url, query, body)
            .map_err(|e| e.redacted(&self.token))
    }

    fn exchange(
        &self,
        method: Method,
        url: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<(Value, Option<String>), ApiError> {
        let name = method.name();
        let transport = |err: ureq::Error| ApiError::Transport {
            method: name,
            url: url.to_owned(),
            message: err.to_string(),
        };
        let response = match body {
            None => self.prepare(self.agent.get(url), query).call(),
            Some(body) => {
                let builder = match method {
                    Method::Patch => self.agent.patch(url),
                    _ => self.agent.post(url),
                };
                self.prepare(builder, query)
                    .content_type("application/json")
                    .send(serde_json::to_vec(body).expect("JSON values serialise"))
            }
        };
        let mut response = response.map_err(transport)?;
        let status = response.status().as_u16();
        let next = response
            .headers()
            .get("link")
            .and_then(|v| v.to_str().ok())
            .and_then(next_link);
        let text = response.body_mut().read_to_string().map_err(transport)?;
        if !(200..300).contains(&status) {
            return Err(ApiError::Status {
                method: name,
                url: url.to_owned(),
                status,
                message: error_message(&text),
            });
        }
        let value = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).map_err(|err| ApiError::Json {
                method: name,
                url: url.to_owned(),
                err,
            })?
        };
        Ok((value, next))
    }
}

#[derive(Clone, Copy)]
enum Method {
    Get,
    Post,
    Patch,
}

impl Method {
    fn name(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Patch => "PATCH",
        }
    }
}

/// GitHub's `{"message": ...}`, else the start of whatever came back.
fn error_message(text: &str) -> String {
    serde_json::from_str::<Value>(text)
        .ok()
        .and_then(|v| v.get("message")?.as_str().map(str::to_owned))
        .unwrap_or_else(|| text.chars().take(200).collect())
}

/// The `rel="next"` URL of a `Link` header (RFC 8288, as GitHub writes it).
fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|part| {
        let (url, params) = part.trim().split_once(';')?;
        let is_next = params
            .split(';')
            .any(|p| matches!(p.trim(), "rel=\"next\"" | "rel=next"));
        let url = url.trim().strip_prefix('<')?.strip_suffix('>')?;
        is_next.then(|| url.to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_next_page() {
        let h = r#"<https://api.github.com/repositories/1/issues/2/comments?page=2>; rel="next", <https://api.github.com/repositories/1/issues/2/comments?page=5>; rel="last""#;
        assert_eq!(
            next_link(h).as_deref(),
            Some("https://api.github.com/repositories/1/issues/2/comments?page=2")
        );
        assert_eq!(next_link(r#"<https://x/?page=1>; rel="prev""#), None);
    }

    #[test]
    fn error_messages_come_from_github_json() {
        assert_eq!(
            error_message(r#"{"message":"Resource not accessible by integration"}"#),
            "Resource not accessible by integration"
        );
        assert_eq!(error_message("<html>"), "<html>");
    }
}
