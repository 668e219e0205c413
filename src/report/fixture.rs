//! Small, complete reports for unit tests of everything that reads reports.

use super::*;

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
        },
        classification: class.map(|code| Classification {
            code,
            reason: format!("{} on {id}", code.as_str()),
            hint: "hint".into(),
            phase: None,
        }),
        timing_ms: Timing {
            boot: 1000,
            check: 100,
            total: 1100,
        },
        console_log: format!("/runs/1/{id}/console.log"),
        accel: None,
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
