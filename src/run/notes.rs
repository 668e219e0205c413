//! What a check that loaded does not show by itself: which attaches were
//! skipped (a partial check), and what the kernel's facts say about
//! programs that attached but cannot run as deployed. Pure functions over
//! an object's outcome and the kernel's facts.

use bpfcompat_proto::object::{BpfKernelFacts, ObjectOutcome, Status, ValidationMode};

use crate::report::inspection::ObjectSummary;

/// `program: reason` for each loaded program whose attach was skipped, or
/// failed where the contract makes it optional, in a mode that attaches:
/// those are what makes a loading object partial.
pub fn skipped_attaches(obj: &ObjectOutcome) -> Vec<String> {
    if obj.mode == ValidationMode::LoadOnly {
        return Vec::new();
    }
    obj.programs
        .iter()
        .filter(|p| p.load.status == Status::Pass)
        .filter_map(|p| {
            let why = p.attach.error.as_deref().unwrap_or("no reason given");
            match p.attach.status {
                Status::Skipped => Some(format!("{}: {why}", p.name)),
                Status::Fail if p.attach_optional => Some(format!(
                    "{}: attach failed, and it is optional (attach: optional): {why}",
                    p.name
                )),
                _ => None,
            }
        })
        .collect()
}

/// What behavior mode saw that does not fail the check: no run statistics,
/// programs the workload did not trigger, links not held, optional tests
/// that failed, workload steps that failed.
pub fn behavior_notes(obj: &ObjectOutcome) -> Vec<String> {
    let Some(b) = &obj.behavior else {
        return Vec::new();
    };
    let mut notes: Vec<String> = b.stats_error.iter().cloned().collect();
    notes.extend(
        obj.programs
            .iter()
            .filter(|p| p.run.as_ref().is_some_and(|r| r.run_count == 0))
            .map(|p| {
                format!(
                    "{}: attached but not triggered by the workload or the functional tests \
                     (run_count 0); add expect_run: true to fail when it does not run",
                    p.name
                )
            }),
    );
    notes.extend(b.not_held.iter().map(|n| {
        format!(
            "{}: attached alone, but not alongside the others during the workload: {}",
            n.program, n.reason
        )
    }));
    notes.extend(
        b.functional_tests
            .iter()
            .filter(|t| !t.required)
            .filter_map(|t| {
                let failure = t.failure.as_ref()?;
                Some(format!(
                    "functional test {} failed (required: false, so the check does not): {failure}",
                    t.name
                ))
            }),
    );
    notes.extend(
        b.workload
            .iter()
            .filter(|step| step.contains(": "))
            .map(|step| format!("workload step failed: {step}")),
    );
    notes
}

/// Helpers that read kernel memory, which lockdown=confidentiality denies
/// at run time (they return -EPERM) although the program loads.
const KERNEL_READ_HELPERS: [u32; 4] = [
    4,   // bpf_probe_read
    45,  // bpf_probe_read_str
    113, // bpf_probe_read_kernel
    115, // bpf_probe_read_kernel_str
];

/// Why programs of an object that loaded cannot run as deployed on this
/// kernel, from the kernel's facts.
pub fn fact_warnings(
    obj: &ObjectOutcome,
    inspection: Option<&ObjectSummary>,
    facts: &BpfKernelFacts,
) -> Vec<String> {
    let mut warnings = Vec::new();
    if facts.bpf_lsm_active == Some(false) {
        let lsms = facts.lsms.as_deref().unwrap_or_default().join(",");
        for p in obj.programs.iter().filter(|p| is_lsm(&p.section)) {
            if p.attach.status == Status::Pass {
                warnings.push(format!(
                    "{}: an LSM program attached, but BPF LSM is not active on this kernel \
                     (active LSMs: {lsms}), so it never runs; boot with lsm={lsms},bpf",
                    p.name
                ));
            }
        }
    }
    if facts.lockdown.as_deref() == Some("confidentiality") {
        for helper in inspection
            .into_iter()
            .flat_map(|i| &i.helpers)
            .filter(|h| KERNEL_READ_HELPERS.contains(&h.id))
        {
            warnings.push(format!(
                "{} ({}): lockdown=confidentiality denies reading kernel memory, so the helper \
                 returns -EPERM at run time",
                helper.name.as_deref().unwrap_or("a kernel-read helper"),
                helper.programs.join(", ")
            ));
        }
    }
    warnings
}

fn is_lsm(section: &str) -> bool {
    ["lsm/", "lsm.s/", "lsm_cgroup/"]
        .iter()
        .any(|p| section.starts_with(p))
}
