//! `test` and `test-command`: one check on every kernel of a matrix, the
//! report written, the run recorded in the history.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::boot::qemu::AccelChoice;
use crate::commands::{pinning, write_report, DEFAULT_WORKDIR};
use crate::escape;
use crate::kernel::{KernelCache, Mirror};
use crate::manifest::{self, suite::Suite};
use crate::matrix::plan::Plan;
use crate::matrix::shard::ShardSpec;
use crate::results::history;
use crate::run::check::{self, CheckSpec};
use crate::run::engine::{self, Settings};
use crate::run::modules;

/// A kernel's time limit when neither the matrix, `--timeout` nor a suite
/// gives one.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(180);

/// What `--matrix`, `--out` and the other run flags say. `None` where a
/// suite's defaults may stand in.
pub struct RunOptions {
    pub matrix: Option<PathBuf>,
    pub locked: bool,
    pub out: PathBuf,
    pub markdown: Option<PathBuf>,
    /// `--html`: report.html.
    pub html: Option<PathBuf>,
    /// Kernels booted at once; `None`: what the cores and memory allow.
    pub concurrency: Option<usize>,
    /// `None`: MemAvailable less a reserve.
    pub memory_budget_mb: Option<u64>,
    pub timeout: Option<Duration>,
    pub accel: AccelChoice,
    /// Restore kernels from snapshots (`--snapshots auto`).
    pub snapshots: bool,
    pub cache_dir: PathBuf,
    pub workdir: Option<PathBuf>,
    pub shard: Option<ShardSpec>,
    /// `--shard-plan`: the split `shard` is taken from, instead of round-robin.
    pub shard_plan: Option<PathBuf>,
    pub artifact_name: Option<String>,
    pub artifact_version: Option<String>,
    /// `--modules`: loaded in every guest first.
    pub modules: Vec<String>,
    /// `--predict-only`: the preflight alone, no QEMU.
    pub predict_only: bool,
}

impl RunOptions {
    /// The suite's defaults where the command line gives nothing (its name
    /// names the run in the history).
    fn with_suite(mut self, suite: Option<&Suite>) -> RunOptions {
        if let Some(s) = suite {
            self.matrix = self.matrix.or_else(|| s.matrix.clone());
            self.workdir = self.workdir.or_else(|| s.workdir.clone());
            self.timeout = self.timeout.or(s.timeout);
            self.concurrency = self.concurrency.or(s.concurrency.map(usize::from));
            self.artifact_name = self.artifact_name.or_else(|| Some(s.name.clone()));
        }
        self
    }
}

/// Ctrl-C or SIGTERM: every QEMU is stopped and no report is written; the
/// exit code is the shell's 128 + signal number.
#[derive(Debug, thiserror::Error)]
#[error("interrupted by {name}: stopped every QEMU, no report written")]
pub struct Interrupted {
    name: &'static str,
    pub exit_code: u8,
}

/// A check, stopped at once by Ctrl-C or SIGTERM while it fetches or boots.
/// Dropping it drops every QEMU child (kill_on_drop). Writing the report
/// has no await point, so a signal cannot cut it in half: once every kernel
/// is done, the report is written whole.
pub async fn run(spec: CheckSpec, options: RunOptions) -> anyhow::Result<u8> {
    let cache = KernelCache::new(options.cache_dir.clone());
    if options.predict_only {
        return tokio::task::spawn_blocking(move || {
            crate::commands::preflight::predict_only(
                &spec,
                options.matrix.as_deref(),
                options.locked,
                &cache,
                Some(&options.out),
            )
        })
        .await?;
    }
    tokio::select! {
        code = check_and_report(spec, options, &cache) => code,
        signal = interrupted() => {
            cache.discard_own_temp_files();
            Err(signal.into())
        }
    }
}

async fn check_and_report(
    spec: CheckSpec,
    options: RunOptions,
    cache: &KernelCache,
) -> anyhow::Result<u8> {
    // The user's inputs first: a bad object, manifest or suite is an error
    // before anything is downloaded or booted.
    let mut check = check::prepare(&spec)?;
    check.module_wants = modules::dedup(
        std::mem::take(&mut check.module_wants)
            .into_iter()
            .chain(modules::named_wants(&options.modules, "--modules"))
            .collect(),
    );
    let warnings = check.suite.iter().flat_map(|s| &s.warnings);
    for warning in warnings {
        eprintln!("bpfcompat: warning: {}", escape::plain(warning));
    }
    for note in &check.notes {
        eprintln!("bpfcompat: {}", escape::plain(note));
    }
    let options = options.with_suite(check.suite.as_ref());
    let workdir = options
        .workdir
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_WORKDIR));
    // Pinning may download (a source first seen): off the async workers.
    let (arg, locked, cache) = (options.matrix.clone(), options.locked, cache.clone());
    let mut matrix = tokio::task::spawn_blocking(move || {
        pinning::prepare_matrix(arg.as_deref(), locked, &cache)
    })
    .await??;
    for warning in manifest::require_profiles(&mut matrix, &check.required_profiles) {
        eprintln!("bpfcompat: warning: {}", escape::plain(&warning));
    }
    let plan = match &options.shard_plan {
        Some(path) => Some((path.as_path(), Plan::read(path)?)),
        None => None,
    };
    let shard = options
        .shard
        .map(|spec| spec.restrict(&mut matrix, plan.as_ref().map(|(p, plan)| (*p, plan))))
        .transpose()?;
    // Taken before the run: the version is the code that was tested, even if
    // the tree changes while the kernels boot.
    let version = options
        .artifact_version
        .clone()
        .or_else(|| history::git_describe(Path::new(".")));
    let settings = Settings {
        concurrency: options
            .concurrency
            .unwrap_or_else(engine::default_concurrency),
        memory_budget_mb: options
            .memory_budget_mb
            .unwrap_or_else(engine::default_memory_budget_mb),
        timeout: options.timeout.unwrap_or(DEFAULT_TIMEOUT),
        accel: options.accel,
        snapshots: options.snapshots,
        cache_dir: options.cache_dir,
        workdir: workdir.clone(),
        mirror: Mirror::from_env(),
    };
    let mut report = engine::run(&matrix, &check, &settings).await?;
    report.shard = shard;
    let json = write_report(&report, &options.out, options.markdown.as_deref())?;
    // The verdict stands even if it cannot be recorded: the history is a
    // convenience, the report is the result.
    if let Err(e) = history::Record::of(
        &report,
        &options.out,
        json.as_bytes(),
        options.artifact_name,
        version,
    )
    .and_then(|record| history::append(&workdir, &record))
    {
        eprintln!(
            "bpfcompat: warning: this run is not in the history: {}",
            escape::plain(&e.to_string())
        );
    }
    if let Some(html) = &options.html {
        crate::commands::write_html(&report, json.as_bytes(), &workdir, html)?;
    }
    Ok(report.summary.exit_code as u8)
}

async fn interrupted() -> Interrupted {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler installs");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler installs");
    tokio::select! {
        _ = int.recv() => Interrupted { name: "Ctrl-C", exit_code: 130 },
        _ = term.recv() => Interrupted { name: "SIGTERM", exit_code: 143 },
    }
}
