//! The classifier on the failures it has to tell apart.

use bpfcompat_proto::object::{FailureClass, MapParam, Phase};

use super::classify;
use super::evidence::*;

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
fn registers_of_another_architecture_say_to_build_per_architecture() {
    let mut e = ev(Phase::ProgramLoad, EINVAL);
    e.verifier_log = "1: <invalid CO-RE relocation>\n\
        failed to resolve CO-RE relocation <byte_off> [2] struct pt_regs.di (0:14 @ offset 112)\n"
        .into();
    let d = classify(&e);
    assert_eq!(d.class, FailureClass::CoreRelocationFailure);
    assert!(
        d.hint.contains("another architecture's layout")
            && d.hint.contains("once per architecture")
    );
}

#[test]
fn too_large() {
    let mut e = ev(Phase::ProgramLoad, E2BIG);
    e.verifier_log = "The sequence of 8193 jumps is too complex.\nprocessed 40000 insns\n".into();
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
    e.libbpf_lines = vec!["prog 'f': failed to find kernel BTF type ID of 'nope': -ESRCH".into()];
    assert_eq!(classify(&e).class, FailureClass::AttachTargetMissing);
    e.kernel_btf = false;
    assert_eq!(classify(&e).class, FailureClass::MissingBtf);
}

#[test]
fn externs() {
    let mut e = ev(Phase::Extern, EINVAL);
    e.libbpf_lines =
        vec!["extern (func ksym) 'bpf_iter_num_new': not found in kernel or module BTFs".into()];
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
fn arm64_attach_failures_say_what_differs_there() {
    // A kprobe on x86's syscall wrapper, in an arm64 guest.
    let mut e = ev(Phase::Attach, ENOENT);
    e.arm64 = true;
    e.target_exists = Some(false);
    e.target = Some("kprobe __x64_sys_openat".into());
    let d = classify(&e);
    assert_eq!(d.class, FailureClass::AttachTargetMissing);
    assert!(
        d.hint.contains("__x64_sys_openat does not exist on arm64")
            && d.hint.contains("__arm64_sys_openat")
            && d.hint.contains("ksyscall/openat"),
        "{}",
        d.hint
    );
    // And the other way round on x86.
    e.arm64 = false;
    e.target = Some("kprobe __arm64_sys_openat".into());
    assert!(classify(&e).hint.contains("here it is __x64_sys_openat"));
    // A missing function of no syscall keeps the general hint.
    e.target = Some("kprobe nope".into());
    assert!(classify(&e)
        .hint
        .contains("nope does not exist in this kernel"));

    // fentry without ftrace direct calls (arm64 before 6.4).
    let mut e = ev(Phase::Attach, ENOTSUPP);
    e.prog_type = Some("tracing".into());
    e.arm64 = true;
    let d = classify(&e);
    assert_eq!(d.class, FailureClass::UnsupportedAttachType);
    assert!(d
        .hint
        .contains("arm64 has the trampoline from 6.0 and direct calls from 6.4"));
    e.arm64 = false;
    assert!(!classify(&e).hint.contains("arm64"));
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

#[test]
fn what_a_loader_sets_is_not_blamed_on_the_kernel() {
    let mut e = ev(Phase::MapCreate, EINVAL);
    e.subject = "stacks".into();
    e.map_type = Some("stack_trace".into());
    e.map_type_supported = Some(true);
    e.libbpf_lines = vec!["map 'stacks': failed to create: -EINVAL".into()];
    e.loader_gap = Some(LoaderGap {
        params: vec![MapParam::ValueSize, MapParam::MaxEntries],
        map_type: libbpf_sys::BPF_MAP_TYPE_STACK_TRACE,
        fixups_would: true,
    });
    let d = classify(&e);
    assert_eq!(d.class, FailureClass::InvalidObject);
    assert!(
        d.reason
            .contains("leaves value_size and max_entries to its loader, and nothing set them"),
        "{}",
        d.reason
    );
    assert!(
        d.hint
            .contains("name: stacks, stack_depth: N (or value_size: N), max_entries: N"),
        "{}",
        d.hint
    );
    assert!(d.hint.contains("drop --no-fixups"), "{}", d.hint);

    // Only what the object really set is the kernel's to refuse.
    e.loader_gap = None;
    let d = classify(&e);
    assert_eq!(d.class, FailureClass::Unknown);
    assert!(d.hint.contains("added after this kernel"), "{}", d.hint);

    // A type the kernel predates is that, whatever the object left unset.
    e.map_type_supported = Some(false);
    e.loader_gap = Some(LoaderGap {
        params: vec![MapParam::NoPrealloc],
        map_type: libbpf_sys::BPF_MAP_TYPE_LPM_TRIE,
        fixups_would: false,
    });
    assert_eq!(classify(&e).class, FailureClass::UnsupportedMapType);
    e.map_type_supported = Some(true);
    let d = classify(&e);
    assert!(
        d.hint.contains("map_flags: [BPF_F_NO_PREALLOC]") && !d.hint.contains("--no-fixups"),
        "{}",
        d.hint
    );

    let mut e = ev(Phase::ProgramLoad, EINVAL);
    e.subject = "acl".into();
    e.prog_type = Some("unspec".into());
    e.prog_type_supported = Some(false);
    e.libbpf_lines =
        vec!["prog 'acl': missing BPF prog type, check ELF section name 'socket_acl'".into()];
    let d = classify(&e);
    assert_eq!(d.class, FailureClass::InvalidObject);
    assert!(d.hint.contains("program_types"), "{}", d.hint);
}
