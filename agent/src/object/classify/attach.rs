//! Attaching a loaded program: the target is missing, or the kernel cannot
//! attach this way.

use bpfcompat_proto::object::{Diagnosis, FailureClass, Phase};

use super::diagnosis::{diag, permission};
use super::evidence::{
    errno_text, find_line, find_line_or, Evidence, EACCES, EBUSY, EEXIST, EINVAL, ENOENT, ENOSYS,
    ENOTSUPP, ENXIO, EOPNOTSUPP, EPERM, ESRCH,
};

/// A kprobe on another architecture's syscall wrapper (`__x64_sys_openat`
/// on arm64, `__arm64_sys_openat` on x86): the name to use instead.
fn foreign_syscall_hint(ev: &Evidence, target: &str) -> Option<String> {
    let symbol = target.rsplit(' ').next().unwrap_or(target);
    let (own, others): (&str, &[&str]) = if ev.arm64 {
        ("__arm64_sys_", &["__x64_sys_", "__ia32_sys_"])
    } else {
        ("__x64_sys_", &["__arm64_sys_"])
    };
    let (prefix, call) = others
        .iter()
        .find_map(|p| Some((*p, symbol.strip_prefix(p)?)))?;
    Some(format!(
        "{symbol} does not exist on {}: {prefix}* are another architecture's syscall wrappers \
         (here it is {own}{call}); use the `ksyscall/{call}` section (BPF_KSYSCALL), which \
         libbpf resolves to each architecture's name",
        if ev.arm64 { "arm64" } else { "x86_64" }
    ))
}

/// fentry, fexit, fmod_ret and LSM programs attach through the BPF
/// trampoline, which arm64 has from 6.0, but to kernel functions through
/// ftrace direct calls, which arm64 has from 6.4: before, -ENOTSUPP.
fn arm64_trampoline_hint(ev: &Evidence) -> Option<String> {
    let tracing = matches!(ev.prog_type.as_deref(), Some("tracing" | "lsm" | "ext"));
    (ev.arm64 && tracing && ev.errno == Some(ENOTSUPP)).then(|| {
        "fentry/fexit/fmod_ret/lsm programs need the BPF trampoline and, to attach to a kernel \
         function, ftrace direct calls: arm64 has the trampoline from 6.0 and direct calls \
         from 6.4, so older arm64 kernels refuse the attachment; fall back to a \
         kprobe/kretprobe (or a tracepoint) there"
            .to_owned()
    })
}

pub fn classify_attach(ev: &Evidence) -> Diagnosis {
    let p = Phase::Attach;
    let target = ev.target.as_deref().unwrap_or("the target");
    let line = find_line_or(ev, &["failed to", "failed", "error"], || {
        format!("attaching to {target} failed with {}", errno_text(ev.errno))
    });
    let missing_hint = format!(
        "{target} does not exist in this kernel (not built in, renamed, inlined, or \
         not traceable): choose the target at run time (check /proc/kallsyms or \
         available_filter_functions) and make this attachment optional"
    );
    if ev.target_exists == Some(false) {
        let hint = foreign_syscall_hint(ev, target).unwrap_or(missing_hint);
        return diag(FailureClass::AttachTargetMissing, p, line, hint);
    }
    if let Some(hint) = arm64_trampoline_hint(ev) {
        return diag(FailureClass::UnsupportedAttachType, p, line, hint);
    }
    let untraceable = matches!(ev.errno, Some(EINVAL | ENOENT | EBUSY | ESRCH));
    if ev.target_exists == Some(true) && ev.target_traceable == Some(false) && untraceable {
        return diag(
            FailureClass::AttachTargetMissing,
            p,
            format!(
                "{target} exists but is not traceable on this kernel (inlined or notrace: it is \
                 in kallsyms but not in available_filter_functions): {line}"
            ),
            format!(
                "kprobes and fentry cannot attach to {target} on this kernel: attach to a \
                 traceable caller or callee, or a tracepoint, chosen at run time from \
                 available_filter_functions, and make this attachment optional"
            ),
        );
    }
    if let Some(l) = find_line(ev, &["qdisc kind is unknown"]) {
        return diag(
            FailureClass::UnsupportedAttachType,
            p,
            l,
            "the kernel has no clsact qdisc (sch_ingress is not built in, or is a \
             module that is not loaded): load sch_ingress/cls_bpf, or use tcx \
             links on 6.6+",
        );
    }
    match ev.errno {
        Some(ENOENT) | Some(ESRCH) | Some(ENXIO) if ev.target_exists != Some(true) => {
            diag(FailureClass::AttachTargetMissing, p, line, missing_hint)
        }
        Some(EPERM) | Some(EACCES) => permission(ev, p, line),
        Some(EOPNOTSUPP) | Some(ENOTSUPP) | Some(EINVAL) | Some(ENOSYS) | Some(ENOENT)
        | Some(ESRCH) | Some(ENXIO) => diag(
            FailureClass::UnsupportedAttachType,
            p,
            line,
            format!(
                "the program loaded but this kernel cannot attach it this way ({}): \
                 the attach mechanism is newer than the kernel or compiled out; fall back \
                 to an older one (e.g. kprobe for kprobe.multi, tc/clsact for tcx) when it fails",
                errno_text(ev.errno)
            ),
        ),
        Some(EBUSY) | Some(EEXIST) => diag(
            FailureClass::Unknown,
            p,
            line,
            "something is already attached there (exclusive attach point)",
        ),
        _ => diag(FailureClass::Unknown, p, line, "see the libbpf output"),
    }
}
