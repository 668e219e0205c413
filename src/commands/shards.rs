//! `shards plan`: split a matrix into shards of about equal time by what
//! each kernel took in earlier reports (`matrix::plan`), write the plan for
//! `--shard-plan`, and say what each shard is expected to take.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::PathBuf;

use anyhow::{bail, Context as _};

use crate::matrix::plan::{self, Plan};
use crate::report::{self, Report};

pub struct PlanOptions {
    pub matrix: Option<PathBuf>,
    pub jobs: usize,
    /// Reports whose per-kernel times are the costs; a later one wins.
    pub timings: Vec<PathBuf>,
    pub out: PathBuf,
    /// Where to append `shards=<JSON list of I/N>` ($GITHUB_OUTPUT).
    pub github_output: Option<PathBuf>,
}

pub fn plan(options: PlanOptions) -> anyhow::Result<u8> {
    // Its `sweep:` entries as a run will have them.
    let matrix = super::kernels::swept_matrix(options.matrix.as_deref())?;
    let ids: Vec<String> = matrix.kernels.iter().map(|k| k.id.clone()).collect();
    if options.jobs > ids.len() {
        bail!(
            "--jobs {}: the matrix {} has only {} kernel(s), so it splits into at most {} shard(s)",
            options.jobs,
            matrix.path.display(),
            ids.len(),
            ids.len()
        );
    }
    let costs = measured(&options.timings)?;
    let plan = plan::plan(&ids, &costs, options.jobs);
    let json = serde_json::to_string_pretty(&plan).expect("a plan serialises") + "\n";
    report::write_atomically(&options.out, json.as_bytes())
        .with_context(|| format!("cannot write the plan {}", options.out.display()))?;
    let measured = ids.iter().filter(|id| costs.contains_key(*id)).count();
    print!("{}", summary(&plan, measured, ids.len()));
    println!("plan: {}", options.out.display());
    if let Some(path) = &options.github_output {
        append_output(path, &plan)?;
    }
    Ok(0)
}

/// Each kernel's `timing_ms.total` in the reports, the last report's where
/// several have it.
fn measured(reports: &[PathBuf]) -> anyhow::Result<BTreeMap<String, u64>> {
    let mut costs = BTreeMap::new();
    for path in reports {
        let report = Report::read(path)?;
        for t in report.targets {
            costs.insert(t.id, t.timing_ms.total);
        }
    }
    Ok(costs)
}

/// One line per shard, then how close the slowest comes to the ideal.
fn summary(plan: &Plan, measured: usize, kernels: usize) -> String {
    let count = plan.shards.len();
    let mut out = String::new();
    for (n, shard) in plan.shards.iter().enumerate() {
        out += &format!(
            "shard {}/{count}: {} kernel(s), expected {}: {}\n",
            n + 1,
            shard.kernels.len(),
            seconds(shard.expected_ms),
            shard.kernels.join(", ")
        );
    }
    let (ideal, ratio) = plan.balance();
    out += &format!(
        "{measured} of {kernels} kernels measured (the others cost the median); ideal {} per \
         shard, the slowest shard {ratio:.2} x that\n",
        seconds(ideal)
    );
    out
}

fn seconds(ms: u64) -> String {
    format!("{:.1} s", ms as f64 / 1000.0)
}

/// `shards=["1/N",...]` for a workflow's `strategy.matrix`.
fn append_output(path: &PathBuf, plan: &Plan) -> anyhow::Result<()> {
    let count = plan.shards.len();
    let specs: Vec<String> = (1..=count).map(|i| format!("{i}/{count}")).collect();
    let line = format!(
        "shards={}\n",
        serde_json::to_string(&specs).expect("strings")
    );
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut f| f.write_all(line.as_bytes()))
        .with_context(|| format!("cannot append to the step output {}", path.display()))
}
