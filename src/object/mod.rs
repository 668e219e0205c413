//! Static inspection of a `.bpf.o` on the host, before any kernel boots.
//!
//! [`inspect`] rejects what no kernel could load (not ELF, another machine's
//! ELF, truncated, empty, absurdly large, no programs) with a message naming
//! the file, and otherwise summarises what the object asks of a kernel:
//! programs (section, expected program type, whether kernel BTF is needed),
//! maps (from the BTF `.maps` section), global variables (from the BTF of
//! `.rodata`, `.data` and `.bss`), helper ids, kfuncs and other externs,
//! CO-RE relocations, and a map lookup dereferenced unchecked on the path
//! every run takes (`nullcheck`).

mod btf;
mod core;
mod elf;

pub use elf::machine_name;
mod libbpf;
mod nullcheck;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};

use bpfcompat_proto::object::helper_name;
use object::{Object, ObjectSection};
use sha2::{Digest, Sha256};

use crate::report::inspection::{HelperUse, ObjectSummary, ProgramSummary};
pub use elf::without_dwarf;
use elf::{Externs, Malformed, Sections};
pub use libbpf::{
    map_type_id, map_type_name, prog_type_id, prog_type_names, section_attach_target,
    section_attach_type, section_prog_type, MAP_FLAGS,
};

/// Larger than any real BPF object by two orders of magnitude; rejected
/// from the file size alone, without reading it.
pub const MAX_OBJECT_BYTES: u64 = 64 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum InvalidObject {
    #[error("{path}: cannot read the BPF object: {err}")]
    Unreadable { path: PathBuf, err: std::io::Error },
    #[error("{path}: the file is empty, not a BPF object")]
    Empty { path: PathBuf },
    #[error("{path}: {size} bytes is too large for a BPF object (limit {limit} bytes); is this the right file?")]
    TooLarge {
        path: PathBuf,
        size: u64,
        limit: u64,
    },
    #[error("{path}: not an ELF file (it starts with {start:?}); pass the .bpf.o that clang -target bpf produced")]
    NotElf { path: PathBuf, start: String },
    #[error("{path}: an ELF file for {machine}, not for BPF; compile with clang -target bpf")]
    WrongMachine { path: PathBuf, machine: String },
    #[error("{path}: truncated or corrupt ELF: {why}")]
    Malformed { path: PathBuf, why: String },
    #[error("{path}: contains no BPF programs (no executable section besides .text); put programs in SEC(\"...\") sections")]
    NoPrograms { path: PathBuf },
}

/// Reads and summarises a BPF object, or says why no kernel could load it.
pub fn inspect(path: &Path) -> Result<ObjectSummary, InvalidObject> {
    let unreadable = |err| InvalidObject::Unreadable {
        path: path.to_owned(),
        err,
    };
    let file = std::fs::File::open(path).map_err(unreadable)?;
    let meta = file.metadata().map_err(unreadable)?;
    if meta.is_dir() {
        return Err(unreadable(std::io::Error::other("it is a directory")));
    }
    let size = meta.len();
    if size == 0 {
        return Err(InvalidObject::Empty {
            path: path.to_owned(),
        });
    }
    if size > MAX_OBJECT_BYTES {
        return Err(InvalidObject::TooLarge {
            path: path.to_owned(),
            size,
            limit: MAX_OBJECT_BYTES,
        });
    }
    let mut data = Vec::with_capacity(size as usize);
    file.take(MAX_OBJECT_BYTES + 1)
        .read_to_end(&mut data)
        .map_err(unreadable)?;
    inspect_bytes(path, &data)
}

/// [`inspect`] on bytes already read.
pub fn inspect_bytes(path: &Path, data: &[u8]) -> Result<ObjectSummary, InvalidObject> {
    let malformed = |why: String| InvalidObject::Malformed {
        path: path.to_owned(),
        why,
    };
    let no_programs = || InvalidObject::NoPrograms {
        path: path.to_owned(),
    };
    let little = elf::check_header(path, data)?;
    let file = object::File::parse(data).map_err(|e| malformed(e.to_string()))?;
    let mut sections = elf::scan_sections(&file, &malformed)?;
    if sections.programs.is_empty() {
        return Err(no_programs());
    }
    let mut externs = elf::scan_relocations(&file, &sections, &malformed)?;
    let mut users = Users::default();
    let programs = programs(
        &file,
        &mut sections,
        &externs,
        little,
        &mut users,
        &malformed,
    )?;
    if programs.is_empty() {
        return Err(no_programs());
    }
    subprogram_calls(&file, &sections, &externs, little, &mut users, &malformed)?;
    for k in &users.kfuncs {
        externs.vars.remove(k);
    }
    let mut warnings = std::mem::take(&mut sections.warnings);
    let facts = BtfFacts::read(&file, &sections, little, &mut warnings);
    let (maps, core_relocations) = (facts.maps, facts.core_count);
    let needs_kernel_btf = programs.iter().any(|p| p.needs_kernel_btf)
        || core_relocations > 0
        || !users.kfuncs.is_empty()
        || maps
            .iter()
            .any(|m| m.map_type == Some(libbpf::MAP_TYPE_STRUCT_OPS));
    Ok(ObjectSummary {
        path: path.to_owned(),
        size: data.len() as u64,
        sha256: hex::encode(Sha256::digest(data)),
        license: sections.license,
        programs,
        maps,
        globals: facts.globals,
        helpers: users.helper_uses(),
        kfuncs: users.kfuncs.into_iter().collect(),
        extern_vars: externs.vars.into_iter().collect(),
        btf: sections.btf.is_some(),
        core_relocations,
        core: facts.core,
        btf_kinds: facts.btf_kinds,
        needs_kernel_btf,
        warnings,
    })
}

/// What the object's `.BTF` and `.BTF.ext` say; what cannot be read is a
/// warning, and empty.
#[derive(Default)]
struct BtfFacts {
    maps: Vec<crate::report::inspection::MapSummary>,
    globals: Vec<crate::report::inspection::GlobalVar>,
    btf_kinds: Vec<String>,
    core_count: u64,
    core: Vec<crate::report::inspection::CoreRelocation>,
}

impl BtfFacts {
    fn read(
        file: &object::File<'_>,
        sections: &Sections,
        little: bool,
        warnings: &mut Vec<String>,
    ) -> BtfFacts {
        let Some(bytes) = &sections.btf else {
            return BtfFacts::default();
        };
        let btf = match crate::btf::Btf::parse(bytes, little) {
            Ok(btf) => btf,
            Err(why) => {
                warnings.push(format!(".BTF: {why}"));
                return BtfFacts::default();
            }
        };
        let mut facts = match (btf.maps(), btf.globals()) {
            (Ok(maps), Ok(mut globals)) => {
                elf::place_globals(file, &mut globals);
                BtfFacts {
                    maps,
                    globals,
                    ..BtfFacts::default()
                }
            }
            (Err(why), _) | (_, Err(why)) => {
                warnings.push(format!(".BTF: {why}"));
                BtfFacts::default()
            }
        };
        facts.btf_kinds = btf.newer_kinds();
        if let Some(ext) = &sections.btf_ext {
            match core::records(ext, &btf, little) {
                Ok(records) => {
                    facts.core_count = records.len() as u64;
                    facts.core = core_by_program(file, sections, records);
                }
                Err(why) => warnings.push(format!(".BTF.ext: {why}")),
            }
        }
        facts
    }
}

/// Each relocation once per program, the program found from where the
/// instruction it patches is; guards marked.
fn core_by_program(
    file: &object::File<'_>,
    sections: &Sections,
    records: Vec<core::Record>,
) -> Vec<crate::report::inspection::CoreRelocation> {
    let functions = elf::global_functions(file);
    let mut out: Vec<_> = records
        .into_iter()
        .map(|mut r| {
            let idx = sections
                .programs
                .iter()
                .find(|(_, n)| *n == r.section)
                .map(|(i, _)| *i);
            let off = u64::from(r.insn_off);
            r.relocation.program = functions
                .iter()
                .filter(|f| Some(f.section) == idx)
                .find(|f| f.address <= off && (off < f.address + f.size || f.size == 0))
                .map_or_else(|| r.section.clone(), |f| f.name.clone());
            r.relocation
        })
        .collect();
    core::mark_guarded(&mut out);
    out.sort();
    out.dedup();
    out
}

/// Who calls what, across the object.
#[derive(Default)]
struct Users {
    /// Helper id → the programs (or `.text`) calling it.
    helpers: BTreeMap<u32, BTreeSet<String>>,
    kfuncs: BTreeSet<String>,
}

impl Users {
    fn add(&mut self, user: &str, calls: &elf::Calls) {
        for h in &calls.helpers {
            self.helpers.entry(*h).or_default().insert(user.to_owned());
        }
        self.kfuncs.extend(calls.kfuncs.iter().cloned());
    }

    fn helper_uses(&self) -> Vec<HelperUse> {
        self.helpers
            .iter()
            .map(|(id, users)| HelperUse {
                id: *id,
                name: helper_name(*id).map(str::to_owned),
                programs: users.iter().cloned().collect(),
            })
            .collect()
    }
}

/// One summary per global function in each program section, as libbpf
/// finds programs.
fn programs(
    file: &object::File<'_>,
    sections: &mut Sections,
    externs: &Externs,
    little: bool,
    users: &mut Users,
    malformed: Malformed,
) -> Result<Vec<ProgramSummary>, InvalidObject> {
    let functions = elf::global_functions(file);
    let mut programs = Vec::new();
    for (idx, section) in &sections.programs {
        let code = file
            .section_by_index(*idx)
            .and_then(|s| s.data())
            .map_err(|e| malformed(e.to_string()))?;
        let mut funcs: Vec<_> = functions.iter().filter(|f| f.section == *idx).collect();
        funcs.sort_by_key(|f| f.address);
        if funcs.is_empty() {
            sections.warnings.push(format!(
                "section {section} has code but no global function symbol: libbpf will not find a program in it"
            ));
        }
        let (prog_type, needs_btf) = match section_prog_type(section) {
            Some((t, b)) => (Some(t.to_owned()), b),
            None => {
                sections.warnings.push(format!(
                    "section {section}: libbpf does not know this section name, so it cannot guess the program type"
                ));
                (None, false)
            }
        };
        for f in funcs {
            let end = if f.size > 0 {
                f.address + f.size
            } else {
                code.len() as u64
            };
            let calls = elf::calls(code, *idx, (f.address, end), little, externs);
            users.add(&f.name, &calls);
            let unchecked = nullcheck::first_unchecked(
                code,
                (f.address, end),
                little,
                |off| externs.defined_at(*idx, off),
                |off| externs.helper_call(*idx, off),
            );
            programs.push(ProgramSummary {
                name: f.name.clone(),
                section: section.clone(),
                attach_type: section_attach_type(section).map(str::to_owned),
                attach_target: section_attach_target(section),
                prog_type: prog_type.clone(),
                needs_kernel_btf: needs_btf,
                insns: (end - f.address) / 8,
                helpers: calls.helpers.into_iter().collect(),
                kfuncs: calls.kfuncs.into_iter().collect(),
                unchecked_lookup: unchecked,
            });
        }
    }
    Ok(programs)
}

/// Helpers and kfuncs called from subprograms (`.text`) count for the
/// object too.
fn subprogram_calls(
    file: &object::File<'_>,
    sections: &Sections,
    externs: &Externs,
    little: bool,
    users: &mut Users,
    malformed: Malformed,
) -> Result<(), InvalidObject> {
    for idx in &sections.subprograms {
        let code = file
            .section_by_index(*idx)
            .and_then(|s| s.data())
            .map_err(|e| malformed(e.to_string()))?;
        let calls = elf::calls(code, *idx, (0, code.len() as u64), little, externs);
        users.add(".text", &calls);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use std::sync::OnceLock;

    /// The compiled test corpus (tests/bpf/build.sh), or None without clang.
    fn corpus() -> Option<&'static Path> {
        static DIR: OnceLock<Option<PathBuf>> = OnceLock::new();
        DIR.get_or_init(|| {
            let root = Path::new(env!("CARGO_MANIFEST_DIR"));
            let out = root.join("target").join("bpf-corpus-test");
            let ok = std::process::Command::new("sh")
                .arg(root.join("tests/bpf/build.sh"))
                .arg(&out)
                .status()
                .is_ok_and(|s| s.success());
            ok.then_some(out)
        })
        .as_deref()
    }

    fn obj(name: &str) -> Option<ObjectSummary> {
        let Some(dir) = corpus() else {
            eprintln!("clang/libbpf-dev missing: skipping corpus-based check");
            return None;
        };
        Some(inspect(&dir.join(format!("{name}.bpf.o"))).unwrap())
    }

    #[test]
    fn rejects_non_objects_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.bpf.o");
        std::fs::write(&empty, b"").unwrap();
        let e = inspect(&empty).unwrap_err();
        assert!(matches!(e, InvalidObject::Empty { .. }));
        assert!(e.to_string().contains("empty.bpf.o"), "{e}");

        let text = dir.path().join("text.bpf.o");
        std::fs::write(&text, b"#include <bpf.h>\n").unwrap();
        let e = inspect(&text).unwrap_err();
        assert!(matches!(e, InvalidObject::NotElf { .. }), "{e}");
        assert!(e.to_string().contains("text.bpf.o"));

        let missing = dir.path().join("missing.bpf.o");
        let e = inspect(&missing).unwrap_err();
        assert!(matches!(e, InvalidObject::Unreadable { .. }));
        assert!(e.to_string().contains("missing.bpf.o"));
    }

    #[test]
    fn rejects_huge_files_without_reading_them() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big.bpf.o");
        let f = std::fs::File::create(&big).unwrap();
        f.set_len(200 * 1024 * 1024).unwrap(); // sparse: nothing written
        let started = std::time::Instant::now();
        let e = inspect(&big).unwrap_err();
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        assert!(matches!(e, InvalidObject::TooLarge { .. }), "{e}");
        assert!(e.to_string().contains("big.bpf.o"));
    }

    #[test]
    fn rejects_other_machines_elf() {
        // Any small host executable is an ELF for another machine than BPF.
        let e = inspect(Path::new("/bin/true")).unwrap_err();
        assert!(matches!(e, InvalidObject::WrongMachine { .. }), "{e}");
        assert!(
            e.to_string().contains("x86-64") || e.to_string().contains("AArch64"),
            "{e}"
        );
    }

    #[test]
    fn rejects_truncated_objects() {
        let Some(dir) = corpus() else { return };
        let whole = std::fs::read(dir.join("tracepoint.bpf.o")).unwrap();
        for cut in [10, 63, 64, 600, whole.len() / 2, whole.len() - 1] {
            let e = inspect_bytes(Path::new("cut.bpf.o"), &whole[..cut]).unwrap_err();
            assert!(
                matches!(
                    e,
                    InvalidObject::Malformed { .. } | InvalidObject::NoPrograms { .. }
                ),
                "cut at {cut}: {e}"
            );
            assert!(e.to_string().contains("cut.bpf.o"));
        }
    }

    #[test]
    fn rejects_objects_without_programs() {
        // An ELF with the BPF machine but no sections at all.
        let mut elf = vec![0u8; 64];
        elf[..4].copy_from_slice(b"\x7fELF");
        elf[4] = 2; // 64-bit
        elf[5] = 1; // little endian
        elf[6] = 1; // version
        elf[16] = 1; // ET_REL
        elf[18..20].copy_from_slice(&elf::EM_BPF.to_le_bytes());
        elf[20] = 1;
        elf[52] = 64; // e_ehsize
        elf[58] = 64; // e_shentsize
        let e = inspect_bytes(Path::new("none.bpf.o"), &elf).unwrap_err();
        assert!(matches!(e, InvalidObject::NoPrograms { .. }), "{e}");
    }

    #[test]
    fn section_names() {
        assert_eq!(
            section_prog_type("kprobe/vfs_read"),
            Some(("kprobe", false))
        );
        assert_eq!(
            section_prog_type("fentry/vfs_read"),
            Some(("tracing", true))
        );
        assert_eq!(
            section_prog_type("fentry.s/vfs_read"),
            Some(("tracing", true))
        );
        assert_eq!(
            section_prog_type("tp_btf/sched_switch"),
            Some(("tracing", true))
        );
        assert_eq!(section_prog_type("iter/task"), Some(("tracing", true)));
        assert_eq!(section_prog_type("lsm/file_open"), Some(("lsm", true)));
        assert_eq!(section_prog_type("xdp"), Some(("xdp", false)));
        assert_eq!(section_prog_type("tcx/ingress"), Some(("sched_cls", false)));
        assert_eq!(section_prog_type("tc"), Some(("sched_cls", false)));
        assert_eq!(
            section_prog_type("cgroup/connect4"),
            Some(("cgroup_sock_addr", false))
        );
        assert_eq!(
            section_prog_type("cgroup/sock_create"),
            Some(("cgroup_sock", false))
        );
        assert_eq!(
            section_prog_type("uprobe//init:main"),
            Some(("kprobe", false))
        );
        assert_eq!(
            section_prog_type("struct_ops/x"),
            Some(("struct_ops", true))
        );
        assert_eq!(section_prog_type("tracepoint/"), None);
        assert_eq!(section_prog_type("bogus"), None);
        assert_eq!(section_prog_type("xdpfoo"), None);
    }

    #[test]
    fn type_names_and_ids() {
        assert_eq!(prog_type_id("socket_filter"), Some(1));
        assert_eq!(prog_type_id("netfilter"), Some(32));
        assert_eq!(prog_type_id("unspec"), None);
        assert_eq!(prog_type_id("bogus"), None);
        assert_eq!(map_type_id("hash"), Some(1));
        assert_eq!(map_type_id("arena"), Some(33));
        assert_eq!(
            map_type_name(map_type_id("ringbuf").unwrap()),
            Some("ringbuf")
        );
        assert!(prog_type_names().contains(&"tracepoint"));
    }

    #[test]
    fn summarises_the_corpus() {
        let Some(s) = obj("ringbuf") else { return };
        assert_eq!(s.license.as_deref(), Some("GPL"));
        assert_eq!(s.programs.len(), 1);
        assert_eq!(s.programs[0].name, "rb_on_switch");
        assert_eq!(s.programs[0].prog_type.as_deref(), Some("tracepoint"));
        assert!(!s.programs[0].needs_kernel_btf);
        assert_eq!(s.maps[0].name, "events");
        assert_eq!(s.maps[0].map_type_name.as_deref(), Some("ringbuf"));
        assert_eq!(s.maps[0].max_entries, Some(4096));
        let names: Vec<_> = s.helpers.iter().filter_map(|h| h.name.as_deref()).collect();
        assert!(names.contains(&"bpf_ringbuf_reserve"), "{names:?}");
        assert!(names.contains(&"bpf_ringbuf_submit"), "{names:?}");
        assert_eq!(s.core_relocations, 0);
        assert!(!s.needs_kernel_btf);

        let s = obj("globals").unwrap();
        let globals: Vec<_> = s
            .globals
            .iter()
            .map(|g| (g.name.as_str(), g.section.as_str(), g.size))
            .collect();
        for want in [
            ("target_pid", ".rodata", 4),
            ("comm_prefix", ".rodata", 16),
            ("sample_every", ".data", 4),
            ("seen", ".bss", 8),
        ] {
            assert!(globals.contains(&want), "{want:?} in {globals:?}");
        }
        let prefix = s.globals.iter().find(|g| g.name == "comm_prefix").unwrap();
        let pid = s.globals.iter().find(|g| g.name == "target_pid").unwrap();
        assert_ne!(prefix.offset, pid.offset);
        // Maps are not globals, nor is the license.
        assert!(obj("ringbuf").unwrap().globals.is_empty());

        let s = obj("arena").unwrap();
        assert_eq!(s.maps[0].map_type_name.as_deref(), Some("arena"));
        assert_eq!(s.maps[0].max_entries, Some(2));

        let s = obj("bpf_loop").unwrap();
        assert!(s
            .helpers
            .iter()
            .any(|h| h.id == 181 && h.name.as_deref() == Some("bpf_loop")));

        let s = obj("iter_num").unwrap();
        assert_eq!(
            s.kfuncs,
            vec![
                "bpf_iter_num_destroy",
                "bpf_iter_num_new",
                "bpf_iter_num_next"
            ]
        );
        assert!(s.needs_kernel_btf);
        // kfunc calls are not helpers.
        assert!(s.helpers.is_empty(), "{:?}", s.helpers);

        let s = obj("kfunc_missing").unwrap();
        let user = s
            .programs
            .iter()
            .find(|p| p.name == "uses_missing_kfunc")
            .unwrap();
        assert_eq!(user.kfuncs, vec!["bpfcompat_no_such_kfunc"]);
        let innocent = s.programs.iter().find(|p| p.name == "innocent").unwrap();
        assert!(innocent.kfuncs.is_empty());

        let s = obj("core_missing_field").unwrap();
        assert!(s.core_relocations >= 1);
        assert!(s.needs_kernel_btf);

        let s = obj("fentry").unwrap();
        assert!(s.programs.iter().all(|p| p.needs_kernel_btf));

        let s = obj("struct_ops").unwrap();
        assert_eq!(s.programs.len(), 3);
        assert!(s
            .maps
            .iter()
            .any(|m| m.name == "bpfcompat_cc" && m.map_type_name.as_deref() == Some("struct_ops")));

        let s = obj("gpl_helper").unwrap();
        assert_eq!(s.license.as_deref(), Some("Proprietary"));
        assert!(s
            .helpers
            .iter()
            .any(|h| h.name.as_deref() == Some("bpf_trace_printk")));

        let s = obj("sk").unwrap();
        assert_eq!(s.programs.len(), 6);
        assert_eq!(s.maps[0].map_type_name.as_deref(), Some("sockmap"));

        let s = obj("maps").unwrap();
        let mut types: Vec<_> = s
            .maps
            .iter()
            .filter_map(|m| m.map_type_name.as_deref())
            .collect();
        types.sort();
        assert_eq!(
            types,
            vec!["hash", "lru_hash", "percpu_array", "perf_event_array"]
        );
    }

    /// Each map's sizes as libbpf reads them, and what the kernel requires
    /// that the object leaves to its loader.
    #[test]
    fn maps_say_what_they_leave_to_their_loader() {
        use bpfcompat_proto::object::MapParam::*;
        let Some(s) = obj("stack_unsized") else {
            return;
        };
        let stacks = &s.maps[0];
        assert_eq!((stacks.key_size, stacks.value_size), (Some(4), None));
        assert_eq!(stacks.left_to_loader, [ValueSize, MaxEntries]);
        let left = |name: &str| -> Vec<_> {
            obj(name)
                .unwrap()
                .maps
                .iter()
                .map(|m| (m.name.clone(), m.left_to_loader.clone()))
                .collect()
        };
        assert_eq!(
            left("stack_sized"),
            [
                ("stacks".into(), vec![MaxEntries]),
                ("stack_counts".into(), vec![MaxEntries])
            ]
        );
        assert_eq!(
            left("lpm_unflagged"),
            [("allowed_nets".into(), vec![NoPrealloc])]
        );
        assert_eq!(left("ringbuf_cpus")[0].1, [MaxEntries, InnerMap]);
        // map_extra 0 is 5 hash functions; struct_ops maps are libbpf's.
        assert!(left("bloom_default")[0].1.is_empty());
        assert!(left("struct_ops_link")[0].1.is_empty());

        let s = obj("lpm_unflagged").unwrap();
        // struct ipv4_prefix: two __u32.
        assert_eq!(s.maps[0].key_size, Some(8));
        assert_eq!(s.maps[0].map_flags, None);
        let s = obj("maps").unwrap();
        let perf = s.maps.iter().find(|m| m.name == "perf_events").unwrap();
        // libbpf gives a perf event array the CPU count.
        assert_eq!((perf.key_size, perf.max_entries), (Some(4), None));
        assert!(perf.left_to_loader.is_empty());
        let s = obj("arena").unwrap();
        assert!(s.maps[0].map_flags.is_some_and(|f| f & (1 << 10) != 0));
        assert!(s.maps[0].left_to_loader.is_empty());
    }

    #[test]
    fn core_relocations_are_named_with_their_guards() {
        let Some(s) = obj("core_state_guarded") else {
            return;
        };
        let named: Vec<(&str, &str, Option<&str>, bool)> = s
            .core
            .iter()
            .map(|r| {
                (
                    r.kind.as_str(),
                    r.type_name.as_str(),
                    r.member.as_deref(),
                    r.guarded,
                )
            })
            .collect();
        assert_eq!(
            named,
            [
                ("byte_off", "task_struct", Some("__state"), true),
                ("byte_off", "task_struct", Some("state"), true),
                ("field_exists", "task_struct", Some("__state"), true),
            ]
        );
        assert!(s.core.iter().all(|r| r.program == "read_state_guarded"));
        let Some(s) = obj("core_state_unguarded") else {
            return;
        };
        assert_eq!(s.core.len(), 1);
        assert_eq!(s.core[0].member.as_deref(), Some("__state"));
        assert!(!s.core[0].guarded);
        // The architecture's own registers: x86's pt_regs.di.
        let s = obj("pt_regs_core").unwrap();
        assert_eq!(s.core[0].type_name, "pt_regs");
        assert_eq!(s.core[0].member.as_deref(), Some("di"));
    }

    #[test]
    fn attach_types_and_targets_come_from_the_section() {
        assert_eq!(
            section_attach_type("cgroup/connect_unix"),
            Some("cgroup_unix_connect")
        );
        assert_eq!(section_attach_type("cgroup/connect4"), None);
        assert_eq!(section_attach_type("tcx/ingress"), Some("tcx_ingress"));
        assert_eq!(
            section_attach_type("kprobe.multi/vfs_*"),
            Some("trace_kprobe_multi")
        );
        assert_eq!(section_attach_type("fmod_ret/x"), Some("modify_return"));
        let target = |s: &str| section_attach_target(s).map(|t| (t.kind, t.name));
        assert_eq!(
            target("fentry/tcp_v4_connect"),
            Some(("fentry".into(), "tcp_v4_connect".into()))
        );
        assert_eq!(target("fexit.s/x"), Some(("fentry".into(), "x".into())));
        assert_eq!(
            target("kprobe/vfs_read+0x10"),
            Some(("kprobe".into(), "vfs_read".into()))
        );
        assert_eq!(
            target("lsm/file_open"),
            Some(("lsm".into(), "file_open".into()))
        );
        assert_eq!(
            target("tp_btf/sched_switch"),
            Some(("tp_btf".into(), "sched_switch".into()))
        );
        // Patterns, bare sections and a syscall's arch-specific name: none.
        assert_eq!(target("kprobe.multi/vfs_*"), None);
        assert_eq!(target("fentry"), None);
        assert_eq!(target("ksyscall/openat"), None);
    }

    #[test]
    fn every_corpus_object_inspects_or_is_rejected_on_purpose() {
        let Some(dir) = corpus() else { return };
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            // arm64/ and x86 -> .: the builds for each architecture.
            if p.is_dir() {
                continue;
            }
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            let r = inspect(&p);
            match name.as_str() {
                "not_elf.bpf.o" => assert!(matches!(r, Err(InvalidObject::NotElf { .. }))),
                "truncated.bpf.o" => assert!(matches!(r, Err(InvalidObject::Malformed { .. }))),
                // A section libbpf cannot type, on purpose: its manifest
                // gives the type (program_types).
                "untyped_socket.bpf.o" => {
                    let s = r.unwrap_or_else(|e| panic!("{e}"));
                    assert_eq!(s.programs[0].prog_type, None);
                    assert_eq!(
                        s.warnings,
                        ["section socket_acl: libbpf does not know this section name, so it cannot guess the program type"]
                    );
                }
                _ => {
                    let s = r.unwrap_or_else(|e| panic!("{e}"));
                    assert!(!s.programs.is_empty(), "{name}");
                    assert!(s.warnings.is_empty(), "{name}: {:?}", s.warnings);
                    for p in &s.programs {
                        assert!(p.prog_type.is_some(), "{name}: {}", p.section);
                    }
                }
            }
        }
    }
}
