//! Taking the kernel image out of a Debian binary package, streaming.
//!
//! A `.deb` is an ar archive: `debian-binary`, `control.tar[.xz|.zst|.gz]`,
//! `data.tar[.xz|.zst|.gz]` (deb(5)). The data tarball is read once, front to
//! back, through a streaming decompressor: the image and the modules are
//! written to temp files as they go by, nothing else is kept. Every member and every tar entry is
//! checked for path traversal, whether or not it is the one we want.

use std::io::Read;

use super::compress::Compression;
use super::contents::{Contents, Taken};
use super::error::KernelError;
use super::tarball::scan_tar;

/// Read a whole package from `reader` and take out of it what `contents`
/// wants. `origin` names the source in errors.
pub(crate) fn extract(
    reader: impl Read,
    origin: &str,
    mut contents: Contents<'_>,
) -> Result<Taken, KernelError> {
    let mut archive = ar::Archive::new(reader);
    let mut members: Vec<String> = Vec::new();
    let mut data_member: Option<String> = None;

    while let Some(member) = archive.next_entry() {
        let member = member.map_err(|err| KernelError::PackageRead {
            origin: origin.to_owned(),
            entry: match members.last() {
                Some(last) => format!("the ar member after {last}"),
                None => "the first ar member".to_owned(),
            },
            err,
        })?;
        let name = member_name(member.header(), origin, members.is_empty())?;
        members.push(name.clone());

        if name == "debian-binary" {
            check_format_version(member, origin)?;
        } else if let Some(compression) = tar_compression(&name, "control.tar") {
            scan_tar(member, compression, origin, &name, None)?;
        } else if let Some(compression) = tar_compression(&name, "data.tar") {
            if let Some(first) = &data_member {
                return Err(format_err(
                    origin,
                    format!("two data members, {first} and {name}"),
                ));
            }
            data_member = Some(name.clone());
            scan_tar(member, compression, origin, &name, Some(&mut contents))?;
        } else if name.starts_with("data.tar") || name.starts_with("control.tar") {
            return Err(format_err(origin, format!(
                "member {name} is compressed in a way not supported here (supported: none, .xz, .zst, .gz)"
            )));
        }
        // Other members (e.g. signatures such as _gpgbuilder) are not needed.
    }

    let Some(data_member) = data_member else {
        return Err(format_err(
            origin,
            format!(
                "no data.tar, data.tar.xz, data.tar.zst or data.tar.gz member (members: {})",
                members.join(", ")
            ),
        ));
    };
    contents.finish(&data_member)
}

fn format_err(origin: &str, detail: String) -> KernelError {
    KernelError::DebFormat {
        origin: origin.to_owned(),
        detail,
    }
}

/// An ar member's name, refused when it could be taken for a path, or when
/// the `first` member is not `debian-binary` (then the archive is no Debian
/// package).
fn member_name(header: &ar::Header, origin: &str, first: bool) -> Result<String, KernelError> {
    let name = String::from_utf8_lossy(header.identifier())
        .trim_end_matches('/')
        .to_owned();
    if name.is_empty() || name.contains('/') || name == ".." {
        return Err(KernelError::UnsafeEntry {
            origin: origin.to_owned(),
            entry: name,
        });
    }
    if first && name != "debian-binary" {
        return Err(KernelError::NotAKernel {
            origin: origin.to_owned(),
            found: format!(
                "an ar archive whose first member is {name:?}, not \"debian-binary\" (a static library, not a Debian package)"
            ),
        });
    }
    Ok(name)
}

/// The `debian-binary` member must name the 2.x package format.
fn check_format_version(member: impl Read, origin: &str) -> Result<(), KernelError> {
    let mut version = String::new();
    member
        .take(64)
        .read_to_string(&mut version)
        .map_err(|err| KernelError::PackageRead {
            origin: origin.to_owned(),
            entry: "debian-binary".to_owned(),
            err,
        })?;
    if !version.starts_with("2.") {
        return Err(format_err(
            origin,
            format!(
                "debian-binary says {:?}; only the 2.x package format is supported",
                version.trim()
            ),
        ));
    }
    Ok(())
}

fn tar_compression(member: &str, stem: &str) -> Option<Compression> {
    Compression::from_suffix(member.strip_prefix(stem)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::cache::KernelCache;
    use crate::kernel::pick::{Extracted, Layout};
    use bpfcompat_testkit::kernels::{fake_bzimage, kernels_dir, K72};
    use bpfcompat_testkit::packages::{build_deb, TarEntry};
    use bpfcompat_testkit::sha256_hex;
    use std::fs::File;
    use std::io::BufReader;
    use std::time::Instant;

    /// The kernel image of `reader`'s package, read as `origin`.
    pub(crate) fn extract_kernel(
        reader: impl Read,
        origin: &str,
    ) -> Result<Extracted, KernelError> {
        let dir = tempfile::tempdir().unwrap();
        let cache = KernelCache::new(dir.path().to_owned());
        cache.prepare().unwrap();
        // Outside the cache, which goes when this returns.
        let out = tempfile::NamedTempFile::new().unwrap();
        let contents = Contents::kernel(&cache, origin, Layout::Deb, None, out)?;
        Ok(super::extract(reader, origin, contents)?
            .kernel
            .expect("a kernel was wanted"))
    }

    fn extract(deb: &[u8]) -> Result<Extracted, KernelError> {
        extract_kernel(deb, "test.deb")
    }

    #[test]
    fn the_real_72_deb_gives_its_vmlinuz() {
        let path = kernels_dir().join(K72.file);
        let started = Instant::now();
        let extracted =
            extract_kernel(BufReader::new(File::open(&path).unwrap()), "real.deb").unwrap();
        eprintln!(
            "extracted {} from the 7.2 deb in {:?}",
            extracted.entry,
            started.elapsed()
        );
        assert_eq!(
            extracted.entry,
            "./usr/lib/modules/7.2.13+deb14-cloud-amd64/vmlinuz"
        );
        let on_disk = std::fs::read(extracted.file.path()).unwrap();
        assert_eq!(on_disk.len(), 14_026_688);
        assert_eq!(sha256_hex(&on_disk), extracted.sha256);
        assert!(crate::kernel::sniff::is_bzimage(&on_disk));
    }

    #[test]
    fn every_supported_compression_works() {
        let kernel = fake_bzimage(b"every compression");
        for compression in ["", ".gz", ".zst"] {
            let deb = build_deb(
                compression,
                &[
                    TarEntry::dir("./"),
                    TarEntry::file("./boot/vmlinuz-1.0", &kernel),
                    TarEntry::file("./boot/config-1.0", b"CONFIG_BPF=y\n"),
                ],
            );
            let extracted = extract(&deb).unwrap_or_else(|e| panic!("data.tar{compression}: {e}"));
            assert_eq!(extracted.entry, "./boot/vmlinuz-1.0");
            assert_eq!(extracted.sha256, sha256_hex(&kernel));
            assert_eq!(std::fs::read(extracted.file.path()).unwrap(), kernel);
        }
    }

    #[test]
    fn path_traversal_is_rejected_naming_the_entry() {
        let kernel = fake_bzimage(b"k");
        for evil in ["../evil", "./usr/../../etc/cron.d/x", "/etc/passwd"] {
            let deb = build_deb(
                ".gz",
                &[
                    TarEntry::file("./boot/vmlinuz-1.0", &kernel),
                    TarEntry::file(evil, b"boom"),
                ],
            );
            let err = extract(&deb).err().expect("must be rejected");
            assert!(matches!(err, KernelError::UnsafeEntry { .. }), "{err}");
            let msg = err.to_string();
            assert!(msg.contains(evil) && msg.contains("test.deb"), "{msg}");
        }
        let deb = build_deb(
            "",
            &[
                TarEntry::file("./boot/vmlinuz-1.0", &kernel),
                TarEntry::hard_link("./boot/vmlinuz", "../../boot/vmlinuz-1.0"),
            ],
        );
        let msg = extract(&deb).err().expect("must be rejected").to_string();
        assert!(msg.contains("hard link to ../../boot/vmlinuz-1.0"), "{msg}");
    }

    #[test]
    fn two_candidates_are_listed() {
        let deb = build_deb(
            ".gz",
            &[
                TarEntry::file("./boot/vmlinuz-1.0", &fake_bzimage(b"one")),
                TarEntry::file("usr/lib/modules/2.0/vmlinuz", &fake_bzimage(b"two")),
            ],
        );
        let err = extract(&deb).err().expect("must be rejected");
        let msg = err.to_string();
        assert!(matches!(err, KernelError::ManyKernels { .. }), "{msg}");
        assert!(
            msg.contains("./boot/vmlinuz-1.0, usr/lib/modules/2.0/vmlinuz"),
            "{msg}"
        );
    }

    #[test]
    fn no_candidate_says_what_was_looked_for() {
        let deb = build_deb(
            ".gz",
            &[
                TarEntry::file("./usr/share/doc/linux/changelog", b"text"),
                TarEntry::symlink("./boot/vmlinuz-1.0", "vmlinuz-real"),
            ],
        );
        let msg = extract(&deb).err().expect("must be rejected").to_string();
        assert!(msg.contains(Layout::Deb.looked_for()), "{msg}");
        assert!(msg.contains("data.tar.gz"), "{msg}");
        assert!(
            msg.contains("ignored (not regular files): ./boot/vmlinuz-1.0"),
            "{msg}"
        );
    }

    #[test]
    fn an_image_that_is_not_a_bzimage_is_rejected() {
        let deb = build_deb(
            ".gz",
            &[TarEntry::file(
                "./boot/vmlinuz-1.0",
                b"\x7fELF not a bzImage",
            )],
        );
        let msg = extract(&deb).err().expect("must be rejected").to_string();
        assert!(
            msg.contains("./boot/vmlinuz-1.0")
                && msg.contains("neither an x86 bzImage nor an arm64 Image"),
            "{msg}"
        );
    }

    #[test]
    fn truncated_and_foreign_archives_are_rejected() {
        let deb = build_deb(
            ".gz",
            &[TarEntry::file("./boot/vmlinuz-1.0", &fake_bzimage(b"t"))],
        );
        let cut = &deb[..deb.len() - 100];
        let err = extract(cut).err().expect("must be rejected");
        assert!(
            matches!(
                err,
                KernelError::PackageRead { .. } | KernelError::DebFormat { .. }
            ),
            "{err}"
        );

        let mut lib = ar::Builder::new(Vec::new());
        lib.append(&ar::Header::new(b"foo.o".to_vec(), 3), &b"abc"[..])
            .unwrap();
        let msg = extract(&lib.into_inner().unwrap())
            .err()
            .unwrap()
            .to_string();
        assert!(msg.contains("not a Debian package"), "{msg}");
    }
}
