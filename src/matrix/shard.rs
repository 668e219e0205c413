//! `--shard I/N`: which share of a matrix one run checks, so a large matrix
//! can fan out over several CI jobs and be merged back with `merge`.
//!
//! Without a plan, kernels are dealt round-robin by matrix position: shard I
//! gets positions I-1, I-1+N, I-1+2N, ... Every kernel lands in exactly one
//! shard, shard sizes differ by at most one, and old and new kernels
//! (matrices are often sorted by version) spread over all shards instead of
//! piling up in one. With `--shard-plan` (see `plan`), shard I is the plan's
//! I-th list, which must cover the matrix exactly.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::plan::Plan;
use crate::matrix::Matrix;
use crate::report::Shard;

/// `I/N` as given on the command line; always 1 ≤ index ≤ count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardSpec {
    pub index: usize,
    pub count: usize,
}

#[derive(Debug, Error)]
pub enum ShardError {
    #[error(
        "--shard {spec}: the matrix {} has only {kernels} kernel(s), so it splits into at most \
         {kernels} shard(s)",
        matrix.display()
    )]
    TooManyShards {
        spec: ShardSpec,
        matrix: PathBuf,
        kernels: usize,
    },
    #[error(
        "--shard {spec} with the plan {}: the plan has {planned} shard(s); plan again with \
         `bpfcompat shards plan --jobs {}` or use --shard I/{planned}",
        plan.display(), spec.count
    )]
    PlanCount {
        spec: ShardSpec,
        plan: PathBuf,
        planned: usize,
    },
    #[error(
        "the plan {} {problem}: the matrix {} changed since it was planned; run \
         `bpfcompat shards plan` again",
        plan.display(), matrix.display()
    )]
    PlanStale {
        plan: PathBuf,
        matrix: PathBuf,
        problem: String,
    },
}

impl FromStr for ShardSpec {
    type Err = String;

    fn from_str(text: &str) -> Result<ShardSpec, String> {
        let usage = || format!("{text:?} is not a shard like 2/3 (I/N with 1 ≤ I ≤ N)");
        let (index, count) = text.split_once('/').ok_or_else(usage)?;
        let index: usize = index.trim().parse().map_err(|_| usage())?;
        let count: usize = count.trim().parse().map_err(|_| usage())?;
        if index == 0 || index > count {
            return Err(usage());
        }
        Ok(ShardSpec { index, count })
    }
}

impl fmt::Display for ShardSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// Which share a sharded report says it is.
impl From<&Shard> for ShardSpec {
    fn from(shard: &Shard) -> ShardSpec {
        ShardSpec {
            index: shard.index,
            count: shard.count,
        }
    }
}

impl ShardSpec {
    /// Matrix positions (0-based) of the kernels this shard checks, in
    /// matrix order, out of a matrix of `len` kernels.
    pub fn positions(self, len: usize) -> impl Iterator<Item = usize> {
        (self.index - 1..len).step_by(self.count)
    }

    /// Matrix positions (0-based) of this shard's kernels, in matrix order:
    /// round-robin, or the plan's list for it (`partition`).
    pub fn positions_in(
        self,
        matrix_kernels: &[String],
        partition: Option<&[Vec<String>]>,
    ) -> Vec<usize> {
        match partition {
            None => self.positions(matrix_kernels.len()).collect(),
            Some(shards) => {
                let mine = shards.get(self.index - 1).map_or(&[][..], |k| &k[..]);
                (0..matrix_kernels.len())
                    .filter(|&p| mine.contains(&matrix_kernels[p]))
                    .collect()
            }
        }
    }

    /// Keeps only this shard's kernels in `matrix` (by `plan`, read from
    /// the path given, else round-robin) and describes the shard for the
    /// report. More shards than kernels would leave a shard empty, which is
    /// always a mistake in the CI configuration.
    pub fn restrict(
        self,
        matrix: &mut Matrix,
        plan: Option<(&Path, &Plan)>,
    ) -> Result<Shard, ShardError> {
        let len = matrix.kernels.len();
        if self.count > len {
            return Err(ShardError::TooManyShards {
                spec: self,
                matrix: matrix.path.clone(),
                kernels: len,
            });
        }
        let all = std::mem::take(&mut matrix.kernels);
        let matrix_kernels: Vec<String> = all.iter().map(|k| k.id.clone()).collect();
        let partition = plan
            .map(|(path, plan)| self.check_plan(path, plan, &matrix_kernels, &matrix.path))
            .transpose()?;
        matrix.kernels = self
            .positions_in(&matrix_kernels, partition.as_deref())
            .into_iter()
            .map(|p| all[p].clone())
            .collect();
        Ok(Shard {
            index: self.index,
            count: self.count,
            matrix_kernels,
            plan: partition,
        })
    }

    /// The plan's partition, once it is known to split this matrix into
    /// this many shards, each kernel in one.
    fn check_plan(
        self,
        path: &Path,
        plan: &Plan,
        matrix_kernels: &[String],
        matrix: &Path,
    ) -> Result<Vec<Vec<String>>, ShardError> {
        if plan.shards.len() != self.count {
            return Err(ShardError::PlanCount {
                spec: self,
                plan: path.to_owned(),
                planned: plan.shards.len(),
            });
        }
        let partition = plan.partition();
        let planned: Vec<&String> = partition.iter().flatten().collect();
        let stale = |problem: String| ShardError::PlanStale {
            plan: path.to_owned(),
            matrix: matrix.to_owned(),
            problem,
        };
        if let Some(id) = matrix_kernels.iter().find(|id| !planned.contains(id)) {
            return Err(stale(format!("has no shard for kernel {id}")));
        }
        if let Some(id) = planned.iter().find(|id| !matrix_kernels.contains(id)) {
            return Err(stale(format!(
                "places kernel {id}, which is not in the matrix"
            )));
        }
        if let Some((_, id)) = planned
            .iter()
            .enumerate()
            .find(|(n, id)| planned[..*n].contains(id))
        {
            return Err(stale(format!("places kernel {id} twice")));
        }
        Ok(partition)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn five_kernels_split_into_balanced_disjoint_covering_shards() {
        let expected: [(usize, &[&[usize]]); 4] = [
            (1, &[&[0, 1, 2, 3, 4]]),
            (2, &[&[0, 2, 4], &[1, 3]]),
            (3, &[&[0, 3], &[1, 4], &[2]]),
            (5, &[&[0], &[1], &[2], &[3], &[4]]),
        ];
        for (count, shards) in expected {
            let mut seen = Vec::new();
            for (i, want) in shards.iter().enumerate() {
                let spec = ShardSpec {
                    index: i + 1,
                    count,
                };
                let got: Vec<usize> = spec.positions(5).collect();
                assert_eq!(&got, want, "shard {spec}");
                // Deterministic: asking again gives the same share.
                assert_eq!(spec.positions(5).collect::<Vec<_>>(), got);
                seen.extend(got);
            }
            seen.sort_unstable();
            assert_eq!(
                seen,
                vec![0, 1, 2, 3, 4],
                "{count} shards cover each kernel once"
            );
            let sizes: Vec<usize> = shards.iter().map(|s| s.len()).collect();
            assert!(sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 1);
        }
    }

    #[test]
    fn parses_and_rejects_shard_specs() {
        assert_eq!(
            "2/3".parse::<ShardSpec>(),
            Ok(ShardSpec { index: 2, count: 3 })
        );
        assert_eq!("1/1".parse::<ShardSpec>().unwrap().to_string(), "1/1");
        for bad in ["0/3", "4/3", "3", "a/b", "1/0", "-1/3", "1/3/4", ""] {
            let e = bad.parse::<ShardSpec>().unwrap_err();
            assert!(e.contains("I/N"), "{bad}: {e}");
        }
    }

    fn matrix(n: usize) -> Matrix {
        let kernels: String = (0..n)
            .map(|i| format!("  - id: k{i}\n    source: {{file: k{i}}}\n"))
            .collect();
        Matrix::parse(
            &format!("name: m\nkernels:\n{kernels}"),
            Path::new("/m.yaml"),
            |_| None,
        )
        .unwrap()
    }

    #[test]
    fn restrict_keeps_the_shard_in_matrix_order_and_records_the_matrix() {
        let mut m = matrix(5);
        let shard = ShardSpec { index: 2, count: 2 }
            .restrict(&mut m, None)
            .unwrap();
        let ids: Vec<&str> = m.kernels.iter().map(|k| k.id.as_str()).collect();
        assert_eq!(ids, ["k1", "k3"]);
        assert_eq!(shard.matrix_kernels, ["k0", "k1", "k2", "k3", "k4"]);
        assert_eq!((shard.index, shard.count), (2, 2));
    }

    #[test]
    fn more_shards_than_kernels_is_an_error_naming_the_matrix() {
        let e = ShardSpec { index: 1, count: 6 }
            .restrict(&mut matrix(5), None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("--shard 1/6") && e.contains("/m.yaml") && e.contains("5 kernel"),
            "{e}"
        );
    }

    #[test]
    fn a_plan_picks_each_shard_and_must_cover_the_matrix_exactly() {
        let costs = [
            ("k0", 9000),
            ("k1", 1000),
            ("k2", 1000),
            ("k3", 7000),
            ("k4", 1000),
        ]
        .map(|(id, ms)| (id.to_owned(), ms))
        .into();
        let ids: Vec<String> = (0..5).map(|i| format!("k{i}")).collect();
        let plan = super::super::plan::plan(&ids, &costs, 2);
        let path = Path::new("/plan.json");
        let mut m = matrix(5);
        let shard = ShardSpec { index: 2, count: 2 }
            .restrict(&mut m, Some((path, &plan)))
            .unwrap();
        let got: Vec<&str> = m.kernels.iter().map(|k| k.id.as_str()).collect();
        // Longest first: k0 and k3 apart, the light ones where the least is.
        assert_eq!(got, ["k1", "k2", "k3"], "{plan:?}");
        assert_eq!(shard.plan, Some(plan.partition()));

        let refusal = |count, kernels| {
            ShardSpec { index: 1, count }
                .restrict(&mut matrix(kernels), Some((path, &plan)))
                .unwrap_err()
                .to_string()
        };
        let e = refusal(3, 5);
        assert!(
            e.contains("has 2 shard(s)") && e.contains("--jobs 3"),
            "{e}"
        );
        let e = refusal(2, 6);
        assert!(
            e.contains("has no shard for kernel k5") && e.contains("/plan.json"),
            "{e}"
        );
        let e = refusal(2, 4);
        assert!(
            e.contains("places kernel k4, which is not in the matrix"),
            "{e}"
        );
    }
}
