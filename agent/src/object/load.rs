//! Opening and loading an object with libbpf, whole (as a skeleton does) and
//! one program at a time (to name every culprit when the whole load fails).

use std::collections::BTreeSet;
use std::path::Path;

use bpfcompat_proto::object::{MapShape, Phase};
use libbpf_rs::{AsRawLibbpf, Object, ObjectBuilder, OpenObject};

use super::capture::{Capture, Output};
use super::contract::fixups::shape_of;
use super::contract::Prepare;

/// A program as the object declares it.
#[derive(Debug, Clone)]
pub struct ProgDecl {
    pub name: String,
    pub section: String,
    pub prog_type: u32,
    pub attach_type: u32,
    pub autoload: bool,
    /// Helper ids called (call insns with src_reg 0).
    pub helpers: Vec<u32>,
}

impl ProgDecl {
    pub fn is_struct_ops(&self) -> bool {
        self.prog_type == libbpf_sys::BPF_PROG_TYPE_STRUCT_OPS
    }
}

/// A map as the object declares it, with the loader contract applied.
#[derive(Debug, Clone)]
pub struct MapDecl {
    pub name: String,
    pub map_type: u32,
    /// Its sizes and flags; `inner_map` says whether it has an inner map
    /// definition (an inner map fd the contract hands it is not seen here).
    pub shape: MapShape,
    pub autocreate: bool,
}

impl MapDecl {
    pub fn is_struct_ops(&self) -> bool {
        self.map_type == libbpf_sys::BPF_MAP_TYPE_STRUCT_OPS
    }
}

/// The errno in a libbpf-rs error (it ends with `(os error N)`).
pub fn errno_of(e: &libbpf_rs::Error) -> Option<i32> {
    let text = format!("{e:#}");
    let i = text.rfind("(os error ")?;
    text[i + "(os error ".len()..]
        .trim_end_matches(')')
        .trim_end()
        .trim_end_matches(')')
        .parse()
        .ok()
}

pub fn open(path: &Path) -> Result<OpenObject, libbpf_rs::Error> {
    ObjectBuilder::default().open_file(path)
}

pub fn declarations(obj: &OpenObject) -> (Vec<ProgDecl>, Vec<MapDecl>) {
    let progs = obj
        .progs()
        .map(|p| {
            let raw = p.as_libbpf_object().as_ptr();
            let helpers: BTreeSet<u32> = p
                .insns()
                .iter()
                .filter(|i| i.code == 0x85 && i.src_reg() == 0)
                .map(|i| i.imm as u32)
                .collect();
            ProgDecl {
                name: p.name().to_string_lossy().into_owned(),
                section: p.section().to_string_lossy().into_owned(),
                prog_type: unsafe { libbpf_sys::bpf_program__type(raw) },
                attach_type: unsafe { libbpf_sys::bpf_program__expected_attach_type(raw) },
                autoload: p.autoload(),
                helpers: helpers.into_iter().collect(),
            }
        })
        .collect();
    let maps = obj
        .maps()
        .map(|m| {
            let shape = shape_of(m.as_libbpf_object().as_ptr());
            MapDecl {
                name: m.name().to_string_lossy().into_owned(),
                map_type: shape.map_type,
                shape,
                autocreate: m.autocreate(),
            }
        })
        .collect();
    (progs, maps)
}

/// libbpf loaded program `prog` (it has an fd).
pub fn is_loaded(obj: &Object, prog: &str) -> bool {
    prog_fd(obj, prog).is_some()
}

/// The fd of loaded program `prog`.
pub fn prog_fd(obj: &Object, prog: &str) -> Option<i32> {
    let p = obj.progs().find(|p| p.name() == prog)?;
    let fd = unsafe { libbpf_sys::bpf_program__fd(p.as_libbpf_object().as_ptr()) };
    (fd >= 0).then_some(fd)
}

/// `verified_insns` of a loaded program (kernels 5.16+; 0 before).
pub fn verified_insns(obj: &Object, prog: &str) -> Option<u64> {
    let fd = prog_fd(obj, prog)?;
    let mut info = libbpf_sys::bpf_prog_info::default();
    let mut len = std::mem::size_of::<libbpf_sys::bpf_prog_info>() as u32;
    let rc =
        unsafe { libbpf_sys::bpf_prog_get_info_by_fd(fd, &mut info as *mut _ as *mut _, &mut len) };
    (rc == 0 && info.verified_insns > 0).then_some(info.verified_insns as u64)
}

/// What a failed load names, besides the errno.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Culprit {
    Program(String),
    Map(String),
    Extern(String),
    Unnamed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailurePoint {
    pub phase: Phase,
    pub culprit: Culprit,
    /// The libbpf line it was read from.
    pub line: String,
}

/// The text between `prefix` and the next `'`: `map 'x': ...` -> `x`.
fn quoted_after<'a>(line: &'a str, prefix: &str) -> Option<&'a str> {
    let start = line.find(prefix)? + prefix.len();
    let len = line[start..].find('\'')?;
    Some(&line[start..start + len])
}

/// Where a failed `bpf_object__load` stopped, read from libbpf's warnings
/// (in order: the first specific line wins; the generic `failed to load`
/// lines only if nothing else says more).
pub fn failure_point(warn_lines: &[String]) -> Option<FailurePoint> {
    let mut fallback = None;
    for line in warn_lines {
        let l = line.as_str();
        let point = |phase, culprit| {
            Some(FailurePoint {
                phase,
                culprit,
                line: l.to_owned(),
            })
        };
        if l.contains("failed to create") {
            if let Some(m) = quoted_after(l, "map '") {
                return point(Phase::MapCreate, Culprit::Map(m.to_owned()));
            }
        }
        for pfx in [
            "extern (func ksym) '",
            "extern (var ksym) '",
            "extern (ksym) '",
            "extern (kcfg) '",
            "failed to find BTF for extern '",
            "failed to find extern definition for BTF var '",
        ] {
            if let Some(name) = quoted_after(l, pfx) {
                return point(Phase::Extern, Culprit::Extern(name.to_owned()));
            }
        }
        // libbpf's first bpf() call (a trivial program) was refused: no BPF
        // at all for this loader (EPERM: privileges, lockdown).
        if l.contains("Couldn't load trivial BPF program") {
            return point(Phase::ProgramLoad, Culprit::Unnamed);
        }
        if l.starts_with("struct_ops init_kern") {
            return point(Phase::StructOps, Culprit::Unnamed);
        }
        if l.contains("Error loading vmlinux BTF") || l.contains("failed to find valid kernel BTF")
        {
            return point(Phase::KernelBtf, Culprit::Unnamed);
        }
        if let Some(p) = quoted_after(l, "prog '") {
            let prog = Culprit::Program(p.to_owned());
            if l.contains(": relo #") {
                return point(Phase::CoreRelocation, prog);
            }
            if l.contains("failed to find kernel BTF type ID") {
                return point(Phase::AttachTarget, prog);
            }
            if l.contains("BPF program load failed") {
                return point(Phase::ProgramLoad, prog);
            }
            if fallback.is_none() && l.contains("failed") {
                fallback = point(Phase::ProgramLoad, prog);
            }
            continue;
        }
        if l.contains("failed to perform CO-RE relocations") {
            return point(Phase::CoreRelocation, Culprit::Unnamed);
        }
    }
    fallback
}

/// One `bpf_object__load` attempt.
pub struct LoadAttempt {
    pub object: Option<Object>,
    pub errno: Option<i32>,
    pub error: Option<String>,
    pub output: Output,
    pub point: Option<FailurePoint>,
}

impl LoadAttempt {
    /// Where a failed load stopped: what libbpf's lines say, else a program
    /// load that names no culprit.
    pub fn stopped_at(&self) -> FailurePoint {
        self.point.clone().unwrap_or_else(|| FailurePoint {
            phase: Phase::ProgramLoad,
            culprit: Culprit::Unnamed,
            line: self.error.clone().unwrap_or_default(),
        })
    }
}

/// Opens `path` afresh, applies the loader contract's `prepare`, and loads
/// it with only the programs in `only` autoloaded (all of the object's
/// choices if `None`) and the maps in `no_create` not created.
pub fn load(
    path: &Path,
    prepare: &Prepare,
    only: Option<&BTreeSet<String>>,
    no_create: &BTreeSet<String>,
) -> LoadAttempt {
    let cap = Capture::start();
    let not_opened = |errno, error: String, cap: Capture| LoadAttempt {
        object: None,
        errno,
        output: cap.take(),
        point: Some(FailurePoint {
            phase: Phase::Open,
            culprit: Culprit::Unnamed,
            line: error.clone(),
        }),
        error: Some(error),
    };
    let mut obj = match open(path) {
        Ok(o) => o,
        Err(e) => return not_opened(errno_of(&e), format!("{e:#}"), cap),
    };
    if let Err(e) = prepare.apply(&mut obj) {
        return not_opened(None, e, cap);
    }
    if let Some(only) = only {
        for mut p in obj.progs_mut() {
            let keep = only.contains(p.name().to_string_lossy().as_ref());
            p.set_autoload(keep);
        }
    }
    for mut m in obj.maps_mut() {
        if no_create.contains(m.name().to_string_lossy().as_ref()) {
            let _ = m.set_autocreate(false);
        }
    }
    match obj.load() {
        Ok(o) => LoadAttempt {
            object: Some(o),
            errno: None,
            error: None,
            output: cap.take(),
            point: None,
        },
        Err(e) => {
            let output = cap.take();
            let point = failure_point(&output.warn_lines());
            LoadAttempt {
                object: None,
                errno: errno_of(&e),
                error: Some(format!("{e:#}")),
                output,
                point,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(s: &[&str]) -> Vec<String> {
        s.iter().map(|l| l.to_string()).collect()
    }

    #[test]
    fn map_failure() {
        let p = failure_point(&lines(&[
            "Error in bpf_create_map_xattr(arena): Invalid argument. Retrying without BTF.",
            "map 'arena': failed to create: -EINVAL",
            "failed to load object 'arena.bpf.o'",
        ]))
        .unwrap();
        assert_eq!(p.phase, Phase::MapCreate);
        assert_eq!(p.culprit, Culprit::Map("arena".into()));
    }

    #[test]
    fn extern_failure() {
        let p = failure_point(&lines(&[
            "extern (func ksym) 'bpf_iter_num_new': not found in kernel or module BTFs",
            "failed to load object 'iter_num'",
        ]))
        .unwrap();
        assert_eq!(p.phase, Phase::Extern);
        assert_eq!(p.culprit, Culprit::Extern("bpf_iter_num_new".into()));
    }

    #[test]
    fn program_failures() {
        let p = failure_point(&lines(&[
            "prog 'null_deref': BPF program load failed: -EACCES",
            "prog 'null_deref': [verifier log: 300 bytes]",
            "prog 'null_deref': failed to load: -EACCES",
        ]))
        .unwrap();
        assert_eq!(p.phase, Phase::ProgramLoad);
        assert_eq!(p.culprit, Culprit::Program("null_deref".into()));
        let p = failure_point(&lines(&[
            "prog 'f': failed to find kernel BTF type ID of 'nope': -ESRCH",
            "prog 'f': failed to prepare load attributes: -ESRCH",
            "prog 'f': failed to load: -ESRCH",
        ]))
        .unwrap();
        assert_eq!(p.phase, Phase::AttachTarget);
        let p = failure_point(&lines(&["prog 'g': failed to load: -EINVAL"])).unwrap();
        assert_eq!(p.phase, Phase::ProgramLoad);
        assert_eq!(p.culprit, Culprit::Program("g".into()));
        let p = failure_point(&lines(&[
            "Error loading vmlinux BTF: -ESRCH",
            "failed to load object 'x'",
        ]))
        .unwrap();
        assert_eq!(p.phase, Phase::KernelBtf);
        assert!(failure_point(&lines(&["failed to load object 'x'"])).is_none());
    }

    #[test]
    fn errno_from_error_text() {
        let e = libbpf_rs::Error::from_raw_os_error(13);
        assert_eq!(errno_of(&e), Some(13));
    }
}
