//! The `bpfcompat` command: parse the command line, run the subcommand, map
//! its outcome to the exit code. Everything else is in the library.

use std::process::ExitCode;

use bpfcompat::cli::{Cli, Commands, HistoryCommand, ShardsCommand};
use bpfcompat::commands::{self, test::Interrupted};
use bpfcompat::results::{compare, history};
use bpfcompat::{escape, github};
use clap::Parser;

/// The static release build resolves host names with glibc's built-in
/// `files` and `dns` only. Another module named in the host's nsswitch.conf
/// (mdns, myhostname, resolve) would be dlopen()ed with the host's shared
/// glibc, which a static binary cannot safely load when it differs.
#[cfg(target_feature = "crt-static")]
fn static_nss() {
    extern "C" {
        fn __nss_configure_lookup(
            db: *const libc::c_char,
            line: *const libc::c_char,
        ) -> libc::c_int;
    }
    // SAFETY: two NUL-terminated strings; called before any other thread.
    unsafe { __nss_configure_lookup(c"hosts".as_ptr(), c"files dns".as_ptr()) };
}

fn main() -> ExitCode {
    #[cfg(target_feature = "crt-static")]
    static_nss();
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
    let result = runtime.block_on(dispatch(cli));
    // An interrupted run may leave a download blocked in a read; its thread
    // must not hold the exit up (what it wrote is a temp file that the cache
    // sweeps).
    runtime.shutdown_timeout(std::time::Duration::from_millis(500));
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            // Errors quote reports, matrices and servers.
            eprintln!("bpfcompat: error: {}", escape::plain(&format!("{e:#}")));
            ExitCode::from(e.downcast_ref::<Interrupted>().map_or(1, |i| i.exit_code))
        }
    }
}

async fn dispatch(cli: Cli) -> anyhow::Result<u8> {
    match cli.command {
        Commands::TestCommand(a) => {
            let (spec, options) = a.into_check();
            commands::test::run(spec, options).await
        }
        Commands::Test(a) => {
            let (spec, options) = a.into_check()?;
            commands::test::run(spec, options).await
        }
        // Blocking HTTP, off the runtime's worker threads.
        Commands::Publish(a) => {
            let options = a.into_options();
            tokio::task::spawn_blocking(move || github::publish(&options)).await?
        }
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
        Commands::Merge(a) => commands::merge::run(a.into_options()),
        Commands::Shards(a) => match a.command {
            ShardsCommand::Plan(p) => commands::shards::plan(p.into_options()),
        },
        // Blocking I/O (downloads, hashing), off the runtime's worker threads.
        Commands::Kernels(a) => {
            let options = a.into_options();
            tokio::task::spawn_blocking(move || commands::kernels::run(options)).await?
        }
        Commands::Doctor(a) => commands::doctor::run(&a.into_options()),
        Commands::Inspect(a) => commands::preflight::inspect(&a.objects, a.json),
        Commands::Report(a) => commands::merge::render(a.into_options()),
    }
}
