//! Building a [`Diagnosis`], and the verdicts and hints that several
//! phases share: no kernel BTF, and a permission refusal.

use bpfcompat_proto::object::{Diagnosis, FailureClass, Phase};

use super::evidence::Evidence;

/// A diagnosis of `class` in `phase`: the line that says why, and what to do.
pub fn diag(
    class: FailureClass,
    phase: Phase,
    reason: impl Into<String>,
    hint: impl Into<String>,
) -> Diagnosis {
    Diagnosis {
        class,
        phase,
        reason: reason.into(),
        hint: hint.into(),
    }
}

/// What to do on a kernel without BTF, whichever step needed it.
pub fn no_btf_hint() -> &'static str {
    "this kernel has no BTF (CONFIG_DEBUG_INFO_BTF is off): CO-RE and \
     BTF-based programs (fentry/fexit, tp_btf, lsm, iter, struct_ops, kfuncs) \
     cannot load here; ship BTF for it (libbpf's btf_custom_path, e.g. from \
     BTFHub) or a variant built for this kernel without CO-RE"
}

/// MISSING_BTF when the kernel has no BTF at all: that, rather than the
/// step that needed it, is what to fix.
pub fn missing_btf(ev: &Evidence, phase: Phase, reason: impl Into<String>) -> Option<Diagnosis> {
    (!ev.kernel_btf).then(|| diag(FailureClass::MissingBtf, phase, reason, no_btf_hint()))
}

/// An EPERM refusal, with the kernel's lockdown mode in the hint when it has one.
pub fn permission(ev: &Evidence, phase: Phase, line: String) -> Diagnosis {
    let mut hint = String::from(
        "the kernel refused the operation (EPERM): the loader needs CAP_BPF + \
         CAP_PERFMON (or CAP_SYS_ADMIN); before 5.11 maps are charged to \
         RLIMIT_MEMLOCK, so raise `ulimit -l`",
    );
    if let Some(mode) = ev.lockdown.as_deref().filter(|m| *m != "none") {
        hint.push_str(&format!(
            "; this kernel is in lockdown mode '{mode}', which blocks some BPF features"
        ));
    }
    diag(FailureClass::PermissionDenied, phase, line, hint)
}
