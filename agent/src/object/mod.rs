//! Checking one `.bpf.o` the way a libbpf loader would: open it, create its
//! maps, load it as a whole, attach every program; and when something fails,
//! find out which program or map is to blame and why.

pub mod attach;
pub mod capture;
pub mod classify;
pub mod elfscan;
pub mod facts;
pub mod load;
pub mod names;
pub mod probe;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Instant;

use bpfcompat_proto::object::AttachResult;
use bpfcompat_proto::object::{
    tail, BpfKernelFacts, Diagnosis, FailureClass, FeatureProbe, MapOutcome, ObjectMode,
    ObjectOutcome, Phase, ProbeKind, ProgramLoad, ProgramOutcome, Status, StepResult,
    LIBBPF_LOG_MAX_BYTES, VERIFIER_LOG_MAX_BYTES, VERIFIER_LOG_TAIL_BYTES,
};

pub use facts::kernel_facts;

use classify::{classify, Evidence};
use load::{Culprit, FailurePoint, LoadAttempt, MapDecl, ProgDecl};

/// The version of the libbpf linked into the agent, as libbpf reports it (`1.7`).
pub fn libbpf_version() -> String {
    names::libbpf_version()
}

/// Everything a classification needs besides the failure itself.
struct Ctx<'a> {
    facts: &'a BpfKernelFacts,
    probes: &'a [FeatureProbe],
}

impl Ctx<'_> {
    fn probe(&self, kind: ProbeKind, name: &str, prog_type: Option<&str>) -> Option<bool> {
        self.probes
            .iter()
            .find(|p| p.kind == kind && p.name == name && p.prog_type.as_deref() == prog_type)
            .and_then(|p| p.supported)
    }

    fn evidence(&self, phase: Phase, subject: &str) -> Evidence {
        let mut ev = Evidence::new(phase, subject);
        ev.kernel_btf = self.facts.btf;
        ev.lockdown = self.facts.lockdown.clone();
        ev
    }

    fn prog_evidence(&self, phase: Phase, p: &ProgDecl) -> Evidence {
        let mut ev = self.evidence(phase, &p.name);
        let t = names::prog_type(p.prog_type);
        ev.prog_type_supported = self.probe(ProbeKind::ProgramType, &t, None);
        ev.unsupported_helpers = p
            .helpers
            .iter()
            .filter_map(|&h| {
                let name = bpfcompat_proto::object::helper_name(h)?;
                (self.probe(ProbeKind::Helper, name, Some(&t)) == Some(false))
                    .then(|| name.to_owned())
            })
            .collect();
        ev.prog_type = Some(t);
        ev
    }

    fn map_evidence(&self, m: &MapDecl) -> Evidence {
        let mut ev = self.evidence(Phase::MapCreate, &m.name);
        let t = names::map_type(m.map_type);
        ev.map_type_supported = self.probe(ProbeKind::MapType, &t, None);
        ev.map_type = Some(t);
        ev
    }
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

fn program_load_pass(insns: Option<u64>, isolated: bool) -> ProgramLoad {
    ProgramLoad {
        status: Status::Pass,
        errno: None,
        error: None,
        verifier_log_tail: String::new(),
        verifier_log: String::new(),
        verifier_log_bytes: 0,
        verifier_log_file: None,
        insns_processed: insns,
        isolated,
        diagnosis: None,
    }
}

fn program_load_skipped(why: impl Into<String>, isolated: bool) -> ProgramLoad {
    ProgramLoad {
        status: Status::Skipped,
        errno: None,
        error: Some(why.into()),
        verifier_log_tail: String::new(),
        verifier_log: String::new(),
        verifier_log_bytes: 0,
        verifier_log_file: None,
        insns_processed: None,
        isolated,
        diagnosis: None,
    }
}

/// A program whose load failed in `attempt` at `point`.
fn program_load_failed(
    ctx: &Ctx<'_>,
    p: &ProgDecl,
    attempt: &LoadAttempt,
    point: &FailurePoint,
    isolated: bool,
) -> ProgramLoad {
    let log = attempt.output.verifier_log(&p.name).unwrap_or_default();
    let mut ev = ctx.prog_evidence(point.phase, p);
    ev.errno = attempt.errno;
    let prefix = format!("prog '{}':", p.name);
    ev.libbpf_lines = attempt
        .output
        .warn_lines()
        .into_iter()
        .filter(|l| l.starts_with(&prefix) || !l.starts_with("prog '"))
        .collect();
    ev.verifier_log = log.clone();
    let diagnosis = classify(&ev);
    ProgramLoad {
        status: Status::Fail,
        errno: attempt.errno,
        error: Some(point.line.clone()),
        verifier_log_tail: tail(&log, VERIFIER_LOG_TAIL_BYTES).to_owned(),
        verifier_log: tail(&log, VERIFIER_LOG_MAX_BYTES).to_owned(),
        verifier_log_bytes: log.len() as u64,
        verifier_log_file: None,
        insns_processed: classify::insns_processed(&log),
        isolated,
        diagnosis: Some(diagnosis),
    }
}

fn object_level_diagnosis(
    ctx: &Ctx<'_>,
    attempt: &LoadAttempt,
    point: &FailurePoint,
    maps: &[MapDecl],
) -> Diagnosis {
    let mut ev = match &point.culprit {
        Culprit::Map(m) => match maps.iter().find(|d| &d.name == m) {
            Some(d) => ctx.map_evidence(d),
            None => ctx.evidence(point.phase, m),
        },
        Culprit::Extern(e) => ctx.evidence(point.phase, e),
        _ => ctx.evidence(point.phase, "object"),
    };
    ev.errno = attempt.errno;
    ev.libbpf_lines = std::iter::once(point.line.clone())
        .chain(attempt.output.warn_lines())
        .collect();
    classify(&ev)
}

fn step_fail(attempt: &LoadAttempt) -> StepResult {
    StepResult {
        status: Status::Fail,
        errno: attempt.errno,
        error: attempt.error.clone(),
    }
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

    // 1. Open.
    let cap = capture::Capture::start();
    let opened = load::open(path);
    let open_output = cap.take();
    let opened = match opened {
        Ok(o) => o,
        Err(e) => {
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
            out.duration_ms = started.elapsed().as_millis() as u64;
            return out;
        }
    };
    let (progs, maps) = load::declarations(&opened);
    drop(opened);
    out.probes = probes_for(&progs, &maps);
    let ctx = Ctx {
        facts,
        probes: &out.probes,
    };
    if progs.is_empty() {
        out.diagnosis = Some(Diagnosis {
            class: FailureClass::InvalidObject,
            phase: Phase::Open,
            reason: format!(
                "{}: libbpf found no BPF programs in the object",
                path.display()
            ),
            hint: "put programs in SEC(\"...\") sections libbpf recognises".into(),
        });
    }

    // 2. Whole-object load, as a skeleton does it. Its output includes its
    // own open: what a user's loader would print.
    let mut whole = load::load(path, None, &BTreeSet::new());
    out.libbpf_log = tail(&whole.output.text(), LIBBPF_LOG_MAX_BYTES).to_owned();

    let mut prog_loads: Vec<ProgramLoad> = Vec::new();
    let mut map_creates: Vec<(StepResult, Option<Diagnosis>)> = maps
        .iter()
        .map(|m| {
            if m.autocreate {
                (StepResult::pass(), None)
            } else {
                (StepResult::skipped("autocreate off"), None)
            }
        })
        .collect();

    if let Some(obj) = whole.object.as_ref() {
        out.load = StepResult::pass();
        for p in &progs {
            prog_loads.push(if load::is_loaded(obj, &p.name) {
                program_load_pass(load::verified_insns(obj, &p.name), false)
            } else if p.autoload {
                // libbpf turns autoload off for struct_ops programs no
                // struct_ops map refers to.
                program_load_skipped("not loaded by libbpf (autoload turned off)", false)
            } else {
                program_load_skipped("autoload off", false)
            });
        }
    } else {
        out.load = step_fail(&whole);
        let point = whole.point.clone().unwrap_or(FailurePoint {
            phase: Phase::ProgramLoad,
            culprit: Culprit::Unnamed,
            line: whole.error.clone().unwrap_or_default(),
        });
        // Object-level culprits that are not programs.
        let mut no_create = BTreeSet::new();
        let mut obj_diag = None;
        if let Culprit::Map(m) = &point.culprit {
            let d = object_level_diagnosis(&ctx, &whole, &point, &maps);
            if let Some(i) = maps.iter().position(|x| &x.name == m) {
                map_creates[i] = (step_fail(&whole), Some(d.clone()));
            }
            no_create.insert(m.clone());
            obj_diag = Some(d);
        } else if !matches!(point.culprit, Culprit::Program(_)) {
            obj_diag = Some(object_level_diagnosis(&ctx, &whole, &point, &maps));
        }
        // 3. Isolate: each program alone, so every culprit is named.
        prog_loads = isolate(
            path,
            &ctx,
            &progs,
            &maps,
            &mut map_creates,
            &mut no_create,
            &point,
            &whole,
        );
        out.diagnosis = obj_diag.or_else(|| match &point.culprit {
            Culprit::Program(name) => progs
                .iter()
                .position(|p| &p.name == name)
                .and_then(|i| prog_loads[i].diagnosis.clone()),
            _ => None,
        });
        if out.diagnosis.is_none() {
            out.diagnosis = prog_loads.iter().find_map(|l| l.diagnosis.clone());
        }
        if out.diagnosis.is_none() {
            out.diagnosis = Some(object_level_diagnosis(&ctx, &whole, &point, &maps));
        }
    }

    // 4. Attach.
    let loaded: Vec<bool> = prog_loads
        .iter()
        .map(|l| l.status == Status::Pass)
        .collect();
    let (attach_results, map_attach): (Vec<AttachResult>, Vec<Option<AttachResult>>) =
        match (mode, whole.object.as_mut()) {
            (ObjectMode::LoadAttach, Some(obj)) => {
                let actx = attach::AttachCtx {
                    kernel_btf: facts.btf,
                    lockdown: facts.lockdown.as_deref(),
                };
                attach::attach_all(obj, &progs, &loaded, &maps, &actx)
            }
            (ObjectMode::LoadOnly, _) => (
                progs
                    .iter()
                    .map(|_| AttachResult::skipped("load-only check"))
                    .collect(),
                maps.iter().map(|_| None).collect(),
            ),
            (ObjectMode::LoadAttach, None) => (
                progs
                    .iter()
                    .map(|_| AttachResult::skipped("the object did not load as a whole"))
                    .collect(),
                maps.iter().map(|_| None).collect(),
            ),
        };
    drop(whole);

    for ((p, load), attach) in progs.iter().zip(prog_loads).zip(attach_results) {
        out.programs.push(ProgramOutcome {
            name: p.name.clone(),
            section: p.section.clone(),
            prog_type: names::prog_type(p.prog_type),
            attach_type: names::attach_type(p.attach_type),
            autoload: p.autoload,
            load,
            attach,
        });
    }
    for ((m, (create, diagnosis)), attach) in maps.iter().zip(map_creates).zip(map_attach) {
        out.maps.push(MapOutcome {
            name: m.name.clone(),
            map_type: names::map_type(m.map_type),
            max_entries: m.max_entries,
            create,
            attach,
            diagnosis,
        });
    }

    // 5. Roll up.
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
    out.duration_ms = started.elapsed().as_millis() as u64;
    out
}

/// Loads each program alone to find every culprit after a failed whole
/// load. Maps that fail to create are left out (autocreate off) so the
/// programs that do not use them can still be judged.
#[allow(clippy::too_many_arguments)]
fn isolate(
    path: &Path,
    ctx: &Ctx<'_>,
    progs: &[ProgDecl],
    maps: &[MapDecl],
    map_creates: &mut [(StepResult, Option<Diagnosis>)],
    no_create: &mut BTreeSet<String>,
    whole_point: &FailurePoint,
    whole: &LoadAttempt,
) -> Vec<ProgramLoad> {
    let struct_ops_maps: BTreeSet<String> = maps
        .iter()
        .filter(|m| m.is_struct_ops())
        .map(|m| m.name.clone())
        .collect();
    let struct_ops_progs: BTreeSet<String> = progs
        .iter()
        .filter(|p| p.is_struct_ops())
        .map(|p| p.name.clone())
        .collect();
    // Users of an extern that failed the whole object.
    let extern_users: BTreeMap<String, BTreeSet<String>> = match &whole_point.culprit {
        Culprit::Extern(e) => {
            let elf = std::fs::read(path).unwrap_or_default();
            BTreeMap::from([(e.clone(), elfscan::users_of_symbol(&elf, e))])
        }
        _ => BTreeMap::new(),
    };

    let mut results = Vec::new();
    for p in progs {
        if !p.autoload {
            results.push(program_load_skipped("autoload off", true));
            continue;
        }
        // The program the whole load stopped at: its result is already known.
        if !p.is_struct_ops() && whole_point.culprit == Culprit::Program(p.name.clone()) {
            results.push(program_load_failed(ctx, p, whole, whole_point, false));
            continue;
        }
        let only: BTreeSet<String> = if p.is_struct_ops() {
            struct_ops_progs.clone()
        } else {
            BTreeSet::from([p.name.clone()])
        };
        let mut result = None;
        // Each round may discover one more map that cannot be created.
        for _ in 0..=maps.len() {
            let mut skip_maps = no_create.clone();
            if !p.is_struct_ops() {
                skip_maps.extend(struct_ops_maps.iter().cloned());
            }
            let attempt = load::load(path, Some(&only), &skip_maps);
            if let Some(obj) = attempt.object.as_ref() {
                result = Some(program_load_pass(load::verified_insns(obj, &p.name), true));
                break;
            }
            let Some(point) = attempt.point.clone() else {
                result = Some(ProgramLoad {
                    status: Status::Fail,
                    errno: attempt.errno,
                    error: attempt.error.clone(),
                    diagnosis: Some(object_level_diagnosis(
                        ctx,
                        &attempt,
                        &FailurePoint {
                            phase: Phase::ProgramLoad,
                            culprit: Culprit::Unnamed,
                            line: attempt.error.clone().unwrap_or_default(),
                        },
                        maps,
                    )),
                    ..program_load_skipped("", true)
                });
                break;
            };
            match &point.culprit {
                Culprit::Program(name) if only.contains(name) => {
                    let culprit = progs.iter().find(|x| &x.name == name).unwrap_or(p);
                    let mut l = program_load_failed(ctx, culprit, &attempt, &point, true);
                    if culprit.name != p.name {
                        // A struct_ops sibling failed; report it on this one too.
                        l.error = Some(format!(
                            "not loaded: struct_ops program '{}' failed: {}",
                            culprit.name, point.line
                        ));
                    }
                    // A map this program uses could not be created.
                    if l.verifier_log.contains("<invalid BPF map reference>") {
                        // libbpf names it: "BPF map 'x' is referenced but wasn't created".
                        let named = l
                            .verifier_log
                            .lines()
                            .find_map(|line| line.strip_prefix("BPF map '")?.split('\'').next())
                            .and_then(|m| maps.iter().position(|x| x.name == m));
                        let failed = named
                            .and_then(|i| map_creates[i].1.clone())
                            .or_else(|| map_creates.iter().find_map(|(_, d)| d.clone()));
                        if let Some(d) = failed {
                            l.diagnosis = Some(Diagnosis {
                                reason: format!(
                                    "uses a map that cannot be created here: {}",
                                    d.reason
                                ),
                                ..d
                            });
                        }
                    }
                    result = Some(l);
                    break;
                }
                Culprit::Map(m) if !no_create.contains(m) => {
                    let d = object_level_diagnosis(ctx, &attempt, &point, maps);
                    if let Some(i) = maps.iter().position(|x| &x.name == m) {
                        map_creates[i] = (step_fail(&attempt), Some(d));
                    }
                    no_create.insert(m.clone());
                    continue;
                }
                Culprit::Extern(e) => {
                    let users = extern_users.get(e).cloned().unwrap_or_default();
                    let d = object_level_diagnosis(ctx, &attempt, &point, maps);
                    result = Some(if users.contains(&p.name) {
                        ProgramLoad {
                            status: Status::Fail,
                            errno: attempt.errno,
                            error: Some(point.line.clone()),
                            diagnosis: Some(d),
                            ..program_load_skipped("", true)
                        }
                    } else {
                        program_load_skipped(
                            format!(
                                "not loaded: the object fails before any program loads ({}); this program does not use '{e}'",
                                point.line
                            ),
                            true,
                        )
                    });
                    break;
                }
                _ => {
                    // Fails before programs load (kernel BTF, struct_ops, ...):
                    // nothing program-specific to learn.
                    let d = object_level_diagnosis(ctx, &attempt, &point, maps);
                    result = Some(ProgramLoad {
                        status: Status::Fail,
                        errno: attempt.errno,
                        error: Some(point.line.clone()),
                        diagnosis: Some(d),
                        ..program_load_skipped("", true)
                    });
                    break;
                }
            }
        }
        results.push(result.unwrap_or_else(|| ProgramLoad {
            diagnosis: None,
            ..program_load_skipped(
                format!(
                    "not determined (whole object failed: {})",
                    whole.error.clone().unwrap_or_default()
                ),
                true,
            )
        }));
    }
    results
}
