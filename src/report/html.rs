//! `report.html`: one self-contained page of a run — the object × kernel
//! grid with each cell's evidence, per-kernel timing and the history of the
//! matrix as inline SVG drawn here, and the run's provenance. Nothing is
//! fetched: inline CSS and script, and a Content-Security-Policy that
//! forbids the network. Every string from an object, a kernel or a command
//! goes through the template's HTML escaping (minijinja's, for `.html`).

use minijinja::{context, Environment, Value};
use serde::Serialize;

use super::markdown::{checks_of_run, row_name};
use super::{Check, CheckStatus, Report, TargetStatus};
use crate::escape;

const TEMPLATE: &str = include_str!("../../templates/report.html.j2");

/// Characters of a name or message shown; of a log, kept in the page (the
/// JSON report is the full record).
const NAME_CHARS: usize = 300;
const LOG_CHARS: usize = 4096;

/// One cell: an object on a kernel.
#[derive(Serialize)]
struct Cell {
    /// `pass`, `partial`, `fail`, `unchecked`: the CSS class and the filter.
    status: &'static str,
    symbol: &'static str,
    class: Option<String>,
    reason: Option<String>,
    hint: Option<String>,
    /// Why a partial check's attaches were skipped, and warnings.
    notes: Vec<String>,
    log: Option<String>,
    predicted: Option<String>,
    duration_ms: Option<u64>,
}

#[derive(Serialize)]
struct Row {
    object: String,
    cells: Vec<Cell>,
}

#[derive(Serialize)]
struct Kernel {
    id: String,
    release: String,
    arch: String,
    required: bool,
    status: &'static str,
    sha256: String,
    source: String,
    boot_ms: u64,
    check_ms: u64,
    total_ms: u64,
}

/// One recorded run of the same artifact and matrix, for the history chart:
/// how many kernels passed, were partial and failed.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryPoint {
    /// The run's version, or when it was recorded.
    pub label: String,
    pub pass: usize,
    pub partial: usize,
    pub fail: usize,
}

/// The page of `report`; `history`, oldest first, the runs the history
/// chart draws (this run last).
pub fn render_html(report: &Report, history: &[HistoryPoint]) -> String {
    let mut env = Environment::new();
    // For the report's own strings: controls replaced, cut; then escaped.
    env.add_filter("shown", |t: String| escape::shown(&t, NAME_CHARS));
    env.add_template("report.html", TEMPLATE)
        .expect("report.html template parses");
    let order = by_arch(report);
    let kernels: Vec<Kernel> = order.iter().map(|&i| kernel(&report.targets[i])).collect();
    let rows = rows(report, &order);
    let mut classes: Vec<String> = rows
        .iter()
        .flat_map(|r| r.cells.iter().filter_map(|c| c.class.clone()))
        .collect();
    classes.sort();
    classes.dedup();
    let page = context! {
        title => escape::shown(&report.artifact.name, NAME_CHARS),
        report => report,
        kernels => kernels,
        rows => rows,
        classes => classes,
        arches => arch_groups(&kernels),
        timing_svg => Value::from_safe_string(timing_svg(report, &order)),
        history_svg => Value::from_safe_string(history_svg(history)),
        history_runs => history.len(),
    };
    env.get_template("report.html")
        .and_then(|t| t.render(page))
        .expect("report.html renders")
}

/// The kernels' columns: the matrix's order, grouped by architecture (the
/// first kernel's first) when the matrix mixes them.
fn by_arch(report: &Report) -> Vec<usize> {
    let arch = |i: usize| report.targets[i].kernel.arch.as_deref();
    let mut firsts: Vec<Option<&str>> = Vec::new();
    for i in 0..report.targets.len() {
        if !firsts.contains(&arch(i)) {
            firsts.push(arch(i));
        }
    }
    let mut order: Vec<usize> = (0..report.targets.len()).collect();
    order.sort_by_key(|&i| firsts.iter().position(|a| *a == arch(i)));
    order
}

/// One header per architecture over its kernels' columns, `(arch,
/// columns)`; none when every kernel has the same.
fn arch_groups(kernels: &[Kernel]) -> Vec<(String, usize)> {
    let mut groups: Vec<(String, usize)> = Vec::new();
    for k in kernels {
        match groups.last_mut() {
            Some((arch, n)) if *arch == k.arch => *n += 1,
            _ => groups.push((k.arch.clone(), 1)),
        }
    }
    if groups.len() < 2 {
        groups.clear();
    }
    groups
}

fn status_word(s: TargetStatus) -> &'static str {
    match s {
        TargetStatus::Pass => "pass",
        TargetStatus::Partial => "partial",
        TargetStatus::Fail => "fail",
        TargetStatus::InfraError => "unchecked",
    }
}

fn kernel(t: &super::Target) -> Kernel {
    Kernel {
        id: escape::shown(&t.id, NAME_CHARS),
        release: escape::shown(t.kernel.release.as_deref().unwrap_or("—"), NAME_CHARS),
        arch: escape::shown(t.kernel.arch.as_deref().unwrap_or("—"), NAME_CHARS),
        required: t.required,
        status: status_word(t.status),
        sha256: escape::shown(t.kernel.sha256.as_deref().unwrap_or("—"), NAME_CHARS),
        source: escape::shown(&t.kernel.source, NAME_CHARS),
        boot_ms: t.timing_ms.boot,
        check_ms: t.timing_ms.check,
        total_ms: t.timing_ms.total,
    }
}

fn rows(report: &Report, order: &[usize]) -> Vec<Row> {
    checks_of_run(report)
        .iter()
        .enumerate()
        .map(|(i, c)| Row {
            object: escape::shown(&row_name(c), NAME_CHARS),
            cells: order
                .iter()
                .map(|&k| cell(report.targets[k].checks.get(i)))
                .collect(),
        })
        .collect()
}

fn cell(check: Option<&Check>) -> Cell {
    let Some(c) = check else {
        return Cell {
            status: "unchecked",
            symbol: "⚠",
            class: None,
            reason: Some("this kernel could not be checked".into()),
            hint: None,
            notes: Vec::new(),
            log: None,
            predicted: None,
            duration_ms: None,
        };
    };
    let (status, symbol) = match c.status {
        CheckStatus::Pass => ("pass", "✅"),
        CheckStatus::Partial => ("partial", "◐"),
        CheckStatus::Fail => ("fail", "❌"),
    };
    let shown = |t: &str| escape::shown(t, NAME_CHARS);
    let object = c.validation.object.as_ref();
    Cell {
        status,
        symbol,
        class: c
            .classification
            .as_ref()
            .map(|cl| cl.code.as_str().to_owned()),
        reason: c.classification.as_ref().map(|cl| shown(&cl.reason)),
        hint: c.classification.as_ref().map(|cl| shown(&cl.hint)),
        notes: c
            .skipped
            .iter()
            .chain(&c.warnings)
            .map(|n| shown(n))
            .collect(),
        log: object
            .and_then(|o| {
                o.programs
                    .iter()
                    .find(|p| !p.load.verifier_log_tail.is_empty())
            })
            .map(|p| escape::shown(&p.load.verifier_log_tail, LOG_CHARS)),
        predicted: c.prediction.as_ref().and_then(|p| {
            let reasons: Vec<&str> = p.obstacles.iter().map(|o| o.reason.as_str()).collect();
            (!reasons.is_empty()).then(|| shown(&reasons.join("; ")))
        }),
        duration_ms: object.map(|o| o.duration_ms),
    }
}

/// Per kernel, a bar of its boot and one of its check, in seconds.
fn timing_svg(report: &Report, order: &[usize]) -> String {
    let bar_h = 14;
    let row_h = 2 * bar_h + 10;
    let label_w = 180;
    let width = 640;
    let max = report
        .targets
        .iter()
        .map(|t| t.timing_ms.total.max(t.timing_ms.boot + t.timing_ms.check))
        .max()
        .unwrap_or(1)
        .max(1);
    let scale = |ms: u64| (ms * (width - label_w - 60) as u64 / max) as usize;
    let height = row_h * report.targets.len() + 20;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" aria-labelledby=\"timing-title\" \
         width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\">\
         <title id=\"timing-title\">Boot and check time per kernel</title>"
    );
    for (i, t) in order.iter().map(|&k| &report.targets[k]).enumerate() {
        let y = 10 + i * row_h;
        let id = attr(&t.id);
        svg += &format!(
            "<text x=\"0\" y=\"{}\" class=\"label\">{id}</text>",
            y + bar_h
        );
        for (j, (what, ms)) in [("boot", t.timing_ms.boot), ("check", t.timing_ms.check)]
            .into_iter()
            .enumerate()
        {
            let by = y + j * bar_h;
            svg += &format!(
                "<rect class=\"bar {what}\" data-kernel=\"{id}\" x=\"{label_w}\" y=\"{by}\" \
                 width=\"{}\" height=\"{}\"><title>{id}: {what} {:.1} s</title></rect>\
                 <text x=\"{}\" y=\"{}\" class=\"value\">{what} {:.1} s</text>",
                scale(ms).max(1),
                bar_h - 2,
                ms as f64 / 1000.0,
                label_w + scale(ms) + 4,
                by + bar_h - 3,
                ms as f64 / 1000.0
            );
        }
    }
    svg + "</svg>"
}

/// One series of the history chart: its count in a run.
type Count = fn(&HistoryPoint) -> usize;

/// Kernels passed, partial and failed in each recorded run, oldest first,
/// one mark per run; the last run (this one) marked.
fn history_svg(history: &[HistoryPoint]) -> String {
    if history.is_empty() {
        return String::new();
    }
    let (width, height, pad) = (640usize, 200usize, 30usize);
    let most = history
        .iter()
        .map(|p| p.pass + p.partial + p.fail)
        .max()
        .unwrap_or(1)
        .max(1);
    let x = |i: usize| pad + i * (width - 2 * pad) / history.len().saturating_sub(1).max(1);
    let y = |n: usize| height - pad - n * (height - 2 * pad) / most;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" aria-labelledby=\"history-title\" \
         width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\">\
         <title id=\"history-title\">Kernels passed, partial and failed in the last {} runs</title>",
        history.len()
    );
    let series: [(&str, Count); 3] = [
        ("pass", |p| p.pass),
        ("partial", |p| p.partial),
        ("fail", |p| p.fail),
    ];
    for (name, count) in series {
        let points: Vec<String> = history
            .iter()
            .enumerate()
            .map(|(i, p)| format!("{},{}", x(i), y(count(p))))
            .collect();
        svg += &format!(
            "<polyline class=\"line {name}\" fill=\"none\" points=\"{}\"/>",
            points.join(" ")
        );
        for (i, p) in history.iter().enumerate() {
            let current = if i + 1 == history.len() {
                " current"
            } else {
                ""
            };
            svg += &format!(
                "<circle class=\"mark {name}{current}\" cx=\"{}\" cy=\"{}\" r=\"4\">\
                 <title>{}: {} {name}</title></circle>",
                x(i),
                y(count(p)),
                attr(&p.label),
                count(p)
            );
        }
    }
    svg + "</svg>"
}

/// Text for inside SVG markup written here (not through the template),
/// escaped as the template escapes.
fn attr(text: &str) -> String {
    escape::shown(text, NAME_CHARS)
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
        .replace('/', "&#x2f;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use bpfcompat_testkit::reports;

    fn hostile() -> Report {
        serde_json::from_value(reports::hostile_json()).unwrap()
    }

    /// The tags a page may have: the template's own.
    const TAGS: [&str; 34] = [
        "html",
        "head",
        "meta",
        "title",
        "style",
        "body",
        "header",
        "h1",
        "h2",
        "p",
        "main",
        "div",
        "label",
        "select",
        "option",
        "input",
        "span",
        "table",
        "thead",
        "tbody",
        "tr",
        "th",
        "td",
        "details",
        "summary",
        "strong",
        "pre",
        "figure",
        "figcaption",
        "svg",
        "rect",
        "text",
        "dl",
        "script",
    ];
    const SVG_AND_LIST: [&str; 6] = ["polyline", "circle", "dt", "dd", "br", "!DOCTYPE"];

    #[test]
    fn hostile_strings_render_as_text_and_nothing_is_fetched() {
        let mut report = hostile();
        // A name of a megabyte: shown cut, the page stays small.
        report.targets[0].checks[0].artifact.name = "x".repeat(1 << 20);
        let history = [HistoryPoint {
            label: reports::HOSTILE.into(),
            pass: 1,
            partial: 0,
            fail: 2,
        }];
        let page = render_html(&report, &history);
        assert!(page.len() < 200_000, "{} bytes", page.len());
        for (i, _) in page.match_indices('<') {
            let tag = page[i + 1..]
                .trim_start_matches('/')
                .split(|c: char| !c.is_ascii_alphanumeric() && c != '!')
                .next()
                .unwrap();
            assert!(
                TAGS.contains(&tag) || SVG_AND_LIST.contains(&tag),
                "a tag the template does not write: <{tag} at {}",
                &page[i..(i + 80).min(page.len())]
            );
        }
        assert_eq!(page.matches("<script>").count(), 1, "only ours");
        assert!(
            !page.contains("onload="),
            "no attribute came in: {page:.2000}"
        );
        assert!(!page.contains("\u{1b}") && !page.contains("\u{202e}") && !page.contains('\0'));
        for attr in ["src=", "href=", "url(", "@import"] {
            assert!(!page.contains(attr), "{attr}");
        }
        assert!(page.contains("content=\"default-src 'none';"));
        assert!(
            page.contains("&lt;&#x2f;details&gt;&lt;details&gt;&lt;script&gt;"),
            "shown as text"
        );
        // The only URL is SVG's namespace: the hostile one is escaped text.
        assert_eq!(
            page.matches("://").count(),
            page.matches("http://www.w3.org/2000/svg").count()
        );
        assert!(page.contains("https:&#x2f;&#x2f;e.ex"));
    }

    #[test]
    fn the_grid_has_a_row_per_object_and_a_column_per_kernel() {
        let report = hostile();
        let page = render_html(&report, &[]);
        let rows = page.matches("<tr data-object=").count();
        assert_eq!(rows, checks_of_run(&report).len());
        let cells = page.matches("<td class=").count();
        assert_eq!(cells, rows * report.targets.len());
        assert!(page.contains("No earlier runs of this artifact"));
        // One bar per kernel for its boot and one for its check.
        assert_eq!(
            page.matches("<rect class=\"bar ").count(),
            2 * report.targets.len()
        );
    }

    #[test]
    fn a_mixed_matrix_groups_its_kernels_by_architecture() {
        let mut report = hostile();
        let mut arm = report.targets[0].clone();
        arm.id = "arm-6.1".into();
        arm.kernel.arch = Some("aarch64".into());
        arm.checks[0].status = CheckStatus::Pass;
        report.targets.insert(0, arm);
        let x86 = report.targets.len() - 1;
        for t in &mut report.targets[1..] {
            t.kernel.arch = Some("x86_64".into());
        }
        report.targets.push(report.targets[0].clone());
        report.targets.last_mut().unwrap().id = "arm-5.10".into();
        let page = render_html(&report, &[]);
        assert!(page
            .contains("<th scope=\"colgroup\" colspan=\"2\" data-group=\"aarch64\">aarch64</th>"));
        assert!(page.contains(&format!(
            "<th scope=\"colgroup\" colspan=\"{x86}\" data-group=\"x86_64\">x86_64</th>"
        )));
        // Both arm64 kernels come first, in the matrix's order.
        let columns: Vec<&str> = page
            .split("<th scope=\"col\" data-kernel=")
            .skip(1)
            .map(|h| h.split('>').nth(1).unwrap().split('<').next().unwrap())
            .collect();
        assert_eq!(columns[..2], ["arm-6.1", "arm-5.10"]);
        let first_row = page.split("<tr data-object=").nth(1).unwrap();
        assert!(first_row
            .split("<td ")
            .nth(2)
            .unwrap()
            .starts_with("class=\"pass\""));
        // A matrix of one architecture has no group header.
        assert!(!render_html(&hostile(), &[]).contains("scope=\"colgroup\""));
    }

    #[test]
    fn the_history_chart_has_a_mark_per_run_and_rings_this_one() {
        let points: Vec<HistoryPoint> = (0..5)
            .map(|i| HistoryPoint {
                label: format!("v{i}"),
                pass: i,
                partial: 0,
                fail: 5 - i,
            })
            .collect();
        let svg = history_svg(&points);
        assert_eq!(svg.matches("<circle class=\"mark pass").count(), 5);
        assert_eq!(svg.matches("<circle class=\"mark fail").count(), 5);
        assert_eq!(svg.matches(" current\"").count(), 3, "one per series");
        assert_eq!(history_svg(&[]), "");
    }
}
