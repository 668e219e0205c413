//! Markdown rendering of a report, from the templates in `templates/`.
//!
//! Everything that comes from a guest, a matrix or a pull request goes
//! through `cell` or `codeblock`, so it cannot break the table, close a code
//! fence, inject HTML, make a link or mention anyone.

use minijinja::value::{Value, ViaDeserialize};
use minijinja::{context, AutoEscape, Environment};

use super::{CheckStatus, Report, TargetStatus};

const REPORT_TEMPLATE: &str = include_str!("../../templates/report.md.j2");
const PARTS_TEMPLATE: &str = include_str!("../../templates/report_parts.md.j2");

/// The templates and filters a report renders with; other renderings of a
/// report (the GitHub check run and comment) add their templates to it and
/// import the macros of `report_parts`.
pub fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_auto_escape_callback(|_| AutoEscape::None);
    env.add_filter("cell", cell);
    env.add_filter("inline", inline);
    env.add_filter("codeblock", codeblock);
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
        .filter(|t| t.status != TargetStatus::Pass)
        .collect();
    env.get_template("report")
        .and_then(|t| t.render(context! { report, failures }))
        .expect("report template renders")
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
            name: c.artifact.name.clone(),
            cells: report
                .targets
                .iter()
                .map(|t| match t.checks.get(i) {
                    Some(c) if c.status == CheckStatus::Pass => "✅".to_owned(),
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
        "fail" => "❌ fail",
        _ => "⚠️ infra error",
    }
}

/// Escapes text for one Markdown table cell on one line.
pub fn cell(text: String) -> String {
    escape(&text, 160)
}

/// Escapes text for one line of prose (a reason, a hint): like a cell, but
/// not shortened.
pub fn inline(text: String) -> String {
    escape(&text, usize::MAX)
}

fn escape(text: &str, max_chars: usize) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, c) in text.chars().enumerate() {
        if i == max_chars {
            out.push('…');
            break;
        }
        match c {
            '\n' | '\r' | '\t' => out.push(' '),
            '|' | '\\' | '`' | '*' | '_' | '[' | ']' | '#' | '~' => {
                out.push('\\');
                out.push(c);
            }
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            // A zero-width space after @ stops GitHub from mentioning.
            '@' => out.push_str("@\u{200b}"),
            c if c.is_control() => out.push('�'),
            c => out.push(c),
        }
    }
    out
}

/// Wraps text in a fenced code block whose fence is longer than any run of
/// backticks inside, so the text cannot close it.
pub fn codeblock(text: String) -> String {
    let longest = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest.max(2) + 1);
    let body = text.trim_end_matches('\n');
    format!("{fence}text\n{body}\n{fence}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_cannot_break_tables_or_mention() {
        let c = cell("a|b\n<img src=x> @octocat [x](y) `z`".into());
        assert!(!c.contains('\n'));
        assert!(!c.contains("<img"));
        assert!(c.contains("\\|"));
        assert!(!c.contains("@octocat"));
        assert!(c.contains("\\[x\\]"));
    }

    #[test]
    fn code_blocks_cannot_be_escaped() {
        let b = codeblock("x\n````\n</details>\n".into());
        assert!(b.starts_with("`````text\n"));
        assert!(b.ends_with("\n`````"));
    }
}
