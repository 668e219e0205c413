//! Loading a program: its CO-RE relocations, its BTF attach target, and
//! the load itself (the verifier, and what the kernel refuses before it).

use bpfcompat_proto::object::{Diagnosis, FailureClass, Phase};

use super::diagnosis::{diag, missing_btf, permission};
use super::evidence::{
    errno_text, find_line, find_line_or, says_unsupported, verifier_error_line, Evidence, E2BIG,
    EINVAL, EPERM,
};

const P: Phase = Phase::ProgramLoad;

fn core_hint(reason: &str) -> &'static str {
    // `struct pt_regs.di` on arm64, `struct user_pt_regs.regs` on x86: the
    // register accessors (PT_REGS_PARM1_CORE...) of the other architecture.
    if [" struct pt_regs.", " struct user_pt_regs."]
        .iter()
        .any(|t| reason.contains(t))
    {
        return "the program reads the registers through another architecture's layout: \
                it was built for a different __TARGET_ARCH_* than this kernel's; build \
                the object once per architecture (clang -D__TARGET_ARCH_x86 and \
                -D__TARGET_ARCH_arm64) and give each kernel its own with \
                --artifact 'build/{arch}/prog.bpf.o'";
    }
    "a field or type this program reads does not exist in this kernel's BTF: \
     guard the access with bpf_core_field_exists()/bpf_core_type_exists() and \
     provide a fallback (e.g. a ___v2 struct flavour for the other layout)"
}

pub fn classify_core(ev: &Evidence) -> Diagnosis {
    missing_btf(
        ev,
        Phase::CoreRelocation,
        find_line(ev, &["BTF"]).unwrap_or("CO-RE needs kernel BTF and this kernel has none"),
    )
    .unwrap_or_else(|| {
        let reason =
            find_line(ev, &["CO-RE", "relo #", "relocation"]).unwrap_or("CO-RE relocation failed");
        diag(
            FailureClass::CoreRelocationFailure,
            Phase::CoreRelocation,
            reason,
            core_hint(reason),
        )
    })
}

pub fn classify_attach_target(ev: &Evidence) -> Diagnosis {
    let line = find_line_or(
        ev,
        &["failed to find kernel BTF type ID", "attach target", "BTF"],
        || {
            format!(
                "attach target of '{}' not found: {}",
                ev.subject,
                errno_text(ev.errno)
            )
        },
    );
    missing_btf(ev, Phase::AttachTarget, &line).unwrap_or_else(|| {
        diag(
            FailureClass::AttachTargetMissing,
            Phase::AttachTarget,
            line,
            "the function/tracepoint named in SEC() is not in this kernel's BTF \
             (renamed, inlined or absent in this version): pick the target at run \
             time with bpf_program__set_attach_target(), or turn autoload off for \
             this program where it is missing",
        )
    })
}

/// The causes of a failed program load, in the order they are asked: the
/// evidence that names a cause first (a CO-RE poison, a kfunc, a helper),
/// then what the probes say, and only then the errno.
const LOAD_CAUSES: &[fn(&Evidence) -> Option<Diagnosis>] = &[
    core_poison,
    missing_kfunc,
    missing_map,
    too_large,
    gpl_only_helper,
    unknown_helper,
    callback_without_jit,
    unmodifiable_target,
    untyped_section,
    unknown_program_type,
    not_permitted,
    verifier_refusal,
    refused_before_verification,
];

pub fn classify_load(ev: &Evidence) -> Diagnosis {
    LOAD_CAUSES
        .iter()
        .find_map(|cause| cause(ev))
        .unwrap_or_else(|| {
            diag(
                FailureClass::Unknown,
                P,
                find_line_or(ev, &["load failed", "failed"], || {
                    format!("program load failed with {}", errno_text(ev.errno))
                }),
                "see the libbpf output and the verifier log",
            )
        })
}

/// libbpf poisons an instruction whose CO-RE relocation it could not resolve.
fn core_poison(ev: &Evidence) -> Option<Diagnosis> {
    let line = find_line(
        ev,
        &[
            "<invalid CO-RE relocation>",
            "failed to resolve CO-RE relocation",
        ],
    )?;
    Some(missing_btf(ev, P, line).unwrap_or_else(|| {
        // libbpf prints the unresolved relocation on the line after the
        // poisoned instruction; prefer it, it names the field.
        let reason = find_line(ev, &["failed to resolve CO-RE relocation"]).unwrap_or(line);
        diag(
            FailureClass::CoreRelocationFailure,
            P,
            reason,
            core_hint(reason),
        )
    }))
}

fn missing_kfunc(ev: &Evidence) -> Option<Diagnosis> {
    let line = find_line(
        ev,
        &[
            "<invalid kfunc call>",
            "calling kernel function",
            "kernel function",
            "kfunc",
        ],
    )?;
    Some(diag(
        FailureClass::MissingKfunc,
        P,
        line,
        "the program calls a kfunc this kernel (or this program type) does \
         not provide: check bpf_ksym_exists() on a __weak declaration first, \
         or ship a variant",
    ))
}

fn missing_map(ev: &Evidence) -> Option<Diagnosis> {
    let line = find_line(ev, &["<invalid BPF map reference>"])?;
    Some(diag(
        FailureClass::UnsupportedMapType,
        P,
        line,
        "the program uses a map that could not be created on this kernel; see the map's own result",
    ))
}

fn too_large(ev: &Evidence) -> Option<Diagnosis> {
    const SAYS_SO: &[&str] = &["BPF program is too large", "too complex"];
    if ev.errno != Some(E2BIG) && find_line(ev, SAYS_SO).is_none() {
        return None;
    }
    let line = find_line_or(ev, SAYS_SO, || {
        format!("program load failed with {}", errno_text(ev.errno))
    });
    Some(diag(
        FailureClass::ProgramTooLarge,
        P,
        line,
        "the verifier gave up (instruction or branch-state limit): split the \
         work with bpf_loop() or tail calls, bound loops tighter, or move \
         code into global (non-static) functions that are verified once",
    ))
}

fn gpl_only_helper(ev: &Evidence) -> Option<Diagnosis> {
    let line = find_line(ev, &["cannot call GPL-restricted function"])?;
    Some(diag(
        FailureClass::UnsupportedHelper,
        P,
        line,
        "this helper is GPL-only and the object's license is not GPL-compatible: \
         declare `char LICENSE[] SEC(\"license\") = \"GPL\";` (or \"Dual BSD/GPL\") \
         or do without the helper",
    ))
}

/// The verifier does not know the helper, or not for this program type.
fn unknown_helper(ev: &Evidence) -> Option<Diagnosis> {
    let line = find_line(
        ev,
        &[
            "unknown func ",
            "invalid func unknown#",
            "cannot use helper",
            "helper call is not allowed",
            "helper access to",
        ],
    )
    .filter(|l| !l.contains("helper access to"))?;
    let helper = helper_in(line)
        .or_else(|| ev.unsupported_helpers.first().cloned())
        .unwrap_or_else(|| "this helper".into());
    Some(diag(
        FailureClass::UnsupportedHelper,
        P,
        line,
        helper_hint(&helper, ev.prog_type.as_deref()),
    ))
}

fn callback_without_jit(ev: &Evidence) -> Option<Diagnosis> {
    let line = find_line(ev, &["callbacks are not allowed in non-JITed programs"])?;
    let helper = ev.unsupported_helpers.first().cloned().unwrap_or_else(|| {
        "callback-taking helpers (bpf_loop, bpf_for_each_map_elem, bpf_user_ringbuf_drain, ...)"
            .into()
    });
    Some(diag(
        FailureClass::UnsupportedHelper,
        P,
        line,
        format!(
            "this kernel has no BPF JIT (interpreter only), and {helper} needs one for its \
             callback: guard the call with a feature probe and provide a loop-free \
             fallback, or require a JIT-enabled kernel"
        ),
    ))
}

/// The target function exists, but this program type may not attach to it.
fn unmodifiable_target(ev: &Evidence) -> Option<Diagnosis> {
    let line = find_line(
        ev,
        &["is not modifiable", "to __noreturn functions is rejected"],
    )?;
    Some(diag(
        FailureClass::UnsupportedAttachType,
        P,
        line,
        "the function exists but this kernel does not let this program type \
         attach to it (fmod_ret needs a function marked for error injection, \
         which needs CONFIG_FUNCTION_ERROR_INJECTION, or a security_* hook; \
         fexit cannot attach to noreturn functions): pick another target or \
         use fentry/fexit/kprobe",
    ))
}

/// libbpf could not tell the program's type from its section: no kernel
/// loads it as compiled; its loader sets the type.
fn untyped_section(ev: &Evidence) -> Option<Diagnosis> {
    let line = find_line(ev, &["missing BPF prog type"])?;
    Some(diag(
        FailureClass::InvalidObject,
        P,
        line,
        format!(
            "libbpf cannot tell the type of {} from its section: its loader sets it \
             (bpf_program__set_type); say which in a manifest (program_types: - program: {}, \
             type: socket_filter or another libbpf name) or use a SEC() libbpf knows",
            ev.subject, ev.subject
        ),
    ))
}

fn unknown_program_type(ev: &Evidence) -> Option<Diagnosis> {
    if ev.prog_type_supported != Some(false) || !ev.verifier_log.trim().is_empty() {
        return None;
    }
    let t = ev.prog_type.as_deref().unwrap_or("this");
    Some(diag(
        FailureClass::UnsupportedProgramType,
        P,
        format!(
            "program load failed with {} and no verifier log; probe: program type {t} not supported",
            errno_text(ev.errno)
        ),
        format!(
            "this kernel does not know {t} programs: guard with \
             libbpf_probe_bpf_prog_type() and turn autoload off (or ship a variant) here"
        ),
    ))
}

fn not_permitted(ev: &Evidence) -> Option<Diagnosis> {
    if ev.errno != Some(EPERM) {
        return None;
    }
    let line = find_line_or(
        ev,
        &[
            "Couldn't load trivial BPF program",
            "load failed",
            "EPERM",
            "Operation not permitted",
        ],
        || "program load failed with -EPERM".into(),
    );
    Some(permission(ev, P, line))
}

/// The verifier ran and refused: its last words say why.
fn verifier_refusal(ev: &Evidence) -> Option<Diagnosis> {
    let vlog = ev.verifier_log.trim();
    if vlog.is_empty() {
        return None;
    }
    let line = verifier_error_line(vlog).unwrap_or(vlog);
    if !ev.unsupported_helpers.is_empty() && ev.errno == Some(EINVAL) {
        return Some(probed_helper(
            ev,
            format!(
                "{line} (probe: {} not supported for this program type)",
                ev.unsupported_helpers.join(", ")
            ),
        ));
    }
    Some(diag(
        FailureClass::VerifierRejection,
        P,
        line,
        "the verifier proved the program unsafe on this kernel: read the log \
         tail (the last lines name the instruction and the register); older \
         verifiers track bounds less precisely, so add explicit NULL/bounds \
         checks or simplify the code it rejects",
    ))
}

/// The kernel refused the load before the verifier ran, with an errno that
/// says it does not know something: a helper the probes rule out, or else
/// (the program type being known) the attach type or a load flag.
fn refused_before_verification(ev: &Evidence) -> Option<Diagnosis> {
    if !says_unsupported(ev.errno) {
        return None;
    }
    if !ev.unsupported_helpers.is_empty() {
        return Some(probed_helper(
            ev,
            format!(
                "program load failed with {} and no verifier log; probe: {} not supported",
                errno_text(ev.errno),
                ev.unsupported_helpers.join(", ")
            ),
        ));
    }
    // The kernel knows the program type (the probe says so) yet refused
    // the load before the verifier ran: the attach type (or a load flag)
    // is what it does not know.
    if ev.prog_type_supported != Some(true) {
        return None;
    }
    Some(diag(
        FailureClass::UnsupportedAttachType,
        P,
        format!(
            "program load failed with {} before verification (no verifier log), \
             although {} programs are supported",
            errno_text(ev.errno),
            ev.prog_type.as_deref().unwrap_or("its")
        ),
        "the kernel does not accept this program's expected attach type \
         (the SEC() name) or load flags (e.g. sleepable): it is newer than \
         this kernel; ship a variant or turn autoload off here",
    ))
}

/// UNSUPPORTED_HELPER for the first of the helpers the probes say this
/// program type cannot call (there is at least one).
fn probed_helper(ev: &Evidence, reason: String) -> Diagnosis {
    diag(
        FailureClass::UnsupportedHelper,
        P,
        reason,
        helper_hint(&ev.unsupported_helpers[0], ev.prog_type.as_deref()),
    )
}

fn helper_hint(helper: &str, prog_type: Option<&str>) -> String {
    format!(
        "{helper} is not available to {} programs on this kernel: guard it with \
         libbpf_probe_bpf_helper() (or bpf_core_enum_value_exists(enum bpf_func_id, \
         BPF_FUNC_...)) and ship a fallback path or variant",
        prog_type.unwrap_or("these")
    )
}

/// The helper name in a verifier line like `unknown func bpf_loop#181` or
/// `program of this type cannot use helper bpf_loop#181`.
fn helper_in(line: &str) -> Option<String> {
    let start = line.find("bpf_")?;
    let name: String = line[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    Some(name)
}
