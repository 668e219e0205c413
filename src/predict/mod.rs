//! The preflight: what stands between an object and a kernel, found before
//! booting, from the object's own ELF (`object::inspect`) and the kernel's
//! BTF (`kernel::vmlinux`), or its release when it has no BTF.
//!
//! A prediction is necessary conditions only: an obstacle found means the
//! load or attach fails; none found means nothing is known, never a pass.
//! [`predict`] and [`min_kernel`] are pure; [`agreement`] compares a run's
//! predictions with its verdicts.
//!
//! - `version`: an upstream release; `table`: when each feature appeared
//!   upstream; `kernel`: a kernel's facts, from its BTF.

pub mod kernel;
pub mod table;
mod version;

pub use version::Version;

use std::collections::{BTreeMap, BTreeSet};

use bpfcompat_proto::object::{LoaderContract, MapParam};

use crate::object::MAP_FLAGS;
use crate::report::inspection::{CoreRelocation, ObjectSummary, ProgramSummary};
use crate::report::prediction::{
    MinKernel, Obstacle, ObstacleKind, Predicted, Prediction, Requirement,
};
use kernel::{KernelBtf, KernelFacts};
use table::{table, Feature};

/// Requirements newer than this are listed with a minimum kernel: every
/// distribution still supported has at least 5.4.
const LISTED_AFTER: Version = Version(5, 4);

/// Kernel BTF at `/sys/kernel/btf/vmlinux`, which CO-RE and BTF-typed
/// programs need.
const KERNEL_BTF_SINCE: Version = Version(5, 4);

/// What a loader loads of an object: the programs of each variant group
/// are alternatives (it keeps one), all others are loaded.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub groups: Vec<Vec<String>>,
    /// Programs whose type the manifest sets (`program_types`).
    pub typed: Vec<String>,
    /// Maps of maps the manifest gives an inner map.
    pub inner_maps: Vec<String>,
}

impl Plan {
    /// What the manifest says of the object: its variant groups, the
    /// program types and inner maps it gives.
    pub fn of(contract: &LoaderContract) -> Plan {
        Plan {
            groups: contract
                .variant_groups
                .iter()
                .map(|g| g.variants.iter().map(|v| v.program.clone()).collect())
                .collect(),
            typed: contract
                .program_types
                .iter()
                .map(|t| t.program.clone())
                .collect(),
            inner_maps: contract
                .maps
                .iter()
                .filter(|m| m.inner_map.is_some() || m.inner_ringbuf_bytes.is_some())
                .map(|m| m.name.clone())
                .collect(),
        }
    }

    fn conditional(&self, program: &str) -> bool {
        self.groups.iter().flatten().any(|p| p == program)
    }
}

/// Licenses the kernel's `license_is_gpl_compatible` accepts.
const GPL_COMPATIBLE: [&str; 6] = [
    "GPL",
    "GPL v2",
    "GPL and additional rights",
    "Dual BSD/GPL",
    "Dual MIT/GPL",
    "Dual MPL/GPL",
];

/// Every obstacle between `object` and `kernel`.
pub fn predict(object: &ObjectSummary, plan: &Plan, kernel: &KernelFacts<'_>) -> Prediction {
    let loaded: Vec<&ProgramSummary> = object
        .programs
        .iter()
        .filter(|p| !plan.conditional(&p.name))
        .collect();
    let mut found = Obstacles::default();
    license(object, &loaded, &mut found);
    untyped(&loaded, plan, &mut found);
    no_inner_map(object, plan, &mut found);
    packet_helpers(object, &loaded, &mut found);
    unchecked_lookups(object, &loaded, &mut found);
    if let Some(config) = kernel.config {
        configured(&loaded, config, &mut found);
    }
    match &kernel.btf {
        Some(btf) => with_btf(object, &loaded, btf, kernel.modules, &mut found),
        None => {
            without_btf(object, &loaded, &mut found);
            if let Some(features) = kernel.features {
                lacking(object, &loaded, features, &mut found);
            }
            if let Some(version) = kernel.version {
                by_version(object, &loaded, version, &mut found);
            }
        }
    }
    Prediction {
        verdict: if found.0.is_empty() {
            Predicted::NoKnownObstacle
        } else {
            Predicted::Blocked
        },
        obstacles: found.0,
        basis: if kernel.btf.is_some() {
            "btf"
        } else {
            "version"
        }
        .to_owned(),
    }
}

#[derive(Default)]
struct Obstacles(Vec<Obstacle>);

impl Obstacles {
    fn add(&mut self, kind: ObstacleKind, program: Option<&str>, reason: String) {
        let o = Obstacle {
            kind,
            program: program.map(str::to_owned),
            reason,
        };
        if !self.0.contains(&o) {
            self.0.push(o);
        }
    }
}

/// The programs (or `.text`) using a helper that are loaded.
fn helper_users<'a>(
    object: &'a ObjectSummary,
    loaded: &[&ProgramSummary],
) -> impl Iterator<Item = (u32, Option<&'a str>, &'a str)> + 'a {
    let loaded: BTreeSet<String> = loaded.iter().map(|p| p.name.clone()).collect();
    object.helpers.iter().filter_map(move |h| {
        let user = h
            .programs
            .iter()
            .find(|p| loaded.contains(*p) || *p == ".text")?;
        Some((h.id, h.name.as_deref(), user.as_str()))
    })
}

fn helper_label(id: u32, name: Option<&str>) -> String {
    format!("helper {} ({id})", name.unwrap_or("?"))
}

/// [`helper_label`] of a helper the object calls.
fn helper_of(object: &ObjectSummary, id: u32) -> String {
    let name = object
        .helpers
        .iter()
        .find(|h| h.id == id)
        .and_then(|h| h.name.as_deref());
    helper_label(id, name)
}

/// A section libbpf cannot type fails the open, unless the manifest
/// gives the program its type.
fn untyped(loaded: &[&ProgramSummary], plan: &Plan, found: &mut Obstacles) {
    for p in loaded
        .iter()
        .filter(|p| p.prog_type.is_none() && !plan.typed.contains(&p.name))
    {
        found.add(
            ObstacleKind::Section,
            Some(&p.name),
            format!(
                "section {}: libbpf cannot tell its program type (no manifest program_types gives it)",
                p.section
            ),
        );
    }
}

/// A map of maps compiled without an inner map cannot be created: only its
/// loader knows the inner map, and no automatic fixup can make one up.
fn no_inner_map(object: &ObjectSummary, plan: &Plan, found: &mut Obstacles) {
    let lacking = object.maps.iter().filter(|m| {
        m.left_to_loader.contains(&MapParam::InnerMap) && !plan.inner_maps.contains(&m.name)
    });
    for m in lacking {
        found.add(
            ObstacleKind::Map,
            None,
            format!(
                "map {}: a {} without an inner map, which its loader gives (a manifest's maps: inner_map or inner_ringbuf_bytes)",
                m.name,
                m.map_type_name.as_deref().unwrap_or("map of maps")
            ),
        );
    }
}

/// Helpers that rewrite or redirect packets, which no tracing program
/// type (kprobe, tracepoint, raw tracepoint, perf event) may call on any
/// kernel: their `*_func_proto` never offers them.
const PACKET_HELPERS: [u32; 17] = [
    9, 10, 11, 13, 18, 19, 20, 21, 23, 31, 32, 38, 39, 44, 50, 54, 65,
];
const TRACING_TYPES: [&str; 5] = [
    "kprobe",
    "tracepoint",
    "raw_tracepoint",
    "raw_tracepoint_writable",
    "perf_event",
];

fn packet_helpers(object: &ObjectSummary, loaded: &[&ProgramSummary], found: &mut Obstacles) {
    for p in loaded {
        let Some(t) = p.prog_type.as_deref().filter(|t| TRACING_TYPES.contains(t)) else {
            continue;
        };
        for id in p.helpers.iter().filter(|id| PACKET_HELPERS.contains(id)) {
            found.add(
                ObstacleKind::Helper,
                Some(&p.name),
                format!(
                    "{} works on packets; a {t} program cannot call it on any kernel",
                    helper_of(object, *id)
                ),
            );
        }
    }
}

/// Maps whose lookup returns NULL for a missing key on every kernel (an
/// array's in-range constant key is proven non-NULL by newer verifiers, so
/// arrays are not judged): hash, per-CPU hash, LRU hash, LRU per-CPU hash,
/// LPM trie, hash of maps.
const NULLABLE_LOOKUPS: [u32; 6] = [1, 5, 9, 10, 11, 13];

fn unchecked_lookups(object: &ObjectSummary, loaded: &[&ProgramSummary], found: &mut Obstacles) {
    for p in loaded {
        let Some(u) = &p.unchecked_lookup else {
            continue;
        };
        let Some(map) = object.maps.iter().find(|m| m.name == u.map) else {
            continue;
        };
        if !map.map_type.is_some_and(|t| NULLABLE_LOOKUPS.contains(&t)) {
            continue;
        }
        found.add(
            ObstacleKind::Verifier,
            Some(&p.name),
            format!(
                "instruction {} dereferences bpf_map_lookup_elem's result on map {} (a {} map: \
                 NULL for a missing key) before any NULL check: every kernel's verifier refuses \
                 it (invalid mem access 'map_value_or_null'); check the pointer first",
                u.insn,
                u.map,
                map.map_type_name.as_deref().unwrap_or("hash")
            ),
        );
    }
}

/// Without it the error-injection list, which `fmod_ret` needs for
/// anything but a `security_*` hook, is empty.
const ERROR_INJECTION: &str = "CONFIG_FUNCTION_ERROR_INJECTION";
/// Without it there is no network namespace for `sk_lookup` to attach to.
const NET_NS: &str = "CONFIG_NET_NS";
/// The options of a kernel's `.config` the preflight reads.
pub const CONFIG_READ: [&str; 2] = [ERROR_INJECTION, NET_NS];

/// What the kernel's `.config` says it was built without.
fn configured(
    loaded: &[&ProgramSummary],
    config: &crate::kernel::KernelConfig,
    found: &mut Obstacles,
) {
    let off = |option: &str| config.enabled(option) == Some(false);
    for p in loaded {
        // The verifier lets fmod_ret modify a security_* hook, or a function
        // on the error-injection list, which is empty without this option.
        let modified = p
            .attach_target
            .as_ref()
            .filter(|_| p.section.starts_with("fmod_ret"))
            .filter(|t| !t.name.starts_with("security_"));
        if let Some(target) = modified.filter(|_| off(ERROR_INJECTION)) {
            found.add(
                ObstacleKind::KernelConfig,
                Some(&p.name),
                format!(
                    "fmod_ret/{} modifies a function's return, which this kernel allows only for \
                     security_* hooks: its config has no CONFIG_FUNCTION_ERROR_INJECTION, so no \
                     function is on the error-injection list",
                    target.name
                ),
            );
        }
        if p.prog_type.as_deref() == Some("sk_lookup") && off(NET_NS) {
            found.add(
                ObstacleKind::KernelConfig,
                Some(&p.name),
                "an sk_lookup program attaches to a network namespace, and this kernel's config \
                 has no CONFIG_NET_NS (no /proc/self/ns/net to attach to)"
                    .to_owned(),
            );
        }
    }
}

fn license(object: &ObjectSummary, loaded: &[&ProgramSummary], found: &mut Obstacles) {
    let license = object.license.as_deref().unwrap_or("");
    if GPL_COMPATIBLE.contains(&license) {
        return;
    }
    for (id, name, user) in helper_users(object, loaded) {
        if table().helper(id).and_then(|f| f.gpl_only) == Some(true) {
            found.add(
                ObstacleKind::License,
                Some(user),
                format!(
                    "{} is GPL-only and the object's license is {license:?}: declare a \
                     GPL-compatible license (char LICENSE[] SEC(\"license\") = \"GPL\")",
                    helper_label(id, name)
                ),
            );
        }
    }
}

/// The enumerator values of a UAPI enum, without the `__MAX_*` markers;
/// with the last one, for "ends at".
struct UapiEnum<'a> {
    name: &'static str,
    values: BTreeMap<i64, &'a str>,
}

impl<'a> UapiEnum<'a> {
    fn read(btf: &KernelBtf<'a>, name: &'static str) -> UapiEnum<'a> {
        let values = btf
            .enumerators(name)
            .into_iter()
            .filter(|(n, _)| !n.starts_with("__"))
            .map(|(n, v)| (v, n))
            .collect();
        UapiEnum { name, values }
    }

    fn has_value(&self, v: u32) -> bool {
        self.values.contains_key(&i64::from(v))
    }

    fn has_name(&self, n: &str) -> bool {
        self.values.values().any(|x| *x == n)
    }

    /// "this kernel's bpf_func_id ends at 164 (BPF_FUNC_xyz)".
    fn ends(&self) -> String {
        match self.values.last_key_value() {
            Some((v, n)) => format!("this kernel's {} ends at {v} ({n})", self.name),
            None => format!("this kernel's BTF has no {}", self.name),
        }
    }
}

fn with_btf(
    object: &ObjectSummary,
    loaded: &[&ProgramSummary],
    btf: &KernelBtf<'_>,
    modules: bool,
    found: &mut Obstacles,
) {
    let helpers = UapiEnum::read(btf, "bpf_func_id");
    for (id, name, user) in helper_users(object, loaded) {
        if !helpers.has_value(id) {
            let label = helper_label(id, name);
            found.add(
                ObstacleKind::Helper,
                Some(user),
                format!("{label} absent: {}", helpers.ends()),
            );
        }
    }
    let maps = UapiEnum::read(btf, "bpf_map_type");
    for m in &object.maps {
        if let Some(id) = m.map_type.filter(|id| !maps.has_value(*id)) {
            let kind = m.map_type_name.as_deref().unwrap_or("?");
            found.add(
                ObstacleKind::MapType,
                None,
                format!("map {}: type {kind} ({id}) absent: {}", m.name, maps.ends()),
            );
        }
    }
    map_flags(object, btf, found);
    let progs = UapiEnum::read(btf, "bpf_prog_type");
    let attach = UapiEnum::read(btf, "bpf_attach_type");
    for p in loaded {
        if let Some(t) = p.prog_type.as_deref() {
            let enumerator = format!("BPF_PROG_TYPE_{}", t.to_uppercase());
            if !progs.has_name(&enumerator) {
                found.add(
                    ObstacleKind::ProgType,
                    Some(&p.name),
                    format!("program type {t} ({enumerator}) absent: {}", progs.ends()),
                );
            }
        }
        if let Some(t) = p.attach_type.as_deref() {
            let enumerator = format!("BPF_{}", t.to_uppercase());
            let fprobe = matches!(t, "trace_kprobe_multi" | "trace_kprobe_session");
            if fprobe && attach.has_name(&enumerator) && !btf.has_type("struct", "fprobe") {
                // The enum is there without CONFIG_FPROBE; its struct is not.
                found.add(
                    ObstacleKind::AttachType,
                    Some(&p.name),
                    format!("attach type {enumerator} needs CONFIG_FPROBE, and this kernel's BTF has no struct fprobe"),
                );
            }
            if !attach.has_name(&enumerator) {
                found.add(
                    ObstacleKind::AttachType,
                    Some(&p.name),
                    format!("attach type {enumerator} absent: {}", attach.ends()),
                );
            }
        }
        target(p, btf, modules, found);
        for k in &p.kfuncs {
            if !modules && !btf.has_func(k) {
                found.add(
                    ObstacleKind::Kfunc,
                    Some(&p.name),
                    format!("kfunc {k} absent from this kernel's BTF"),
                );
            }
        }
    }
    for r in core_needed(object, loaded) {
        if let Some(reason) = core_obstacle(r, btf, modules) {
            found.add(ObstacleKind::Core, Some(&r.program), reason);
        }
    }
}

/// Map flags the kernel does not know: judged only when its BTF has the
/// flags' enum at all (its first flag, `BPF_F_NO_PREALLOC`).
fn map_flags(object: &ObjectSummary, btf: &KernelBtf<'_>, found: &mut Obstacles) {
    let known = btf.map_flag_names();
    if known.is_empty() || object.maps.iter().all(|m| m.map_flags.unwrap_or(0) == 0) {
        return;
    }
    for m in &object.maps {
        let flags = m.map_flags.unwrap_or(0);
        for (bit, name) in MAP_FLAGS.iter().enumerate() {
            if flags & (1 << bit) != 0 && !known.contains(name) {
                found.add(
                    ObstacleKind::MapFlags,
                    None,
                    format!("map {}: flag {name} absent from this kernel's BTF", m.name),
                );
            }
        }
    }
}

/// Whether the kernel's BTF lists the program's attach target. Functions
/// and tracepoints may live in modules, whose BTF is not read: with a
/// module tree only what vmlinux alone must have is judged. A kprobe needs
/// the symbol, not BTF, and BTF leaves out the syscall wrappers the kernel
/// has (`__x64_sys_getpid`): those are not judged.
fn target(p: &ProgramSummary, btf: &KernelBtf<'_>, modules: bool, found: &mut Obstacles) {
    let Some(t) = &p.attach_target else { return };
    let (present, in_vmlinux_only) = match t.kind.as_str() {
        "fentry" => (btf.has_func(&t.name), false),
        "kprobe" if !is_syscall_wrapper(&t.name) => (btf.has_func(&t.name), false),
        "tp_btf" => (btf.has_typedef(&format!("btf_trace_{}", t.name)), false),
        "lsm" => (btf.has_func(&format!("bpf_lsm_{}", t.name)), true),
        "iter" => (btf.has_func(&format!("bpf_iter_{}", t.name)), true),
        _ => return,
    };
    if !present && (in_vmlinux_only || !modules) {
        found.add(
            ObstacleKind::AttachTarget,
            Some(&p.name),
            format!("{} target {} absent from this kernel's BTF", t.kind, t.name),
        );
    }
}

/// `__x64_sys_getpid`, `__arm64_sys_openat`, `__se_sys_read`, ...: made by
/// the syscall macros, in kallsyms but not in BTF.
fn is_syscall_wrapper(name: &str) -> bool {
    let rest = name.trim_start_matches('_');
    rest.starts_with("sys_")
        || rest.starts_with("se_sys_")
        || rest.starts_with("do_sys_")
        || ["x64_", "ia32_", "arm64_", "s390x_", "riscv_"]
            .iter()
            .any(|arch| {
                rest.strip_prefix(arch)
                    .is_some_and(|r| r.starts_with("sys_") || r.starts_with("compat_sys_"))
            })
}

/// The unguarded CO-RE relocations of loaded programs (and `.text`).
fn core_needed<'a>(
    object: &'a ObjectSummary,
    loaded: &[&ProgramSummary],
) -> Vec<&'a CoreRelocation> {
    object
        .core
        .iter()
        .filter(|r| !r.guarded && r.kind != "local_type_id" && runs(object, loaded, &r.program))
        .collect()
}

/// Whether code of `program` (a program, or `.text`) is loaded.
fn runs(object: &ObjectSummary, loaded: &[&ProgramSummary], program: &str) -> bool {
    loaded.iter().any(|p| p.name == program) || !object.programs.iter().any(|p| p.name == program)
}

/// Why one relocation cannot resolve on this kernel, if it cannot. A type
/// absent from vmlinux may be a module's when the kernel has modules.
fn core_obstacle(r: &CoreRelocation, btf: &KernelBtf<'_>, modules: bool) -> Option<String> {
    let label = format!("{} {}", r.type_kind, r.type_name);
    if !btf.has_type(&r.type_kind, &r.type_name) {
        return (!modules).then(|| format!("type {label} not in this kernel (CO-RE, unguarded)"));
    }
    let member = r.member.as_deref()?;
    let present = match r.kind.as_str() {
        "enumval_value" => btf
            .enumerators(&r.type_name)
            .iter()
            .any(|(n, _)| *n == member),
        _ => btf.has_field(&r.type_kind, &r.type_name, member),
    };
    (!present).then(|| {
        let what = if r.kind == "enumval_value" {
            "value"
        } else {
            "field"
        };
        format!(
            "{what} {}.{member} not in this kernel (CO-RE, unguarded)",
            r.type_name
        )
    })
}

/// What needs kernel BTF among the loaded programs.
fn btf_needs(object: &ObjectSummary, loaded: &[&ProgramSummary]) -> Vec<String> {
    let mut needs: Vec<String> = loaded
        .iter()
        .filter(|p| p.needs_kernel_btf)
        .map(|p| format!("{} ({})", p.name, p.section))
        .collect();
    // Every CO-RE relocation, a guard's too, is resolved against kernel BTF.
    let core = object
        .core
        .iter()
        .filter(|r| r.kind != "local_type_id" && runs(object, loaded, &r.program))
        .count();
    if core > 0 {
        needs.push(format!("{core} CO-RE relocations"));
    }
    needs.extend(
        loaded
            .iter()
            .flat_map(|p| &p.kfuncs)
            .map(|k| format!("kfunc {k}")),
    );
    if object
        .maps
        .iter()
        .any(|m| m.map_type_name.as_deref() == Some("struct_ops"))
    {
        needs.push("struct_ops maps".to_owned());
    }
    needs
}

fn without_btf(object: &ObjectSummary, loaded: &[&ProgramSummary], found: &mut Obstacles) {
    let needs = btf_needs(object, loaded);
    if !needs.is_empty() {
        found.add(
            ObstacleKind::Btf,
            None,
            format!(
                "this kernel has no BTF (built without CONFIG_DEBUG_INFO_BTF), which {} need",
                needs.join(", ")
            ),
        );
    }
}

/// Helpers that take a callback (a `BPF_PSEUDO_FUNC`), which the
/// interpreter refuses ("callbacks are not allowed in non-JITed programs").
const CALLBACK_HELPERS: [u32; 5] = [164, 170, 180, 181, 209];

/// Sections of programs that attach through kprobes.
const KPROBE_SECTIONS: [&str; 7] = [
    "kprobe/",
    "kretprobe/",
    "ksyscall/",
    "kretsyscall/",
    "kprobe.multi/",
    "kretprobe.multi/",
    "kprobe.session/",
];

/// For a kernel without BTF: what its image shows it was built without.
fn lacking(
    object: &ObjectSummary,
    loaded: &[&ProgramSummary],
    features: crate::kernel::Features,
    found: &mut Obstacles,
) {
    for p in loaded {
        if !features.kprobes && KPROBE_SECTIONS.iter().any(|s| p.section.starts_with(s)) {
            found.add(
                ObstacleKind::KernelConfig,
                Some(&p.name),
                format!(
                    "{} attaches a kprobe, and this kernel has none (its image has no kprobe_events: built without CONFIG_KPROBE_EVENTS)",
                    p.section
                ),
            );
        }
        if features.jit {
            continue;
        }
        for id in p.helpers.iter().filter(|id| CALLBACK_HELPERS.contains(id)) {
            found.add(
                ObstacleKind::KernelConfig,
                Some(&p.name),
                format!(
                    "{} takes a callback, which only a JIT runs, and this kernel has no JIT (its image has no bpf_jit_enable: built without CONFIG_BPF_JIT)",
                    helper_of(object, *id)
                ),
            );
        }
    }
}

/// For a kernel without BTF: what appeared upstream after its release.
fn by_version(
    object: &ObjectSummary,
    loaded: &[&ProgramSummary],
    version: Version,
    found: &mut Obstacles,
) {
    let newer = |f: Option<&Feature>| f.filter(|f| f.since > version).map(|f| f.since);
    let late = |what: String, since: Version| {
        format!(
            "{what} appeared in {since}; this kernel is {version} (no BTF: judged by its release)"
        )
    };
    for (id, name, user) in helper_users(object, loaded) {
        if let Some(since) = newer(table().helper(id)) {
            found.add(
                ObstacleKind::Helper,
                Some(user),
                late(helper_label(id, name), since),
            );
        }
    }
    for m in &object.maps {
        if let Some(since) = newer(m.map_type.and_then(|id| table().map_type(id))) {
            let kind = m.map_type_name.as_deref().unwrap_or("?");
            found.add(
                ObstacleKind::MapType,
                None,
                late(format!("map {}: type {kind}", m.name), since),
            );
        }
    }
    for p in loaded {
        if let Some(since) = newer(p.prog_type.as_deref().and_then(|t| table().prog_type(t))) {
            let t = p.prog_type.as_deref().unwrap_or("?");
            found.add(
                ObstacleKind::ProgType,
                Some(&p.name),
                late(format!("program type {t}"), since),
            );
        }
        if let Some(since) = newer(
            p.attach_type
                .as_deref()
                .and_then(|t| table().attach_type(t)),
        ) {
            let t = p.attach_type.as_deref().unwrap_or("?").to_uppercase();
            found.add(
                ObstacleKind::AttachType,
                Some(&p.name),
                late(format!("attach type BPF_{t}"), since),
            );
        }
    }
}

/// The oldest upstream release with everything the loaded programs need:
/// for a variant group, its least demanding program.
pub fn min_kernel(object: &ObjectSummary, plan: &Plan) -> Option<MinKernel> {
    let mut needs = Needs::default();
    for m in &object.maps {
        if let Some(f) = m.map_type.and_then(|id| table().map_type(id)) {
            needs.add(format!("map type {}", f.name), f.since, None);
        }
    }
    for h in object
        .helpers
        .iter()
        .filter(|h| h.programs.iter().any(|p| p == ".text"))
    {
        if let Some(f) = table().helper(h.id) {
            needs.add(f.name.clone(), f.since, None);
        }
    }
    let per_program: BTreeMap<&str, Needs> = object
        .programs
        .iter()
        .map(|p| (p.name.as_str(), program_needs(object, p)))
        .collect();
    for (name, n) in &per_program {
        if !plan.conditional(name) {
            needs.merge(n);
        }
    }
    for group in &plan.groups {
        let easiest = group
            .iter()
            .filter_map(|p| per_program.get(p.as_str()))
            .min_by_key(|n| n.version());
        if let Some(n) = easiest {
            needs.merge(n);
        }
    }
    let version = needs.version()?;
    let mut because: Vec<Requirement> = needs
        .0
        .into_iter()
        .filter(|(_, (since, _))| *since > LISTED_AFTER)
        .map(|(what, (since, programs))| Requirement {
            what,
            since: since.to_string(),
            programs: programs.into_iter().collect(),
        })
        .collect();
    because.sort_by(|a, b| {
        Version::parse(&b.since)
            .cmp(&Version::parse(&a.since))
            .then(a.what.cmp(&b.what))
    });
    Some(MinKernel {
        version: version.to_string(),
        because,
    })
}

/// Requirements by name: the release each appeared in, the programs needing it.
#[derive(Default, Clone)]
struct Needs(BTreeMap<String, (Version, BTreeSet<String>)>);

impl Needs {
    fn add(&mut self, what: String, since: Version, program: Option<&str>) {
        let entry = self.0.entry(what).or_insert((since, BTreeSet::new()));
        entry.1.extend(program.map(str::to_owned));
    }

    fn merge(&mut self, other: &Needs) {
        for (what, (since, programs)) in &other.0 {
            let entry = self
                .0
                .entry(what.clone())
                .or_insert((*since, BTreeSet::new()));
            entry.1.extend(programs.iter().cloned());
        }
    }

    fn version(&self) -> Option<Version> {
        self.0.values().map(|(v, _)| *v).max()
    }
}

fn program_needs(object: &ObjectSummary, p: &ProgramSummary) -> Needs {
    let mut needs = Needs::default();
    let me = Some(p.name.as_str());
    if let Some(f) = p.prog_type.as_deref().and_then(|t| table().prog_type(t)) {
        needs.add(format!("program type {}", f.name), f.since, me);
    }
    if let Some(f) = p
        .attach_type
        .as_deref()
        .and_then(|t| table().attach_type(t))
    {
        needs.add(format!("attach type {}", f.name), f.since, me);
    }
    for f in p.helpers.iter().filter_map(|id| table().helper(*id)) {
        needs.add(f.name.clone(), f.since, me);
    }
    for k in &p.kfuncs {
        if let Some(f) = table().kfunc(k) {
            needs.add(format!("kfunc {}", f.name), f.since, me);
        }
    }
    let core = object.core.iter().any(|r| r.program == p.name);
    if p.needs_kernel_btf || core {
        needs.add("kernel BTF".to_owned(), KERNEL_BTF_SINCE, me);
    }
    needs
}

/// What the preflight checks of one object.
#[derive(Debug, Clone)]
pub struct Subject {
    pub summary: ObjectSummary,
    pub plan: Plan,
}

#[derive(Debug, thiserror::Error)]
pub enum PreflightError {
    #[error(transparent)]
    Kernel(#[from] crate::kernel::KernelError),
    #[error("{image}: its BTF cannot be read: {why}")]
    Btf {
        image: std::path::PathBuf,
        why: String,
    },
}

/// A kernel's BTF and release, read from its cached image: the edge where
/// the preflight touches the disk.
pub struct KernelSource {
    pub btf: Option<Vec<u8>>,
    /// Without BTF: what the image shows instead.
    pub features: Option<crate::kernel::Features>,
    pub version: Option<Version>,
    pub modules: bool,
    /// Its `.config`: the matrix's `config:`, else its package's.
    pub config: Option<crate::kernel::KernelConfig>,
    pub image_sha256: String,
    image: std::path::PathBuf,
}

impl KernelSource {
    /// `more_modules`: the matrix gives the kernel a module tree of its own;
    /// `config`: the matrix's `config:` file.
    pub fn read(
        cache: &crate::kernel::KernelCache,
        kernel: &crate::kernel::ResolvedKernel,
        more_modules: bool,
        config: Option<&std::path::Path>,
    ) -> Result<KernelSource, PreflightError> {
        let btf = cache.kernel_btf(&kernel.image, &kernel.sha256)?;
        let features = cache.kernel_features(&kernel.image, &kernel.sha256)?;
        let release = crate::kernel::release_of(&kernel.image).ok().flatten();
        let config = match config {
            Some(file) => Some(crate::kernel::read_config_file(file, release.as_deref())?),
            None => cache.kernel_config(&kernel.sha256)?,
        };
        Ok(KernelSource {
            btf,
            features,
            version: release.as_deref().and_then(Version::parse),
            config,
            modules: more_modules || kernel.modules.is_some(),
            image_sha256: kernel.sha256.clone(),
            image: kernel.image.clone(),
        })
    }

    /// The facts the predictions read, borrowing the BTF.
    pub fn facts(&self) -> Result<KernelFacts<'_>, PreflightError> {
        let btf = self
            .btf
            .as_deref()
            .map(KernelBtf::parse)
            .transpose()
            .map_err(|why| PreflightError::Btf {
                image: self.image.clone(),
                why,
            })?;
        Ok(KernelFacts {
            version: self.version,
            features: self.features,
            config: self.config.as_ref(),
            btf,
            modules: self.modules,
        })
    }
}

/// Every subject on one kernel.
pub fn predict_all(
    subjects: &[Option<Subject>],
    kernel: &KernelFacts<'_>,
) -> Vec<Option<Prediction>> {
    subjects
        .iter()
        .map(|s| s.as_ref().map(|s| predict(&s.summary, &s.plan, kernel)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::inspection::{HelperUse, MapSummary};
    use bpfcompat_testkit::kernels::{K510, K612};

    fn program(name: &str, section: &str, helpers: &[u32]) -> ProgramSummary {
        let (prog_type, needs_kernel_btf) = crate::object::section_prog_type(section).unwrap();
        ProgramSummary {
            name: name.into(),
            section: section.into(),
            prog_type: Some(prog_type.into()),
            needs_kernel_btf,
            insns: 10,
            helpers: helpers.to_vec(),
            kfuncs: Vec::new(),
            attach_type: crate::object::section_attach_type(section).map(str::to_owned),
            attach_target: crate::object::section_attach_target(section),
            unchecked_lookup: None,
        }
    }

    fn object(programs: Vec<ProgramSummary>) -> ObjectSummary {
        let helpers = programs
            .iter()
            .flat_map(|p| p.helpers.iter().map(move |h| (*h, p.name.clone())))
            .map(|(id, user)| HelperUse {
                id,
                name: bpfcompat_proto::object::helper_name(id).map(str::to_owned),
                programs: vec![user],
            })
            .collect();
        ObjectSummary {
            path: "x.bpf.o".into(),
            size: 1,
            sha256: String::new(),
            license: Some("GPL".into()),
            programs,
            maps: Vec::new(),
            globals: Vec::new(),
            helpers,
            kfuncs: Vec::new(),
            extern_vars: Vec::new(),
            btf: true,
            core_relocations: 0,
            core: Vec::new(),
            btf_kinds: Vec::new(),
            needs_kernel_btf: false,
            warnings: Vec::new(),
        }
    }

    fn with_kernel<T>(
        k: &bpfcompat_testkit::kernels::Kernel,
        f: impl FnOnce(&KernelFacts<'_>) -> T,
    ) -> T {
        let bytes = crate::kernel::btf_of_image(&k.path()).unwrap().unwrap();
        let facts = KernelFacts {
            version: Version::parse(k.release),
            btf: Some(KernelBtf::parse(&bytes).unwrap()),
            features: None,
            config: None,
            modules: false,
        };
        f(&facts)
    }

    #[test]
    fn each_obstacle_names_the_thing_and_the_kernel_that_lacks_it() {
        let mut o = object(vec![
            program("loops", "tracepoint/sched/sched_switch", &[181]),
            program("unix", "cgroup/connect_unix", &[]),
            program("missing", "fentry/bpfcompat_nope", &[]),
        ]);
        o.maps.push(MapSummary {
            name: "events".into(),
            map_type: Some(31),
            map_type_name: Some("user_ringbuf".into()),
            ..MapSummary::default()
        });
        o.core.push(CoreRelocation {
            program: "loops".into(),
            kind: "byte_off".into(),
            type_kind: "struct".into(),
            type_name: "task_struct".into(),
            member: Some("__state".into()),
            guarded: false,
        });
        let plan = Plan::default();
        let on510 = with_kernel(&K510, |k| predict(&o, &plan, k));
        let reasons: Vec<&str> = on510.obstacles.iter().map(|o| o.reason.as_str()).collect();
        assert_eq!(on510.verdict, Predicted::Blocked);
        assert!(
            reasons.iter().any(|r| r
                .starts_with("helper bpf_loop (181) absent: this kernel's bpf_func_id ends at")),
            "{reasons:?}"
        );
        assert!(reasons.contains(&"attach type BPF_CGROUP_UNIX_CONNECT absent: this kernel's bpf_attach_type ends at 37 (BPF_XDP)"), "{reasons:?}");
        assert!(
            reasons.contains(&"fentry target bpfcompat_nope absent from this kernel's BTF"),
            "{reasons:?}"
        );
        assert!(
            reasons
                .iter()
                .any(|r| r.starts_with("map events: type user_ringbuf (31) absent")),
            "{reasons:?}"
        );
        assert!(
            reasons.contains(&"field task_struct.__state not in this kernel (CO-RE, unguarded)"),
            "{reasons:?}"
        );
        // 6.12 has all of it but the made-up target; guarded, the field is
        // no obstacle anywhere.
        let on612 = with_kernel(&K612, |k| predict(&o, &plan, k));
        assert_eq!(on612.obstacles.len(), 1, "{:?}", on612.obstacles);
        o.core[0].guarded = true;
        let guarded = with_kernel(&K510, |k| predict(&o, &plan, k));
        assert!(!guarded
            .obstacles
            .iter()
            .any(|x| x.kind == ObstacleKind::Core));
        // A variant's program is an alternative, not an obstacle.
        let plan = Plan {
            groups: vec![vec!["missing".into(), "unix".into()]],
            ..Plan::default()
        };
        let on612 = with_kernel(&K612, |k| predict(&o, &plan, k));
        assert_eq!(on612.verdict, Predicted::NoKnownObstacle, "{on612:?}");
    }

    #[test]
    fn a_kernels_config_blocks_what_it_was_built_without() {
        let o = object(vec![
            program("hook", "fmod_ret/security_file_open", &[]),
            program("syscall", "fmod_ret/__x64_sys_getpgid", &[]),
            program("lookup", "sk_lookup", &[]),
        ]);
        let judged = |config: &str| {
            let config = crate::kernel::KernelConfig::parse(config);
            let mut found = Obstacles::default();
            configured(&o.programs.iter().collect::<Vec<_>>(), &config, &mut found);
            found
                .0
                .into_iter()
                .map(|x| x.program.unwrap())
                .collect::<Vec<_>>()
        };
        let off = "# CONFIG_FUNCTION_ERROR_INJECTION is not set\n# CONFIG_NET_NS is not set\n";
        assert_eq!(judged(off), ["syscall", "lookup"]);
        let on = "CONFIG_FUNCTION_ERROR_INJECTION=y\nCONFIG_NET_NS=y\n";
        assert!(judged(on).is_empty());
        // A fragment that does not say is no obstacle.
        assert!(judged("CONFIG_BPF=y\n").is_empty());
    }

    #[test]
    fn the_minimum_kernel_takes_a_groups_least_demanding_program() {
        let o = object(vec![
            program("loops", "tracepoint/sched/sched_switch", &[181]),
            program("plain", "tracepoint/sched/sched_switch", &[1]),
            program("common", "tracepoint/sched/sched_switch", &[5]),
        ]);
        let whole = min_kernel(&o, &Plan::default()).unwrap();
        assert_eq!(whole.version, "5.17");
        assert_eq!(whole.line(), "≥ 5.17 because bpf_loop (5.17, in loops)");
        let plan = Plan {
            groups: vec![vec!["loops".into(), "plain".into()]],
            ..Plan::default()
        };
        let grouped = min_kernel(&o, &plan).unwrap();
        assert!(
            Version::parse(&grouped.version) < Some(Version(5, 4)),
            "{grouped:?}"
        );
        assert!(grouped.because.is_empty());
    }

    #[test]
    fn releases_and_syscall_wrappers_are_read_as_they_are_written() {
        assert_eq!(Version::parse("6.1.0-47-cloud-amd64"), Some(Version(6, 1)));
        assert_eq!(
            Version::parse("6.12.107+deb13-cloud-amd64"),
            Some(Version(6, 12))
        );
        assert_eq!(Version::parse("5.17"), Some(Version(5, 17)));
        assert_eq!(Version::parse("x"), None);
        assert!(Version(5, 17) > Version(5, 4) && Version(6, 1) > Version(5, 17));
        for w in [
            "__x64_sys_getpid",
            "__arm64_sys_openat",
            "__se_sys_read",
            "__ia32_compat_sys_open",
        ] {
            assert!(is_syscall_wrapper(w), "{w}");
        }
        for f in ["tcp_v4_connect", "vfs_read", "sysfs_create_file"] {
            assert!(!is_syscall_wrapper(f), "{f}");
        }
    }
}
