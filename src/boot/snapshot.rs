//! Saved guests: a kernel booted in wait mode, its agent set up and waiting
//! for a job, saved by QEMU (`migrate file:`) so later checks restore it
//! instead of booting.
//!
//! Layout in the kernel cache (see docs/snapshots.md):
//!
//! ```text
//! snapshots/<slot>/<key>.json     the key the state was saved under
//! snapshots/<slot>/<key>.vmstate  QEMU's saved state
//! ```
//!
//! The slot is what the matrix decides (kernel, kind of check, memory,
//! CPUs, command line), so two matrices do not evict each other's
//! snapshots; the key adds what the host decides (initramfs, QEMU, the
//! accelerator, the CPU). A snapshot whose key file differs from the key
//! wanted now is stale and replaced in its slot. Files are written in the
//! cache's `tmp/` and renamed into place under the slot's lock, the state
//! before its key, so a reader sees whole snapshots or none.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::kernel::{KernelCache, KernelError};
use crate::report::Accel;

const DIR: &str = "snapshots";

/// Everything that makes a saved guest valid for a restore.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotKey {
    pub kernel_sha256: String,
    /// `command` or `objects`: they boot different initramfs bases.
    pub kind: String,
    /// The wait-mode initramfs: the agent, the shells, the host's bpftool.
    pub initramfs_sha256: String,
    pub qemu_version: String,
    pub accel: Accel,
    /// `-cpu max` under TCG; under KVM the host CPU's model and flags.
    pub cpu: String,
    pub memory_mb: u32,
    pub cpus: u32,
    pub cmdline: String,
}

impl SnapshotKey {
    fn slot(&self) -> String {
        let decided = format!(
            "{} {} {} {}",
            self.kind, self.memory_mb, self.cpus, self.cmdline
        );
        format!(
            "{}-{}",
            &self.kernel_sha256[..16.min(self.kernel_sha256.len())],
            &digest(decided.as_bytes())[..12]
        )
    }

    fn name(&self) -> String {
        digest(&serde_json::to_vec(self).expect("a key serialises"))[..16].to_owned()
    }

    /// What differs from `old`, for the message saying it is replaced.
    fn changes_from(&self, old: &Value) -> String {
        let new = serde_json::to_value(self).expect("a key serialises");
        let fields: Vec<String> = new
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(field, value)| old.get(field.as_str()) != Some(value))
            .map(|(field, value)| {
                let was = old.get(field.as_str()).unwrap_or(&Value::Null);
                format!("{field} {was} (now {value})")
            })
            .collect();
        fields.join(", ")
    }
}

/// The CPU a guest sees: what a saved state depends on beyond QEMU.
pub fn cpu_of(accel: Accel) -> String {
    match accel {
        Accel::Tcg => "max".to_owned(),
        Accel::Kvm => {
            let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
            let field = |name: &str| {
                info.lines()
                    .find(|l| l.starts_with(name))
                    .and_then(|l| l.split_once(':'))
                    .map_or("", |(_, v)| v.trim())
                    .to_owned()
            };
            format!(
                "host: {} (flags {})",
                field("model name"),
                &digest(field("flags").as_bytes())[..16]
            )
        }
    }
}

fn digest(bytes: &[u8]) -> String {
    bpfcompat_proto::job::digest(bytes)
}

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error(transparent)]
    Cache(#[from] KernelError),
    #[error(
        "cannot {action} {}: {err}; remove the snapshots with `bpfcompat kernels prune`, \
         or run with --snapshots off",
        path.display()
    )]
    Io {
        action: &'static str,
        path: PathBuf,
        err: std::io::Error,
    },
}

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> SnapshotError {
    let path = path.to_owned();
    move |err| SnapshotError::Io { action, path, err }
}

/// What the cache holds for a key.
#[derive(Debug, PartialEq, Eq)]
pub enum Lookup {
    /// A snapshot made under this very key.
    Ready(PathBuf),
    /// None for this slot.
    Missing,
    /// One made under another key; what differs.
    Stale(String),
}

/// One snapshot in the cache, for `kernels list`.
#[derive(Debug, Clone)]
pub struct SnapshotInfo {
    pub slot: String,
    pub key: Option<SnapshotKey>,
    pub bytes: u64,
}

#[derive(Debug, Clone)]
pub struct Snapshots {
    cache: KernelCache,
}

#[must_use = "the slot is unlocked when this is dropped"]
pub struct SlotLock {
    _lock: crate::kernel::DigestLock,
}

impl Snapshots {
    pub fn new(cache: KernelCache) -> Snapshots {
        Snapshots { cache }
    }

    fn dir(&self) -> PathBuf {
        self.cache.root().join(DIR)
    }

    fn files(&self, key: &SnapshotKey) -> (PathBuf, PathBuf) {
        let slot = self.dir().join(key.slot());
        let name = key.name();
        (
            slot.join(format!("{name}.json")),
            slot.join(format!("{name}.vmstate")),
        )
    }

    pub fn lookup(&self, key: &SnapshotKey) -> Lookup {
        let (json, state) = self.files(key);
        let read = |path: &Path| -> Option<Value> {
            serde_json::from_slice(&std::fs::read(path).ok()?).ok()
        };
        if let Some(old) = read(&json) {
            let changes = key.changes_from(&old);
            return match state.is_file() && changes.is_empty() {
                true => Lookup::Ready(state),
                false if changes.is_empty() => Lookup::Missing,
                false => Lookup::Stale(changes),
            };
        }
        let others = std::fs::read_dir(self.dir().join(key.slot()))
            .into_iter()
            .flatten();
        let stale = others
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .find_map(|p| read(&p));
        stale.map_or(Lookup::Missing, |old| Lookup::Stale(key.changes_from(&old)))
    }

    /// Blocks until this process may make the snapshot of `key`'s slot.
    pub fn lock(&self, key: &SnapshotKey) -> Result<SlotLock, SnapshotError> {
        self.cache.prepare()?;
        Ok(SlotLock {
            _lock: self.cache.lock(&format!("snapshot-{}", key.slot()))?,
        })
    }

    /// Where QEMU saves a new state: a temp file, deleted unless installed.
    pub fn temp_file(&self) -> Result<tempfile::TempPath, SnapshotError> {
        let tmp = self.cache.tmp_dir();
        tempfile::Builder::new()
            .prefix(&crate::kernel::temp_prefix("snapshot"))
            .tempfile_in(&tmp)
            .map(|f| f.into_temp_path())
            .map_err(io("create a temp file in", &tmp))
    }

    /// Puts a saved state in place of whatever the slot held; its size.
    /// Call with the slot's lock held.
    pub fn install(
        &self,
        key: &SnapshotKey,
        state: tempfile::TempPath,
    ) -> Result<u64, SnapshotError> {
        let (json, target) = self.files(key);
        let slot = json.parent().expect("a slot directory").to_owned();
        let old: Vec<PathBuf> = std::fs::read_dir(&slot)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| *p != json && *p != target)
            .collect();
        std::fs::create_dir_all(&slot).map_err(io("create", &slot))?;
        let bytes = std::fs::metadata(&state).map_err(io("read", &state))?.len();
        state
            .persist(&target)
            .map_err(|e| io("rename into", &target)(e.error))?;
        let key_file = self.temp_file()?;
        let text = serde_json::to_vec_pretty(key).expect("a key serialises");
        std::fs::write(&key_file, text).map_err(io("write", &key_file))?;
        key_file
            .persist(&json)
            .map_err(|e| io("rename into", &json)(e.error))?;
        for path in old {
            let _ = std::fs::remove_file(path);
        }
        Ok(bytes)
    }

    /// Every snapshot, with its key when it can be read.
    pub fn list(&self) -> Vec<SnapshotInfo> {
        let mut out = Vec::new();
        for slot in std::fs::read_dir(self.dir())
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = slot.file_name().to_string_lossy().into_owned();
            for state in std::fs::read_dir(slot.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                let path = state.path();
                if path.extension().is_none_or(|x| x != "vmstate") {
                    continue;
                }
                let key = std::fs::read(path.with_extension("json"))
                    .ok()
                    .and_then(|t| serde_json::from_slice(&t).ok());
                let bytes = state.metadata().map_or(0, |m| m.len());
                out.push(SnapshotInfo {
                    slot: name.clone(),
                    key,
                    bytes,
                });
            }
        }
        out.sort_by(|a, b| a.slot.cmp(&b.slot));
        out
    }

    /// Removes the snapshots `doomed` picks, each under its slot's lock;
    /// what was removed.
    pub fn prune(
        &self,
        doomed: impl Fn(&SnapshotInfo) -> bool,
    ) -> Result<Vec<SnapshotInfo>, SnapshotError> {
        let all: Vec<SnapshotInfo> = self.list().into_iter().filter(doomed).collect();
        for info in &all {
            let _lock = self.cache.lock(&format!("snapshot-{}", info.slot))?;
            let slot = self.dir().join(&info.slot);
            std::fs::remove_dir_all(&slot).map_err(io("remove", &slot))?;
        }
        Ok(all)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SnapshotKey {
        SnapshotKey {
            kernel_sha256: "ab".repeat(32),
            kind: "command".into(),
            initramfs_sha256: "cd".repeat(32),
            qemu_version: "QEMU emulator version 10.0.2".into(),
            accel: Accel::Tcg,
            cpu: cpu_of(Accel::Tcg),
            memory_mb: 512,
            cpus: 1,
            cmdline: "console=ttyS0 bpfcompat.wait".into(),
        }
    }

    fn saved(store: &Snapshots, key: &SnapshotKey, content: &[u8]) -> u64 {
        let _lock = store.lock(key).unwrap();
        let tmp = store.temp_file().unwrap();
        std::fs::write(&tmp, content).unwrap();
        store.install(key, tmp).unwrap()
    }

    #[test]
    fn a_snapshot_is_found_by_its_whole_key_and_replaced_when_stale() {
        let dir = tempfile::tempdir().unwrap();
        let store = Snapshots::new(KernelCache::new(dir.path().to_owned()));
        let key = key();
        assert_eq!(store.lookup(&key), Lookup::Missing);
        assert_eq!(saved(&store, &key, b"state"), 5);
        let Lookup::Ready(path) = store.lookup(&key) else {
            panic!("no snapshot after install");
        };
        assert_eq!(std::fs::read(&path).unwrap(), b"state");

        let mut newer = key.clone();
        newer.qemu_version = "QEMU emulator version 10.1.0".into();
        let Lookup::Stale(why) = store.lookup(&newer) else {
            panic!("another QEMU must not restore this snapshot");
        };
        assert!(why.contains("10.0.2") && why.contains("10.1.0"), "{why}");
        saved(&store, &newer, b"newer state");
        assert!(matches!(store.lookup(&key), Lookup::Stale(_)));
        let listed = store.list();
        assert_eq!(listed.len(), 1, "the stale one was replaced: {listed:?}");
        assert_eq!(listed[0].bytes, 11);
        assert_eq!(listed[0].key.as_ref(), Some(&newer));

        let mut bigger = key.clone();
        bigger.memory_mb = 1024;
        assert_eq!(store.lookup(&bigger), Lookup::Missing, "another slot");
        assert_eq!(store.prune(|_| true).unwrap().len(), 1);
        assert!(store.list().is_empty());
        let tmp = dir.path().join("tmp");
        assert_eq!(
            std::fs::read_dir(tmp).unwrap().count(),
            0,
            "no temp file left"
        );
    }

    #[test]
    fn a_forged_key_file_is_stale() {
        let dir = tempfile::tempdir().unwrap();
        let store = Snapshots::new(KernelCache::new(dir.path().to_owned()));
        let key = key();
        saved(&store, &key, b"state");
        let (json, _) = store.files(&key);
        let text = std::fs::read_to_string(&json).unwrap();
        std::fs::write(
            &json,
            text.replace("\"memory_mb\": 512", "\"memory_mb\": 256"),
        )
        .unwrap();
        let Lookup::Stale(why) = store.lookup(&key) else {
            panic!("a forged key must not restore");
        };
        assert_eq!(why, "memory_mb 256 (now 512)");
    }
}
