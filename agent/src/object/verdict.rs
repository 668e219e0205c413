//! What load attempts say: the evidence a failure gives the classifier,
//! and the per-program and per-map results built from it.

use std::collections::BTreeSet;

use bpfcompat_proto::object::{
    tail, BpfKernelFacts, Diagnosis, FeatureProbe, Phase, ProbeKind, ProgramLoad, Status,
    StepResult, VERIFIER_LOG_MAX_BYTES, VERIFIER_LOG_TAIL_BYTES,
};

use super::classify::{self, classify, Evidence, LoaderGap};
use super::contract::fixups;
use super::contract::Prepare;
use super::load::{Culprit, FailurePoint, LoadAttempt, MapDecl, ProgDecl};
use super::names;

/// Everything a classification needs besides the failure itself.
pub struct Ctx<'a> {
    pub facts: &'a BpfKernelFacts,
    pub probes: &'a [FeatureProbe],
    /// What every load of the object applies first.
    pub prepare: &'a Prepare,
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
        ev.loader_gap = self.loader_gap(m);
        ev
    }

    /// What map `m` leaves unset once prepared: what its loader would set.
    fn loader_gap(&self, m: &MapDecl) -> Option<LoaderGap> {
        let mut shape = m.shape;
        shape.inner_map |= self.prepare.gives_inner(&m.name);
        let params = shape.left_unset();
        if params.is_empty() {
            return None;
        }
        let fixups_would =
            !self.prepare.auto_fixups && params.iter().all(|p| fixups::would_fix(*p, &shape));
        Some(LoaderGap {
            params,
            map_type: m.map_type,
            fixups_would,
        })
    }
}

pub fn program_load_pass(insns: Option<u64>, isolated: bool) -> ProgramLoad {
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

pub fn program_load_skipped(why: impl Into<String>, isolated: bool) -> ProgramLoad {
    ProgramLoad {
        status: Status::Skipped,
        error: Some(why.into()),
        ..program_load_pass(None, isolated)
    }
}

/// A program whose load failed in `attempt` at `point`.
pub fn program_load_failed(
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

/// A program (loaded alone) that failed because the object did, at `point`,
/// before anything of the program's own was tried.
pub fn program_load_blocked(
    ctx: &Ctx<'_>,
    attempt: &LoadAttempt,
    point: &FailurePoint,
    maps: &[MapDecl],
) -> ProgramLoad {
    ProgramLoad {
        status: Status::Fail,
        errno: attempt.errno,
        error: Some(point.line.clone()),
        diagnosis: Some(object_level_diagnosis(ctx, attempt, point, maps)),
        ..program_load_skipped("", true)
    }
}

pub fn object_level_diagnosis(
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

pub fn step_fail(attempt: &LoadAttempt) -> StepResult {
    StepResult {
        status: Status::Fail,
        errno: attempt.errno,
        error: attempt.error.clone(),
    }
}

/// A map's creation result and, when it failed, why.
pub type MapCreate = (StepResult, Option<Diagnosis>);

/// Each map's creation result, as the loads find them out, and the maps
/// found not to be creatable, which later loads leave out.
pub struct MapCreates {
    /// One per map of the object.
    pub results: Vec<MapCreate>,
    pub no_create: BTreeSet<String>,
}

impl MapCreates {
    /// Before any load: created, unless the object turned autocreate off.
    pub fn new(maps: &[MapDecl]) -> Self {
        let results = maps
            .iter()
            .map(|m| {
                if m.autocreate {
                    (StepResult::pass(), None)
                } else {
                    (StepResult::skipped("autocreate off"), None)
                }
            })
            .collect();
        MapCreates {
            results,
            no_create: BTreeSet::new(),
        }
    }

    /// `attempt` stopped at `point`, creating map `name`: records its
    /// failure, leaves it out of later loads and returns its diagnosis.
    pub fn failed(
        &mut self,
        ctx: &Ctx<'_>,
        attempt: &LoadAttempt,
        point: &FailurePoint,
        maps: &[MapDecl],
        name: &str,
    ) -> Diagnosis {
        let d = object_level_diagnosis(ctx, attempt, point, maps);
        if let Some(i) = maps.iter().position(|x| x.name == name) {
            self.results[i] = (step_fail(attempt), Some(d.clone()));
        }
        self.no_create.insert(name.to_owned());
        d
    }
}
