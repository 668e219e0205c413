//! Choosing one program of each variant group, as a loader that probes the
//! kernel does (`fentry_can_attach`, `kprobe_exists`, helper probes, a trial
//! load), then `bpf_program__set_autoload(false)` on the others.
//!
//! In preference order, a variant qualifies when all its requirements hold
//! on this kernel and, if it asks for a trial load, that load passes. A
//! variant with no requirement and no trial load qualifies when it loads
//! and attaches alone. The first that qualifies is selected; the group
//! fails with the last variant's class when none does.
//!
//! [`select`] is pure given a [`Kernel`] (the probes) and a trial: tested
//! without booting.

use std::collections::BTreeSet;

use bpfcompat_proto::object::{
    Diagnosis, FailureClass, LoaderContract, NotSelected, Phase, Requirement, Variant,
    VariantChoice, VariantGroup,
};

use crate::object::load::ProgDecl;

/// What the kernel can answer about a variant's requirements; `None`: it
/// cannot tell (no BTF, no tracefs).
pub trait Kernel {
    fn helper(&self, prog_type: u32, id: u32) -> Option<bool>;
    fn kfunc(&self, name: &str) -> Option<bool>;
    /// `name` exists as the kind of target `program` attaches to.
    fn target(&self, program: &ProgDecl, name: &str) -> Option<bool>;
}

/// Loads `programs` (a variant with the probe companions) alone, and
/// attaches them if `attach`; the failure's diagnosis if that fails.
pub type Trial<'a> = dyn FnMut(&BTreeSet<String>, bool) -> Result<(), Diagnosis> + 'a;

/// The variants chosen on this kernel.
#[derive(Debug, Default, PartialEq)]
pub struct Selection {
    /// Programs to load with autoload off.
    pub off: BTreeSet<String>,
    pub choices: Vec<VariantChoice>,
    /// The first group where no variant qualified.
    pub failure: Option<Diagnosis>,
}

pub fn select(
    contract: &LoaderContract,
    progs: &[ProgDecl],
    kernel: &dyn Kernel,
    attach: bool,
    trial: &mut Trial<'_>,
) -> Selection {
    let mut sel = Selection::default();
    for group in &contract.variant_groups {
        let (choice, failure) = choose(group, contract, progs, kernel, attach, trial);
        sel.off.extend(
            group
                .variants
                .iter()
                .map(|v| v.program.clone())
                .filter(|p| choice.selected.as_ref() != Some(p)),
        );
        if sel.failure.is_none() {
            sel.failure = failure;
        }
        sel.choices.push(choice);
    }
    sel
}

fn choose(
    group: &VariantGroup,
    contract: &LoaderContract,
    progs: &[ProgDecl],
    kernel: &dyn Kernel,
    attach: bool,
    trial: &mut Trial<'_>,
) -> (VariantChoice, Option<Diagnosis>) {
    let mut choice = VariantChoice {
        group: group.group.clone(),
        selected: None,
        selected_because: None,
        not_selected: Vec::new(),
    };
    let mut last: Option<Diagnosis> = None;
    for v in &group.variants {
        if let Some(winner) = &choice.selected {
            choice.not_selected.push(NotSelected {
                program: v.program.clone(),
                reason: format!("{winner} was selected before it"),
            });
            continue;
        }
        let Some(decl) = progs.iter().find(|p| p.name == v.program) else {
            continue;
        };
        match qualifies(v, decl, contract, kernel, attach, trial) {
            Ok(because) => {
                choice.selected = Some(v.program.clone());
                choice.selected_because = Some(because);
            }
            Err(d) => {
                choice.not_selected.push(NotSelected {
                    program: v.program.clone(),
                    reason: d.reason.clone(),
                });
                last = Some(d);
            }
        }
    }
    let failure = match (&choice.selected, last) {
        (None, Some(d)) => Some(Diagnosis {
            reason: format!(
                "variant group {}: no variant can be used on this kernel; the last, {}",
                group.group,
                choice
                    .not_selected
                    .last()
                    .map(|n| format!("{}: {}", n.program, n.reason))
                    .unwrap_or_default()
            ),
            ..d
        }),
        _ => None,
    };
    (choice, failure)
}

/// Why `v` qualifies, or the diagnosis of why not.
fn qualifies(
    v: &Variant,
    decl: &ProgDecl,
    contract: &LoaderContract,
    kernel: &dyn Kernel,
    attach: bool,
    trial: &mut Trial<'_>,
) -> Result<String, Diagnosis> {
    let mut met = Vec::new();
    for r in &v.requires {
        met.push(requirement(r, decl, kernel)?);
    }
    if v.trial_load || v.requires.is_empty() {
        let mut only: BTreeSet<String> = contract.probe_companions.iter().cloned().collect();
        only.insert(v.program.clone());
        let and_attach = attach && v.requires.is_empty() && !v.trial_load;
        trial(&only, and_attach).map_err(|d| Diagnosis {
            reason: format!(
                "trial {} failed: {}: {}",
                if and_attach {
                    "load and attach"
                } else {
                    "load"
                },
                d.class,
                d.reason
            ),
            ..d
        })?;
        met.push(
            if and_attach {
                "it loaded and attached alone"
            } else {
                "its trial load passed"
            }
            .to_owned(),
        );
    }
    Ok(met.join("; "))
}

/// What `r` says when it holds, or the diagnosis of why it does not.
fn requirement(r: &Requirement, decl: &ProgDecl, kernel: &dyn Kernel) -> Result<String, Diagnosis> {
    let (answer, what, class, phase) = match r {
        Requirement::Helper { id, name } => (
            kernel.helper(decl.prog_type, *id),
            format!(
                "helper {}",
                name.clone().unwrap_or_else(|| format!("#{id}"))
            ),
            FailureClass::UnsupportedHelper,
            Phase::ProgramLoad,
        ),
        Requirement::Kfunc(k) => (
            kernel.kfunc(k),
            format!("kfunc {k}"),
            FailureClass::MissingKfunc,
            Phase::Extern,
        ),
        Requirement::Target(t) => (
            kernel.target(decl, t),
            format!("attach target {t}"),
            FailureClass::AttachTargetMissing,
            Phase::AttachTarget,
        ),
    };
    match answer {
        Some(true) => Ok(format!("the kernel has {what}")),
        Some(false) => Err(unmet(
            class,
            phase,
            format!("requires {what}, which this kernel does not have"),
        )),
        None => Err(unmet(
            class,
            phase,
            format!("requires {what}, and the kernel cannot tell (no kernel BTF or tracefs)"),
        )),
    }
}

fn unmet(class: FailureClass, phase: Phase, reason: String) -> Diagnosis {
    Diagnosis {
        class,
        phase,
        reason,
        hint: "the loader would not load this variant here; give the group a variant this kernel \
               supports, or drop the kernel from the matrix"
            .into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use libbpf_sys as s;
    use std::cell::RefCell;

    struct Fake {
        helpers: Vec<u32>,
        targets: Vec<&'static str>,
    }

    impl Kernel for Fake {
        fn helper(&self, _: u32, id: u32) -> Option<bool> {
            Some(self.helpers.contains(&id))
        }
        fn kfunc(&self, _: &str) -> Option<bool> {
            None
        }
        fn target(&self, _: &ProgDecl, name: &str) -> Option<bool> {
            Some(self.targets.contains(&name))
        }
    }

    fn decl(name: &str) -> ProgDecl {
        ProgDecl {
            name: name.into(),
            section: format!("kprobe/{name}"),
            prog_type: s::BPF_PROG_TYPE_KPROBE,
            attach_type: 0,
            autoload: true,
            helpers: vec![],
        }
    }

    fn variant(program: &str, requires: Vec<Requirement>, trial_load: bool) -> Variant {
        Variant {
            program: program.into(),
            requires,
            trial_load,
        }
    }

    fn contract(variants: Vec<Variant>) -> LoaderContract {
        LoaderContract {
            variant_groups: vec![VariantGroup {
                group: "exit".into(),
                variants,
            }],
            probe_companions: vec!["tail".into()],
            ..LoaderContract::default()
        }
    }

    fn attach_failure() -> Diagnosis {
        Diagnosis {
            class: FailureClass::AttachTargetMissing,
            phase: Phase::Attach,
            reason: "no such function".into(),
            hint: String::new(),
        }
    }

    #[test]
    fn the_first_variant_whose_requirements_hold_wins() {
        let progs = [decl("f"), decl("k"), decl("t")];
        let c = contract(vec![
            variant("f", vec![Requirement::Target("new_fn".into())], false),
            variant(
                "k",
                vec![Requirement::Helper {
                    id: 181,
                    name: Some("bpf_loop".into()),
                }],
                false,
            ),
            variant("t", vec![], false),
        ]);
        let kernel = Fake {
            helpers: vec![181],
            targets: vec![],
        };
        let trials = RefCell::new(Vec::new());
        let sel = select(&c, &progs, &kernel, true, &mut |only, attach| {
            trials.borrow_mut().push((only.clone(), attach));
            Ok(())
        });
        assert_eq!(sel.choices[0].selected.as_deref(), Some("k"));
        assert_eq!(sel.off, BTreeSet::from(["f".to_owned(), "t".to_owned()]));
        assert!(sel.failure.is_none());
        assert!(sel.choices[0].not_selected[0]
            .reason
            .contains("attach target new_fn"));
        assert!(sel.choices[0].not_selected[1]
            .reason
            .contains("k was selected"));
        // Requirements alone: no trial load.
        assert!(trials.borrow().is_empty());
    }

    #[test]
    fn a_fallback_must_load_and_attach_alone_with_the_companions() {
        let progs = [decl("a"), decl("b"), decl("tail")];
        let c = contract(vec![
            variant("a", vec![], false),
            variant("b", vec![], true),
        ]);
        let kernel = Fake {
            helpers: vec![],
            targets: vec![],
        };
        let mut seen = Vec::new();
        let sel = select(&c, &progs, &kernel, true, &mut |only, attach| {
            seen.push((only.iter().cloned().collect::<Vec<_>>(), attach));
            if only.contains("a") {
                Err(attach_failure())
            } else {
                Ok(())
            }
        });
        assert_eq!(sel.choices[0].selected.as_deref(), Some("b"));
        assert_eq!(
            sel.choices[0].selected_because.as_deref(),
            Some("its trial load passed")
        );
        assert_eq!(
            seen,
            vec![
                (vec!["a".to_owned(), "tail".to_owned()], true),
                (vec!["b".to_owned(), "tail".to_owned()], false)
            ]
        );
        assert!(sel.choices[0].not_selected[0]
            .reason
            .starts_with("trial load and attach failed: ATTACH_TARGET_MISSING"));
    }

    #[test]
    fn a_group_without_a_usable_variant_fails_with_the_last_class() {
        let progs = [decl("loop"), decl("plain")];
        let c = contract(vec![
            variant(
                "loop",
                vec![Requirement::Helper {
                    id: 181,
                    name: Some("bpf_loop".into()),
                }],
                false,
            ),
            variant(
                "plain",
                vec![Requirement::Kfunc("bpf_iter_num_new".into())],
                false,
            ),
        ]);
        let kernel = Fake {
            helpers: vec![],
            targets: vec![],
        };
        let sel = select(&c, &progs, &kernel, true, &mut |_, _| Ok(()));
        assert_eq!(sel.choices[0].selected, None);
        assert_eq!(sel.off.len(), 2);
        let d = sel.failure.unwrap();
        assert_eq!(d.class, FailureClass::MissingKfunc);
        assert!(d.reason.contains("variant group exit"), "{}", d.reason);
        assert!(
            d.reason.contains("plain: requires kfunc bpf_iter_num_new"),
            "{}",
            d.reason
        );
    }
}
