//! The loader contract: what an object's own loader does between
//! `bpf_object__open` and load (and after attach) that a generic libbpf
//! load would not, resolved on the host from a manifest, a suite case and
//! the command line, and sent with the object in its
//! [`ObjectCheckRequest`](super::ObjectCheckRequest).
//!
//! Everything here is checked on the host before anything boots: every
//! program and map named exists in the object, every global fits its
//! variable, type names are resolved to their ids. The agent applies it as
//! given.
//!
//! Every field has a serde default, so a request without a contract, or a
//! contract from an older host, parses.

use serde::{Deserialize, Serialize};

/// What the user asked the check to prove.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash, Default)]
#[serde(rename_all = "snake_case")]
pub enum ValidationMode {
    /// Open, create maps, load programs.
    LoadOnly,
    /// Also attach every program (and struct_ops map).
    #[default]
    LoadAttach,
    /// Also, with every link alive: collect run statistics
    /// (`BPF_ENABLE_STATS`), run the workload and the functional tests, and
    /// check that programs with [`ProgramContract::expect_run`] ran.
    Behavior,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct LoaderContract {
    /// The suite case this check is (`cases[].name`); `None` outside suites.
    pub case: Option<String>,
    pub validation_mode: ValidationMode,
    /// `false` with `--no-fixups`: nothing for what maps leave unset
    /// (`max_entries` 0, a stack map's value size, required flags); only
    /// what the contract says.
    pub auto_fixups: bool,
    /// Applied to maps after open, before load.
    pub maps: Vec<MapFixup>,
    /// Applied to programs after open (`bpf_program__set_type`).
    pub program_types: Vec<ProgramTypeOverride>,
    /// Alternative programs for one event, of which the loader keeps one.
    pub variant_groups: Vec<VariantGroup>,
    /// Programs to keep autoloaded in every trial load of a variant (those
    /// a prog-array map statically refers to).
    pub probe_companions: Vec<String>,
    /// Initial values of global variables (`bpf_map__set_initial_value` on
    /// the section's internal map), in file order.
    pub globals: Vec<GlobalValue>,
    /// Per-program attach targets and expectations; programs not listed
    /// attach to what the agent picks, and must attach.
    pub programs: Vec<ProgramContract>,
    /// Commands run in the guest while every link is alive
    /// ([`ValidationMode::Behavior`] only).
    pub functional_tests: Vec<FunctionalTest>,
}

impl Default for LoaderContract {
    fn default() -> LoaderContract {
        LoaderContract {
            case: None,
            validation_mode: ValidationMode::default(),
            auto_fixups: true,
            maps: Vec::new(),
            program_types: Vec::new(),
            variant_groups: Vec::new(),
            probe_companions: Vec::new(),
            globals: Vec::new(),
            programs: Vec::new(),
            functional_tests: Vec::new(),
        }
    }
}

/// Sets a map's shape before load, as its loader does at run time (maps
/// compiled with `max_entries = 0` or value size 0, maps of maps without an
/// inner map, flags).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct MapFixup {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_entries: Option<MaxEntries>,
    /// `bpf_map__set_key_size`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_size: Option<u32>,
    /// `bpf_map__set_value_size` (a stack-trace map's depth × frame size).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_size: Option<u32>,
    /// `bpf_map__set_map_flags`: the map's flags, replacing the object's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub map_flags: Option<u32>,
    /// Create a `BPF_MAP_TYPE_RINGBUF` of this many bytes and make it the
    /// inner map of this array or hash of maps (`bpf_map__set_inner_map_fd`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inner_ringbuf_bytes: Option<u32>,
    /// Create this map and make it the inner map.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inner_map: Option<InnerMap>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum MaxEntries {
    /// `libbpf_num_possible_cpus()` of the booted kernel.
    PossibleCpus,
    Exactly(u32),
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct InnerMap {
    /// `BPF_MAP_TYPE_*` id.
    pub map_type: u32,
    /// libbpf's name for it (`hash`), for messages.
    pub map_type_name: String,
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ProgramTypeOverride {
    /// A program name (a section selector is expanded to its programs on
    /// the host).
    pub program: String,
    /// `BPF_PROG_TYPE_*` id.
    pub prog_type: u32,
    /// libbpf's name for it (`socket_filter`), for messages.
    pub prog_type_name: String,
}

/// Programs for the same event, in preference order: the agent keeps the
/// first whose requirements the kernel meets (and whose trial load passes,
/// if asked), turns autoload off for the others, and reports which it chose.
/// A group where nothing qualifies loads none of them and says so.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct VariantGroup {
    pub group: String,
    pub variants: Vec<Variant>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Variant {
    pub program: String,
    /// All must hold; none: the unconditional fallback.
    #[serde(default)]
    pub requires: Vec<Requirement>,
    /// Also load the program alone first (with the probe companions) and
    /// keep it only if that passes.
    #[serde(default)]
    pub trial_load: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Requirement {
    /// `libbpf_probe_bpf_helper` for the program's type.
    Helper { id: u32, name: Option<String> },
    /// The kfunc is in the kernel's BTF (vmlinux or a module).
    Kfunc(String),
    /// The kernel function exists (kernel BTF, else `/proc/kallsyms`): the
    /// variant's attach target.
    Target(String),
}

/// The initial bytes of one global variable.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct GlobalValue {
    pub name: String,
    /// `.rodata`, `.data`, `.bss`, `.rodata.NAME`, `.data.NAME`.
    pub section: String,
    /// Where the variable starts in the section.
    pub offset: u32,
    /// Exactly the variable's size, in the object's byte order.
    pub bytes: Vec<u8>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ProgramContract {
    pub name: String,
    /// `false`: an attach failure is reported but does not fail the object.
    #[serde(default = "yes")]
    pub attach_required: bool,
    /// Attach here instead of where the agent would.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<AttachTarget>,
    /// Behavior mode: the program must have run (`run_cnt > 0`) by the end.
    #[serde(default)]
    pub expect_run: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum AttachTarget {
    /// kprobe/kretprobe/fentry/fexit/fmod_ret/lsm: the kernel function.
    Function(String),
    Tracepoint {
        category: String,
        name: String,
    },
    Uprobe {
        binary: String,
        symbol: String,
    },
    /// xdp/tc/tcx/netkit: the network interface.
    Interface(String),
    /// cgroup programs: the cgroup directory.
    Cgroup(String),
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FunctionalTest {
    pub name: String,
    /// Run as `bash -lc <command>`.
    pub command: String,
    /// `false`: its failure is reported but does not fail the object.
    pub required: bool,
    pub timeout_ms: u64,
    pub expect_exit_code: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_stdout_contains: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_stderr_contains: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::object::ObjectCheckRequest;

    #[test]
    fn requests_without_a_contract_still_parse() {
        let old: ObjectCheckRequest =
            serde_json::from_str(r#"{"path":"/bpfcompat/objects/0/a.bpf.o"}"#).unwrap();
        assert_eq!(old.contract, LoaderContract::default());
        assert_eq!(old.validation_mode(), ValidationMode::LoadAttach);

        // A contract with only some fields: the rest default.
        let c: LoaderContract = serde_json::from_str(r#"{"case":"net"}"#).unwrap();
        assert!(c.auto_fixups);
        assert_eq!(c.validation_mode, ValidationMode::LoadAttach);
        assert_eq!(c.case.as_deref(), Some("net"));
    }

    #[test]
    fn contracts_round_trip() {
        let contract = LoaderContract {
            validation_mode: ValidationMode::Behavior,
            globals: vec![GlobalValue {
                name: "target_pid".into(),
                section: ".rodata".into(),
                offset: 0,
                bytes: vec![1, 0, 0, 0],
            }],
            maps: vec![MapFixup {
                name: "events".into(),
                max_entries: Some(MaxEntries::PossibleCpus),
                value_size: Some(1016),
                ..MapFixup::default()
            }],
            programs: vec![ProgramContract {
                name: "p".into(),
                attach_required: false,
                target: Some(AttachTarget::Tracepoint {
                    category: "sched".into(),
                    name: "sched_switch".into(),
                }),
                expect_run: true,
            }],
            ..LoaderContract::default()
        };
        let req = ObjectCheckRequest::new("/o.bpf.o".into(), contract);
        assert_eq!(req.validation_mode(), ValidationMode::Behavior);
        let json = serde_json::to_string(&req).unwrap();
        assert!(json.contains(r#""validation_mode":"behavior""#), "{json}");
        assert!(json.contains(r#""max_entries":"possible_cpus""#), "{json}");
        assert!(json.contains(r#""value_size":1016"#), "{json}");
        assert!(!json.contains("key_size"), "{json}");
        let back: ObjectCheckRequest = serde_json::from_str(&json).unwrap();
        assert_eq!(back, req);
    }
}
