//! Command mode: run the user's command with bash, capture the tails of its
//! output, report how it ended.

use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use bpfcompat_proto::{self as proto, CommandOutcome};

/// After the command exits, how long we wait for more output from whatever
/// it left behind, in total and without any byte arriving.
const DRAIN_TOTAL: Duration = Duration::from_millis(1000);
const DRAIN_IDLE: Duration = Duration::from_millis(100);
/// How often we look for the command's exit while its pipes stay quiet.
const EXIT_POLL: Duration = Duration::from_millis(50);

pub const GUEST_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// How to run one command.
#[derive(Debug, Clone)]
pub struct Spec {
    pub shell: String,
    pub command: String,
    pub cwd: String,
    pub env: Vec<(String, String)>,
    /// Killed (with what it started) when it runs longer.
    pub timeout: Option<Duration>,
}

impl Spec {
    /// The guest's settings: `/bin/bash -lc` (busybox's `/bin/sh` where the
    /// guest has no bash: arm64 guests), as root in `/root`.
    /// `BPFCOMPAT_ARTIFACTS` lists `artifacts` one a line;
    /// `BPFCOMPAT_ARTIFACT` is the first (empty when there is none).
    pub fn guest(command: &str, bin: Option<&str>, artifacts: &[String]) -> Self {
        let all = artifacts.join("\n");
        let shell = if Path::new("/bin/bash").exists() {
            "/bin/bash"
        } else {
            "/bin/sh"
        };
        let env = [
            ("PATH", GUEST_PATH),
            ("HOME", "/root"),
            ("USER", "root"),
            ("LOGNAME", "root"),
            ("SHELL", shell),
            ("TERM", "dumb"),
            ("BPFCOMPAT_BIN", bin.unwrap_or("")),
            (
                "BPFCOMPAT_ARTIFACT",
                artifacts.first().map_or("", String::as_str),
            ),
            ("BPFCOMPAT_ARTIFACTS", &all),
            ("BPFCOMPAT_REMOTE_ROOT", proto::REMOTE_ROOT),
        ];
        Spec {
            shell: shell.into(),
            command: command.into(),
            cwd: "/root".into(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            timeout: None,
        }
    }
}

pub fn run(spec: &Spec) -> CommandOutcome {
    let start = Instant::now();
    let mut cmd = Command::new(&spec.shell);
    // The command is the single operand of `-c`: never split or re-quoted.
    // `--` ends bash's options, so a command starting with `-` is a command.
    cmd.args(["-lc", "--"])
        .arg(&spec.command)
        .current_dir(&spec.cwd)
        .env_clear()
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group, so what it leaves running can be killed.
        .process_group(0);
    let child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) => {
            return CommandOutcome {
                exit_code: None,
                signal: None,
                error: Some(format!("cannot start {}: {e}", spec.shell)),
                stdout_tail: String::new(),
                stderr_tail: String::new(),
                stdout_bytes: 0,
                stderr_bytes: 0,
                duration_ms: 0,
            }
        }
    };
    let captured = capture(child, start, spec.timeout.map(|t| start + t));
    let status = captured.status.as_ref().ok().copied();
    CommandOutcome {
        exit_code: status.and_then(|s| s.code()),
        signal: status.and_then(|s| s.signal()),
        error: captured
            .status
            .err()
            .map(|e| format!("lost track of the command: {e}")),
        stdout_bytes: captured.out.total,
        stderr_bytes: captured.err.total,
        stdout_tail: captured.out.text(),
        stderr_tail: captured.err.text(),
        duration_ms: captured.elapsed.as_millis() as u64,
    }
}

struct Captured {
    status: io::Result<ExitStatus>,
    /// From start to the exit of the command (not of what it left behind).
    elapsed: Duration,
    out: Tail,
    err: Tail,
}

/// Reads both pipes until the command exits, then drains briefly: a
/// background child (`sleep 100 &`) holds the pipes open after bash is gone,
/// so end-of-file cannot be what we wait for. What the command left running
/// in its process group is killed once it exits, or at `deadline`.
fn capture(mut child: Child, start: Instant, deadline: Option<Instant>) -> Captured {
    let mut streams = Streams::take(&mut child);
    let pgid = child.id() as libc::pid_t;
    // SAFETY: kill has no memory effects; the group is the command's own.
    let kill_group = || unsafe { libc::kill(-pgid, libc::SIGKILL) };
    let mut ended: Option<(io::Result<ExitStatus>, Instant)> = None;
    loop {
        let open = streams.open();
        if ended.is_none() && deadline.is_some_and(|d| Instant::now() >= d) {
            kill_group();
        }
        if ended.is_none() {
            let status = if open.is_empty() {
                // Both pipes closed: nothing more to read, wait for the exit.
                Some(child.wait())
            } else {
                child.try_wait().transpose()
            };
            if let Some(status) = status {
                let now = Instant::now();
                kill_group();
                ended = Some((status, now));
                streams.last_byte = now;
            }
        }
        if let Some((_, at)) = &ended {
            let now = Instant::now();
            if open.is_empty()
                || now.duration_since(*at) >= DRAIN_TOTAL
                || now.duration_since(streams.last_byte) >= DRAIN_IDLE
            {
                let (status, at) = ended.unwrap();
                let [out, err] = streams.tails;
                return Captured {
                    status,
                    elapsed: at.duration_since(start),
                    out,
                    err,
                };
            }
        }
        let timeout = if ended.is_some() {
            DRAIN_IDLE
        } else {
            EXIT_POLL
        };
        streams.read_for(&open, timeout);
    }
}

/// The command's stdout and stderr while it runs: the pipes still open,
/// the tails read so far, and when the last byte came.
struct Streams {
    pipes: [Option<Box<dyn ReadFd>>; 2],
    tails: [Tail; 2],
    last_byte: Instant,
}

impl Streams {
    /// Takes the child's pipes and makes them non-blocking.
    fn take(child: &mut Child) -> Streams {
        let pipes: [Option<Box<dyn ReadFd>>; 2] = [
            child.stdout.take().map(|p| Box::new(p) as Box<dyn ReadFd>),
            child.stderr.take().map(|p| Box::new(p) as Box<dyn ReadFd>),
        ];
        for pipe in pipes.iter().flatten() {
            set_nonblocking(pipe.fd());
        }
        Streams {
            pipes,
            tails: [Tail::default(), Tail::default()],
            last_byte: Instant::now(),
        }
    }

    /// Which pipes are still open.
    fn open(&self) -> Vec<usize> {
        (0..2).filter(|&i| self.pipes[i].is_some()).collect()
    }

    /// Waits up to `timeout` for output on the `open` pipes and reads all
    /// that came.
    fn read_for(&mut self, open: &[usize], timeout: Duration) {
        let mut pfds: Vec<libc::pollfd> = open
            .iter()
            .map(|&i| libc::pollfd {
                fd: self.pipes[i].as_ref().unwrap().fd(),
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        // SAFETY: pfds is a valid array of pollfd.
        let n = unsafe {
            libc::poll(
                pfds.as_mut_ptr(),
                pfds.len() as libc::nfds_t,
                timeout.as_millis() as libc::c_int,
            )
        };
        if n <= 0 {
            return; // timeout or EINTR: the caller checks the exit again
        }
        for (pfd, &i) in pfds.iter().zip(open) {
            if pfd.revents != 0 {
                self.read_available(i);
            }
        }
    }

    /// Reads pipe `i` until it would block; closes it at its end or on an
    /// error.
    fn read_available(&mut self, i: usize) {
        let pipe = self.pipes[i].as_mut().unwrap();
        let mut buf = [0u8; 16 * 1024];
        loop {
            match pipe.read(&mut buf) {
                Ok(0) => {
                    self.pipes[i] = None;
                    break;
                }
                Ok(n) => {
                    self.tails[i].push(&buf[..n]);
                    self.last_byte = Instant::now();
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => {
                    self.pipes[i] = None;
                    break;
                }
            }
        }
    }
}

trait ReadFd: Read {
    fn fd(&self) -> libc::c_int;
}
impl<T: Read + AsRawFd> ReadFd for T {
    fn fd(&self) -> libc::c_int {
        self.as_raw_fd()
    }
}

fn set_nonblocking(fd: libc::c_int) {
    // SAFETY: fcntl on a descriptor we own.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags >= 0 {
            libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK);
        }
    }
}

/// The last [`proto::OUTPUT_TAIL_BYTES`] of a stream and its full length.
#[derive(Debug, Default)]
pub struct Tail {
    buf: Vec<u8>,
    pub total: u64,
}

impl Tail {
    pub fn push(&mut self, bytes: &[u8]) {
        self.total += bytes.len() as u64;
        self.buf.extend_from_slice(bytes);
        if self.buf.len() > 2 * proto::OUTPUT_TAIL_BYTES {
            let cut = self.buf.len() - proto::OUTPUT_TAIL_BYTES;
            self.buf.drain(..cut);
        }
    }

    /// Lossy UTF-8 of the tail, without a character cut in half at its start.
    pub fn text(&self) -> String {
        let mut tail = &self.buf[self.buf.len().saturating_sub(proto::OUTPUT_TAIL_BYTES)..];
        if (self.buf.len() as u64) < self.total || tail.len() < self.buf.len() {
            let skip = tail
                .iter()
                .take(3)
                .take_while(|&&b| b & 0xc0 == 0x80)
                .count();
            tail = &tail[skip..];
        }
        String::from_utf8_lossy(tail).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host_spec(command: &str) -> Spec {
        host_spec_with(command, &[])
    }

    /// The guest's settings, runnable on the host.
    fn host_spec_with(command: &str, artifacts: &[String]) -> Spec {
        let mut spec = Spec::guest(command, Some("/bpfcompat/bin/x"), artifacts);
        spec.cwd = std::env::temp_dir().display().to_string();
        spec.env.push(("PATH".into(), "/usr/bin:/bin".into()));
        // Not the host's own login profile (a version manager's rehash in
        // ~/.bashrc can block a login shell for a minute): the guest's
        // /root has none either.
        spec.env.retain(|(k, _)| k != "HOME");
        spec.env.push(("HOME".into(), "/nonexistent".into()));
        spec
    }

    #[test]
    fn a_command_past_its_timeout_is_killed() {
        let mut spec = host_spec("sleep 5");
        spec.timeout = Some(Duration::from_millis(300));
        let out = run(&spec);
        assert_eq!(out.signal, Some(libc::SIGKILL));
        assert!(
            out.duration_ms >= 300 && out.duration_ms < 3000,
            "{}",
            out.duration_ms
        );
    }

    #[test]
    fn exit_code_output_and_environment() {
        let out = run(&host_spec(
            "echo \"bin=$BPFCOMPAT_BIN art=[$BPFCOMPAT_ARTIFACT] all=[$BPFCOMPAT_ARTIFACTS] \
             root=$BPFCOMPAT_REMOTE_ROOT\"; \
             echo oops >&2; exit 7",
        ));
        assert_eq!(out.exit_code, Some(7));
        assert_eq!(out.signal, None);
        assert_eq!(out.error, None);
        assert_eq!(
            out.stdout_tail,
            "bin=/bpfcompat/bin/x art=[] all=[] root=/bpfcompat\n"
        );
        assert_eq!(out.stderr_tail, "oops\n");
        assert_eq!(out.stdout_bytes, out.stdout_tail.len() as u64);
    }

    #[test]
    fn every_artifact_is_listed_and_the_first_is_the_artifact() {
        let artifacts = [
            "/bpfcompat/artifact/a.o".to_owned(),
            "/bpfcompat/artifact/b c.o".to_owned(),
        ];
        let out = run(&host_spec_with(
            "echo \"[$BPFCOMPAT_ARTIFACT]\"; \
             while read -r a; do echo \"<$a>\"; done <<<\"$BPFCOMPAT_ARTIFACTS\"",
            &artifacts,
        ));
        assert_eq!(out.exit_code, Some(0), "{}", out.stderr_tail);
        assert_eq!(
            out.stdout_tail,
            "[/bpfcompat/artifact/a.o]\n</bpfcompat/artifact/a.o>\n</bpfcompat/artifact/b c.o>\n"
        );
    }

    #[test]
    fn command_is_one_operand_never_split() {
        let out = run(&host_spec("printf '%s|' \"a b\" 'c;d' $((1+2))"));
        assert_eq!(out.stdout_tail, "a b|c;d|3|");
    }

    #[test]
    fn background_children_do_not_hang_the_capture() {
        let started = Instant::now();
        let out = run(&host_spec(
            "sleep 100 & echo started; (sleep 50; echo late) & exit 3",
        ));
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(out.exit_code, Some(3));
        assert_eq!(out.stdout_tail, "started\n");
    }

    #[test]
    fn signals_are_reported() {
        let out = run(&host_spec("kill -TERM $$"));
        assert_eq!(out.exit_code, None);
        assert_eq!(out.signal, Some(libc::SIGTERM));
    }

    #[test]
    fn keeps_only_the_tail_but_counts_everything() {
        let out = run(&host_spec(
            "head -c 100000 /dev/zero | tr '\\0' a; echo END; head -c 9000 /dev/zero >&2",
        ));
        assert_eq!(out.exit_code, Some(0));
        assert_eq!(out.stdout_bytes, 100_004);
        assert_eq!(out.stdout_tail.len(), proto::OUTPUT_TAIL_BYTES);
        assert!(out.stdout_tail.ends_with("aaaEND\n"));
        assert_eq!(out.stderr_bytes, 9000);
        assert_eq!(out.stderr_tail.len(), proto::OUTPUT_TAIL_BYTES);
    }

    #[test]
    fn missing_shell_is_an_error_not_a_panic() {
        let mut spec = host_spec("true");
        spec.shell = "/nonexistent/bash".into();
        let out = run(&spec);
        assert_eq!(out.exit_code, None);
        assert!(out.error.unwrap().contains("/nonexistent/bash"));
    }

    #[test]
    fn tail_does_not_start_mid_character() {
        let mut t = Tail::default();
        t.push(&[b'x'; 10]);
        let snowman = "\u{2603}".as_bytes(); // 3 bytes
        for _ in 0..3000 {
            t.push(snowman);
        }
        let text = t.text();
        assert!(!text.contains('\u{fffd}'), "no replacement character");
        assert!(text.chars().all(|c| c == '\u{2603}'));
        assert_eq!(t.total, 9010);
    }
}
