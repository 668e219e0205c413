mod artifact;
mod check;
mod cli;
mod compare;
mod engine;
mod github;
mod guest;
mod history;
mod kernel;
mod kernels;
mod lock;
mod matrix;
mod merge;
mod progress;
mod qemu;
mod report;
mod shard;
mod shipped;
mod table;
mod verdict;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context as _};
use clap::Parser;

use check::{CheckSpec, CommandCheck};
use cli::{Cli, Commands, CommonArgs, HistoryCommand, MergeArgs};
use engine::Settings;
use kernel::{KernelCache, Mirror};
use report::Report;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // Usage errors are tool errors (1); 2 is reserved for "incompatible".
            return if e.use_stderr() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime starts");
    match runtime.block_on(run(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("bpfcompat: error: {}", describe(&e));
            ExitCode::from(1)
        }
    }
}

/// The error and its causes, each said once: `{:#}` would repeat the many
/// causes that our errors already end with ("…: No space left on device").
fn describe(e: &anyhow::Error) -> String {
    let mut text = e.to_string();
    for cause in e.chain().skip(1).map(ToString::to_string) {
        if !text.ends_with(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}

async fn run(cli: Cli) -> anyhow::Result<u8> {
    match cli.command {
        Commands::TestCommand(a) => {
            let check = CommandCheck {
                command: a.cmd,
                bin: a.bin,
                artifact: a.artifact,
                expected_exit: i32::from(a.expect_exit),
            };
            run_check(CheckSpec::Command(check), a.common).await
        }
        Commands::Test(a) => {
            let spec = match a.command {
                Some(command) => {
                    if a.artifact.len() > 1 {
                        bail!(
                            "--command ships one --artifact into the guest (as \
                             $BPFCOMPAT_ARTIFACT); give one, or drop --command to check several \
                             objects with the validator"
                        );
                    }
                    CheckSpec::Command(CommandCheck {
                        command,
                        bin: a.command_binary,
                        artifact: a.artifact.into_iter().next(),
                        expected_exit: i32::from(a.command_expect_exit),
                    })
                }
                None if a.artifact.is_empty() => bail!(
                    "nothing to check: give --artifact FILE.bpf.o (repeatable) for the bundled \
                     validator, or --command CMD to run your own loader"
                ),
                None => CheckSpec::Objects {
                    paths: a.artifact,
                    mode: a.validation_mode.into(),
                },
            };
            run_check(spec, a.common).await
        }
        // Blocking HTTP, off the runtime's worker threads.
        Commands::Publish(a) => tokio::task::spawn_blocking(move || github::publish(&a)).await?,
        Commands::History(a) => match a.command {
            HistoryCommand::List(l) => {
                let limit = l.limit.map(|k| usize::try_from(k).unwrap_or(usize::MAX));
                let name = l.artifact_name.as_deref();
                print!("{}", history::list(&l.workdir, name, limit, l.json)?);
                Ok(0)
            }
        },
        Commands::Compare(a) => {
            let (base, head, options) = a.into_parts();
            Ok(compare::run(base, head, &options)?)
        }
        Commands::Merge(a) => merge_command(a),
        // Blocking I/O (downloads, hashing), off the runtime's worker threads.
        Commands::Kernels(a) => tokio::task::spawn_blocking(move || kernels::run(a)).await?,
    }
}

async fn run_check(spec: CheckSpec, common: CommonArgs) -> anyhow::Result<u8> {
    let cache_dir = common.cache.cache_dir();
    // Pinning may download (a source first seen): off the async workers.
    let (arg, locked, cache) = (
        common.matrix.clone(),
        common.locked,
        KernelCache::new(cache_dir.clone()),
    );
    let mut matrix = tokio::task::spawn_blocking(move || {
        kernels::prepare_matrix(arg.as_deref(), locked, &cache)
    })
    .await??;
    let check = check::prepare(&spec)?;
    let shard = common
        .shard
        .map(|spec| spec.restrict(&mut matrix))
        .transpose()?;
    // Taken before the run: the version is the code that was tested, even if
    // the tree changes while the kernels boot.
    let version = common
        .artifact_version
        .clone()
        .or_else(|| history::git_describe(Path::new(".")));
    let settings = Settings {
        concurrency: common
            .concurrency
            .map_or_else(engine::default_concurrency, usize::from),
        timeout: common.timeout,
        accel: common.accel,
        cache_dir,
        workdir: common.workdir.clone(),
        mirror: Mirror::from_env(),
    };
    let mut report = tokio::select! {
        report = engine::run(&matrix, &check, &settings) => report?,
        signal = interrupted() => {
            // Returning drops the run and with it every QEMU child
            // (kill_on_drop); no report is written for a partial run.
            bail!("interrupted by {signal}: stopped every QEMU, no report written");
        }
    };
    report.shard = shard;
    let json = write_report(&report, &common.out, common.markdown.as_deref())?;
    // The verdict stands even if it cannot be recorded: the history is a
    // convenience, the report is the result.
    if let Err(e) = history::Record::of(
        &report,
        &common.out,
        json.as_bytes(),
        common.artifact_name,
        version,
    )
    .and_then(|record| history::append(&common.workdir, &record))
    {
        eprintln!("bpfcompat: warning: this run is not in the history: {e}");
    }
    Ok(report.summary.exit_code as u8)
}

fn merge_command(args: MergeArgs) -> anyhow::Result<u8> {
    let inputs = args
        .reports
        .into_iter()
        .map(|path| Ok((path.clone(), Report::read(&path)?)))
        .collect::<Result<Vec<(PathBuf, Report)>, report::ReadError>>()?;
    let merged = merge::merge(inputs, args.allow_partial)?;
    for w in &merged.warnings {
        eprintln!("bpfcompat: warning: {w}");
    }
    write_report(&merged.report, &args.out, args.markdown.as_deref())?;
    Ok(merged.report.summary.exit_code as u8)
}

/// Writes the JSON report (returned, for its digest) and the Markdown one,
/// then prints the table and the counts.
fn write_report(report: &Report, out: &Path, markdown: Option<&Path>) -> anyhow::Result<String> {
    let json = report.to_json();
    report::write_atomically(out, json.as_bytes())
        .with_context(|| format!("cannot write report {}", out.display()))?;
    if let Some(md) = markdown {
        report::write_atomically(md, report::render_markdown(report).as_bytes())
            .with_context(|| format!("cannot write Markdown report {}", md.display()))?;
    }
    print!("{}", progress::table(&report.targets));
    let s = &report.summary;
    println!(
        "{} passed, {} failed, {} infra errors; report: {}",
        s.passed,
        s.failed,
        s.infra_errors,
        out.display()
    );
    Ok(json)
}

async fn interrupted() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler installs");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => "Ctrl-C",
        _ = term.recv() => "SIGTERM",
    }
}
