//! The content-addressed kernel cache.
//!
//! Layout under the root (e.g. `~/.cache/bpfcompat`):
//!
//! ```text
//! blobs/sha256/<hex>      downloaded sources, image manifests and layers, and
//!                         extracted images, named by their digest
//! extracted/<key>         "<image-hex> <format> modules=<tree-hex|none>\n": a
//!                         package or image already extracted, and what it gave;
//!                         the key is the source's digest, plus ".<hash of
//!                         kernel_path>" when one is given, or ".modules" for a
//!                         source of modules only (written and read by extract.rs)
//! modules/<tree-hex>/     a module tree: index.json and files/ (modtree.rs)
//! parts/<source-hex>      the blobs an OCI image consists of, one digest a line
//! names/<name-key>        "<source-hex>\n": what an unpinned source (a URL, an
//!                         image tag, an apt version) resolved to last time
//! btf/<image-hex>         a kernel's own BTF, read out of its image (vmlinux.rs);
//!                         <image-hex>.none says the kernel has none
//! locks/<key>.lock        one lock file per digest or name (flock via File::lock)
//! tmp/                    work in progress; renamed atomically into place
//! ```
//!
//! Rules that keep it safe across threads and processes:
//! - Whoever downloads or extracts something holds the lock of the source's
//!   digest for the whole operation, so the same thing is never fetched or
//!   extracted twice at once; a waiter then finds the finished result.
//! - Nothing is written in place: files are built in `tmp/` and renamed into
//!   place, so no reader ever sees a partial file. Temp files are deleted on
//!   every error path (they are `NamedTempFile`s).
//! - Every blob is re-hashed before use; a blob whose content does not match
//!   its name is deleted and rebuilt from its source.
//! - Locks nest in one order only: a source name, then a source digest, then
//!   an image, layer or module tree digest (these are never sources of
//!   another extraction), so they cannot deadlock.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use tempfile::NamedTempFile;

use super::error::KernelError;
use super::hash::{self, is_digest, sha256_hex};

/// Temp files older than this are leftovers of a killed process, whoever
/// made them.
const STALE_TMP_AGE: Duration = Duration::from_secs(24 * 60 * 60);

/// The prefix of this process's temp files in `tmp/`: `<kind>-<pid>-`, so a
/// sweep can tell the files of a process that is gone (interrupted, killed)
/// from those still being written.
pub(crate) fn temp_prefix(kind: &str) -> String {
    format!("{kind}-{}-", std::process::id())
}

/// The pid in a temp entry's name (see [`temp_prefix`]).
fn temp_owner(entry: &fs::DirEntry) -> Option<u32> {
    entry.file_name().to_str()?.split('-').nth(1)?.parse().ok()
}

/// The on-disk kernel cache. Cheap to create; directories are made on first use.
#[derive(Debug, Clone)]
pub struct KernelCache {
    root: PathBuf,
}

/// Held while a digest is being worked on; dropping it releases the lock.
#[must_use = "the lock is released when this is dropped"]
pub(crate) struct DigestLock {
    _file: File,
}

impl KernelCache {
    pub fn new(root: PathBuf) -> Self {
        Self { root }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub(crate) fn blobs_dir(&self) -> PathBuf {
        self.root.join("blobs").join("sha256")
    }

    pub(crate) fn index_dir(&self) -> PathBuf {
        self.root.join("extracted")
    }

    pub(crate) fn parts_dir(&self) -> PathBuf {
        self.root.join("parts")
    }

    pub(crate) fn names_dir(&self) -> PathBuf {
        self.root.join("names")
    }

    pub(crate) fn btf_dir(&self) -> PathBuf {
        self.root.join("btf")
    }

    fn locks_dir(&self) -> PathBuf {
        self.root.join("locks")
    }

    pub(crate) fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// Where the blob of digest `sha256` is kept (whether or not it is there).
    pub fn blob_path(&self, sha256: &str) -> PathBuf {
        self.blobs_dir().join(sha256)
    }

    /// Create the layout and sweep temp files left by killed processes.
    pub(crate) fn prepare(&self) -> Result<(), KernelError> {
        for dir in [
            self.blobs_dir(),
            self.index_dir(),
            self.parts_dir(),
            self.names_dir(),
            self.btf_dir(),
            self.locks_dir(),
            self.tmp_dir(),
        ] {
            fs::create_dir_all(&dir)
                .map_err(|err| KernelError::cache("create directory", dir.clone(), err))?;
        }
        self.sweep_tmp();
        Ok(())
    }

    /// Best effort: the entries of processes that are gone, and any old
    /// enough that no live writer can still be using it.
    fn sweep_tmp(&self) {
        let now = SystemTime::now();
        self.remove_tmp_where(|entry| {
            temp_owner(entry).is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists())
                || entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| now.duration_since(t).ok())
                    .is_some_and(|age| age > STALE_TMP_AGE)
        });
    }

    /// Removes this process's temp entries: for a run that was interrupted,
    /// whose downloads will never finish.
    pub fn discard_own_temp_files(&self) {
        self.remove_tmp_where(|entry| temp_owner(entry) == Some(std::process::id()));
    }

    fn remove_tmp_where(&self, doomed: impl Fn(&fs::DirEntry) -> bool) {
        let Ok(entries) = fs::read_dir(self.tmp_dir()) else {
            return;
        };
        for entry in entries.flatten().filter(|e| doomed(e)) {
            // apt downloads work in a directory of their own.
            let _ = match entry.file_type() {
                Ok(t) if t.is_dir() => fs::remove_dir_all(entry.path()),
                _ => fs::remove_file(entry.path()),
            };
        }
    }

    /// Block until this process holds the lock for `sha256`.
    pub(crate) fn lock(&self, sha256: &str) -> Result<DigestLock, KernelError> {
        let path = self.locks_dir().join(format!("{sha256}.lock"));
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|err| KernelError::cache("open lock file", path.clone(), err))?;
        file.lock()
            .map_err(|err| KernelError::cache("lock", path, err))?;
        Ok(DigestLock { _file: file })
    }

    /// A new temp file under `tmp/`, deleted when dropped unless persisted.
    pub(crate) fn temp_file(&self) -> Result<NamedTempFile, KernelError> {
        tempfile::Builder::new()
            .prefix(&temp_prefix("part"))
            .tempfile_in(self.tmp_dir())
            .map_err(|err| KernelError::cache("create a temp file in", self.tmp_dir(), err))
    }

    /// The blob for `sha256` if it is present and its content still hashes to
    /// its name. A corrupt blob is deleted and `None` returned, so the caller
    /// rebuilds it. Call with the digest's lock held.
    pub(crate) fn verified_blob(&self, sha256: &str) -> Result<Option<PathBuf>, KernelError> {
        let path = self.blob_path(sha256);
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(KernelError::cache("open", path, err)),
        };
        match hash::hash_reader(file) {
            Ok(actual) if actual == sha256 => Ok(Some(path)),
            // Unreadable or wrong content: either way it cannot be trusted.
            Ok(_) | Err(_) => {
                self.remove_blob(sha256)?;
                Ok(None)
            }
        }
    }

    pub(crate) fn remove_blob(&self, sha256: &str) -> Result<(), KernelError> {
        let path = self.blob_path(sha256);
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(err) => Err(KernelError::cache("remove corrupt blob", path, err)),
        }
    }

    /// Atomically move a finished temp file (whose content hashes to `sha256`)
    /// into `blobs/`. Call with the digest's lock held.
    pub(crate) fn store_blob(
        &self,
        tmp: NamedTempFile,
        sha256: &str,
    ) -> Result<PathBuf, KernelError> {
        let path = self.blob_path(sha256);
        tmp.persist(&path).map_err(|e| {
            KernelError::cache("move a finished download into", path.clone(), e.error)
        })?;
        Ok(path)
    }

    /// The extraction record `key` (its text; extract.rs knows what it
    /// says). A missing or unreadable one is absent.
    pub(crate) fn read_index(&self, key: &str) -> Option<String> {
        read_record(&self.index_dir().join(key))
    }

    /// Write the extraction record `key`.
    pub(crate) fn write_index(&self, key: &str, text: &str) -> Result<(), KernelError> {
        self.write_record(&self.index_dir().join(key), text)
    }

    /// The blobs recorded as the parts of an OCI image `source_sha256`: the
    /// index or manifest, and the layers read for its kernel.
    pub fn read_parts(&self, source_sha256: &str) -> Vec<String> {
        read_record(&self.parts_dir().join(source_sha256))
            .map(|t| {
                t.split_whitespace()
                    .filter(|d| is_digest(d))
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }

    pub(crate) fn write_parts(
        &self,
        source_sha256: &str,
        parts: &[String],
    ) -> Result<(), KernelError> {
        let text: String = parts.iter().map(|p| format!("{p}\n")).collect();
        self.write_record(&self.parts_dir().join(source_sha256), &text)
    }

    /// The digest an unpinned source resolved to last time.
    pub(crate) fn read_name(&self, key: &str) -> Option<String> {
        let text = read_record(&self.names_dir().join(key))?;
        let digest = text.trim();
        is_digest(digest).then(|| digest.to_owned())
    }

    pub(crate) fn write_name(&self, key: &str, digest: &str) -> Result<(), KernelError> {
        self.write_record(&self.names_dir().join(key), &format!("{digest}\n"))
    }

    /// Write a small record atomically (temp file, then rename).
    fn write_record(&self, path: &std::path::Path, text: &str) -> Result<(), KernelError> {
        self.write_atomically(path, text.as_bytes(), "write the record")
    }

    /// Write `bytes` to `path` in `tmp/` and rename it into place, so no
    /// reader sees part of it; `what` names the write in an error.
    pub(crate) fn write_atomically(
        &self,
        path: &std::path::Path,
        bytes: &[u8],
        what: &'static str,
    ) -> Result<(), KernelError> {
        let mut tmp = self.temp_file()?;
        let err = |err| KernelError::cache(what, path.to_owned(), err);
        io::Write::write_all(tmp.as_file_mut(), bytes).map_err(err)?;
        tmp.persist(path).map_err(|e| err(e.error))?;
        Ok(())
    }
}

/// A record's text; a missing or unreadable one is absent.
fn read_record(path: &std::path::Path) -> Option<String> {
    let mut text = String::new();
    File::open(path)
        .ok()?
        .take(64 * 1024)
        .read_to_string(&mut text)
        .ok()?;
    Some(text)
}

/// The lock and record key of an unpinned source, from its description.
pub(crate) fn name_key(origin: &str) -> String {
    format!("name-{}", sha256_hex(origin.as_bytes()))
}
