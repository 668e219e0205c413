//! One boot: start QEMU on a kernel and initramfs (or restore a snapshot of
//! one), collect the console and the agent's result, enforce the timeout.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use bpfcompat_proto::READY_LINE;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::UnixListener;
use tokio::sync::{oneshot, watch};

use super::console::ConsoleLog;
use super::job::{self, JobRecord, Received, Start};
use super::{accel, Qemu, QemuError};
use crate::arch::Arch;
use crate::report::Accel;

/// Result bytes accepted from one guest; a real frame is far smaller, so a
/// guest writing endlessly to ttyS1 cannot exhaust the host.
const MAX_RESULT_BYTES: usize = 64 << 20;
const CONSOLE_TAIL_LINES: usize = 40;

#[derive(Clone, Copy)]
pub struct BootSpec<'a> {
    /// The kernel's id, for error messages.
    pub label: &'a str,
    pub kernel: &'a Path,
    pub initrd: &'a Path,
    pub accel: Accel,
    /// Stop the guest if its console is still empty this long after the
    /// start: a kernel prints within a second even under TCG, so silence
    /// means the accelerator is not running it.
    pub silence_limit: Option<Duration>,
    pub memory_mb: u32,
    pub cpus: u32,
    pub cmdline_extra: Option<&'a str>,
    pub timeout: Duration,
    pub console_log: &'a Path,
    /// Where QEMU connects to deliver ttyS1; must be a short path (sockaddr_un).
    pub result_socket: &'a Path,
    /// How the guest starts and gets its job.
    pub start: Start<'a>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// QEMU ended without us: a guest reset, a panic, a QEMU error, or a
    /// signal from outside (the OOM killer); `None` if the status was lost.
    Exited(Option<std::process::ExitStatus>),
    /// We killed it at the timeout.
    TimedOut,
    /// We killed it at `silence_limit`: the console never said a word.
    Silent,
    /// We stopped it once its result had arrived whole: what the guest does
    /// after (reset, shut down) cannot change the verdict, and under TCG
    /// it takes a tenth of a second.
    Answered,
}

#[derive(Debug)]
pub struct BootRecord {
    pub ending: Ending,
    /// Everything the guest wrote to ttyS1.
    pub result: Vec<u8>,
    /// When the agent's ready line arrived, from QEMU's start.
    pub ready_after: Option<Duration>,
    pub elapsed: Duration,
    /// First console line that says the kernel died.
    pub panic_line: Option<String>,
    /// First console line that says the guest ran out of memory.
    pub oom_line: Option<String>,
    pub console_tail: String,
    pub qemu_stderr: String,
    /// How the job got to a waiting or restored guest.
    pub job: Option<JobRecord>,
}

pub async fn boot(qemu: &Qemu, spec: &BootSpec<'_>) -> Result<BootRecord, QemuError> {
    let channel_err = |err| QemuError::Channel {
        kernel: spec.label.to_owned(),
        err,
    };
    let _ = std::fs::remove_file(spec.result_socket);
    let listener = UnixListener::bind(spec.result_socket).map_err(channel_err)?;
    let console_err = |err| QemuError::ConsoleLog {
        path: spec.console_log.to_owned(),
        err,
    };
    let console_file = std::fs::File::create(spec.console_log).map_err(console_err)?;

    let monitor = spec.result_socket.with_extension("qmp");
    let mut cmd = command(qemu, spec, &monitor);
    let start = Instant::now();
    let mut child = cmd.spawn().map_err(QemuError::Spawn)?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let stderr = child.stderr.take().expect("stderr is piped");
    let (exited_tx, exited_rx) = watch::channel(false);
    let (printed_tx, printed_rx) = watch::channel(false);
    let (received, receiving) = Received::new();
    let (writer_tx, writer_rx) = oneshot::channel();
    let (give_up_tx, give_up_rx) = oneshot::channel::<()>();
    let (answered_tx, answered_rx) = oneshot::channel::<()>();
    let driver = async {
        let (record, writer) = job::drive(spec.start, &monitor, start, received, writer_rx).await;
        if record.as_ref().is_some_and(|r| r.failed.is_some()) {
            let _ = give_up_tx.send(());
        }
        (record, writer)
    };

    let waiter = async {
        let ending = tokio::select! {
            status = child.wait() => Ending::Exited(status.ok()),
            _ = tokio::time::sleep(spec.timeout) => {
                let _ = child.kill().await;
                Ending::TimedOut
            }
            () = silence(spec.silence_limit, printed_rx) => {
                let _ = child.kill().await;
                Ending::Silent
            }
            Ok(()) = give_up_rx => {
                let _ = child.kill().await;
                Ending::Exited(None)
            }
            Ok(()) = answered_rx => {
                let _ = child.kill().await;
                Ending::Answered
            }
        };
        let elapsed = start.elapsed();
        let _ = exited_tx.send(true);
        (ending, elapsed)
    };
    let console = async {
        let mut log = ConsoleLog::new(console_file);
        let mut stdout = stdout;
        let mut buf = vec![0u8; 16 << 10];
        loop {
            match stdout.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    printed_tx.send_if_modified(|printed| !std::mem::replace(printed, true));
                    log.push(&buf[..n])?
                }
            }
        }
        log.finish(CONSOLE_TAIL_LINES)
    };
    let ((ending, elapsed), console, qemu_stderr, (result, ready_after), (job, _writer)) = tokio::join!(
        waiter,
        console,
        read_bounded(stderr, 16 << 10),
        read_result(
            listener,
            exited_rx,
            start,
            receiving,
            writer_tx,
            answered_tx
        ),
        driver,
    );
    let _ = std::fs::remove_file(spec.result_socket);
    let _ = std::fs::remove_file(&monitor);
    let console = console.map_err(console_err)?;
    Ok(BootRecord {
        ending,
        result,
        // A restored guest never says READY: it was ready when saved.
        ready_after: ready_after.or(job.as_ref().and_then(|j| j.accepted_after)),
        job,
        elapsed,
        panic_line: console.panic_line,
        oom_line: console.oom_line,
        console_tail: console.tail,
        qemu_stderr: String::from_utf8_lossy(&qemu_stderr).trim().to_owned(),
    })
}

/// The QEMU command line for one boot: the kernel and initramfs, the
/// console on ttyS0 (our stdout), the result channel on ttyS1 (a socket).
fn command(qemu: &Qemu, spec: &BootSpec<'_>, monitor: &Path) -> tokio::process::Command {
    let append = kernel_cmdline(qemu.arch, spec.cmdline_extra, spec.start.job().is_some());
    let mut cmd = tokio::process::Command::new(&qemu.binary);
    cmd.args([
        "-nodefaults",
        "-no-user-config",
        "-no-reboot",
        "-display",
        "none",
    ])
    // No network device: the user's loader runs as root and must not
    // reach the internet or the host.
    .args(["-nic", "none"])
    .args(accel::accel_args(qemu.arch, spec.accel))
    .args(["-m", &spec.memory_mb.to_string()])
    .args(["-smp", &spec.cpus.to_string()])
    .arg("-kernel")
    .arg(spec.kernel)
    .arg("-initrd")
    .arg(spec.initrd)
    .args(["-append", &append])
    .args(["-chardev", "stdio,id=console,signal=off"])
    .args(["-serial", "chardev:console"])
    .arg("-chardev")
    .arg(format!(
        "socket,id=result,path={}",
        qemu_value(spec.result_socket)
    ))
    .args(["-serial", "chardev:result"])
    .args(job_args(spec.start, monitor))
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .kill_on_drop(true);

    cmd
}

/// The kernel command line of a boot; the one of a saved guest is the one
/// it was booted with.
pub fn kernel_cmdline(arch: Arch, extra: Option<&str>, wait: bool) -> String {
    // Expedited RCU grace periods: attaching and detaching a program waits
    // for several (tracepoints, kprobes, perf events), each tens of ms under
    // TCG otherwise (measured: 2 kprobes attached in 60 ms instead of 127).
    // What loads and attaches does not depend on it. A `cmdline:` of the
    // matrix comes after, so it can turn it off.
    let mut append = format!(
        "console={} panic=-1 oops=panic loglevel=4 rdinit=/init rcupdate.rcu_expedited=1",
        arch.console()
    );
    // A guest to be saved zeroes the pages it frees (the initramfs it
    // unpacked, the kernel's init memory): the snapshot skips zero pages.
    for word in [
        extra,
        wait.then_some(bpfcompat_proto::job::WAIT_PARAM),
        wait.then_some("init_on_free=1"),
    ]
    .into_iter()
    .flatten()
    {
        append.push(' ');
        append.push_str(word);
    }
    append
}

/// The monitor a waiting guest is saved or watched through, the fw_cfg
/// file its job travels in, and the file a restored one is loaded from.
fn job_args(start: Start<'_>, monitor: &Path) -> Vec<String> {
    if start.job().is_none() {
        return Vec::new();
    }
    let mut args = vec![
        "-qmp".to_owned(),
        format!("unix:{},server=on,wait=off", qemu_value(monitor)),
    ];
    if let Some(file) = start.job().and_then(|job| job.fw_cfg) {
        args.extend([
            "-fw_cfg".to_owned(),
            format!(
                "name={},file={}",
                bpfcompat_proto::job::FW_CFG_NAME,
                qemu_value(file)
            ),
        ]);
    }
    if let Start::Restore { from, .. } = start {
        args.extend(["-incoming".to_owned(), format!("file:{}", qemu_value(from))]);
    }
    args
}

/// A path as a QEMU option value: commas are escaped by doubling them.
fn qemu_value(path: &Path) -> String {
    path.display().to_string().replace(',', ",,")
}

/// Resolves when `limit` has passed and the console is still empty; never,
/// once it has printed or without a limit.
async fn silence(limit: Option<Duration>, mut printed: watch::Receiver<bool>) {
    let Some(limit) = limit else {
        return std::future::pending().await;
    };
    if tokio::time::timeout(limit, printed.wait_for(|p| *p))
        .await
        .is_ok()
    {
        std::future::pending::<()>().await;
    }
}

async fn read_result(
    listener: UnixListener,
    mut exited: watch::Receiver<bool>,
    start: Instant,
    receiving: job::Receiving,
    writer: oneshot::Sender<tokio::net::unix::OwnedWriteHalf>,
    answered: oneshot::Sender<()>,
) -> (Vec<u8>, Option<Duration>) {
    let mut answered = Some(answered);
    let stream = tokio::select! {
        // A connection already queued wins over the exit notice, so a guest
        // that answered and reset at once is not lost.
        biased;
        accepted = listener.accept() => match accepted {
            Ok((stream, _)) => stream,
            Err(_) => return (Vec::new(), None),
        },
        _ = exited.wait_for(|e| *e) => return (Vec::new(), None),
    };
    let (mut stream, write) = stream.into_split();
    // Dropping the writing half would shut the port down: kept here when
    // no job needs it.
    let _unused = writer.send(write).err();
    let mut ready_after = None;
    let mut buf = vec![0u8; 64 << 10];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let result = receiving.push(&buf[..n], MAX_RESULT_BYTES);
                // Only the new bytes (and a ready line's length before
                // them): a restored guest never says READY, and its result
                // can be megabytes arriving a few bytes at a time.
                let new = result.len().saturating_sub(n + READY_LINE.len());
                if ready_after.is_none() && bpfcompat_proto::ready_offset(&result[new..]).is_some()
                {
                    ready_after = Some(start.elapsed());
                }
                if answered.is_some() && bpfcompat_proto::frame_complete(&result) {
                    let _ = answered.take().map(|a| a.send(()));
                }
            }
        }
    }
    (receiving.finish(), ready_after)
}

async fn read_bounded(mut reader: impl AsyncRead + Unpin, limit: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = reader.read(&mut buf).await {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n.min(limit.saturating_sub(out.len()))]);
    }
    out
}
