//! Helpers for bpfcompat's tests, kept out of the library: the test kernels
//! (and the agent for the arm64 ones),
//! a scratch kernel cache and the sources resolved into it, packages and
//! images built on the spot, one HTTP test server (and on it an
//! OCI registry and a fake GitHub API that enforces GitHub's limits), report
//! fixtures, checks that a rendering is inert, and a tmpfs that fills up.
//!
//! bpfcompat's unit tests see another build of its types than this crate
//! does: what they use from here deals in bytes, strings and std types only.

use sha2::{Digest, Sha256};

pub mod agent;
pub mod cache;
pub mod github;
pub mod http;
pub mod inert;
pub mod kernels;
pub mod oci;
pub mod packages;
pub mod reports;
pub mod tmpfs;

/// The lowercase hex sha256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}
