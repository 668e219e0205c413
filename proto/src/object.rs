//! What the guest reports about one `.bpf.o`: does it open, create its maps,
//! load, attach, and if not, which program or map failed, in which phase, and
//! why (a [`FailureClass`] with the evidence and a hint).

use serde::{Deserialize, Serialize};

mod applied;
mod contract;
mod helpers;
pub mod map_params;

pub use applied::{
    BehaviorOutcome, Fixup, FunctionalTestOutcome, NotSelected, RunStats, VariantChoice,
};
pub use contract::{
    AttachTarget, FunctionalTest, GlobalValue, InnerMap, LoaderContract, MapFixup, MaxEntries,
    ProgramContract, ProgramTypeOverride, Requirement, ValidationMode, Variant, VariantGroup,
};
pub use map_params::{MapParam, MapShape};

/// The name of BPF helper `id` (`bpf_loop` for 181), if libbpf 1.7 knows it.
pub fn helper_name(id: u32) -> Option<&'static str> {
    helpers::HELPER_NAMES
        .get(id as usize)
        .copied()
        .filter(|n| id != 0 && *n != "unknown")
}

/// The id of BPF helper `name` (181 for `bpf_loop`), if libbpf 1.7 knows it.
pub fn helper_id(name: &str) -> Option<u32> {
    (1..helpers::HELPER_NAMES.len() as u32).find(|&id| helper_name(id) == Some(name))
}

/// Bytes of a verifier log kept in [`ProgramLoad::verifier_log_tail`].
pub const VERIFIER_LOG_TAIL_BYTES: usize = 8 * 1024;
/// Bytes of a verifier log sent at all ([`ProgramLoad::verifier_log`] keeps
/// the last this many). The serial link is slow and a too-complex program's
/// log runs into megabytes; its end is where the verdict is.
pub const VERIFIER_LOG_MAX_BYTES: usize = 1024 * 1024;
/// Bytes of libbpf's own output kept in [`ObjectOutcome::libbpf_log`].
pub const LIBBPF_LOG_MAX_BYTES: usize = 64 * 1024;

/// Asks the agent to check one object.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ObjectCheckRequest {
    /// Guest path of the `.bpf.o`.
    pub path: String,
    /// What the object's loader would do beyond a plain libbpf load, and
    /// what to prove.
    #[serde(default)]
    pub contract: LoaderContract,
}

impl ObjectCheckRequest {
    /// The request for the object at guest `path` under `contract`.
    pub fn new(path: String, contract: LoaderContract) -> ObjectCheckRequest {
        ObjectCheckRequest { path, contract }
    }

    /// What the user asked to prove.
    pub fn validation_mode(&self) -> ValidationMode {
        self.contract.validation_mode
    }
}

/// The one class a failure falls into. Serialised exactly as the names the
/// user sees (`UNSUPPORTED_MAP_TYPE`, ...).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FailureClass {
    UnsupportedMapType,
    UnsupportedHelper,
    MissingKfunc,
    MissingBtf,
    CoreRelocationFailure,
    UnsupportedProgramType,
    UnsupportedAttachType,
    AttachTargetMissing,
    VerifierRejection,
    ProgramTooLarge,
    PermissionDenied,
    InvalidObject,
    /// Behavior mode: a functional test failed while every link was alive.
    FunctionalTestFailure,
    /// Behavior mode: a program the contract says must run never ran.
    ProgramNotTriggered,
    Unknown,
}

impl FailureClass {
    pub const ALL: [FailureClass; 15] = [
        FailureClass::UnsupportedMapType,
        FailureClass::UnsupportedHelper,
        FailureClass::MissingKfunc,
        FailureClass::MissingBtf,
        FailureClass::CoreRelocationFailure,
        FailureClass::UnsupportedProgramType,
        FailureClass::UnsupportedAttachType,
        FailureClass::AttachTargetMissing,
        FailureClass::VerifierRejection,
        FailureClass::ProgramTooLarge,
        FailureClass::PermissionDenied,
        FailureClass::InvalidObject,
        FailureClass::FunctionalTestFailure,
        FailureClass::ProgramNotTriggered,
        FailureClass::Unknown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FailureClass::UnsupportedMapType => "UNSUPPORTED_MAP_TYPE",
            FailureClass::UnsupportedHelper => "UNSUPPORTED_HELPER",
            FailureClass::MissingKfunc => "MISSING_KFUNC",
            FailureClass::MissingBtf => "MISSING_BTF",
            FailureClass::CoreRelocationFailure => "CORE_RELOCATION_FAILURE",
            FailureClass::UnsupportedProgramType => "UNSUPPORTED_PROGRAM_TYPE",
            FailureClass::UnsupportedAttachType => "UNSUPPORTED_ATTACH_TYPE",
            FailureClass::AttachTargetMissing => "ATTACH_TARGET_MISSING",
            FailureClass::VerifierRejection => "VERIFIER_REJECTION",
            FailureClass::ProgramTooLarge => "PROGRAM_TOO_LARGE",
            FailureClass::PermissionDenied => "PERMISSION_DENIED",
            FailureClass::InvalidObject => "INVALID_OBJECT",
            FailureClass::FunctionalTestFailure => "FUNCTIONAL_TEST_FAILURE",
            FailureClass::ProgramNotTriggered => "PROGRAM_NOT_TRIGGERED",
            FailureClass::Unknown => "UNKNOWN",
        }
    }
}

impl std::fmt::Display for FailureClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where in a libbpf loader's sequence something failed.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// `bpf_object__open`: parsing the ELF, sections, BTF.
    Open,
    /// Loading the kernel's BTF (`/sys/kernel/btf/vmlinux`).
    KernelBtf,
    /// Resolving `__ksym` / `__kconfig` externs (kfuncs, kernel variables).
    Extern,
    /// Matching a struct_ops map against the kernel's struct.
    StructOps,
    /// Creating a map.
    MapCreate,
    /// CO-RE relocation against the kernel's BTF.
    CoreRelocation,
    /// Finding a BTF attach target (fentry/lsm/tp_btf/iter function).
    AttachTarget,
    /// `BPF_PROG_LOAD`: the verifier.
    ProgramLoad,
    /// Attaching a loaded program.
    Attach,
    /// Behavior mode: the workload, the functional tests, run statistics.
    Behavior,
}

/// A classified failure.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Diagnosis {
    pub class: FailureClass,
    pub phase: Phase,
    /// The evidence: the log line (or fact) the class was decided on, quoted.
    pub reason: String,
    /// What the user can do about it.
    pub hint: String,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pass,
    Fail,
    /// Not attempted, with a reason (attaching is impossible in an isolated
    /// guest, or an earlier step failed).
    Skipped,
}

/// The verdict for the whole object.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ObjectOutcome {
    /// Guest path, as requested.
    pub path: String,
    pub mode: ValidationMode,
    /// libbpf the agent was built with, as libbpf reports it (`1.7`).
    pub libbpf_version: String,
    /// Pass only if every step the mode asks for passed (skipped attaches
    /// do not fail an object).
    pub status: Status,
    /// libbpf opened the file. If not, nothing else was tried.
    pub open: StepResult,
    /// Loading the object as a whole, as a skeleton does
    /// (`bpf_object__load`: maps, externs, CO-RE, every autoload program).
    pub load: StepResult,
    /// The failure the user has to act on first: the object-level culprit if
    /// the load failed, else the first attach failure.
    pub diagnosis: Option<Diagnosis>,
    pub programs: Vec<ProgramOutcome>,
    pub maps: Vec<MapOutcome>,
    /// Feature probes for exactly the program types, map types and helpers
    /// this object uses.
    pub probes: Vec<FeatureProbe>,
    /// libbpf's output (debug level) while opening and loading the object as
    /// a whole, last [`LIBBPF_LOG_MAX_BYTES`].
    pub libbpf_log: String,
    pub duration_ms: u64,
    /// Map shapes set before load that the object did not give (from the
    /// manifest, or automatic).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fixups: Vec<Fixup>,
    /// The variant chosen in each of the contract's variant groups.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub variants: Vec<VariantChoice>,
    /// Behavior mode only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub behavior: Option<BehaviorOutcome>,
}

/// One step (open, whole-object load) of the check.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StepResult {
    pub status: Status,
    pub errno: Option<i32>,
    /// The error as libbpf / libbpf-rs reported it.
    pub error: Option<String>,
}

impl StepResult {
    pub fn pass() -> Self {
        StepResult {
            status: Status::Pass,
            errno: None,
            error: None,
        }
    }
    pub fn skipped(why: impl Into<String>) -> Self {
        StepResult {
            status: Status::Skipped,
            errno: None,
            error: Some(why.into()),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ProgramOutcome {
    pub name: String,
    /// ELF section, e.g. `kprobe/vfs_read`.
    pub section: String,
    /// libbpf's program type name, e.g. `kprobe`, `tracing`, `sched_cls`.
    #[serde(rename = "type")]
    pub prog_type: String,
    /// libbpf's expected attach type name, e.g. `trace_fentry`.
    pub attach_type: String,
    /// The object asked libbpf to load it (`autoload`).
    pub autoload: bool,
    pub load: ProgramLoad,
    pub attach: AttachResult,
    /// The contract says its attach may fail (`attach: optional`): a failure
    /// is reported and does not fail the object.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub attach_optional: bool,
    /// Behavior mode: its run statistics once the workload and tests ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<RunStats>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ProgramLoad {
    pub status: Status,
    pub errno: Option<i32>,
    pub error: Option<String>,
    /// Last [`VERIFIER_LOG_TAIL_BYTES`] of the verifier log.
    pub verifier_log_tail: String,
    /// The verifier log (last [`VERIFIER_LOG_MAX_BYTES`]); the host moves it
    /// to a file (`verifier_log_file`) and leaves this empty in the report.
    /// Empty when the kernel gave none (loads that pass do not ask for one).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub verifier_log: String,
    /// Where the host wrote the full verifier log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verifier_log_file: Option<String>,
    /// Size of the whole log before truncation.
    pub verifier_log_bytes: u64,
    /// Instructions the verifier processed (`processed N insns` in the log,
    /// or the kernel's `verified_insns` from 5.16 on).
    pub insns_processed: Option<u64>,
    /// The result was found by loading this program alone (autoload off for
    /// every other program), because the whole object failed.
    pub isolated: bool,
    pub diagnosis: Option<Diagnosis>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AttachResult {
    pub status: Status,
    pub errno: Option<i32>,
    /// The error, or for `skipped` why attaching was not possible.
    pub error: Option<String>,
    /// What it was attached to (`lo`, `/sys/fs/cgroup`, `vfs_read`, ...).
    pub target: Option<String>,
    /// Bytes read from an iterator's link (iter programs only).
    pub iter_bytes: Option<u64>,
    pub diagnosis: Option<Diagnosis>,
}

impl AttachResult {
    pub fn skipped(why: impl Into<String>) -> Self {
        AttachResult {
            status: Status::Skipped,
            errno: None,
            error: Some(why.into()),
            target: None,
            iter_bytes: None,
            diagnosis: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MapOutcome {
    pub name: String,
    /// libbpf's map type name, e.g. `ringbuf`, `user_ringbuf`, `arena`.
    #[serde(rename = "type")]
    pub map_type: String,
    pub max_entries: u32,
    pub create: StepResult,
    /// `struct_ops` maps are "attached" (registered) like programs.
    pub attach: Option<AttachResult>,
    pub diagnosis: Option<Diagnosis>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum ProbeKind {
    ProgramType,
    MapType,
    /// A helper, for one program type.
    Helper,
}

/// One libbpf feature probe (`libbpf_probe_bpf_prog_type`, `_map_type`,
/// `_helper`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FeatureProbe {
    pub kind: ProbeKind,
    /// Program type, map type or helper name (`bpf_loop`).
    pub name: String,
    /// Helpers: the program type probed with.
    pub prog_type: Option<String>,
    /// Helpers: the helper id.
    pub id: Option<u32>,
    /// `None`: the probe itself failed (see `error`).
    pub supported: Option<bool>,
    pub error: Option<String>,
}

/// BPF-relevant facts about the booted kernel.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct BpfKernelFacts {
    /// `/sys/kernel/btf/vmlinux` exists.
    pub btf: bool,
    /// `/proc/sys/net/core/bpf_jit_enable` (None: the file is missing: the
    /// kernel was built without a BPF JIT).
    pub jit_enable: Option<i32>,
    /// Programs are JIT-compiled (`jit_enable` is 1 or 2); otherwise the
    /// kernel interprets them, and JIT-only features (trampolines: fentry,
    /// lsm, struct_ops; kfuncs) are missing.
    pub jit: bool,
    /// `/sys/kernel/security/lsm`, split on commas.
    pub lsms: Option<Vec<String>>,
    /// `bpf` is in the active LSM list: BPF LSM programs actually run.
    pub bpf_lsm_active: Option<bool>,
    /// `/sys/kernel/security/lockdown`, the selected mode (`none`,
    /// `integrity`, `confidentiality`).
    pub lockdown: Option<String>,
    /// `/proc/sys/kernel/unprivileged_bpf_disabled`.
    pub unprivileged_bpf_disabled: Option<i32>,
    /// `/proc/sys/kernel/perf_event_max_stack`: the deepest stack a
    /// stack-trace map may hold (127 unless changed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub perf_event_max_stack: Option<u32>,
    /// Things that could not be read, and why.
    pub warnings: Vec<String>,
}

/// Keeps the last `max` bytes of `s`, cut at a char boundary.
pub fn tail(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut start = s.len() - max;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_serialise_as_their_names() {
        for class in FailureClass::ALL {
            let json = serde_json::to_string(&class).unwrap();
            assert_eq!(json, format!("\"{}\"", class.as_str()));
            let back: FailureClass = serde_json::from_str(&json).unwrap();
            assert_eq!(back, class);
        }
    }

    #[test]
    fn helper_names() {
        assert_eq!(helper_name(1), Some("bpf_map_lookup_elem"));
        assert_eq!(helper_name(181), Some("bpf_loop"));
        assert_eq!(helper_name(209), Some("bpf_user_ringbuf_drain"));
        assert_eq!(helper_name(0), None);
        assert_eq!(helper_name(100_000), None);
        assert_eq!(helper_id("bpf_loop"), Some(181));
        assert_eq!(helper_id("unknown"), None);
        assert_eq!(helper_id("bpf_no_such_helper"), None);
    }

    #[test]
    fn tail_cuts_at_char_boundary() {
        assert_eq!(tail("abc", 10), "abc");
        assert_eq!(tail("abcdef", 3), "def");
        assert_eq!(tail("aé", 1), "");
        assert_eq!(tail("aéb", 2), "b");
    }

    #[test]
    fn outcome_round_trips() {
        let o = ObjectOutcome {
            path: "/bpfcompat/a.bpf.o".into(),
            mode: ValidationMode::LoadAttach,
            libbpf_version: "1.7.0".into(),
            status: Status::Fail,
            open: StepResult::pass(),
            load: StepResult {
                status: Status::Fail,
                errno: Some(22),
                error: Some("Invalid argument (os error 22)".into()),
            },
            diagnosis: Some(Diagnosis {
                class: FailureClass::UnsupportedMapType,
                phase: Phase::MapCreate,
                reason: "map 'arena': failed to create: -EINVAL".into(),
                hint: "h".into(),
            }),
            programs: vec![],
            maps: vec![MapOutcome {
                name: "arena".into(),
                map_type: "arena".into(),
                max_entries: 2,
                create: StepResult::pass(),
                attach: None,
                diagnosis: None,
            }],
            probes: vec![FeatureProbe {
                kind: ProbeKind::MapType,
                name: "arena".into(),
                prog_type: None,
                id: None,
                supported: Some(false),
                error: None,
            }],
            libbpf_log: String::new(),
            duration_ms: 1,
            fixups: vec![],
            variants: vec![],
            behavior: None,
        };
        let json = serde_json::to_string(&o).unwrap();
        assert!(json.contains("\"UNSUPPORTED_MAP_TYPE\""));
        assert!(json.contains("\"map_create\""));
        assert_eq!(serde_json::from_str::<ObjectOutcome>(&json).unwrap(), o);
    }
}
