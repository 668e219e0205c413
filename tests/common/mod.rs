//! Shared helpers for tests that run the real `bpfcompat` binary on the real
//! test kernels.
#![allow(dead_code)] // each test binary uses its own subset

pub mod offline;
pub mod truth;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

pub use bpfcompat_testkit::kernels::*;

/// Booting is CPU-bound under TCG; tests that boot take turns so they do not
/// starve each other into timeouts on a 2-core runner.
pub fn boot_lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// A scratch directory holding a matrix, outputs, workdir and cache.
pub struct Scratch {
    pub dir: tempfile::TempDir,
}

impl Scratch {
    pub fn new() -> Scratch {
        Scratch {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes a matrix of `file:` sources for `kernels`; `extra` is appended
    /// to each entry (indented YAML lines, e.g. "    required: false").
    pub fn matrix(&self, kernels: &[(&Kernel, &str)]) -> PathBuf {
        let dir = kernels_dir();
        let mut yaml = String::from("name: test\nkernels:\n");
        for (k, extra) in kernels {
            yaml.push_str(&format!(
                "  - id: {}\n{extra}    source:\n      file: {}\n      sha256: {}\n",
                k.id,
                dir.join(k.file).display(),
                k.sha256
            ));
        }
        self.write("matrix.yaml", &yaml)
    }

    /// [`Scratch::matrix`] with each kernel's `.config` (`configs/` of the
    /// test kernels) as its `config:`, for the preflight; 7.2's package
    /// ships none, and none is known for it.
    pub fn matrix_with_configs(&self, kernels: &[&Kernel]) -> PathBuf {
        let configs: Vec<String> = kernels.iter().map(|k| config_line(k)).collect();
        let entries: Vec<(&Kernel, &str)> = kernels
            .iter()
            .zip(&configs)
            .map(|(k, c)| (*k, c.as_str()))
            .collect();
        self.matrix(&entries)
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Compiles the C `source` with the host's `cc` into the program `name`,
    /// dynamically linked: its libraries must come along into a guest.
    pub fn cc(&self, name: &str, source: &str) -> PathBuf {
        let src = self.write(&format!("{name}.c"), source);
        let program = self.path(name);
        let status = Command::new("cc")
            .arg("-o")
            .arg(&program)
            .arg(&src)
            .status()
            .expect("a C compiler (cc) is installed");
        assert!(status.success(), "cc {}", src.display());
        program
    }

    /// Runs bpfcompat with the scratch workdir, cache and report paths.
    pub fn run(&self, args: &[&str]) -> Run {
        self.run_to(&self.path("report.json"), args)
    }

    /// `bpfcompat test-command --cmd CMD --matrix MATRIX [extra...]`.
    pub fn test_command(&self, cmd: &str, matrix: &Path, extra: &[&str]) -> Run {
        self.run(&command_args(cmd, matrix, extra))
    }

    /// Like `run`, with the report at `out` and its Markdown beside it, so
    /// several runs can share the scratch workdir and keep their reports.
    pub fn run_to(&self, out: &Path, args: &[&str]) -> Run {
        self.run_full(out, args, &[])
    }

    /// [`Scratch::run`] with extra environment variables.
    pub fn run_with_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        self.run_full(&self.path("report.json"), args, env)
    }

    /// [`Scratch::run_to`] with extra environment variables.
    pub fn run_full(&self, out: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
        self.run_program(
            Command::new(env!("CARGO_BIN_EXE_bpfcompat")),
            out,
            args,
            env,
        )
    }

    /// [`Scratch::run_full`] with another `bpfcompat` (a release build), or
    /// a command that runs one with these arguments appended.
    pub fn run_program(
        &self,
        mut program: Command,
        out: &Path,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Run {
        let _ = std::fs::remove_file(out);
        let output = program
            .args(args)
            .envs(env.iter().copied())
            .arg("--out")
            .arg(out)
            .arg("--markdown")
            .arg(out.with_extension("md"))
            .arg("--workdir")
            .arg(self.path("work"))
            .arg("--cache-dir")
            .arg(self.path("cache"))
            // Tests pin TCG unless they test the choice itself.
            .args(if args.contains(&"--accel") {
                &[][..]
            } else {
                &["--accel", "tcg"][..]
            })
            .output()
            .unwrap();
        let report = std::fs::read_to_string(out)
            .ok()
            .map(|t| serde_json::from_str(&t).unwrap());
        if let Some(r) = &report {
            assert_valid_report(r);
        }
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            report,
        }
    }
}

/// The arguments of `bpfcompat test-command --cmd CMD --matrix MATRIX [extra...]`.
/// A test kernel's `config:` line (`configs/config-X` of `vmlinuz-X`), or
/// nothing for the one without a config.
fn config_line(k: &Kernel) -> String {
    if k.file.starts_with("packages/linux-binary-") {
        return String::new();
    }
    let name = k.file.trim_start_matches("vmlinuz-");
    let config = kernels_dir().join("configs").join(format!("config-{name}"));
    assert!(config.is_file(), "{} is missing", config.display());
    format!("    config: {}\n", config.display())
}

pub fn command_args<'a>(cmd: &'a str, matrix: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "test-command",
        "--cmd",
        cmd,
        "--matrix",
        matrix.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    args
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub report: Option<Value>,
}

impl Run {
    pub fn report(&self) -> &Value {
        self.report.as_ref().unwrap_or_else(|| {
            panic!(
                "no report written (exit {}):\n{}\n{}",
                self.code, self.stdout, self.stderr
            )
        })
    }

    pub fn target(&self, id: &str) -> &Value {
        self.report()["targets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["id"] == id)
            .unwrap_or_else(|| panic!("no target {id} in {}", self.report()))
    }

    /// The command test of a target's only check.
    pub fn command_test(&self, id: &str) -> &Value {
        &self.target(id)["checks"][0]["functional"]["tests"][0]
    }

    pub fn context(&self) -> String {
        format!(
            "exit {}\nstdout:\n{}\nstderr:\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// A finished command's exit code, stdout and stderr, for a failed assertion.
pub fn output_text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Every report a test produces must match the published schema.
pub fn assert_valid_report(report: &Value) {
    let schema: Value =
        serde_json::from_str(include_str!("../../docs/report.schema.json")).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(report)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect();
    assert!(errors.is_empty(), "report violates the schema: {errors:#?}");
}

/// A child process whose output is collected while it runs, so that it can
/// be waited for with a time limit: a test never hangs on a stuck process.
pub struct Running {
    child: Child,
    started: Instant,
    stdout: JoinHandle<Vec<u8>>,
    stderr: JoinHandle<Vec<u8>>,
}

impl Running {
    pub fn start(cmd: &mut Command) -> Running {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
        let drain = |mut pipe: Box<dyn Read + Send>| {
            std::thread::spawn(move || {
                let mut bytes = Vec::new();
                let _ = pipe.read_to_end(&mut bytes);
                bytes
            })
        };
        Running {
            stdout: drain(Box::new(child.stdout.take().unwrap())),
            stderr: drain(Box::new(child.stderr.take().unwrap())),
            child,
            started: Instant::now(),
        }
    }

    /// Its output once it exits; killed, and the test failed, if it runs
    /// longer than `limit` from its start.
    pub fn finish_within(mut self, limit: Duration) -> Output {
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if self.started.elapsed() > limit {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "killed after {limit:?}: still running\nstderr:\n{}",
                    String::from_utf8_lossy(&self.stderr.join().unwrap())
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        Output {
            status,
            stdout: self.stdout.join().unwrap(),
            stderr: self.stderr.join().unwrap(),
        }
    }
}

/// The QEMU processes whose command line mentions `dir` (a test's scratch
/// directory holds their initramfs and console log), with that command line.
pub fn qemus_under(dir: &Path) -> Vec<(u32, String)> {
    let dir = dir.to_string_lossy();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|entry| {
            let pid = entry.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            (cmdline.contains("qemu-system") && cmdline.contains(&*dir)).then_some((pid, cmdline))
        })
        .collect()
}
