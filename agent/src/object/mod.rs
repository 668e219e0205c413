//! Checking one `.bpf.o` the way a libbpf loader would: open it, create its
//! maps, load it as a whole, attach every program; and when something fails,
//! find out which program or map is to blame and why.

pub mod attach;
pub mod capture;
pub mod classify;
pub mod elfscan;
pub mod facts;
mod isolate;
pub mod load;
pub mod names;
pub mod probe;
mod verdict;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Instant;

use bpfcompat_proto::object::{
    tail, AttachResult, BpfKernelFacts, Diagnosis, FailureClass, FeatureProbe, MapOutcome,
    ObjectMode, ObjectOutcome, Phase, ProgramLoad, ProgramOutcome, Status, StepResult,
    LIBBPF_LOG_MAX_BYTES,
};
use libbpf_rs::Object;

pub use facts::kernel_facts;

use classify::{classify, Evidence};
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
/// once per boot). Never panics on a bad object: every failure is in the
/// outcome.
pub fn check_object_with(path: &Path, mode: ObjectMode, facts: &BpfKernelFacts) -> ObjectOutcome {
    let started = Instant::now();
    let mut out = ObjectOutcome {
        path: path.display().to_string(),
        mode,
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
    };
    if let Some((progs, maps)) = read_declarations(path, &mut out) {
        check_declared(path, mode, facts, &progs, &maps, &mut out);
    }
    out.duration_ms = started.elapsed().as_millis() as u64;
    out
}

/// Step 1: opens the object once to read what it declares; a failure to
/// open is the outcome.
fn read_declarations(
    path: &Path,
    out: &mut ObjectOutcome,
) -> Option<(Vec<ProgDecl>, Vec<MapDecl>)> {
    let cap = capture::Capture::start();
    let opened = load::open(path);
    let open_output = cap.take();
    let e = match opened {
        Ok(o) => return Some(load::declarations(&o)),
        Err(e) => e,
    };
    let mut ev = Evidence::new(Phase::Open, path.display().to_string());
    ev.errno = load::errno_of(&e);
    ev.libbpf_lines = open_output.warn_lines();
    ev.libbpf_lines.push(format!("{e:#}"));
    out.open = StepResult {
        status: Status::Fail,
        errno: ev.errno,
        error: Some(format!("{e:#}")),
    };
    out.diagnosis = Some(classify(&ev));
    out.libbpf_log = tail(&open_output.text(), LIBBPF_LOG_MAX_BYTES).to_owned();
    None
}

/// Steps 2 to 5: loads the opened object, names the culprits if that
/// fails, attaches what loaded and rolls the results up.
fn check_declared(
    path: &Path,
    mode: ObjectMode,
    facts: &BpfKernelFacts,
    progs: &[ProgDecl],
    maps: &[MapDecl],
    out: &mut ObjectOutcome,
) {
    let probes = probes_for(progs, maps);
    let ctx = Ctx {
        facts,
        probes: &probes,
    };
    if progs.is_empty() {
        out.diagnosis = Some(no_programs(path));
    }

    // 2. Whole-object load, as a skeleton does it. Its output includes its
    // own open: what a user's loader would print.
    let mut whole = load::load(path, None, &BTreeSet::new());
    out.libbpf_log = tail(&whole.output.text(), LIBBPF_LOG_MAX_BYTES).to_owned();
    let mut creates = MapCreates::new(maps);
    let prog_loads = match whole.object.as_ref() {
        Some(obj) => {
            out.load = StepResult::pass();
            loaded_whole(obj, progs)
        }
        None => {
            out.load = step_fail(&whole);
            // 3. Isolate: each program alone, so every culprit is named.
            let (loads, diagnosis) = name_culprits(path, &ctx, progs, maps, &whole, &mut creates);
            out.diagnosis = Some(diagnosis);
            loads
        }
    };

    // 4. Attach.
    let (attach, map_attach) =
        attach_loaded(mode, whole.object.as_mut(), progs, &prog_loads, maps, facts);
    drop(whole);
    out.programs = program_outcomes(progs, prog_loads, attach);
    out.maps = map_outcomes(maps, creates.results, map_attach);
    out.probes = probes;
    // 5. Roll up.
    roll_up(out);
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

/// Step 4: one attach result per program, and one per map (None for maps
/// that are not struct_ops).
fn attach_loaded(
    mode: ObjectMode,
    obj: Option<&mut Object>,
    progs: &[ProgDecl],
    prog_loads: &[ProgramLoad],
    maps: &[MapDecl],
    facts: &BpfKernelFacts,
) -> (Vec<AttachResult>, Vec<Option<AttachResult>>) {
    let none_attached = |why: &str| {
        (
            progs.iter().map(|_| AttachResult::skipped(why)).collect(),
            maps.iter().map(|_| None).collect(),
        )
    };
    match (mode, obj) {
        (ObjectMode::LoadAttach, Some(obj)) => {
            let loaded: Vec<bool> = prog_loads
                .iter()
                .map(|l| l.status == Status::Pass)
                .collect();
            let actx = attach::AttachCtx {
                kernel_btf: facts.btf,
                lockdown: facts.lockdown.as_deref(),
            };
            attach::attach_all(obj, progs, &loaded, maps, &actx)
        }
        (ObjectMode::LoadOnly, _) => none_attached("load-only check"),
        (ObjectMode::LoadAttach, None) => none_attached("the object did not load as a whole"),
    }
}

fn program_outcomes(
    progs: &[ProgDecl],
    loads: Vec<ProgramLoad>,
    attach: Vec<AttachResult>,
) -> Vec<ProgramOutcome> {
    progs
        .iter()
        .zip(loads)
        .zip(attach)
        .map(|((p, load), attach)| ProgramOutcome {
            name: p.name.clone(),
            section: p.section.clone(),
            prog_type: names::prog_type(p.prog_type),
            attach_type: names::attach_type(p.attach_type),
            autoload: p.autoload,
            load,
            attach,
        })
        .collect()
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
            max_entries: m.max_entries,
            create,
            attach,
            diagnosis,
        })
        .collect()
}

/// Step 5: the object's verdict, its load's, else its first attach
/// failure's.
fn roll_up(out: &mut ObjectOutcome) {
    let attach_failure = out
        .programs
        .iter()
        .map(|p| &p.attach)
        .chain(out.maps.iter().filter_map(|m| m.attach.as_ref()))
        .find(|a| a.status == Status::Fail)
        .and_then(|a| a.diagnosis.clone());
    if out.load.status == Status::Pass && out.diagnosis.is_none() {
        out.diagnosis = attach_failure;
    }
    out.status = if out.diagnosis.is_none() && out.load.status == Status::Pass {
        Status::Pass
    } else {
        Status::Fail
    };
}
