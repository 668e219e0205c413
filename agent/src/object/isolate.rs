//! After a failed whole load: each program loaded alone, so that every
//! culprit is named. Maps that fail to create are left out (autocreate
//! off) so the programs that do not use them can still be judged.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use bpfcompat_proto::object::{Diagnosis, ProgramLoad};

use super::elfscan;
use super::load::{self, Culprit, FailurePoint, LoadAttempt, MapDecl, ProgDecl};
use super::verdict::{
    program_load_blocked, program_load_failed, program_load_pass, program_load_skipped, Ctx,
    MapCreates,
};

/// The object whose whole load failed, and what isolating its programs needs.
pub struct Isolation<'a> {
    path: &'a Path,
    ctx: &'a Ctx<'a>,
    progs: &'a [ProgDecl],
    maps: &'a [MapDecl],
    whole: &'a LoadAttempt,
    /// Where the whole load stopped.
    whole_point: &'a FailurePoint,
    struct_ops_maps: BTreeSet<String>,
    struct_ops_progs: BTreeSet<String>,
    /// Users of an extern that failed the whole object.
    extern_users: BTreeMap<String, BTreeSet<String>>,
}

impl<'a> Isolation<'a> {
    pub fn new(
        path: &'a Path,
        ctx: &'a Ctx<'a>,
        progs: &'a [ProgDecl],
        maps: &'a [MapDecl],
        whole: &'a LoadAttempt,
        whole_point: &'a FailurePoint,
    ) -> Self {
        let extern_users = match &whole_point.culprit {
            Culprit::Extern(e) => {
                let elf = std::fs::read(path).unwrap_or_default();
                BTreeMap::from([(e.clone(), elfscan::users_of_symbol(&elf, e))])
            }
            _ => BTreeMap::new(),
        };
        Isolation {
            path,
            ctx,
            progs,
            maps,
            whole,
            whole_point,
            struct_ops_maps: maps
                .iter()
                .filter(|m| m.is_struct_ops())
                .map(|m| m.name.clone())
                .collect(),
            struct_ops_progs: progs
                .iter()
                .filter(|p| p.is_struct_ops())
                .map(|p| p.name.clone())
                .collect(),
            extern_users,
        }
    }

    /// One result per program, in the object's order; `creates` learns
    /// each map that cannot be created.
    ///
    /// The programs still in question are loaded together: the verifier
    /// judges each program on its own, and libbpf stops at the first that
    /// fails, so a load either passes them all or names one culprit, which
    /// leaves the group. That costs one load per failing program plus one,
    /// not one per program. Whatever the group cannot tell apart (an
    /// extern, a failure before any program loads) is judged one program
    /// at a time, as before.
    pub fn run(&self, creates: &mut MapCreates) -> Vec<ProgramLoad> {
        let mut results: Vec<Option<ProgramLoad>> = vec![None; self.progs.len()];
        let mut group: Vec<usize> = Vec::new();
        for (i, p) in self.progs.iter().enumerate() {
            let known = !p.autoload
                || p.is_struct_ops()
                || self.whole_point.culprit == Culprit::Program(p.name.clone());
            if known {
                results[i] = Some(self.program(p, creates));
            } else {
                group.push(i);
            }
        }
        let alone = self.load_together(&mut group, &mut results, creates);
        for i in alone {
            results[i] = Some(self.program(&self.progs[i], creates));
        }
        results
            .into_iter()
            .map(|r| r.expect("every program is judged"))
            .collect()
    }

    /// Loads `group` together until it passes; each culprit's result goes
    /// into `results`. Returns the programs left to judge one at a time.
    fn load_together(
        &self,
        group: &mut Vec<usize>,
        results: &mut [Option<ProgramLoad>],
        creates: &mut MapCreates,
    ) -> Vec<usize> {
        // Each round names a culprit or one more map that cannot be created.
        for _ in 0..=(self.progs.len() + self.maps.len()) {
            if group.is_empty() {
                return Vec::new();
            }
            let only: BTreeSet<String> =
                group.iter().map(|&i| self.progs[i].name.clone()).collect();
            let mut skip_maps = creates.no_create.clone();
            skip_maps.extend(self.struct_ops_maps.iter().cloned());
            let attempt = load::load(self.path, self.ctx.prepare, Some(&only), &skip_maps);
            if let Some(obj) = attempt.object.as_ref() {
                for &i in group.iter() {
                    let insns = load::verified_insns(obj, &self.progs[i].name);
                    results[i] = Some(program_load_pass(insns, true));
                }
                return Vec::new();
            }
            let point = attempt.stopped_at();
            match &point.culprit {
                Culprit::Program(name) if only.contains(name) => {
                    let at = group
                        .iter()
                        .position(|&i| &self.progs[i].name == name)
                        .expect("the culprit is in the group");
                    let i = group.remove(at);
                    let p = &self.progs[i];
                    results[i] = Some(self.program_failed(p, name, &attempt, &point, creates));
                }
                Culprit::Map(m) if !creates.no_create.contains(m) => {
                    creates.failed(self.ctx, &attempt, &point, self.maps, m);
                }
                _ => break,
            }
        }
        std::mem::take(group)
    }

    fn program(&self, p: &ProgDecl, creates: &mut MapCreates) -> ProgramLoad {
        if !p.autoload {
            return program_load_skipped("autoload off", true);
        }
        // The program the whole load stopped at: its result is already known.
        if !p.is_struct_ops() && self.whole_point.culprit == Culprit::Program(p.name.clone()) {
            return program_load_failed(self.ctx, p, self.whole, self.whole_point, false);
        }
        // struct_ops programs load together: their maps need all of them.
        let only: BTreeSet<String> = if p.is_struct_ops() {
            self.struct_ops_progs.clone()
        } else {
            BTreeSet::from([p.name.clone()])
        };
        // Each round may discover one more map that cannot be created.
        for _ in 0..=self.maps.len() {
            let mut skip_maps = creates.no_create.clone();
            if !p.is_struct_ops() {
                skip_maps.extend(self.struct_ops_maps.iter().cloned());
            }
            let attempt = load::load(self.path, self.ctx.prepare, Some(&only), &skip_maps);
            if let Some(result) = self.judge(p, &only, &attempt, creates) {
                return result;
            }
        }
        program_load_skipped(
            format!(
                "not determined (whole object failed: {})",
                self.whole.error.clone().unwrap_or_default()
            ),
            true,
        )
    }

    /// What loading `only` (for `p`) in `attempt` says about `p`; None when
    /// it found one more map that cannot be created, for the next round to
    /// leave out.
    fn judge(
        &self,
        p: &ProgDecl,
        only: &BTreeSet<String>,
        attempt: &LoadAttempt,
        creates: &mut MapCreates,
    ) -> Option<ProgramLoad> {
        if let Some(obj) = attempt.object.as_ref() {
            return Some(program_load_pass(load::verified_insns(obj, &p.name), true));
        }
        let point = attempt.stopped_at();
        match &point.culprit {
            Culprit::Program(name) if only.contains(name) => {
                Some(self.program_failed(p, name, attempt, &point, creates))
            }
            Culprit::Map(m) if !creates.no_create.contains(m) => {
                creates.failed(self.ctx, attempt, &point, self.maps, m);
                None
            }
            Culprit::Extern(e) => Some(self.extern_failed(p, e, attempt, &point)),
            // Fails before programs load (kernel BTF, struct_ops, ...):
            // nothing program-specific to learn.
            _ => Some(program_load_blocked(self.ctx, attempt, &point, self.maps)),
        }
    }

    /// Program `name` of those loaded for `p` failed: `p` itself, or a
    /// struct_ops sibling.
    fn program_failed(
        &self,
        p: &ProgDecl,
        name: &str,
        attempt: &LoadAttempt,
        point: &FailurePoint,
        creates: &MapCreates,
    ) -> ProgramLoad {
        let culprit = self.progs.iter().find(|x| x.name == name).unwrap_or(p);
        let mut l = program_load_failed(self.ctx, culprit, attempt, point, true);
        if culprit.name != p.name {
            // A struct_ops sibling failed; report it on this one too.
            l.error = Some(format!(
                "not loaded: struct_ops program '{}' failed: {}",
                culprit.name, point.line
            ));
        }
        // A map this program uses could not be created.
        if l.verifier_log.contains("<invalid BPF map reference>") {
            if let Some(d) = uncreated_map(&l.verifier_log, self.maps, creates) {
                l.diagnosis = Some(Diagnosis {
                    reason: format!("uses a map that cannot be created here: {}", d.reason),
                    ..d
                });
            }
        }
        l
    }

    /// The object fails at extern `e` before any program loads: a failure
    /// for the programs that use it, a skip for the others.
    fn extern_failed(
        &self,
        p: &ProgDecl,
        e: &str,
        attempt: &LoadAttempt,
        point: &FailurePoint,
    ) -> ProgramLoad {
        let uses_it = self
            .extern_users
            .get(e)
            .is_some_and(|users| users.contains(&p.name));
        if uses_it {
            return program_load_blocked(self.ctx, attempt, point, self.maps);
        }
        program_load_skipped(
            format!(
                "not loaded: the object fails before any program loads ({}); this program does not use '{e}'",
                point.line
            ),
            true,
        )
    }
}

/// The failure of the map a verifier log says was not created, else of any
/// map that failed to create.
fn uncreated_map(verifier_log: &str, maps: &[MapDecl], creates: &MapCreates) -> Option<Diagnosis> {
    // libbpf names it: "BPF map 'x' is referenced but wasn't created".
    let named = verifier_log
        .lines()
        .find_map(|line| line.strip_prefix("BPF map '")?.split('\'').next())
        .and_then(|m| maps.iter().position(|x| x.name == m));
    named
        .and_then(|i| creates.results[i].1.clone())
        .or_else(|| creates.results.iter().find_map(|(_, d)| d.clone()))
}
