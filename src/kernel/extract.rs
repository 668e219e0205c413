//! Taking the kernel image out of a package or image into the cache, and
//! the record of each extraction (`extracted/<key>`), so that a source is
//! extracted once: the one module that knows which format is read how.

use std::io::Read;
use std::path::PathBuf;

use super::cache::KernelCache;
use super::error::KernelError;
use super::hash::{sha256_hex, HashingReader};
use super::pick::{self, Extracted};
use super::source::{ResolvedKernel, SourceFormat};
use super::{deb, rpm};

/// The extraction record of a source: its digest, and which image was asked
/// for when the matrix names one, since one package may hold several.
fn index_key(source_sha256: &str, kernel_path: Option<&str>) -> String {
    match kernel_path {
        None => source_sha256.to_owned(),
        Some(path) => {
            let path = pick::normalise(path);
            let hash = sha256_hex(path.as_bytes());
            format!("{source_sha256}.{}", &hash[..16])
        }
    }
}

fn package_kernel(
    image: PathBuf,
    sha256: String,
    source_sha256: &str,
    format: SourceFormat,
) -> ResolvedKernel {
    ResolvedKernel {
        image,
        sha256,
        source_sha256: source_sha256.to_owned(),
        format,
    }
}

/// The image digest and format of the extraction record `key`. A record of
/// a format this version does not know is treated as absent.
pub(crate) fn read_record(cache: &KernelCache, key: &str) -> Option<(String, SourceFormat)> {
    let (image_sha, kind) = cache.read_index(key)?;
    // Records written before RPM and OCI support name no format.
    let format = match kind.as_deref() {
        None | Some("deb") => SourceFormat::Deb,
        Some("rpm") => SourceFormat::Rpm,
        Some("oci") => SourceFormat::Oci,
        Some(_) => return None,
    };
    Some((image_sha, format))
}

fn record_kind(format: SourceFormat) -> &'static str {
    match format {
        SourceFormat::BzImage | SourceFormat::Deb => "deb",
        SourceFormat::Rpm => "rpm",
        SourceFormat::Oci => "oci",
    }
}

/// The image of the package `source_sha256` if it was extracted before and
/// its blob is intact (a corrupt one is deleted). The caller holds the lock of
/// `source_sha256`.
pub(crate) fn cached_extraction(
    cache: &KernelCache,
    source_sha256: &str,
    kernel_path: Option<&str>,
) -> Result<Option<ResolvedKernel>, KernelError> {
    let Some((image_sha, format)) = read_record(cache, &index_key(source_sha256, kernel_path))
    else {
        return Ok(None);
    };
    let _image_lock = cache.lock(&image_sha)?;
    Ok(cache
        .verified_blob(&image_sha)?
        .map(|image| package_kernel(image, image_sha, source_sha256, format)))
}

/// Extract the image of the package `source_sha256` from what `open` yields
/// into the cache and record it. The caller holds the lock of `source_sha256`
/// and has checked [`cached_extraction`] first. `open` must yield exactly the
/// package: it is re-hashed while it is read, and a package that changed
/// underneath is an error.
pub(crate) fn extract_locked<R: Read>(
    cache: &KernelCache,
    origin: &str,
    source_sha256: &str,
    kernel_path: Option<&str>,
    format: SourceFormat,
    open: impl FnOnce() -> Result<R, KernelError>,
) -> Result<ResolvedKernel, KernelError> {
    let mut reader = HashingReader::new(open()?);
    let tmp = cache.temp_file()?;
    let extracted = match format {
        SourceFormat::Rpm => rpm::extract_kernel(&mut reader, origin, kernel_path, tmp)?,
        _ => deb::extract_kernel(&mut reader, origin, kernel_path, tmp)?,
    };
    let actual = reader.finish().map_err(|err| KernelError::PackageRead {
        origin: origin.to_owned(),
        entry: "the end of the package".to_owned(),
        err,
    })?;
    if actual != source_sha256 {
        return Err(KernelError::SourceChanged {
            origin: origin.to_owned(),
            expected: source_sha256.to_owned(),
            actual,
        });
    }
    store_extracted(cache, source_sha256, kernel_path, format, extracted)
}

/// Move an extracted image into the cache and record where it came from. The
/// caller holds the lock of `source_sha256`.
pub(crate) fn store_extracted(
    cache: &KernelCache,
    source_sha256: &str,
    kernel_path: Option<&str>,
    format: SourceFormat,
    extracted: Extracted,
) -> Result<ResolvedKernel, KernelError> {
    let image_sha = extracted.sha256;
    let image = {
        let _image_lock = cache.lock(&image_sha)?;
        // Another package may have given the same image already.
        match cache.verified_blob(&image_sha)? {
            Some(path) => path, // `extracted.file` is dropped, hence removed.
            None => cache.store_blob(extracted.file, &image_sha)?,
        }
    };
    let key = index_key(source_sha256, kernel_path);
    cache.write_index(&key, &image_sha, record_kind(format))?;
    Ok(package_kernel(image, image_sha, source_sha256, format))
}
