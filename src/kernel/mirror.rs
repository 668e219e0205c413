//! A kernel mirror: a directory or base URL tried before a source's origin.
//!
//! Files are looked up by digest (`<mirror>/sha256/<hex>`, what
//! `bpfcompat kernels import` and a copy of a cache's `blobs/` provide) and by
//! file name (`<mirror>/<name>`, a plain directory of downloaded packages).
//! What a mirror gives is verified like any download; a miss or a bad copy
//! falls through to the origin.

use std::path::PathBuf;

use tempfile::NamedTempFile;

use super::error::KernelError;
use super::fetch::{self, Limits, ProgressFn};

/// The environment variable that names the mirror.
pub const MIRROR_ENV: &str = "BPFCOMPAT_KERNEL_MIRROR";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mirror {
    Dir(PathBuf),
    /// `http://`, `https://` or `file://`, without a trailing slash.
    Url(String),
}

impl Mirror {
    /// `$BPFCOMPAT_KERNEL_MIRROR`, if set and not empty.
    pub fn from_env() -> Option<Mirror> {
        let value = std::env::var(MIRROR_ENV).ok().filter(|v| !v.is_empty())?;
        Some(Mirror::parse(&value))
    }

    pub fn parse(value: &str) -> Mirror {
        if value.contains("://") {
            Mirror::Url(value.trim_end_matches('/').to_owned())
        } else {
            let dir = PathBuf::from(value);
            Mirror::Dir(std::path::absolute(&dir).unwrap_or(dir))
        }
    }

    /// Whether using it needs no network.
    pub(crate) fn is_local(&self) -> bool {
        match self {
            Mirror::Dir(_) => true,
            Mirror::Url(url) => url.starts_with("file://"),
        }
    }

    fn url(&self, relative: &str) -> String {
        match self {
            // fetch decodes %XX in file:// URLs.
            Mirror::Dir(dir) => format!(
                "file://{}/{relative}",
                dir.display().to_string().replace('%', "%25")
            ),
            Mirror::Url(base) => format!("{base}/{relative}"),
        }
    }

    /// Fetch into `out` what the mirror has for a file of digest `expected`
    /// (when known) or named `name`; `Ok(Some(digest))` on a hit. A copy that
    /// does not match `expected` is a miss, so the origin is tried next.
    pub(crate) fn fetch(
        &self,
        origin: &str,
        expected: Option<&str>,
        name: Option<&str>,
        out: &mut NamedTempFile,
        limits: &Limits,
        progress: Option<&ProgressFn>,
    ) -> Result<Option<String>, KernelError> {
        let by_digest = expected.map(|d| format!("sha256/{d}"));
        let by_name = name
            .filter(|n| !n.is_empty() && !n.contains(['/', '?', '#']) && *n != "..")
            .map(str::to_owned);
        // One attempt each: a mirror that fails is skipped, not waited for.
        let limits = Limits {
            attempts: 1,
            ..limits.clone()
        };
        for relative in by_digest.into_iter().chain(by_name) {
            let url = self.url(&relative);
            match fetch::download(origin, &url, out, &limits, progress) {
                Ok(digest) if expected.is_none_or(|e| e == digest) => return Ok(Some(digest)),
                Ok(digest) => eprintln!(
                    "bpfcompat: mirror copy {} of {} has sha256 {digest}, not {}; ignoring it",
                    crate::escape::plain_line(&url),
                    crate::escape::plain_line(origin),
                    expected.unwrap_or_default()
                ),
                Err(KernelError::HttpStatus { status: 404, .. }) => {}
                Err(KernelError::ReadSource { err, .. })
                    if err.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) if e.is_cache() => return Err(e),
                Err(e) => eprintln!(
                    "bpfcompat: mirror: {}; trying the next place",
                    crate::escape::plain(&e.to_string())
                ),
            }
        }
        Ok(None)
    }
}
