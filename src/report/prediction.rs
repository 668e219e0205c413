//! What the preflight predicted before booting (see `predict`): per object
//! and kernel the obstacles found, per object its minimum upstream kernel,
//! per run how the predictions agreed with the verdicts.

use serde::{Deserialize, Serialize};

/// One object on one kernel, before booting. Necessary conditions only:
/// `NoKnownObstacle` is never a pass.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Prediction {
    pub verdict: Predicted,
    /// Every obstacle found, each naming the thing; empty unless blocked.
    pub obstacles: Vec<Obstacle>,
    /// What the kernel's facts came from: `btf` (its own BTF, read from the
    /// image) or `version` (no BTF: the upstream release table).
    pub basis: String,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Predicted {
    Blocked,
    NoKnownObstacle,
}

/// Something the object needs that the kernel does not have.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Obstacle {
    pub kind: ObstacleKind,
    /// The program it is in, or `None` for the object as a whole (a map,
    /// the license).
    pub program: Option<String>,
    /// One line, naming the thing: "helper bpf_loop (181) absent: this
    /// kernel's bpf_func_id ends at 164".
    pub reason: String,
}

/// What kind of thing is missing (docs/preflight.md has a row for each).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ObstacleKind {
    /// The kernel has no BTF, which a program needs.
    Btf,
    Helper,
    /// A GPL-only helper in an object whose license is not GPL-compatible.
    License,
    Kfunc,
    MapType,
    MapFlags,
    /// A map the object leaves for its loader to complete (an inner map).
    Map,
    ProgType,
    AttachType,
    AttachTarget,
    /// A section libbpf cannot type.
    Section,
    Core,
    /// What the kernel was built without: as its `.config` says, or as the
    /// image of a kernel without BTF shows.
    KernelConfig,
    /// Code every verifier refuses, seen in the instructions themselves.
    Verifier,
}

/// The oldest upstream release that has everything an object needs.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct MinKernel {
    /// `MAJOR.MINOR`.
    pub version: String,
    /// Every requirement newer than 5.4, newest first.
    pub because: Vec<Requirement>,
}

/// A feature and the release it appeared in.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Requirement {
    /// `bpf_loop`, `map type ringbuf`, `attach type tcx_ingress`, ...
    pub what: String,
    pub since: String,
    /// The programs needing it; empty for the object as a whole.
    pub programs: Vec<String>,
}

/// How the predictions of a run compared with its verdicts, over every
/// object × kernel cell that was judged.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Agreement {
    /// Predicted blocked, and failed: the prediction explained it.
    pub blocked_and_failed: usize,
    /// Predicted blocked, yet passed: a prediction bug.
    pub blocked_but_passed: usize,
    /// Failed with no obstacle predicted: a runtime failure.
    pub failed_unpredicted: usize,
    /// No obstacle predicted, and passed (or partial).
    pub clear_and_passed: usize,
}

impl MinKernel {
    /// "≥ 5.17 because bpf_loop (5.17, in handle_exec); map type ringbuf (5.8)".
    pub fn line(&self) -> String {
        match self.reasons() {
            Some(because) => format!("≥ {} because {because}", self.version),
            None => format!("≥ {}", self.version),
        }
    }

    /// Its requirements, joined; `None` when none is newer than 5.4.
    pub fn reasons(&self) -> Option<String> {
        let because: Vec<String> = self
            .because
            .iter()
            .map(|r| {
                if r.programs.is_empty() {
                    format!("{} ({})", r.what, r.since)
                } else {
                    format!("{} ({}, in {})", r.what, r.since, r.programs.join(", "))
                }
            })
            .collect();
        (!because.is_empty()).then(|| because.join("; "))
    }
}

/// How one object's minimum upstream kernel moved between two runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MinKernelChange {
    pub object: String,
    pub base: String,
    pub head: String,
    pub raised: bool,
    /// What the head needs that is newer than the base's minimum (raised),
    /// or what the base needed that the head no longer does (lowered).
    pub because: Vec<Requirement>,
}

impl MinKernelChange {
    /// "raises the minimum kernel of `x.bpf.o` from 5.8 to 5.17 (`bpf_loop`
    /// in `handle_exec`)", each name made inert by `quote`.
    pub fn sentence(&self, quote: impl Fn(&str) -> String) -> String {
        let why: Vec<String> = self
            .because
            .iter()
            .map(|r| {
                let programs: Vec<String> = r.programs.iter().map(|p| quote(p)).collect();
                if programs.is_empty() {
                    quote(&r.what)
                } else {
                    format!("{} in {}", quote(&r.what), programs.join(", "))
                }
            })
            .collect();
        format!(
            "{} the minimum kernel of {} from {} to {}{}",
            if self.raised { "raises" } else { "lowers" },
            quote(&self.object),
            self.base,
            self.head,
            if why.is_empty() {
                String::new()
            } else {
                format!(" ({})", why.join("; "))
            }
        )
    }
}
