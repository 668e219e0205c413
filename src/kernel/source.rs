//! Where a kernel comes from ([`Source`], as the matrix names it), what that
//! turned out to be ([`SourceFormat`]), and the bootable result
//! ([`ResolvedKernel`]).

use std::path::PathBuf;

use serde::Serialize;

use super::fetch::redact_url;
use super::sniff;
use crate::arch::Arch;

/// Where a kernel comes from, as written in the matrix. `kernel_path` names
/// the image inside a package or image that holds several.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A local file: a bzImage (used in place) or a package (extracted into
    /// the cache). The path is already absolute and env-expanded by the matrix
    /// parser. `sha256`, when given, must match the file.
    File {
        path: PathBuf,
        sha256: Option<String>,
        kernel_path: Option<String>,
    },
    /// `http://`, `https://` or `file://`; `sha256` (lowercase hex) of what
    /// the URL serves, from the matrix or the lock file.
    Url {
        url: String,
        sha256: Option<String>,
        kernel_path: Option<String>,
    },
    /// An OCI image: `registry/repository[:tag][@sha256:digest]`. `digest` is
    /// the manifest (or index) digest, from the reference or the lock file.
    Oci {
        reference: String,
        digest: Option<String>,
        kernel_path: Option<String>,
    },
    /// A Debian package fetched by the runner's own `apt-get download
    /// PACKAGE=VERSION`; `sha256` of the `.deb`.
    Apt {
        package: String,
        version: String,
        sha256: Option<String>,
        kernel_path: Option<String>,
    },
}

impl Source {
    /// A short, stable description for reports and the lock file:
    /// `file:/abs/vmlinuz`, `url:https://host/linux.deb` (credentials in a
    /// URL are redacted), `oci:ghcr.io/cilium/ci-kernels:6.1`,
    /// `apt:linux-image-6.1.0-47-cloud-amd64=6.1.170-3`, each followed by
    /// `#<kernel_path>` when one is given. Never includes a pin from the lock.
    pub fn describe(&self) -> String {
        let base = match self {
            Source::File { path, .. } => format!("file:{}", path.display()),
            Source::Url { url, .. } => format!("url:{}", redact_url(url)),
            Source::Oci { reference, .. } => format!("oci:{reference}"),
            Source::Apt {
                package, version, ..
            } => format!("apt:{package}={version}"),
        };
        match self.kernel_path() {
            Some(path) => format!("{base}#{path}"),
            None => base,
        }
    }

    pub fn kernel_path(&self) -> Option<&str> {
        match self {
            Source::File { kernel_path, .. }
            | Source::Url { kernel_path, .. }
            | Source::Oci { kernel_path, .. }
            | Source::Apt { kernel_path, .. } => kernel_path.as_deref(),
        }
    }

    /// The digest that pins this source, if any: a local file pins itself.
    pub fn pin(&self) -> Option<&str> {
        match self {
            Source::File { .. } => None,
            Source::Url { sha256, .. } | Source::Apt { sha256, .. } => sha256.as_deref(),
            Source::Oci { digest, .. } => digest.as_deref(),
        }
    }

    /// Whether the lock file has to pin this source: a URL, image tag or apt
    /// package whose matrix entry gives no digest.
    pub fn needs_lock(&self) -> bool {
        !matches!(self, Source::File { .. }) && self.pin().is_none()
    }

    /// The same source pinned to `digest` (lowercase sha256 hex).
    pub fn pinned(&self, digest: &str) -> Source {
        let mut pinned = self.clone();
        match &mut pinned {
            Source::File { .. } => {}
            Source::Url { sha256, .. } | Source::Apt { sha256, .. } => {
                *sha256 = Some(digest.to_owned())
            }
            Source::Oci { digest: d, .. } => *d = Some(digest.to_owned()),
        }
        pinned
    }
}

/// What a source pointed at, recognised by content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceFormat {
    /// An x86 bzImage, bootable as it is.
    BzImage,
    /// An arm64 `Image` (plain or gzip-compressed), bootable as it is.
    Image,
    /// A Debian binary package containing a bzImage.
    Deb,
    /// An RPM package containing a bzImage.
    Rpm,
    /// An OCI image whose layers contain a bzImage.
    Oci,
}

impl SourceFormat {
    /// What a file is, from its first [`sniff::HEAD_LEN`] bytes. An ar archive
    /// counts as a package here; whether it really is a Debian one is checked on
    /// extraction.
    pub(crate) fn recognise(head: &[u8]) -> Option<SourceFormat> {
        match sniff::kernel_arch(head) {
            Some(Arch::X86_64) => return Some(SourceFormat::BzImage),
            Some(Arch::Arm64) => return Some(SourceFormat::Image),
            None => {}
        }
        if sniff::is_ar(head) {
            Some(SourceFormat::Deb)
        } else if sniff::is_rpm(head) {
            Some(SourceFormat::Rpm)
        } else {
            None
        }
    }
}

/// A kernel ready to boot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedKernel {
    /// A kernel image (bzImage or arm64 Image) on disk, verified just now, ready for `qemu -kernel`.
    pub image: PathBuf,
    /// sha256 (lowercase hex) of that bzImage.
    pub sha256: String,
    /// sha256 of what the source pointed at: the package, the image manifest,
    /// or the bzImage itself. This is what the lock file records.
    pub source_sha256: String,
    pub format: SourceFormat,
    /// The id of the module tree the package or image shipped beside the
    /// kernel (see `modtree.rs`); `None` for a bare bzImage or a package
    /// without modules.
    pub modules: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::sniff::{describe, read_head};
    use bpfcompat_testkit::kernels::{fake_bzimage, kernels_dir, K510, K61, K612, K72, TINY};
    use std::fs::File;

    #[test]
    fn real_kernels_are_bzimages() {
        let dir = kernels_dir();
        for name in [K510.file, K61.file, K612.file, TINY.file] {
            let head = read_head(&mut File::open(dir.join(name)).unwrap()).unwrap();
            assert_eq!(
                SourceFormat::recognise(&head),
                Some(SourceFormat::BzImage),
                "{name}"
            );
        }
    }

    #[test]
    fn real_deb_is_a_package() {
        let path = kernels_dir().join(K72.file);
        let head = read_head(&mut File::open(path).unwrap()).unwrap();
        assert_eq!(SourceFormat::recognise(&head), Some(SourceFormat::Deb));
    }

    #[test]
    fn other_content_is_not_recognised_and_described() {
        assert_eq!(SourceFormat::recognise(b""), None);
        assert!(describe(b"").contains("empty file"));
        assert_eq!(SourceFormat::recognise(b"\x7fELF\x02\x01\x01"), None);
        assert!(describe(b"\x7fELF\x02\x01\x01").contains("vmlinux"));
        assert_eq!(SourceFormat::recognise(b"<!DOCTYPE html>"), None);
        assert!(describe(b"<!DOCTYPE html>").contains("HTML"));
        // "HdrS" one byte off is not a bzImage.
        let mut almost = fake_bzimage(b"x");
        almost.copy_within(0x202..0x206, 0x203);
        assert_eq!(SourceFormat::recognise(&almost), None);
        // Too short to hold the header.
        assert_eq!(SourceFormat::recognise(&fake_bzimage(b"")[..0x204]), None);
    }
}
