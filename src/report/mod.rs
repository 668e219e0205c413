//! The compatibility report: what a run found, per kernel.
//!
//! These types are the JSON contract documented in `docs/report.md` and
//! `docs/report.schema.json`; everything that publishes or compares results
//! reads them, so field names change only with the schema version.

pub mod html;
pub mod inspection;
pub mod limits;
pub mod markdown;
pub mod prediction;

use std::io::Write;
use std::path::{Path, PathBuf};

use bpfcompat_proto::object::{BpfKernelFacts, FailureClass, FeatureProbe, ObjectOutcome, Phase};
use bpfcompat_proto::CommandOutcome;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::escape;
use inspection::ObjectSummary;

pub use html::render_html;
pub use markdown::render_markdown;

pub const SCHEMA: &str = "bpfcompat.report/v1";

/// Bytes of an object's libbpf messages kept in the report: the end, where
/// the failure is; the rest is in `validation.libbpf_log_file`. A hundred
/// objects on a handful of kernels must not make a report of megabytes.
pub const LIBBPF_LOG_TAIL_BYTES: usize = 4 * 1024;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Report {
    pub schema: String,
    pub tool_version: String,
    pub mode: Mode,
    pub artifact: ArtifactIdentity,
    pub matrix: MatrixRef,
    /// Set by `--shard I/N`; absent for a run (or merge) of the whole matrix,
    /// so unsharded reports keep their exact shape.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<Shard>,
    pub accel: Accel,
    pub qemu_version: String,
    /// The libbpf inside the guest validator (artifact mode; null otherwise).
    #[serde(default)]
    pub libbpf_version: Option<String>,
    pub started_at: String,
    pub duration_ms: u64,
    pub summary: Summary,
    pub targets: Vec<Target>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// The user's loader command decides.
    Command,
    /// The bundled libbpf validator checks `.bpf.o` objects.
    Artifact,
}

/// What was checked, stable across runs: `sha256:<hex>` of an artifact, or
/// `command://<name>@<digest>` for a loader command without one.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ArtifactIdentity {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MatrixRef {
    pub name: String,
    pub digest: String,
    pub path: String,
}

/// Which share of the matrix a sharded run checked.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Shard {
    /// 1-based, `I` of `--shard I/N`.
    pub index: usize,
    pub count: usize,
    /// Every kernel id of the matrix in matrix order, not only this shard's:
    /// `merge` needs it to restore the order and to name the kernels of a
    /// missing shard.
    pub matrix_kernels: Vec<String>,
    /// The kernels of every shard, when a plan (`--shard-plan`) split the
    /// matrix; absent for round-robin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<Vec<Vec<String>>>,
}

/// The way a job travels into a waiting guest.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum JobChannel {
    /// QEMU's fw_cfg device, read by DMA: memory speed.
    FwCfg,
    /// The result port, ttyS1: about 110 KB/s under TCG; the fallback.
    Serial,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Accel {
    Kvm,
    Tcg,
}

impl std::fmt::Display for Accel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Accel::Kvm => "kvm",
            Accel::Tcg => "tcg",
        })
    }
}

/// The accelerator a boot ran under, and why it was chosen.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AccelUse {
    pub accel: Accel,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Summary {
    pub status: RunStatus,
    pub passed: usize,
    /// Kernels where everything loaded but something could not be attached;
    /// absent when none, so reports without partial kernels keep their shape.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub partial: usize,
    pub failed: usize,
    pub infra_errors: usize,
    pub required_failed: usize,
    pub exit_code: i32,
    /// How the preflight's predictions compared with the verdicts; absent
    /// when nothing was predicted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prediction: Option<prediction::Agreement>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Pass,
    Fail,
    Error,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Target {
    pub id: String,
    pub required: bool,
    pub status: TargetStatus,
    pub kernel: KernelInfo,
    pub classification: Option<Classification>,
    pub timing_ms: Timing,
    pub console_log: String,
    /// What the kernel booted under; absent when it never booted (e.g. the
    /// kernel could not be fetched).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accel: Option<AccelUse>,
    /// Restored from a snapshot rather than booted; absent when booted.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub restored: bool,
    /// A restore: from QEMU's start until the saved guest ran again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_ms: Option<u64>,
    /// The size of the snapshot restored from, or saved by this run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_bytes: Option<u64>,
    /// How the job reached a restored (or snapshotted) guest; absent when
    /// the kernel booted with everything in its initramfs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_channel: Option<JobChannel>,
    /// The console's last lines, for infrastructure errors: what the kernel
    /// said before it died or hung.
    pub console_tail: Option<String>,
    pub checks: Vec<Check>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum TargetStatus {
    Pass,
    /// Every check passed or was partial, at least one partial: loads, but
    /// not everything could be attached here. Never gates, never a ✅.
    Partial,
    Fail,
    InfraError,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct KernelInfo {
    /// `uname -r` inside the guest; null when the guest never reported.
    pub release: Option<String>,
    pub arch: Option<String>,
    pub btf: Option<bool>,
    pub source: String,
    /// Digest of the booted kernel image; null when it could not be fetched.
    pub sha256: Option<String>,
    /// JIT, active LSMs, lockdown: gathered when objects are checked.
    #[serde(default)]
    pub bpf: Option<BpfKernelFacts>,
    /// Every libbpf feature probe the checked objects needed, once each:
    /// a kernel fact, not repeated per object (objects keep only the
    /// probes that came back unsupported or failed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub probes: Vec<FeatureProbe>,
    /// The kernel modules the check needed: which were loaded, which failed
    /// and why, which the kernel's module tree lacks. Absent when the check
    /// needed no module (nothing was looked at, so nothing is said).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modules: Option<ModuleFacts>,
    /// How much of its memory the guest used (see `bench/memory.sh`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<bpfcompat_proto::GuestMemory>,
}

/// What the guest was given of the kernel's modules, and what loading gave.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ModuleFacts {
    /// Where the module tree came from ("the kernel's package (1121
    /// modules)", "modules: apt:linux-modules-...=..."); null when the kernel
    /// has none here (a bare bzImage, or a package without modules).
    pub tree: Option<String>,
    /// What having no tree means, when it matters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Loaded in the guest (or already loaded), in load order.
    pub loaded: Vec<ModuleFact>,
    /// Shipped but not loaded; `reason` has the kernel's words.
    pub failed: Vec<ModuleFact>,
    /// Needed, and not in the tree (nor listed as built in).
    pub not_found: Vec<ModuleFact>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ModuleFact {
    pub name: String,
    /// Why it was wanted: "tc program tc_pass", "defines nf_conntrack_in
    /// (kprobe/nf_conntrack_in)", "needed by nf_conntrack", "--modules".
    pub why: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Classification {
    pub code: ClassCode,
    /// The evidence: what was seen, quoted.
    pub reason: String,
    /// What the user can do about it.
    pub hint: String,
    /// Where a `.bpf.o` failed (open, map_create, program_load, attach, ...);
    /// null for command checks and infrastructure errors.
    #[serde(default)]
    pub phase: Option<Phase>,
    /// On a kernel's row: how many other classes its failing checks have
    /// (the row shows the most frequent one).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub other_classes: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ClassCode {
    CommandValidationFailure,
    InfraTimeout,
    KernelPanic,
    /// The guest ran out of its memory: the matrix should give it more.
    InfraGuestOom,
    InfraError,
    /// A `.bpf.o` failure, classified by the validator.
    #[serde(untagged)]
    Object(FailureClass),
}

impl ClassCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ClassCode::Object(class) => class.as_str(),
            ClassCode::CommandValidationFailure => "COMMAND_VALIDATION_FAILURE",
            ClassCode::InfraTimeout => "INFRA_TIMEOUT",
            ClassCode::KernelPanic => "KERNEL_PANIC",
            ClassCode::InfraGuestOom => "INFRA_GUEST_OOM",
            ClassCode::InfraError => "INFRA_ERROR",
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Timing {
    /// From starting QEMU to the agent's first word.
    pub boot: u64,
    /// From the agent's first word to its result.
    pub check: u64,
    pub total: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Check {
    pub kind: CheckKind,
    pub status: CheckStatus,
    pub classification: Option<Classification>,
    /// Why the check is partial: `program: reason` for each attach that was
    /// skipped.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<String>,
    /// What the kernel's facts say about a check that loaded: a program
    /// that attaches but cannot run as deployed (BPF LSM inactive, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    pub artifact: CheckArtifact,
    pub validation: Validation,
    pub functional: Functional,
    /// What the preflight predicted for this object on this kernel before
    /// booting; absent for commands and kernels whose BTF could not be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prediction: Option<prediction::Prediction>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum CheckKind {
    Command,
    Object,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    Pass,
    /// Loads; some programs' attaches were skipped (see `skipped`).
    Partial,
    Fail,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CheckArtifact {
    pub name: String,
    pub path: Option<String>,
    pub sha256: Option<String>,
    /// The suite case this check is (`cases[].name`); absent outside suites.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub case: Option<String>,
    /// The manifest applied to the object (given, or found beside it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<String>,
    /// What the host read from the object before booting anything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inspection: Option<ObjectSummary>,
    /// The oldest upstream kernel with everything the object needs, from
    /// its inspection and the upstream release table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_kernel: Option<prediction::MinKernel>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Validation {
    pub load_status: LoadStatus,
    /// The whole of libbpf's messages, in the kernel's run directory; the
    /// report keeps the last [`LIBBPF_LOG_TAIL_BYTES`] in `libbpf_log`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub libbpf_log_file: Option<String>,
    /// What the validator found, for object checks: per program, map and
    /// probe (see `ObjectOutcome`).
    #[serde(flatten)]
    pub object: Option<ObjectOutcome>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum LoadStatus {
    Pass,
    Fail,
    /// Command mode: the user's loader does its own loading.
    Skipped,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Functional {
    pub tests: Vec<FunctionalTest>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FunctionalTest {
    pub name: String,
    pub status: CheckStatus,
    pub expected_exit_code: i32,
    /// A manifest's test (behavior mode): its command line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// What did not match what the test expects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    /// `required: false` in the manifest: a failure does not fail the check.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub optional: bool,
    /// What the guest saw: exit code (null when killed by a signal or never
    /// started), signal, error, output tails and byte counts.
    #[serde(flatten)]
    pub outcome: CommandOutcome,
}

impl Summary {
    /// Counts the targets and decides the run's status and exit code: an
    /// infrastructure error on a required kernel means the answer is unknown
    /// (1), a required kernel that failed means incompatible (2).
    pub fn of(targets: &[Target]) -> Summary {
        let count = |s: TargetStatus| targets.iter().filter(|t| t.status == s).count();
        let required = |s: TargetStatus| {
            targets
                .iter()
                .filter(|t| t.required && t.status == s)
                .count()
        };
        let (status, exit_code) = if required(TargetStatus::InfraError) > 0 {
            (RunStatus::Error, 1)
        } else if required(TargetStatus::Fail) > 0 {
            (RunStatus::Fail, 2)
        } else {
            (RunStatus::Pass, 0)
        };
        Summary {
            status,
            passed: count(TargetStatus::Pass),
            partial: count(TargetStatus::Partial),
            failed: count(TargetStatus::Fail),
            infra_errors: count(TargetStatus::InfraError),
            required_failed: required(TargetStatus::Fail),
            exit_code,
            prediction: agreement(targets),
        }
    }
}

/// The agreement over every object check of `targets` that has a
/// prediction; `None` when none has.
fn agreement(targets: &[Target]) -> Option<prediction::Agreement> {
    use prediction::Predicted;
    let mut a = prediction::Agreement::default();
    let mut any = false;
    for c in targets.iter().flat_map(|t| &t.checks) {
        let Some(p) = &c.prediction else { continue };
        any = true;
        let failed = c.status == CheckStatus::Fail;
        let slot = match (p.verdict, failed) {
            (Predicted::Blocked, true) => &mut a.blocked_and_failed,
            (Predicted::Blocked, false) => &mut a.blocked_but_passed,
            (Predicted::NoKnownObstacle, true) => &mut a.failed_unpredicted,
            (Predicted::NoKnownObstacle, false) => &mut a.clear_and_passed,
        };
        *slot += 1;
    }
    any.then_some(a)
}

/// Writes `contents` so that `path` is either its old self or complete: a
/// crash or Ctrl-C never leaves a half-written report for CI to publish.
pub fn write_atomically(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir)?;
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(contents)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[derive(Debug, Error)]
pub enum ReadError {
    #[error("cannot read report {path}: {err}")]
    Io { path: PathBuf, err: std::io::Error },
    #[error("{path} is not a bpfcompat report: {message}")]
    Parse { path: PathBuf, message: String },
    #[error(
        "{path} is a {found:?} report, not {SCHEMA:?}: this bpfcompat reads, compares, merges \
         and publishes only reports of the same schema as its own; rerun the check with it"
    )]
    Schema { path: PathBuf, found: String },
    #[error(
        "{path} is {bytes} bytes, more than the {} a report may be: not a report bpfcompat wrote",
        limits::MAX_REPORT_BYTES
    )]
    TooLarge { path: PathBuf, bytes: u64 },
    #[error("{path}: {}: {}; not a report bpfcompat wrote", .finding.field, .finding.message)]
    Limit {
        path: PathBuf,
        finding: limits::Finding,
    },
    #[error(
        "{path}: {}: {} (docs/report.schema.json); a report from another run is published \
         only as `bpfcompat test` writes it",
        .finding.field, .finding.message
    )]
    Invalid {
        path: PathBuf,
        finding: limits::Finding,
    },
}

/// How far a report is trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trust {
    /// Written by this job's own `bpfcompat test`: its schema version, its
    /// sizes and its shape are checked.
    Own,
    /// Another run's artifact: the whole schema too, before any of it is used.
    Stranger,
}

impl Report {
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("report serialises") + "\n"
    }

    /// Reads a report written by `to_json`; errors name the file (and the
    /// field, for one over the limits of [`limits`]).
    pub fn read(path: &Path) -> Result<Report, ReadError> {
        Report::parse_trusting(path, &Report::read_bytes(path)?, Trust::Own)
    }

    /// A report file's bytes, for [`Report::parse`]; refused unread when it
    /// is larger than any report.
    pub fn read_bytes(path: &Path) -> Result<Vec<u8>, ReadError> {
        use std::io::Read as _;
        let io = |err| ReadError::Io {
            path: path.to_owned(),
            err,
        };
        let file = std::fs::File::open(path).map_err(io)?;
        let mut bytes = Vec::new();
        file.take(limits::MAX_REPORT_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(io)?;
        match bytes.len() as u64 {
            n if n > limits::MAX_REPORT_BYTES => Err(ReadError::TooLarge {
                path: path.to_owned(),
                bytes: std::fs::metadata(path).map_or(n, |m| m.len()),
            }),
            _ => Ok(bytes),
        }
    }

    /// Reads a report a stranger may have written (another workflow run's
    /// artifact): it must match `docs/report.schema.json` as well, and the
    /// error names the first field that does not.
    pub fn read_untrusted(path: &Path) -> Result<Report, ReadError> {
        Report::parse_trusting(path, &Report::read_bytes(path)?, Trust::Stranger)
    }

    /// Parses report bytes already read from `path`, for callers that also
    /// need the bytes themselves (e.g. to check their digest), as
    /// [`Report::read`] does.
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<Report, ReadError> {
        Report::parse_trusting(path, bytes, Trust::Own)
    }

    /// The one place a report's schema is checked: its version before its
    /// shape, so a report of another version is named as such, not as
    /// malformed.
    fn parse_trusting(path: &Path, bytes: &[u8], trust: Trust) -> Result<Report, ReadError> {
        let parse_err = |err: serde_json::Error| ReadError::Parse {
            path: path.to_owned(),
            // serde quotes the value it did not expect: a line of it at most.
            message: escape::plain_line(&err.to_string())
                .chars()
                .take(300)
                .collect(),
        };
        let value: serde_json::Value = serde_json::from_slice(bytes).map_err(parse_err)?;
        match value.get("schema").and_then(serde_json::Value::as_str) {
            Some(SCHEMA) => {}
            Some(found) => {
                return Err(ReadError::Schema {
                    path: path.to_owned(),
                    found: found.chars().take(100).collect(),
                })
            }
            None => {
                return Err(ReadError::Parse {
                    path: path.to_owned(),
                    message: "no \"schema\" string".into(),
                })
            }
        }
        let over = |finding| ReadError::Limit {
            path: path.to_owned(),
            finding,
        };
        limits::check_sizes(&value).map_or(Ok(()), |f| Err(over(f)))?;
        if trust == Trust::Stranger {
            if let Some(finding) = limits::check_schema(&value) {
                return Err(ReadError::Invalid {
                    path: path.to_owned(),
                    finding,
                });
            }
        }
        serde_json::from_slice(bytes).map_err(parse_err)
    }
}
