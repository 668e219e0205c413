//! The Markdown of the check run, the PR comment and the job summary, each
//! cut to fit GitHub's size caps without breaking a table row or a code
//! block: whole pieces are dropped from the end, and a note points to the
//! JSON artifact for the rest.

use minijinja::{context, Environment, Value};

use super::compare::{label, Baseline, Change, Results};
use super::grid;
use super::trend::PassRate;
use crate::report::markdown;
use crate::report::{Mode, Report, TargetStatus};

const GITHUB_TEMPLATE: &str = include_str!("../../templates/github.md.j2");

/// Check run `output.summary` and `output.text` are capped at 65,535
/// characters each; we count bytes, which are never fewer.
pub const CHECK_RUN_CAP: usize = 65_535;
/// Issue and pull-request comment bodies.
pub const COMMENT_CAP: usize = 65_536;
/// A step's job summary is capped at 1 MiB.
pub const STEP_SUMMARY_CAP: usize = 1024 * 1024;
/// The agent keeps 4 KiB of each output stream; a report from elsewhere
/// may keep more, which must not crowd every other kernel out of a comment.
const TAIL_CAP: usize = 4096;

pub struct View<'a> {
    env: Environment<'static>,
    report: Report,
    baseline: &'a Baseline,
    check_name: &'a str,
    link: Option<String>,
    /// Where report.html is (its own artifact).
    page: Option<String>,
    /// The pass rate over the base branch's runs and this one, oldest first.
    trend: Vec<PassRate>,
}

impl<'a> View<'a> {
    /// `link` is where the full report is: the artifact or the workflow run.
    pub fn new(
        report: &Report,
        baseline: &'a Baseline,
        check_name: &'a str,
        link: Option<&str>,
    ) -> View<'a> {
        let mut env = markdown::environment();
        env.add_template("github", GITHUB_TEMPLATE)
            .expect("github template parses");
        View {
            env,
            report: clip_tails(report),
            baseline,
            check_name,
            link: link.and_then(safe_link),
            page: None,
            trend: Vec::new(),
        }
    }

    /// Links report.html from the comment, summaries and footers.
    pub fn with_page(mut self, page: Option<&str>) -> Self {
        self.page = page.and_then(safe_link);
        self
    }

    /// A chart of `trend` in the comment and job summary, when it has a
    /// base-branch run besides this one.
    pub fn with_trend(mut self, trend: Vec<PassRate>) -> Self {
        self.trend = trend;
        self
    }

    /// The check run's title: the counts, and regressions if any.
    pub fn title(&self) -> String {
        let s = &self.report.summary;
        let mut title = format!(
            "{} passed, {} failed, {} infrastructure errors",
            s.passed, s.failed, s.infra_errors
        );
        match self.baseline.count(Change::Regressed) {
            0 => {}
            1 => title.push_str(", 1 regression"),
            n => title.push_str(&format!(", {n} regressions")),
        }
        title
    }

    /// The sticky comment: `marker` first, so it can be found again.
    pub fn comment(&self, marker: &str) -> String {
        self.full(Some(marker), COMMENT_CAP)
    }

    pub fn job_summary(&self) -> String {
        self.full(None, STEP_SUMMARY_CAP)
    }

    /// The comment without its marker: the `markdown` step output, for
    /// workflows that post it somewhere else.
    pub fn markdown(&self) -> String {
        self.full(None, COMMENT_CAP)
    }

    /// The check run's summary: the comparison, the matrix table and, for
    /// objects, their grid.
    pub fn check_summary(&self) -> String {
        let head = [self.heading(), self.baseline_text()];
        let mut blocks = self.table_blocks();
        if self.report.mode == Mode::Artifact {
            blocks = self.around_grid(&head, blocks, Vec::new(), CHECK_RUN_CAP);
        }
        self.fit(&head, &blocks, &self.footer(), CHECK_RUN_CAP)
    }

    /// The check run's text: the results for later comparison (first, so no
    /// cut can lose them), then what went wrong on each kernel.
    pub fn check_text(&self) -> String {
        let results = Results::of(&self.report).embed();
        let failures = if self.report.mode == Mode::Artifact {
            let mut blocks = self.group_blocks();
            blocks.extend(self.unchecked_blocks());
            blocks
        } else {
            self.failure_blocks()
        };
        if failures.is_empty() {
            return format!("{results}\n\nEvery kernel passed.\n");
        }
        self.fit(&[results], &failures, &self.footer(), CHECK_RUN_CAP)
    }

    fn full(&self, marker: Option<&str>, cap: usize) -> String {
        let head: Vec<String> = marker
            .map(str::to_owned)
            .into_iter()
            .chain([self.heading(), self.baseline_text(), self.trend_chart()])
            .collect();
        let mut blocks = self.table_blocks();
        if self.report.mode != Mode::Artifact {
            blocks.extend(self.failure_blocks());
            blocks.push(self.preflight_block());
            return self.fit(&head, &blocks, &self.footer(), cap);
        }
        let mut rest = self.group_blocks();
        rest.extend(self.unchecked_blocks());
        rest.push(self.preflight_block());
        let blocks = self.around_grid(&head, blocks, rest, cap);
        self.fit(&head, &blocks, &self.footer(), cap)
    }

    /// `before`, the object grid, then `after`; the grid's passing rows
    /// counted in one row when the grid would not fit in `cap` with `head`
    /// and `before` (what comes after it is cut first).
    fn around_grid(
        &self,
        head: &[String],
        before: Vec<String>,
        after: Vec<String>,
        cap: usize,
    ) -> Vec<String> {
        let with = |collapse: bool| -> Vec<String> {
            let mut blocks = before.clone();
            blocks.extend(self.grid_blocks(collapse));
            blocks.extend(after.iter().cloned());
            blocks
        };
        let grid = self.grid_blocks(false);
        let size: usize = head
            .iter()
            .chain(&before)
            .chain(&grid)
            .map(String::len)
            .sum();
        let reserve = self.footer().len() + self.truncated(grid.len() + after.len()).len();
        with(size + reserve > cap)
    }

    /// The object x kernel grid: its header, then a row per object, failing
    /// ones first; with `collapse`, the passing ones as one counted row.
    fn grid_blocks(&self, collapse: bool) -> Vec<String> {
        let rows = grid::rows(&self.report);
        if rows.is_empty() {
            return Vec::new();
        }
        let row = |r: &grid::Row| {
            let line = self.call("github", "grid_row", &[Value::from_serialize(r)]);
            format!("{}\n", line.trim_end())
        };
        let header = self.call(
            "github",
            "grid_header",
            &[Value::from_serialize(&self.report)],
        );
        let mut blocks = vec![format!("\n{}\n", header.trim_end())];
        let passing = rows.iter().filter(|r| r.passing).count();
        let shown = rows.iter().filter(|r| !collapse || !r.passing);
        blocks.extend(shown.map(row));
        if collapse && passing > 0 {
            let width = Value::from(self.report.targets.len());
            let more = self.call("github", "grid_more", &[Value::from(passing), width]);
            blocks.push(format!("{}\n", more.trim_end()));
        }
        blocks
    }

    /// Each distinct failure once (`grid::groups`), then each reason for a
    /// partial check; the first of each with its heading.
    fn group_blocks(&self) -> Vec<String> {
        let groups = grid::groups(&self.report);
        groups
            .iter()
            .enumerate()
            .map(|(i, g)| {
                let first = i == 0 || groups[i - 1].partial != g.partial;
                let args = [Value::from_serialize(g), Value::from(first)];
                format!("\n{}\n", self.call("github", "group", &args).trim_end())
            })
            .collect()
    }

    /// The kernels that could not be checked at all, each with why.
    fn unchecked_blocks(&self) -> Vec<String> {
        self.report
            .targets
            .iter()
            .filter(|t| t.status == TargetStatus::InfraError)
            .map(|t| {
                let details = self.call("report_parts", "failure", &[Value::from_serialize(t)]);
                format!("\n{}\n", details.trim_end())
            })
            .collect()
    }

    /// The preflight's agreement, wrong predictions and minimum kernels.
    fn preflight_block(&self) -> String {
        let p = Value::from_serialize(markdown::preflight(&self.report));
        format!(
            "\n{}\n",
            self.call("report_parts", "preflight", &[p]).trim_end()
        )
    }

    /// `head` (short, always kept), then as many `blocks` as fit in order,
    /// then `tail`, in at most `cap` bytes.
    fn fit(&self, head: &[String], blocks: &[String], tail: &str, cap: usize) -> String {
        let mut out = String::new();
        for h in head.iter().filter(|h| !h.is_empty()) {
            out.push_str(h.trim_end());
            out.push_str("\n\n");
        }
        let tail = format!("\n{}\n", tail.trim_end());
        // The note with the largest count is the longest it can be.
        let reserve = self.truncated(blocks.len()).len() + tail.len();
        let kept = blocks
            .iter()
            .scan(out.len(), |len, b| {
                *len += b.len();
                (*len + reserve <= cap).then_some(b)
            })
            .count();
        blocks[..kept].iter().for_each(|b| out.push_str(b));
        if kept < blocks.len() {
            out.push_str(&self.truncated(blocks.len() - kept));
        }
        out.push_str(&tail);
        out
    }

    fn heading(&self) -> String {
        self.call(
            "report_parts",
            "heading",
            &[Value::from_serialize(&self.report)],
        )
    }

    fn baseline_text(&self) -> String {
        let b = self.baseline;
        let ctx = match b {
            Baseline::Off => context! { kind => "off" },
            Baseline::Missing { base_sha, reason } => {
                context! { kind => "missing", base_sha, reason }
            }
            Baseline::Compared { base_sha, .. } => context! {
                kind => "compared",
                base_sha,
                regressed => b.regressed(),
                fixed => b.count(Change::Fixed),
                changed => b.count(Change::StatusChanged) + b.count(Change::ClassChanged),
                new => b.count(Change::Added),
                removed => b.count(Change::Removed),
                unchanged => b.count(Change::Unchanged),
                min_kernel => Value::from_serialize(b.min_kernel()),
            },
        };
        self.call("github", "baseline", &[ctx, Value::from(self.check_name)])
    }

    /// The table's header as one block, then one block per kernel's row.
    fn table_blocks(&self) -> Vec<String> {
        let changes = match self.baseline {
            Baseline::Compared { changes, .. } => Value::from_iter(
                changes
                    .iter()
                    .map(|k| (k.id.clone(), Value::from(label(k.change)))),
            ),
            _ => Value::from(()),
        };
        let table = self.call(
            "report_parts",
            "table",
            &[Value::from_serialize(&self.report), changes],
        );
        let mut lines = table.split_inclusive('\n').map(str::to_owned);
        let header: String = lines.by_ref().take(2).collect();
        std::iter::once(header).chain(lines).collect()
    }

    /// One block per kernel that did not pass, the first with the heading.
    fn failure_blocks(&self) -> Vec<String> {
        self.report
            .targets
            .iter()
            .filter(|t| t.status != TargetStatus::Pass)
            .enumerate()
            .map(|(i, t)| {
                let details = self.call("report_parts", "failure", &[Value::from_serialize(t)]);
                let heading = if i == 0 { "\n### Details\n" } else { "" };
                format!("{heading}\n{}\n", details.trim_end())
            })
            .collect()
    }

    /// A Mermaid line chart of the pass rate (GitHub draws it), or nothing
    /// without an earlier run to compare with.
    fn trend_chart(&self) -> String {
        if self.trend.len() < 2 {
            return String::new();
        }
        self.call("github", "trend", &[Value::from_serialize(&self.trend)])
    }

    fn links(&self) -> [Value; 2] {
        [
            Value::from(self.link.clone()),
            Value::from(self.page.clone()),
        ]
    }

    fn footer(&self) -> String {
        self.call("github", "footer", &self.links())
    }

    fn truncated(&self, omitted: usize) -> String {
        let [link, page] = self.links();
        let note = self.call("github", "truncated", &[Value::from(omitted), link, page]);
        format!("\n{}\n", note.trim_end())
    }

    fn call(&self, template: &str, name: &str, args: &[Value]) -> String {
        let template = self
            .env
            .get_template(template)
            .expect("github templates are registered");
        template
            .render_captured(())
            .and_then(|captured| captured.state().call_macro(name, args))
            .expect("github templates render")
    }
}

fn clip_tails(report: &Report) -> Report {
    let mut report = report.clone();
    for t in &mut report.targets {
        if let Some(console) = &mut t.console_tail {
            clip(console);
        }
        for check in &mut t.checks {
            for test in &mut check.functional.tests {
                clip(&mut test.outcome.stdout_tail);
                clip(&mut test.outcome.stderr_tail);
            }
            for program in check
                .validation
                .object
                .iter_mut()
                .flat_map(|o| &mut o.programs)
            {
                clip(&mut program.load.verifier_log_tail);
            }
        }
    }
    report
}

/// Keeps the last `TAIL_CAP` bytes, cut at a character boundary.
fn clip(text: &mut String) {
    if text.len() > TAIL_CAP {
        let mut start = text.len() - TAIL_CAP;
        while !text.is_char_boundary(start) {
            start += 1;
        }
        text.replace_range(..start, "…");
    }
}

/// A link goes into Markdown as `[..](link)`: only http(s) URLs, and
/// nothing that could end the link early.
fn safe_link(link: &str) -> Option<String> {
    let ok = (link.starts_with("https://") || link.starts_with("http://"))
        && !link
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "()<>\"'`[]\\".contains(c));
    ok.then(|| link.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::github::comment;
    use bpfcompat_testkit::{inert, reports};

    #[test]
    fn hostile_strings_stay_text_on_every_surface() {
        let report =
            serde_json::from_value::<crate::report::Report>(reports::hostile_json()).unwrap();
        let baseline = Baseline::Compared {
            base_sha: "2".repeat(40),
            changes: report
                .targets
                .iter()
                .map(|t| crate::results::compare::KernelDiff {
                    id: t.id.clone(),
                    change: Change::Regressed,
                    required: t.required,
                    base: None,
                    head: None,
                })
                .collect(),
            min_kernel: vec![crate::report::prediction::MinKernelChange {
                object: reports::HOSTILE.to_owned(),
                base: "5.8".to_owned(),
                head: "5.17".to_owned(),
                raised: true,
                because: vec![crate::report::prediction::Requirement {
                    what: reports::HOSTILE.to_owned(),
                    since: "5.17".to_owned(),
                    programs: vec![reports::HOSTILE.to_owned()],
                }],
            }],
        };
        let name = reports::HOSTILE;
        let view = View::new(
            &report,
            &baseline,
            name,
            Some("https://github.com/o/r/actions/runs/1"),
        );
        let marker = comment::marker(name);
        let comment = view.comment(&marker);
        assert!(comment.starts_with(&marker));
        assert_eq!(
            comment.matches("<!-- bpfcompat:matrix:").count(),
            1,
            "{comment}"
        );
        for (what, text) in [
            ("comment", comment.as_str()),
            ("check summary", &view.check_summary()),
            ("check text", &view.check_text()),
            ("job summary", &view.job_summary()),
            ("markdown output", &view.markdown()),
        ] {
            inert::assert_inert_markdown(what, text);
        }
        let missing = Baseline::Missing {
            base_sha: "2".repeat(40),
            reason: super::super::compare::MissingBase::NoCheckRun,
        };
        let view = View::new(&report, &missing, name, None);
        inert::assert_inert_markdown("no base", &view.job_summary());
    }

    /// Why a check was partial is in the comment too, once per reason,
    /// after the failures.
    #[test]
    fn partial_checks_are_grouped_by_why_their_attaches_were_skipped() {
        let mut report =
            serde_json::from_value::<crate::report::Report>(reports::hostile_json()).unwrap();
        for t in &mut report.targets {
            for c in &mut t.checks {
                c.status = crate::report::CheckStatus::Partial;
                c.classification = None;
                c.skipped = vec!["program tc: attach skipped: no clsact qdisc".into()];
            }
        }
        let groups = grid::groups(&report);
        assert_eq!(groups.len(), 1, "{groups:?}");
        assert!(groups[0].partial);
        let checked = report
            .targets
            .iter()
            .filter(|t| t.status != TargetStatus::InfraError && !t.checks.is_empty());
        assert_eq!(groups[0].kernels.len(), checked.count());
        let missing = Baseline::Missing {
            base_sha: "2".repeat(40),
            reason: super::super::compare::MissingBase::NoCheckRun,
        };
        let view = View::new(&report, &missing, "partial", None);
        let comment = view.comment(&comment::marker("partial"));
        assert!(comment.contains("### Partial checks"), "{comment}");
        assert!(
            comment.contains("#### ◐ skipped: program tc: attach skipped: no clsact qdisc"),
            "{comment}"
        );
        assert!(!comment.contains("### Failures"), "{comment}");
    }

    #[test]
    fn clipping_keeps_the_end() {
        let mut s = format!("{}end", "é".repeat(TAIL_CAP));
        clip(&mut s);
        assert!(s.len() <= TAIL_CAP + "…".len());
        assert!(s.starts_with('…') && s.ends_with("end"));
    }

    #[test]
    fn links_cannot_break_out_of_markdown() {
        assert!(safe_link("https://github.com/o/r/actions/runs/1/artifacts/2").is_some());
        assert!(safe_link("https://x/) [click](https://evil").is_none());
        assert!(safe_link("javascript:alert(1)").is_none());
    }
}
