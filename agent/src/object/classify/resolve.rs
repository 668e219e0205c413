//! Resolving the object against this kernel before anything is created:
//! the kernel's BTF itself, externs (kfuncs, ksyms, kconfig values) and the
//! struct_ops types its struct_ops maps implement.

use bpfcompat_proto::object::{Diagnosis, FailureClass, Phase};

use super::diagnosis::{diag, missing_btf, no_btf_hint};
use super::evidence::{find_line, Evidence};

pub fn classify_kernel_btf(ev: &Evidence) -> Diagnosis {
    diag(
        FailureClass::MissingBtf,
        Phase::KernelBtf,
        find_line(ev, &["vmlinux BTF", "kernel BTF"])
            .unwrap_or("the kernel has no /sys/kernel/btf/vmlinux"),
        no_btf_hint(),
    )
}

pub fn classify_extern(ev: &Evidence) -> Diagnosis {
    if let Some(d) = missing_btf(
        ev,
        Phase::Extern,
        find_line(ev, &["extern", "BTF"]).unwrap_or(
            "kernel symbols (__ksym) are resolved through kernel BTF, which this kernel lacks",
        ),
    ) {
        return d;
    }
    if let Some(line) = find_line(
        ev,
        &["extern (func ksym)", "extern (var ksym)", "extern (ksym)"],
    ) {
        return diag(
            FailureClass::MissingKfunc,
            Phase::Extern,
            line,
            "the kernel does not export this kfunc/ksym (it is newer, renamed or \
             compiled out): declare it __weak and test bpf_ksym_exists() before \
             calling it, or ship a variant; a strong extern fails the whole \
             object even for programs that do not call it",
        );
    }
    diag(
        FailureClass::Unknown,
        Phase::Extern,
        find_line(ev, &["extern"]).unwrap_or("an extern could not be resolved"),
        "a __kconfig or other extern could not be resolved on this kernel: make it __weak \
         and handle its default value",
    )
}

pub fn classify_struct_ops(ev: &Evidence) -> Diagnosis {
    missing_btf(
        ev,
        Phase::StructOps,
        "struct_ops needs kernel BTF and this kernel has none",
    )
    .unwrap_or_else(|| {
        diag(
            FailureClass::AttachTargetMissing,
            Phase::StructOps,
            find_line(ev, &["struct_ops"]).unwrap_or("struct_ops type not found in kernel BTF"),
            "this kernel does not have the struct_ops type (or the member) the \
         map implements: it is newer than this kernel, or was changed; ship a \
         variant or skip this struct_ops map here (autocreate off)",
        )
    })
}
