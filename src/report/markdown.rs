//! Markdown rendering of a report, from the templates in `templates/`.
//!
//! Everything that comes from a guest, a matrix or a pull request goes
//! through `cell` or `codeblock`, so it cannot break the table, close a code
//! fence, inject HTML, make a link or mention anyone.

use minijinja::{context, AutoEscape, Environment};

use super::{Report, TargetStatus};

const REPORT_TEMPLATE: &str = include_str!("../../templates/report.md.j2");

/// A template environment with the escaping filters (`cell`, `codeblock`)
/// and the shared formatting ones (`secs`, `verdict`), for every Markdown
/// template we render.
pub(crate) fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_auto_escape_callback(|_| AutoEscape::None);
    env.add_filter("cell", cell);
    env.add_filter("codeblock", codeblock);
    env.add_filter("secs", |ms: u64| format!("{:.1} s", ms as f64 / 1000.0));
    env.add_filter("verdict", |status: String| verdict(&status).to_owned());
    env
}

pub fn render_markdown(report: &Report) -> String {
    let mut env = environment();
    env.add_template("report", REPORT_TEMPLATE)
        .expect("report template parses");
    let failures: Vec<_> = report
        .targets
        .iter()
        .filter(|t| t.status != TargetStatus::Pass)
        .collect();
    env.get_template("report")
        .and_then(|t| t.render(context! { report, failures }))
        .expect("report template renders")
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
    const MAX: usize = 160;
    let mut out = String::with_capacity(text.len());
    for (i, c) in text.chars().enumerate() {
        if i == MAX {
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
