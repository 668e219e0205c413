//! Reading a BPF ELF object: its header, the sections that matter, the
//! relocations in its code, the calls its instructions make, and where its
//! global variables are.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::Path;

use object::{Object, ObjectSection, ObjectSymbol, RelocationTarget, SectionFlags, SectionIndex};

use super::InvalidObject;
use crate::report::inspection::GlobalVar;

pub(super) const EM_BPF: u16 = 247;
const SHF_EXECINSTR: u64 = 0x4;
/// `call`: a helper (src_reg 0), a bpf-to-bpf call or a kfunc.
pub(super) const BPF_CALL: u8 = 0x85;
/// `ld_imm64` takes two instruction slots.
pub(super) const BPF_LD_IMM64: u8 = 0x18;

/// One decoded instruction (the 8 bytes of a slot, in the object's byte
/// order).
pub(super) struct Insn {
    pub code: u8,
    pub dst: usize,
    pub src: usize,
    pub off: i16,
    pub imm: i32,
}

impl Insn {
    pub fn decode(b: &[u8], little: bool) -> Insn {
        let (dst, src) = if little {
            (b[1] & 0xf, b[1] >> 4)
        } else {
            (b[1] >> 4, b[1] & 0xf)
        };
        let (off, imm) = if little {
            (
                i16::from_le_bytes([b[2], b[3]]),
                i32::from_le_bytes([b[4], b[5], b[6], b[7]]),
            )
        } else {
            (
                i16::from_be_bytes([b[2], b[3]]),
                i32::from_be_bytes([b[4], b[5], b[6], b[7]]),
            )
        };
        Insn {
            code: b[0],
            dst: usize::from(dst),
            src: usize::from(src),
            off,
            imm,
        }
    }
}

/// Builds the error for a malformed object from the reason.
pub(super) type Malformed<'a> = &'a dyn Fn(String) -> InvalidObject;

/// Checks the ELF identification and machine; whether it is little-endian.
pub(super) fn check_header(path: &Path, data: &[u8]) -> Result<bool, InvalidObject> {
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
        return Err(InvalidObject::Malformed {
            path: path.to_owned(),
            why: format!("{} bytes is shorter than an ELF header", data.len()),
        });
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
    Ok(little)
}

/// The architecture an ELF `e_machine` stands for, in words.
pub fn machine_name(m: u16) -> String {
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

/// `data` with the bytes of its DWARF sections (`.debug_*` and their
/// relocation sections) zeroed. libbpf never reads them, so a guest loads
/// the same object, while a job carrying it deflates to a fraction: real
/// objects are mostly DWARF. Headers stay, so no offset or size changes.
/// Data that is not an ELF file is returned as it is.
pub fn without_dwarf(mut data: Vec<u8>) -> Vec<u8> {
    let Ok(file) = object::File::parse(&*data) else {
        return data;
    };
    let dwarf: Vec<(u64, u64)> = file
        .sections()
        .filter(|s| {
            s.name().is_ok_and(|n| {
                let n = n
                    .strip_prefix(".rela")
                    .or_else(|| n.strip_prefix(".rel"))
                    .unwrap_or(n);
                n.starts_with(".debug_")
            })
        })
        .filter_map(|s| s.file_range())
        .collect();
    drop(file);
    for (start, len) in dwarf {
        let range = usize::try_from(start)
            .ok()
            .zip(usize::try_from(start + len).ok());
        if let Some(bytes) = range.and_then(|(from, to)| data.get_mut(from..to)) {
            bytes.fill(0);
        }
    }
    data
}

/// The sections an inspection reads.
#[derive(Default)]
pub(super) struct Sections {
    pub license: Option<String>,
    pub btf: Option<Vec<u8>>,
    pub btf_ext: Option<Vec<u8>>,
    /// Executable sections other than `.text`: where programs live.
    pub programs: Vec<(SectionIndex, String)>,
    /// `.text`: subprograms.
    pub subprograms: Vec<SectionIndex>,
    pub warnings: Vec<String>,
}

impl Sections {
    pub fn is_code(&self, idx: SectionIndex) -> bool {
        self.programs.iter().any(|(i, _)| *i == idx) || self.subprograms.contains(&idx)
    }
}

pub(super) fn scan_sections(
    file: &object::File<'_>,
    malformed: Malformed,
) -> Result<Sections, InvalidObject> {
    let mut found = Sections::default();
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
                let text = d.split(|&b| b == 0).next().unwrap_or(d);
                found.license = Some(String::from_utf8_lossy(text).into_owned());
            }
            ".BTF" => found.btf = Some(section_data()?.to_vec()),
            ".BTF.ext" => found.btf_ext = Some(section_data()?.to_vec()),
            "maps" => found.warnings.push(
                "legacy map definitions in section \"maps\": libbpf 1.0+ refuses them; use BTF-defined maps in \".maps\"".into(),
            ),
            _ => {}
        }
        if flags & SHF_EXECINSTR != 0 && s.size() > 0 {
            // Touch the data now so a truncated file fails here, by name.
            section_data()?;
            if name == ".text" {
                found.subprograms.push(s.index());
            } else {
                found.programs.push((s.index(), name));
            }
        }
    }
    Ok(found)
}

/// What the relocations in code say: call instructions with one are
/// bpf-to-bpf or kfunc calls, not helpers; those against undefined symbols
/// are externs.
#[derive(Default)]
pub(super) struct Externs {
    relocated: HashSet<(SectionIndex, u64)>,
    /// The defined symbol each other relocation points at (maps, globals).
    defined: HashMap<(SectionIndex, u64), String>,
    calls: HashMap<(SectionIndex, u64), String>,
    /// `__ksym` variables and `__kconfig` values (and, until the calls are
    /// known, kfuncs referenced other than by a call).
    pub vars: BTreeSet<String>,
}

pub(super) fn scan_relocations(
    file: &object::File<'_>,
    sections: &Sections,
    malformed: Malformed,
) -> Result<Externs, InvalidObject> {
    let mut externs = Externs::default();
    for s in file.sections().filter(|s| sections.is_code(s.index())) {
        let idx = s.index();
        let code = s.data().map_err(|e| malformed(e.to_string()))?;
        for (offset, reloc) in s.relocations() {
            externs.relocated.insert((idx, offset));
            let RelocationTarget::Symbol(si) = reloc.target() else {
                continue;
            };
            let Ok(sym) = file.symbol_by_index(si) else {
                continue;
            };
            if !sym.is_undefined() {
                if let Ok(name) = sym.name() {
                    externs.defined.insert((idx, offset), name.to_owned());
                }
                continue;
            }
            let name = sym.name().unwrap_or("?").to_owned();
            if code.get(offset as usize).copied() == Some(BPF_CALL) {
                externs.calls.insert((idx, offset), name);
            } else {
                externs.vars.insert(name);
            }
        }
    }
    Ok(externs)
}

impl Externs {
    /// The defined symbol the instruction at `offset` of section `idx` is
    /// relocated against.
    pub fn defined_at(&self, idx: SectionIndex, offset: u64) -> Option<String> {
        self.defined.get(&(idx, offset)).cloned()
    }

    /// Whether a `call` there is a helper's (no relocation: not a kfunc or
    /// a subprogram).
    pub fn helper_call(&self, idx: SectionIndex, offset: u64) -> bool {
        !self.relocated.contains(&(idx, offset))
    }
}

/// What some code calls.
#[derive(Default)]
pub(super) struct Calls {
    pub helpers: BTreeSet<u32>,
    pub kfuncs: BTreeSet<String>,
}

/// The helpers and kfuncs called by the instructions of section `idx` at
/// byte offsets `start..end` of `code`.
pub(super) fn calls(
    code: &[u8],
    idx: SectionIndex,
    (start, end): (u64, u64),
    little: bool,
    externs: &Externs,
) -> Calls {
    let mut calls = Calls::default();
    let mut off = start;
    while off + 8 <= end.min(code.len() as u64) {
        let insn = Insn::decode(&code[off as usize..off as usize + 8], little);
        if insn.code == BPF_CALL {
            if let Some(k) = externs.calls.get(&(idx, off)) {
                calls.kfuncs.insert(k.clone());
            } else if insn.src == 0 && externs.helper_call(idx, off) {
                calls.helpers.insert(insn.imm as u32);
            }
        }
        off += if insn.code == BPF_LD_IMM64 { 16 } else { 8 };
    }
    calls
}

/// A global function in a code section: where a program starts.
pub(super) struct Function {
    pub section: SectionIndex,
    pub address: u64,
    pub size: u64,
    pub name: String,
}

pub(super) fn global_functions(file: &object::File<'_>) -> Vec<Function> {
    file.symbols()
        .filter(|s| s.kind() == object::SymbolKind::Text && !s.is_undefined() && s.is_global())
        .filter_map(|s| {
            Some(Function {
                section: s.section_index()?,
                address: s.address(),
                size: s.size(),
                name: s.name().ok()?.to_owned(),
            })
        })
        .collect()
}

/// Puts each global at its ELF symbol's offset and size: clang leaves the
/// offsets of a DATASEC's variables zero in the object (libbpf fixes them
/// up from the symbols the same way when it opens it).
pub(super) fn place_globals(file: &object::File<'_>, globals: &mut [GlobalVar]) {
    for g in globals {
        let symbol = file.symbols().find(|s| {
            s.kind() == object::SymbolKind::Data
                && s.name() == Ok(g.name.as_str())
                && s.section_index()
                    .and_then(|i| file.section_by_index(i).ok())
                    .is_some_and(|sec| sec.name() == Ok(g.section.as_str()))
        });
        if let Some(s) = symbol {
            g.offset = u32::try_from(s.address()).unwrap_or(g.offset);
            g.size = u32::try_from(s.size()).unwrap_or(g.size);
        }
    }
}
