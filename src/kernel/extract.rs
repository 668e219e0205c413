//! Taking the kernel image and the module tree out of a package or image
//! into the cache, and the record of each extraction (`extracted/<key>`),
//! so that a source is extracted once: the one module that knows which
//! format is read how.

use std::io::Read;

use super::cache::KernelCache;
use super::contents::{Contents, Taken};
use super::error::KernelError;
use super::hash::{sha256_hex, HashingReader};
use super::modtree;
use super::pick::{self, Layout};
use super::source::{ResolvedKernel, SourceFormat};
use super::{deb, rpm};

/// What a source is resolved for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Want<'a> {
    /// Its kernel image (the one at `kernel_path:` when given), and the
    /// module tree beside it if it has one.
    Kernel(Option<&'a str>),
    /// Only its module tree (a matrix entry's `modules:` source).
    Modules,
}

/// What resolving a source gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Got {
    Kernel(ResolvedKernel),
    /// The id of the module tree.
    Modules(String),
}

/// The extraction record of a source: its digest, and which image was asked
/// for when the matrix names one, since one package may hold several.
fn index_key(source_sha256: &str, want: Want<'_>) -> String {
    match want {
        Want::Kernel(None) => source_sha256.to_owned(),
        Want::Kernel(Some(path)) => {
            let path = pick::normalise(path);
            let hash = sha256_hex(path.as_bytes());
            format!("{source_sha256}.{}", &hash[..16])
        }
        Want::Modules => format!("{source_sha256}.modules"),
    }
}

/// What an extraction record says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Record {
    /// The image's digest; `None` in the record of a modules-only source.
    pub(crate) image: Option<String>,
    pub(crate) format: SourceFormat,
    /// The module tree's id, if the source had one.
    pub(crate) modules: Option<String>,
}

/// The extraction record `key`. A record of a format this version does not
/// know, or written before module trees were kept (no `modules=`), is
/// treated as absent: the source is extracted again.
pub(crate) fn read_record(cache: &KernelCache, key: &str) -> Option<Record> {
    let text = cache.read_index(key)?;
    let words: Vec<&str> = text.split_whitespace().collect();
    let [first, kind, modules] = words.as_slice() else {
        return None;
    };
    let modules = match modules.strip_prefix("modules=")? {
        "none" => None,
        id if super::hash::is_digest(id) => Some(id.to_owned()),
        _ => return None,
    };
    let (image, format) = match *kind {
        "deb" => (Some(first), SourceFormat::Deb),
        "rpm" => (Some(first), SourceFormat::Rpm),
        "oci" => (Some(first), SourceFormat::Oci),
        // A modules-only record: the tree is all there is.
        "modules" => (None, SourceFormat::Deb),
        _ => return None,
    };
    if image.is_some_and(|i| !super::hash::is_digest(i)) || (image.is_none() && modules.is_none()) {
        return None;
    }
    Some(Record {
        image: image.map(|i| i.to_string()),
        format,
        modules,
    })
}

fn record_text(record: &Record) -> String {
    let kind = match (&record.image, record.format) {
        (None, _) => "modules",
        (Some(_), SourceFormat::BzImage | SourceFormat::Image | SourceFormat::Deb) => "deb",
        (Some(_), SourceFormat::Rpm) => "rpm",
        (Some(_), SourceFormat::Oci) => "oci",
    };
    format!(
        "{} {kind} modules={}\n",
        record.image.as_deref().unwrap_or("-"),
        record.modules.as_deref().unwrap_or("none")
    )
}

/// What the source `source_sha256` gave if it was extracted before and
/// what it gave is intact (a corrupt image is deleted). The caller holds the
/// lock of `source_sha256`.
pub(crate) fn cached_extraction(
    cache: &KernelCache,
    source_sha256: &str,
    want: Want<'_>,
) -> Result<Option<Got>, KernelError> {
    let Some(record) = read_record(cache, &index_key(source_sha256, want)) else {
        return Ok(None);
    };
    if let Some(tree) = &record.modules {
        let _tree_lock = cache.lock(tree)?;
        if modtree::ModuleTree::open(cache, tree)?.is_none() {
            return Ok(None);
        }
    }
    match (want, record.image) {
        (Want::Modules, _) => Ok(record.modules.map(Got::Modules)),
        (Want::Kernel(_), Some(image_sha)) => {
            let _image_lock = cache.lock(&image_sha)?;
            Ok(cache.verified_blob(&image_sha)?.map(|image| {
                Got::Kernel(ResolvedKernel {
                    image,
                    sha256: image_sha,
                    source_sha256: source_sha256.to_owned(),
                    format: record.format,
                    modules: record.modules,
                })
            }))
        }
        (Want::Kernel(_), None) => Ok(None),
    }
}

/// Take what `want` asks for out of the package `source_sha256` that `open`
/// yields, into the cache, and record it. The caller holds the lock of
/// `source_sha256` and has checked [`cached_extraction`] first. `open` must
/// yield exactly the package: it is re-hashed while it is read, and a
/// package that changed underneath is an error.
pub(crate) fn extract_locked<R: Read>(
    cache: &KernelCache,
    origin: &str,
    source_sha256: &str,
    want: Want<'_>,
    format: SourceFormat,
    open: impl FnOnce() -> Result<R, KernelError>,
) -> Result<Got, KernelError> {
    let mut reader = HashingReader::new(open()?);
    let layout = match format {
        SourceFormat::Rpm => Layout::Rpm,
        _ => Layout::Deb,
    };
    let contents = contents_for(cache, origin, layout, want)?;
    let taken = match format {
        SourceFormat::Rpm => rpm::extract(&mut reader, origin, contents)?,
        _ => deb::extract(&mut reader, origin, contents)?,
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
    store_extracted(cache, origin, source_sha256, want, format, taken)
}

/// How to read a container for `want`.
pub(crate) fn contents_for<'a>(
    cache: &KernelCache,
    origin: &'a str,
    layout: Layout,
    want: Want<'_>,
) -> Result<Contents<'a>, KernelError> {
    match want {
        Want::Kernel(kernel_path) => {
            Contents::kernel(cache, origin, layout, kernel_path, cache.temp_file()?)
        }
        Want::Modules => Contents::modules(cache, origin),
    }
}

/// Move what was taken out of a container into the cache and record where
/// it came from. The caller holds the lock of `source_sha256`.
pub(crate) fn store_extracted(
    cache: &KernelCache,
    origin: &str,
    source_sha256: &str,
    want: Want<'_>,
    format: SourceFormat,
    taken: Taken,
) -> Result<Got, KernelError> {
    let modules = taken
        .modules
        .map(|tree| modtree::store(cache, tree))
        .transpose()?;
    if let Some(tree) = &modules {
        // Also usable as a modules source, without extracting it again.
        let record = Record {
            image: None,
            format,
            modules: Some(tree.clone()),
        };
        cache.write_index(
            &index_key(source_sha256, Want::Modules),
            &record_text(&record),
        )?;
    }
    let Some(extracted) = taken.kernel else {
        return match modules {
            Some(tree) => Ok(Got::Modules(tree)),
            None => Err(KernelError::NoModules {
                origin: origin.to_owned(),
            }),
        };
    };
    let image_sha = extracted.sha256;
    let image = {
        let _image_lock = cache.lock(&image_sha)?;
        // Another package may have given the same image already.
        match cache.verified_blob(&image_sha)? {
            Some(path) => path, // `extracted.file` is dropped, hence removed.
            None => cache.store_blob(extracted.file, &image_sha)?,
        }
    };
    if let Some(config) = &taken.config {
        cache.store_config(&image_sha, config)?;
    }
    let record = Record {
        image: Some(image_sha.clone()),
        format,
        modules: modules.clone(),
    };
    cache.write_index(&index_key(source_sha256, want), &record_text(&record))?;
    Ok(Got::Kernel(ResolvedKernel {
        image,
        sha256: image_sha,
        source_sha256: source_sha256.to_owned(),
        format,
        modules,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_old_ones_are_absent() {
        let dir = tempfile::tempdir().unwrap();
        let cache = KernelCache::new(dir.path().to_owned());
        cache.prepare().unwrap();
        let (a, b) = ("a".repeat(64), "b".repeat(64));
        for record in [
            Record {
                image: Some(a.clone()),
                format: SourceFormat::Rpm,
                modules: Some(b.clone()),
            },
            Record {
                image: Some(a.clone()),
                format: SourceFormat::Oci,
                modules: None,
            },
            Record {
                image: None,
                format: SourceFormat::Deb,
                modules: Some(b.clone()),
            },
        ] {
            cache.write_index("k", &record_text(&record)).unwrap();
            assert_eq!(read_record(&cache, "k"), Some(record));
        }
        // Written by a version that kept no module trees.
        cache.write_index("k", &format!("{a} deb\n")).unwrap();
        assert_eq!(read_record(&cache, "k"), None);
        cache.write_index("k", "- modules modules=none\n").unwrap();
        assert_eq!(read_record(&cache, "k"), None);
    }
}
