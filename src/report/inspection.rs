//! What static inspection found in a `.bpf.o` (see `object::inspect`):
//! part of each check in the report.

use std::path::PathBuf;

use bpfcompat_proto::object::MapParam;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ObjectSummary {
    pub path: PathBuf,
    pub size: u64,
    /// Digest of exactly the bytes inspected.
    pub sha256: String,
    pub license: Option<String>,
    pub programs: Vec<ProgramSummary>,
    pub maps: Vec<MapSummary>,
    /// Variables of `.rodata`, `.data`, `.bss` (and `.rodata.*`, `.data.*`)
    /// from BTF: what a manifest's `globals:` may set. Absent in reports
    /// written before bpfcompat read them.
    #[serde(default)]
    pub globals: Vec<GlobalVar>,
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
    /// What those relocations reach, each once per program. Absent in
    /// reports written before bpfcompat read them.
    #[serde(default)]
    pub core: Vec<CoreRelocation>,
    /// BTF kinds the object's BTF uses that older kernels do not know
    /// (`float`, `decl_tag`, `type_tag`, `enum64`): libbpf rewrites them
    /// for such kernels, so they never block a load.
    #[serde(default)]
    pub btf_kinds: Vec<String>,
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
    /// The attach type libbpf loads it with, when the section implies one
    /// a kernel may lack (`cgroup_unix_connect`, `trace_kprobe_multi`,
    /// `tcx_ingress`, ...): the `BPF_*` name, lowercase.
    #[serde(default)]
    pub attach_type: Option<String>,
    /// The kernel function or event the section names, for the kinds whose
    /// target a kernel's BTF lists.
    #[serde(default)]
    pub attach_target: Option<AttachTarget>,
    /// A map lookup whose result it dereferences before any NULL check,
    /// on the path every run takes (see `object::nullcheck`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unchecked_lookup: Option<UncheckedLookup>,
}

/// `bpf_map_lookup_elem` on `map`, its result dereferenced unchecked at
/// instruction `insn` of the program.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct UncheckedLookup {
    pub map: String,
    pub insn: u64,
}

/// What a program attaches to, looked up in the kernel's BTF.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AttachTarget {
    /// `fentry` (also fexit, fmod_ret), `lsm`, `tp_btf`, `iter`, `kprobe`.
    pub kind: String,
    pub name: String,
}

/// One thing a CO-RE relocation needs from the kernel's BTF.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct CoreRelocation {
    /// The program (or `.text`) whose code holds it.
    pub program: String,
    /// libbpf's name of the relocation kind: `byte_off`, `field_exists`,
    /// `enumval_value`, `type_size`, ...
    pub kind: String,
    /// The BTF kind of the root type: `struct`, `union`, `enum`, `typedef`, ...
    pub type_kind: String,
    /// Without a `___flavour` suffix, as CO-RE matches it.
    pub type_name: String,
    /// The field path (`se.vruntime`) or the enumerator (`BPF_FUNC_loop`).
    pub member: Option<String>,
    /// An existence check itself, or in a program that also asks whether
    /// this type (or a member of it) exists: the loader's choice between
    /// old and new layouts. A guarded relocation never blocks a load.
    pub guarded: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct MapSummary {
    pub name: String,
    /// `BPF_MAP_TYPE_*` id, if the definition says.
    pub map_type: Option<u32>,
    /// libbpf's name for it (`ringbuf`, `arena`, ...).
    pub map_type_name: Option<String>,
    pub max_entries: Option<u32>,
    /// Bytes of its key and of its value (`__type(key, ...)` or
    /// `__uint(key_size, ...)`; 4 for the fds of `__array(values, ...)`),
    /// and its `map_flags`, if the definition says. Absent in reports
    /// written before bpfcompat read them.
    #[serde(default)]
    pub key_size: Option<u32>,
    #[serde(default)]
    pub value_size: Option<u32>,
    #[serde(default)]
    pub map_flags: Option<u32>,
    /// What the kernel requires of the map's type that the object leaves
    /// zero or unset, for its loader to set before load: `key_size`,
    /// `value_size`, `max_entries`, `inner_map`, `no_prealloc`, `mmapable`
    /// (the agent's automatic fixups or a manifest's `maps:` set them).
    #[serde(default)]
    pub left_to_loader: Vec<MapParam>,
}

/// A global variable a loader can set before load.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct GlobalVar {
    pub name: String,
    /// Its data section: `.rodata`, `.data`, `.bss`, `.rodata.NAME`, ...
    pub section: String,
    /// Bytes from the start of the section.
    pub offset: u32,
    pub size: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct HelperUse {
    pub id: u32,
    pub name: Option<String>,
    pub programs: Vec<String>,
}
