//! The lock file: `<matrix>.lock`, beside the matrix (for a built-in matrix
//! `.bpfcompat/<name>.lock` in the current directory), pins every source the
//! matrix leaves unpinned (an OCI tag, an apt version, a URL without sha256)
//! to the digest it resolved to the first time, so later runs boot the same
//! kernels, and a changed upstream is an error rather than a silent change.
//!
//! It is small, sorted JSON (kernel id → source description and digest),
//! stable enough to commit and review, and written atomically.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::kernel::{self, KernelCache, KernelError, Options};
use crate::matrix::{KernelSpec, Matrix};

const VERSION: u32 = 1;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockFile {
    pub version: u32,
    /// By kernel id; sorted, so the file diffs well.
    pub kernels: BTreeMap<String, Entry>,
    /// What each `sweep:` entry (by its id) expanded to.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sweeps: BTreeMap<String, SweepPin>,
}

/// The point releases a `sweep:` found, so later runs check the same ones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepPin {
    /// `SweepSpec::describe()` of the entry; an edited one is swept again.
    pub sweep: String,
    pub kernels: Vec<Swept>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Swept {
    pub id: String,
    pub package: String,
    pub version: String,
    /// Its package's URL, or `oci:REFERENCE` for a registry's tag.
    pub url: String,
    pub sha256: String,
    /// Its modules' package, when the sweep names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modules: Option<SweptModules>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweptModules {
    pub url: String,
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// `Source::describe()` of the matrix entry this pin was made for; an
    /// edited source no longer matches, and is resolved again.
    pub source: String,
    /// The source's digest: the package or file a URL or apt served, or the
    /// manifest (index) an image tag pointed at.
    pub sha256: String,
}

#[derive(Debug, Error)]
pub enum LockError {
    #[error("cannot read lock file {}: {err}", path.display())]
    Read { path: PathBuf, err: std::io::Error },
    #[error("lock file {}: {err}; fix it, or delete it and run `bpfcompat kernels lock --matrix MATRIX` to write it afresh", path.display())]
    Parse {
        path: PathBuf,
        err: serde_json::Error,
    },
    #[error("lock file {}: version {found} is not supported (this bpfcompat writes version {VERSION}); run `bpfcompat kernels lock --matrix MATRIX` to write it afresh", path.display())]
    Version { path: PathBuf, found: u32 },
    #[error("--locked: lock file {} has no pin for kernel {id} ({source_desc}){why}; run `bpfcompat kernels lock --matrix {matrix}` and commit the lock file", path.display())]
    Missing {
        path: PathBuf,
        id: String,
        source_desc: String,
        /// Already formatted: " (it pins ... instead)" or empty.
        why: String,
        matrix: String,
    },
    #[error("cannot write lock file {}: {err}", path.display())]
    Write { path: PathBuf, err: std::io::Error },
    #[error("--locked: lock file {} has not swept kernels[{id}] ({sweep}) yet; run `bpfcompat kernels lock --matrix {matrix}` and commit the lock file", path.display())]
    SweepMissing {
        path: PathBuf,
        id: String,
        sweep: String,
        matrix: String,
    },
    #[error("sweep {id}: {err}")]
    Sweep { id: String, err: KernelError },
    #[error("sweep {id} ({sweep}) found no point release: check its series, flavour and indices")]
    SweepEmpty { id: String, sweep: String },
    #[error("sweep {id}: its point release {kernel} has the id of another kernel of the matrix; give the sweep another id")]
    SweepClash { id: String, kernel: String },
    #[error("sweep {id}: the id of its point release {kernel} is over 64 characters; give the sweep a shorter id")]
    SweepId { id: String, kernel: String },
}

impl LockFile {
    /// The lock file at `path`; an absent one is empty.
    pub fn load(path: &Path) -> Result<LockFile, LockError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(LockFile::default()),
            Err(err) => {
                return Err(LockError::Read {
                    path: path.to_owned(),
                    err,
                })
            }
        };
        let lock: LockFile = serde_json::from_str(&text).map_err(|err| LockError::Parse {
            path: path.to_owned(),
            err,
        })?;
        if lock.version != VERSION {
            return Err(LockError::Version {
                path: path.to_owned(),
                found: lock.version,
            });
        }
        Ok(lock)
    }

    pub fn save(&self, path: &Path) -> Result<(), LockError> {
        let mut text = serde_json::to_string_pretty(self).expect("a lock file serialises");
        text.push('\n');
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|err| LockError::Write {
                path: path.to_owned(),
                err,
            })?;
        }
        crate::report::write_atomically(path, text.as_bytes()).map_err(|err| LockError::Write {
            path: path.to_owned(),
            err,
        })
    }
}

/// How a run treats the lock file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockMode {
    /// Use its pins; resolve and add what it lacks; drop what the matrix no
    /// longer has. The default.
    Update,
    /// Use its pins; anything missing or stale is an error (`--locked`, CI).
    Locked,
    /// Resolve every unpinned source from its origin again
    /// (`bpfcompat kernels lock`).
    Refresh,
    /// Use its pins; leave the rest unpinned; never write (`kernels list`).
    ReadOnly,
}

/// What [`pin_matrix`] did, for the user.
#[derive(Debug, Default)]
pub struct Pinned {
    /// Kernels resolved now, with their new digests.
    pub resolved: Vec<(String, String)>,
    /// Kernels whose source could not be resolved: left unpinned, so the run
    /// reports them like any unfetchable kernel.
    pub failed: Vec<(String, kernel::KernelError)>,
    /// `sweep:` entries swept now (not taken from the lock file).
    pub swept: usize,
    /// Whether the lock file was written.
    pub written: bool,
}

/// One source's turn in [`pin_matrix`].
struct Step<'a> {
    /// The lock file's key for it: the kernel id, or `<id>:modules`.
    key: &'a str,
    old: &'a LockFile,
    mode: LockMode,
    lock_path: &'a Path,
    matrix_path: &'a Path,
}

impl Step<'_> {
    fn pin(
        &self,
        source: &mut kernel::Source,
        cache: &KernelCache,
        opts: &dyn Fn() -> Options,
        new: &mut LockFile,
        pinned: &mut Pinned,
    ) -> Result<(), LockError> {
        if !source.needs_lock() {
            return Ok(());
        }
        let key = self.key.to_owned();
        let desc = source.describe();
        let entry = self
            .old
            .kernels
            .get(&key)
            .filter(|e| e.source == desc && self.mode != LockMode::Refresh);
        if let Some(entry) = entry {
            *source = source.pinned(&entry.sha256);
            new.kernels.insert(key, entry.clone());
            return Ok(());
        }
        match self.mode {
            LockMode::ReadOnly => return Ok(()),
            LockMode::Locked => {
                return Err(LockError::Missing {
                    path: self.lock_path.to_owned(),
                    id: key.clone(),
                    source_desc: desc,
                    why: match self.old.kernels.get(&key) {
                        Some(e) => format!(" (it pins {} instead: the matrix changed)", e.source),
                        None => String::new(),
                    },
                    matrix: self.matrix_path.display().to_string(),
                })
            }
            LockMode::Update | LockMode::Refresh => {}
        }
        let opts = Options {
            fresh: self.mode == LockMode::Refresh,
            ..opts()
        };
        let resolved = if self.key.ends_with(":modules") {
            // What it resolved to is remembered by its name in the cache.
            kernel::resolve_modules(cache, source, &opts).and_then(|_| {
                kernel::source_digest(cache, source)?.ok_or_else(|| KernelError::NotCached {
                    origin: desc.clone(),
                })
            })
        } else {
            kernel::resolve(cache, source, &opts).map(|k| k.source_sha256)
        };
        match resolved {
            Ok(digest) => {
                *source = source.pinned(&digest);
                pinned.resolved.push((key.clone(), digest.clone()));
                new.kernels.insert(
                    key,
                    Entry {
                        source: desc,
                        sha256: digest,
                    },
                );
            }
            Err(e) => {
                // Keep what the old lock had, if anything: a flaky origin
                // must not erase a pin.
                if let Some(entry) = self.old.kernels.get(&key) {
                    new.kernels.insert(key.clone(), entry.clone());
                }
                pinned.failed.push((key, e));
            }
        }
        Ok(())
    }
}

/// Pin every unpinned source of `matrix` from its lock file, resolving (and
/// so fetching into the cache) those the lock lacks, and write the lock file
/// when that changed it. `options_for(id)` gives the options (mirror,
/// progress) for resolving one kernel, and is called only for those.
pub fn pin_matrix(
    matrix: &mut Matrix,
    mode: LockMode,
    cache: &KernelCache,
    options_for: &dyn Fn(&str) -> Options,
) -> Result<Pinned, LockError> {
    let path = matrix.lock_path();
    let old = LockFile::load(&path)?;
    let mut new = LockFile {
        version: VERSION,
        ..LockFile::default()
    };
    let swept = expand_sweeps(matrix, &old, &mut new, mode)?;
    let mut pinned = Pinned {
        swept,
        ..Pinned::default()
    };
    for spec in &mut matrix.kernels {
        // A kernel's modules source is pinned under "<id>:modules" (ids
        // have no colon).
        let modules_key = format!("{}:modules", spec.id);
        let sources = [
            (spec.id.clone(), Some(&mut spec.source)),
            (modules_key, spec.modules.source.as_mut()),
        ];
        for (key, source) in sources {
            let Some(source) = source else { continue };
            let step = Step {
                key: &key,
                old: &old,
                mode,
                lock_path: &path,
                matrix_path: &matrix.path,
            };
            // Asked for only when the source is resolved: options_for
            // says so to the user and may start a progress bar.
            let opts = || Options {
                arch: spec.arch,
                ..options_for(&spec.id)
            };
            step.pin(source, cache, &opts, &mut new, &mut pinned)?;
        }
    }
    let empty = new.kernels.is_empty() && new.sweeps.is_empty();
    if mode != LockMode::ReadOnly && new != old && !empty {
        new.save(&path)?;
        pinned.written = true;
    }
    Ok(pinned)
}

/// Turns each `sweep:` of `matrix` into its kernels, in its place: the
/// point releases the old lock file swept (unless refreshing), else those
/// its indices offer now (not with `--locked`; left out read-only), all
/// recorded in `new`. How many were swept now.
pub fn expand_sweeps(
    matrix: &mut Matrix,
    old: &LockFile,
    new: &mut LockFile,
    mode: LockMode,
) -> Result<usize, LockError> {
    let sweeps = std::mem::take(&mut matrix.sweeps);
    let mut swept = 0;
    // From the last, so each insertion leaves the earlier places alone.
    for sweep in sweeps.iter().rev() {
        let id = &sweep.template.id;
        let desc = sweep.spec.describe();
        let locked = old
            .sweeps
            .get(id)
            .filter(|p| p.sweep == desc && mode != LockMode::Refresh);
        let pin = match (locked, mode) {
            (Some(pin), _) => pin.clone(),
            (None, LockMode::ReadOnly) => continue,
            (None, LockMode::Locked) => {
                return Err(LockError::SweepMissing {
                    path: matrix.lock_path(),
                    id: id.clone(),
                    sweep: desc,
                    matrix: matrix.path.display().to_string(),
                })
            }
            (None, LockMode::Update | LockMode::Refresh) => {
                swept += 1;
                sweep_now(sweep, &desc)?
            }
        };
        let kernels = pin.kernels.iter().map(|k| kernel_of(&sweep.template, k));
        let kernels: Vec<_> = kernels.collect();
        for k in &kernels {
            if matrix.kernels.iter().any(|other| other.id == k.id) {
                return Err(LockError::SweepClash {
                    id: id.clone(),
                    kernel: k.id.clone(),
                });
            }
        }
        matrix.kernels.splice(sweep.at..sweep.at, kernels);
        new.sweeps.insert(id.clone(), pin);
    }
    Ok(swept)
}

/// The point releases a sweep's indices offer now.
fn sweep_now(sweep: &crate::matrix::PendingSweep, desc: &str) -> Result<SweepPin, LockError> {
    let id = &sweep.template.id;
    eprintln!("[{id}] sweeping its indices (not swept by the lock file yet)");
    let offers = sweep
        .spec
        .offers(&kernel::Limits::default())
        .map_err(|err| LockError::Sweep {
            id: id.clone(),
            err,
        })?;
    if offers.is_empty() {
        return Err(LockError::SweepEmpty {
            id: id.clone(),
            sweep: desc.to_owned(),
        });
    }
    let kernels: Vec<Swept> = offers
        .iter()
        .map(|o| Swept {
            id: format!("{id}-{}", o.kernel_id()),
            package: o.package.clone(),
            version: o.version.clone(),
            url: sweep.spec.url_of(&o.filename),
            sha256: o.sha256.clone(),
            modules: o.modules.as_ref().map(|(file, sha256)| SweptModules {
                url: sweep.spec.url_of(file),
                sha256: sha256.clone(),
            }),
        })
        .collect();
    if let Some(k) = kernels.iter().find(|k| !super::valid_id(&k.id)) {
        return Err(LockError::SweepId {
            id: id.clone(),
            kernel: k.id.clone(),
        });
    }
    Ok(SweepPin {
        sweep: desc.to_owned(),
        kernels,
    })
}

/// The kernel a swept point release stands for: the `sweep:` entry's
/// settings with the release's id and its `url:` source, pinned.
fn kernel_of(template: &KernelSpec, swept: &Swept) -> KernelSpec {
    let pinned = |url: &str, sha256: &str| kernel::Source::Url {
        url: url.to_owned(),
        sha256: Some(sha256.to_owned()),
        kernel_path: None,
    };
    let mut modules = template.modules.clone();
    if let Some(m) = &swept.modules {
        modules.source = Some(pinned(&m.url, &m.sha256));
    }
    let source = match swept.url.strip_prefix("oci:") {
        Some(reference) => kernel::Source::Oci {
            reference: reference.to_owned(),
            digest: Some(swept.sha256.clone()),
            kernel_path: None,
        },
        None => pinned(&swept.url, &swept.sha256),
    };
    KernelSpec {
        id: swept.id.clone(),
        source,
        modules,
        ..template.clone()
    }
}
