//! Resolving a [`Source`] to a verified bzImage in the cache (and the
//! module tree that came with it), or to a module tree alone: a local file
//! in place or extracted, one file fetched from a URL or by apt (pinned or
//! not, from a mirror or the origin), or an OCI image.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

use super::cache::{self, KernelCache};
use super::error::KernelError;
use super::extract::{Got, Want};
use super::modtree::ModuleTree;
use super::options::Options;
use super::source::{ResolvedKernel, Source, SourceFormat};
use super::{apt, extract, fetch, hash, oci, sniff};
use crate::arch::Arch;

/// Resolve a source to a verified bzImage, downloading and extracting into the
/// cache as needed. Blocking.
pub fn resolve(
    cache: &KernelCache,
    source: &Source,
    opts: &Options,
) -> Result<ResolvedKernel, KernelError> {
    let kernel = match resolve_for(cache, source, opts, Want::Kernel(source.kernel_path()))? {
        Got::Kernel(kernel) => kernel,
        Got::Modules(_) => unreachable!("a kernel was wanted"),
    };
    let found = match kernel.format {
        SourceFormat::BzImage => Some(Arch::X86_64),
        SourceFormat::Image => Some(Arch::Arm64),
        _ => image_arch(&kernel.image)
            .map_err(|err| KernelError::cache("read", kernel.image.clone(), err))?,
    };
    match found {
        Some(found) if found != opts.arch => Err(KernelError::WrongArch {
            origin: source.describe(),
            declared: opts.arch,
            found,
        }),
        _ => Ok(kernel),
    }
}

/// The architecture of a kernel image on disk, from its head.
fn image_arch(image: &Path) -> io::Result<Option<Arch>> {
    Ok(sniff::kernel_arch(&sniff::read_head(&mut File::open(
        image,
    )?)?))
}

/// Resolve a source of kernel modules (a matrix entry's `modules:`) to its
/// module tree, downloading and extracting into the cache as needed.
/// Blocking.
pub fn resolve_modules(
    cache: &KernelCache,
    source: &Source,
    opts: &Options,
) -> Result<ModuleTree, KernelError> {
    match resolve_for(cache, source, opts, Want::Modules)? {
        Got::Modules(id) => open_modules(cache, &id)?.ok_or_else(|| KernelError::NoModules {
            origin: source.describe(),
        }),
        Got::Kernel(_) => unreachable!("modules were wanted"),
    }
}

/// The module tree `id` from the cache, its index verified; `None` when it
/// is gone or was corrupt (then removed: resolving its source again
/// re-extracts it).
pub fn open_modules(cache: &KernelCache, id: &str) -> Result<Option<ModuleTree>, KernelError> {
    let _lock = cache.lock(id)?;
    ModuleTree::open(cache, id)
}

fn resolve_for(
    cache: &KernelCache,
    source: &Source,
    opts: &Options,
    want: Want<'_>,
) -> Result<Got, KernelError> {
    let origin = source.describe();
    let pin = source
        .pin()
        .map(|s| normalize_sha256(&origin, s))
        .transpose()?;
    match source {
        Source::File { path, sha256, .. } => {
            let expected = sha256
                .as_deref()
                .map(|s| normalize_sha256(&origin, s))
                .transpose()?;
            resolve_file(cache, &origin, path, expected.as_deref(), want)
        }
        Source::Url { url, .. } => {
            fetch::check_url(&origin, url)?;
            let name = url.rsplit('/').next().unwrap_or_default();
            let single = Single {
                cache,
                opts,
                origin: &origin,
                want,
                mirror_name: Some(name),
            };
            single.resolve(pin.as_deref(), &mut |out| {
                fetch::download(&origin, url, out, &opts.limits, opts.progress.as_ref())
            })
        }
        Source::Apt {
            package, version, ..
        } => {
            let name = apt::file_name(package, version, opts.arch);
            let single = Single {
                cache,
                opts,
                origin: &origin,
                want,
                mirror_name: Some(&name),
            };
            single.resolve(pin.as_deref(), &mut |out| {
                apt::download(cache, &origin, package, version, opts.arch, out)
            })
        }
        Source::Oci { reference, .. } => {
            oci::resolve(cache, opts, &origin, reference, pin.as_deref(), want)
        }
    }
}

fn resolve_file(
    cache: &KernelCache,
    origin: &str,
    path: &Path,
    expected: Option<&str>,
    want: Want<'_>,
) -> Result<Got, KernelError> {
    let read_err = |err| KernelError::ReadSource {
        origin: origin.to_owned(),
        path: path.to_owned(),
        err,
    };
    // One pass: the digest of the whole file and its first bytes.
    let (actual, head) = hash_and_head(File::open(path).map_err(read_err)?).map_err(read_err)?;
    if let Some(expected) = expected {
        if expected != actual {
            return Err(KernelError::Sha256Mismatch {
                origin: origin.to_owned(),
                expected: expected.to_owned(),
                actual,
            });
        }
    }
    match SourceFormat::recognise(&head) {
        Some(format @ (SourceFormat::BzImage | SourceFormat::Image)) => {
            bare_image(origin, path.to_owned(), &actual, format, want)
        }
        Some(format) => {
            cache.prepare()?;
            let _lock = cache.lock(&actual)?;
            if let Some(got) = extract::cached_extraction(cache, &actual, want)? {
                return Ok(got);
            }
            extract::extract_locked(cache, origin, &actual, want, format, || {
                File::open(path).map_err(read_err)
            })
        }
        None => Err(KernelError::NotAKernel {
            origin: origin.to_owned(),
            found: sniff::describe(&head),
        }),
    }
}

/// The sha256 of everything `r` yields, and its first [`sniff::HEAD_LEN`] bytes.
fn hash_and_head(r: impl Read) -> io::Result<(String, Vec<u8>)> {
    let mut r = hash::HashingReader::new(r);
    let head = sniff::read_head(&mut r)?;
    Ok((r.finish()?, head))
}

/// A bare kernel image: the kernel, with no module tree; no use as modules.
fn bare_image(
    origin: &str,
    image: PathBuf,
    digest: &str,
    format: SourceFormat,
    want: Want<'_>,
) -> Result<Got, KernelError> {
    match want {
        Want::Kernel(Some(path)) => Err(KernelError::KernelPathOnImage {
            origin: origin.to_owned(),
            kernel_path: path.to_owned(),
        }),
        Want::Kernel(None) => Ok(Got::Kernel(ResolvedKernel {
            image,
            sha256: digest.to_owned(),
            source_sha256: digest.to_owned(),
            format,
            modules: None,
        })),
        Want::Modules => Err(KernelError::NoModules {
            origin: origin.to_owned(),
        }),
    }
}

/// A source that is one file fetched from somewhere (a URL, apt): a bzImage
/// or a package, kept in the cache under its digest.
struct Single<'a> {
    cache: &'a KernelCache,
    opts: &'a Options,
    origin: &'a str,
    want: Want<'a>,
    /// The file's name, to look for in the mirror.
    mirror_name: Option<&'a str>,
}

/// Fetches the source from its origin into a temp file; returns the digest.
type Obtain<'a> = dyn FnMut(&mut NamedTempFile) -> Result<String, KernelError> + 'a;

impl Single<'_> {
    fn resolve(&self, pin: Option<&str>, obtain: &mut Obtain<'_>) -> Result<Got, KernelError> {
        self.cache.prepare()?;
        match pin {
            Some(digest) => self.resolve_pinned(digest, obtain),
            None => {
                // Held while the digest is unknown: a concurrent run resolving
                // the same source waits, then finds what this one remembered.
                let key = cache::name_key(self.origin);
                let _lock = self.cache.lock(&key)?;
                if !self.opts.fresh {
                    if let Some(digest) = self.cache.read_name(&key) {
                        match self.resolve_pinned(&digest, &mut |_| Err(self.not_cached())) {
                            Err(KernelError::NotCached { .. }) => {}
                            done => return done,
                        }
                    }
                }
                if self.opts.offline {
                    return Err(self.not_cached());
                }
                let mut tmp = self.cache.temp_file()?;
                let digest = match self.try_mirror(None, &mut tmp)? {
                    Some(digest) => digest,
                    None => obtain(&mut tmp)?,
                };
                let kernel = self.resolve_fetched(&digest, tmp)?;
                self.cache.write_name(&key, &digest)?;
                Ok(kernel)
            }
        }
    }

    fn not_cached(&self) -> KernelError {
        KernelError::NotCached {
            origin: self.origin.to_owned(),
        }
    }

    fn resolve_pinned(&self, expected: &str, obtain: &mut Obtain<'_>) -> Result<Got, KernelError> {
        // Held until the kernel is resolved: another thread or process
        // resolving the same digest waits here, then finds it in the cache.
        let _lock = self.cache.lock(expected)?;

        // A package extracted before: only what it gave is needed, not the package.
        if let Some(got) = extract::cached_extraction(self.cache, expected, self.want)? {
            return Ok(got);
        }
        let blob = match self.cache.verified_blob(expected)? {
            Some(blob) => blob,
            None => {
                let mut tmp = self.cache.temp_file()?;
                let actual = match self.try_mirror(Some(expected), &mut tmp)? {
                    Some(actual) => actual,
                    None if self.opts.offline => return Err(self.not_cached()),
                    None => obtain(&mut tmp)?,
                };
                if actual != expected {
                    // `tmp` is removed when dropped.
                    return Err(KernelError::Sha256Mismatch {
                        origin: self.origin.to_owned(),
                        expected: expected.to_owned(),
                        actual,
                    });
                }
                self.cache.store_blob(tmp, expected)?
            }
        };
        self.kernel_from_blob(blob, expected)
    }

    /// The kernel from `tmp`, just fetched and hashed to `digest`, which is
    /// kept as the digest's blob (replacing one stored before: the same
    /// bytes) and not hashed again: what was extracted from that content
    /// before (perhaps for another source), or what the blob gives.
    fn resolve_fetched(&self, digest: &str, tmp: NamedTempFile) -> Result<Got, KernelError> {
        let _lock = self.cache.lock(digest)?;
        let blob = self.cache.store_blob(tmp, digest)?;
        if let Some(got) = extract::cached_extraction(self.cache, digest, self.want)? {
            return Ok(got);
        }
        self.kernel_from_blob(blob, digest)
    }

    /// The mirror's copy, if it has one (that matches `expected`).
    fn try_mirror(
        &self,
        expected: Option<&str>,
        tmp: &mut NamedTempFile,
    ) -> Result<Option<String>, KernelError> {
        match &self.opts.mirror {
            Some(mirror) if !self.opts.offline || mirror.is_local() => {
                let progress = self.opts.progress.as_ref();
                let limits = &self.opts.limits;
                mirror.fetch(
                    self.origin,
                    expected,
                    self.mirror_name,
                    tmp,
                    limits,
                    progress,
                )
            }
            _ => Ok(None),
        }
    }

    /// Recognise a verified blob and take what is wanted from it. The caller
    /// holds the lock of `digest`.
    fn kernel_from_blob(&self, blob: PathBuf, digest: &str) -> Result<Got, KernelError> {
        let blob_err = |err| KernelError::cache("read", blob.clone(), err);
        let head = sniff::read_head(&mut File::open(&blob).map_err(blob_err)?).map_err(blob_err)?;
        match SourceFormat::recognise(&head) {
            Some(format @ (SourceFormat::BzImage | SourceFormat::Image)) => {
                bare_image(self.origin, blob, digest, format, self.want)
            }
            Some(format) => {
                let result = extract::extract_locked(
                    self.cache,
                    self.origin,
                    digest,
                    self.want,
                    format,
                    || File::open(&blob).map_err(blob_err),
                );
                // A package we refuse (or that changed underneath) is not kept;
                // after a failure of the cache itself it is, to save a download.
                if result.as_ref().is_err_and(|e| !e.is_cache()) {
                    let _ = self.cache.remove_blob(digest);
                }
                result
            }
            None => {
                // Intact, but useless: don't keep it.
                self.cache.remove_blob(digest)?;
                Err(KernelError::NotAKernel {
                    origin: self.origin.to_owned(),
                    found: sniff::describe(&head),
                })
            }
        }
    }
}

/// Lowercase a sha256 and check that it is 64 hex digits.
fn normalize_sha256(origin: &str, value: &str) -> Result<String, KernelError> {
    let v = value.trim().to_ascii_lowercase();
    if hash::is_digest(&v) {
        Ok(v)
    } else {
        Err(KernelError::BadSha256 {
            origin: origin.to_owned(),
            value: value.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bpfcompat_testkit::sha256_hex;

    #[test]
    fn one_pass_gives_the_digest_and_the_head() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7) as u8).collect();
        let (digest, head) = hash_and_head(&data[..]).unwrap();
        assert_eq!(digest, sha256_hex(&data));
        assert_eq!(head, &data[..sniff::HEAD_LEN]);
    }
}
