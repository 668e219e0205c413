//! `program_types`, `program_variants` and `probe_companions`: the
//! programs a loader retypes, chooses between and keeps for trial loads.

use std::collections::BTreeSet;

use bpfcompat_proto::object::{
    helper_id, helper_name, ProgramTypeOverride, Requirement, Variant, VariantGroup,
};
use serde_norway::Value;

use super::checker::{identifier, Checker};
use super::schema::{RawProgramType, RawVariant, RawVariantGroup};
use super::{list, ManifestError};
use crate::object::{prog_type_id, prog_type_names};
use crate::report::inspection::ProgramSummary;
use crate::yaml::Field;

impl Checker<'_> {
    pub(super) fn program_types(
        &self,
        overrides: &[RawProgramType],
    ) -> Result<Vec<ProgramTypeOverride>, ManifestError> {
        let list_field = Field::root().key("program_types");
        let mut out = Vec::new();
        for (i, o) in overrides.iter().enumerate() {
            let field = list_field.index(i);
            let id = prog_type_id(&o.prog_type).ok_or_else(|| {
                self.err(
                    &field.key("type"),
                    format!(
                        "{:?} is not a BPF program type; one of {}",
                        o.prog_type,
                        prog_type_names().join(", ")
                    ),
                )
            })?;
            let programs: Vec<&ProgramSummary> = self
                .object
                .programs
                .iter()
                .filter(|p| p.name == o.program || p.section == o.program)
                .collect();
            if programs.is_empty() {
                return Err(self.err(
                    &field.key("program"),
                    format!(
                        "{} has no program or section {:?} (its programs: {}); fix the name or drop the entry",
                        self.object.path.display(),
                        o.program,
                        list(
                            self.object
                                .programs
                                .iter()
                                .map(|p| format!("{} in {}", p.name, p.section))
                        )
                    ),
                ));
            }
            out.extend(programs.into_iter().map(|p| ProgramTypeOverride {
                program: p.name.clone(),
                prog_type: id,
                prog_type_name: o.prog_type.clone(),
            }));
        }
        Ok(out)
    }

    pub(super) fn variant_groups(
        &self,
        groups: &[RawVariantGroup],
    ) -> Result<Vec<VariantGroup>, ManifestError> {
        let list_field = Field::root().key("program_variants");
        let mut names = BTreeSet::new();
        let mut used = BTreeSet::new();
        let mut out = Vec::new();
        for (i, g) in groups.iter().enumerate() {
            let field = list_field.index(i);
            if !identifier(&g.group) {
                return Err(self.err(
                    &field.key("group"),
                    format!("{:?} is not a name (letters, digits, _ and .)", g.group),
                ));
            }
            if !names.insert(&g.group) {
                return Err(self.err(&field.key("group"), format!("{:?} is used twice", g.group)));
            }
            if g.programs.is_empty() {
                return Err(self.err(
                    &field.key("programs"),
                    "is empty; list the group's programs, preferred first",
                ));
            }
            let mut variants = Vec::new();
            for (j, v) in g.programs.iter().enumerate() {
                let vfield = field.key("programs").index(j);
                self.program(&vfield.key("name"), &v.name)?;
                if !used.insert(&v.name) {
                    return Err(self.err(
                        &vfield.key("name"),
                        format!(
                            "{:?} is already a variant (of this or another group)",
                            v.name
                        ),
                    ));
                }
                variants.push(self.variant(&vfield, v)?);
            }
            out.push(VariantGroup {
                group: g.group.clone(),
                variants,
            });
        }
        Ok(out)
    }

    fn variant(&self, field: &Field, v: &RawVariant) -> Result<Variant, ManifestError> {
        let mut requires = Vec::new();
        if let Some(helper) = &v.requires_helper {
            requires.push(self.helper(&field.key("requires_helper"), helper)?);
        }
        for (key, value, make) in [
            (
                "requires_kfunc",
                &v.requires_kfunc,
                Requirement::Kfunc as fn(String) -> Requirement,
            ),
            ("requires_target", &v.requires_target, Requirement::Target),
        ] {
            if let Some(name) = value {
                if !identifier(name) {
                    return Err(self.err(
                        &field.key(key),
                        format!("{name:?} is not a kernel function name"),
                    ));
                }
                requires.push(make(name.clone()));
            }
        }
        let trial_load = match v.probe.as_deref() {
            None => false,
            Some("trial_load") => true,
            Some(other) => {
                return Err(self.err(
                    &field.key("probe"),
                    format!("{other:?}: the one probe is trial_load"),
                ))
            }
        };
        Ok(Variant {
            program: v.name.clone(),
            requires,
            trial_load,
        })
    }

    /// A helper name (`bpf_loop`) or its numeric id, as the Go tool takes it.
    fn helper(&self, field: &Field, value: &Value) -> Result<Requirement, ManifestError> {
        let text = match value {
            Value::Number(n) => n.to_string(),
            Value::String(s) => s.clone(),
            _ => String::new(),
        };
        let id = helper_id(&text)
            .or_else(|| text.parse::<u32>().ok().filter(|&id| id > 0))
            .ok_or_else(|| {
                self.err(
                    field,
                    format!(
                        "{text:?} is not a BPF helper: give its name (bpf_loop) or its id (181)"
                    ),
                )
            })?;
        Ok(Requirement::Helper {
            id,
            name: helper_name(id).map(str::to_owned),
        })
    }

    pub(super) fn probe_companions(&self, names: &[String]) -> Result<Vec<String>, ManifestError> {
        let list_field = Field::root().key("probe_companions");
        let mut seen = BTreeSet::new();
        for (i, name) in names.iter().enumerate() {
            self.program(&list_field.index(i), name)?;
            if !seen.insert(name) {
                return Err(self.err(&list_field.index(i), format!("{name:?} is listed twice")));
            }
        }
        Ok(names.to_vec())
    }
}
