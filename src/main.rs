mod cli;
mod engine;
mod github;
mod guest;
mod kernel;
mod kernels;
mod lock;
mod matrix;
mod progress;
mod qemu;
mod report;
mod shipped;
mod verdict;

use std::process::ExitCode;

use anyhow::{bail, Context as _};
use clap::Parser;

use cli::{Cli, Commands, CommonArgs};
use engine::{CommandCheck, Settings};
use kernel::{KernelCache, Mirror};

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
            eprintln!("bpfcompat: error: {e:#}");
            ExitCode::from(1)
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<u8> {
    let (check, common) = match cli.command {
        Commands::TestCommand(a) => (
            CommandCheck {
                command: a.cmd,
                bin: a.bin,
                artifact: a.artifact,
                expected_exit: i32::from(a.expect_exit),
            },
            a.common,
        ),
        Commands::Test(a) => {
            let Some(command) = a.command else {
                bail!(
                    "checking .bpf.o objects with the bundled validator (`test --artifact` without \
                     `--command`) is not available in this version yet; run your loader instead \
                     with `bpfcompat test --command CMD` or `bpfcompat test-command --cmd CMD`"
                );
            };
            (
                CommandCheck {
                    command,
                    bin: a.command_binary,
                    artifact: a.artifact,
                    expected_exit: i32::from(a.command_expect_exit),
                },
                a.common,
            )
        }
        // Blocking HTTP, off the runtime's worker threads.
        Commands::Publish(a) => {
            return tokio::task::spawn_blocking(move || github::publish(&a)).await?
        }
        Commands::Kernels(a) => {
            return tokio::task::spawn_blocking(move || kernels::run(a)).await?
        }
    };
    run_command(check, common).await
}

async fn run_command(check: CommandCheck, common: CommonArgs) -> anyhow::Result<u8> {
    let cache_dir = common.cache.cache_dir();
    // Pinning may download (a source first seen): off the async workers.
    let (arg, locked, cache) = (
        common.matrix.clone(),
        common.locked,
        KernelCache::new(cache_dir.clone()),
    );
    let matrix = tokio::task::spawn_blocking(move || {
        kernels::prepare_matrix(arg.as_deref(), locked, &cache)
    })
    .await??;
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
    let report = tokio::select! {
        report = engine::run_command(&matrix, &check, &settings) => report?,
        signal = interrupted() => {
            // Returning drops the run and with it every QEMU child
            // (kill_on_drop); no report is written for a partial run.
            bail!("interrupted by {signal}: stopped every QEMU, no report written");
        }
    };
    report::write_atomically(&common.out, report.to_json().as_bytes())
        .with_context(|| format!("cannot write report {}", common.out.display()))?;
    if let Some(md) = &common.markdown {
        report::write_atomically(md, report::render_markdown(&report).as_bytes())
            .with_context(|| format!("cannot write Markdown report {}", md.display()))?;
    }
    print!("{}", progress::table(&report.targets));
    let s = &report.summary;
    println!(
        "{} passed, {} failed, {} infra errors; report: {}",
        s.passed,
        s.failed,
        s.infra_errors,
        common.out.display()
    );
    Ok(s.exit_code as u8)
}

async fn interrupted() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler installs");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => "Ctrl-C",
        _ = term.recv() => "SIGTERM",
    }
}
