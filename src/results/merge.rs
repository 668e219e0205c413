//! `merge`: the reports of `--shard I/N` runs back into the one report an
//! unsharded run would have written, so publishing and comparing never need
//! to know a run was sharded.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use thiserror::Error;

use crate::matrix::shard::ShardSpec;
use crate::report::{Report, Summary, Target};

#[derive(Debug, Error)]
pub enum MergeError {
    #[error("{path} is not a shard report (it was run without --shard), so there is nothing to merge it with")]
    NotShard { path: PathBuf },
    #[error(
        "{path} has {what} {value} but {first} has {first_value}: only the shards of one run (same \
         artifact, matrix and bpfcompat version) can be merged"
    )]
    Mismatch {
        path: PathBuf,
        what: &'static str,
        value: String,
        first: PathBuf,
        first_value: String,
    },
    #[error("shard {shard} is given twice: {first} and {second}")]
    Duplicate {
        shard: ShardSpec,
        first: PathBuf,
        second: PathBuf,
    },
    #[error("{path} says it is shard {shard}, which no --shard run can be")]
    Invalid { path: PathBuf, shard: ShardSpec },
    #[error("{path}: kernel {id} is not in the matrix, or another shard also checked it")]
    Stray { path: PathBuf, id: String },
    #[error("{path} (shard {shard}) lacks kernels {kernels} of its share of the matrix")]
    Incomplete {
        path: PathBuf,
        shard: ShardSpec,
        kernels: String,
    },
    #[error("missing {missing}; pass --allow-partial to merge the shards that are there")]
    Missing { missing: String },
    #[error("{path}: started_at {value:?} is not an RFC 3339 time")]
    Time { path: PathBuf, value: String },
}

/// The merged report, and what the user should know about it.
#[derive(Debug)]
pub struct Merged {
    pub report: Report,
    pub warnings: Vec<String>,
}

/// A property of a report, as text for messages.
type Field = fn(&Report) -> String;

/// What must be equal across shards, and how to show it in an error.
const SAME_RUN: [(&str, Field); 5] = [
    ("bpfcompat version", |r| r.tool_version.clone()),
    ("artifact", |r| r.artifact.id.clone()),
    ("matrix digest", |r| r.matrix.digest.clone()),
    ("shard count", |r| {
        r.shard.as_ref().map_or(0, |s| s.count).to_string()
    }),
    ("shard plan", |r| {
        match r.shard.as_ref().and_then(|s| s.plan.as_ref()) {
            Some(plan) => format!("{plan:?}"),
            None => "none (round-robin)".to_owned(),
        }
    }),
];

/// One input: which shard it claims to be, where it came from, what it says.
type Input = (ShardSpec, PathBuf, Report);

/// Merges shard reports (in any order). Missing shards are an error unless
/// `allow_partial`; duplicated ones always are, since two verdicts for the
/// same kernels have no right merge.
pub fn merge(inputs: Vec<(PathBuf, Report)>, allow_partial: bool) -> Result<Merged, MergeError> {
    let shards = of_one_run(inputs)?;
    let (_, _, first) = &shards[0];
    let matrix_kernels = &first.shard.as_ref().expect("a shard").matrix_kernels;

    let mut slots: Vec<Option<Target>> = vec![None; matrix_kernels.len()];
    for (_, path, report) in &shards {
        for t in &report.targets {
            let slot = matrix_kernels
                .iter()
                .position(|id| *id == t.id)
                .map(|p| &mut slots[p])
                .filter(|s| s.is_none())
                .ok_or_else(|| MergeError::Stray {
                    path: path.clone(),
                    id: t.id.clone(),
                })?;
            *slot = Some(t.clone());
        }
    }

    let mut warnings = Vec::new();
    let plan = first.shard.as_ref().and_then(|s| s.plan.as_deref());
    let missing = missing_shards(&shards, matrix_kernels, plan, &slots)?;
    if !missing.is_empty() {
        if !allow_partial {
            return Err(MergeError::Missing { missing });
        }
        warnings.push(format!(
            "merged without {missing}: the report covers only the kernels that were checked"
        ));
    }
    for (what, value) in [
        ("accelerators", (|r| r.accel.to_string()) as Field),
        ("QEMU versions", |r| r.qemu_version.clone()),
    ] {
        if shards.iter().any(|(_, _, r)| value(r) != value(first)) {
            warnings.push(format!(
                "the shards ran with different {what}; the merged report keeps {} (shard {})",
                value(first),
                shards[0].0
            ));
        }
    }

    let (started_at, duration_ms) = span(&shards)?;
    let targets: Vec<Target> = slots.into_iter().flatten().collect();
    let report = Report {
        shard: None,
        started_at,
        duration_ms,
        summary: Summary::of(&targets),
        targets,
        ..first.clone()
    };
    Ok(Merged { report, warnings })
}

/// The inputs sorted by shard index, once they are known to be distinct,
/// valid shards of one run.
fn of_one_run(inputs: Vec<(PathBuf, Report)>) -> Result<Vec<Input>, MergeError> {
    let mut shards = Vec::with_capacity(inputs.len());
    for (path, report) in inputs {
        let Some(shard) = &report.shard else {
            return Err(MergeError::NotShard { path });
        };
        let spec = ShardSpec::from(shard);
        if !(1..=spec.count).contains(&spec.index) {
            return Err(MergeError::Invalid { path, shard: spec });
        }
        shards.push((spec, path, report));
    }
    shards.sort_by_key(|(spec, ..)| spec.index);
    let (_, first_path, first) = shards.first().expect("clap requires a report");
    for (_, path, report) in &shards {
        for (what, value) in SAME_RUN {
            if value(report) != value(first) {
                return Err(MergeError::Mismatch {
                    path: path.clone(),
                    what,
                    value: value(report),
                    first: first_path.clone(),
                    first_value: value(first),
                });
            }
        }
    }
    // Sorted by index, so a duplicate sits right after its twin.
    if let Some(pair) = shards.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(MergeError::Duplicate {
            shard: pair[0].0,
            first: pair[0].1.clone(),
            second: pair[1].1.clone(),
        });
    }
    Ok(shards)
}

/// The shards nobody gave, with their kernels ("" when all are there). A
/// given shard that lacks one of its kernels is an error: that report is
/// not what a run writes.
fn missing_shards(
    shards: &[Input],
    matrix_kernels: &[String],
    plan: Option<&[Vec<String>]>,
    slots: &[Option<Target>],
) -> Result<String, MergeError> {
    let count = shards[0].0.count;
    let mut missing = Vec::new();
    for index in 1..=count {
        let spec = ShardSpec { index, count };
        let unchecked: Vec<&str> = spec
            .positions_in(matrix_kernels, plan)
            .into_iter()
            .filter(|&p| slots[p].is_none())
            .map(|p| matrix_kernels[p].as_str())
            .collect();
        if unchecked.is_empty() {
            continue;
        }
        let kernels = unchecked.join(", ");
        match shards.iter().find(|(s, ..)| s.index == index) {
            Some((_, path, _)) => {
                return Err(MergeError::Incomplete {
                    path: path.clone(),
                    shard: spec,
                    kernels,
                })
            }
            None => missing.push(format!("shard {spec} (kernels {kernels})")),
        }
    }
    Ok(missing.join(", "))
}

/// From the first shard's start to the last shard's end: the wall-clock
/// time the whole matrix took, whether shards ran in parallel or not.
fn span(shards: &[Input]) -> Result<(String, u64), MergeError> {
    let mut start: Option<SystemTime> = None;
    let mut end: Option<SystemTime> = None;
    for (_, path, r) in shards {
        let began = humantime::parse_rfc3339_weak(&r.started_at).map_err(|_| MergeError::Time {
            path: path.clone(),
            value: r.started_at.clone(),
        })?;
        let ended = began + Duration::from_millis(r.duration_ms);
        start = Some(start.map_or(began, |s| s.min(began)));
        end = Some(end.map_or(ended, |e| e.max(ended)));
    }
    let (start, end) = start.zip(end).expect("at least one shard");
    let duration = end.duration_since(start).unwrap_or_default();
    Ok((
        humantime::format_rfc3339_seconds(start).to_string(),
        duration.as_millis() as u64,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Shard;
    use bpfcompat_testkit::reports::report_json;

    /// The unsharded run the shards are cut from: 5 kernels, mixed verdicts.
    fn whole() -> Report {
        serde_json::from_value(report_json(&[
            ("a", "pass", None),
            ("b", "fail", Some("COMMAND_VALIDATION_FAILURE")),
            ("c", "pass", None),
            ("d", "infra_error", Some("KERNEL_PANIC")),
            ("e", "pass", None),
        ]))
        .unwrap()
    }

    /// Splits `whole` the way `--shard I/count` runs would have checked it,
    /// each shard starting `i` seconds later.
    fn shards(whole: &Report, count: usize) -> Vec<(PathBuf, Report)> {
        planned_shards(whole, count, None)
    }

    /// The same, the shards taken from `plan` when there is one.
    fn planned_shards(
        whole: &Report,
        count: usize,
        plan: Option<Vec<Vec<String>>>,
    ) -> Vec<(PathBuf, Report)> {
        let ids: Vec<String> = whole.targets.iter().map(|t| t.id.clone()).collect();
        (1..=count)
            .map(|index| {
                let spec = ShardSpec { index, count };
                let targets: Vec<Target> = spec
                    .positions_in(&ids, plan.as_deref())
                    .into_iter()
                    .map(|p| whole.targets[p].clone())
                    .collect();
                let r = Report {
                    shard: Some(Shard {
                        index,
                        count,
                        matrix_kernels: ids.clone(),
                        plan: plan.clone(),
                    }),
                    started_at: format!("2025-01-01T00:00:0{index}Z"),
                    duration_ms: 1000,
                    summary: Summary::of(&targets),
                    targets,
                    ..whole.clone()
                };
                (PathBuf::from(format!("shard-{index}.json")), r)
            })
            .collect()
    }

    #[test]
    fn planned_shards_merge_back_and_a_missing_one_is_named_with_its_kernels() {
        let whole = whole();
        let plan: Vec<Vec<String>> = [&["b", "c", "e"][..], &["a"], &["d"]]
            .iter()
            .map(|ids| ids.iter().map(|id| id.to_string()).collect())
            .collect();
        let mut inputs = planned_shards(&whole, 3, Some(plan.clone()));
        let mut got = merge(inputs.clone(), false).unwrap().report;
        (got.started_at, got.duration_ms) = (whole.started_at.clone(), whole.duration_ms);
        assert_eq!(got, whole);
        inputs.remove(0);
        let e = merge(inputs.clone(), false).unwrap_err().to_string();
        assert!(e.contains("shard 1/3 (kernels b, c, e)"), "{e}");
        // A shard of another plan is another run.
        let mut other = planned_shards(&whole, 3, None);
        other.remove(1);
        inputs.truncate(1);
        inputs.extend(other);
        let e = merge(inputs, false).unwrap_err().to_string();
        assert!(e.contains("shard plan"), "{e}");
    }

    #[test]
    fn shards_merge_back_into_the_unsharded_report() {
        let whole = whole();
        for count in [1, 2, 3, 5] {
            let mut inputs = shards(&whole, count);
            // The order on the command line does not matter.
            inputs.reverse();
            let merged = merge(inputs, false).unwrap();
            assert_eq!(merged.warnings, Vec::<String>::new());
            let mut got = merged.report;
            assert_eq!(got.started_at, "2025-01-01T00:00:01Z", "{count} shards");
            assert_eq!(got.duration_ms, 1000 * count as u64, "{count} shards");
            got.started_at = whole.started_at.clone();
            got.duration_ms = whole.duration_ms;
            assert_eq!(got, whole, "{count} shards");
        }
    }

    fn err(inputs: Vec<(PathBuf, Report)>) -> String {
        merge(inputs, false).unwrap_err().to_string()
    }

    #[test]
    fn a_missing_shard_is_named_with_its_kernels_unless_partial_is_allowed() {
        let mut inputs = shards(&whole(), 3);
        inputs.remove(1);
        let e = err(inputs.clone());
        assert!(e.contains("missing shard 2/3 (kernels b, e)"), "{e}");

        let merged = merge(inputs, true).unwrap();
        let ids: Vec<&str> = merged
            .report
            .targets
            .iter()
            .map(|t| t.id.as_str())
            .collect();
        assert_eq!(ids, ["a", "c", "d"]);
        assert_eq!(merged.report.summary.failed, 0);
        assert!(
            merged.warnings[0].contains("shard 2/3"),
            "{:?}",
            merged.warnings
        );
    }

    #[test]
    fn a_duplicated_shard_is_an_error_naming_both_files() {
        let mut inputs = shards(&whole(), 2);
        let mut again = inputs[1].clone();
        again.0 = "again.json".into();
        inputs.push(again);
        let e = merge(inputs, true).unwrap_err().to_string();
        assert!(e.contains("shard 2/2 is given twice"), "{e}");
        assert!(
            e.contains("shard-2.json") && e.contains("again.json"),
            "{e}"
        );
    }

    #[test]
    fn shards_of_different_runs_are_refused() {
        type Edit = fn(&mut Report);
        let cases: [(&str, Edit); 4] = [
            ("artifact", |r| r.artifact.id = "sha256:other".into()),
            ("matrix digest", |r| r.matrix.digest = "other".into()),
            ("bpfcompat version", |r| r.tool_version = "9.9.9".into()),
            ("shard count", |r| r.shard.as_mut().unwrap().count = 3),
        ];
        for (what, edit) in cases {
            let mut inputs = shards(&whole(), 2);
            edit(&mut inputs[1].1);
            let e = err(inputs);
            assert!(e.starts_with(&format!("shard-2.json has {what} ")), "{e}");
            assert!(e.contains("shard-1.json"), "{e}");
        }
        let mut inputs = shards(&whole(), 2);
        inputs[0].1.shard = None;
        assert!(err(inputs).contains("shard-1.json is not a shard report"));
    }

    /// The `shard` field as serialised is what docs/report.schema.json says.
    #[test]
    fn shard_reports_match_the_published_schema() {
        let schema: serde_json::Value =
            serde_json::from_str(include_str!("../../docs/report.schema.json")).unwrap();
        let validator = jsonschema::validator_for(&schema).unwrap();
        for (_, r) in shards(&whole(), 2) {
            let value = serde_json::to_value(&r).unwrap();
            let errors: Vec<String> = validator
                .iter_errors(&value)
                .map(|e| e.to_string())
                .collect();
            assert!(errors.is_empty(), "{errors:?}");
        }
    }

    #[test]
    fn impossible_or_incomplete_shards_are_refused() {
        let mut inputs = shards(&whole(), 2);
        inputs[0].1.shard.as_mut().unwrap().index = 3;
        assert!(err(inputs).contains("shard-1.json says it is shard 3/2"));

        let mut inputs = shards(&whole(), 2);
        inputs[0].1.targets.remove(1);
        let e = err(inputs);
        assert!(
            e.contains("shard-1.json (shard 1/2) lacks kernels c"),
            "{e}"
        );

        let mut inputs = shards(&whole(), 2);
        inputs[1].1.targets[0].id = "a".into();
        let e = err(inputs);
        assert!(
            e.contains("shard-2.json: kernel a is not in the matrix, or another"),
            "{e}"
        );
    }

    #[test]
    fn differing_accelerators_are_warned_about() {
        let mut inputs = shards(&whole(), 2);
        inputs[1].1.accel = crate::report::Accel::Kvm;
        let merged = merge(inputs, false).unwrap();
        assert!(
            merged.warnings[0].contains("different accelerators"),
            "{:?}",
            merged.warnings
        );
    }
}
