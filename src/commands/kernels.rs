//! `bpfcompat kernels ...`: fetch, list, verify, prune, lock and inspect the
//! kernels of a matrix, and import kernel files into the cache.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};

use super::pinning::{options_for, pin, prepare_matrix};
use crate::boot::snapshot::{SnapshotInfo, SnapshotKey, Snapshots};
use crate::kernel::{self, KernelCache, KernelError, Mirror, Options};
use crate::matrix::lock::{self, LockMode};
use crate::matrix::shipped;
use crate::matrix::Matrix;
use crate::term::progress::human_bytes;
use crate::term::table::render;

/// What `bpfcompat kernels ...` is asked to do, on the cache at `cache_dir`.
pub struct KernelsOptions {
    pub cache_dir: PathBuf,
    pub action: KernelsAction,
}

pub enum KernelsAction {
    Fetch {
        matrix: Option<PathBuf>,
        locked: bool,
    },
    Lock {
        matrix: Option<PathBuf>,
        locked: bool,
    },
    List {
        matrix: Option<PathBuf>,
    },
    Verify {
        matrix: Option<PathBuf>,
        /// Ask the sources' origins instead of checking the cache.
        remote: bool,
    },
    /// Keep what this matrix's kernels need; everything goes without one.
    Prune {
        keep_for: Option<PathBuf>,
    },
    Import {
        paths: Vec<PathBuf>,
    },
    Sweep(SweepOptions),
    Outdated {
        matrix: Option<PathBuf>,
    },
    Inspect {
        matrix: Option<PathBuf>,
        name: String,
        json: bool,
    },
}

/// `kernels sweep`.
pub struct SweepOptions {
    pub series: String,
    pub flavour: String,
    /// `Packages` indices, files or URLs.
    pub indices: Vec<String>,
    pub last: Option<usize>,
    /// RPM: each release's modules package.
    pub modules: Option<String>,
    /// The archive's root URL; by default the first URL index's up to `/dists/`.
    pub archive: Option<String>,
    pub name: Option<String>,
    pub out: Option<PathBuf>,
}

/// Blocking; the exit code.
pub fn run(options: KernelsOptions) -> anyhow::Result<u8> {
    let cache = KernelCache::new(options.cache_dir);
    match options.action {
        KernelsAction::Fetch { matrix, locked } => fetch(&cache, matrix.as_deref(), locked),
        KernelsAction::Lock { matrix, locked } => relock(&cache, matrix.as_deref(), locked),
        KernelsAction::List { matrix } => list(&cache, matrix.as_deref()),
        KernelsAction::Verify {
            matrix,
            remote: true,
        } => verify_remote(&cache, matrix.as_deref()),
        KernelsAction::Verify { matrix, .. } => verify(&cache, matrix.as_deref()),
        KernelsAction::Prune { keep_for } => prune(&cache, keep_for.as_deref()),
        KernelsAction::Import { paths } => import(&cache, &paths),
        KernelsAction::Sweep(options) => sweep(&options),
        KernelsAction::Outdated { matrix } => outdated(matrix.as_deref()),
        KernelsAction::Inspect { matrix, name, json } => {
            super::preflight::inspect_kernel(&cache, matrix.as_deref(), &name, json)
        }
    }
}

/// Each `sweep:` entry's locked point releases against its indices now.
fn outdated(arg: Option<&Path>) -> anyhow::Result<u8> {
    let matrix = shipped::load(arg)?;
    if matrix.sweeps.is_empty() {
        println!(
            "{} has no sweep: entries; `bpfcompat kernels verify --remote` checks that its \
             sources are still published",
            matrix.path.display()
        );
        return Ok(0);
    }
    let old = lock::LockFile::load(&matrix.lock_path())?;
    let mut rows: Vec<[String; 3]> = Vec::new();
    let mut compared = 0;
    for sweep in &matrix.sweeps {
        let id = sweep.template.id.clone();
        let Some(pin) = old
            .sweeps
            .get(&id)
            .filter(|p| p.sweep == sweep.spec.describe())
        else {
            // Nothing to compare with: a run sweeps it and pins the newest.
            println!(
                "{id}: not in {} yet, so nothing to compare; `bpfcompat kernels lock` sweeps it",
                matrix.lock_path().display()
            );
            continue;
        };
        compared += 1;
        let offers = sweep
            .spec
            .offers(&kernel::Limits::default())
            .with_context(|| format!("sweep {id}"))?;
        let newest = pin
            .kernels
            .iter()
            .map(|k| k.version.as_str())
            .max_by(|a, b| kernel::sweep::compare_versions(a, b))
            .unwrap_or_default();
        for o in &offers {
            if kernel::sweep::compare_versions(&o.version, newest).is_gt() {
                rows.push([
                    id.clone(),
                    "newer".into(),
                    format!("{} {}", o.package, o.version),
                ]);
            }
        }
        for k in &pin.kernels {
            if !offers
                .iter()
                .any(|o| o.package == k.package && o.version == k.version)
            {
                rows.push([
                    id.clone(),
                    "gone".into(),
                    format!("{} {}", k.package, k.version),
                ]);
            }
        }
    }
    if rows.is_empty() {
        if compared > 0 {
            println!(
                "every sweep of {} that the lock file has is current",
                matrix.path.display()
            );
        }
        return Ok(0);
    }
    print!("{}", render(["SWEEP", "STATE", "POINT RELEASE"], &rows));
    println!(
        "run `bpfcompat kernels lock --matrix {}` to take them in, and commit the lock file",
        matrix.path.display()
    );
    Ok(2)
}

/// Writes the matrix of a series' point releases in the indices.
fn sweep(o: &SweepOptions) -> anyhow::Result<u8> {
    let archive = match &o.archive {
        Some(archive) => archive.clone(),
        None => kernel::sweep::default_archive(&o.indices).ok_or_else(|| {
            anyhow::anyhow!(
                "no --index is a URL with /dists/ in it or an RPM repository's \
                 repodata/repomd.xml: give --archive URL, the root the packages' paths are under"
            )
        })?,
    };
    let spec = kernel::sweep::SweepSpec {
        series: o.series.clone(),
        flavour: o.flavour.clone(),
        indices: o.indices.clone(),
        archive,
        last: o.last,
        modules: o.modules.clone(),
    };
    let offers = spec.offers(&kernel::Limits::default())?;
    if offers.is_empty() {
        bail!(
            "no point release of {} in flavour {} in {}: packages are named \
             linux-image-{}.X-{} (check the series, the flavour and that the index is the \
             architecture's)",
            o.series,
            o.flavour,
            o.indices.join(", "),
            o.series,
            o.flavour
        );
    }
    let name = o
        .name
        .clone()
        .unwrap_or_else(|| format!("sweep-{}-{}", o.series, o.flavour));
    let yaml = kernel::sweep::matrix_yaml(&name, &spec, &offers);
    match &o.out {
        Some(path) => {
            crate::report::write_atomically(path, yaml.as_bytes())
                .with_context(|| format!("cannot write the matrix {}", path.display()))?;
            for offer in &offers {
                eprintln!("{} {}", offer.package, offer.version);
            }
            eprintln!(
                "{} point release(s) of {}: {}",
                offers.len(),
                o.series,
                path.display()
            );
        }
        None => print!("{yaml}"),
    }
    Ok(0)
}

fn short(digest: &str) -> String {
    digest.chars().take(16).collect()
}

fn release(path: &Path) -> String {
    kernel::release_of(path)
        .ok()
        .flatten()
        .unwrap_or_else(|| "-".into())
}

fn size(path: &Path) -> String {
    std::fs::metadata(path)
        .map(|m| human_bytes(m.len()))
        .unwrap_or_else(|_| "-".into())
}

/// Resolve every kernel (and every kernel's `modules:` source) with
/// `opts_for`; one row each, and whether all resolved.
fn kernel_rows(
    matrix: &Matrix,
    cache: &KernelCache,
    opts_for: &dyn Fn(&str) -> Options,
) -> (Vec<[String; 6]>, bool) {
    let mut ok = true;
    let mut rows = Vec::new();
    let mut row =
        |id: String, source: &kernel::Source, resolved: Result<[String; 4], KernelError>| {
            let cells = match resolved {
                Ok(cells) => cells,
                Err(KernelError::NotCached { .. }) => {
                    ok = false;
                    ["not cached".into(), "-".into(), "-".into(), "-".into()]
                }
                Err(e) => {
                    ok = false;
                    eprintln!(
                        "bpfcompat: kernel {id}: {}",
                        crate::escape::plain(&e.to_string())
                    );
                    ["ERROR".into(), "-".into(), "-".into(), "-".into()]
                }
            };
            let [state, release, digest, size] = cells;
            rows.push([id, state, release, digest, size, source.describe()]);
        };
    for k in &matrix.kernels {
        let opts = Options {
            arch: k.arch,
            ..opts_for(&k.id)
        };
        let resolved = kernel::resolve(cache, &k.source, &opts).map(|r| {
            [
                "cached".into(),
                release(&r.image),
                short(&r.sha256),
                size(&r.image),
            ]
        });
        row(k.id.clone(), &k.source, resolved);
        if let Some(source) = &k.modules.source {
            let resolved = kernel::resolve_modules(cache, source, &opts).map(|tree| {
                [
                    "cached".into(),
                    tree.index.releases.join(" "),
                    short(&tree.id),
                    format!("{} modules", tree.index.modules.len()),
                ]
            });
            row(format!("{}:modules", k.id), source, resolved);
        }
    }
    (rows, ok)
}

const KERNEL_HEADER: [&str; 6] = [
    "KERNEL",
    "STATE",
    "RELEASE",
    "IMAGE SHA256",
    "SIZE",
    "SOURCE",
];

fn fetch(cache: &KernelCache, matrix: Option<&Path>, locked: bool) -> anyhow::Result<u8> {
    let matrix = prepare_matrix(matrix, locked, cache)?;
    let (rows, ok) = kernel_rows(&matrix, cache, &options_for);
    print!("{}", render(KERNEL_HEADER, &rows));
    Ok(if ok { 0 } else { 1 })
}

fn relock(cache: &KernelCache, matrix: Option<&Path>, locked: bool) -> anyhow::Result<u8> {
    if locked {
        bail!("`kernels lock` rewrites the lock file; --locked makes no sense with it");
    }
    let mut matrix = shipped::load(matrix)?;
    let pinned = pin(&mut matrix, LockMode::Refresh, cache)?;
    let rows: Vec<[String; 2]> = pinned
        .resolved
        .iter()
        .map(|(id, digest)| [id.clone(), digest.clone()])
        .collect();
    print!("{}", render(["KERNEL", "PINNED SHA256"], &rows));
    if !pinned.written {
        println!("{} is up to date", matrix.lock_path().display());
    }
    Ok(if pinned.failed.is_empty() { 0 } else { 1 })
}

/// The matrix `arg` names with its `sweep:` entries as the lock file has
/// them, or swept now (indices are read, no kernel is fetched, the lock
/// file is left to the run that pins): the kernels a run will have.
pub fn swept_matrix(arg: Option<&Path>) -> anyhow::Result<Matrix> {
    let mut matrix = shipped::load(arg)?;
    let old = lock::LockFile::load(&matrix.lock_path())?;
    let mut unused = lock::LockFile::default();
    lock::expand_sweeps(&mut matrix, &old, &mut unused, LockMode::Update)?;
    Ok(matrix)
}

/// [`swept_matrix`] with the lock file's pins applied: what `verify
/// --remote` asks the origins about.
fn matrix_as_swept(arg: &Path, cache: &KernelCache) -> anyhow::Result<Matrix> {
    let mut matrix = swept_matrix(Some(arg))?;
    lock::pin_matrix(&mut matrix, LockMode::ReadOnly, cache, &|_| {
        Options::default()
    })?;
    Ok(matrix)
}

/// The matrix with the lock file's pins applied; nothing is resolved.
fn matrix_as_locked(arg: &Path, cache: &KernelCache) -> anyhow::Result<Matrix> {
    let mut matrix = shipped::load(Some(arg))?;
    lock::pin_matrix(&mut matrix, LockMode::ReadOnly, cache, &|_| {
        Options::default()
    })?;
    Ok(matrix)
}

fn offline(_: &str) -> Options {
    Options {
        offline: true,
        mirror: Mirror::from_env().filter(|m| m.is_local()),
        ..Options::default()
    }
}

fn list(cache: &KernelCache, matrix: Option<&Path>) -> anyhow::Result<u8> {
    if let Some(arg) = matrix {
        let matrix = matrix_as_locked(arg, cache)?;
        let (rows, _) = kernel_rows(&matrix, cache, &offline);
        println!("Kernels of {}:", matrix.path.display());
        print!("{}", render(KERNEL_HEADER, &rows));
        println!();
    }
    let blobs = kernel::list_blobs(cache)?;
    let total: u64 = blobs.iter().map(|b| b.size).sum();
    let rows: Vec<[String; 4]> = blobs
        .iter()
        .map(|b| {
            [
                b.sha256.clone(),
                b.kind.to_owned(),
                human_bytes(b.size),
                b.release.clone().unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    println!(
        "Cache {} ({} files, {}):",
        cache.root().display(),
        blobs.len(),
        human_bytes(total)
    );
    print!("{}", render(["SHA256", "KIND", "SIZE", "RELEASE"], &rows));
    list_snapshots(cache);
    Ok(0)
}

/// The saved guests kernels are restored from (docs/snapshots.md).
fn list_snapshots(cache: &KernelCache) {
    let snapshots = Snapshots::new(cache.clone()).list();
    if snapshots.is_empty() {
        return;
    }
    let total: u64 = snapshots.iter().map(|s| s.bytes).sum();
    let rows: Vec<[String; 6]> = snapshots
        .iter()
        .map(|s| {
            let key = s.key.as_ref();
            let field = |f: fn(&SnapshotKey) -> String| key.map_or_else(|| "?".to_owned(), f);
            [
                s.slot.clone(),
                field(|k| k.kind.clone()),
                field(|k| format!("{} MB, {} CPU", k.memory_mb, k.cpus)),
                field(|k| format!("{} {}", k.accel, k.qemu_version)),
                human_bytes(s.bytes),
                field(|k| k.kernel_sha256.clone()),
            ]
        })
        .collect();
    println!();
    println!("Snapshots ({}, {}):", snapshots.len(), human_bytes(total));
    print!(
        "{}",
        render(
            ["SLOT", "KIND", "GUEST", "MADE BY", "SIZE", "KERNEL SHA256"],
            &rows
        )
    );
}

fn verify(cache: &KernelCache, matrix: Option<&Path>) -> anyhow::Result<u8> {
    let report = kernel::verify(cache)?;
    for digest in &report.removed {
        println!("corrupt, removed: {digest}");
    }
    println!(
        "{} files checked, {} corrupt (removed; the next run fetches them again)",
        report.checked,
        report.removed.len()
    );
    let mut ok = report.removed.is_empty();
    if let Some(arg) = matrix {
        let matrix = matrix_as_locked(arg, cache)?;
        let (rows, all) = kernel_rows(&matrix, cache, &offline);
        print!("{}", render(KERNEL_HEADER, &rows));
        ok &= all;
    }
    Ok(if ok { 0 } else { 1 })
}

/// Whether every source of the matrix (every built-in matrix without one)
/// is still published, asked of its origin without downloading anything;
/// an image tag that moved since its lock file's pin is said, not failed.
fn verify_remote(cache: &KernelCache, matrix: Option<&Path>) -> anyhow::Result<u8> {
    let matrices: Vec<Matrix> = match matrix {
        Some(arg) => vec![matrix_as_swept(arg, cache)?],
        None => shipped::names()
            .into_iter()
            .map(|name| matrix_as_swept(Path::new(name), cache))
            .collect::<anyhow::Result<_>>()?,
    };
    let limits = kernel::Limits::default();
    let mut ok = true;
    let mut rows = Vec::new();
    for m in &matrices {
        for k in &m.kernels {
            let sources = [
                (k.id.clone(), Some(&k.source)),
                (format!("{}:modules", k.id), k.modules.source.as_ref()),
            ];
            for (id, source) in sources {
                let Some(source) = source else { continue };
                let (state, detail) = match kernel::check_remote(source, k.arch, &limits) {
                    Ok(detail) => {
                        let moved = match (source.pin(), detail.strip_prefix("points at sha256:")) {
                            (Some(pin), Some(now)) if pin != now => {
                                format!("; the lock file pins sha256:{pin}: `bpfcompat kernels lock` moves it")
                            }
                            _ => String::new(),
                        };
                        ("ok", format!("{detail}{moved}"))
                    }
                    Err(e) => {
                        ok = false;
                        ("UNAVAILABLE", crate::escape::plain(&e.to_string()))
                    }
                };
                rows.push([
                    m.name.clone(),
                    id,
                    state.to_owned(),
                    source.describe(),
                    detail,
                ]);
            }
        }
    }
    print!(
        "{}",
        render(
            [
                "MATRIX",
                "KERNEL",
                "STATE",
                "SOURCE",
                "WHAT THE ORIGIN SAYS"
            ],
            &rows
        )
    );
    Ok(if ok { 0 } else { 1 })
}

fn prune(cache: &KernelCache, keep_for: Option<&Path>) -> anyhow::Result<u8> {
    let keep = match keep_for {
        Some(arg) => {
            let matrix = matrix_as_locked(arg, cache)?;
            let mut keep = BTreeSet::new();
            let sources = matrix
                .kernels
                .iter()
                .flat_map(|k| std::iter::once(&k.source).chain(k.modules.source.as_ref()));
            for source in sources {
                if let Some(digest) = kernel::source_digest(cache, source)? {
                    keep.insert(digest);
                }
            }
            Some(keep)
        }
        None => None,
    };
    let report = kernel::prune(cache, keep.as_ref())?;
    // A snapshot goes with its kernel's image (all of them without
    // --keep-for); they are remade on first use.
    let kept_image = |s: &SnapshotInfo| {
        keep.is_some()
            && s.key
                .as_ref()
                .is_some_and(|k| cache.blob_path(&k.kernel_sha256).is_file())
    };
    let snapshots = Snapshots::new(cache.clone()).prune(|s| !kept_image(s))?;
    let snapshot_bytes: u64 = snapshots.iter().map(|s| s.bytes).sum();
    println!(
        "removed {} snapshots ({})",
        snapshots.len(),
        human_bytes(snapshot_bytes)
    );
    let freed: u64 = report.removed.iter().map(|(_, n)| n).sum();
    for (digest, n) in &report.removed {
        println!("removed {digest} ({})", human_bytes(*n));
    }
    println!(
        "removed {} files ({}), kept {}",
        report.removed.len(),
        human_bytes(freed),
        report.kept
    );
    Ok(0)
}

fn import(cache: &KernelCache, paths: &[PathBuf]) -> anyhow::Result<u8> {
    let mut files = Vec::new();
    for path in paths {
        collect_files(path, &mut files)
            .with_context(|| format!("cannot read {}", path.display()))?;
    }
    let mut rows = Vec::new();
    for file in files {
        let info = kernel::import(cache, &file)?;
        rows.push([
            info.sha256,
            info.kind.to_owned(),
            human_bytes(info.size),
            info.release.unwrap_or_else(|| "-".into()),
            file.display().to_string(),
        ]);
    }
    print!(
        "{}",
        render(["SHA256", "KIND", "SIZE", "RELEASE", "FILE"], &rows)
    );
    Ok(0)
}

/// `path` if a file, else every file under it (sorted, recursively).
fn collect_files(path: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    if !std::fs::metadata(path)?.is_dir() {
        out.push(path.to_owned());
        return Ok(());
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    entries.sort();
    for entry in entries {
        collect_files(&entry, out)?;
    }
    Ok(())
}
