//! Module trees: the kernel modules a package or image ships, kept in the
//! cache next to its kernel, and which of them a check needs.
//!
//! While a container is read for its kernel (see `contents.rs`), every file
//! under `lib/modules/<release>/` or `usr/lib/modules/<release>/` that is a
//! module (`.ko`, `.ko.xz`, `.ko.zst`, `.ko.gz`), `modules.builtin` or
//! `modules.order` is collected. Packages ship no `modules.dep` (depmod
//! writes it at install), so each module is read once, decompressed in
//! memory, and indexed from its own ELF: its name and `depends=` from
//! `.modinfo`, its vermagic, and the functions its symbol table defines
//! (what a kprobe or fentry may name).
//!
//! Layout in the cache:
//!
//! ```text
//! modules/<tree-hex>/index.json      the index; <tree-hex> is its sha256
//! modules/<tree-hex>/files/<hex>     each module as the package ships it
//!                                    (compressed or not), named by its sha256
//! ```
//!
//! A tree is built in `tmp/` and renamed into place under its lock. The
//! index is re-hashed whenever a tree is opened, and every module file when
//! it is read for a guest.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tempfile::TempDir;

use super::cache::{self, KernelCache};
use super::compress::{decompressor, Compression};
use super::error::KernelError;
use super::hash::{is_digest, sha256_hex};

const INDEX_VERSION: u32 = 1;
/// The biggest distribution modules (GPU drivers) decompress to well under
/// this; a bigger entry is not a module.
const MAX_MODULE_BYTES: u64 = 256 << 20;
/// Functions every module defines: naming one says nothing about which
/// module a program means.
const EVERY_MODULE: [&str; 2] = ["init_module", "cleanup_module"];

/// What a file under a modules directory is.
#[derive(Debug, Clone, Copy)]
enum ModuleFile {
    Module(Compression),
    Builtin,
    Order,
}

/// `lib/modules/6.1.0/kernel/net/sched/cls_bpf.ko` → the release, the path
/// below it and what it is; `None` for anything else.
fn classify(path: &str) -> Option<(String, String, ModuleFile)> {
    let parts: Vec<&str> = path
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    let rest = match parts.as_slice() {
        ["lib", "modules", rest @ ..] | ["usr", "lib", "modules", rest @ ..] => rest,
        _ => return None,
    };
    let [release, below @ ..] = rest else {
        return None;
    };
    let file = below.last()?;
    let kind = match *file {
        "modules.builtin" if below.len() == 1 => ModuleFile::Builtin,
        "modules.order" if below.len() == 1 => ModuleFile::Order,
        _ => {
            let (_, suffix) = file.split_once(".ko")?;
            ModuleFile::Module(Compression::from_suffix(suffix)?)
        }
    };
    Some((release.to_string(), below.join("/"), kind))
}

/// A module's name from its file name, as the kernel spells it
/// (`nf_conntrack-foo.ko.xz` → `nf_conntrack_foo`).
fn name_from_path(path: &str) -> String {
    let file = path.rsplit('/').next().unwrap_or(path);
    let stem = file.split_once(".ko").map_or(file, |(stem, _)| stem);
    normalise_name(stem)
}

/// Module names treat `-` and `_` alike; the kernel uses `_`.
pub fn normalise_name(name: &str) -> String {
    name.trim().replace('-', "_")
}

/// The index of a module tree (`index.json`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TreeIndex {
    pub version: u32,
    /// The `<release>` directories the modules came from.
    pub releases: Vec<String>,
    /// Names from `modules.builtin`: built into the kernel, nothing to load.
    /// `None` when the package ships no such file.
    pub builtin: Option<Vec<String>>,
    /// Sorted by name.
    pub modules: Vec<ModuleEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModuleEntry {
    pub name: String,
    /// Below `<release>/`, as in the package: `kernel/net/sched/cls_bpf.ko.xz`.
    pub path: String,
    /// sha256 of the file as stored (as the package ships it).
    pub sha256: String,
    pub depends: Vec<String>,
    pub vermagic: Option<String>,
    /// Functions its symbol table defines, sorted.
    pub functions: Vec<String>,
    /// Why the module could not be indexed (not an ELF object, ...); it is
    /// kept, and loading it shows what the kernel makes of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unreadable: Option<String>,
}

/// Collects the module tree while a container is read.
pub(crate) struct Collector {
    origin: String,
    dir: TempDir,
    releases: BTreeSet<String>,
    builtin: Option<Vec<String>>,
    modules: BTreeMap<String, ModuleEntry>,
}

impl Collector {
    pub(crate) fn new(cache: &KernelCache, origin: &str) -> Result<Collector, KernelError> {
        let dir = tempfile::Builder::new()
            .prefix(&cache::temp_prefix("modules"))
            .tempdir_in(cache.tmp_dir())
            .map_err(|err| {
                KernelError::cache("create a temp directory in", cache.tmp_dir(), err)
            })?;
        let files = dir.path().join("files");
        fs::create_dir(&files).map_err(|err| KernelError::cache("create", files, err))?;
        Ok(Collector {
            origin: origin.to_owned(),
            dir,
            releases: BTreeSet::new(),
            builtin: None,
            modules: BTreeMap::new(),
        })
    }

    /// Whether the entry `path` belongs to a module tree.
    pub(crate) fn wants(path: &str) -> bool {
        classify(path).is_some()
    }

    /// Take an entry that [`Collector::wants`]; `named` names it in errors.
    pub(crate) fn offer(
        &mut self,
        path: &str,
        named: &str,
        regular: bool,
        data: &mut impl Read,
    ) -> Result<(), KernelError> {
        let Some((release, below, kind)) = classify(path) else {
            return Ok(());
        };
        if !regular {
            return Ok(()); // Symlinks (build/, source/) and directories.
        }
        let read_err = |err| KernelError::PackageRead {
            origin: self.origin.clone(),
            entry: named.to_owned(),
            err,
        };
        match kind {
            ModuleFile::Builtin => {
                let mut text = String::new();
                data.take(16 << 20)
                    .read_to_string(&mut text)
                    .map_err(read_err)?;
                let names = text.lines().filter(|l| !l.is_empty()).map(name_from_path);
                self.builtin.get_or_insert_with(Vec::new).extend(names);
            }
            // Only says in which order depmod found them; not needed.
            ModuleFile::Order => {}
            ModuleFile::Module(compression) => {
                let entry = self.store_module(&below, compression, data, named)?;
                self.releases.insert(release);
                // A later layer of an image replaces a module of an earlier one.
                self.modules.insert(entry.name.clone(), entry);
            }
        }
        Ok(())
    }

    /// Writes the module as it is into `files/`, and indexes its content.
    fn store_module(
        &self,
        below: &str,
        compression: Compression,
        data: &mut impl Read,
        named: &str,
    ) -> Result<ModuleEntry, KernelError> {
        let read_err = |err| KernelError::PackageRead {
            origin: self.origin.clone(),
            entry: named.to_owned(),
            err,
        };
        let mut raw = Vec::new();
        data.take(MAX_MODULE_BYTES + 1)
            .read_to_end(&mut raw)
            .map_err(read_err)?;
        if raw.len() as u64 > MAX_MODULE_BYTES {
            return Err(KernelError::ModuleTooLarge {
                origin: self.origin.clone(),
                entry: named.to_owned(),
                limit: MAX_MODULE_BYTES,
            });
        }
        let sha256 = sha256_hex(&raw);
        let path = self.dir.path().join("files").join(&sha256);
        if !path.exists() {
            fs::write(&path, &raw).map_err(|err| KernelError::cache("write", path.clone(), err))?;
        }
        let facts = decompress(compression, &raw).and_then(|elf| index_elf(&elf));
        let fallback = name_from_path(below);
        Ok(match facts {
            Ok(facts) => ModuleEntry {
                name: facts.name.unwrap_or(fallback),
                path: below.to_owned(),
                sha256,
                depends: facts.depends,
                vermagic: facts.vermagic,
                functions: facts.functions,
                unreadable: None,
            },
            Err(why) => ModuleEntry {
                name: fallback,
                path: below.to_owned(),
                sha256,
                depends: Vec::new(),
                vermagic: None,
                functions: Vec::new(),
                unreadable: Some(why),
            },
        })
    }

    /// The collected tree, or `None` when the container held no module.
    pub(crate) fn finish(self) -> Option<Collected> {
        if self.modules.is_empty() {
            return None;
        }
        Some(Collected {
            dir: self.dir,
            index: TreeIndex {
                version: INDEX_VERSION,
                releases: self.releases.into_iter().collect(),
                builtin: self.builtin.map(|mut b| {
                    b.sort();
                    b.dedup();
                    b
                }),
                modules: self.modules.into_values().collect(),
            },
        })
    }
}

/// A module tree taken out of a container: still in `tmp/`.
pub(crate) struct Collected {
    dir: TempDir,
    index: TreeIndex,
}

/// Move a collected tree into the cache; returns its id. The caller holds
/// the lock of the source it came from.
pub(crate) fn store(cache: &KernelCache, collected: Collected) -> Result<String, KernelError> {
    let mut json = serde_json::to_vec_pretty(&collected.index).expect("an index serialises");
    json.push(b'\n');
    let id = sha256_hex(&json);
    let index = collected.dir.path().join("index.json");
    fs::write(&index, &json).map_err(|err| KernelError::cache("write", index, err))?;
    let _lock = cache.lock(&id)?;
    if ModuleTree::open(cache, &id)?.is_some() {
        return Ok(id); // Another package gave the same tree; ours is dropped.
    }
    let target = tree_dir(cache, &id);
    fs::create_dir_all(modules_dir(cache))
        .map_err(|err| KernelError::cache("create directory", modules_dir(cache), err))?;
    let tmp = collected.dir.keep();
    fs::rename(&tmp, &target).map_err(|err| {
        let _ = fs::remove_dir_all(&tmp);
        KernelError::cache("move a module tree into", target.clone(), err)
    })?;
    Ok(id)
}

pub(crate) fn modules_dir(cache: &KernelCache) -> PathBuf {
    cache.root().join("modules")
}

fn tree_dir(cache: &KernelCache, id: &str) -> PathBuf {
    modules_dir(cache).join(id)
}

/// The ids of every tree in the cache.
pub(crate) fn tree_ids(cache: &KernelCache) -> Result<Vec<String>, KernelError> {
    let dir = modules_dir(cache);
    match fs::read_dir(&dir) {
        Ok(entries) => Ok(entries
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| is_digest(n))
            .collect()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(err) => Err(KernelError::cache("read", dir, err)),
    }
}

/// Remove the tree `id`. The caller holds its lock.
pub(crate) fn remove_tree(cache: &KernelCache, id: &str) -> Result<u64, KernelError> {
    let dir = tree_dir(cache, id);
    let size = dir_size(&dir);
    match fs::remove_dir_all(&dir) {
        Ok(()) => Ok(size),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(0),
        Err(err) => Err(KernelError::cache("remove", dir, err)),
    }
}

fn dir_size(dir: &Path) -> u64 {
    fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| match e.file_type() {
                    Ok(t) if t.is_dir() => dir_size(&e.path()),
                    _ => e.metadata().map(|m| m.len()).unwrap_or(0),
                })
                .sum()
        })
        .unwrap_or(0)
}

/// A module tree in the cache whose index was verified when it was opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleTree {
    pub id: String,
    dir: PathBuf,
    pub index: TreeIndex,
}

impl ModuleTree {
    /// The tree `id` if it is in the cache and its index intact; a corrupt
    /// one is removed (the caller extracts it again). Call with its lock held
    /// or on a tree that is only ever replaced whole.
    pub(crate) fn open(cache: &KernelCache, id: &str) -> Result<Option<ModuleTree>, KernelError> {
        let dir = tree_dir(cache, id);
        let path = dir.join("index.json");
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(KernelError::cache("read", path, err)),
        };
        let index = (sha256_hex(&bytes) == id)
            .then(|| serde_json::from_slice::<TreeIndex>(&bytes).ok())
            .flatten()
            .filter(|i| i.version == INDEX_VERSION);
        match index {
            Some(index) => Ok(Some(ModuleTree {
                id: id.to_owned(),
                dir,
                index,
            })),
            None => {
                remove_tree(cache, id)?;
                Ok(None)
            }
        }
    }

    /// Every module file is still what the index says; the corrupt ones.
    pub(crate) fn corrupt_files(&self) -> Vec<String> {
        self.index
            .modules
            .iter()
            .filter(|m| {
                File::open(self.file(m))
                    .and_then(super::hash::hash_reader)
                    .map_or(true, |d| d != m.sha256)
            })
            .map(|m| m.path.clone())
            .collect()
    }

    fn file(&self, module: &ModuleEntry) -> PathBuf {
        self.dir.join("files").join(&module.sha256)
    }

    /// The module's ELF object, decompressed, after checking that the file
    /// is what the index says.
    pub fn read(&self, module: &ModuleEntry) -> Result<Vec<u8>, String> {
        let path = self.file(module);
        let raw = fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        if sha256_hex(&raw) != module.sha256 {
            return Err(format!(
                "{} in the kernel cache is corrupt (its sha256 changed); run `bpfcompat kernels verify` and then the check again",
                path.display()
            ));
        }
        decompress(Compression::sniff(&raw), &raw)
    }

    /// Which modules to load, in load order, for what a check wants.
    pub fn plan(&self, wants: &[Want]) -> LoadPlan {
        self.index.plan(wants)
    }
}

/// What a check wants from the module tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Want {
    /// This module, by name (for an attach type, or asked for by the user).
    Module { name: String, why: String },
    /// Whichever module defines this function (a kprobe or fentry target, a
    /// kfunc), if one does; a function no module defines is the kernel's.
    Function { name: String, why: String },
}

/// The modules to load, and what was wanted but is not in the tree.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadPlan {
    /// In load order: each module after its dependencies.
    pub load: Vec<(ModuleEntry, String)>,
    /// Wanted modules that `modules.builtin` lists: nothing to load.
    pub builtin: Vec<(String, String)>,
    /// Wanted modules the tree does not have (name, why).
    pub missing: Vec<(String, String)>,
}

impl TreeIndex {
    pub fn plan(&self, wants: &[Want]) -> LoadPlan {
        let by_name: HashMap<&str, &ModuleEntry> =
            self.modules.iter().map(|m| (m.name.as_str(), m)).collect();
        let builtin: BTreeSet<&str> = self.builtin.iter().flatten().map(String::as_str).collect();
        let mut plan = LoadPlan::default();
        let mut roots: Vec<(&ModuleEntry, String)> = Vec::new();
        for want in wants {
            match want {
                Want::Module { name, why } => {
                    let name = normalise_name(name);
                    match by_name.get(name.as_str()) {
                        Some(m) => roots.push((m, why.clone())),
                        None if builtin.contains(name.as_str()) => {
                            plan.builtin.push((name, why.clone()))
                        }
                        None => plan.missing.push((name, why.clone())),
                    }
                }
                Want::Function { name, why } => {
                    if EVERY_MODULE.contains(&name.as_str()) {
                        continue;
                    }
                    // The first (by name) of the modules defining it.
                    if let Some(m) = self
                        .modules
                        .iter()
                        .find(|m| m.functions.binary_search(name).is_ok())
                    {
                        roots.push((m, format!("defines {name} ({why})")));
                    }
                }
            }
        }
        let mut placed: BTreeSet<String> = BTreeSet::new();
        for (module, why) in roots {
            place(module, why, &by_name, &builtin, &mut placed, &mut plan, 0);
        }
        plan
    }
}

/// Adds `module` after its dependencies (depth-first; a dependency cycle,
/// which the kernel would refuse too, is cut).
fn place(
    module: &ModuleEntry,
    why: String,
    by_name: &HashMap<&str, &ModuleEntry>,
    builtin: &BTreeSet<&str>,
    placed: &mut BTreeSet<String>,
    plan: &mut LoadPlan,
    depth: usize,
) {
    if depth > 64 || !placed.insert(module.name.clone()) {
        return;
    }
    for dep in &module.depends {
        match by_name.get(dep.as_str()) {
            Some(d) => place(
                d,
                format!("needed by {}", module.name),
                by_name,
                builtin,
                placed,
                plan,
                depth + 1,
            ),
            None if builtin.contains(dep.as_str()) => {}
            None => plan
                .missing
                .push((dep.clone(), format!("needed by {}", module.name))),
        }
    }
    plan.load.push((module.clone(), why));
}

fn decompress(compression: Compression, raw: &[u8]) -> Result<Vec<u8>, String> {
    if matches!(compression, Compression::None) {
        return Ok(raw.to_vec());
    }
    let mut out = Vec::new();
    decompressor(compression, raw)
        .and_then(|d| d.take(MAX_MODULE_BYTES + 1).read_to_end(&mut out))
        .map_err(|e| format!("cannot decompress it: {e}"))?;
    if out.len() as u64 > MAX_MODULE_BYTES {
        return Err(format!(
            "it decompresses to more than {MAX_MODULE_BYTES} bytes"
        ));
    }
    Ok(out)
}

/// What a module's ELF says about it.
struct ElfFacts {
    name: Option<String>,
    depends: Vec<String>,
    vermagic: Option<String>,
    functions: Vec<String>,
}

fn index_elf(bytes: &[u8]) -> Result<ElfFacts, String> {
    use object::{Object, ObjectSection, ObjectSymbol, SymbolKind};
    let file = object::File::parse(bytes).map_err(|e| format!("not an ELF module: {e}"))?;
    let modinfo = file
        .section_by_name(".modinfo")
        .ok_or("no .modinfo section: not a kernel module")?
        .data()
        .map_err(|e| format!("unreadable .modinfo: {e}"))?;
    let mut facts = ElfFacts {
        name: None,
        depends: Vec::new(),
        vermagic: None,
        functions: Vec::new(),
    };
    for field in modinfo.split(|&b| b == 0).filter(|f| !f.is_empty()) {
        let field = String::from_utf8_lossy(field);
        let Some((key, value)) = field.split_once('=') else {
            continue;
        };
        match key {
            "name" => facts.name = Some(normalise_name(value)),
            "vermagic" => facts.vermagic = Some(value.trim().to_owned()),
            "depends" => {
                facts.depends = value
                    .split(',')
                    .filter(|d| !d.trim().is_empty())
                    .map(normalise_name)
                    .collect()
            }
            _ => {}
        }
    }
    let mut functions: Vec<String> = file
        .symbols()
        .filter(|s| s.kind() == SymbolKind::Text && s.is_definition())
        .filter_map(|s| s.name().ok())
        .filter(|n| {
            !n.is_empty()
                && !n.contains('.')
                && !n.starts_with("__pfx_")
                && !n.starts_with("__cfi_")
        })
        .map(str::to_owned)
        .collect();
    functions.sort();
    functions.dedup();
    facts.functions = functions;
    Ok(facts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_paths_are_recognised() {
        let (release, below, kind) =
            classify("./lib/modules/6.1.0-47-cloud-amd64/kernel/net/sched/cls_bpf.ko").unwrap();
        assert_eq!(release, "6.1.0-47-cloud-amd64");
        assert_eq!(below, "kernel/net/sched/cls_bpf.ko");
        assert!(matches!(kind, ModuleFile::Module(Compression::None)));
        let (_, _, kind) =
            classify("usr/lib/modules/7.2.13+deb14-cloud-amd64/kernel/fs/xfs/xfs.ko.xz").unwrap();
        assert!(matches!(kind, ModuleFile::Module(Compression::Xz)));
        assert!(matches!(
            classify("lib/modules/6.1/modules.builtin").unwrap().2,
            ModuleFile::Builtin
        ));
        for no in [
            "lib/modules/6.1/vmlinuz",
            "lib/modules/6.1/modules.dep",
            "boot/vmlinuz-6.1",
            "usr/share/doc/x.ko",
            "lib/modules/6.1/kernel/x.ko.bz2",
            "lib/modules/6.1/kernel/sub/modules.builtin",
        ] {
            assert!(classify(no).is_none(), "{no}");
        }
        assert_eq!(
            name_from_path("kernel/net/nf-conntrack.ko.zst"),
            "nf_conntrack"
        );
    }

    fn entry(name: &str, depends: &[&str], functions: &[&str]) -> ModuleEntry {
        ModuleEntry {
            name: name.into(),
            path: format!("kernel/{name}.ko"),
            sha256: "0".repeat(64),
            depends: depends.iter().map(|d| d.to_string()).collect(),
            vermagic: None,
            functions: functions.iter().map(|f| f.to_string()).collect(),
            unreadable: None,
        }
    }

    #[test]
    fn the_closure_puts_dependencies_first_and_names_what_is_missing() {
        let index = TreeIndex {
            version: INDEX_VERSION,
            releases: vec!["6.1".into()],
            builtin: Some(vec!["sch_ingress".into(), "crc32c".into()]),
            modules: vec![
                entry("cls_bpf", &[], &["cls_bpf_classify"]),
                entry("libcrc32c", &["crc32c"], &["crc32c"]),
                entry(
                    "nf_conntrack",
                    &["nf_defrag_ipv4", "libcrc32c", "gone"],
                    &["init_module", "nf_conntrack_in"],
                ),
                entry("nf_defrag_ipv4", &[], &["init_module"]),
            ],
        };
        let want = |name: &str| Want::Module {
            name: name.into(),
            why: "tc".into(),
        };
        let plan = index.plan(&[
            want("sch_ingress"),
            want("cls-bpf"),
            want("act_bpf"),
            Want::Function {
                name: "nf_conntrack_in".into(),
                why: "kprobe/nf_conntrack_in".into(),
            },
            Want::Function {
                name: "vfs_read".into(),
                why: "kprobe/vfs_read".into(),
            },
            Want::Function {
                name: "init_module".into(),
                why: "kprobe/init_module".into(),
            },
        ]);
        let order: Vec<(&str, &str)> = plan
            .load
            .iter()
            .map(|(m, why)| (m.name.as_str(), why.as_str()))
            .collect();
        assert_eq!(
            order,
            [
                ("cls_bpf", "tc"),
                ("nf_defrag_ipv4", "needed by nf_conntrack"),
                ("libcrc32c", "needed by nf_conntrack"),
                (
                    "nf_conntrack",
                    "defines nf_conntrack_in (kprobe/nf_conntrack_in)"
                ),
            ]
        );
        assert_eq!(plan.builtin, [("sch_ingress".to_owned(), "tc".to_owned())]);
        assert_eq!(
            plan.missing,
            [
                ("act_bpf".to_owned(), "tc".to_owned()),
                ("gone".to_owned(), "needed by nf_conntrack".to_owned())
            ]
        );
    }
}
