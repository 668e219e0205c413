//! Behavior mode: with run statistics on and every attached program's link
//! held, run a built-in workload that touches the common hooks, then the
//! contract's functional tests, and read each program's run count.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::os::fd::{FromRawFd, OwnedFd};
use std::time::Duration;

use bpfcompat_proto::object::{
    tail, BehaviorOutcome, Diagnosis, FailureClass, FunctionalTest, FunctionalTestOutcome, Phase,
    RunStats,
};

use crate::command;

/// Turns run statistics on for as long as the returned fd (if any) lives:
/// `BPF_ENABLE_STATS` (5.8+), else the `kernel.bpf_stats_enabled` sysctl
/// (5.1+). Records how, or why not.
pub fn enable_stats(out: &mut BehaviorOutcome) -> Option<OwnedFd> {
    let fd = unsafe { libbpf_sys::bpf_enable_stats(libbpf_sys::BPF_STATS_RUN_TIME) };
    if fd >= 0 {
        out.stats = Some("BPF_ENABLE_STATS".into());
        return Some(unsafe { OwnedFd::from_raw_fd(fd) });
    }
    let syscall = std::io::Error::from_raw_os_error(-fd);
    match std::fs::write("/proc/sys/kernel/bpf_stats_enabled", "1") {
        Ok(()) => out.stats = Some("kernel.bpf_stats_enabled".into()),
        Err(e) => {
            out.stats_error = Some(format!(
                "this kernel has no BPF run statistics (BPF_ENABLE_STATS: {syscall}; \
                 kernel.bpf_stats_enabled: {e}); they exist from 5.1 on, so run counts are \
                 not known here"
            ))
        }
    }
    None
}

/// A program's run count and time, read from its fd.
pub fn run_stats(prog_fd: i32) -> Option<RunStats> {
    let mut info = libbpf_sys::bpf_prog_info::default();
    let mut len = std::mem::size_of::<libbpf_sys::bpf_prog_info>() as u32;
    let rc = unsafe {
        libbpf_sys::bpf_prog_get_info_by_fd(prog_fd, &mut info as *mut _ as *mut _, &mut len)
    };
    (rc == 0).then_some(RunStats {
        run_count: info.run_cnt,
        run_time_ns: info.run_time_ns,
    })
}

/// One workload step.
type Step = fn() -> std::io::Result<()>;

/// Runs the built-in workload; one line per step, `: error` if it failed.
pub fn workload() -> Vec<String> {
    let steps: [(&str, Step); 7] = [
        ("exec /bin/sh -c true", exec),
        ("fork and wait", fork),
        ("open, write and read a file in /tmp", file_io),
        ("a TCP exchange on lo", tcp),
        ("a UDP exchange on lo", udp),
        ("socket options and a sysctl read", sockopt_sysctl),
        ("sleep 20 ms", sleep),
    ];
    steps
        .iter()
        .map(|(what, step)| match step() {
            Ok(()) => (*what).to_owned(),
            Err(e) => format!("{what}: {e}"),
        })
        .collect()
}

fn sleep() -> std::io::Result<()> {
    std::thread::sleep(Duration::from_millis(20));
    Ok(())
}

fn exec() -> std::io::Result<()> {
    std::process::Command::new("/bin/sh")
        .args(["-c", "true"])
        .status()
        .map(drop)
}

fn fork() -> std::io::Result<()> {
    // SAFETY: the child only calls _exit.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(std::io::Error::last_os_error());
    }
    if pid == 0 {
        unsafe { libc::_exit(0) };
    }
    let mut status = 0;
    unsafe { libc::waitpid(pid, &mut status, 0) };
    Ok(())
}

fn file_io() -> std::io::Result<()> {
    let path = "/tmp/bpfcompat-workload";
    std::fs::write(path, b"bpfcompat workload\n")?;
    let mut back = String::new();
    std::fs::File::open(path)?.read_to_string(&mut back)?;
    std::fs::remove_file(path)
}

fn tcp() -> std::io::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let mut client = TcpStream::connect(listener.local_addr()?)?;
    let (mut server, _) = listener.accept()?;
    client.write_all(b"ping")?;
    let mut buf = [0u8; 4];
    server.set_read_timeout(Some(Duration::from_secs(2)))?;
    server.read_exact(&mut buf)?;
    server.write_all(b"pong")?;
    client.set_read_timeout(Some(Duration::from_secs(2)))?;
    client.read_exact(&mut buf)
}

fn udp() -> std::io::Result<()> {
    let a = UdpSocket::bind("127.0.0.1:0")?;
    let b = UdpSocket::bind("127.0.0.1:0")?;
    a.send_to(b"ping", b.local_addr()?)?;
    b.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut buf = [0u8; 4];
    b.recv_from(&mut buf).map(drop)
}

fn sockopt_sysctl() -> std::io::Result<()> {
    let s = UdpSocket::bind("127.0.0.1:0")?;
    s.set_ttl(32)?;
    s.ttl()?;
    std::fs::read_to_string("/proc/sys/net/core/somaxconn").map(drop)
}

/// Runs `test` with bash in the guest, judged by its expectations.
pub fn functional_test(test: &FunctionalTest) -> FunctionalTestOutcome {
    run_functional(test, command::Spec::guest(&test.command, None, &[]))
}

/// [`functional_test`] with the command run as `spec` says.
fn run_functional(test: &FunctionalTest, mut spec: command::Spec) -> FunctionalTestOutcome {
    spec.timeout = Some(Duration::from_millis(test.timeout_ms));
    let ran = command::run(&spec);
    let timed_out = ran.signal == Some(libc::SIGKILL) && ran.duration_ms >= test.timeout_ms;
    let failure = if timed_out {
        Some(format!("timed out after {} ms", test.timeout_ms))
    } else if let Some(e) = &ran.error {
        Some(e.clone())
    } else if ran.exit_code != Some(test.expect_exit_code) {
        Some(match (ran.exit_code, ran.signal) {
            (Some(c), _) => format!("exited {c}, expected {}", test.expect_exit_code),
            (None, Some(sig)) => format!(
                "killed by signal {sig}, expected exit {}",
                test.expect_exit_code
            ),
            (None, None) => "did not exit".to_owned(),
        })
    } else {
        missing("stdout", &ran.stdout_tail, &test.expect_stdout_contains)
            .or_else(|| missing("stderr", &ran.stderr_tail, &test.expect_stderr_contains))
    };
    FunctionalTestOutcome {
        name: test.name.clone(),
        command: test.command.clone(),
        required: test.required,
        expect_exit_code: test.expect_exit_code,
        failure,
        timed_out,
        outcome: ran,
    }
}

fn missing(stream: &str, text: &str, expected: &Option<String>) -> Option<String> {
    let want = expected.as_deref().filter(|w| !w.is_empty())?;
    (!text.contains(want)).then(|| format!("{stream} does not contain {want:?}"))
}

/// The failure behavior mode found, if any: the first required functional
/// test that failed, else the first program that had to run and did not.
pub fn diagnosis(out: &BehaviorOutcome, not_run: &[String]) -> Option<Diagnosis> {
    if let Some(t) = out
        .functional_tests
        .iter()
        .find(|t| t.required && t.failure.is_some())
    {
        let output = [&t.outcome.stderr_tail, &t.outcome.stdout_tail]
            .into_iter()
            .find(|s| !s.trim().is_empty())
            .map(|s| format!("; its output ends: {}", tail(s.trim_end(), 300)))
            .unwrap_or_default();
        return Some(Diagnosis {
            class: FailureClass::FunctionalTestFailure,
            phase: Phase::Behavior,
            reason: format!(
                "functional test {} ({}) {}{output}",
                t.name,
                t.command,
                t.failure.as_deref().unwrap_or("failed")
            ),
            hint: "it ran with every program of the object attached: run the command against \
                   your loader on this kernel, or mark the test required: false"
                .into(),
        });
    }
    let first = not_run.first()?;
    Some(Diagnosis {
        class: FailureClass::ProgramNotTriggered,
        phase: Phase::Behavior,
        reason: format!(
            "{} never ran (run_count 0) although attached, through the workload ({}) and {} \
             functional test(s)",
            not_run.join(", "),
            out.workload.len(),
            out.functional_tests.len()
        ),
        hint: format!(
            "{first} is expected to run (expect_run: true): add a functional test that triggers \
             its hook, or check that its attach target is on the path the workload takes"
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test(command: &str) -> FunctionalTest {
        FunctionalTest {
            name: "t".into(),
            command: command.into(),
            required: true,
            timeout_ms: 5000,
            expect_exit_code: 0,
            expect_stdout_contains: Some("ok".into()),
            expect_stderr_contains: None,
        }
    }

    /// On the host: not the host's own login profile (a version manager's
    /// rehash in ~/.bashrc can block a login shell for a minute); the
    /// guest's /root has none either.
    fn functional_test(test: &FunctionalTest) -> FunctionalTestOutcome {
        let mut spec = command::Spec::guest(&test.command, None, &[]);
        spec.env.retain(|(k, _)| k != "HOME");
        spec.env.push(("HOME".into(), "/nonexistent".into()));
        run_functional(test, spec)
    }

    #[test]
    fn expectations_judge_a_functional_test() {
        // bash -lc in the guest; on the host the same bash runs it.
        let pass = functional_test(&test("echo ok"));
        assert_eq!(pass.failure, None, "{pass:?}");
        let wrong = functional_test(&test("echo nope"));
        assert_eq!(
            wrong.failure.as_deref(),
            Some("stdout does not contain \"ok\"")
        );
        let exit = functional_test(&test("echo ok; echo bad >&2; exit 3"));
        assert_eq!(exit.failure.as_deref(), Some("exited 3, expected 0"));
        let d = diagnosis(
            &BehaviorOutcome {
                functional_tests: vec![exit],
                ..BehaviorOutcome::default()
            },
            &[],
        )
        .unwrap();
        assert_eq!(d.class, FailureClass::FunctionalTestFailure);
        assert!(
            d.reason.contains("exited 3") && d.reason.ends_with("bad"),
            "{}",
            d.reason
        );
        let mut slow = test("sleep 5");
        slow.timeout_ms = 200;
        let slow = functional_test(&slow);
        assert!(slow.timed_out, "{slow:?}");
    }

    #[test]
    fn a_program_that_never_ran_is_not_triggered() {
        let d = diagnosis(&BehaviorOutcome::default(), &["on_exec".into()]).unwrap();
        assert_eq!(d.class, FailureClass::ProgramNotTriggered);
        assert!(d.reason.starts_with("on_exec never ran"));
        assert!(diagnosis(&BehaviorOutcome::default(), &[]).is_none());
    }
}
