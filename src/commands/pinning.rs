//! The lock-file step every run starts with: load the matrix a command
//! names and pin its sources ([`prepare_matrix`]), with a download bar on a
//! terminal.

use std::io::IsTerminal;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};

use crate::kernel::{self, KernelCache, Mirror, Options, Transfer};
use crate::matrix::lock::{self, LockMode};
use crate::matrix::shipped;
use crate::matrix::Matrix;
use crate::term::progress::transfer_line;

/// Options for resolving one kernel here: the mirror, and a progress bar on
/// a terminal (bytes and rate).
pub(super) fn options_for(id: &str) -> Options {
    Options {
        mirror: Mirror::from_env(),
        progress: download_bar(id),
        ..Options::default()
    }
}

fn download_bar(id: &str) -> Option<kernel::ProgressFn> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {prefix} {msg}").expect("template parses"),
    );
    bar.set_prefix(id.to_owned());
    let started = Instant::now();
    Some(Arc::new(move |t: Transfer| {
        bar.set_message(transfer_line(t, started.elapsed()));
        if t.total == Some(t.done) {
            bar.finish_and_clear();
        }
    }))
}

/// Load the matrix a test command names and pin its unpinned sources from the
/// lock file, resolving (and so fetching) those it lacks unless `locked`.
pub fn prepare_matrix(
    arg: Option<&Path>,
    locked: bool,
    cache: &KernelCache,
) -> anyhow::Result<Matrix> {
    let mut matrix = shipped::load(arg)?;
    let mode = if locked {
        LockMode::Locked
    } else {
        LockMode::Update
    };
    pin(&mut matrix, mode, cache)?;
    Ok(matrix)
}

pub(super) fn pin(
    matrix: &mut Matrix,
    mode: LockMode,
    cache: &KernelCache,
) -> anyhow::Result<lock::Pinned> {
    let pinned = lock::pin_matrix(matrix, mode, cache, &|id| {
        eprintln!("[{id}] resolving its source (not pinned by the lock file yet)");
        options_for(id)
    })?;
    for (id, err) in &pinned.failed {
        eprintln!(
            "bpfcompat: warning: kernel {id}: {}",
            crate::escape::plain(&err.to_string())
        );
    }
    if pinned.written {
        eprintln!(
            "bpfcompat: wrote {} ({} new pin(s), {} sweep(s) swept); commit it so every run \
             boots the same kernels",
            matrix.lock_path().display(),
            pinned.resolved.len(),
            pinned.swept
        );
    }
    Ok(pinned)
}
