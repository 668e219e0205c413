//! Deciding what one boot means: pass, fail, or an infrastructure error, and
//! why. Pure functions over what the boot produced, so every branch is
//! testable without booting anything.

use std::os::unix::process::ExitStatusExt;
use std::time::Duration;

use bpfcompat_proto::object::{BpfKernelFacts, FailureClass, ObjectOutcome, Status};
use bpfcompat_proto::{
    decode_frame, CheckOutcome, CommandOutcome, FrameError, KernelFacts, RESULT_PORT_FAILURE,
};

use super::notes;
use crate::boot::qemu::{BootRecord, Ending};
use crate::report::{
    Check, CheckArtifact, CheckKind, CheckStatus, ClassCode, Classification, Functional,
    FunctionalTest, LoadStatus, TargetStatus, Timing, Validation,
};

/// What a boot says about one kernel.
#[derive(Debug)]
pub struct Verdict {
    pub status: TargetStatus,
    pub classification: Option<Classification>,
    /// What the guest said about its kernel, when it reported at all.
    pub kernel: Option<KernelFacts>,
    pub checks: Vec<Check>,
    pub timing: Timing,
}

/// How the checks are judged.
pub struct Expectation<'a> {
    /// The exit code a command check must give.
    pub expected_exit: i32,
    /// What each check was about, in request order.
    pub artifacts: &'a [CheckArtifact],
    /// The guest's memory, for an out-of-memory verdict.
    pub memory_mb: u32,
}

pub fn judge(record: &BootRecord, timeout: Duration, expect: &Expectation) -> Verdict {
    let ms = |d: Duration| d.as_millis() as u64;
    let total = ms(record.elapsed);
    let boot = record.ready_after.map(ms).unwrap_or(total);
    let timing = Timing {
        boot,
        check: total - boot.min(total),
        total,
    };
    let infra = |code: ClassCode, reason: String, hint: &str| Verdict {
        status: TargetStatus::InfraError,
        classification: Some(Classification {
            code,
            reason,
            hint: hint.to_owned(),
            phase: None,
            other_classes: 0,
        }),
        kernel: None,
        checks: Vec::new(),
        timing: timing.clone(),
    };
    // Out of memory outranks everything: what failed after it (a panic,
    // a killed agent or loader) says nothing about the kernel or the object.
    if let Some(line) = &record.oom_line {
        return infra(
            ClassCode::InfraGuestOom,
            out_of_memory(expect, line),
            OOM_HINT,
        );
    }
    // Then a panic: whatever else happened, the kernel died.
    if let Some(line) = &record.panic_line {
        return infra(
            ClassCode::KernelPanic,
            line.clone(),
            "The kernel crashed during the check. If the command triggers it, this kernel has a \
             bug your loader hits; the console tail in the report shows the trace.",
        );
    }
    if record.ending == Ending::TimedOut {
        let reason = match record.ready_after {
            Some(at) => format!(
                "no result within {}; the agent started after {:.1} s, so the check itself hung",
                humantime::format_duration(timeout),
                at.as_secs_f64()
            ),
            None => format!(
                "no result within {}; the kernel never reached the agent",
                humantime::format_duration(timeout)
            ),
        };
        return infra(
            ClassCode::InfraTimeout,
            reason,
            "Raise --timeout or the kernel's `timeout:` in the matrix if the check is just slow \
             (TCG without KVM is 5-20x slower); otherwise see the console log.",
        );
    }
    if record.ending == Ending::Silent {
        return infra(
            ClassCode::InfraTimeout,
            format!(
                "the kernel printed nothing in {:.0} s: the accelerator is not running the guest",
                record.elapsed.as_secs_f64()
            ),
            "Run with --accel tcg; KVM on this host accepts guests but does not run them.",
        );
    }
    let outcome = match decode_frame(&record.result) {
        Ok(outcome) => outcome,
        Err(e) => {
            let (reason, hint) = lost_result(record, e);
            return infra(ClassCode::InfraError, reason, hint);
        }
    };
    if let Some(why) = outcome.fatal.as_ref().filter(|why| is_out_of_memory(why)) {
        return infra(
            ClassCode::InfraGuestOom,
            out_of_memory(expect, why),
            OOM_HINT,
        );
    }
    if let Some(why) = &outcome.fatal {
        return infra(
            ClassCode::InfraError,
            format!("the guest agent failed: {why}"),
            AGENT_BUG_HINT,
        );
    }
    let facts = outcome.kernel.bpf.clone().unwrap_or_default();
    let checks: Vec<Check> = outcome
        .checks
        .into_iter()
        .zip(expect.artifacts)
        .map(|(c, artifact)| match c {
            CheckOutcome::Command(cmd) => command_check(cmd, expect.expected_exit, artifact),
            CheckOutcome::Object(obj) => object_check(*obj, artifact, &facts),
        })
        .collect();
    let status = if checks.iter().any(|c| c.status == CheckStatus::Fail) {
        TargetStatus::Fail
    } else if checks.iter().any(|c| c.status == CheckStatus::Partial) {
        TargetStatus::Partial
    } else {
        TargetStatus::Pass
    };
    Verdict {
        status,
        classification: row_classification(&checks),
        kernel: Some(outcome.kernel),
        checks,
        timing,
    }
}

const OOM_HINT: &str = "Give this kernel more memory in the matrix: `memory: 1G` (or \
                        `memory_mb: 1024`); the default is 512 MB.";

fn out_of_memory(expect: &Expectation, evidence: &str) -> String {
    format!(
        "the guest ran out of its {} MB of memory: {evidence}",
        expect.memory_mb
    )
}

/// Whether the agent failed for want of memory: the initramfs or job is
/// unpacked into RAM, so a full root file system is a full memory.
fn is_out_of_memory(why: &str) -> bool {
    [
        "No space left on device",
        "Cannot allocate memory",
        "os error 28",
        "os error 12",
    ]
    .iter()
    .any(|m| why.contains(m))
}

/// A kernel row's class: the most frequent class of its failing checks
/// (the first to occur, on a tie), with that check's evidence, and how many
/// other classes there are.
fn row_classification(checks: &[Check]) -> Option<Classification> {
    let classes: Vec<&Classification> = checks
        .iter()
        .filter(|c| c.status == CheckStatus::Fail)
        .filter_map(|c| c.classification.as_ref())
        .collect();
    let mut counts: Vec<(ClassCode, usize)> = Vec::new();
    for c in &classes {
        match counts.iter_mut().find(|(code, _)| *code == c.code) {
            Some((_, n)) => *n += 1,
            None => counts.push((c.code, 1)),
        }
    }
    // max_by_key keeps the last of equal maxima; reversed, the first.
    let (top, _) = counts.iter().rev().max_by_key(|(_, n)| *n)?;
    let mut row = (*classes.iter().find(|c| c.code == *top)?).clone();
    row.other_classes = counts.len() - 1;
    Some(row)
}

const AGENT_BUG_HINT: &str =
    "This is a bpfcompat problem, not your code's: please report it with the console log.";

/// Why a boot gave no usable result, and what to do about it. A complete
/// result outranks how QEMU ended: a guest that reported was judged already.
fn lost_result(record: &BootRecord, e: FrameError) -> (String, &'static str) {
    let status = match record.ending {
        Ending::Exited(status) => status,
        Ending::TimedOut | Ending::Silent | Ending::Answered => None,
    };
    // bpfcompat only ever kills QEMU at the timeout, which is told apart
    // above: any other signal came from outside.
    if let Some(signal) = status.and_then(|s| s.signal()) {
        return (
            killed_reason(signal),
            "This kernel has no verdict: rerun it. If QEMU is killed again, look for OOM kills \
             in the host's kernel log (`dmesg | grep -i 'killed process'`) and give the host more \
             memory, or run fewer kernels at once (--concurrency) or with less `memory_mb:`.",
        );
    }
    if let Some(why) = record
        .console_tail
        .lines()
        .find_map(|l| l.split_once(RESULT_PORT_FAILURE))
    {
        return (
            format!("the agent could not send its result: {}", why.1.trim()),
            AGENT_BUG_HINT,
        );
    }
    let shutdown = shutdown_line(&record.console_tail);
    let mut reason = match (e, shutdown) {
        (FrameError::Missing, Some(line)) if record.ready_after.is_some() => format!(
            "the guest shut down before the agent sent its result (console: \"{line}\"): the \
             check powered off or rebooted the machine"
        ),
        (FrameError::Missing, _) if record.ready_after.is_some() => {
            "the agent started but the guest ended without sending a result".to_owned()
        }
        (FrameError::Missing, _) => "the guest ended before the agent started".to_owned(),
        (other, _) => other.to_string(),
    };
    if let Some(code) = status.and_then(|s| s.code()).filter(|&c| c != 0) {
        reason.push_str(&format!("; QEMU exited with status {code}"));
    }
    if !record.qemu_stderr.is_empty() {
        reason.push_str(&format!("; QEMU said: {}", record.qemu_stderr));
    }
    let hint = if shutdown.is_some() && record.ready_after.is_some() {
        "The check must leave the machine running: bpfcompat sends the verdict after the \
         command exits and then resets the guest itself. Remove the poweroff, reboot or halt \
         from the command."
    } else {
        "See the console tail: a kernel that cannot boot this way (missing initramfs or serial \
         support) or a QEMU problem."
    };
    (reason, hint)
}

fn killed_reason(signal: i32) -> String {
    const NOT_US: &str = "; bpfcompat did not send it";
    let (name, why) = match signal {
        libc::SIGKILL => (
            " (SIGKILL)",
            "; bpfcompat did not send it: on a host short of memory, this is the kernel's OOM \
             killer",
        ),
        libc::SIGTERM => (" (SIGTERM)", NOT_US),
        libc::SIGINT => (" (SIGINT)", NOT_US),
        libc::SIGSEGV => (" (SIGSEGV)", ": QEMU crashed"),
        libc::SIGABRT => (" (SIGABRT)", ": QEMU crashed"),
        libc::SIGBUS => (" (SIGBUS)", ": QEMU crashed"),
        _ => ("", NOT_US),
    };
    format!("QEMU was killed by signal {signal}{name} before the guest sent its result{why}")
}

/// The kernel's last word when something powered off or reset the machine.
fn shutdown_line(console_tail: &str) -> Option<&str> {
    const SHUTDOWN_MARKERS: &[&str] = &[
        "reboot: Power down",
        "reboot: Restarting system",
        "reboot: System halted",
    ];
    console_tail
        .lines()
        .rev()
        .find(|l| SHUTDOWN_MARKERS.iter().any(|m| l.contains(m)))
        .map(str::trim)
}

fn command_check(cmd: CommandOutcome, expected_exit: i32, artifact: &CheckArtifact) -> Check {
    let passed = cmd.error.is_none() && cmd.exit_code == Some(expected_exit);
    let status = if passed {
        CheckStatus::Pass
    } else {
        CheckStatus::Fail
    };
    let classification = (!passed).then(|| {
        let reason = match (&cmd.error, cmd.exit_code, cmd.signal) {
            (Some(err), _, _) => format!("the command could not be started: {err}"),
            (None, Some(code), _) => format!(
                "the command exited with {code}, expected {expected_exit}{}",
                last_line(&cmd.stderr_tail)
                    .map(|l| format!("; last stderr line: {l}"))
                    .unwrap_or_default()
            ),
            (None, None, Some(sig)) => format!("the command was killed by signal {sig}"),
            (None, None, None) => "the command ended without an exit status".to_owned(),
        };
        Classification {
            code: ClassCode::CommandValidationFailure,
            reason,
            hint: "Your loader does not come up on this kernel: read its stderr tail, then guard \
                   the feature it needs with a probe or ship a variant for this kernel."
                .to_owned(),
            phase: None,
            other_classes: 0,
        }
    });
    Check {
        kind: CheckKind::Command,
        status,
        classification,
        skipped: Vec::new(),
        warnings: Vec::new(),
        artifact: artifact.clone(),
        prediction: None,
        validation: Validation {
            load_status: LoadStatus::Skipped,
            libbpf_log_file: None,
            object: None,
        },
        functional: Functional {
            tests: vec![FunctionalTest {
                name: "command".to_owned(),
                command: None,
                failure: None,
                optional: false,
                status,
                expected_exit_code: expected_exit,
                outcome: cmd,
            }],
        },
    }
}

fn object_check(mut obj: ObjectOutcome, artifact: &CheckArtifact, facts: &BpfKernelFacts) -> Check {
    let passed = obj.status == Status::Pass;
    let skipped = if passed {
        notes::skipped_attaches(&obj)
    } else {
        Vec::new()
    };
    let mut warnings = if passed {
        notes::fact_warnings(&obj, artifact.inspection.as_ref(), facts)
    } else {
        Vec::new()
    };
    warnings.extend(notes::behavior_notes(&obj));
    let tests = functional_tests(&mut obj);
    let classification = (!passed).then(|| match &obj.diagnosis {
        Some(d) => Classification {
            code: ClassCode::Object(d.class),
            reason: d.reason.clone(),
            hint: d.hint.clone(),
            phase: Some(d.phase),
            other_classes: 0,
        },
        None => Classification {
            code: ClassCode::Object(FailureClass::Unknown),
            reason: obj
                .load
                .error
                .clone()
                .or_else(|| obj.open.error.clone())
                .unwrap_or_else(|| "the validator reported a failure without a diagnosis".into()),
            hint: "See the libbpf log in the report.".into(),
            phase: None,
            other_classes: 0,
        },
    });
    let load_status = match obj.load.status {
        Status::Pass => LoadStatus::Pass,
        Status::Fail => LoadStatus::Fail,
        Status::Skipped => LoadStatus::Skipped,
    };
    Check {
        kind: CheckKind::Object,
        status: match (passed, skipped.is_empty()) {
            (false, _) => CheckStatus::Fail,
            (true, false) => CheckStatus::Partial,
            (true, true) => CheckStatus::Pass,
        },
        classification,
        skipped,
        warnings,
        artifact: artifact.clone(),
        prediction: None,
        validation: Validation {
            load_status,
            libbpf_log_file: None,
            object: Some(obj),
        },
        functional: Functional { tests },
    }
}

/// Behavior mode's functional tests, moved from the object's outcome to
/// the check, where command mode reports its command.
fn functional_tests(obj: &mut ObjectOutcome) -> Vec<FunctionalTest> {
    let Some(b) = obj.behavior.as_mut() else {
        return Vec::new();
    };
    std::mem::take(&mut b.functional_tests)
        .into_iter()
        .map(|t| FunctionalTest {
            name: t.name,
            status: match (&t.failure, t.required) {
                (None, _) => CheckStatus::Pass,
                (Some(_), true) => CheckStatus::Fail,
                (Some(_), false) => CheckStatus::Partial,
            },
            expected_exit_code: t.expect_exit_code,
            command: Some(t.command),
            failure: t.failure,
            optional: !t.required,
            outcome: t.outcome,
        })
        .collect()
}

fn last_line(text: &str) -> Option<&str> {
    text.lines().map(str::trim).rfind(|l| !l.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bpfcompat_proto::{encode_frame, Outcome, READY_LINE};

    fn record(result: Vec<u8>, ending: Ending, panic: Option<&str>) -> BootRecord {
        BootRecord {
            job: None,
            ending,
            result,
            ready_after: Some(Duration::from_millis(1500)),
            elapsed: Duration::from_millis(2000),
            panic_line: panic.map(str::to_owned),
            oom_line: None,
            console_tail: String::new(),
            qemu_stderr: String::new(),
        }
    }

    /// QEMU ended with `code`, or was killed by `-code`.
    fn exited(code: i32) -> Ending {
        let raw = if code < 0 { -code } else { code << 8 };
        Ending::Exited(Some(std::process::ExitStatus::from_raw(raw)))
    }

    fn frame(exit_code: Option<i32>) -> Vec<u8> {
        let mut bytes = READY_LINE.as_bytes().to_vec();
        bytes.extend(encode_frame(&Outcome {
            kernel: KernelFacts {
                release: "6.1.0".into(),
                arch: "x86_64".into(),
                btf: true,
                bpf: None,
                modules: Vec::new(),
                memory: None,
            },
            checks: vec![CheckOutcome::Command(CommandOutcome {
                exit_code,
                signal: exit_code.is_none().then_some(9),
                error: None,
                stdout_tail: String::new(),
                stderr_tail: "loading...\nfailed: no such map type\n".into(),
                stdout_bytes: 0,
                stderr_bytes: 36,
                duration_ms: 10,
            })],
            setup_warnings: vec![],
            fatal: None,
        }));
        bytes
    }

    fn judge_it(r: &BootRecord, expected_exit: i32) -> Verdict {
        let artifact = CheckArtifact {
            name: "x".into(),
            path: None,
            sha256: None,
            case: None,
            manifest: None,
            inspection: None,
            min_kernel: None,
        };
        judge(
            r,
            Duration::from_secs(60),
            &Expectation {
                expected_exit,
                artifacts: std::slice::from_ref(&artifact),
                memory_mb: 256,
            },
        )
    }

    #[test]
    fn exit_code_decides_pass_and_fail() {
        let v = judge_it(&record(frame(Some(0)), exited(0), None), 0);
        assert_eq!(v.status, TargetStatus::Pass);
        assert_eq!(v.timing.boot, 1500);
        assert_eq!(v.timing.check, 500);

        let v = judge_it(&record(frame(Some(0)), exited(0), None), 3);
        assert_eq!(v.status, TargetStatus::Fail);
        let c = v.classification.unwrap();
        assert_eq!(c.code, ClassCode::CommandValidationFailure);
        assert!(
            c.reason.contains("exited with 0, expected 3"),
            "{}",
            c.reason
        );
        assert!(c.reason.contains("no such map type"), "{}", c.reason);

        let v = judge_it(&record(frame(None), exited(0), None), 0);
        assert!(v.classification.unwrap().reason.contains("signal 9"));
    }

    /// A guest out of memory is the matrix's to fix, whatever failed after
    /// it: never the object's or the kernel's failure.
    #[test]
    fn a_guest_out_of_memory_says_its_size_and_how_to_raise_it() {
        let mut killed = record(frame(None), exited(0), None);
        killed.oom_line = Some("Out of memory: Killed process 9 (loader)".into());
        let mut panicked = record(
            Vec::new(),
            exited(0),
            Some("Kernel panic - not syncing: Attempted to kill init!"),
        );
        panicked.oom_line = killed.oom_line.clone();
        let mut full = READY_LINE.as_bytes().to_vec();
        full.extend(encode_frame(&Outcome {
            fatal: Some("cannot unpack the job: write /bpfcompat/request.json: No space left on device (os error 28)".into()),
            ..decode_frame(&frame(Some(0))).unwrap()
        }));
        for r in [killed, panicked, record(full, exited(0), None)] {
            let v = judge_it(&r, 0);
            assert_eq!(v.status, TargetStatus::InfraError);
            let c = v.classification.unwrap();
            assert_eq!(c.code, ClassCode::InfraGuestOom);
            assert!(
                c.reason
                    .starts_with("the guest ran out of its 256 MB of memory: "),
                "{}",
                c.reason
            );
            assert!(c.hint.contains("memory: 1G"), "{}", c.hint);
        }
    }

    #[test]
    fn infrastructure_failures_are_told_apart() {
        let v = judge_it(
            &record(
                frame(Some(0)),
                exited(0),
                Some("Kernel panic - not syncing"),
            ),
            0,
        );
        assert_eq!(v.classification.unwrap().code, ClassCode::KernelPanic);

        let v = judge_it(&record(Vec::new(), Ending::TimedOut, None), 0);
        assert_eq!(v.status, TargetStatus::InfraError);
        let c = v.classification.unwrap();
        assert_eq!(c.code, ClassCode::InfraTimeout);
        assert!(c.reason.contains("check itself hung"), "{}", c.reason);

        let mut fatal = READY_LINE.as_bytes().to_vec();
        fatal.extend(encode_frame(&Outcome {
            kernel: KernelFacts {
                release: "6.1.0".into(),
                arch: "x86_64".into(),
                btf: true,
                bpf: None,
                modules: Vec::new(),
                memory: None,
            },
            checks: vec![],
            setup_warnings: vec![],
            fatal: Some("cannot read the request".into()),
        }));
        let v = judge_it(&record(fatal, exited(0), None), 0);
        let c = v.classification.unwrap();
        assert_eq!(c.code, ClassCode::InfraError);
        assert!(c.reason.contains("cannot read the request"), "{}", c.reason);

        let mut truncated = frame(Some(0));
        truncated.truncate(truncated.len() - 30);
        let v = judge_it(&record(truncated, exited(0), None), 0);
        let c = v.classification.unwrap();
        assert_eq!(c.code, ClassCode::InfraError);
        assert!(c.reason.contains("cut short"), "{}", c.reason);
    }

    #[test]
    fn a_qemu_killed_from_outside_is_named_unless_the_guest_reported() {
        let mut cut = frame(Some(0));
        cut.truncate(cut.len() / 2);
        let v = judge_it(&record(cut, exited(-libc::SIGKILL), None), 0);
        assert_eq!(v.status, TargetStatus::InfraError);
        let c = v.classification.unwrap();
        assert_eq!(c.code, ClassCode::InfraError);
        assert!(
            c.reason.contains("killed by signal 9 (SIGKILL)") && c.reason.contains("OOM killer"),
            "{}",
            c.reason
        );
        assert!(c.hint.contains("--concurrency"), "{}", c.hint);

        let v = judge_it(&record(Vec::new(), exited(-libc::SIGSEGV), None), 0);
        let reason = v.classification.unwrap().reason;
        assert!(
            reason.contains("(SIGSEGV)") && reason.contains("QEMU crashed"),
            "{reason}"
        );

        // The whole result arrived before the kill: the verdict stands.
        let v = judge_it(&record(frame(Some(0)), exited(-libc::SIGKILL), None), 0);
        assert_eq!(v.status, TargetStatus::Pass);
    }

    #[test]
    fn a_guest_that_shuts_down_early_is_told_apart() {
        let mut r = record(Vec::new(), exited(0), None);
        r.console_tail = "[    2.3] sysrq: Power Off\n[    2.4] reboot: Power down".into();
        let c = judge_it(&r, 0).classification.unwrap();
        assert_eq!(c.code, ClassCode::InfraError);
        assert!(
            c.reason
                .contains("shut down before the agent sent its result")
                && c.reason.contains("\"[    2.4] reboot: Power down\""),
            "{}",
            c.reason
        );
        assert!(c.hint.contains("Remove the poweroff"), "{}", c.hint);

        // The agent's own failure is not blamed on the check.
        let mut r = record(Vec::new(), exited(0), None);
        r.ready_after = None;
        r.console_tail = format!(
            "{RESULT_PORT_FAILURE}cannot open /dev/ttyS1: No such device\nreboot: Restarting system"
        );
        let c = judge_it(&r, 0).classification.unwrap();
        assert_eq!(
            c.reason,
            "the agent could not send its result: cannot open /dev/ttyS1: No such device"
        );
        assert_eq!(c.hint, AGENT_BUG_HINT);

        let mut r = record(Vec::new(), exited(1), None);
        r.ready_after = None;
        r.qemu_stderr = "qemu: could not load kernel".into();
        let reason = judge_it(&r, 0).classification.unwrap().reason;
        assert_eq!(
            reason,
            "the guest ended before the agent started; QEMU exited with status 1; QEMU said: \
             qemu: could not load kernel"
        );
    }

    fn check(status: &str, class: Option<&str>) -> Check {
        serde_json::from_value(serde_json::json!({
            "kind": "object",
            "status": status,
            "classification": class.map(|code| serde_json::json!({
                "code": code, "reason": format!("{code} here"), "hint": "h", "phase": null,
            })),
            "artifact": { "name": "o.bpf.o", "path": null, "sha256": null, "inspection": null },
            "validation": { "load_status": "pass", "object": null },
            "functional": { "tests": [] },
        }))
        .unwrap()
    }

    #[test]
    fn a_row_says_its_most_frequent_class_and_how_many_others() {
        let checks = [
            check("fail", Some("UNKNOWN")),
            check("fail", Some("UNSUPPORTED_MAP_TYPE")),
            check("pass", None),
            check("fail", Some("UNSUPPORTED_MAP_TYPE")),
            check("fail", Some("MISSING_BTF")),
        ];
        let row = row_classification(&checks).unwrap();
        assert_eq!(row.code.as_str(), "UNSUPPORTED_MAP_TYPE");
        assert_eq!(row.reason, "UNSUPPORTED_MAP_TYPE here");
        assert_eq!(row.other_classes, 2);
        // On a tie, the first to occur; a partial or passing row has none.
        let tie = [
            check("fail", Some("MISSING_BTF")),
            check("fail", Some("UNKNOWN")),
        ];
        assert_eq!(
            row_classification(&tie).unwrap().code.as_str(),
            "MISSING_BTF"
        );
        assert!(row_classification(&[check("partial", None)]).is_none());
    }
}
