//! Checking one `.bpf.o` the way a libbpf loader would: open it, create its
//! maps, load it as a whole, attach every program; and when something fails,
//! find out which program or map is to blame and why.

pub mod attach;
pub mod capture;
pub mod classify;
mod contract;
pub mod elfscan;
pub mod facts;
mod isolate;
mod kbtf;
pub mod load;
pub mod names;
pub mod probe;
mod verdict;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Instant;

use bpfcompat_proto::object::{
    tail, AttachResult, BehaviorOutcome, BpfKernelFacts, Diagnosis, FailureClass, FeatureProbe,
    LoaderContract, MapOutcome, NotSelected, ObjectOutcome, Phase, ProgramLoad, ProgramOutcome,
    RunStats, Status, StepResult, ValidationMode, LIBBPF_LOG_MAX_BYTES,
};
use libbpf_rs::Object;

pub use facts::kernel_facts;

use classify::{classify, Evidence};
use contract::{behavior, variants, Prepare};
use isolate::Isolation;
use load::{Culprit, LoadAttempt, MapDecl, ProgDecl};
use verdict::{
    object_level_diagnosis, program_load_pass, program_load_skipped, step_fail, Ctx, MapCreate,
    MapCreates,
};

/// The version of the libbpf linked into the agent, as libbpf reports it (`1.7`).
pub fn libbpf_version() -> String {
    names::libbpf_version()
}

fn probes_for(progs: &[ProgDecl], maps: &[MapDecl]) -> Vec<FeatureProbe> {
    let mut out = Vec::new();
    let prog_types: BTreeSet<u32> = progs.iter().map(|p| p.prog_type).collect();
    for t in &prog_types {
        out.push(probe::prog_type(*t));
    }
    let map_types: BTreeSet<u32> = maps.iter().map(|m| m.map_type).collect();
    for t in map_types {
        out.push(probe::map_type(t));
    }
    let helpers: BTreeSet<(u32, u32)> = progs
        .iter()
        .flat_map(|p| p.helpers.iter().map(move |h| (p.prog_type, *h)))
        .collect();
    for (t, h) in helpers {
        out.push(probe::helper(t, h));
    }
    out
}

/// Checks one object against the kernel described by `facts` (gathered
/// once per boot), the way its loader (`contract`) loads it. Never panics
/// on a bad object: every failure is in the outcome.
pub fn check_object_with(
    path: &Path,
    contract: &LoaderContract,
    facts: &BpfKernelFacts,
) -> ObjectOutcome {
    let started = Instant::now();
    let mut out = ObjectOutcome {
        path: path.display().to_string(),
        mode: contract.validation_mode,
        libbpf_version: libbpf_version(),
        status: Status::Fail,
        open: StepResult::pass(),
        load: StepResult::skipped("not attempted"),
        diagnosis: None,
        programs: vec![],
        maps: vec![],
        probes: vec![],
        libbpf_log: String::new(),
        duration_ms: 0,
        fixups: vec![],
        variants: vec![],
        behavior: None,
    };
    if let Some((prepare, progs, maps)) = read_declarations(path, contract, facts, &mut out) {
        let object = Declared {
            path,
            contract,
            progs,
            maps,
        };
        check_declared(object, prepare, facts, &mut out);
    }
    out.duration_ms = started.elapsed().as_millis() as u64;
    out
}

/// An object as opened and prepared, and the contract it is loaded under.
struct Declared<'a> {
    path: &'a Path,
    contract: &'a LoaderContract,
    progs: Vec<ProgDecl>,
    maps: Vec<MapDecl>,
}

/// Step 1: opens the object once, works out what its contract sets on it,
/// and reads what it declares once that is applied; a failure to open (or
/// to make an inner map) is the outcome.
fn read_declarations(
    path: &Path,
    contract: &LoaderContract,
    facts: &BpfKernelFacts,
    out: &mut ObjectOutcome,
) -> Option<(Prepare, Vec<ProgDecl>, Vec<MapDecl>)> {
    let cap = capture::Capture::start();
    let opened = load::open(path);
    let open_output = cap.take();
    let mut obj = match opened {
        Ok(o) => o,
        Err(e) => {
            not_opened(path, e, &open_output, out);
            return None;
        }
    };
    let prepare = match Prepare::new(contract, &obj, facts.perf_event_max_stack) {
        Ok((prepare, fixups)) => {
            out.fixups = fixups;
            prepare
        }
        Err(f) => {
            inner_map_failed(f, out);
            return None;
        }
    };
    if let Err(e) = prepare.apply(&mut obj) {
        out.load = StepResult {
            status: Status::Fail,
            errno: None,
            error: Some(e.clone()),
        };
        out.diagnosis = Some(contract_refused(e));
        return None;
    }
    let (progs, maps) = load::declarations(&obj);
    Some((prepare, progs, maps))
}

fn not_opened(path: &Path, e: libbpf_rs::Error, output: &capture::Output, out: &mut ObjectOutcome) {
    let mut ev = Evidence::new(Phase::Open, path.display().to_string());
    ev.errno = load::errno_of(&e);
    ev.libbpf_lines = output.warn_lines();
    ev.libbpf_lines.push(format!("{e:#}"));
    out.open = StepResult {
        status: Status::Fail,
        errno: ev.errno,
        error: Some(format!("{e:#}")),
    };
    out.diagnosis = Some(classify(&ev));
    out.libbpf_log = tail(&output.text(), LIBBPF_LOG_MAX_BYTES).to_owned();
}

/// The kernel refused an inner map the contract asks for: classified like
/// any map it cannot create.
fn inner_map_failed(f: contract::InnerMapFailure, out: &mut ObjectOutcome) {
    let mut ev = Evidence::new(Phase::MapCreate, &f.map);
    ev.errno = Some(f.errno);
    let probe = probe::map_type(f.map_type);
    ev.map_type_supported = probe.supported;
    ev.map_type = Some(probe.name);
    let error = format!("{}: {}", f.what, std::io::Error::from_raw_os_error(f.errno));
    ev.libbpf_lines.push(error.clone());
    out.load = StepResult {
        status: Status::Fail,
        errno: Some(f.errno),
        error: Some(error),
    };
    out.diagnosis = Some(classify(&ev));
}

/// libbpf refused a setting of the contract on the opened object.
fn contract_refused(error: String) -> Diagnosis {
    Diagnosis {
        class: FailureClass::InvalidObject,
        phase: Phase::Open,
        reason: error,
        hint: "the manifest asks for something libbpf cannot set on this object: check its \
               maps, program_types and globals against the object"
            .into(),
    }
}

/// Steps 2 to 6: chooses the variants, loads the prepared object, names
/// the culprits if that fails, attaches what loaded, runs the behavior
/// checks and rolls the results up.
fn check_declared(
    mut object: Declared<'_>,
    mut prepare: Prepare,
    facts: &BpfKernelFacts,
    out: &mut ObjectOutcome,
) {
    let probes = probes_for(&object.progs, &object.maps);
    if object.progs.is_empty() {
        out.diagnosis = Some(no_programs(object.path));
    }
    // 2. Variants, chosen as the loader would.
    let selection = select_variants(&object, &prepare, facts, &probes);
    for p in object
        .progs
        .iter_mut()
        .filter(|p| selection.off.contains(&p.name))
    {
        p.autoload = false;
    }
    prepare.off = selection.off.clone();
    let ctx = Ctx {
        facts,
        probes: &probes,
        prepare: &prepare,
    };
    let (progs, maps) = (&object.progs, &object.maps);

    // 3. Whole-object load, as a skeleton does it. Its output includes its
    // own open: what a user's loader would print.
    let mut whole = load::load(object.path, &prepare, None, &BTreeSet::new());
    out.libbpf_log = tail(&whole.output.text(), LIBBPF_LOG_MAX_BYTES).to_owned();
    let mut creates = MapCreates::new(maps);
    let prog_loads = match whole.object.as_ref() {
        Some(obj) => {
            out.load = StepResult::pass();
            loaded_whole(obj, progs)
        }
        None => {
            out.load = step_fail(&whole);
            // Isolate: each program alone, so every culprit is named.
            let (loads, diagnosis) =
                name_culprits(object.path, &ctx, progs, maps, &whole, &mut creates);
            out.diagnosis = Some(diagnosis);
            loads
        }
    };

    // 4. Attach; 5. behavior.
    let (attached, runs) = attach_and_run(&object, facts, whole.object.as_mut(), &prog_loads, out);
    drop(whole);
    out.programs = program_outcomes(&object, prog_loads, attached.programs, &selection);
    for (p, run) in out.programs.iter_mut().zip(runs) {
        p.run = run;
    }
    out.maps = map_outcomes(maps, creates.results, attached.maps);
    out.probes = probes;
    out.variants = selection.choices;
    // 6. Roll up.
    let behavior = out
        .behavior
        .as_ref()
        .and_then(|b| behavior::diagnosis(b, &not_run(out, object.contract)));
    roll_up(out, selection.failure.or(behavior));
}

fn attach_ctx<'a>(object: &'a Declared<'_>, facts: &'a BpfKernelFacts) -> attach::AttachCtx<'a> {
    attach::AttachCtx {
        kernel_btf: facts.btf,
        lockdown: facts.lockdown.as_deref(),
        programs: &object.contract.programs,
    }
}

/// Step 2: each variant group's choice, by the kernel's answers and trial
/// loads of the object as prepared.
fn select_variants(
    object: &Declared<'_>,
    prepare: &Prepare,
    facts: &BpfKernelFacts,
    probes: &[FeatureProbe],
) -> variants::Selection {
    let ctx = Ctx {
        facts,
        probes,
        prepare,
    };
    let actx = attach_ctx(object, facts);
    let mut trial =
        |only: &BTreeSet<String>, attach: bool| trial_load(object, &ctx, &actx, only, attach);
    variants::select(
        object.contract,
        &object.progs,
        &GuestKernel,
        object.contract.validation_mode != ValidationMode::LoadOnly,
        &mut trial,
    )
}

/// Steps 4 and 5: attaches what loaded (in a mode that attaches) and, in
/// behavior mode, runs the workload and tests (into `out.behavior`); each
/// program's run statistics.
fn attach_and_run(
    object: &Declared<'_>,
    facts: &BpfKernelFacts,
    obj: Option<&mut Object>,
    prog_loads: &[ProgramLoad],
    out: &mut ObjectOutcome,
) -> (attach::Attached, Vec<Option<RunStats>>) {
    let (progs, maps) = (&object.progs, &object.maps);
    let no_runs = || vec![None; progs.len()];
    let actx = attach_ctx(object, facts);
    let loaded: Vec<bool> = prog_loads
        .iter()
        .map(|l| l.status == Status::Pass)
        .collect();
    let mode = object.contract.validation_mode;
    let Some(obj) = obj.filter(|_| mode != ValidationMode::LoadOnly) else {
        let why = match mode {
            ValidationMode::LoadOnly => "load-only check",
            _ => "the object did not load as a whole",
        };
        return (none_attached(progs, maps, why), no_runs());
    };
    let attached = attach::attach_all(obj, progs, &loaded, maps, &actx, false);
    if mode != ValidationMode::Behavior {
        return (attached, no_runs());
    }
    let ok: Vec<bool> = attached
        .programs
        .iter()
        .map(|a| a.status == Status::Pass)
        .collect();
    let (behavior, runs) = run_behavior(obj, object, &ok, &actx);
    out.behavior = Some(behavior);
    (attached, runs)
}

fn none_attached(progs: &[ProgDecl], maps: &[MapDecl], why: &str) -> attach::Attached {
    attach::Attached {
        programs: progs.iter().map(|_| AttachResult::skipped(why)).collect(),
        maps: maps.iter().map(|_| None).collect(),
        held: Vec::new(),
    }
}

/// A variant's trial: `only` loaded alone, and attached if `attach`.
fn trial_load(
    object: &Declared<'_>,
    ctx: &Ctx<'_>,
    actx: &attach::AttachCtx<'_>,
    only: &BTreeSet<String>,
    attach: bool,
) -> Result<(), Diagnosis> {
    let mut attempt = load::load(object.path, ctx.prepare, Some(only), &BTreeSet::new());
    let Some(obj) = attempt.object.as_mut() else {
        let point = attempt.stopped_at();
        let culprit = match &point.culprit {
            Culprit::Program(name) => object.progs.iter().find(|p| &p.name == name),
            _ => None,
        };
        return Err(match culprit {
            Some(p) => verdict::program_load_failed(ctx, p, &attempt, &point, true).diagnosis,
            None => None,
        }
        .unwrap_or_else(|| object_level_diagnosis(ctx, &attempt, &point, &object.maps)));
    };
    if !attach {
        return Ok(());
    }
    // The variant, not its companions (prog-array slots, attached by no one).
    let companions = &object.contract.probe_companions;
    let loaded: Vec<bool> = object
        .progs
        .iter()
        .map(|p| only.contains(&p.name) && !companions.contains(&p.name))
        .collect();
    let attached = attach::attach_all(obj, &object.progs, &loaded, &object.maps, actx, false);
    match attached
        .programs
        .into_iter()
        .find(|a| a.status == Status::Fail)
    {
        Some(failed) => Err(failed.diagnosis.expect("a failed attach is classified")),
        None => Ok(()),
    }
}

/// Behavior mode, on the loaded object: statistics on, every attached
/// program held, the workload and the functional tests; then each
/// program's run statistics (`None` for programs not attached).
fn run_behavior(
    obj: &mut Object,
    object: &Declared<'_>,
    attached: &[bool],
    actx: &attach::AttachCtx<'_>,
) -> (BehaviorOutcome, Vec<Option<RunStats>>) {
    let mut out = BehaviorOutcome::default();
    let stats = behavior::enable_stats(&mut out);
    let held = attach::attach_all(obj, &object.progs, attached, &object.maps, actx, true);
    let links = held.held;
    for (p, a) in object.progs.iter().zip(&held.programs) {
        if a.status == Status::Fail {
            out.not_held.push(NotSelected {
                program: p.name.clone(),
                reason: a.error.clone().unwrap_or_default(),
            });
        }
    }
    out.workload = behavior::workload();
    out.functional_tests = object
        .contract
        .functional_tests
        .iter()
        .map(behavior::functional_test)
        .collect();
    let runs = object
        .progs
        .iter()
        .zip(attached)
        .map(|(p, &on)| {
            let fd = on.then(|| load::prog_fd(obj, &p.name)).flatten()?;
            out.stats.as_ref()?;
            behavior::run_stats(fd)
        })
        .collect();
    drop(links);
    drop(stats);
    (out, runs)
}

/// Programs the contract says must run that did not.
fn not_run(out: &ObjectOutcome, contract: &LoaderContract) -> Vec<String> {
    out.programs
        .iter()
        .filter(|p| {
            contract
                .programs
                .iter()
                .any(|c| c.name == p.name && c.expect_run)
        })
        .filter(|p| p.run.as_ref().is_some_and(|r| r.run_count == 0))
        .map(|p| p.name.clone())
        .collect()
}

/// What the variant checks ask of the booted kernel.
struct GuestKernel;

impl variants::Kernel for GuestKernel {
    fn helper(&self, prog_type: u32, id: u32) -> Option<bool> {
        probe::helper(prog_type, id).supported
    }

    fn kfunc(&self, name: &str) -> Option<bool> {
        kbtf::has(name, libbpf_sys::BTF_KIND_FUNC)
    }

    fn target(&self, p: &ProgDecl, name: &str) -> Option<bool> {
        use libbpf_sys as s;
        let symbol = attach::plan::Lookup::Symbol(vec![name.to_owned()]);
        match p.prog_type {
            s::BPF_PROG_TYPE_KPROBE => symbol.traceable().or_else(|| symbol.exists()),
            s::BPF_PROG_TYPE_TRACEPOINT
            | s::BPF_PROG_TYPE_RAW_TRACEPOINT
            | s::BPF_PROG_TYPE_RAW_TRACEPOINT_WRITABLE => attach::plan::tracepoint_named(name),
            s::BPF_PROG_TYPE_TRACING if p.attach_type == s::BPF_TRACE_RAW_TP => {
                kbtf::has(&format!("btf_trace_{name}"), libbpf_sys::BTF_KIND_TYPEDEF)
            }
            s::BPF_PROG_TYPE_LSM => {
                kbtf::has(&format!("bpf_lsm_{name}"), libbpf_sys::BTF_KIND_FUNC)
            }
            s::BPF_PROG_TYPE_TRACING | s::BPF_PROG_TYPE_EXT => {
                kbtf::has(name, libbpf_sys::BTF_KIND_FUNC)
            }
            _ => symbol.exists(),
        }
    }
}

fn no_programs(path: &Path) -> Diagnosis {
    Diagnosis {
        class: FailureClass::InvalidObject,
        phase: Phase::Open,
        reason: format!(
            "{}: libbpf found no BPF programs in the object",
            path.display()
        ),
        hint: "put programs in SEC(\"...\") sections libbpf recognises".into(),
    }
}

/// Each program's load result when the whole object loaded.
fn loaded_whole(obj: &Object, progs: &[ProgDecl]) -> Vec<ProgramLoad> {
    progs
        .iter()
        .map(|p| {
            if load::is_loaded(obj, &p.name) {
                program_load_pass(load::verified_insns(obj, &p.name), false)
            } else if p.autoload {
                // libbpf turns autoload off for struct_ops programs no
                // struct_ops map refers to.
                program_load_skipped("not loaded by libbpf (autoload turned off)", false)
            } else {
                program_load_skipped("autoload off", false)
            }
        })
        .collect()
}

/// Step 3, after a failed whole load: each program's result from loading
/// it alone, so every culprit is named, and the object's diagnosis.
fn name_culprits(
    path: &Path,
    ctx: &Ctx<'_>,
    progs: &[ProgDecl],
    maps: &[MapDecl],
    whole: &LoadAttempt,
    creates: &mut MapCreates,
) -> (Vec<ProgramLoad>, Diagnosis) {
    let point = whole.stopped_at();
    // Object-level culprits that are not programs.
    let obj_diag = match &point.culprit {
        Culprit::Map(m) => Some(creates.failed(ctx, whole, &point, maps, m)),
        Culprit::Program(_) => None,
        _ => Some(object_level_diagnosis(ctx, whole, &point, maps)),
    };
    let loads = Isolation::new(path, ctx, progs, maps, whole, &point).run(creates);
    let diagnosis = obj_diag
        .or_else(|| match &point.culprit {
            Culprit::Program(name) => progs
                .iter()
                .position(|p| &p.name == name)
                .and_then(|i| loads[i].diagnosis.clone()),
            _ => None,
        })
        .or_else(|| loads.iter().find_map(|l| l.diagnosis.clone()))
        .unwrap_or_else(|| object_level_diagnosis(ctx, whole, &point, maps));
    (loads, diagnosis)
}

fn program_outcomes(
    object: &Declared<'_>,
    loads: Vec<ProgramLoad>,
    attach: Vec<AttachResult>,
    selection: &variants::Selection,
) -> Vec<ProgramOutcome> {
    object
        .progs
        .iter()
        .zip(loads)
        .zip(attach)
        .map(|((p, load), attach)| ProgramOutcome {
            name: p.name.clone(),
            section: p.section.clone(),
            prog_type: names::prog_type(p.prog_type),
            attach_type: names::attach_type(p.attach_type),
            autoload: p.autoload,
            load: match not_selected(selection, &p.name) {
                Some(why) => program_load_skipped(why, false),
                None => load,
            },
            attach,
            attach_optional: object
                .contract
                .programs
                .iter()
                .any(|c| c.name == p.name && !c.attach_required),
            run: None,
        })
        .collect()
}

/// Why `program` was not selected in its variant group.
fn not_selected(selection: &variants::Selection, program: &str) -> Option<String> {
    selection.choices.iter().find_map(|c| {
        c.not_selected
            .iter()
            .find(|n| n.program == program)
            .map(|n| format!("not selected (variant group {}): {}", c.group, n.reason))
    })
}

fn map_outcomes(
    maps: &[MapDecl],
    creates: Vec<MapCreate>,
    attach: Vec<Option<AttachResult>>,
) -> Vec<MapOutcome> {
    maps.iter()
        .zip(creates)
        .zip(attach)
        .map(|((m, (create, diagnosis)), attach)| MapOutcome {
            name: m.name.clone(),
            map_type: names::map_type(m.map_type),
            max_entries: m.shape.max_entries,
            create,
            attach,
            diagnosis,
        })
        .collect()
}

/// Step 6: the object's verdict: its load's, else a variant group's that
/// could not be satisfied, else its first required attach failure's, else
/// behavior mode's (`contract_failure` is the second or the last).
fn roll_up(out: &mut ObjectOutcome, contract_failure: Option<Diagnosis>) {
    let attach_failure = out
        .programs
        .iter()
        .filter(|p| !p.attach_optional)
        .map(|p| &p.attach)
        .chain(out.maps.iter().filter_map(|m| m.attach.as_ref()))
        .find(|a| a.status == Status::Fail)
        .and_then(|a| a.diagnosis.clone());
    if out.load.status == Status::Pass && out.diagnosis.is_none() {
        out.diagnosis = match contract_failure {
            Some(d) if d.phase != Phase::Behavior => Some(d),
            behavior => attach_failure.or(behavior),
        };
    }
    out.status = if out.diagnosis.is_none() && out.load.status == Status::Pass {
        Status::Pass
    } else {
        Status::Fail
    };
}
