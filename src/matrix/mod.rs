//! The kernel matrix: which kernels to boot and how.
//!
//! Parsing is strict (unknown fields and wrong types are errors) and every
//! error names the matrix file and, where it can be found, the line. Paths are
//! resolved against the matrix file's directory, never the current directory,
//! so a matrix means the same thing from wherever CI invokes it.

pub mod lock;
pub mod plan;
pub mod shard;
pub mod shipped;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::arch::Arch;
use crate::kernel::Source;
use crate::yaml::{self, Field};

#[derive(Debug, Clone)]
pub struct Matrix {
    pub name: String,
    pub path: PathBuf,
    /// sha256 of the matrix file as written, to tell reports of different
    /// matrices apart.
    pub digest: String,
    pub kernels: Vec<KernelSpec>,
    /// `sweep:` entries not expanded yet (`lock::expand_sweeps` turns each
    /// into kernels at its place), in matrix order.
    pub sweeps: Vec<PendingSweep>,
    /// Its lock file: `<matrix>.lock` beside a matrix file, or
    /// `.bpfcompat/<name>.lock` in the current directory for a built-in one.
    pub lock: PathBuf,
}

/// A `sweep:` entry: the point releases it stands for, and what each of
/// its kernels takes from the entry (its `id` is their ids' prefix; its
/// `source` is each one's own when expanded).
#[derive(Debug, Clone)]
pub struct PendingSweep {
    /// How many kernels came before it in the matrix.
    pub at: usize,
    pub spec: crate::kernel::sweep::SweepSpec,
    pub template: KernelSpec,
}

#[derive(Debug, Clone)]
pub struct KernelSpec {
    pub id: String,
    pub required: bool,
    pub timeout: Option<Duration>,
    pub memory_mb: Option<u32>,
    pub cpus: Option<u32>,
    pub cmdline: Option<String>,
    /// `arch:`, the host's when absent; the image must be of it.
    pub arch: Arch,
    pub source: Source,
    /// `modules:`: where the kernel's modules come from when its own
    /// package has none, and modules to load whatever the check needs.
    pub modules: ModuleSpec,
    /// `config:`: the kernel's `.config`, for the preflight, when its
    /// source ships none (a bare image); a package's own comes with it.
    pub config: Option<PathBuf>,
}

/// A kernel's `modules:` in the matrix: a list of module names to load, or
/// a mapping with a source (`file:`, `url:`, `oci:` or `apt:`, like
/// `source:`) of the modules for distributions that ship them in their own
/// package, and `load:` names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModuleSpec {
    /// The modules' own source; `None`: the kernel's package or image.
    pub source: Option<Source>,
    /// Loaded (with their dependencies) on top of what the check needs.
    pub load: Vec<String>,
}

#[derive(Debug, Error)]
pub enum MatrixError {
    #[error("cannot read matrix {path}: {err}")]
    Read { path: PathBuf, err: std::io::Error },
    #[error("--matrix {name}: no such file, and not one of the matrices built into bpfcompat ({shipped}); give a path to a matrix file")]
    Unknown { name: String, shipped: String },
    #[error("{path}{}: {message}", line.map(|l| format!(":{l}")).unwrap_or_default())]
    Invalid {
        path: PathBuf,
        line: Option<usize>,
        message: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMatrix {
    name: String,
    kernels: Vec<RawKernel>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKernel {
    id: String,
    #[serde(default = "default_required")]
    required: bool,
    timeout: Option<String>,
    memory_mb: Option<u32>,
    /// `memory_mb` with a unit: `768M`, `1G` (a bare number is megabytes).
    memory: Option<serde_norway::Value>,
    cpus: Option<u32>,
    cmdline: Option<String>,
    arch: Option<String>,
    source: Option<RawSource>,
    /// Instead of `source:`: every point release of a series in package
    /// indices, each a kernel (`kernels sweep`).
    sweep: Option<RawSweep>,
    /// A list of names, or a mapping (see [`ModuleSpec`]); told apart by hand
    /// so that each shape gets its own error messages.
    modules: Option<serde_norway::Value>,
    /// A file: the kernel's `.config`.
    config: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModules {
    file: Option<String>,
    url: Option<String>,
    oci: Option<String>,
    apt: Option<RawApt>,
    sha256: Option<String>,
    #[serde(default)]
    load: Vec<String>,
}

fn default_required() -> bool {
    true
}

/// What a `sweep:` entry's template kernel has as its source until each
/// point release gives its own (`.invalid` never resolves).
fn placeholder_source() -> RawSource {
    RawSource {
        file: None,
        url: Some("https://sweep.invalid/".to_owned()),
        oci: None,
        apt: None,
        sha256: None,
        kernel_path: None,
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSource {
    file: Option<String>,
    url: Option<String>,
    oci: Option<String>,
    apt: Option<RawApt>,
    sha256: Option<String>,
    kernel_path: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSweep {
    series: String,
    /// Not for `oci:` repositories, whose tags are the releases.
    #[serde(default)]
    flavour: String,
    index: Vec<String>,
    archive: Option<String>,
    last: Option<usize>,
    /// RPM: the package each release's modules come from (same version).
    modules: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApt {
    package: String,
    version: String,
}

impl Matrix {
    pub fn load(path: &Path) -> Result<Matrix, MatrixError> {
        let text = std::fs::read_to_string(path).map_err(|err| MatrixError::Read {
            path: path.to_owned(),
            err,
        })?;
        let path = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
        Self::from_text(&text, &path)
    }

    /// The lock file that pins this matrix's unpinned sources.
    pub fn lock_path(&self) -> PathBuf {
        self.lock.clone()
    }

    /// Parse `text` as the matrix at `path` (which need not exist: the
    /// shipped matrices are embedded) and check that its local files exist.
    pub fn from_text(text: &str, path: &Path) -> Result<Matrix, MatrixError> {
        let text = text.to_owned();
        let path = path.to_owned();
        let matrix = Self::parse(&text, &path, |name| std::env::var(name).ok())?;
        let missing = |i: usize, k: &KernelSpec, keys: &[&str], file: &Path| {
            let line = keys
                .iter()
                .fold(Field::root().key("kernels").index(i), |f, key| f.key(key))
                .line(&text);
            MatrixError::Invalid {
                path: path.clone(),
                line,
                message: format!(
                    "kernels[{i}] ({}).{}: {} does not exist",
                    k.id,
                    keys.join("."),
                    file.display()
                ),
            }
        };
        // A missing local kernel is a mistake in the matrix, not a flaky
        // download: say so before booting anything.
        for (i, k) in matrix.kernels.iter().enumerate() {
            let sources = [
                ("source", Some(&k.source)),
                ("modules", k.modules.source.as_ref()),
            ];
            for (field, source) in sources {
                let Some(Source::File { path: file, .. }) = source else {
                    continue;
                };
                if !file.is_file() {
                    return Err(missing(i, k, &[field, "file"], file));
                }
            }
            if let Some(config) = k.config.as_ref().filter(|c| !c.is_file()) {
                return Err(missing(i, k, &["config"], config));
            }
        }
        Ok(matrix)
    }

    /// Parses matrix text as if it had been read from `path`; `env` looks up
    /// the variables that `${VAR}` in paths refer to.
    pub fn parse(
        text: &str,
        path: &Path,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Matrix, MatrixError> {
        let invalid = |line: Option<usize>, message: String| MatrixError::Invalid {
            path: path.to_owned(),
            line,
            message,
        };
        let raw: RawMatrix = yaml::parse(text).map_err(|e| invalid(e.line, e.message))?;
        if raw.kernels.is_empty() {
            return Err(invalid(
                Field::root().key("kernels").line(text),
                "kernels: the matrix lists no kernels".into(),
            ));
        }
        let mut seen: HashMap<String, usize> = HashMap::new();
        let mut kernels = Vec::with_capacity(raw.kernels.len());
        let mut sweeps = Vec::new();
        for (index, k) in raw.kernels.into_iter().enumerate() {
            let entry = Entry {
                text,
                path,
                index,
                id: &k.id,
            };
            if !valid_id(&k.id) {
                return Err(entry.err(
                    &["id"],
                    "must be 1 to 64 characters from A-Z a-z 0-9 . _ -".into(),
                ));
            }
            if let Some(first) = seen.insert(k.id.clone(), index) {
                return Err(entry.err(
                    &["id"],
                    format!("duplicate id, already used by kernels[{first}]"),
                ));
            }
            match (&k.source, &k.sweep) {
                (Some(source), None) => kernels.push(entry.kernel(&k, source, &env)?),
                (None, Some(sweep)) => sweeps.push(PendingSweep {
                    at: kernels.len(),
                    spec: entry.sweep(sweep, &env)?,
                    template: entry.kernel(&k, &placeholder_source(), &env)?,
                }),
                _ => {
                    return Err(entry.err(
                        &["source"],
                        "give exactly one of `source:` (one kernel) or `sweep:` (every point \
                         release of a series)"
                            .into(),
                    ))
                }
            }
        }
        let mut lock = path.as_os_str().to_owned();
        lock.push(".lock");
        Ok(Matrix {
            name: raw.name,
            path: path.to_owned(),
            digest: hex::encode(Sha256::digest(text.as_bytes())),
            kernels,
            sweeps,
            lock: PathBuf::from(lock),
        })
    }
}

/// One entry of `kernels:`, for checking it and naming its fields in errors
/// (file, line, `kernels[i] (id).field`).
struct Entry<'a> {
    text: &'a str,
    path: &'a Path,
    index: usize,
    id: &'a str,
}

impl Entry<'_> {
    /// An error about the field at `path` inside this entry (e.g.
    /// `["source", "apt", "package"]`), named by its last part.
    fn err(&self, path: &[&str], message: String) -> MatrixError {
        let field = path
            .iter()
            .fold(Field::root().key("kernels").index(self.index), |f, k| {
                f.key(k)
            });
        MatrixError::Invalid {
            path: self.path.to_owned(),
            line: field.line(self.text),
            message: format!(
                "kernels[{}] ({}).{}: {message}",
                self.index,
                self.id,
                path.last().copied().unwrap_or_default()
            ),
        }
    }

    fn sweep(
        &self,
        raw: &RawSweep,
        env: &impl Fn(&str) -> Option<String>,
    ) -> Result<crate::kernel::sweep::SweepSpec, MatrixError> {
        if raw.index.is_empty() {
            return Err(self.err(&["sweep", "index"], "give at least one index".into()));
        }
        if raw.last == Some(0) {
            return Err(self.err(&["sweep", "last"], "must be at least 1".into()));
        }
        let expand = |key: &str, value: &str| {
            expand_vars(value, env).map_err(|m| self.err(&["sweep", key], m))
        };
        // A file index is relative to the matrix, like `file:`.
        let base = self.path.parent().unwrap_or(Path::new("."));
        let indices = raw
            .index
            .iter()
            .map(|i| {
                let i = expand("index", i)?;
                Ok(match i.contains("://") || i.starts_with("oci:") {
                    true => i,
                    false => base.join(&i).display().to_string(),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let archive = match raw.archive.as_deref() {
            Some(a) => expand("archive", a)?,
            None => crate::kernel::sweep::default_archive(&indices).ok_or_else(|| {
                self.err(
                    &["sweep", "archive"],
                    "no index is a URL with /dists/ in it or an RPM repository's \
                     repodata/repomd.xml: give `archive:`, the root the packages' paths are under"
                        .into(),
                )
            })?,
        };
        Ok(crate::kernel::sweep::SweepSpec {
            series: raw.series.clone(),
            flavour: raw.flavour.clone(),
            indices,
            archive,
            last: raw.last,
            modules: raw.modules.clone(),
        })
    }

    fn kernel(
        &self,
        k: &RawKernel,
        source: &RawSource,
        env: &impl Fn(&str) -> Option<String>,
    ) -> Result<KernelSpec, MatrixError> {
        let timeout = k
            .timeout
            .as_deref()
            .map(|t| parse_duration(t).map_err(|m| self.err(&["timeout"], m)))
            .transpose()?;
        let memory_mb = match (&k.memory, k.memory_mb) {
            (Some(_), Some(_)) => {
                return Err(self.err(&["memory"], "give memory or memory_mb, not both".into()))
            }
            (Some(m), None) => Some(parse_memory(m).map_err(|why| self.err(&["memory"], why))?),
            (None, m) => m,
        };
        let field = if k.memory.is_some() {
            "memory"
        } else {
            "memory_mb"
        };
        if let Some(m) = memory_mb.filter(|m| !(128..=65536).contains(m)) {
            return Err(self.err(&[field], format!("{m} MB is outside 128..=65536 MB")));
        }
        if let Some(c) = k.cpus.filter(|c| !(1..=64).contains(c)) {
            return Err(self.err(&["cpus"], format!("{c} is outside 1..=64")));
        }
        let arch = match k.arch.as_deref() {
            None => Arch::host(),
            Some(text) => Arch::parse(text).ok_or_else(|| {
                self.err(
                    &["arch"],
                    format!("unknown architecture {text:?}; use x86_64 (amd64) or arm64 (aarch64)"),
                )
            })?,
        };
        Ok(KernelSpec {
            id: k.id.clone(),
            required: k.required,
            timeout,
            memory_mb,
            cpus: k.cpus,
            cmdline: k.cmdline.clone(),
            arch,
            source: self.source(source, env, "source")?,
            modules: self.modules(k.modules.as_ref(), env)?,
            config: k
                .config
                .as_deref()
                .map(|c| {
                    let base = self.path.parent().unwrap_or(Path::new("."));
                    expand_vars(c, env)
                        .map(|c| normalize(&base.join(c)))
                        .map_err(|m| self.err(&["config"], m))
                })
                .transpose()?,
        })
    }

    fn modules(
        &self,
        value: Option<&serde_norway::Value>,
        env: &impl Fn(&str) -> Option<String>,
    ) -> Result<ModuleSpec, MatrixError> {
        let Some(value) = value else {
            return Ok(ModuleSpec::default());
        };
        let shape = "a list of module names, or a mapping with a source of modules (`file:`, \
                     `url:`, `oci:` or `apt:`) and/or `load: [names]`";
        let raw = match value {
            serde_norway::Value::Sequence(_) => RawModules {
                file: None,
                url: None,
                oci: None,
                apt: None,
                sha256: None,
                load: serde_norway::from_value(value.clone())
                    .map_err(|e| self.err(&["modules"], format!("{e}; expected {shape}")))?,
            },
            serde_norway::Value::Mapping(_) => serde_norway::from_value(value.clone())
                .map_err(|e| self.err(&["modules"], format!("{e}; expected {shape}")))?,
            _ => return Err(self.err(&["modules"], format!("expected {shape}"))),
        };
        for name in &raw.load {
            if !valid_module_name(name) {
                return Err(self.err(
                    &["modules"],
                    format!("{name:?} is not a module name (1 to 56 of A-Z a-z 0-9 _ -)"),
                ));
            }
        }
        let given =
            raw.file.is_some() || raw.url.is_some() || raw.oci.is_some() || raw.apt.is_some();
        let source = if given {
            let src = RawSource {
                file: raw.file,
                url: raw.url,
                oci: raw.oci,
                apt: raw.apt,
                sha256: raw.sha256,
                kernel_path: None,
            };
            Some(self.source(&src, env, "modules")?)
        } else if raw.sha256.is_some() {
            return Err(self.err(
                &["modules", "sha256"],
                "`modules:` has a sha256 but no source".into(),
            ));
        } else {
            None
        };
        Ok(ModuleSpec {
            source,
            load: raw
                .load
                .iter()
                .map(|n| crate::kernel::normalise_module_name(n))
                .collect(),
        })
    }

    fn source(
        &self,
        src: &RawSource,
        env: &impl Fn(&str) -> Option<String>,
        field: &str,
    ) -> Result<Source, MatrixError> {
        let sha256 = src
            .sha256
            .as_deref()
            .map(|s| normalise_sha256(s).map_err(|m| self.err(&[field, "sha256"], m)))
            .transpose()?;
        let kernel_path = src
            .kernel_path
            .as_deref()
            .map(|p| check_kernel_path(p).map_err(|m| self.err(&[field, "kernel_path"], m)))
            .transpose()?;
        let given = [
            src.file.is_some(),
            src.url.is_some(),
            src.oci.is_some(),
            src.apt.is_some(),
        ];
        if given.iter().filter(|g| **g).count() != 1 {
            return Err(self.err(
                &[field],
                "give exactly one of `file:`, `url:`, `oci:` or `apt:`".into(),
            ));
        }
        let expand = |key: &str, value: &str| {
            expand_vars(value, env).map_err(|m| self.err(&[field, key], m))
        };
        if let Some(file) = &src.file {
            let base = self.path.parent().unwrap_or(Path::new("."));
            return Ok(Source::File {
                path: normalize(&base.join(expand("file", file)?)),
                sha256,
                kernel_path,
            });
        }
        if let Some(url) = &src.url {
            let url = expand("url", url)?;
            if !["http://", "https://", "file://"]
                .iter()
                .any(|s| url.starts_with(s))
            {
                return Err(self.err(
                    &[field, "url"],
                    format!("{url:?} is not an http://, https:// or file:// URL"),
                ));
            }
            // Without sha256 the lock file pins what the URL served first.
            return Ok(Source::Url {
                url,
                sha256,
                kernel_path,
            });
        }
        if let Some(reference) = &src.oci {
            let reference = expand("oci", reference)?;
            if sha256.is_some() {
                return Err(self.err(
                    &[field, "sha256"],
                    "an oci source is pinned in its reference: write `oci: NAME@sha256:HEX`".into(),
                ));
            }
            let parsed = crate::kernel::OciReference::parse(&reference)
                .map_err(|m| self.err(&[field, "oci"], m))?;
            return Ok(Source::Oci {
                reference,
                digest: parsed.digest,
                kernel_path,
            });
        }
        let apt = src.apt.as_ref().expect("exactly one source kind is given");
        if !crate::kernel::valid_apt_package(&apt.package) {
            return Err(self.err(
                &[field, "apt", "package"],
                format!("{:?} is not a Debian package name", apt.package),
            ));
        }
        if !crate::kernel::valid_apt_version(&apt.version) {
            return Err(self.err(
                &[field, "apt", "version"],
                format!("{:?} is not a Debian version", apt.version),
            ));
        }
        Ok(Source::Apt {
            package: apt.package.clone(),
            version: apt.version.clone(),
            sha256,
            kernel_path,
        })
    }
}

/// A relative path without `..`, as written inside a package or image.
fn check_kernel_path(path: &str) -> Result<String, String> {
    let normal: Vec<&str> = path
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    if normal.is_empty() || normal.contains(&"..") {
        return Err(format!(
            "{path:?} is not a path inside the package, like boot/vmlinuz-6.1.0-47-cloud-amd64"
        ));
    }
    Ok(normal.join("/"))
}

/// Removes `.` and `name/..` pairs without touching the file system, so a
/// path reads as the file it names (`matrices/../../k` becomes `../k`).
fn normalize(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir
                if matches!(out.components().next_back(), Some(Component::Normal(_))) =>
            {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// A kernel module's name, as `modprobe` takes it.
pub fn valid_module_name(name: &str) -> bool {
    (1..=56).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-".contains(&b))
}

fn valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// Accepts humantime durations ("90s", "5m", "1m30s").
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    match humantime::parse_duration(text.trim()) {
        Ok(d) if d.is_zero() => Err("a timeout must be longer than zero".into()),
        Ok(d) => Ok(d),
        Err(e) => Err(format!("{text:?} is not a duration like 90s or 5m ({e})")),
    }
}

fn normalise_sha256(s: &str) -> Result<String, String> {
    let s = s.trim().trim_start_matches("sha256:").to_ascii_lowercase();
    if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(s)
    } else {
        Err(format!("{s:?} is not a sha256 digest (64 hex digits)"))
    }
}

/// Expands `${VAR}` and `${VAR:-default}`; an unset variable without a
/// default is an error naming it.
fn expand_vars(value: &str, env: impl Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("unterminated `${{` in {value:?}"))?;
        let expr = &after[..end];
        let (name, default) = match expr.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (expr, None),
        };
        match (env(name).filter(|v| !v.is_empty()), default) {
            (Some(v), _) => out.push_str(&v),
            (None, Some(d)) => out.push_str(d),
            (None, None) => {
                return Err(format!(
                    "environment variable {name} is not set (used in {value:?})"
                ))
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The 1-based line of each kernel's `id:` in matrix text, by id: where an
/// annotation about a kernel points.
pub fn id_lines(text: &str) -> HashMap<String, usize> {
    text.lines()
        .enumerate()
        .filter_map(|(i, l)| {
            let l = l.trim_start();
            let id = l
                .strip_prefix('-')
                .unwrap_or(l)
                .trim_start()
                .strip_prefix("id:")?;
            Some((id.trim().trim_matches(['"', '\'']).to_owned(), i + 1))
        })
        .collect()
}

/// A guest's memory in megabytes: `512`, `768M`, `1G` (also `MB`, `GB`,
/// `MiB`, `GiB`; binary units, as QEMU's `-m`).
fn parse_memory(value: &serde_norway::Value) -> Result<u32, String> {
    let text = match value {
        serde_norway::Value::Number(n) => n.to_string(),
        serde_norway::Value::String(s) => s.trim().to_owned(),
        _ => return Err("expected a size such as 512, 768M or 1G".into()),
    };
    let digits = text.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let scale = match text[digits.len()..].to_ascii_uppercase().as_str() {
        "" | "M" | "MB" | "MIB" => 1,
        "G" | "GB" | "GIB" => 1024,
        unit => return Err(format!("unknown unit {unit:?} in {text:?}: use M or G")),
    };
    digits
        .trim()
        .parse::<u32>()
        .ok()
        .and_then(|n| n.checked_mul(scale))
        .ok_or_else(|| format!("{text:?} is not a size such as 512, 768M or 1G"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Matrix, MatrixError> {
        Matrix::parse(text, Path::new("/m/ci.yaml"), |v| {
            (v == "K").then(|| "/kernels".to_owned())
        })
    }

    #[test]
    fn parses_full_matrix_and_resolves_paths() {
        let m = parse(
            "name: ci\nkernels:\n  - id: a\n    required: false\n    timeout: 2m\n    memory_mb: 256\n    cpus: 2\n    cmdline: \"lsm=bpf\"\n    source:\n      file: vmlinuz\n  - id: b\n    source:\n      file: ${K}/bz\n  - id: c\n    source:\n      url: https://x/k.deb\n      sha256: 03E41F1C34C16583462F029E81944A85EBCDB78098C258DEDFA1CFDD680A27F8\n",
        )
        .unwrap();
        assert_eq!(m.name, "ci");
        let a = &m.kernels[0];
        assert!(!a.required);
        assert_eq!(a.timeout, Some(Duration::from_secs(120)));
        assert!(matches!(&a.source, Source::File { path, .. } if path == Path::new("/m/vmlinuz")));
        assert!(
            matches!(&m.kernels[1].source, Source::File { path, .. } if path == Path::new("/kernels/bz"))
        );
        assert!(m.kernels[1].required);
        assert!(
            matches!(&m.kernels[2].source, Source::Url { sha256: Some(sha256), .. } if sha256.starts_with("03e41f"))
        );
    }

    fn err(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    /// `config:` resolves like a file source, and one that is not there is
    /// an error naming its line and field.
    #[test]
    fn a_kernels_config_resolves_against_the_matrix_and_must_exist() {
        let text =
            "name: ci\nkernels:\n  - id: a\n    config: ${K}/config-a\n    source: {file: x}\n";
        assert_eq!(
            parse(text).unwrap().kernels[0].config.as_deref(),
            Some(Path::new("/kernels/config-a"))
        );
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("x");
        std::fs::write(&image, b"k").unwrap();
        let text =
            "name: ci\nkernels:\n  - id: a\n    config: no-such-config\n    source: {file: x}\n";
        let msg = Matrix::from_text(text, &dir.path().join("m.yaml"))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("m.yaml:4: "), "{msg}");
        assert!(
            msg.contains("kernels[0] (a).config: ")
                && msg.contains("no-such-config does not exist"),
            "{msg}"
        );
    }

    #[test]
    fn memory_takes_a_unit_and_names_its_field() {
        let kernel = |memory: &str| {
            format!("name: ci\nkernels:\n  - id: a\n    {memory}\n    source: {{file: x}}\n")
        };
        for (given, mb) in [
            ("memory: 1G", 1024),
            ("memory: 768M", 768),
            ("memory: 640", 640),
            ("memory_mb: 256", 256),
        ] {
            assert_eq!(
                parse(&kernel(given)).unwrap().kernels[0].memory_mb,
                Some(mb),
                "{given}"
            );
        }
        let e = err(&kernel("memory: 1T"));
        assert!(
            e.contains(":4: ") && e.contains("memory") && e.contains("use M or G"),
            "{e}"
        );
        let e = err(&kernel("memory: 64M"));
        assert!(e.contains("kernels[0] (a).memory: 64 MB is outside"), "{e}");
        let e = err(&kernel("memory: 1G\n    memory_mb: 512"));
        assert!(e.contains("not both"), "{e}");
    }

    #[test]
    fn arch_defaults_to_the_hosts_and_takes_both_spellings() {
        let kernel = |arch: &str| {
            format!("name: ci\nkernels:\n  - id: a\n    {arch}\n    source: {{file: x}}\n")
        };
        assert_eq!(parse(&kernel("")).unwrap().kernels[0].arch, Arch::host());
        for (given, arch) in [
            ("arch: aarch64", Arch::Arm64),
            ("arch: amd64", Arch::X86_64),
        ] {
            assert_eq!(
                parse(&kernel(given)).unwrap().kernels[0].arch,
                arch,
                "{given}"
            );
        }
        let e = err(&kernel("arch: riscv64"));
        assert!(
            e.contains(":4: ")
                && e.contains("kernels[0] (a).arch: unknown architecture \"riscv64\""),
            "{e}"
        );
    }

    #[test]
    fn errors_name_file_line_and_field() {
        let e = err("name: ci\nkernels:\n  - id: a\n    bogus: 1\n    source: {file: x}\n");
        assert!(e.starts_with("/m/ci.yaml:4: "), "{e}");
        assert!(e.contains("unknown field `bogus`"), "{e}");

        let e = err("name: ci\nkernels:\n  - id: a\n    cpus: two\n    source: {file: x}\n");
        assert!(e.starts_with("/m/ci.yaml:4: "), "{e}");
        assert!(e.contains("cpus"), "{e}");

        let e = err("name: ci\nkernels:\n  - id: a\n    source: {file: x}\n  - id: a\n    source: {file: y}\n");
        assert!(
            e.contains("/m/ci.yaml:5: kernels[1] (a).id: duplicate id"),
            "{e}"
        );

        let e = err("name: ci\nkernels:\n  - id: a\n    source:\n      file: ${NOPE}/x\n");
        assert!(e.contains(":5: ") && e.contains("NOPE is not set"), "{e}");

        let e = err("name: ci\nkernels:\n  - id: a\n    timeout: soon\n    source: {file: x}\n");
        assert!(e.contains(":4: ") && e.contains("timeout"), "{e}");

        let e = err("name: ci\nkernels:\n  - id: a\n    source: {url: 'https://x', file: y}\n");
        assert!(e.contains("exactly one of"), "{e}");

        let e = err("name: ci\nkernels:\n  - id: a\n    source:\n      oci: ghcr.io/x\n");
        assert!(
            e.contains(":5: kernels[0] (a).oci: ") && e.contains("give a tag"),
            "{e}"
        );

        let e = err(
            "name: ci\nkernels:\n  - id: a\n    source:\n      apt: {package: -x, version: '1'}\n",
        );
        assert!(e.contains("not a Debian package name"), "{e}");

        let e = err("name: ci\nkernels:\n  - id: a\n    source:\n      file: x.rpm\n      kernel_path: ../x\n");
        assert!(e.contains(":6: ") && e.contains("kernel_path"), "{e}");

        let e = err("name: ci\nkernels:\n  - id: a b\n    source: {file: x}\n");
        assert!(e.contains(":3: ") && e.contains(".id: must be"), "{e}");

        let e = err("name: ci\nkernels: [\n");
        assert!(e.starts_with("/m/ci.yaml:"), "{e}");
    }

    #[test]
    fn new_source_kinds_parse() {
        let d = "b".repeat(64);
        let m = parse(&format!(
            "name: ci\nkernels:\n  - id: a\n    source: {{url: 'https://x/k.rpm', kernel_path: ./boot/vmlinuz-1}}\n  - id: b\n    source: {{oci: 'ghcr.io/cilium/ci-kernels:6.1'}}\n  - id: c\n    source: {{oci: 'ghcr.io/cilium/ci-kernels@sha256:{d}'}}\n  - id: d\n    source:\n      apt: {{package: linux-image-6.1.0-47-cloud-amd64, version: 6.1.170-3}}\n"
        ))
        .unwrap();
        let k = &m.kernels;
        assert_eq!(k[0].source.kernel_path(), Some("boot/vmlinuz-1"));
        assert!(k[0].source.needs_lock());
        assert!(k[1].source.needs_lock());
        assert_eq!(k[2].source.pin(), Some(d.as_str()));
        assert!(!k[2].source.needs_lock());
        assert_eq!(
            k[3].source.describe(),
            "apt:linux-image-6.1.0-47-cloud-amd64=6.1.170-3"
        );
        assert_eq!(m.lock_path(), Path::new("/m/ci.yaml.lock"));
    }

    #[test]
    fn modules_are_names_or_a_source_with_names() {
        let m = parse(
            "name: ci\nkernels:\n  - id: a\n    source: {file: k.deb}\n    modules: [xfs, nf-conntrack]\n  - id: b\n    source: {file: k.deb}\n    modules:\n      file: ${K}/modules.deb\n      load: [dummy]\n  - id: c\n    source: {file: k}\n    modules:\n      apt: {package: linux-modules-6.8.0-31-generic, version: 6.8.0-31.31}\n  - id: d\n    source: {file: k}\n",
        )
        .unwrap();
        let k = &m.kernels;
        assert_eq!(
            k[0].modules,
            ModuleSpec {
                source: None,
                load: vec!["xfs".into(), "nf_conntrack".into()]
            }
        );
        assert!(
            matches!(&k[1].modules.source, Some(Source::File { path, .. }) if path == Path::new("/kernels/modules.deb"))
        );
        assert_eq!(k[1].modules.load, ["dummy"]);
        assert!(k[2].modules.source.as_ref().unwrap().needs_lock());
        assert_eq!(k[3].modules, ModuleSpec::default());

        let e =
            err("name: ci\nkernels:\n  - id: a\n    source: {file: x}\n    modules: [\"a b\"]\n");
        assert!(
            e.contains(":5: kernels[0] (a).modules: ") && e.contains("not a module name"),
            "{e}"
        );
        let e = err("name: ci\nkernels:\n  - id: a\n    source: {file: x}\n    modules: {url: 'https://x', file: y}\n");
        assert!(e.contains(".modules: give exactly one of"), "{e}");
        let e =
            err("name: ci\nkernels:\n  - id: a\n    source: {file: x}\n    modules: {bogus: 1}\n");
        assert!(e.contains(".modules: unknown field `bogus`"), "{e}");
        let e = err("name: ci\nkernels:\n  - id: a\n    source: {file: x}\n    modules: xfs\n");
        assert!(e.contains("expected a list of module names"), "{e}");
    }

    #[test]
    fn each_kernel_id_has_its_line() {
        let lines =
            id_lines("name: m\nkernels:\n  - id: a\n    source: {file: x}\n  -   id: \"b\"\n");
        assert_eq!(lines["a"], 3);
        assert_eq!(lines["b"], 5);
    }

    #[test]
    fn normalizes_relative_paths() {
        assert_eq!(
            normalize(Path::new("/m/matrices/../../shared/./k")),
            Path::new("/shared/k")
        );
        assert_eq!(normalize(Path::new("../a/../b")), Path::new("../b"));
    }

    #[test]
    fn expands_defaults() {
        assert_eq!(expand_vars("${X:-d}/k", |_| None).unwrap(), "d/k");
        assert_eq!(expand_vars("a${K}b", |_| Some("1".into())).unwrap(), "a1b");
        assert!(expand_vars("${K", |_| None).is_err());
    }
}
