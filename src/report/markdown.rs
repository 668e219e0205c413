//! Markdown rendering of a report, from the templates in `templates/`.
//!
//! Everything that comes from a guest, a matrix or a pull request goes
//! through a filter of `crate::escape` for where it lands: `cell` (a table
//! cell or a name in prose), `inline` (a reason or hint), `code` (an inline
//! code span), `html` (inside `<summary>`) or `codeblock` (a log tail), so
//! it cannot break the table, close a code fence, inject HTML, make a link
//! or mention anyone.

use minijinja::value::{Value, ViaDeserialize};
use minijinja::{context, AutoEscape, Environment};

use bpfcompat_proto::object::ObjectOutcome;

use super::{Check, CheckStatus, Report, TargetStatus};
use crate::escape;

const REPORT_TEMPLATE: &str = include_str!("../../templates/report.md.j2");
const PARTS_TEMPLATE: &str = include_str!("../../templates/report_parts.md.j2");
/// Names in cells, code spans and summaries are cut to this many
/// characters; reasons and hints are not.
const NAME_CHARS: usize = 160;

/// The templates and filters a report renders with; other renderings of a
/// report (the GitHub check run and comment) add their templates to it and
/// import the macros of `report_parts`.
pub fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_auto_escape_callback(|_| AutoEscape::None);
    env.add_filter("cell", |t: String| escape::markdown(&t, NAME_CHARS));
    env.add_filter("inline", |t: String| escape::markdown(&t, usize::MAX));
    env.add_filter("code", |t: String| escape::code_span(&t, NAME_CHARS));
    env.add_filter("html", |t: String| escape::html(&t, NAME_CHARS));
    env.add_filter("codeblock", |t: String| escape::code_block(&t));
    env.add_filter("secs", |ms: u64| format!("{:.1} s", ms as f64 / 1000.0));
    env.add_filter("verdict", |status: String| verdict(&status).to_owned());
    env.add_function(
        "min_kernel_sentence",
        |m: ViaDeserialize<crate::report::prediction::MinKernelChange>| {
            m.sentence(|t| escape::code_span(t, NAME_CHARS))
        },
    );
    env.add_function("object_matrix", |r: ViaDeserialize<Report>| {
        Value::from_serialize(object_matrix(&r))
    });
    env.add_function("preflight_of", |r: ViaDeserialize<Report>| {
        Value::from_serialize(preflight(&r))
    });
    env.add_function("contract_matrix", |r: ViaDeserialize<Report>| {
        Value::from_serialize(contract_matrix(&r))
    });
    env.add_template("report_parts", PARTS_TEMPLATE)
        .expect("report parts template parses");
    env.add_template("report", REPORT_TEMPLATE)
        .expect("report template parses");
    env
}

pub fn render_markdown(report: &Report) -> String {
    let env = environment();
    let failures: Vec<_> = report
        .targets
        .iter()
        .filter(|t| t.status != TargetStatus::Pass || has_notes(t))
        .collect();
    env.get_template("report")
        .and_then(|t| t.render(context! { report, failures }))
        .expect("report template renders")
}

/// Whether a target that passed still has something to say: warnings
/// from the kernel's facts, or modules that would not load.
pub fn has_notes(t: &crate::report::Target) -> bool {
    t.checks.iter().any(|c| !c.warnings.is_empty())
        || t.kernel
            .modules
            .as_ref()
            .is_some_and(|m| !m.failed.is_empty() || !m.not_found.is_empty())
}

/// One row per object, one cell per kernel: what the validator said.
#[derive(serde::Serialize)]
struct ObjectRow {
    name: String,
    cells: Vec<String>,
}

/// The checks of the run, by index: a kernel that could not be checked has
/// none, so they are taken from one that has them all.
pub(crate) fn checks_of_run(report: &Report) -> &[Check] {
    report
        .targets
        .iter()
        .map(|t| &t.checks[..])
        .max_by_key(|c| c.len())
        .unwrap_or_default()
}

/// A check's row name: its object, after its case in a suite (which may
/// check one object in several cases).
pub(crate) fn row_name(c: &Check) -> String {
    match &c.artifact.case {
        Some(case) => format!("{case}: {}", c.artifact.name),
        None => c.artifact.name.clone(),
    }
}

fn object_matrix(report: &Report) -> Vec<ObjectRow> {
    checks_of_run(report)
        .iter()
        .enumerate()
        .map(|(i, c)| ObjectRow {
            name: row_name(c),
            cells: report
                .targets
                .iter()
                .map(|t| match t.checks.get(i) {
                    Some(c) if c.status == CheckStatus::Pass && c.warnings.is_empty() => {
                        "✅".to_owned()
                    }
                    Some(c) if c.status == CheckStatus::Pass => "✅ ⚠️ warning".to_owned(),
                    Some(c) if c.status == CheckStatus::Partial => "◐ partial".to_owned(),
                    Some(c) => format!(
                        "❌ {}{}",
                        c.classification.as_ref().map_or("", |cl| cl.code.as_str()),
                        if predicted_blocked(c) {
                            " · predicted"
                        } else {
                            ""
                        }
                    ),
                    None => "⚠️".to_owned(),
                })
                .zip(report.targets.iter().map(|t| t.checks.get(i)))
                .map(|(cell, c)| match c {
                    Some(c) if c.status != CheckStatus::Fail && predicted_blocked(c) => {
                        format!("{cell} ‼️ predicted blocked")
                    }
                    _ => cell,
                })
                .collect(),
        })
        .collect()
}

fn predicted_blocked(c: &Check) -> bool {
    c.prediction
        .as_ref()
        .is_some_and(|p| p.verdict == crate::report::prediction::Predicted::Blocked)
}

/// The preflight's part of a report: how its predictions agreed with the
/// verdicts, the cells predicted blocked that did not fail (a prediction
/// bug, listed), and each object's minimum kernel.
#[derive(serde::Serialize, Default)]
pub struct Preflight {
    pub agreement: Option<crate::report::prediction::Agreement>,
    /// Of the failing cells, the percentage that had a predicted reason.
    pub explained_pct: Option<u64>,
    pub false_blocks: Vec<FalseBlock>,
    pub min_kernels: Vec<MinKernelRow>,
}

#[derive(serde::Serialize)]
pub struct FalseBlock {
    pub object: String,
    pub kernel: String,
    pub reasons: Vec<String>,
}

#[derive(serde::Serialize)]
pub struct MinKernelRow {
    pub object: String,
    pub version: String,
    pub because: String,
}

pub fn preflight(report: &Report) -> Preflight {
    let agreement = report.summary.prediction.clone();
    let explained_pct = agreement.as_ref().and_then(|a| {
        let failing = a.blocked_and_failed + a.failed_unpredicted;
        (failing > 0).then(|| (100 * a.blocked_and_failed / failing) as u64)
    });
    let false_blocks = report
        .targets
        .iter()
        .flat_map(|t| t.checks.iter().map(move |c| (t, c)))
        .filter(|(_, c)| c.status != CheckStatus::Fail && predicted_blocked(c))
        .map(|(t, c)| FalseBlock {
            object: row_name(c),
            kernel: t.id.clone(),
            reasons: c
                .prediction
                .iter()
                .flat_map(|p| &p.obstacles)
                .map(|o| o.reason.clone())
                .collect(),
        })
        .collect();
    let min_kernels = checks_of_run(report)
        .iter()
        .filter_map(|c| {
            let m = c.artifact.min_kernel.as_ref()?;
            Some(MinKernelRow {
                object: row_name(c),
                version: m.version.clone(),
                because: m.reasons().unwrap_or_default(),
            })
        })
        .collect();
    Preflight {
        agreement,
        explained_pct,
        false_blocks,
        min_kernels,
    }
}

/// What the loader contract set and chose, per kernel: a row per variant
/// group (the variant loaded), per map fixup (the value) and, in behavior
/// mode, per program (its run count); and why each fixup was made.
#[derive(serde::Serialize, Default)]
struct ContractMatrix {
    rows: Vec<ObjectRow>,
    whys: Vec<String>,
}

fn contract_matrix(report: &Report) -> ContractMatrix {
    let mut m = ContractMatrix::default();
    for (i, c) in checks_of_run(report).iter().enumerate() {
        let outcomes: Vec<_> = report
            .targets
            .iter()
            .map(|t| t.checks.get(i).and_then(|c| c.validation.object.as_ref()))
            .collect();
        contract_rows(&row_name(c), &outcomes, &mut m);
    }
    m
}

/// The contract matrix's rows for one object, `outcomes` its outcome on
/// each kernel.
fn contract_rows(name: &str, outcomes: &[Option<&ObjectOutcome>], m: &mut ContractMatrix) {
    let whys = distinct(outcomes, |o| {
        o.fixups
            .iter()
            .filter(|f| f.why != "manifest")
            .map(|f| format!("{name}: map {}: {}", f.map, f.why))
            .collect()
    });
    m.whys.extend(whys);
    let mut row = |label: String, cell: &dyn Fn(&ObjectOutcome) -> Option<String>| {
        m.rows.push(ObjectRow {
            name: format!("{name}: {label}"),
            cells: outcomes
                .iter()
                .map(|o| o.and_then(cell).unwrap_or_else(|| "—".into()))
                .collect(),
        });
    };
    for group in distinct(outcomes, |o| {
        o.variants.iter().map(|v| v.group.clone()).collect()
    }) {
        row(format!("variant group {group}"), &|o| {
            let v = o.variants.iter().find(|v| v.group == group)?;
            Some(match &v.selected {
                Some(p) => escape::code_span(p, NAME_CHARS),
                None => "❌ none".into(),
            })
        });
    }
    let fixups = distinct(outcomes, |o| {
        o.fixups
            .iter()
            .map(|f| (f.map.clone(), f.field.clone()))
            .collect()
    });
    for (map, field) in fixups {
        row(format!("map {map} {field}"), &|o| {
            let f = o.fixups.iter().find(|f| f.map == map && f.field == field)?;
            let by = if f.why == "manifest" {
                "manifest"
            } else {
                "auto"
            };
            Some(format!("{} ({by})", escape::markdown(&f.value, NAME_CHARS)))
        });
    }
    let runs = distinct(outcomes, |o| {
        o.programs
            .iter()
            .filter(|p| p.run.is_some())
            .map(|p| p.name.clone())
            .collect()
    });
    for program in runs {
        row(format!("{program} runs"), &|o| {
            let run = o
                .programs
                .iter()
                .find(|p| p.name == program)?
                .run
                .as_ref()?;
            Some(run.run_count.to_string())
        });
    }
}

/// The values `of` gives over every kernel's outcome, once each, in order.
fn distinct<T: PartialEq>(
    outcomes: &[Option<&ObjectOutcome>],
    of: impl Fn(&ObjectOutcome) -> Vec<T>,
) -> Vec<T> {
    let mut seen = Vec::new();
    for value in outcomes.iter().flatten().flat_map(|o| of(o)) {
        if !seen.contains(&value) {
            seen.push(value);
        }
    }
    seen
}

fn verdict(status: &str) -> &'static str {
    match status {
        "pass" => "✅ pass",
        "partial" => "◐ partial",
        "fail" => "❌ fail",
        _ => "⚠️ infra error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bpfcompat_testkit::{inert, reports};

    #[test]
    fn hostile_strings_stay_text() {
        let md = render_markdown(
            &serde_json::from_value::<crate::report::Report>(reports::hostile_json()).unwrap(),
        );
        inert::assert_inert_markdown("report", &md);
        // Shown, not dropped.
        assert!(md.contains("@\u{200b}octocat"), "{md}");
        assert!(md.contains("\\|\\*\\_\\[l\\]"), "{md}");
        // Three kernels in the table, two objects in the objects table, a
        // variant group and a fixup in the loader contract's, two minimum
        // kernels in the preflight's.
        let rows = md.lines().filter(|l| l.starts_with("| \\|")).count();
        assert_eq!(rows, 9, "{md}");
        assert!(md.contains("predicted blocked but did not fail"), "{md}");
        assert!(md.contains("#### Loader contract"), "{md}");
    }

    #[test]
    fn names_in_code_spans_and_summaries_show_as_they_are() {
        let mut r =
            serde_json::from_value::<crate::report::Report>(reports::hostile_json()).unwrap();
        let check = &mut r.targets[0].checks[0];
        let object = check.validation.object.as_mut().unwrap();
        object.programs[0].name = "handle_exec".into();
        object.maps[0].name = "my_map".into();
        let md = render_markdown(&r);
        assert!(md.contains("program `handle_exec`"), "{md}");
        assert!(md.contains("map `my_map`"), "{md}");
        assert!(
            md.contains("<summary>verifier log of handle_exec (tail"),
            "{md}"
        );
    }

    #[test]
    fn a_matrix_of_two_architectures_says_which_each_kernel_is() {
        let json = reports::report_json(&[("a", "pass", None), ("b", "pass", None)]);
        let mut r = serde_json::from_value::<crate::report::Report>(json).unwrap();
        r.targets[0].kernel.arch = Some("x86_64".into());
        r.targets[1].kernel.arch = Some("x86_64".into());
        assert!(!render_markdown(&r).contains("| Arch |"));
        r.targets[1].kernel.arch = Some("arm64".into());
        let md = render_markdown(&r);
        assert!(md.contains("| Kernel | Arch | Release |"), "{md}");
        assert!(md.lines().any(|l| l.starts_with("| b | arm64 |")), "{md}");
    }
}
