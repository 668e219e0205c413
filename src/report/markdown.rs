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

use super::{CheckStatus, Report, TargetStatus};
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
    env.add_function("object_matrix", |r: ViaDeserialize<Report>| {
        Value::from_serialize(object_matrix(&r))
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

fn object_matrix(report: &Report) -> Vec<ObjectRow> {
    // Kernels that could not be checked have no checks; take the names from
    // one that has them all.
    let Some(names) = report
        .targets
        .iter()
        .map(|t| &t.checks)
        .max_by_key(|c| c.len())
    else {
        return Vec::new();
    };
    names
        .iter()
        .enumerate()
        .map(|(i, c)| ObjectRow {
            // A suite may check one object in several cases.
            name: match &c.artifact.case {
                Some(case) => format!("{case}: {}", c.artifact.name),
                None => c.artifact.name.clone(),
            },
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
                        "❌ {}",
                        c.classification.as_ref().map_or("", |cl| cl.code.as_str())
                    ),
                    None => "⚠️".to_owned(),
                })
                .collect(),
        })
        .collect()
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
        // Three kernels in the table, two objects in the objects table.
        let rows = md.lines().filter(|l| l.starts_with("| \\|")).count();
        assert_eq!(rows, 5, "{md}");
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
}
