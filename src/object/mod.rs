//! Static inspection of a `.bpf.o` on the host, before any kernel boots.
//!
//! [`inspect`] rejects what no kernel could load (not ELF, another machine's
//! ELF, truncated, empty, absurdly large, no programs) with a message naming
//! the file, and otherwise summarises what the object asks of a kernel:
//! programs (section, expected program type, whether kernel BTF is needed),
//! maps (from the BTF `.maps` section), helper ids, kfuncs and other
//! externs, and CO-RE relocations.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};

use bpfcompat_proto::object::helper_name;
use object::{Object, ObjectSection, ObjectSymbol, RelocationTarget, SectionFlags, SymbolKind};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Larger than any real BPF object by two orders of magnitude; rejected
/// from the file size alone, without reading it.
pub const MAX_OBJECT_BYTES: u64 = 64 * 1024 * 1024;

const EM_BPF: u16 = 247;
const SHF_EXECINSTR: u64 = 0x4;

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

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ObjectSummary {
    pub path: PathBuf,
    pub size: u64,
    /// Digest of exactly the bytes inspected.
    pub sha256: String,
    pub license: Option<String>,
    pub programs: Vec<ProgramSummary>,
    pub maps: Vec<MapSummary>,
    /// Helper ids called anywhere (call instructions with src_reg 0 and no
    /// relocation), with their names.
    pub helpers: Vec<HelperUse>,
    /// Kernel functions called through `__ksym` externs.
    pub kfuncs: Vec<String>,
    /// Other externs: `__ksym` variables and `__kconfig` values.
    pub extern_vars: Vec<String>,
    /// The object has BTF (`.BTF`).
    pub btf: bool,
    /// Number of CO-RE relocations in `.BTF.ext`.
    pub core_relocations: u64,
    /// Some program, a CO-RE relocation, a kfunc or a struct_ops map needs
    /// the kernel's BTF.
    pub needs_kernel_btf: bool,
    /// Things libbpf 1.x will refuse or that look wrong.
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ProgramSummary {
    pub name: String,
    pub section: String,
    /// libbpf's program type for the section (`kprobe`, `tracing`, ...), if
    /// libbpf knows the section name.
    pub prog_type: Option<String>,
    /// Needs kernel BTF to load (fentry/fexit/fmod_ret, tp_btf, lsm, iter,
    /// struct_ops).
    pub needs_kernel_btf: bool,
    pub insns: u64,
    pub helpers: Vec<u32>,
    pub kfuncs: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MapSummary {
    pub name: String,
    /// `BPF_MAP_TYPE_*` id, if the definition says.
    pub map_type: Option<u32>,
    /// libbpf's name for it (`ringbuf`, `arena`, ...).
    pub map_type_name: Option<String>,
    pub max_entries: Option<u32>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct HelperUse {
    pub id: u32,
    pub name: Option<String>,
    pub programs: Vec<String>,
}

/// libbpf's map type names, by id.
const MAP_TYPES: [&str; 34] = [
    "unspec",
    "hash",
    "array",
    "prog_array",
    "perf_event_array",
    "percpu_hash",
    "percpu_array",
    "stack_trace",
    "cgroup_array",
    "lru_hash",
    "lru_percpu_hash",
    "lpm_trie",
    "array_of_maps",
    "hash_of_maps",
    "devmap",
    "sockmap",
    "cpumap",
    "xskmap",
    "sockhash",
    "cgroup_storage",
    "reuseport_sockarray",
    "percpu_cgroup_storage",
    "queue",
    "stack",
    "sk_storage",
    "devmap_hash",
    "struct_ops",
    "ringbuf",
    "inode_storage",
    "task_storage",
    "bloom_filter",
    "user_ringbuf",
    "cgrp_storage",
    "arena",
];
const MAP_TYPE_STRUCT_OPS: u32 = 26;

pub fn map_type_name(id: u32) -> Option<&'static str> {
    MAP_TYPES.get(id as usize).copied()
}

/// Section prefix -> (libbpf program type, needs kernel BTF). Longest
/// prefix wins; an entry ending in `/` needs something after it, the others
/// also match exactly or followed by `/` or `.`.
const SECTIONS: &[(&str, &str, bool)] = &[
    ("socket", "socket_filter", false),
    ("sk_reuseport", "sk_reuseport", false),
    ("kprobe/", "kprobe", false),
    ("kretprobe/", "kprobe", false),
    ("kprobe.multi/", "kprobe", false),
    ("kretprobe.multi/", "kprobe", false),
    ("kprobe.session/", "kprobe", false),
    ("ksyscall/", "kprobe", false),
    ("kretsyscall/", "kprobe", false),
    ("uprobe", "kprobe", false),
    ("uretprobe", "kprobe", false),
    ("uprobe.multi", "kprobe", false),
    ("uretprobe.multi", "kprobe", false),
    ("uprobe.session", "kprobe", false),
    ("usdt", "kprobe", false),
    ("tc", "sched_cls", false),
    ("tcx/", "sched_cls", false),
    ("netkit/", "sched_cls", false),
    ("classifier", "sched_cls", false),
    ("action", "sched_act", false),
    ("tracepoint/", "tracepoint", false),
    ("tp/", "tracepoint", false),
    ("raw_tracepoint/", "raw_tracepoint", false),
    ("raw_tp/", "raw_tracepoint", false),
    ("raw_tracepoint.w/", "raw_tracepoint_writable", false),
    ("raw_tp.w/", "raw_tracepoint_writable", false),
    ("tp_btf/", "tracing", true),
    ("fentry", "tracing", true),
    ("fexit", "tracing", true),
    ("fmod_ret", "tracing", true),
    ("fentry.s", "tracing", true),
    ("fexit.s", "tracing", true),
    ("fmod_ret.s", "tracing", true),
    ("freplace", "ext", false),
    ("lsm", "lsm", true),
    ("lsm.s", "lsm", true),
    ("lsm_cgroup", "lsm", true),
    ("iter/", "tracing", true),
    ("iter.s/", "tracing", true),
    ("syscall", "syscall", false),
    ("xdp", "xdp", false),
    ("xdp.frags", "xdp", false),
    ("perf_event", "perf_event", false),
    ("lwt_in", "lwt_in", false),
    ("lwt_out", "lwt_out", false),
    ("lwt_xmit", "lwt_xmit", false),
    ("lwt_seg6local", "lwt_seg6local", false),
    ("sockops", "sock_ops", false),
    ("sk_skb", "sk_skb", false),
    ("sk_msg", "sk_msg", false),
    ("lirc_mode2", "lirc_mode2", false),
    ("flow_dissector", "flow_dissector", false),
    ("sk_lookup", "sk_lookup", false),
    ("struct_ops", "struct_ops", true),
    ("struct_ops.s", "struct_ops", true),
    ("netfilter", "netfilter", false),
    ("cgroup_skb/", "cgroup_skb", false),
    ("cgroup/skb", "cgroup_skb", false),
    ("cgroup/sock", "cgroup_sock", false),
    ("cgroup/sock_create", "cgroup_sock", false),
    ("cgroup/sock_release", "cgroup_sock", false),
    ("cgroup/post_bind4", "cgroup_sock", false),
    ("cgroup/post_bind6", "cgroup_sock", false),
    ("cgroup/bind4", "cgroup_sock_addr", false),
    ("cgroup/bind6", "cgroup_sock_addr", false),
    ("cgroup/connect4", "cgroup_sock_addr", false),
    ("cgroup/connect6", "cgroup_sock_addr", false),
    ("cgroup/connect_unix", "cgroup_sock_addr", false),
    ("cgroup/sendmsg4", "cgroup_sock_addr", false),
    ("cgroup/sendmsg6", "cgroup_sock_addr", false),
    ("cgroup/sendmsg_unix", "cgroup_sock_addr", false),
    ("cgroup/recvmsg4", "cgroup_sock_addr", false),
    ("cgroup/recvmsg6", "cgroup_sock_addr", false),
    ("cgroup/recvmsg_unix", "cgroup_sock_addr", false),
    ("cgroup/getpeername4", "cgroup_sock_addr", false),
    ("cgroup/getpeername6", "cgroup_sock_addr", false),
    ("cgroup/getpeername_unix", "cgroup_sock_addr", false),
    ("cgroup/getsockname4", "cgroup_sock_addr", false),
    ("cgroup/getsockname6", "cgroup_sock_addr", false),
    ("cgroup/getsockname_unix", "cgroup_sock_addr", false),
    ("cgroup/sysctl", "cgroup_sysctl", false),
    ("cgroup/getsockopt", "cgroup_sockopt", false),
    ("cgroup/setsockopt", "cgroup_sockopt", false),
    ("cgroup/dev", "cgroup_device", false),
];

/// libbpf's program type for a section name and whether it needs kernel BTF.
pub fn section_prog_type(section: &str) -> Option<(&'static str, bool)> {
    SECTIONS
        .iter()
        .filter(|(prefix, _, _)| {
            if prefix.ends_with('/') {
                section.starts_with(prefix) && section.len() > prefix.len()
            } else {
                section == *prefix
                    || section
                        .strip_prefix(prefix)
                        .is_some_and(|rest| rest.starts_with('/'))
            }
        })
        .max_by_key(|(prefix, _, _)| prefix.len())
        .map(|(_, t, btf)| (*t, *btf))
}

fn machine_name(m: u16) -> String {
    match m {
        3 => "x86 (i386)".into(),
        8 => "MIPS".into(),
        20 => "PowerPC".into(),
        21 => "PowerPC64".into(),
        22 => "s390".into(),
        40 => "ARM".into(),
        62 => "x86-64".into(),
        183 => "AArch64".into(),
        243 => "RISC-V".into(),
        258 => "LoongArch".into(),
        other => format!("machine {other}"),
    }
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
    if data.is_empty() {
        return Err(InvalidObject::Empty {
            path: path.to_owned(),
        });
    }
    if data.len() < 4 || &data[..4] != b"\x7fELF" {
        let start: String = String::from_utf8_lossy(&data[..data.len().min(16)]).into_owned();
        return Err(InvalidObject::NotElf {
            path: path.to_owned(),
            start,
        });
    }
    if data.len() < 64 {
        return Err(malformed(format!(
            "{} bytes is shorter than an ELF header",
            data.len()
        )));
    }
    let little = data[5] != 2;
    let machine = if little {
        u16::from_le_bytes([data[18], data[19]])
    } else {
        u16::from_be_bytes([data[18], data[19]])
    };
    if machine != EM_BPF {
        return Err(InvalidObject::WrongMachine {
            path: path.to_owned(),
            machine: machine_name(machine),
        });
    }
    let file = object::File::parse(data).map_err(|e| malformed(e.to_string()))?;

    let mut warnings = Vec::new();
    let mut license = None;
    let mut btf = None;
    let mut btf_ext = None;
    // Executable sections (other than .text) are where programs live.
    let mut prog_sections = Vec::new();
    let mut subprog_sections = Vec::new();
    for s in file.sections() {
        let name = s.name().map_err(|e| malformed(e.to_string()))?.to_owned();
        let flags = match s.flags() {
            SectionFlags::Elf { sh_flags } => sh_flags,
            _ => 0,
        };
        let section_data = || {
            s.data()
                .map_err(|e| malformed(format!("section {name}: {e}")))
        };
        match name.as_str() {
            "license" => {
                let d = section_data()?;
                license = Some(
                    String::from_utf8_lossy(d.split(|&b| b == 0).next().unwrap_or(d)).into_owned(),
                );
            }
            ".BTF" => btf = Some(section_data()?.to_vec()),
            ".BTF.ext" => btf_ext = Some(section_data()?.to_vec()),
            "maps" => warnings.push(
                "legacy map definitions in section \"maps\": libbpf 1.0+ refuses them; use BTF-defined maps in \".maps\"".into(),
            ),
            _ => {}
        }
        if flags & SHF_EXECINSTR != 0 && s.size() > 0 {
            // Touch the data now so a truncated file fails here, by name.
            section_data()?;
            if name == ".text" {
                subprog_sections.push(s.index());
            } else {
                prog_sections.push((s.index(), name));
            }
        }
    }
    if prog_sections.is_empty() {
        return Err(InvalidObject::NoPrograms {
            path: path.to_owned(),
        });
    }

    // Relocations in code: call insns with one are bpf-to-bpf or kfunc
    // calls, not helpers; those against undefined symbols are externs.
    let mut relocated: HashSet<(object::SectionIndex, u64)> = HashSet::new();
    let mut extern_calls: HashMap<(object::SectionIndex, u64), String> = HashMap::new();
    let mut extern_vars = BTreeSet::new();
    for s in file.sections() {
        let idx = s.index();
        if !prog_sections.iter().any(|(i, _)| *i == idx) && !subprog_sections.contains(&idx) {
            continue;
        }
        let code = s.data().map_err(|e| malformed(e.to_string()))?;
        for (offset, reloc) in s.relocations() {
            relocated.insert((idx, offset));
            let RelocationTarget::Symbol(si) = reloc.target() else {
                continue;
            };
            let Ok(sym) = file.symbol_by_index(si) else {
                continue;
            };
            if !sym.is_undefined() {
                continue;
            }
            let name = sym.name().unwrap_or("?").to_owned();
            let opcode = code.get(offset as usize).copied();
            if opcode == Some(0x85) {
                extern_calls.insert((idx, offset), name);
            } else {
                extern_vars.insert(name);
            }
        }
    }

    let symbols: Vec<_> = file
        .symbols()
        .filter(|s| s.kind() == SymbolKind::Text && !s.is_undefined())
        .filter_map(|s| {
            Some((
                s.section_index()?,
                s.address(),
                s.size(),
                s.name().ok()?.to_owned(),
                s.is_global(),
            ))
        })
        .collect();

    let mut programs = Vec::new();
    let mut helper_users: BTreeMap<u32, BTreeSet<String>> = BTreeMap::new();
    let mut kfuncs = BTreeSet::new();
    for (idx, section) in &prog_sections {
        let s = file
            .section_by_index(*idx)
            .map_err(|e| malformed(e.to_string()))?;
        let code = s.data().map_err(|e| malformed(e.to_string()))?;
        let mut funcs: Vec<_> = symbols
            .iter()
            .filter(|(si, _, _, _, global)| si == idx && *global)
            .collect();
        funcs.sort_by_key(|f| f.1);
        if funcs.is_empty() {
            warnings.push(format!(
                "section {section} has code but no global function symbol: libbpf will not find a program in it"
            ));
        }
        let (prog_type, needs_btf) = match section_prog_type(section) {
            Some((t, b)) => (Some(t.to_owned()), b),
            None => {
                warnings.push(format!(
                    "section {section}: libbpf does not know this section name, so it cannot guess the program type"
                ));
                (None, false)
            }
        };
        for (_, start, len, name, _) in funcs {
            let end = if *len > 0 {
                start + len
            } else {
                code.len() as u64
            };
            let mut helpers = BTreeSet::new();
            let mut prog_kfuncs = BTreeSet::new();
            let mut off = *start;
            while off + 8 <= end.min(code.len() as u64) {
                let insn = &code[off as usize..off as usize + 8];
                let opcode = insn[0];
                let src_reg = if little { insn[1] >> 4 } else { insn[1] & 0xf };
                let imm = if little {
                    i32::from_le_bytes([insn[4], insn[5], insn[6], insn[7]])
                } else {
                    i32::from_be_bytes([insn[4], insn[5], insn[6], insn[7]])
                };
                if opcode == 0x85 {
                    if let Some(k) = extern_calls.get(&(*idx, off)) {
                        prog_kfuncs.insert(k.clone());
                    } else if src_reg == 0 && !relocated.contains(&(*idx, off)) {
                        helpers.insert(imm as u32);
                    }
                }
                off += if opcode == 0x18 { 16 } else { 8 };
            }
            for h in &helpers {
                helper_users.entry(*h).or_default().insert(name.clone());
            }
            kfuncs.extend(prog_kfuncs.iter().cloned());
            programs.push(ProgramSummary {
                name: name.clone(),
                section: section.clone(),
                prog_type: prog_type.clone(),
                needs_kernel_btf: needs_btf,
                insns: (end - start) / 8,
                helpers: helpers.into_iter().collect(),
                kfuncs: prog_kfuncs.into_iter().collect(),
            });
        }
    }
    if programs.is_empty() {
        return Err(InvalidObject::NoPrograms {
            path: path.to_owned(),
        });
    }
    // Helpers called from subprograms (.text) count for the object too.
    for idx in &subprog_sections {
        let s = file
            .section_by_index(*idx)
            .map_err(|e| malformed(e.to_string()))?;
        let code = s.data().map_err(|e| malformed(e.to_string()))?;
        let mut off = 0u64;
        while off + 8 <= code.len() as u64 {
            let insn = &code[off as usize..off as usize + 8];
            let src_reg = if little { insn[1] >> 4 } else { insn[1] & 0xf };
            if insn[0] == 0x85 {
                if let Some(k) = extern_calls.get(&(*idx, off)) {
                    kfuncs.insert(k.clone());
                } else if src_reg == 0 && !relocated.contains(&(*idx, off)) {
                    let imm = if little {
                        i32::from_le_bytes([insn[4], insn[5], insn[6], insn[7]])
                    } else {
                        i32::from_be_bytes([insn[4], insn[5], insn[6], insn[7]])
                    };
                    helper_users
                        .entry(imm as u32)
                        .or_default()
                        .insert(".text".into());
                }
            }
            off += if insn[0] == 0x18 { 16 } else { 8 };
        }
    }
    for k in &kfuncs {
        extern_vars.remove(k);
    }

    let mut maps = Vec::new();
    if let Some(b) = &btf {
        match btf_maps(b, little) {
            Ok(m) => maps = m,
            Err(why) => warnings.push(format!(".BTF: {why}")),
        }
    }
    let core_relocations = match &btf_ext {
        Some(e) => core_relo_count(e, little).unwrap_or_else(|why| {
            warnings.push(format!(".BTF.ext: {why}"));
            0
        }),
        None => 0,
    };

    let needs_kernel_btf = programs.iter().any(|p| p.needs_kernel_btf)
        || core_relocations > 0
        || !kfuncs.is_empty()
        || maps.iter().any(|m| m.map_type == Some(MAP_TYPE_STRUCT_OPS));
    Ok(ObjectSummary {
        path: path.to_owned(),
        size: data.len() as u64,
        sha256: hex::encode(Sha256::digest(data)),
        license,
        programs,
        maps,
        helpers: helper_users
            .into_iter()
            .map(|(id, users)| HelperUse {
                id,
                name: helper_name(id).map(str::to_owned),
                programs: users.into_iter().collect(),
            })
            .collect(),
        kfuncs: kfuncs.into_iter().collect(),
        extern_vars: extern_vars.into_iter().collect(),
        btf: btf.is_some(),
        core_relocations,
        needs_kernel_btf,
        warnings,
    })
}

fn u32_at(d: &[u8], off: usize, little: bool) -> Result<u32, String> {
    let b: [u8; 4] = d
        .get(off..off + 4)
        .ok_or_else(|| format!("truncated at offset {off}"))?
        .try_into()
        .expect("4 bytes");
    Ok(if little {
        u32::from_le_bytes(b)
    } else {
        u32::from_be_bytes(b)
    })
}

/// Number of CO-RE relocation records in `.BTF.ext`.
fn core_relo_count(ext: &[u8], little: bool) -> Result<u64, String> {
    let hdr_len = u32_at(ext, 4, little)? as usize;
    if hdr_len < 32 {
        return Ok(0); // no core_relo fields in this header version
    }
    let off = u32_at(ext, 24, little)? as usize;
    let len = u32_at(ext, 28, little)? as usize;
    if len == 0 {
        return Ok(0);
    }
    let base = hdr_len + off;
    let end = base + len;
    if end > ext.len() {
        return Err("CO-RE relocation section runs past the end".into());
    }
    let rec_size = u32_at(ext, base, little)? as usize;
    if rec_size == 0 {
        return Err("zero CO-RE record size".into());
    }
    let mut pos = base + 4;
    let mut count = 0u64;
    while pos + 8 <= end {
        let n = u32_at(ext, pos + 4, little)? as usize;
        count += n as u64;
        pos += 8 + n * rec_size;
    }
    Ok(count)
}

/// One BTF type: kind, name offset, size/type, and its trailing data.
struct BtfType<'a> {
    kind: u32,
    vlen: usize,
    name_off: u32,
    size_or_type: u32,
    extra: &'a [u8],
}

fn btf_types(types: &[u8], little: bool) -> Result<Vec<BtfType<'_>>, String> {
    // Id 0 is void.
    let mut out = vec![BtfType {
        kind: 0,
        vlen: 0,
        name_off: 0,
        size_or_type: 0,
        extra: &[],
    }];
    let mut pos = 0;
    while pos + 12 <= types.len() {
        let name_off = u32_at(types, pos, little)?;
        let info = u32_at(types, pos + 4, little)?;
        let size_or_type = u32_at(types, pos + 8, little)?;
        let kind = (info >> 24) & 0x1f;
        let vlen = (info & 0xffff) as usize;
        let extra_len = match kind {
            1 => 4,             // INT
            3 => 12,            // ARRAY
            4 | 5 => vlen * 12, // STRUCT, UNION
            6 => vlen * 8,      // ENUM
            13 => vlen * 8,     // FUNC_PROTO
            14 => 4,            // VAR
            15 => vlen * 12,    // DATASEC
            17 => 4,            // DECL_TAG
            19 => vlen * 12,    // ENUM64
            2 | 7..=12 | 16 | 18 => 0,
            k => return Err(format!("unknown BTF kind {k}")),
        };
        let start = pos + 12;
        let extra = types
            .get(start..start + extra_len)
            .ok_or("BTF type section truncated")?;
        out.push(BtfType {
            kind,
            vlen,
            name_off,
            size_or_type,
            extra,
        });
        pos = start + extra_len;
    }
    Ok(out)
}

/// Maps defined in BTF: the `.maps` DATASEC (and struct_ops variables in
/// `.struct_ops*`).
fn btf_maps(btf: &[u8], little: bool) -> Result<Vec<MapSummary>, String> {
    let hdr_len = u32_at(btf, 4, little)? as usize;
    let type_off = u32_at(btf, 8, little)? as usize;
    let type_len = u32_at(btf, 12, little)? as usize;
    let str_off = u32_at(btf, 16, little)? as usize;
    let str_len = u32_at(btf, 20, little)? as usize;
    let types = btf
        .get(hdr_len + type_off..hdr_len + type_off + type_len)
        .ok_or("type section out of bounds")?;
    let strings = btf
        .get(hdr_len + str_off..hdr_len + str_off + str_len)
        .ok_or("string section out of bounds")?;
    let name = |off: u32| -> String {
        strings
            .get(off as usize..)
            .and_then(|s| s.split(|&b| b == 0).next())
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .unwrap_or_default()
    };
    let types = btf_types(types, little)?;
    let get = |id: u32| types.get(id as usize);
    // Skip typedef/volatile/const/restrict/type_tag.
    let resolve = |mut id: u32| -> u32 {
        for _ in 0..32 {
            match get(id) {
                Some(t) if matches!(t.kind, 8..=11 | 18) => id = t.size_or_type,
                _ => break,
            }
        }
        id
    };
    // `__uint(name, N)` is `int (*name)[N]`: pointer to an array of N.
    let uint_value = |member_type: u32| -> Option<u32> {
        let ptr = get(resolve(member_type))?;
        if ptr.kind != 2 {
            return None;
        }
        let arr = get(resolve(ptr.size_or_type))?;
        if arr.kind != 3 {
            return None;
        }
        u32_at(arr.extra, 8, little).ok()
    };

    let mut maps = Vec::new();
    for t in &types {
        if t.kind != 15 {
            continue;
        }
        let sec = name(t.name_off);
        let struct_ops = sec.starts_with(".struct_ops");
        if sec != ".maps" && !struct_ops {
            continue;
        }
        for i in 0..t.vlen {
            let var_id = u32_at(t.extra, i * 12, little)?;
            let Some(var) = get(var_id).filter(|v| v.kind == 14) else {
                continue;
            };
            let map_name = name(var.name_off);
            if struct_ops {
                maps.push(MapSummary {
                    name: map_name,
                    map_type: Some(MAP_TYPE_STRUCT_OPS),
                    map_type_name: Some("struct_ops".into()),
                    max_entries: Some(1),
                });
                continue;
            }
            let mut map_type = None;
            let mut max_entries = None;
            if let Some(def) = get(resolve(var.size_or_type)).filter(|d| d.kind == 4) {
                for m in 0..def.vlen {
                    let mname = name(u32_at(def.extra, m * 12, little)?);
                    let mtype = u32_at(def.extra, m * 12 + 4, little)?;
                    match mname.as_str() {
                        "type" => map_type = uint_value(mtype),
                        "max_entries" => max_entries = uint_value(mtype),
                        _ => {}
                    }
                }
            }
            maps.push(MapSummary {
                name: map_name,
                map_type,
                map_type_name: map_type.and_then(map_type_name).map(str::to_owned),
                max_entries,
            });
        }
    }
    Ok(maps)
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
        elf[18..20].copy_from_slice(&EM_BPF.to_le_bytes());
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

    #[test]
    fn every_corpus_object_inspects_or_is_rejected_on_purpose() {
        let Some(dir) = corpus() else { return };
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            let r = inspect(&p);
            match name.as_str() {
                "not_elf.bpf.o" => assert!(matches!(r, Err(InvalidObject::NotElf { .. }))),
                "truncated.bpf.o" => assert!(matches!(r, Err(InvalidObject::Malformed { .. }))),
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
