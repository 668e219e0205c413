//! Helpers for bpfcompat's tests, kept out of the library: report fixtures,
//! checks that a rendering is inert, and a fake GitHub API served on
//! 127.0.0.1 that enforces GitHub's limits.

pub mod github;
pub mod inert;
pub mod reports;
