//! Kernels from the runner's own apt: `apt-get download PACKAGE=VERSION`.
//!
//! The matrix names no host: whatever archive this machine's apt sources
//! list is used (an Ubuntu runner gets Ubuntu's kernels). The package lands in
//! a fresh directory under the cache's `tmp/` and is then handled like a
//! downloaded `.deb`. `BPFCOMPAT_APT_GET` names another program to run
//! instead of `apt-get` (a wrapper, or a stand-in in tests).

use std::path::Path;
use std::process::Command;

use tempfile::NamedTempFile;

use super::cache::{self, KernelCache};
use super::error::KernelError;
use super::hash;
use crate::arch::Arch;

/// The environment variable naming the apt-get to run.
pub const APT_GET_ENV: &str = "BPFCOMPAT_APT_GET";

/// Whether `name` is a Debian package name (Debian policy 5.6.1), so it can
/// never be taken for an option by apt-get.
pub fn valid_package(name: &str) -> bool {
    name.len() >= 2
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+-.".contains(&b))
}

/// Whether `version` is a Debian version string (epoch, upstream, revision).
pub fn valid_version(version: &str) -> bool {
    !version.is_empty()
        && version.starts_with(|c: char| c.is_ascii_digit())
        && version
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".+-~:".contains(&b))
}

/// The name apt gives the downloaded file (`NAME_VERSION_amd64.deb`, the
/// epoch's colon written `%3a`), to look for in a mirror.
pub(crate) fn file_name(package: &str, version: &str, arch: Arch) -> String {
    format!(
        "{package}_{}_{}.deb",
        version.replace(':', "%3a"),
        arch.debian()
    )
}

/// One `apt-get download` of `PACKAGE=VERSION` for a source: its checked
/// request, how it runs, and its errors, which name the source.
struct AptGet<'a> {
    origin: &'a str,
    package: &'a str,
    version: &'a str,
    arch: Arch,
}

impl<'a> AptGet<'a> {
    fn new(
        origin: &'a str,
        package: &'a str,
        version: &'a str,
        arch: Arch,
    ) -> Result<Self, KernelError> {
        let apt = AptGet {
            origin,
            package,
            version,
            arch,
        };
        if !valid_package(package) || !valid_version(version) {
            return Err(apt.err(format!(
                "{package:?}={version:?} is not a Debian package name and version"
            )));
        }
        Ok(apt)
    }

    fn err(&self, detail: String) -> KernelError {
        KernelError::Apt {
            origin: self.origin.to_owned(),
            detail,
        }
    }

    /// `PACKAGE=VERSION`, or `PACKAGE:ARCH=VERSION` for another architecture
    /// than the host's (apt must know it: `dpkg --add-architecture`).
    fn spec(&self) -> String {
        if self.arch == Arch::host() {
            format!("{}={}", self.package, self.version)
        } else {
            format!("{}:{}={}", self.package, self.arch.debian(), self.version)
        }
    }

    /// `apt-get download [extra] PACKAGE=VERSION` in `dir`.
    fn run(&self, extra: &[&str], dir: Option<&Path>) -> Result<std::process::Output, KernelError> {
        let program = std::env::var_os(APT_GET_ENV).unwrap_or_else(|| "apt-get".into());
        let mut cmd = Command::new(&program);
        cmd.arg("download").args(extra).arg(self.spec());
        if let Some(dir) = dir {
            cmd.current_dir(dir);
        }
        cmd.output().map_err(|e| {
            self.err(format!(
                "cannot run {}: {e} (this source needs a Debian or Ubuntu runner with apt)",
                Path::new(&program).display()
            ))
        })
    }
}

/// Where apt would fetch `PACKAGE=VERSION` from, without fetching it
/// (`apt-get download --print-uris`): for `bpfcompat kernels verify --remote`.
pub(crate) fn print_uri(
    origin: &str,
    package: &str,
    version: &str,
    arch: Arch,
) -> Result<String, KernelError> {
    let apt = AptGet::new(origin, package, version, arch)?;
    let output = apt.run(&["--print-uris"], None)?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    match stdout.lines().find(|l| l.starts_with('\'')) {
        Some(line) if output.status.success() => Ok(line.trim().to_owned()),
        _ => Err(apt.err(format!(
            "`apt-get download --print-uris {}` found no such package ({}): {}",
            apt.spec(),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ))),
    }
}

/// Run `apt-get download PACKAGE=VERSION` and move the package into `out`'s
/// place; returns its sha256.
pub(crate) fn download(
    cache: &KernelCache,
    origin: &str,
    package: &str,
    version: &str,
    arch: Arch,
    out: &mut NamedTempFile,
) -> Result<String, KernelError> {
    let apt = AptGet::new(origin, package, version, arch)?;
    let dir = tempfile::Builder::new()
        .prefix(&cache::temp_prefix("apt"))
        .tempdir_in(cache.tmp_dir())
        .map_err(|err| KernelError::cache("create a temp directory in", cache.tmp_dir(), err))?;
    let output = apt.run(&[], Some(dir.path()))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(3).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        return Err(apt.err(format!(
            "`apt-get download {}` failed ({}): {}{}",
            apt.spec(),
            output.status,
            tail.join(" / "),
            if arch == Arch::host() {
                String::new()
            } else {
                format!(
                    "; for {arch} packages apt needs `dpkg --add-architecture {}` and `apt-get update`",
                    arch.debian()
                )
            }
        )));
    }
    let debs: Vec<_> = std::fs::read_dir(dir.path())
        .map_err(|err| KernelError::cache("read", dir.path().to_owned(), err))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "deb"))
        .collect();
    let [deb] = debs.as_slice() else {
        return Err(apt.err(format!(
            "`apt-get download {}` left {} .deb files, expected one",
            apt.spec(),
            debs.len()
        )));
    };
    // Same file system: a rename, not a copy. `out` keeps its path (and
    // deletes the package if it is never stored).
    std::fs::rename(deb, out.path()).map_err(|err| {
        KernelError::cache("move the downloaded package to", out.path().to_owned(), err)
    })?;
    let file = std::fs::File::open(out.path())
        .map_err(|err| KernelError::cache("read", out.path().to_owned(), err))?;
    hash::hash_reader(file).map_err(|err| KernelError::cache("read", out.path().to_owned(), err))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_versions_are_checked() {
        assert!(valid_package("linux-image-6.1.0-47-cloud-amd64"));
        assert!(!valid_package("-oDir=/tmp"));
        assert!(!valid_package("Linux"));
        assert!(valid_version("6.1.170-3"));
        assert!(valid_version("1:2.0~rc1+b2"));
        assert!(!valid_version("-1"));
        assert!(!valid_version("1 2"));
        assert_eq!(file_name("a", "1:2-3", Arch::X86_64), "a_1%3a2-3_amd64.deb");
        assert_eq!(file_name("a", "1", Arch::Arm64), "a_1_arm64.deb");
    }
}
