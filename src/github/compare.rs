//! Comparing with the base branch: every check run we publish carries its
//! per-kernel verdicts in a hidden HTML comment, and a pull request's run
//! reads them back from the check run of the same name on its base commit.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::report::{Report, TargetStatus};

const OPEN: &str = "<!-- bpfcompat:results ";
const CLOSE: &str = " -->";

/// What a run found, per kernel id: the part of a report worth comparing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Results {
    /// Bumped if the shape changes, so an old base is "no result", not junk.
    v: u32,
    kernels: BTreeMap<String, TargetStatus>,
}

impl Results {
    pub fn of(report: &Report) -> Results {
        Results {
            v: 1,
            kernels: report
                .targets
                .iter()
                .map(|t| (t.id.clone(), t.status))
                .collect(),
        }
    }

    /// The hidden comment to embed. Kernel ids come from the matrix: `>`
    /// is written as a JSON escape so no id can close the comment early, and
    /// `<`, `&` and `@` too, so nothing in it even looks like HTML or a
    /// mention, and everything beyond printable ASCII (DEL, C1 controls,
    /// bidirectional overrides). They occur only inside JSON strings.
    pub fn embed(&self) -> String {
        let json = serde_json::to_string(self).expect("results serialise");
        let mut out = String::with_capacity(json.len());
        for c in json.chars() {
            if matches!(c, '<' | '>' | '&' | '@') || !(' '..='~').contains(&c) {
                let mut units = [0; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            } else {
                out.push(c);
            }
        }
        format!("{OPEN}{out}{CLOSE}")
    }

    /// The results embedded in a check run's text, if it has any we read.
    pub fn extract(text: &str) -> Option<Results> {
        let start = text.find(OPEN)? + OPEN.len();
        let len = text[start..].find(CLOSE)?;
        serde_json::from_str::<Results>(&text[start..start + len])
            .ok()
            .filter(|r| r.v == 1)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// Passed on the base, does not now.
    Regressed,
    /// Did not pass on the base, does now.
    Fixed,
    /// Not in the base's matrix.
    New,
    Unchanged,
}

impl Change {
    /// The word in the table's "vs base" column.
    pub fn label(self) -> &'static str {
        match self {
            Change::Regressed => "🔻 regressed",
            Change::Fixed => "✅ fixed",
            Change::New => "🆕 new",
            Change::Unchanged => "unchanged",
        }
    }
}

/// Each kernel of `report` against `base`, in the report's order.
pub fn compare(report: &Report, base: &Results) -> Vec<(String, Change)> {
    report
        .targets
        .iter()
        .map(|t| {
            (
                t.id.clone(),
                change(base.kernels.get(&t.id).copied(), t.status),
            )
        })
        .collect()
}

fn change(base: Option<TargetStatus>, now: TargetStatus) -> Change {
    let pass = |s| s == TargetStatus::Pass;
    match base {
        None => Change::New,
        Some(b) if pass(b) && !pass(now) => Change::Regressed,
        Some(b) if !pass(b) && pass(now) => Change::Fixed,
        Some(_) => Change::Unchanged,
    }
}

/// What the comparison with the base branch came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Baseline {
    /// Not a pull request, or `--compare-base false`: nothing to say.
    Off,
    /// Said plainly in the comment and check run; not an error.
    Missing {
        base_sha: String,
        reason: MissingBase,
    },
    Compared {
        base_sha: String,
        changes: Vec<(String, Change)>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MissingBase {
    /// The base commit has no check run of this name with results: the
    /// workflow does not run on the base branch, or has not yet.
    NoCheckRun,
    NoToken,
    /// The API refused or failed; the job log has a warning saying why.
    Unreadable,
}

impl Baseline {
    /// Kernel ids that passed on the base and do not now.
    pub fn regressed(&self) -> Vec<&str> {
        self.with(Change::Regressed).collect()
    }

    pub fn count(&self, change: Change) -> usize {
        self.with(change).count()
    }

    fn with(&self, change: Change) -> impl Iterator<Item = &str> {
        let changes = match self {
            Baseline::Compared { changes, .. } => changes.as_slice(),
            _ => &[],
        };
        changes
            .iter()
            .filter(move |(_, c)| *c == change)
            .map(|(id, _)| id.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn results(kernels: &[(&str, TargetStatus)]) -> Results {
        Results {
            v: 1,
            kernels: kernels.iter().map(|(k, s)| (k.to_string(), *s)).collect(),
        }
    }

    #[test]
    fn embedded_results_survive_hostile_ids() {
        let r = results(&[
            ("a --> <b> @x &y", TargetStatus::Fail),
            ("\u{7f}\u{9b}\u{202e}é😀", TargetStatus::Fail),
            ("ok", TargetStatus::Pass),
        ]);
        let text = format!("before\n{}\nafter", r.embed());
        assert_eq!(text.matches("-->").count(), 1, "{text}");
        assert!(!text.contains("<b>") && !text.contains("@x") && !text.contains("&y"));
        assert!(text.is_ascii(), "{text}");
        assert_eq!(Results::extract(&text), Some(r));
        assert_eq!(Results::extract("no marker here"), None);
        assert_eq!(
            Results::extract("<!-- bpfcompat:results {\"v\":9} -->"),
            None
        );
    }

    #[test]
    fn a_kernel_regresses_when_it_stops_passing() {
        use TargetStatus::*;
        assert_eq!(change(Some(Pass), Fail), Change::Regressed);
        assert_eq!(change(Some(Pass), InfraError), Change::Regressed);
        assert_eq!(change(Some(Fail), Pass), Change::Fixed);
        assert_eq!(change(Some(InfraError), Pass), Change::Fixed);
        assert_eq!(change(Some(Fail), InfraError), Change::Unchanged);
        assert_eq!(change(Some(Pass), Pass), Change::Unchanged);
        assert_eq!(change(None, Fail), Change::New);
    }
}
