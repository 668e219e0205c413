//! What a pull request sees of many objects: one row per object, one column
//! per kernel, and each distinct failure once, with the objects and kernels
//! it hit, then each distinct reason a check was partial. A hundred copies
//! of one verifier rejection are one group with one log, not a hundred.

use std::collections::BTreeSet;

use serde::Serialize;

use crate::report::markdown::{checks_of_run, row_name};
use crate::report::{Check, CheckStatus, Report, TargetStatus};

/// One object's row.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Row {
    pub object: String,
    /// Per kernel in the report's order: ✅ pass, ◐ partial, ❌ fail, ⚠ not
    /// checked (the kernel could not be).
    pub cells: Vec<&'static str>,
    /// Passed (or partial) on every kernel: such rows collapse into a count
    /// when a comment runs out of room.
    pub passing: bool,
}

/// Objects failing first, in the run's order, then the passing ones.
pub fn rows(report: &Report) -> Vec<Row> {
    let mut rows: Vec<Row> = objects(report)
        .into_iter()
        .enumerate()
        .map(|(i, object)| {
            let cells: Vec<&'static str> = report
                .targets
                .iter()
                .map(|t| match t.checks.get(i).map(|c| c.status) {
                    Some(CheckStatus::Pass) => "✅",
                    Some(CheckStatus::Partial) => "◐",
                    Some(CheckStatus::Fail) => "❌",
                    None => "⚠",
                })
                .collect();
            let passing = cells.iter().all(|c| *c == "✅" || *c == "◐");
            Row {
                object,
                cells,
                passing,
            }
        })
        .collect();
    rows.sort_by_key(|r| r.passing);
    rows
}

/// The row names of the run's checks.
fn objects(report: &Report) -> Vec<String> {
    checks_of_run(report).iter().map(row_name).collect()
}

/// One distinct failure, or one distinct reason a check was partial: the
/// same class and message (the object's own name taken out), wherever it
/// happened.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Group {
    /// Partial (◐: some attaches skipped, with why), not failed.
    pub partial: bool,
    pub class: String,
    /// The reason with the object's name as `‹object›`.
    pub message: String,
    pub hint: String,
    pub objects: Vec<String>,
    pub kernels: Vec<String>,
    /// The verifier log tail of its first occurrence, with where it came from.
    pub log: Option<Log>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Log {
    pub object: String,
    pub kernel: String,
    pub program: String,
    pub tail: String,
}

/// Every failing check, grouped, then every partial one by why its
/// attaches were skipped; in each, the groups hitting most objects first.
pub fn groups(report: &Report) -> Vec<Group> {
    let mut groups: Vec<Group> = Vec::new();
    for t in report
        .targets
        .iter()
        .filter(|t| t.status != TargetStatus::InfraError)
    {
        for c in &t.checks {
            let Some(found) = group_of(c) else {
                continue;
            };
            let object = row_name(c);
            match groups.iter_mut().find(|g| {
                g.partial == found.partial && g.class == found.class && g.message == found.message
            }) {
                Some(g) => {
                    add(&mut g.objects, &object);
                    add(&mut g.kernels, &t.id);
                }
                None => groups.push(Group {
                    objects: vec![object.clone()],
                    kernels: vec![t.id.clone()],
                    log: verifier_log(c).map(|(program, tail)| Log {
                        object,
                        kernel: t.id.clone(),
                        program,
                        tail,
                    }),
                    ..found
                }),
            }
        }
    }
    groups.sort_by_key(|g| (g.partial, std::cmp::Reverse(g.objects.len())));
    groups
}

/// The group a failed or partial check belongs to, without its objects and
/// kernels yet; `None` for a pass.
fn group_of(c: &Check) -> Option<Group> {
    let (partial, class, message, hint) = match (c.status, &c.classification) {
        (CheckStatus::Fail, Some(class)) => (
            false,
            class.code.as_str().to_owned(),
            class.reason.clone(),
            class.hint.clone(),
        ),
        (CheckStatus::Partial, _) if !c.skipped.is_empty() => (
            true,
            "partial".to_owned(),
            c.skipped.join("; "),
            String::new(),
        ),
        _ => return None,
    };
    Some(Group {
        partial,
        class,
        message: without_name(&message, &c.artifact.name),
        hint,
        objects: Vec::new(),
        kernels: Vec::new(),
        log: None,
    })
}

fn add(list: &mut Vec<String>, item: &str) {
    if !list.iter().any(|x| x == item) {
        list.push(item.to_owned());
    }
}

/// `text` with the object's file name and its stem (`probe` of
/// `probe.bpf.o`) as `‹object›`, so copies of one object group together.
fn without_name(text: &str, name: &str) -> String {
    let stem = name.split('.').next().unwrap_or(name);
    let names: BTreeSet<&str> = [name, stem].into_iter().filter(|n| n.len() > 2).collect();
    names
        .iter()
        .rev()
        .fold(text.to_owned(), |t, n| t.replace(n, "‹object›"))
}

/// The first failing program's verifier log tail.
fn verifier_log(c: &Check) -> Option<(String, String)> {
    c.validation
        .object
        .as_ref()?
        .programs
        .iter()
        .find(|p| p.load.diagnosis.is_some() && !p.load.verifier_log_tail.is_empty())
        .map(|p| (p.name.clone(), p.load.verifier_log_tail.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_objects_own_name_does_not_split_a_group() {
        assert_eq!(
            without_name("probe.bpf.o: program probe_open rejected", "probe.bpf.o"),
            "‹object›: program ‹object›_open rejected"
        );
        assert_eq!(without_name("map x: bad", "x.o"), "map x: bad");
    }
}
