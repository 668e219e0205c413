//! Helpers for bpfcompat's tests, kept out of the library: report fixtures,
//! checks that a rendering is inert, one HTTP test server, and on it a fake
//! GitHub API that enforces GitHub's limits.

pub mod github;
pub mod http;
pub mod inert;
pub mod reports;
