//! Whether a source is still published, asked without downloading it: a
//! HEAD request for a URL, one manifest request for an image, apt's own
//! answer for a package (`apt-get download --print-uris`). For maintainers
//! checking the shipped matrices (`bpfcompat kernels verify --remote`).

use super::error::KernelError;
use super::fetch::{self, Limits};
use super::source::Source;
use super::{apt, oci};
use crate::arch::Arch;

/// What the source's origin says now, in a few words: "HTTP 200, 14 MB",
/// "points at sha256:...", apt's URI. An error when it is not published.
pub fn check_remote(source: &Source, arch: Arch, limits: &Limits) -> Result<String, KernelError> {
    let origin = source.describe();
    match source {
        Source::File { path, .. } => std::fs::metadata(path)
            .map(|m| format!("a local file of {} bytes", m.len()))
            .map_err(|err| KernelError::ReadSource {
                origin,
                path: path.clone(),
                err,
            }),
        Source::Url { url, .. } => head(&origin, url, limits),
        Source::Oci { reference, .. } => oci::remote_digest(&origin, reference, limits)
            .map(|digest| format!("points at sha256:{digest}")),
        Source::Apt {
            package, version, ..
        } => apt::print_uri(&origin, package, version, arch).map(|uri| format!("apt has {uri}")),
    }
}

/// A HEAD request (a server that refuses HEAD is asked for one byte).
fn head(origin: &str, url: &str, limits: &Limits) -> Result<String, KernelError> {
    fetch::check_url(origin, url)?;
    if let Some(path) = url.strip_prefix("file://") {
        return std::fs::metadata(path)
            .map(|m| format!("a local file of {} bytes", m.len()))
            .map_err(|err| KernelError::ReadSource {
                origin: origin.to_owned(),
                path: path.into(),
                err,
            });
    }
    let agent = fetch::agent(limits);
    let failed = |e: ureq::Error| KernelError::Download {
        origin: origin.to_owned(),
        url: url.to_owned(),
        attempts: 1,
        detail: e.to_string(),
    };
    let mut response = agent.head(url).call().map_err(failed)?;
    if matches!(response.status().as_u16(), 403 | 405 | 501) {
        response = agent
            .get(url)
            .header("Range", "bytes=0-0")
            .call()
            .map_err(failed)?;
    }
    let status = response.status().as_u16();
    if !(200..300).contains(&status) {
        return Err(KernelError::HttpStatus {
            origin: origin.to_owned(),
            url: url.to_owned(),
            status,
        });
    }
    let size = response
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .filter(|_| status == 200)
        .map(|n| format!(", {n} bytes"))
        .unwrap_or_default();
    Ok(format!("HTTP {status}{size}"))
}
