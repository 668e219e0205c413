//! Classification of a failure: a pure function of the failing phase, the
//! errno, libbpf's output, the verifier log and the feature probes.
//!
//! The phase comes first (a map that fails to create is never a verifier
//! problem), then the evidence that names a cause (a CO-RE poison, a helper
//! the verifier does not know), and only then the errno. EACCES from the
//! verifier is a verifier rejection, not a permission problem; a kprobe on a
//! symbol the kernel lacks is a missing target, not an unsupported attach
//! type; a missing BTF attach target means "no BTF" only if the kernel has
//! none at all.

use bpfcompat_proto::object::{Diagnosis, FailureClass, Phase};

pub const EPERM: i32 = 1;
pub const ENOENT: i32 = 2;
pub const ESRCH: i32 = 3;
pub const ENXIO: i32 = 6;
pub const E2BIG: i32 = 7;
pub const ENOMEM: i32 = 12;
pub const EACCES: i32 = 13;
pub const EBUSY: i32 = 16;
pub const EEXIST: i32 = 17;
pub const EINVAL: i32 = 22;
pub const ENOSYS: i32 = 38;
pub const EOPNOTSUPP: i32 = 95;
/// Kernel-internal, but it leaks to user space from BPF syscalls.
pub const ENOTSUPP: i32 = 524;

/// Everything known about one failure.
#[derive(Debug, Clone)]
pub struct Evidence {
    pub phase: Phase,
    pub errno: Option<i32>,
    /// libbpf's lines about this failure (without the verifier log).
    pub libbpf_lines: Vec<String>,
    /// The verifier log of the failing program load, if any.
    pub verifier_log: String,
    /// The program or map the failure is about.
    pub subject: String,
    /// libbpf's program type name (`kprobe`, `tracing`, ...), for hints.
    pub prog_type: Option<String>,
    /// libbpf's map type name, for map failures.
    pub map_type: Option<String>,
    /// The kernel has BTF (`/sys/kernel/btf/vmlinux`).
    pub kernel_btf: bool,
    /// `libbpf_probe_bpf_prog_type` for the program's type.
    pub prog_type_supported: Option<bool>,
    /// `libbpf_probe_bpf_map_type` for the map's type.
    pub map_type_supported: Option<bool>,
    /// Helpers the program calls that the probe says its type cannot use.
    pub unsupported_helpers: Vec<String>,
    /// Attach: whether the named target exists (kallsyms, tracefs, a path).
    pub target_exists: Option<bool>,
    /// Attach: what was attached to.
    pub target: Option<String>,
    /// `/sys/kernel/security/lockdown`'s selected mode.
    pub lockdown: Option<String>,
}

impl Evidence {
    pub fn new(phase: Phase, subject: impl Into<String>) -> Self {
        Evidence {
            phase,
            errno: None,
            libbpf_lines: Vec::new(),
            verifier_log: String::new(),
            subject: subject.into(),
            prog_type: None,
            map_type: None,
            kernel_btf: true,
            prog_type_supported: None,
            map_type_supported: None,
            unsupported_helpers: Vec::new(),
            target_exists: None,
            target: None,
            lockdown: None,
        }
    }
}

fn diag(
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

/// First line (libbpf's, then the verifier's) containing any of `needles`.
fn find_line<'a>(ev: &'a Evidence, needles: &[&str]) -> Option<&'a str> {
    ev.libbpf_lines
        .iter()
        .map(|l| l.as_str())
        .chain(ev.verifier_log.lines())
        .map(|l| l.trim())
        .find(|l| needles.iter().any(|n| l.contains(n)))
}

fn errno_text(errno: Option<i32>) -> String {
    match errno {
        Some(e) => format!("-{} ({e})", errno_name(e)),
        None => "no errno".into(),
    }
}

pub fn errno_name(e: i32) -> &'static str {
    match e {
        EPERM => "EPERM",
        ENOENT => "ENOENT",
        ESRCH => "ESRCH",
        ENXIO => "ENXIO",
        E2BIG => "E2BIG",
        ENOMEM => "ENOMEM",
        EACCES => "EACCES",
        EBUSY => "EBUSY",
        EEXIST => "EEXIST",
        EINVAL => "EINVAL",
        28 => "ENOSPC",
        ENOSYS => "ENOSYS",
        EOPNOTSUPP => "EOPNOTSUPP",
        ENOTSUPP => "ENOTSUPP",
        // libbpf's own error codes (LIBBPF_ERRNO__*).
        4000 => "LIBBPF_ERRNO__LIBELF",
        4001 => "LIBBPF_ERRNO__FORMAT",
        4002 => "LIBBPF_ERRNO__KVERSION",
        4003 => "LIBBPF_ERRNO__ENDIAN",
        4004 => "LIBBPF_ERRNO__INTERNAL",
        4005 => "LIBBPF_ERRNO__RELOC",
        4006 => "LIBBPF_ERRNO__LOAD",
        4007 => "LIBBPF_ERRNO__VERIFY",
        4008 => "LIBBPF_ERRNO__PROG2BIG",
        4009 => "LIBBPF_ERRNO__KVER",
        4010 => "LIBBPF_ERRNO__PROGTYPE",
        _ => "E?",
    }
}

/// The line of a verifier log that says why it refused: the last one that
/// is not a statistic.
pub fn verifier_error_line(log: &str) -> Option<&str> {
    log.lines().rev().map(str::trim).find(|l| {
        !l.is_empty()
            && !l.starts_with("processed ")
            && !l.starts_with("verification time")
            && !l.starts_with("stack depth")
            && !l.starts_with("Live regs")
            && !l.starts_with("-- END")
    })
}

/// `processed N insns` from a verifier log.
pub fn insns_processed(log: &str) -> Option<u64> {
    log.lines().rev().find_map(|l| {
        let rest = l.trim().strip_prefix("processed ")?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

fn no_btf_hint() -> &'static str {
    "this kernel has no BTF (CONFIG_DEBUG_INFO_BTF is off): CO-RE and \
     BTF-based programs (fentry/fexit, tp_btf, lsm, iter, struct_ops, kfuncs) \
     cannot load here; ship BTF for it (libbpf's btf_custom_path, e.g. from \
     BTFHub) or a variant built for this kernel without CO-RE"
}

fn map_hint(map_type: Option<&str>) -> String {
    match map_type {
        Some("ringbuf") => "ring buffers need 5.8+: fall back to a perf event array \
             (perf buffer) when libbpf_probe_bpf_map_type(BPF_MAP_TYPE_RINGBUF) says no"
            .into(),
        Some(t) => format!(
            "guard it with libbpf_probe_bpf_map_type(BPF_MAP_TYPE_{}) and ship a variant \
             (or set the map's autocreate off and the programs using it autoload off)",
            t.to_uppercase()
        ),
        None => "guard it with libbpf_probe_bpf_map_type() and ship a variant".into(),
    }
}

/// Classifies one failure.
pub fn classify(ev: &Evidence) -> Diagnosis {
    match ev.phase {
        Phase::Open if matches!(ev.errno, Some(EACCES) | Some(EPERM)) => diag(
            FailureClass::PermissionDenied,
            Phase::Open,
            find_line(ev, &["failed to open", "open"])
                .map(str::to_owned)
                .unwrap_or_else(|| format!("cannot open {}: {}", ev.subject, errno_text(ev.errno))),
            "the loader may not read the object file: check its permissions and the \
             loader's user",
        ),
        Phase::Open => {
            let reason = find_line(
                ev,
                &["elf:", "failed", "invalid", "Invalid", "error", "Error"],
            )
            .map(str::to_owned)
            .unwrap_or_else(|| {
                format!("libbpf could not open the object: {}", errno_text(ev.errno))
            });
            diag(
                FailureClass::InvalidObject,
                Phase::Open,
                reason,
                "libbpf cannot parse this file as a BPF object: build it with \
                 `clang -target bpf -O2 -g -c` and pass the .bpf.o itself",
            )
        }
        Phase::KernelBtf => diag(
            FailureClass::MissingBtf,
            Phase::KernelBtf,
            find_line(ev, &["vmlinux BTF", "kernel BTF"])
                .unwrap_or("the kernel has no /sys/kernel/btf/vmlinux"),
            no_btf_hint(),
        ),
        Phase::Extern => classify_extern(ev),
        Phase::StructOps => {
            if !ev.kernel_btf {
                return diag(
                    FailureClass::MissingBtf,
                    Phase::StructOps,
                    "struct_ops needs kernel BTF and this kernel has none",
                    no_btf_hint(),
                );
            }
            diag(
                FailureClass::AttachTargetMissing,
                Phase::StructOps,
                find_line(ev, &["struct_ops"]).unwrap_or("struct_ops type not found in kernel BTF"),
                "this kernel does not have the struct_ops type (or the member) the \
                 map implements: it is newer than this kernel, or was changed; ship a \
                 variant or skip this struct_ops map here (autocreate off)",
            )
        }
        Phase::MapCreate => classify_map(ev),
        Phase::CoreRelocation => {
            if !ev.kernel_btf {
                return diag(
                    FailureClass::MissingBtf,
                    Phase::CoreRelocation,
                    find_line(ev, &["BTF"])
                        .unwrap_or("CO-RE needs kernel BTF and this kernel has none"),
                    no_btf_hint(),
                );
            }
            diag(
                FailureClass::CoreRelocationFailure,
                Phase::CoreRelocation,
                find_line(ev, &["CO-RE", "relo #", "relocation"])
                    .unwrap_or("CO-RE relocation failed"),
                core_hint(),
            )
        }
        Phase::AttachTarget => classify_attach_target(ev),
        Phase::ProgramLoad => classify_load(ev),
        Phase::Attach => classify_attach(ev),
    }
}

fn core_hint() -> &'static str {
    "a field or type this program reads does not exist in this kernel's BTF: \
     guard the access with bpf_core_field_exists()/bpf_core_type_exists() and \
     provide a fallback (e.g. a ___v2 struct flavour for the other layout)"
}

fn classify_extern(ev: &Evidence) -> Diagnosis {
    if !ev.kernel_btf {
        return diag(
            FailureClass::MissingBtf,
            Phase::Extern,
            find_line(ev, &["extern", "BTF"]).unwrap_or(
                "kernel symbols (__ksym) are resolved through kernel BTF, which this kernel lacks",
            ),
            no_btf_hint(),
        );
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

fn classify_map(ev: &Evidence) -> Diagnosis {
    let line = find_line(ev, &["failed to create", "map '"])
        .map(str::to_owned)
        .unwrap_or_else(|| {
            format!(
                "map '{}': creation failed with {}",
                ev.subject,
                errno_text(ev.errno)
            )
        });
    if ev.errno == Some(EPERM) {
        return permission(ev, Phase::MapCreate, line);
    }
    match ev.map_type_supported {
        Some(false) => diag(
            FailureClass::UnsupportedMapType,
            Phase::MapCreate,
            format!(
                "{line} (probe: map type {} not supported)",
                ev.map_type.as_deref().unwrap_or("?")
            ),
            map_hint(ev.map_type.as_deref()),
        ),
        None if matches!(ev.errno, Some(EINVAL) | Some(EOPNOTSUPP) | Some(ENOTSUPP)) => diag(
            FailureClass::UnsupportedMapType,
            Phase::MapCreate,
            format!("{line} (the map-type probe did not answer)"),
            map_hint(ev.map_type.as_deref()),
        ),
        _ => diag(
            FailureClass::Unknown,
            Phase::MapCreate,
            line,
            match ev.errno {
                Some(ENOMEM) | Some(E2BIG) => {
                    "the kernel supports this map type but could not allocate it: \
                     lower max_entries/value size or check memory limits"
                }
                _ => {
                    "the kernel supports this map type but rejected its parameters \
                     (map_flags, key/value size, map_extra): check which were added \
                     after this kernel"
                }
            },
        ),
    }
}

fn classify_attach_target(ev: &Evidence) -> Diagnosis {
    let line = find_line(
        ev,
        &["failed to find kernel BTF type ID", "attach target", "BTF"],
    )
    .map(str::to_owned)
    .unwrap_or_else(|| {
        format!(
            "attach target of '{}' not found: {}",
            ev.subject,
            errno_text(ev.errno)
        )
    });
    if !ev.kernel_btf {
        return diag(
            FailureClass::MissingBtf,
            Phase::AttachTarget,
            line,
            no_btf_hint(),
        );
    }
    diag(
        FailureClass::AttachTargetMissing,
        Phase::AttachTarget,
        line,
        "the function/tracepoint named in SEC() is not in this kernel's BTF \
         (renamed, inlined or absent in this version): pick the target at run \
         time with bpf_program__set_attach_target(), or turn autoload off for \
         this program where it is missing",
    )
}

fn permission(ev: &Evidence, phase: Phase, line: String) -> Diagnosis {
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

fn classify_load(ev: &Evidence) -> Diagnosis {
    let p = Phase::ProgramLoad;
    let vlog = ev.verifier_log.trim();
    if let Some(line) = find_line(
        ev,
        &[
            "<invalid CO-RE relocation>",
            "failed to resolve CO-RE relocation",
        ],
    ) {
        if !ev.kernel_btf {
            return diag(FailureClass::MissingBtf, p, line, no_btf_hint());
        }
        // libbpf prints the unresolved relocation on the line after the
        // poisoned instruction; prefer it, it names the field.
        let reason = find_line(ev, &["failed to resolve CO-RE relocation"]).unwrap_or(line);
        return diag(FailureClass::CoreRelocationFailure, p, reason, core_hint());
    }
    if let Some(line) = find_line(
        ev,
        &[
            "<invalid kfunc call>",
            "calling kernel function",
            "kernel function",
            "kfunc",
        ],
    ) {
        return diag(
            FailureClass::MissingKfunc,
            p,
            line,
            "the program calls a kfunc this kernel (or this program type) does \
             not provide: check bpf_ksym_exists() on a __weak declaration first, \
             or ship a variant",
        );
    }
    if let Some(line) = find_line(ev, &["<invalid BPF map reference>"]) {
        return diag(
            FailureClass::UnsupportedMapType,
            p,
            line,
            "the program uses a map that could not be created on this kernel; see the map's own result",
        );
    }
    if ev.errno == Some(E2BIG)
        || find_line(ev, &["BPF program is too large", "too complex"]).is_some()
    {
        let line = find_line(ev, &["BPF program is too large", "too complex"])
            .map(str::to_owned)
            .unwrap_or_else(|| format!("program load failed with {}", errno_text(ev.errno)));
        return diag(
            FailureClass::ProgramTooLarge,
            p,
            line,
            "the verifier gave up (instruction or branch-state limit): split the \
             work with bpf_loop() or tail calls, bound loops tighter, or move \
             code into global (non-static) functions that are verified once",
        );
    }
    if let Some(line) = find_line(ev, &["cannot call GPL-restricted function"]) {
        return diag(
            FailureClass::UnsupportedHelper,
            p,
            line,
            "this helper is GPL-only and the object's license is not GPL-compatible: \
             declare `char LICENSE[] SEC(\"license\") = \"GPL\";` (or \"Dual BSD/GPL\") \
             or do without the helper",
        );
    }
    if let Some(line) = find_line(
        ev,
        &[
            "unknown func ",
            "invalid func unknown#",
            "cannot use helper",
            "helper call is not allowed",
            "helper access to",
        ],
    )
    .filter(|l| !l.contains("helper access to"))
    {
        let helper = helper_in(line)
            .or_else(|| ev.unsupported_helpers.first().cloned())
            .unwrap_or_else(|| "this helper".into());
        return diag(
            FailureClass::UnsupportedHelper,
            p,
            line,
            helper_hint(&helper, ev.prog_type.as_deref()),
        );
    }
    if let Some(line) = find_line(ev, &["callbacks are not allowed in non-JITed programs"]) {
        let helper = ev
            .unsupported_helpers
            .first()
            .cloned()
            .unwrap_or_else(|| "callback-taking helpers (bpf_loop, bpf_for_each_map_elem, bpf_user_ringbuf_drain, ...)".into());
        return diag(
            FailureClass::UnsupportedHelper,
            p,
            line,
            format!(
                "this kernel has no BPF JIT (interpreter only), and {helper} needs one for its \
                 callback: guard the call with a feature probe and provide a loop-free \
                 fallback, or require a JIT-enabled kernel"
            ),
        );
    }
    if let Some(line) = find_line(
        ev,
        &["is not modifiable", "to __noreturn functions is rejected"],
    ) {
        return diag(
            FailureClass::UnsupportedAttachType,
            p,
            line,
            "the function exists but this kernel does not let this program type \
             attach to it (fmod_ret needs a function marked for error injection, \
             which needs CONFIG_FUNCTION_ERROR_INJECTION, or a security_* hook; \
             fexit cannot attach to noreturn functions): pick another target or \
             use fentry/fexit/kprobe",
        );
    }
    if ev.prog_type_supported == Some(false) && vlog.is_empty() {
        let t = ev.prog_type.as_deref().unwrap_or("this");
        return diag(
            FailureClass::UnsupportedProgramType,
            p,
            format!(
                "program load failed with {} and no verifier log; probe: program type {t} not supported",
                errno_text(ev.errno)
            ),
            format!(
                "this kernel does not know {t} programs: guard with \
                 libbpf_probe_bpf_prog_type() and turn autoload off (or ship a variant) here"
            ),
        );
    }
    if ev.errno == Some(EPERM) {
        let line = find_line(
            ev,
            &[
                "Couldn't load trivial BPF program",
                "load failed",
                "EPERM",
                "Operation not permitted",
            ],
        )
        .map(str::to_owned)
        .unwrap_or_else(|| "program load failed with -EPERM".into());
        return permission(ev, p, line);
    }
    if !vlog.is_empty() {
        let line = verifier_error_line(vlog).unwrap_or(vlog);
        if !ev.unsupported_helpers.is_empty() && ev.errno == Some(EINVAL) {
            return diag(
                FailureClass::UnsupportedHelper,
                p,
                format!(
                    "{line} (probe: {} not supported for this program type)",
                    ev.unsupported_helpers.join(", ")
                ),
                helper_hint(&ev.unsupported_helpers[0], ev.prog_type.as_deref()),
            );
        }
        return diag(
            FailureClass::VerifierRejection,
            p,
            line,
            "the verifier proved the program unsafe on this kernel: read the log \
             tail (the last lines name the instruction and the register); older \
             verifiers track bounds less precisely, so add explicit NULL/bounds \
             checks or simplify the code it rejects",
        );
    }
    if ev.errno == Some(EINVAL) || ev.errno == Some(EOPNOTSUPP) || ev.errno == Some(ENOTSUPP) {
        if !ev.unsupported_helpers.is_empty() {
            return diag(
                FailureClass::UnsupportedHelper,
                p,
                format!(
                    "program load failed with {} and no verifier log; probe: {} not supported",
                    errno_text(ev.errno),
                    ev.unsupported_helpers.join(", ")
                ),
                helper_hint(&ev.unsupported_helpers[0], ev.prog_type.as_deref()),
            );
        }
        // The kernel knows the program type (the probe says so) yet refused
        // the load before the verifier ran: the attach type (or a load flag)
        // is what it does not know.
        if ev.prog_type_supported == Some(true) {
            return diag(
                FailureClass::UnsupportedAttachType,
                p,
                format!(
                    "program load failed with {} before verification (no verifier log), \
                     although {} programs are supported",
                    errno_text(ev.errno),
                    ev.prog_type.as_deref().unwrap_or("its")
                ),
                "the kernel does not accept this program's expected attach type \
                 (the SEC() name) or load flags (e.g. sleepable): it is newer than \
                 this kernel; ship a variant or turn autoload off here",
            );
        }
    }
    diag(
        FailureClass::Unknown,
        p,
        find_line(ev, &["load failed", "failed"])
            .map(str::to_owned)
            .unwrap_or_else(|| format!("program load failed with {}", errno_text(ev.errno))),
        "see the libbpf output and the verifier log",
    )
}

fn classify_attach(ev: &Evidence) -> Diagnosis {
    let p = Phase::Attach;
    let target = ev.target.as_deref().unwrap_or("the target");
    let line = find_line(ev, &["failed to", "failed", "error"])
        .map(str::to_owned)
        .unwrap_or_else(|| format!("attaching to {target} failed with {}", errno_text(ev.errno)));
    let missing_hint = format!(
        "{target} does not exist in this kernel (not built in, renamed, inlined, or \
         not traceable): choose the target at run time (check /proc/kallsyms or \
         available_filter_functions) and make this attachment optional"
    );
    if ev.target_exists == Some(false) {
        return diag(FailureClass::AttachTargetMissing, p, line, missing_hint);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(phase: Phase, errno: i32) -> Evidence {
        let mut e = Evidence::new(phase, "p");
        e.errno = Some(errno);
        e
    }

    #[test]
    fn eacces_from_the_verifier_is_a_rejection_not_a_permission_problem() {
        let mut e = ev(Phase::ProgramLoad, EACCES);
        e.libbpf_lines = vec!["prog 'p': BPF program load failed: -EACCES".into()];
        e.verifier_log = "0: R1=ctx() R10=fp0\n5: (61) r0 = *(u32 *)(r0 +0)\n\
                          R0 invalid mem access 'map_value_or_null'\n\
                          processed 6 insns (limit 1000000) max_states_per_insn 0\n"
            .into();
        e.prog_type_supported = Some(true);
        let d = classify(&e);
        assert_eq!(d.class, FailureClass::VerifierRejection);
        assert_eq!(d.reason, "R0 invalid mem access 'map_value_or_null'");
    }

    #[test]
    fn unknown_helper_old_and_new_wording() {
        for line in ["unknown func bpf_loop#181", "invalid func unknown#181"] {
            let mut e = ev(Phase::ProgramLoad, EINVAL);
            e.verifier_log = format!("0: (85) call\n{line}\nprocessed 3 insns\n");
            e.unsupported_helpers = vec!["bpf_loop".into()];
            let d = classify(&e);
            assert_eq!(d.class, FailureClass::UnsupportedHelper, "{line}");
            assert!(d.hint.contains("bpf_loop"), "{}", d.hint);
            assert_eq!(d.reason, line);
        }
    }

    #[test]
    fn gpl_helper() {
        let mut e = ev(Phase::ProgramLoad, EINVAL);
        e.verifier_log =
            "0: (85) call bpf_trace_printk#6\ncannot call GPL-restricted function from non-GPL compatible program\n".into();
        let d = classify(&e);
        assert_eq!(d.class, FailureClass::UnsupportedHelper);
        assert!(d.hint.contains("GPL"));
    }

    #[test]
    fn core_poison_beats_unknown_func() {
        let mut e = ev(Phase::ProgramLoad, EINVAL);
        e.verifier_log = "1: (85) call unknown#195896080\n\
            1: <invalid CO-RE relocation>\n\
            failed to resolve CO-RE relocation <byte_off> [7] struct task_struct___x.missing (0:0 @ offset 0)\n"
            .into();
        let d = classify(&e);
        assert_eq!(d.class, FailureClass::CoreRelocationFailure);
        assert!(d.reason.starts_with("failed to resolve CO-RE relocation"));
        e.kernel_btf = false;
        assert_eq!(classify(&e).class, FailureClass::MissingBtf);
    }

    #[test]
    fn too_large() {
        let mut e = ev(Phase::ProgramLoad, E2BIG);
        e.verifier_log =
            "The sequence of 8193 jumps is too complex.\nprocessed 40000 insns\n".into();
        let d = classify(&e);
        assert_eq!(d.class, FailureClass::ProgramTooLarge);
        assert_eq!(d.reason, "The sequence of 8193 jumps is too complex.");
        let mut e = ev(Phase::ProgramLoad, E2BIG);
        e.verifier_log = "BPF program is too large. Processed 1000001 insn\n".into();
        assert_eq!(classify(&e).class, FailureClass::ProgramTooLarge);
    }

    #[test]
    fn unknown_program_type_vs_unknown_attach_type() {
        let mut e = ev(Phase::ProgramLoad, EINVAL);
        e.prog_type = Some("netfilter".into());
        e.prog_type_supported = Some(false);
        assert_eq!(classify(&e).class, FailureClass::UnsupportedProgramType);
        e.prog_type_supported = Some(true);
        assert_eq!(classify(&e).class, FailureClass::UnsupportedAttachType);
        e.prog_type_supported = None;
        assert_eq!(classify(&e).class, FailureClass::Unknown);
    }

    #[test]
    fn eperm_is_permission_with_lockdown_in_the_hint() {
        let mut e = ev(Phase::ProgramLoad, EPERM);
        e.lockdown = Some("confidentiality".into());
        let d = classify(&e);
        assert_eq!(d.class, FailureClass::PermissionDenied);
        assert!(d.hint.contains("confidentiality"));
        let e = ev(Phase::MapCreate, EPERM);
        assert_eq!(classify(&e).class, FailureClass::PermissionDenied);
    }

    #[test]
    fn maps() {
        let mut e = ev(Phase::MapCreate, EINVAL);
        e.map_type = Some("ringbuf".into());
        e.libbpf_lines = vec!["map 'events': failed to create: -EINVAL".into()];
        e.map_type_supported = Some(false);
        let d = classify(&e);
        assert_eq!(d.class, FailureClass::UnsupportedMapType);
        assert!(d.hint.contains("perf"));
        e.map_type_supported = Some(true);
        assert_eq!(classify(&e).class, FailureClass::Unknown);
        e.map_type_supported = None;
        assert_eq!(classify(&e).class, FailureClass::UnsupportedMapType);
        e.errno = Some(ENOMEM);
        assert_eq!(classify(&e).class, FailureClass::Unknown);
    }

    #[test]
    fn btf_attach_target_depends_on_kernel_btf() {
        let mut e = ev(Phase::AttachTarget, ESRCH);
        e.libbpf_lines =
            vec!["prog 'f': failed to find kernel BTF type ID of 'nope': -ESRCH".into()];
        assert_eq!(classify(&e).class, FailureClass::AttachTargetMissing);
        e.kernel_btf = false;
        assert_eq!(classify(&e).class, FailureClass::MissingBtf);
    }

    #[test]
    fn externs() {
        let mut e = ev(Phase::Extern, EINVAL);
        e.libbpf_lines = vec![
            "extern (func ksym) 'bpf_iter_num_new': not found in kernel or module BTFs".into(),
        ];
        let d = classify(&e);
        assert_eq!(d.class, FailureClass::MissingKfunc);
        assert!(d.reason.contains("bpf_iter_num_new"));
        e.kernel_btf = false;
        assert_eq!(classify(&e).class, FailureClass::MissingBtf);
    }

    #[test]
    fn attach_failures() {
        // kprobe on a symbol the kernel lacks: the target is missing, whatever the errno.
        let mut e = ev(Phase::Attach, EINVAL);
        e.target_exists = Some(false);
        e.target = Some("kprobe nope".into());
        assert_eq!(classify(&e).class, FailureClass::AttachTargetMissing);
        let e = ev(Phase::Attach, ENOENT);
        assert_eq!(classify(&e).class, FailureClass::AttachTargetMissing);
        // The target exists but the mechanism does not (kprobe.multi without fprobe).
        let mut e = ev(Phase::Attach, ENOENT);
        e.target_exists = Some(true);
        assert_eq!(classify(&e).class, FailureClass::UnsupportedAttachType);
        let e = ev(Phase::Attach, EOPNOTSUPP);
        assert_eq!(classify(&e).class, FailureClass::UnsupportedAttachType);
        let e = ev(Phase::Attach, EPERM);
        assert_eq!(classify(&e).class, FailureClass::PermissionDenied);
    }

    #[test]
    fn callbacks_without_jit() {
        let mut e = ev(Phase::ProgramLoad, EINVAL);
        e.verifier_log =
            "5: (85) call bpf_loop#181\ncallbacks are not allowed in non-JITed programs\n".into();
        let d = classify(&e);
        assert_eq!(d.class, FailureClass::UnsupportedHelper);
        assert!(d.hint.contains("JIT"));
    }

    #[test]
    fn fmod_ret_on_a_function_without_error_injection() {
        let mut e = ev(Phase::ProgramLoad, EINVAL);
        e.verifier_log = "__x64_sys_getpgid() is not modifiable\nprocessed 0 insns\n".into();
        e.prog_type_supported = Some(true);
        let d = classify(&e);
        assert_eq!(d.class, FailureClass::UnsupportedAttachType);
        assert_eq!(d.reason, "__x64_sys_getpgid() is not modifiable");
    }

    #[test]
    fn tc_without_clsact() {
        // The qdisc is missing (a module the guest does not have), not lo.
        let mut e = ev(Phase::Attach, ENOENT);
        e.libbpf_lines = vec!["Kernel error message: Specified qdisc kind is unknown".into()];
        e.target_exists = Some(true);
        let d = classify(&e);
        assert_eq!(d.class, FailureClass::UnsupportedAttachType);
        assert!(d.hint.contains("clsact"), "{}", d.hint);
    }

    #[test]
    fn unreadable_object_is_a_permission_problem_not_an_invalid_one() {
        let mut e = ev(Phase::Open, EACCES);
        e.libbpf_lines = vec!["elf: failed to open /corpus/maps.bpf.o: -EACCES".into()];
        assert_eq!(classify(&e).class, FailureClass::PermissionDenied);
    }

    #[test]
    fn open_failures_are_invalid_objects() {
        let mut e = ev(Phase::Open, EINVAL);
        e.libbpf_lines = vec!["libbpf: elf: failed to open x: not an ELF file".into()];
        let d = classify(&e);
        assert_eq!(d.class, FailureClass::InvalidObject);
        assert!(d.reason.contains("not an ELF"));
    }

    #[test]
    fn log_helpers() {
        let log = "0: (b7) r0 = 0\n1: (95) exit\nprocessed 2 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0\n";
        assert_eq!(insns_processed(log), Some(2));
        assert_eq!(verifier_error_line(log), Some("1: (95) exit"));
        assert_eq!(insns_processed(""), None);
    }
}
