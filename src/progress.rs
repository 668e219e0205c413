//! What the user sees while a matrix runs: one live line per kernel on a
//! terminal, plain timestamped lines in CI logs.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::report::{Target, TargetStatus};

pub struct Progress {
    bars: Option<(MultiProgress, Vec<ProgressBar>)>,
    ids: Vec<String>,
}

impl Progress {
    pub fn new(ids: Vec<String>) -> Progress {
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
        TargetStatus::Fail => "FAIL",
        TargetStatus::InfraError => "INFRA ERROR",
    }
}

fn summary_line(t: &Target) -> String {
    let verdict = verdict(t.status);
    let class = t
        .classification
        .as_ref()
        .map(|c| format!(" {}: {}", c.code.as_str(), c.reason))
        .unwrap_or_default();
    format!(
        "{verdict} in {:.1} s{class}",
        t.timing_ms.total as f64 / 1000.0
    )
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
                    .map(|c| c.code.as_str().to_owned())
                    .unwrap_or_default(),
                format!("{:.1} s", t.timing_ms.total as f64 / 1000.0),
            ]
        })
        .collect();
    crate::table::render(["KERNEL", "RELEASE", "VERDICT", "CLASS", "TIME"], &rows)
}
