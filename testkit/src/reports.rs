//! Small, complete reports for the tests of everything that reads reports.
//! Unit tests inside bpfcompat see another build of its types: they take
//! the JSON forms (`*_json`) and deserialise them.

use bpfcompat::report::prediction::{
    MinKernel, Obstacle, ObstacleKind, Predicted, Prediction, Requirement,
};
use bpfcompat::report::*;
use bpfcompat_proto::object::{
    AttachResult, Diagnosis, FailureClass, Fixup, MapOutcome, NotSelected, ObjectOutcome, Phase,
    ProgramLoad, ProgramOutcome, Status, StepResult, ValidationMode, VariantChoice,
};

pub fn target(id: &str, status: TargetStatus, class: Option<ClassCode>) -> Target {
    Target {
        id: id.to_owned(),
        required: true,
        status,
        kernel: KernelInfo {
            release: Some(format!("{id}-release")),
            arch: Some("x86_64".into()),
            btf: Some(true),
            source: format!("file:/kernels/{id}"),
            sha256: Some("0".repeat(64)),
            bpf: None,
            probes: Vec::new(),
            modules: None,
            memory: None,
        },
        classification: class.map(|code| Classification {
            code,
            reason: format!("{} on {id}", code.as_str()),
            hint: "hint".into(),
            phase: None,
            other_classes: 0,
        }),
        timing_ms: Timing {
            boot: 1000,
            check: 100,
            total: 1100,
        },
        console_log: format!("/runs/1/{id}/console.log"),
        accel: None,
        restored: false,
        restore_ms: None,
        snapshot_bytes: None,
        job_channel: None,
        console_tail: None,
        checks: Vec::new(),
    }
}

pub fn report(targets: Vec<Target>) -> Report {
    Report {
        schema: SCHEMA.to_owned(),
        tool_version: "0.1.0".into(),
        mode: Mode::Command,
        artifact: ArtifactIdentity {
            id: "command://loader@0123456789abcdef".into(),
            name: "loader".into(),
        },
        matrix: MatrixRef {
            name: "ci".into(),
            digest: "ab".repeat(32),
            path: "/m/ci.yaml".into(),
        },
        shard: None,
        accel: Accel::Tcg,
        qemu_version: "10.0.2".into(),
        libbpf_version: None,
        started_at: "2025-01-01T00:00:00Z".into(),
        duration_ms: 5000,
        summary: Summary::of(&targets),
        targets,
    }
}

/// What a hostile name, reason or log may hold, its markup within the 160
/// characters a table cell keeps, its control characters after: Markdown (a table pipe, emphasis, a
/// link, a heading, fences, math), HTML (tags, a fake sticky marker, a
/// comment closed early), mentions of a person, a team and everyone, issue
/// references, a path out of the tree, workflow commands, ANSI and OSC 8
/// escape sequences, CR, NUL, DEL, a C1 CSI and a bidirectional override.
pub const HOSTILE: &str = "|*_[l](https://e.ex)\n# H\n````t`</details><details><script><!-- bpfcompat:matrix:bpfcompat \
    --> @octocat @org/team @everyone #1 GH-7 ../../x $x\\\u{1b}[31m\u{1b}]8;;h\u{7}\r\n ::add-mask::m \
    ##[error]%0A\u{0}\u{7f}\u{9b}\u{202e}";

/// A report of the validator whose every string is [`HOSTILE`] (ids and
/// names with a suffix, to stay distinct): a failing object with a
/// rejected program and map, a failing command with its output tails, a
/// kernel that could not be checked, one that passed.
pub fn hostile() -> Report {
    let object = hostile_object_check();
    let mut failed = target(
        &h(" kernel 1"),
        TargetStatus::Fail,
        Some(ClassCode::Object(FailureClass::VerifierRejection)),
    );
    failed.classification = Some(hostile_classification(ClassCode::Object(
        FailureClass::VerifierRejection,
    )));
    failed.checks = vec![object.clone(), hostile_command_check()];
    let mut broken = target(
        &h(" kernel 2"),
        TargetStatus::InfraError,
        Some(ClassCode::KernelPanic),
    );
    broken.required = false;
    broken.classification = Some(hostile_classification(ClassCode::KernelPanic));
    broken.console_tail = Some(h(" console"));
    let mut passed = target(&h(" kernel 3"), TargetStatus::Pass, None);
    let mut pass = object;
    pass.status = CheckStatus::Pass;
    pass.classification = None;
    passed.checks = vec![pass];
    let mut targets = vec![failed, broken, passed];
    targets.iter_mut().for_each(hostile_kernel);
    let mut r = report(targets);
    r.mode = Mode::Artifact;
    r.artifact = ArtifactIdentity {
        id: h(" id"),
        name: h(" artifact"),
    };
    r.matrix = MatrixRef {
        name: h(" matrix"),
        digest: h(" digest"),
        path: h(" yaml"),
    };
    r.tool_version = h(" version");
    r.qemu_version = h(" qemu");
    r.libbpf_version = Some(h(" libbpf"));
    r
}

/// [`HOSTILE`] with `suffix`.
fn h(suffix: &str) -> String {
    format!("{HOSTILE}{suffix}")
}

fn hostile_diagnosis(class: FailureClass, phase: Phase) -> Diagnosis {
    Diagnosis {
        class,
        phase,
        reason: h(" reason"),
        hint: h(" hint"),
    }
}

fn hostile_classification(code: ClassCode) -> Classification {
    Classification {
        code,
        reason: h(" reason"),
        hint: h(" hint"),
        phase: Some(Phase::ProgramLoad),
        other_classes: 2,
    }
}

fn hostile_artifact(suffix: &str) -> CheckArtifact {
    CheckArtifact {
        name: h(suffix),
        path: Some(h(" path")),
        sha256: Some(h(" sha")),
        case: Some(h(" case")),
        manifest: Some(h(" manifest")),
        inspection: None,
        min_kernel: Some(MinKernel {
            version: "5.17".to_owned(),
            because: vec![Requirement {
                what: h(" requirement"),
                since: "5.17".to_owned(),
                programs: vec![h(" program")],
            }],
        }),
    }
}

/// A prediction whose reason carries the object's hostile names.
fn hostile_prediction() -> Prediction {
    Prediction {
        verdict: Predicted::Blocked,
        obstacles: vec![Obstacle {
            kind: ObstacleKind::Helper,
            program: Some(h(" program")),
            reason: h(" obstacle"),
        }],
        basis: "btf".to_owned(),
    }
}

/// A kernel's own strings made hostile.
fn hostile_kernel(t: &mut Target) {
    t.kernel.release = Some(h(" release"));
    t.kernel.arch = Some(h(" arch"));
    t.kernel.source = h(" source");
    t.kernel.sha256 = Some(h(" sha256"));
    t.console_log = h(" console");
}

/// An object that failed: its load refused, a program rejected, a map
/// unsupported, with a fixup and a variant choice.
fn hostile_object_check() -> Check {
    Check {
        kind: CheckKind::Object,
        status: CheckStatus::Fail,
        classification: Some(hostile_classification(ClassCode::Object(
            FailureClass::VerifierRejection,
        ))),
        skipped: vec![h(" skipped")],
        warnings: vec![h(" warning")],
        artifact: hostile_artifact(".bpf.o"),
        prediction: Some(hostile_prediction()),
        validation: Validation {
            load_status: LoadStatus::Fail,
            libbpf_log_file: Some(h(" libbpf log")),
            object: Some(hostile_object_outcome()),
        },
        functional: Functional { tests: Vec::new() },
    }
}

fn hostile_object_outcome() -> ObjectOutcome {
    ObjectOutcome {
        path: h(" guest"),
        mode: ValidationMode::LoadOnly,
        libbpf_version: h(" libbpf"),
        status: Status::Fail,
        open: StepResult::pass(),
        load: StepResult {
            status: Status::Fail,
            errno: Some(13),
            error: Some(h(" load")),
        },
        diagnosis: Some(hostile_diagnosis(
            FailureClass::VerifierRejection,
            Phase::ProgramLoad,
        )),
        programs: vec![hostile_program()],
        maps: vec![MapOutcome {
            name: h(" map"),
            map_type: h(" map type"),
            max_entries: 1,
            create: StepResult::pass(),
            attach: None,
            diagnosis: Some(hostile_diagnosis(
                FailureClass::UnsupportedMapType,
                Phase::MapCreate,
            )),
        }],
        probes: Vec::new(),
        libbpf_log: h(" libbpf log"),
        duration_ms: 1,
        fixups: vec![Fixup {
            map: h(" map"),
            field: "max_entries".into(),
            value: h(" value"),
            why: h(" why"),
        }],
        variants: vec![VariantChoice {
            group: h(" group"),
            selected: Some(h(" variant")),
            selected_because: Some(h(" because")),
            not_selected: vec![NotSelected {
                program: h(" other"),
                reason: h(" reason"),
            }],
        }],
        behavior: None,
    }
}

/// A program the verifier rejected, with a log tail that closes fences.
fn hostile_program() -> ProgramOutcome {
    ProgramOutcome {
        name: h(" prog"),
        section: h(" section"),
        prog_type: h(" type"),
        attach_type: h(" attach"),
        autoload: true,
        load: ProgramLoad {
            status: Status::Fail,
            errno: Some(13),
            error: Some(h(" error")),
            verifier_log_tail: h(" verifier log\n````````\n"),
            verifier_log: String::new(),
            verifier_log_file: Some(h(" log")),
            verifier_log_bytes: 1,
            insns_processed: Some(1),
            isolated: false,
            diagnosis: Some(hostile_diagnosis(
                FailureClass::VerifierRejection,
                Phase::ProgramLoad,
            )),
        },
        attach: AttachResult::skipped(h(" skipped")),
        attach_optional: false,
        run: None,
    }
}

/// A command that exited 3, with its error and output tails.
fn hostile_command_check() -> Check {
    Check {
        kind: CheckKind::Command,
        status: CheckStatus::Fail,
        classification: None,
        skipped: Vec::new(),
        warnings: Vec::new(),
        artifact: hostile_artifact(" loader"),
        prediction: None,
        validation: Validation {
            load_status: LoadStatus::Skipped,
            libbpf_log_file: None,
            object: None,
        },
        functional: Functional {
            tests: vec![FunctionalTest {
                name: h(" test"),
                command: None,
                failure: None,
                optional: false,
                status: CheckStatus::Fail,
                expected_exit_code: 0,
                outcome: bpfcompat_proto::CommandOutcome {
                    exit_code: Some(3),
                    signal: None,
                    error: Some(h(" error")),
                    stdout_tail: h(" stdout"),
                    stderr_tail: h(" stderr"),
                    stdout_bytes: 1,
                    stderr_bytes: 1,
                    duration_ms: 1,
                },
            }],
        },
    }
}

/// [`hostile`] as JSON, for unit tests inside bpfcompat.
pub fn hostile_json() -> serde_json::Value {
    serde_json::to_value(hostile()).expect("reports serialise")
}

/// [`report`] of [`target`]s as JSON, for unit tests inside bpfcompat:
/// each kernel's id, status and class as the report spells them (`"pass"`,
/// `"KERNEL_PANIC"`).
pub fn report_json(targets: &[(&str, &str, Option<&str>)]) -> serde_json::Value {
    let word = |w: &str| serde_json::Value::String(w.to_owned());
    let targets = targets
        .iter()
        .map(|(id, status, class)| {
            let status = serde_json::from_value(word(status)).expect("a target status");
            let class = class.map(|c| serde_json::from_value(word(c)).expect("a class code"));
            target(id, status, class)
        })
        .collect();
    serde_json::to_value(report(targets)).expect("reports serialise")
}

/// The ids of a report's targets, in report order.
pub fn target_ids(report: &serde_json::Value) -> Vec<&str> {
    report["targets"]
        .as_array()
        .expect("a report has targets")
        .iter()
        .map(|t| t["id"].as_str().expect("a target has an id"))
        .collect()
}
