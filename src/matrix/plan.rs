//! `shards plan`: a split of a matrix into shards of about equal time, from
//! what each kernel took before, so a fan-out over N runners ends when its
//! slowest shard does, close to 1/N of the whole. Round-robin (`--shard`
//! alone) balances kernel counts; a 7.x kernel with modules can take four
//! times a 5.10 bzImage, so counts are not times.
//!
//! Longest first: kernels by descending cost, each to the shard with the
//! least so far (ties: the lower shard, then matrix order), which lands
//! within 4/3 of the best split and, with many kernels of similar cost,
//! within a few percent. A kernel without a measurement costs the median of
//! those with one (all cost the same when none has), so a new kernel is
//! neither free nor feared.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

pub const SCHEMA: &str = "bpfcompat.shard-plan/v1";

/// What `shards plan` writes and `--shard-plan` reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub schema: String,
    /// Shard `I` of `N` is `shards[I-1]`.
    pub shards: Vec<PlannedShard>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedShard {
    /// Its kernels' ids, in matrix order.
    pub kernels: Vec<String>,
    /// The sum of its kernels' costs, in ms.
    pub expected_ms: u64,
}

#[derive(Debug, Error)]
pub enum PlanError {
    #[error("cannot read shard plan {path}: {err}")]
    Read { path: PathBuf, err: std::io::Error },
    #[error("{path} is not a shard plan ({SCHEMA}) as `bpfcompat shards plan` writes: {why}")]
    Format { path: PathBuf, why: String },
}

impl Plan {
    pub fn read(path: &Path) -> Result<Plan, PlanError> {
        let text = std::fs::read_to_string(path).map_err(|err| PlanError::Read {
            path: path.to_owned(),
            err,
        })?;
        let format = |why: String| PlanError::Format {
            path: path.to_owned(),
            why,
        };
        let plan: Plan = serde_json::from_str(&text).map_err(|e| format(e.to_string()))?;
        if plan.schema != SCHEMA {
            return Err(format(format!("its schema is {:?}", plan.schema)));
        }
        if plan.shards.is_empty() {
            return Err(format("it has no shards".to_owned()));
        }
        Ok(plan)
    }

    /// The kernels of every shard, as a report records them.
    pub fn partition(&self) -> Vec<Vec<String>> {
        self.shards.iter().map(|s| s.kernels.clone()).collect()
    }

    /// The ideal time per shard (the whole divided evenly) and the expected
    /// time of the slowest shard over it.
    pub fn balance(&self) -> (u64, f64) {
        let total: u64 = self.shards.iter().map(|s| s.expected_ms).sum();
        let ideal = total.div_ceil(self.shards.len() as u64);
        let slowest = self.shards.iter().map(|s| s.expected_ms).max();
        let ratio = match (slowest, ideal) {
            (Some(slowest), ideal) if ideal > 0 => slowest as f64 / ideal as f64,
            _ => 1.0,
        };
        (ideal, ratio)
    }
}

/// Splits `kernels` (ids in matrix order) into `jobs` shards (at most one
/// per kernel) by their measured `costs` in ms.
pub fn plan(kernels: &[String], costs: &BTreeMap<String, u64>, jobs: usize) -> Plan {
    let cost_of = |id: &str| {
        costs
            .get(id)
            .copied()
            .unwrap_or(median_cost(kernels, costs))
    };
    let mut order: Vec<usize> = (0..kernels.len()).collect();
    // Stable: equal costs keep matrix order.
    order.sort_by_key(|&p| std::cmp::Reverse(cost_of(&kernels[p])));
    let jobs = jobs.clamp(1, kernels.len().max(1));
    let mut shards: Vec<(u64, Vec<usize>)> = vec![(0, Vec::new()); jobs];
    for p in order {
        let lightest = (0..jobs)
            .min_by_key(|&s| (shards[s].0, s))
            .expect("at least one shard");
        shards[lightest].0 += cost_of(&kernels[p]);
        shards[lightest].1.push(p);
    }
    let shards = shards
        .into_iter()
        .map(|(expected_ms, mut positions)| {
            positions.sort_unstable();
            PlannedShard {
                kernels: positions.into_iter().map(|p| kernels[p].clone()).collect(),
                expected_ms,
            }
        })
        .collect();
    Plan {
        schema: SCHEMA.to_owned(),
        shards,
    }
}

/// The median cost of the kernels that have one; 1 when none has.
fn median_cost(kernels: &[String], costs: &BTreeMap<String, u64>) -> u64 {
    let mut known: Vec<u64> = kernels
        .iter()
        .filter_map(|id| costs.get(id).copied())
        .collect();
    known.sort_unstable();
    known.get(known.len() / 2).copied().unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("k{i:02}")).collect()
    }

    /// Thirty kernels with the per-kernel times of a real matrix (boots of
    /// 5.10 to 7.2, packages with modules among them: 2.5 to 11 s).
    fn recorded() -> BTreeMap<String, u64> {
        let times = [
            2500, 2800, 3100, 3300, 4700, 5200, 5600, 6900, 11000, 2600, 2900, 3400, 3900, 4100,
            4600, 5100, 5900, 6200, 7400, 9800, 2700, 3000, 3600, 4400, 5000, 5500, 6100, 6600,
            8200, 10400,
        ];
        ids(30).into_iter().zip(times).collect()
    }

    #[test]
    fn thirty_recorded_kernels_on_five_runners_end_within_a_fifth_of_the_ideal() {
        let plan = plan(&ids(30), &recorded(), 5);
        assert_eq!(plan.shards.len(), 5);
        let (ideal, ratio) = plan.balance();
        let total: u64 = recorded().values().sum();
        assert_eq!(ideal, total.div_ceil(5));
        assert!(ratio <= 1.2, "slowest shard {ratio:.3} x ideal: {plan:?}");
        // Round-robin by position, the split without a plan, is worse here.
        let round_robin = (0..5)
            .map(|s| recorded().values().skip(s).step_by(5).sum::<u64>())
            .max()
            .unwrap();
        let slowest = plan.shards.iter().map(|s| s.expected_ms).max().unwrap();
        assert!(slowest <= round_robin, "{slowest} vs {round_robin}");
    }

    #[test]
    fn every_kernel_lands_in_exactly_one_shard_in_matrix_order() {
        let plan = plan(&ids(30), &recorded(), 4);
        let mut all: Vec<String> = plan.partition().concat();
        for shard in &plan.shards {
            let mut sorted = shard.kernels.clone();
            sorted.sort();
            assert_eq!(sorted, shard.kernels, "matrix order within a shard");
        }
        all.sort();
        assert_eq!(all, ids(30));
    }

    #[test]
    fn unmeasured_kernels_cost_the_median_and_without_any_the_counts_balance() {
        let costs: BTreeMap<String, u64> = [
            ("k00".to_owned(), 9000),
            ("k01".to_owned(), 1000),
            ("k02".to_owned(), 3000),
        ]
        .into();
        // k03 and k04 cost the median, 3000: 9000 | 3000+3000 | 1000+3000.
        let p = plan(&ids(5), &costs, 3);
        let expected: Vec<u64> = p.shards.iter().map(|s| s.expected_ms).collect();
        assert_eq!(expected, [9000, 6000, 4000], "{p:?}");
        let counts: Vec<usize> = plan(&ids(7), &BTreeMap::new(), 3)
            .shards
            .iter()
            .map(|s| s.kernels.len())
            .collect();
        assert_eq!(counts, [3, 2, 2]);
    }

    #[test]
    fn never_more_shards_than_kernels() {
        assert_eq!(plan(&ids(2), &BTreeMap::new(), 5).shards.len(), 2);
    }

    #[test]
    fn a_plan_round_trips_and_a_foreign_file_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plan.json");
        let p = plan(&ids(4), &recorded(), 2);
        std::fs::write(&path, serde_json::to_string(&p).unwrap()).unwrap();
        assert_eq!(Plan::read(&path).unwrap(), p);
        std::fs::write(&path, r#"{"schema":"other","shards":[]}"#).unwrap();
        let e = Plan::read(&path).unwrap_err().to_string();
        assert!(e.contains("plan.json") && e.contains("\"other\""), "{e}");
    }
}
