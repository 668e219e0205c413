//! Comparing with the base branch: every check run we publish carries its
//! per-kernel verdicts in a hidden HTML comment, and a pull request's run
//! reads them back from the check run of the same name on its base commit.
//! The comparison itself is `compare`'s: one model, one rule.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::report::prediction::{MinKernel, MinKernelChange};
use crate::report::Report;
pub use crate::results::compare::Change;
use crate::results::compare::{
    kernel_diffs, min_kernel_changes, min_kernels, KernelDiff, KernelVerdict, State, Verdicts,
};

const OPEN: &str = "<!-- bpfcompat:results ";
const CLOSE: &str = " -->";

/// What a run found, per kernel id, compactly: a check run's text holds
/// 65,535 characters, and a matrix may have hundreds of kernels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Results {
    /// Bumped if the shape changes, so an old base is "no result", not junk.
    v: u32,
    /// `status`, or `status:CLASS` for a kernel with a classification.
    kernels: BTreeMap<String, String>,
    /// The kernels that were not required.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    optional: Vec<String>,
    /// Each object's minimum upstream kernel (`MAJOR.MINOR`), by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    min_kernels: BTreeMap<String, String>,
}

const VERSION: u32 = 2;

/// The JSON string a unit enum serialises to (`pass`, `KERNEL_PANIC`, ...).
fn word<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        other => unreachable!("a unit variant serialises to a string, not {other:?}"),
    }
}

fn parse<T: DeserializeOwned>(word: &str) -> Option<T> {
    serde_json::from_value(serde_json::Value::String(word.to_owned())).ok()
}

impl Results {
    pub fn of(report: &Report) -> Results {
        let verdicts = Verdicts::of(report);
        let kernels = verdicts.0.iter().map(|k| {
            let status = word(&k.state.status);
            let text = match k.state.class {
                Some(class) => format!("{status}:{}", word(&class)),
                None => status,
            };
            (k.id.clone(), text)
        });
        Results {
            v: VERSION,
            kernels: kernels.collect(),
            optional: verdicts
                .0
                .iter()
                .filter(|k| !k.required)
                .map(|k| k.id.clone())
                .collect(),
            min_kernels: min_kernels(report)
                .into_iter()
                .map(|(object, m)| (object, m.version))
                .collect(),
        }
    }

    /// How many kernels passed, of how many.
    pub fn passed(&self) -> (usize, usize) {
        let pass = word(&crate::report::TargetStatus::Pass);
        let passed = self.kernels.values().filter(|v| **v == pass).count();
        (passed, self.kernels.len())
    }

    /// The base's verdicts, for [`kernel_diffs`]; `None` if any is unreadable.
    fn verdicts(&self) -> Option<Verdicts> {
        let kernel = |(id, text): (&String, &String)| {
            let (status, class) = match text.split_once(':') {
                Some((s, c)) => (s, Some(parse(c)?)),
                None => (text.as_str(), None),
            };
            Some(KernelVerdict {
                id: id.clone(),
                required: !self.optional.contains(id),
                state: State {
                    status: parse(status)?,
                    class,
                    release: None,
                },
            })
        };
        self.kernels
            .iter()
            .map(kernel)
            .collect::<Option<_>>()
            .map(Verdicts)
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
            .filter(|r| r.v == VERSION && r.verdicts().is_some())
    }
}

/// The word in the table's "vs base" column.
pub fn label(change: Change) -> &'static str {
    match change {
        Change::Regressed => "🔻 regressed",
        Change::Fixed => "✅ fixed",
        Change::StatusChanged => "↔ status changed",
        Change::ClassChanged => "↔ class changed",
        Change::Added => "🆕 new",
        Change::Removed => "removed",
        Change::Unchanged => "unchanged",
    }
}

/// Each kernel of `report` against `base`: the head's kernels in its order,
/// then those only the base had.
pub fn compare(report: &Report, base: &Results) -> Vec<KernelDiff> {
    let base = base.verdicts().expect("extract() read every verdict");
    kernel_diffs(&base, &Verdicts::of(report))
}

/// The objects of `report` whose minimum kernel moved from `base`'s (the
/// base carries versions only, so a lowering names no reason).
pub fn compare_min_kernels(report: &Report, base: &Results) -> Vec<MinKernelChange> {
    let base = base
        .min_kernels
        .iter()
        .map(|(object, version)| {
            let m = MinKernel {
                version: version.clone(),
                because: Vec::new(),
            };
            (object.clone(), m)
        })
        .collect();
    min_kernel_changes(&base, &min_kernels(report))
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
        changes: Vec<KernelDiff>,
        min_kernel: Vec<MinKernelChange>,
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

    /// Every kernel's change; none without a base to compare with.
    pub fn kernels(&self) -> &[KernelDiff] {
        match self {
            Baseline::Compared { changes, .. } => changes,
            _ => &[],
        }
    }

    /// The objects whose minimum kernel moved; none without a base.
    pub fn min_kernel(&self) -> &[MinKernelChange] {
        match self {
            Baseline::Compared { min_kernel, .. } => min_kernel,
            _ => &[],
        }
    }

    fn with(&self, change: Change) -> impl Iterator<Item = &str> {
        self.kernels()
            .iter()
            .filter(move |k| k.change == change)
            .map(|k| k.id.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn results(kernels: &[(&str, &str)], optional: &[&str]) -> Results {
        Results {
            v: VERSION,
            kernels: kernels
                .iter()
                .map(|(k, s)| (k.to_string(), s.to_string()))
                .collect(),
            optional: optional.iter().map(|k| k.to_string()).collect(),
            min_kernels: BTreeMap::new(),
        }
    }

    #[test]
    fn embedded_results_survive_hostile_ids() {
        let r = results(
            &[
                ("a --> <b> @x &y", "fail:VERIFIER_REJECTION"),
                ("\u{7f}\u{9b}\u{202e}é😀", "infra_error:KERNEL_PANIC"),
                ("ok", "pass"),
            ],
            &["ok"],
        );
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
    fn a_base_is_read_back_into_the_same_verdicts() {
        let r = results(&[("a", "fail:VERIFIER_REJECTION"), ("b", "pass")], &["b"]);
        let v = r.verdicts().unwrap();
        assert_eq!(v.0.len(), 2);
        assert!(v.0[0].required && !v.0[1].required);
        assert_eq!(word(&v.0[0].state.class.unwrap()), "VERIFIER_REJECTION");
        // An unreadable verdict makes the whole base unreadable, not a guess.
        let bad = results(&[("a", "exploded")], &[]);
        assert_eq!(Results::extract(&bad.embed()), None);
    }
}
