//! What the agent did with an object's [`LoaderContract`](super::LoaderContract)
//! and found while doing it: the fixups it applied, the variant it chose per
//! group, and in behavior mode the run statistics, the workload and the
//! functional tests. Every field is optional in the outcome, so a report
//! of a check without a contract has the shape it always had.

use serde::{Deserialize, Serialize};

/// Something set on the object before load that the object did not say.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Fixup {
    pub map: String,
    /// `max_entries`, `inner_map`.
    pub field: String,
    /// What it was set to (`262144`, `4 (possible CPUs)`, `ringbuf of 262144 bytes`).
    pub value: String,
    /// `manifest`, or why the automatic fixup applied.
    pub why: String,
}

/// How one variant group was resolved on this kernel.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct VariantChoice {
    pub group: String,
    /// The variant loaded and attached; `None`: no variant qualified, the
    /// group failed (see the object's diagnosis).
    pub selected: Option<String>,
    /// Why the selected variant qualified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selected_because: Option<String>,
    /// The others, in preference order, and why each was not loaded.
    pub not_selected: Vec<NotSelected>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct NotSelected {
    pub program: String,
    pub reason: String,
}

/// A loaded program's run statistics after the workload and tests.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RunStats {
    pub run_count: u64,
    pub run_time_ns: u64,
}

/// Behavior mode's part of an object's outcome.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct BehaviorOutcome {
    /// How run statistics were turned on (`BPF_ENABLE_STATS`, the
    /// `kernel.bpf_stats_enabled` sysctl); `None`: they could not be, and
    /// `stats_error` says why (kernels before 5.1 have none).
    pub stats: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stats_error: Option<String>,
    /// The built-in workload's steps, each with `: error` if it failed.
    pub workload: Vec<String>,
    /// Programs whose links could not be held while the workload ran,
    /// with why (they attached on their own, but not alongside the others).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_held: Vec<NotSelected>,
    /// Emptied by the host, which reports them as the check's functional
    /// tests.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub functional_tests: Vec<FunctionalTestOutcome>,
}

/// One functional test, run while every link was alive. The host moves
/// these to the check's `functional.tests`, beside command mode's.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FunctionalTestOutcome {
    pub name: String,
    pub command: String,
    /// `false`: its failure is reported and does not fail the object.
    pub required: bool,
    pub expect_exit_code: i32,
    /// What did not match what it expects; `None`: it passed.
    pub failure: Option<String>,
    pub timed_out: bool,
    pub outcome: crate::CommandOutcome,
}
