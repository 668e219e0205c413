//! What the user sees while a matrix runs: one live line per kernel on a
//! terminal, plain timestamped lines in CI logs.

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::escape;
use crate::kernel::{ProgressFn, Transfer};
use crate::report::{Target, TargetStatus};

pub struct Progress {
    bars: Option<(MultiProgress, Vec<ProgressBar>)>,
    /// As shown: one inert line each.
    ids: Vec<String>,
}

impl Progress {
    pub fn new(ids: Vec<String>) -> Progress {
        let ids: Vec<String> = ids.iter().map(|id| escape::plain_line(id)).collect();
        let bars = std::io::stderr().is_terminal().then(|| {
            let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
            let width = ids.iter().map(String::len).max().unwrap_or(0);
            let style = ProgressStyle::with_template(&format!(
                "{{spinner}} {{prefix:{width}}} {{elapsed:>4}} {{msg}}"
            ))
            .expect("progress template parses");
            let bars = ids
                .iter()
                .map(|id| {
                    let bar = multi.add(ProgressBar::new_spinner());
                    bar.set_style(style.clone());
                    bar.set_prefix(id.clone());
                    bar.set_message("waiting");
                    bar.enable_steady_tick(Duration::from_millis(120));
                    bar
                })
                .collect();
            (multi, bars)
        });
        Progress { bars, ids }
    }

    pub fn phase(&self, index: usize, phase: &str) {
        match &self.bars {
            Some((_, bars)) => bars[index].set_message(phase.to_owned()),
            None => eprintln!("[{}] {phase}", self.ids[index]),
        }
    }

    /// Shows a kernel download's bytes and rate on its line; on a terminal
    /// only (CI logs get the phases, not a line every 200 ms).
    pub fn download(&self, index: usize) -> Option<ProgressFn> {
        let (_, bars) = self.bars.as_ref()?;
        let bar = bars[index].clone();
        let started = Instant::now();
        Some(Arc::new(move |t: Transfer| {
            bar.set_message(format!(
                "fetching kernel: {}",
                transfer_line(t, started.elapsed())
            ))
        }))
    }

    pub fn done(&self, index: usize, target: &Target) {
        let line = summary_line(target);
        match &self.bars {
            Some((_, bars)) => bars[index].finish_with_message(line),
            None => eprintln!("[{}] {line}", self.ids[index]),
        }
    }
}

/// A status as printed on a terminal: failures in capitals so they stand out.
pub fn verdict(status: TargetStatus) -> &'static str {
    match status {
        TargetStatus::Pass => "pass",
        TargetStatus::Partial => "partial",
        TargetStatus::Fail => "FAIL",
        TargetStatus::InfraError => "INFRA ERROR",
    }
}

fn summary_line(t: &Target) -> String {
    let verdict = verdict(t.status);
    let class = t
        .classification
        .as_ref()
        .map(|c| format!(" {}: {}", c.code.as_str(), escape::plain_line(&c.reason)))
        .unwrap_or_default();
    format!(
        "{verdict} in {:.1} s{class}",
        t.timing_ms.total as f64 / 1000.0
    )
}

/// "12.3 MiB of 50.0 MiB, 3.1 MiB/s".
pub fn transfer_line(t: Transfer, elapsed: Duration) -> String {
    let rate = t.done as f64 / elapsed.as_secs_f64().max(0.001);
    let total = t
        .total
        .map(|n| format!(" of {}", human_bytes(n)))
        .unwrap_or_default();
    format!(
        "{}{total}, {}/s",
        human_bytes(t.done),
        human_bytes(rate as u64)
    )
}

/// Bytes for people: "512 B", "3.4 KiB", "12.3 MiB", "1.2 GiB".
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// The final table, for stdout.
pub fn table(targets: &[Target]) -> String {
    let rows: Vec<[String; 5]> = targets
        .iter()
        .map(|t| {
            [
                format!("{}{}", t.id, if t.required { "" } else { " (optional)" }),
                t.kernel.release.clone().unwrap_or_else(|| "-".into()),
                verdict(t.status).to_owned(),
                t.classification
                    .as_ref()
                    .map(|c| match c.other_classes {
                        0 => c.code.as_str().to_owned(),
                        n => format!("{} +{n}", c.code.as_str()),
                    })
                    .unwrap_or_default(),
                format!("{:.1} s", t.timing_ms.total as f64 / 1000.0),
            ]
        })
        .collect();
    crate::term::table::render(["KERNEL", "RELEASE", "VERDICT", "CLASS", "TIME"], &rows)
}

/// One line per skipped attach and per warning, under the table: what a
/// `pass` or `partial` does not show by itself.
pub fn notes(targets: &[Target]) -> String {
    let mut out = String::new();
    for t in targets {
        for c in &t.checks {
            let lines = c
                .skipped
                .iter()
                .map(|s| ("attach skipped", s))
                .chain(c.warnings.iter().map(|w| ("warning", w)));
            for (what, text) in lines {
                out.push_str(&escape::plain_line(&format!(
                    "{} {}: {what}: {text}",
                    t.id, c.artifact.name
                )));
                out.push('\n');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use bpfcompat_testkit::{inert, reports};

    #[test]
    fn hostile_names_cannot_drive_the_terminal() {
        let report =
            serde_json::from_value::<crate::report::Report>(reports::hostile_json()).unwrap();
        let table = table(&report.targets);
        inert::assert_inert_plain("table", &table);
        let notes = notes(&report.targets);
        inert::assert_inert_plain("notes", &notes);
        let expected: usize = report
            .targets
            .iter()
            .flat_map(|t| &t.checks)
            .map(|c| c.skipped.len() + c.warnings.len())
            .sum();
        assert!(expected > 0);
        assert_eq!(notes.lines().count(), expected, "one line each: {notes}");
        assert_eq!(table.lines().count(), 1 + report.targets.len(), "{table}");
        for t in &report.targets {
            let line = summary_line(t);
            inert::assert_inert_plain("progress", &line);
            assert_eq!(line.lines().count(), 1);
        }
        let ids = Progress::new(report.targets.iter().map(|t| t.id.clone()).collect()).ids;
        ids.iter()
            .for_each(|id| inert::assert_inert_plain("id", id));
    }
}
