//! Faults on the guest's side, on the real test kernels under TCG: a command
//! that floods every output, a kernel that panics, a guest that powers off
//! early or hangs, QEMU killed from outside, two runs sharing one cache and
//! workdir, and a full disk under the workdir.
//!
//! Every case must end within a bounded time, with a schema-valid report
//! (checked by `Scratch`) whose verdict says what happened, or with a clear
//! error when no run can complete; and leave no QEMU process and nothing in
//! its TMPDIR behind.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bpfcompat_testkit::http::{Plan, TestServer};
use bpfcompat_testkit::tmpfs::Tmpfs;
use common::*;
use serde_json::Value;

/// What one console log may hold: `HEAD_BYTES` and `TAIL_BYTES` of
/// src/qemu/console.rs, and its one-line note of what it left out.
const CONSOLE_LOG_MAX: u64 = (1 << 20) + (64 << 10) + 200;
/// `bpfcompat_proto::OUTPUT_TAIL_BYTES`: what a report keeps of each stream.
const OUTPUT_TAIL_BYTES: usize = 4096;

/// Floods the console for 8 s: ~7 MB at the serial port's ~0.9 MB/s under
/// TCG, several times what a console log keeps.
const CONSOLE_FLOOD: &str =
    "timeout 8 yes 'console flood 0123456789abcdefghijklmnopqrstuvwxyz' | head -c 20971520 > /dev/console";

/// A scratch directory whose runs each get a TMPDIR inside it, so that
/// what a run leaves there (its result-socket directory) shows.
struct Fault {
    s: Scratch,
    tmp: PathBuf,
}

impl Fault {
    fn new() -> Fault {
        let s = Scratch::new();
        let tmp = s.path("tmp");
        std::fs::create_dir(&tmp).unwrap();
        Fault { s, tmp }
    }

    fn report(&self) -> PathBuf {
        self.s.path("report.json")
    }

    /// Runs bpfcompat with the report at `out`; fails if it took `bound` or
    /// longer.
    fn run_timed(&self, out: &Path, args: &[&str], bound: Duration) -> Run {
        let started = Instant::now();
        let run = self
            .s
            .run_full(out, args, &[("TMPDIR", self.tmp.to_str().unwrap())]);
        let took = started.elapsed();
        assert!(
            took < bound,
            "bpfcompat took {took:?}, the bound is {bound:?}: {}",
            run.context()
        );
        run
    }

    /// No QEMU started from this scratch directory still runs, and the
    /// runs' TMPDIR is empty.
    fn assert_nothing_left(&self, context: &str) {
        let qemus = qemus_under(self.s.dir.path());
        assert!(qemus.is_empty(), "QEMU left running: {qemus:?}\n{context}");
        let left: Vec<PathBuf> = std::fs::read_dir(&self.tmp)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert!(left.is_empty(), "left in TMPDIR: {left:?}\n{context}");
    }

    /// [`Fault::run_timed`], then [`Fault::assert_nothing_left`].
    fn run_to(&self, out: &Path, args: &[&str], bound: Duration) -> Run {
        let run = self.run_timed(out, args, bound);
        self.assert_nothing_left(&run.context());
        run
    }

    fn test_command(&self, cmd: &str, matrix: &Path, bound: Duration) -> Run {
        self.run_to(&self.report(), &command_args(cmd, matrix, &[]), bound)
    }

    /// [`Fault::test_command`], and while it runs: once `state` (polled
    /// every 100 ms) holds, `act` on what it found. Fails, saying `what` and
    /// how the run ended, if the run ends first. There is no deadline of its
    /// own, however slow the host: the run bounds the wait (its kernels'
    /// timeouts, and `bound`).
    fn test_command_until<T>(
        &self,
        cmd: &str,
        matrix: &Path,
        bound: Duration,
        what: &str,
        mut state: impl FnMut() -> Option<T>,
        act: impl FnOnce(T),
    ) -> Run {
        std::thread::scope(|scope| {
            let run = scope.spawn(|| self.test_command(cmd, matrix, bound));
            loop {
                // Asked before `state`: a state that came just before the
                // run ended still counts.
                let ended = run.is_finished();
                if let Some(found) = state() {
                    act(found);
                    break;
                }
                if ended {
                    let run = run.join().unwrap();
                    panic!("the run ended before {what}: {}", run.context());
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            run.join().unwrap()
        })
    }

    /// The console log of kernel `id` in the (only) run directory, once the
    /// run has created it.
    fn console_log(&self, id: &str) -> Option<PathBuf> {
        let run_dir = std::fs::read_dir(self.s.path("work/runs"))
            .ok()?
            .next()?
            .ok()?
            .path();
        Some(run_dir.join(id).join("console.log")).filter(|p| p.is_file())
    }
}

/// The target's verdict: its status, class code, and words its reason has.
fn assert_verdict(t: &Value, status: &str, code: &str, reason: &[&str]) {
    assert_eq!(t["status"], status, "{t}");
    assert_eq!(t["classification"]["code"], code, "{t}");
    let text = t["classification"]["reason"].as_str().unwrap();
    for word in reason {
        assert!(
            text.contains(word),
            "{word:?} is not in the reason {text:?}"
        );
    }
}

fn assert_passed(t: &Value) {
    assert_eq!(t["status"], "pass", "{t}");
    assert!(t["classification"].is_null(), "{t}");
}

fn console_tail(t: &Value) -> &str {
    t["console_tail"]
        .as_str()
        .unwrap_or_else(|| panic!("no console tail: {t}"))
}

/// A command writing far more than the guest's memory to stdout and to
/// stderr, and more than the console log keeps to the console, still gets
/// its verdict, and every copy of its output stays bounded. With 128 MB of
/// guest RAM each stream alone outgrows the memory, so an agent that kept
/// what it read would be OOM-killed; larger floods only take longer (under
/// TCG the agent reads ~12 MB/s).
#[test]
fn a_flooding_command_keeps_bounded_logs_and_its_verdict() {
    const STREAM: u64 = 128 << 20;
    let _lock = boot_lock();
    let f = Fault::new();
    let matrix =
        f.s.matrix(&[(&K61, "    memory_mb: 128\n    timeout: 5m\n")]);
    let cmd = format!(
        "{CONSOLE_FLOOD}
head -c {STREAM} /dev/zero; head -c {STREAM} /dev/zero >&2
echo end-of-stderr >&2; echo; awk '/MemTotal/ {{print \"memtotal-kb=\" $2}}' /proc/meminfo"
    );
    let run = f.test_command(&cmd, &matrix, Duration::from_secs(6 * 60));
    assert_eq!(run.code, 0, "{}", run.context());
    let t = run.target(K61.id);
    assert_passed(t);
    let test = run.command_test(K61.id);
    assert_eq!(test["exit_code"], 0);
    let stdout = test["stdout_tail"].as_str().unwrap();
    let stderr = test["stderr_tail"].as_str().unwrap();
    assert_eq!(stdout.len(), OUTPUT_TAIL_BYTES);
    assert_eq!(stderr.len(), OUTPUT_TAIL_BYTES);
    assert!(stderr.ends_with("\0\0end-of-stderr\n"), "{stderr:?}");
    let memtotal_kb: u64 = stdout
        .trim_end()
        .rsplit_once("memtotal-kb=")
        .and_then(|(_, kb)| kb.parse().ok())
        .unwrap_or_else(|| panic!("no memtotal-kb= at the end of {stdout:?}"));
    assert!(
        STREAM > memtotal_kb * 1024,
        "the guest has {memtotal_kb} kB"
    );
    assert!(test["stdout_bytes"].as_u64().unwrap() > STREAM);
    assert_eq!(
        test["stderr_bytes"],
        STREAM + "end-of-stderr\n".len() as u64
    );

    let log = PathBuf::from(t["console_log"].as_str().unwrap());
    let size = std::fs::metadata(&log).unwrap().len();
    assert!(size <= CONSOLE_LOG_MAX, "console log of {size} bytes");
    let text = String::from_utf8_lossy(&std::fs::read(&log).unwrap()).into_owned();
    let (dropped, tail) = text
        .split_once("[bpfcompat: ")
        .and_then(|(_, rest)| rest.split_once(" console bytes not kept"))
        .unwrap_or_else(|| panic!("the console log says nothing was left out ({size} bytes)"));
    assert!(dropped.parse::<u64>().unwrap() > 0, "{dropped}");
    assert!(
        tail.contains("console flood"),
        "the kept tail is the flood's"
    );
    let report_size = std::fs::metadata(f.report()).unwrap().len();
    assert!(report_size < 64 << 10, "report of {report_size} bytes");
}

/// A loader that eats the guest's memory is the matrix's problem (the guest
/// is too small), not the kernel's or the check's: INFRA_GUEST_OOM, naming
/// the size and how to raise it.
#[test]
fn a_guest_too_small_for_its_job_is_out_of_memory() {
    let _lock = boot_lock();
    let f = Fault::new();
    let matrix = f.s.matrix(&[(&K61, "    memory: 128M\n")]);
    let cmd = "awk 'BEGIN { s = \"x\"; while (1) s = s s }'";
    let run = f.test_command(cmd, &matrix, Duration::from_secs(5 * 60));
    assert_eq!(run.code, 1, "{}", run.context());
    let t = run.target(K61.id);
    assert_eq!(t["status"], "infra_error", "{t}");
    let class = &t["classification"];
    assert_eq!(class["code"], "INFRA_GUEST_OOM", "{t}");
    let reason = class["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("the guest ran out of its 128 MB of memory: ")
            && reason.contains("Out of memory"),
        "{reason}"
    );
    assert!(
        class["hint"].as_str().unwrap().contains("memory: 1G"),
        "{t}"
    );
}

#[test]
fn a_panicking_kernel_is_reported_with_its_console() {
    let _lock = boot_lock();
    let f = Fault::new();
    let matrix = f.s.matrix(&[(&K510, "    timeout: 2m\n")]);
    let run = f.test_command(
        "echo c > /proc/sysrq-trigger; sleep 30",
        &matrix,
        Duration::from_secs(3 * 60),
    );
    assert_eq!(run.code, 1, "{}", run.context());
    let t = run.target(K510.id);
    assert_verdict(t, "infra_error", "KERNEL_PANIC", &["Kernel panic"]);
    assert!(console_tail(t).contains("sysrq"), "{t}");
}

/// The check powers the machine off before the agent can report: `poweroff
/// -f` on one kernel, the magic SysRq key on the other.
#[test]
fn a_guest_that_powers_off_early_says_so() {
    let _lock = boot_lock();
    let f = Fault::new();
    let matrix =
        f.s.matrix(&[(&K61, "    timeout: 2m\n"), (&TINY, "    timeout: 2m\n")]);
    let run = f.test_command(
        "if [ \"$(uname -r)\" = 6.1.192 ]; then echo o > /proc/sysrq-trigger; else poweroff -f; fi; sleep 100",
        &matrix,
        Duration::from_secs(3 * 60),
    );
    assert_eq!(run.code, 1, "{}", run.context());
    for (k, console) in [(&K61, "reboot: Power down"), (&TINY, "sysrq: Power Off")] {
        let t = run.target(k.id);
        assert_verdict(
            t,
            "infra_error",
            "INFRA_ERROR",
            &[
                "shut down before the agent sent its result",
                "reboot: Power down",
            ],
        );
        assert!(
            t["classification"]["hint"]
                .as_str()
                .unwrap()
                .contains("Remove the poweroff"),
            "{t}"
        );
        assert!(console_tail(t).contains(console), "{t}");
        assert!(
            t["timing_ms"]["total"].as_u64().unwrap() < 60_000,
            "ended at the power-off, not at the timeout: {t}"
        );
    }
}

#[test]
fn a_hung_kernel_times_out_and_the_others_finish() {
    let _lock = boot_lock();
    let f = Fault::new();
    let matrix = f.s.matrix(&[(&K61, "    timeout: 25s\n"), (&TINY, "")]);
    let run = f.run_to(
        &f.report(),
        &command_args(
            "[ \"$(uname -r)\" != 6.1.0-47-cloud-amd64 ] || sleep 1000",
            &matrix,
            &["--timeout", "2m"],
        ),
        Duration::from_secs(3 * 60),
    );
    assert_eq!(run.code, 1, "{}", run.context());
    let hung = run.target(K61.id);
    assert_verdict(
        hung,
        "infra_error",
        "INFRA_TIMEOUT",
        &["no result within 25s", "the check itself hung"],
    );
    assert!(
        hung["timing_ms"]["total"].as_u64().unwrap() < 60_000,
        "the matrix timeout wins"
    );
    assert!(
        console_tail(hung).ends_with("bpfcompat-guest: check 1 of 1: the command"),
        "the console names the check that hung: {hung}"
    );
    assert_passed(run.target(TINY.id));
}

/// The OOM killer's way: SIGKILL to one kernel's QEMU while its check runs.
#[test]
fn qemu_killed_from_outside_fails_only_its_kernel() {
    let _lock = boot_lock();
    let f = Fault::new();
    let matrix = f.s.matrix(&[(&K61, "    timeout: 2m\n"), (&TINY, "")]);
    // The marker is computed, so only a running check can print it.
    let cmd = "[ \"$(uname -r)\" != 6.1.0-47-cloud-amd64 ] || { echo check-$((6*7))-running > /dev/console; sleep 1000; }";
    let run = f.test_command_until(
        cmd,
        &matrix,
        Duration::from_secs(3 * 60),
        "the 6.1 check started",
        || {
            let text = std::fs::read(f.console_log(K61.id)?).ok()?;
            String::from_utf8_lossy(&text)
                .contains("check-42-running")
                .then_some(())
        },
        |()| {
            let qemus = qemus_under(f.s.dir.path());
            let victim = qemus
                .iter()
                .find(|(_, cmdline)| cmdline.contains(K61.file))
                .unwrap_or_else(|| panic!("no QEMU booting {} in {qemus:?}", K61.file));
            // SAFETY: kill(2) on a QEMU this test started.
            assert_eq!(unsafe { libc::kill(victim.0 as i32, libc::SIGKILL) }, 0);
        },
    );
    assert_eq!(run.code, 1, "{}", run.context());
    let killed = run.target(K61.id);
    assert_verdict(
        killed,
        "infra_error",
        "INFRA_ERROR",
        &[
            "QEMU was killed by signal 9 (SIGKILL) before the guest sent its result",
            "bpfcompat did not send it",
            "OOM killer",
        ],
    );
    assert!(
        console_tail(killed).contains("check-42-running"),
        "{killed}"
    );
    assert_passed(run.target(TINY.id));
}

/// Two runs at once on one cache and one workdir, the kernel from a URL:
/// one download (the other run waits for it), two reports, two records.
#[test]
fn two_runs_at_once_share_the_cache_and_the_history() {
    let _lock = boot_lock();
    let f = Fault::new();
    // Slow enough that the second run asks while the first downloads.
    let plan = Plan {
        delay: Duration::from_secs(1),
        ..Plan::default()
    };
    let server = TestServer::start(std::fs::read(kernels_dir().join(TINY.file)).unwrap(), plan);
    let matrix = f.s.write(
        "matrix.yaml",
        &format!(
            "name: shared\nkernels:\n  - id: {}\n    source:\n      url: {}\n      sha256: {}\n",
            TINY.id,
            server.url("vmlinuz"),
            TINY.sha256
        ),
    );
    let outs = [f.s.path("a.json"), f.s.path("b.json")];
    let args = command_args("uname -r", &matrix, &[]);
    let bound = Duration::from_secs(3 * 60);
    let runs: Vec<Run> = std::thread::scope(|scope| {
        let threads: Vec<_> = outs
            .iter()
            .map(|out| {
                let (f, args) = (&f, &args);
                scope.spawn(move || f.run_timed(out, args, bound))
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    });
    f.assert_nothing_left("after both runs");
    for run in &runs {
        assert_eq!(run.code, 0, "{}", run.context());
        assert_passed(run.target(TINY.id));
        assert_eq!(
            run.command_test(TINY.id)["stdout_tail"],
            format!("{}\n", TINY.release)
        );
    }
    assert_eq!(server.requests(), 1, "the kernel is downloaded once");
    let history = std::fs::read_to_string(f.s.path("work/history.jsonl")).unwrap();
    let mut recorded: Vec<PathBuf> = history
        .lines()
        .map(|line| {
            let record: Value = serde_json::from_str(line).unwrap();
            PathBuf::from(record["report"]["path"].as_str().unwrap())
        })
        .collect();
    recorded.sort();
    let expected: Vec<PathBuf> = outs.iter().map(|o| o.canonicalize().unwrap()).collect();
    assert_eq!(recorded, expected, "one record per run:\n{history}");
}

/// The workdir cannot even hold the initramfs: the run stops at once,
/// naming the file and the full disk, and writes no report.
#[test]
fn a_full_workdir_stops_the_run_with_the_path_named() {
    let f = Fault::new();
    let _disk = Tmpfs::mount(f.s.path("work"), "4m");
    let matrix = f.s.matrix(&[(&TINY, "")]);
    let run = f.test_command("true", &matrix, Duration::from_secs(60));
    assert_eq!(run.code, 1, "{}", run.context());
    assert!(run.report.is_none(), "no report: {}", run.context());
    let message = format!(
        "bpfcompat: error: cannot write initramfs {}/runs/",
        f.s.path("work").display()
    );
    assert!(run.stderr.contains(&message), "{}", run.stderr);
    assert_eq!(
        run.stderr.matches("No space left on device").count(),
        1,
        "said once: {}",
        run.stderr
    );
    // Nothing half-written keeps the space: the run directory is gone.
    let runs: Vec<_> = std::fs::read_dir(f.s.path("work").join("runs"))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(runs.is_empty(), "left behind: {runs:?}");
}

/// The initramfs fits but the console log does not: the disk fills while the
/// guest boots, then the guest floods its console. The kernel's verdict is
/// an infrastructure error naming the log and the full disk.
#[test]
fn a_console_log_on_a_full_disk_is_an_error_naming_it() {
    let _lock = boot_lock();
    let f = Fault::new();
    let disk = Tmpfs::mount(f.s.path("work"), "64m");
    let matrix = f.s.matrix(&[(&K61, "    timeout: 2m\n")]);
    let cmd = format!("sleep 3; {CONSOLE_FLOOD}; echo done");
    // The console log is created after the initramfs is written.
    let run = f.test_command_until(
        &cmd,
        &matrix,
        Duration::from_secs(3 * 60),
        "the console log was created",
        || f.console_log(K61.id),
        |_| disk.fill(),
    );
    assert_eq!(run.code, 1, "{}", run.context());
    let t = run.target(K61.id);
    let log = t["console_log"].as_str().unwrap();
    assert_verdict(
        t,
        "infra_error",
        "INFRA_ERROR",
        &[
            &format!("cannot write the console log {log}: "),
            "No space left on device",
        ],
    );
}
