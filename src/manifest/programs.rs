//! `programs:`: attach requirements and targets, checked against each
//! program's type and section.

use std::collections::BTreeSet;

use bpfcompat_proto::object::{AttachTarget, ProgramContract};
use serde_norway::Value;

use super::checker::Checker;
use super::schema::{RawAttachSpec, RawProgram};
use super::{list, ManifestError};
use crate::report::inspection::ProgramSummary;
use crate::yaml::Field;

/// The attach kinds the Go tool accepts in `programs[].attach.kind`.
const ATTACH_KINDS: [&str; 11] = [
    "tracepoint",
    "raw_tracepoint",
    "kprobe",
    "kretprobe",
    "fentry",
    "fexit",
    "xdp",
    "tc",
    "cgroup",
    "lsm",
    "uprobe",
];

impl Checker<'_> {
    pub(super) fn programs(
        &self,
        programs: &[RawProgram],
    ) -> Result<Vec<ProgramContract>, ManifestError> {
        let list_field = Field::root().key("programs");
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        for (i, p) in programs.iter().enumerate() {
            let field = list_field.index(i);
            let program = self.program(&field.key("name"), &p.name)?;
            if !seen.insert(&p.name) {
                return Err(self.err(&field.key("name"), format!("{:?} is listed twice", p.name)));
            }
            if let Some(section) = &p.section {
                if *section != program.section {
                    return Err(self.err(
                        &field.key("section"),
                        format!(
                            "{:?} is in section {:?}, not {section:?}; fix the section or drop it",
                            p.name, program.section
                        ),
                    ));
                }
            }
            let (attach_required, target) = match &p.attach {
                None => (true, None),
                Some(value) => self.attach(&field.key("attach"), program, value)?,
            };
            if !attach_required || target.is_some() || p.expect_run {
                out.push(ProgramContract {
                    name: p.name.clone(),
                    attach_required,
                    target,
                    expect_run: p.expect_run,
                });
            }
        }
        Ok(out)
    }

    /// `attach: optional`, `attach: required`, or the Go tool's mapping
    /// with our target keys.
    fn attach(
        &self,
        field: &Field,
        program: &ProgramSummary,
        value: &Value,
    ) -> Result<(bool, Option<AttachTarget>), ManifestError> {
        let spec: RawAttachSpec = match value {
            Value::String(word) => {
                return match word.as_str() {
                    "optional" => Ok((false, None)),
                    "required" => Ok((true, None)),
                    other => Err(self.err(
                        field,
                        format!("{other:?} is not optional, required or a mapping like {{kind: kprobe, symbol: vfs_read}}"),
                    )),
                }
            }
            Value::Mapping(_) => serde_norway::from_value(value.clone())
                .map_err(|e| self.err(field, e))?,
            _ => {
                return Err(self.err(
                    field,
                    "must be optional, required or a mapping like {kind: kprobe, symbol: vfs_read}",
                ))
            }
        };
        if let Some(kind) = &spec.kind {
            if !ATTACH_KINDS.contains(&kind.as_str()) {
                return Err(self.err(
                    &field.key("kind"),
                    format!("{kind:?} is not one of {}", ATTACH_KINDS.join(", ")),
                ));
            }
            if let Some(actual) = &program.prog_type {
                if !kind_fits(kind, actual) {
                    return Err(self.err(
                        &field.key("kind"),
                        format!(
                            "{kind} does not fit {:?}, a {actual} program (section {:?})",
                            program.name, program.section
                        ),
                    ));
                }
            }
        }
        let target = self.attach_target(field, &spec)?;
        if let (Some(t), Some(actual)) = (&target, &program.prog_type) {
            if !target_fits(t, actual, &program.section) {
                return Err(self.err(
                    field,
                    format!(
                        "{} does not fit {:?}, a {actual} program (section {:?})",
                        describe(t),
                        program.name,
                        program.section
                    ),
                ));
            }
        }
        Ok((spec.required.unwrap_or(true), target))
    }

    fn attach_target(
        &self,
        field: &Field,
        spec: &RawAttachSpec,
    ) -> Result<Option<AttachTarget>, ManifestError> {
        let mut targets = Vec::new();
        match (&spec.category, &spec.name) {
            (Some(category), Some(name)) => targets.push(AttachTarget::Tracepoint {
                category: category.clone(),
                name: name.clone(),
            }),
            (None, None) => {}
            (Some(_), None) => {
                return Err(self.err(
                    &field.key("category"),
                    "needs name: too (the tracepoint is category/name)",
                ))
            }
            (None, Some(_)) => {
                return Err(self.err(
                    &field.key("name"),
                    "needs category: too (the tracepoint is category/name)",
                ))
            }
        }
        match (&spec.binary, &spec.symbol) {
            (Some(binary), Some(symbol)) => targets.push(AttachTarget::Uprobe {
                binary: binary.clone(),
                symbol: symbol.clone(),
            }),
            (Some(_), None) => {
                return Err(self.err(
                    &field.key("binary"),
                    "needs symbol: too (the uprobe is binary:symbol)",
                ))
            }
            (None, Some(symbol)) => targets.push(AttachTarget::Function(symbol.clone())),
            (None, None) => {}
        }
        if let Some(interface) = &spec.interface {
            targets.push(AttachTarget::Interface(interface.clone()));
        }
        if let Some(cgroup) = &spec.cgroup {
            targets.push(AttachTarget::Cgroup(cgroup.clone()));
        }
        if targets.len() > 1 {
            return Err(self.err(
                field,
                format!(
                    "names {} targets ({}); give one",
                    targets.len(),
                    list(targets.iter().map(describe))
                ),
            ));
        }
        Ok(targets.pop())
    }
}

/// Whether the Go tool's attach `kind` can be a program of libbpf type
/// `prog_type`.
fn kind_fits(kind: &str, prog_type: &str) -> bool {
    match kind {
        "tracepoint" => prog_type == "tracepoint",
        "raw_tracepoint" => prog_type.starts_with("raw_tracepoint") || prog_type == "tracing",
        "kprobe" | "kretprobe" | "uprobe" => prog_type == "kprobe",
        "fentry" | "fexit" => prog_type == "tracing",
        "xdp" => prog_type == "xdp",
        "tc" => matches!(prog_type, "sched_cls" | "sched_act"),
        "cgroup" => prog_type.starts_with("cgroup") || prog_type == "sock_ops",
        "lsm" => prog_type == "lsm",
        _ => false,
    }
}

fn target_fits(target: &AttachTarget, prog_type: &str, section: &str) -> bool {
    let uprobe = section.starts_with("uprobe") || section.starts_with("uretprobe");
    match target {
        AttachTarget::Tracepoint { .. } => prog_type == "tracepoint",
        AttachTarget::Function(_) => matches!(prog_type, "kprobe" | "tracing" | "lsm") && !uprobe,
        AttachTarget::Uprobe { .. } => prog_type == "kprobe" && uprobe,
        AttachTarget::Interface(_) => matches!(prog_type, "xdp" | "sched_cls"),
        AttachTarget::Cgroup(_) => prog_type.starts_with("cgroup") || prog_type == "sock_ops",
    }
}

fn describe(target: &AttachTarget) -> String {
    match target {
        AttachTarget::Function(f) => format!("function {f}"),
        AttachTarget::Tracepoint { category, name } => format!("tracepoint {category}/{name}"),
        AttachTarget::Uprobe { binary, symbol } => format!("uprobe {binary}:{symbol}"),
        AttachTarget::Interface(i) => format!("interface {i}"),
        AttachTarget::Cgroup(c) => format!("cgroup {c}"),
    }
}
