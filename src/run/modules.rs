//! Which kernel modules a check needs, and what the report says of them.
//! Pure: the engine reads the module tree and ships what [`plan`] chose.
//!
//! What an object needs, by default:
//! - a classic tc program (`tc`, `classifier`; not `tcx/`, `netkit/`): the
//!   clsact qdisc (`sch_ingress`) and the bpf classifier (`cls_bpf`); an
//!   action program (`action`) also `act_bpf`;
//! - a kprobe, kretprobe, kprobe.multi (exact names, not globs), fentry,
//!   fexit or fmod_ret target: the module whose symbol table defines it, if
//!   one does (`fentry/MODULE:FUNC` names the module itself);
//! - a kfunc: the module that defines it (e.g. nf_conntrack's `bpf_ct_*`).
//!
//! Netfilter links need nothing: the agent attaches to ipv4 LOCAL_IN
//! without defragmentation, and the netfilter core is built in wherever
//! BPF_PROG_TYPE_NETFILTER exists. Modules named by `--modules` or a
//! kernel's `modules:` in the matrix are loaded too.

use std::collections::BTreeSet;

use bpfcompat_proto::modules::{ModuleLoadResult, ModuleStatus};

use crate::kernel::{LoadPlan, ModuleEntry, ModuleTree, ModuleWant};
use crate::report::inspection::ObjectSummary;
use crate::report::{ModuleFact, ModuleFacts};

/// What the programs of an object need from the kernel's modules.
pub fn object_wants(summary: &ObjectSummary) -> Vec<ModuleWant> {
    let mut wants = Vec::new();
    let module = |name: &str, why: String| ModuleWant::Module {
        name: name.to_owned(),
        why,
    };
    for p in &summary.programs {
        let (kind, arg) = p.section.split_once('/').unwrap_or((&p.section, ""));
        match p.prog_type.as_deref() {
            Some("sched_cls" | "sched_act") if !matches!(kind, "tcx" | "netkit") => {
                let why = format!("tc program {}", p.name);
                wants.push(module("sch_ingress", why.clone()));
                wants.push(module("cls_bpf", why.clone()));
                if p.prog_type.as_deref() == Some("sched_act") {
                    wants.push(module("act_bpf", why));
                }
            }
            Some("kprobe")
                if matches!(
                    kind,
                    "kprobe" | "kretprobe" | "kprobe.multi" | "kretprobe.multi" | "kprobe.session"
                ) =>
            {
                let target = arg.split('+').next().unwrap_or_default();
                if !target.is_empty() && !target.contains(['*', '?']) {
                    wants.push(ModuleWant::Function {
                        name: target.to_owned(),
                        why: p.section.clone(),
                    });
                }
            }
            Some("tracing")
                if ["fentry", "fexit", "fmod_ret"]
                    .iter()
                    .any(|t| kind.strip_suffix(".s").unwrap_or(kind) == *t) =>
            {
                match arg.split_once(':') {
                    Some((name, _)) => wants.push(module(name, p.section.clone())),
                    None if !arg.is_empty() => wants.push(ModuleWant::Function {
                        name: arg.to_owned(),
                        why: p.section.clone(),
                    }),
                    None => {}
                }
            }
            _ => {}
        }
        for kfunc in &p.kfuncs {
            wants.push(ModuleWant::Function {
                name: kfunc.clone(),
                why: format!("kfunc of program {}", p.name),
            });
        }
    }
    dedup(wants)
}

/// The modules a user named (`--modules`, a matrix entry's `modules:`).
pub fn named_wants(names: &[String], why: &str) -> Vec<ModuleWant> {
    names
        .iter()
        .map(|name| ModuleWant::Module {
            name: crate::kernel::normalise_module_name(name),
            why: why.to_owned(),
        })
        .collect()
}

/// The first want of each module or function.
pub fn dedup(wants: Vec<ModuleWant>) -> Vec<ModuleWant> {
    let mut seen = BTreeSet::new();
    wants
        .into_iter()
        .filter(|w| {
            seen.insert(match w {
                ModuleWant::Module { name, .. } => format!("m:{name}"),
                ModuleWant::Function { name, .. } => format!("f:{name}"),
            })
        })
        .collect()
}

/// Which modules to ship from `tree` (described as `origin`) for `wants`,
/// in load order, and the report's facts so far. `None` facts: nothing to
/// say (no wants, no tree).
pub fn plan(
    tree: Option<(&ModuleTree, &str)>,
    wants: &[ModuleWant],
) -> (Vec<(ModuleEntry, String)>, Option<ModuleFacts>) {
    let Some((tree, origin)) = tree else {
        let not_found: Vec<ModuleFact> = wants
            .iter()
            .filter_map(|w| match w {
                ModuleWant::Module { name, why } => Some(fact(name, why, None)),
                ModuleWant::Function { .. } => None,
            })
            .collect();
        if wants.is_empty() {
            return (Vec::new(), None);
        }
        let facts = ModuleFacts {
            tree: None,
            note: Some(
                "this kernel came without a module tree (a bare bzImage, or a package without \
                 modules): what the check needs from modules cannot be loaded; give the kernel \
                 its distribution's package, or a `modules:` source in the matrix"
                    .into(),
            ),
            not_found,
            ..ModuleFacts::default()
        };
        return (Vec::new(), Some(facts));
    };
    let LoadPlan { load, missing, .. } = tree.plan(wants);
    let facts = ModuleFacts {
        tree: Some(format!("{origin} ({} modules)", tree.index.modules.len())),
        not_found: missing
            .iter()
            .map(|(name, why)| {
                fact(
                    name,
                    why,
                    Some(match &tree.index.builtin {
                        Some(_) => "not in the module tree, nor built in (modules.builtin)",
                        None => "not in the module tree (built in, or not built for this kernel)",
                    }),
                )
            })
            .collect(),
        ..ModuleFacts::default()
    };
    (load, Some(facts))
}

/// Adds what the guest said of each module it was asked to load.
pub fn add_results(facts: &mut ModuleFacts, results: &[ModuleLoadResult]) {
    for r in results {
        match r.status {
            ModuleStatus::Loaded | ModuleStatus::AlreadyLoaded => {
                facts.loaded.push(fact(&r.name, &r.why, None))
            }
            ModuleStatus::Failed => facts.failed.push(fact(
                &r.name,
                &r.why,
                Some(r.reason.as_deref().unwrap_or("failed")),
            )),
        }
    }
}

pub fn fact(name: &str, why: &str, reason: Option<&str>) -> ModuleFact {
    ModuleFact {
        name: name.to_owned(),
        why: why.to_owned(),
        reason: reason.map(str::to_owned),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::inspection::ProgramSummary;

    fn prog(name: &str, section: &str, prog_type: &str, kfuncs: &[&str]) -> ProgramSummary {
        ProgramSummary {
            name: name.into(),
            section: section.into(),
            prog_type: Some(prog_type.into()),
            needs_kernel_btf: false,
            insns: 2,
            helpers: vec![],
            kfuncs: kfuncs.iter().map(|k| k.to_string()).collect(),
            attach_type: None,
            attach_target: None,
            unchecked_lookup: None,
        }
    }

    fn names(wants: &[ModuleWant]) -> Vec<String> {
        wants
            .iter()
            .map(|w| match w {
                ModuleWant::Module { name, why } => format!("module {name} ({why})"),
                ModuleWant::Function { name, why } => format!("function {name} ({why})"),
            })
            .collect()
    }

    #[test]
    fn what_programs_need_from_modules() {
        let summary = ObjectSummary {
            path: "x.bpf.o".into(),
            size: 1,
            sha256: "0".repeat(64),
            license: None,
            programs: vec![
                prog("classic", "tc", "sched_cls", &[]),
                prog("ingress", "tcx/ingress", "sched_cls", &[]),
                prog("act", "action", "sched_act", &[]),
                prog(
                    "probe",
                    "kprobe/nf_conntrack_in+0x4",
                    "kprobe",
                    &["bpf_ct_release"],
                ),
                prog("glob", "kprobe.multi/nf_*", "kprobe", &[]),
                prog("sys", "ksyscall/openat", "kprobe", &[]),
                prog("entry", "fentry/xfs_fs_fill_super", "tracing", &[]),
                prog("named", "fexit.s/btrfs:btrfs_sync_fs", "tracing", &[]),
                prog("iter", "iter/task", "tracing", &[]),
                prog("nf", "netfilter", "netfilter", &[]),
            ],
            maps: vec![],
            helpers: vec![],
            kfuncs: vec![],
            extern_vars: vec![],
            btf: true,
            core_relocations: 0,
            core: Vec::new(),
            btf_kinds: Vec::new(),
            globals: Vec::new(),
            needs_kernel_btf: false,
            warnings: vec![],
        };
        assert_eq!(
            names(&object_wants(&summary)),
            [
                "module sch_ingress (tc program classic)",
                "module cls_bpf (tc program classic)",
                "module act_bpf (tc program act)",
                "function nf_conntrack_in (kprobe/nf_conntrack_in+0x4)",
                "function bpf_ct_release (kfunc of program probe)",
                "function xfs_fs_fill_super (fentry/xfs_fs_fill_super)",
                "module btrfs (fexit.s/btrfs:btrfs_sync_fs)",
            ]
        );
    }

    #[test]
    fn without_a_tree_the_facts_say_so_and_name_the_modules() {
        let wants = named_wants(&["dummy".into()], "--modules");
        let (load, facts) = plan(None, &wants);
        assert!(load.is_empty());
        let facts = facts.unwrap();
        assert_eq!(facts.tree, None);
        assert!(facts.note.unwrap().contains("without a module tree"));
        assert_eq!(facts.not_found, [fact("dummy", "--modules", None)]);
        assert_eq!(plan(None, &[]), (Vec::new(), None));

        let mut facts = ModuleFacts::default();
        add_results(
            &mut facts,
            &[ModuleLoadResult {
                name: "x".into(),
                why: "w".into(),
                status: ModuleStatus::Failed,
                errno: Some(8),
                reason: Some("x: version magic".into()),
            }],
        );
        assert_eq!(facts.failed, [fact("x", "w", Some("x: version magic"))]);
    }
}
