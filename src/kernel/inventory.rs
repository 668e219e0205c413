//! Looking after the cache as a whole: what is in it, whether it is intact,
//! what no matrix needs any more, and adding files by hand.
//!
//! Every change takes the lock of the digest it touches, like a resolve does,
//! so these commands are safe while runs use the same cache.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use super::cache::{self, KernelCache};
use super::error::KernelError;
use super::fetch::{self, Limits};
use super::hash::{self, is_digest};
use super::source::{Source, SourceFormat};
use super::{extract, image, modtree, sniff};

/// One file in `blobs/`.
#[derive(Debug, Clone)]
pub struct BlobInfo {
    pub sha256: String,
    pub size: u64,
    /// bzImage, deb, rpm, manifest, layer or other, from the first bytes.
    pub kind: &'static str,
    /// For a bzImage, its release from the setup header.
    pub release: Option<String>,
}

fn cache_err(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> KernelError {
    let path = path.to_owned();
    move |err| KernelError::cache(action, path, err)
}

/// Every blob with its size and kind; nothing is hashed (see [`verify`]).
pub fn list_blobs(cache: &KernelCache) -> Result<Vec<BlobInfo>, KernelError> {
    // A blob removed meanwhile is left out.
    Ok(blob_digests(cache)?
        .iter()
        .filter_map(|digest| blob_info(cache, digest).ok())
        .collect())
}

fn kind_of(head: &[u8]) -> &'static str {
    match SourceFormat::recognise(head) {
        Some(SourceFormat::BzImage) => "bzImage",
        Some(SourceFormat::Image) => "Image",
        Some(SourceFormat::Deb) => "deb",
        Some(SourceFormat::Rpm) => "rpm",
        Some(SourceFormat::Oci) => "image",
        None if sniff::is_json_object(head) => "manifest",
        None if sniff::is_gzip(head) || sniff::is_zstd(head) || sniff::is_tar(head) => "layer",
        None => "other",
    }
}

fn blob_digests(cache: &KernelCache) -> Result<Vec<String>, KernelError> {
    let dir = cache.blobs_dir();
    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(cache_err("read", &dir)(err)),
    };
    let mut digests: Vec<String> = entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| is_digest(n))
        .collect();
    digests.sort();
    Ok(digests)
}

#[derive(Debug, Default)]
pub struct VerifyReport {
    pub checked: usize,
    /// Blobs whose content no longer matched their digest; they were removed.
    pub removed: Vec<String>,
}

/// Re-hash every blob and every module tree under its lock; a corrupt one
/// is removed (the next run fetches or extracts it again).
pub fn verify(cache: &KernelCache) -> Result<VerifyReport, KernelError> {
    let mut report = VerifyReport::default();
    if !cache.blobs_dir().is_dir() {
        return Ok(report);
    }
    cache.prepare()?;
    for digest in blob_digests(cache)? {
        let _lock = cache.lock(&digest)?;
        if !cache.blob_path(&digest).exists() {
            continue;
        }
        report.checked += 1;
        if cache.verified_blob(&digest)?.is_none() {
            report.removed.push(digest);
        }
    }
    for id in modtree::tree_ids(cache)? {
        let _lock = cache.lock(&id)?;
        report.checked += 1;
        let intact = match modtree::ModuleTree::open(cache, &id)? {
            Some(tree) => tree.corrupt_files().is_empty(),
            None => false,
        };
        if !intact {
            modtree::remove_tree(cache, &id)?;
            report.removed.push(id);
        }
    }
    Ok(report)
}

/// The digest a matrix source stands for in the cache, without fetching: its
/// pin, what an unpinned source resolved to last time, or a local package's
/// own digest. `None` when the cache knows nothing of it.
pub fn source_digest(cache: &KernelCache, source: &Source) -> Result<Option<String>, KernelError> {
    if let Some(pin) = source.pin() {
        return Ok(Some(pin.to_ascii_lowercase()));
    }
    match source {
        Source::File { path, .. } => {
            let file = File::open(path).map_err(|err| KernelError::ReadSource {
                origin: source.describe(),
                path: path.clone(),
                err,
            })?;
            let digest = hash::hash_reader(file).map_err(|err| KernelError::ReadSource {
                origin: source.describe(),
                path: path.clone(),
                err,
            })?;
            Ok(Some(digest))
        }
        _ => Ok(cache.read_name(&cache::name_key(&source.describe()))),
    }
}

#[derive(Debug, Default)]
pub struct PruneReport {
    /// Blobs removed, with their sizes.
    pub removed: Vec<(String, u64)>,
    pub kept: usize,
}

/// Remove every cache entry not reachable from the source digests in `keep`
/// (everything when `keep` is `None`), each under its digest's lock.
pub fn prune(
    cache: &KernelCache,
    keep: Option<&BTreeSet<String>>,
) -> Result<PruneReport, KernelError> {
    let mut report = PruneReport::default();
    if !cache.blobs_dir().is_dir() {
        return Ok(report);
    }
    cache.prepare()?;
    let empty = BTreeSet::new();
    let sources = keep.unwrap_or(&empty);
    // What the kept sources consist of: their extracted images, module
    // trees and parts.
    let mut kept_blobs: BTreeSet<String> = sources.clone();
    let mut kept_trees: BTreeSet<String> = BTreeSet::new();
    for name in file_names(&cache.index_dir())? {
        let source = name.split('.').next().unwrap_or_default();
        if sources.contains(source) {
            if let Some(record) = extract::read_record(cache, &name) {
                kept_blobs.extend(record.image);
                kept_trees.extend(record.modules);
            }
        } else {
            remove_file(&cache.index_dir().join(&name))?;
        }
    }
    for tree in modtree::tree_ids(cache)? {
        if !kept_trees.contains(&tree) {
            let _lock = cache.lock(&tree)?;
            let size = modtree::remove_tree(cache, &tree)?;
            report.removed.push((tree, size));
        }
    }
    for name in file_names(&cache.parts_dir())? {
        if sources.contains(&name) {
            kept_blobs.extend(cache.read_parts(&name));
        } else {
            remove_file(&cache.parts_dir().join(&name))?;
        }
    }
    for name in file_names(&cache.names_dir())? {
        if !cache.read_name(&name).is_some_and(|d| sources.contains(&d)) {
            remove_file(&cache.names_dir().join(&name))?;
        }
    }
    for digest in blob_digests(cache)? {
        if kept_blobs.contains(&digest) {
            report.kept += 1;
            continue;
        }
        let _lock = cache.lock(&digest)?;
        let path = cache.blob_path(&digest);
        let size = fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        remove_file(&path)?;
        report.removed.push((digest, size));
    }
    // A kernel's BTF (`btf/<image>`, or `<image>.none`) goes with its image.
    for name in file_names(&cache.btf_dir())? {
        if !kept_blobs.contains(name.trim_end_matches(".none")) {
            remove_file(&cache.btf_dir().join(&name))?;
        }
    }
    Ok(report)
}

fn file_names(dir: &Path) -> Result<Vec<String>, KernelError> {
    match fs::read_dir(dir) {
        Ok(entries) => Ok(entries
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(err) => Err(cache_err("read", dir)(err)),
    }
}

fn remove_file(path: &Path) -> Result<(), KernelError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(cache_err("remove", path)(err)),
    }
}

/// Add a local file (a kernel image, a package, an image layer) to the cache
/// under its digest, so that sources pinned to that digest resolve without
/// the network. Returns what was added.
pub fn import(cache: &KernelCache, path: &Path) -> Result<BlobInfo, KernelError> {
    cache.prepare()?;
    let path: PathBuf = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    let origin = format!("file:{}", path.display());
    let url = format!("file://{}", path.display().to_string().replace('%', "%25"));
    let mut tmp = cache.temp_file()?;
    let digest = fetch::download(&origin, &url, &mut tmp, &Limits::default(), None)?;
    {
        let _lock = cache.lock(&digest)?;
        if cache.verified_blob(&digest)?.is_none() {
            cache.store_blob(tmp, &digest)?;
        }
    }
    blob_info(cache, &digest)
}

fn blob_info(cache: &KernelCache, digest: &str) -> Result<BlobInfo, KernelError> {
    let path = cache.blob_path(digest);
    let size = fs::metadata(&path).map_err(cache_err("read", &path))?.len();
    let head = File::open(&path)
        .and_then(|mut f| sniff::read_head(&mut f))
        .map_err(cache_err("read", &path))?;
    let kind = kind_of(&head);
    Ok(BlobInfo {
        sha256: digest.to_owned(),
        size,
        kind,
        release: (kind == "bzImage")
            .then(|| image::release_of(&path).ok().flatten())
            .flatten(),
    })
}
