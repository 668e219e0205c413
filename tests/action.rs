//! The action's scripts (`action/run.sh`) step by step, as the runner runs
//! them: inputs checked before anything is downloaded, the binary tied to
//! the action's own release and verified, the lock file kept in the
//! workspace and honoured with `locked: true`, and `out`/`markdown`. A fake
//! `curl` and a fake `bpfcompat` stand in for the network and the tool.

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use bpfcompat_testkit::{reports, sha256_hex};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A runner: a workspace, RUNNER_TEMP, the files GITHUB_OUTPUT and
/// GITHUB_PATH, and a bin directory put first on PATH.
struct Runner {
    dir: tempfile::TempDir,
}

struct Step {
    code: i32,
    stdout: String,
    stderr: String,
    outputs: HashMap<String, String>,
}

impl Runner {
    fn new() -> Runner {
        let runner = Runner {
            dir: tempfile::tempdir().unwrap(),
        };
        for sub in ["workspace", "temp", "fakes"] {
            std::fs::create_dir_all(runner.path(sub)).unwrap();
        }
        runner
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn workspace(&self, name: &str) -> PathBuf {
        self.path("workspace").join(name)
    }

    /// An executable stand-in on PATH.
    fn fake(&self, name: &str, script: &str) {
        let path = self.path("fakes").join(name);
        std::fs::write(&path, format!("#!/bin/bash\n{script}")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    fn run(&self, step: &str, env: &[(&str, &str)]) -> Step {
        let output = self.path("output");
        let _ = std::fs::remove_file(&output);
        let path = format!(
            "{}:{}",
            self.path("fakes").display(),
            std::env::var("PATH").unwrap()
        );
        let out = Command::new("bash")
            .arg(root().join("action/run.sh"))
            .arg(step)
            .current_dir(self.path("workspace"))
            .env_clear()
            .env("PATH", path)
            .env("HOME", self.path("home"))
            .env("GITHUB_ACTION_PATH", root())
            .env("GITHUB_WORKSPACE", self.path("workspace"))
            .env("RUNNER_TEMP", self.path("temp"))
            .env("GITHUB_OUTPUT", &output)
            .env("GITHUB_PATH", self.path("github-path"))
            .env("GITHUB_JOB", "check")
            .envs(env.iter().copied())
            .output()
            .unwrap();
        let outputs = std::fs::read_to_string(&output)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        Step {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            outputs,
        }
    }
}

impl Step {
    fn context(&self) -> String {
        format!(
            "exit {}\nstdout:\n{}\nstderr:\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// action/RELEASE names the workspace's own version and repository: the
/// release a ref of this repository installs.
#[test]
fn the_action_installs_the_release_its_ref_belongs_to() {
    let release = std::fs::read_to_string(root().join("action/RELEASE")).unwrap();
    let value = |key: &str| {
        release
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("action/RELEASE has no {key}="))
            .to_owned()
    };
    assert_eq!(value("version"), env!("CARGO_PKG_VERSION"));
    assert_eq!(
        format!("https://github.com/{}", value("repository")),
        env!("CARGO_PKG_REPOSITORY")
    );
    let action = std::fs::read_to_string(root().join("action.yml")).unwrap();
    let action: serde_json::Value = serde_norway::from_str(&action).unwrap();
    assert_eq!(
        action["inputs"]["version"]["default"], "",
        "never latest by default"
    );
    assert!(
        !action.to_string().contains("action_repository"),
        "empty in composite actions (actions/runner#2525)"
    );
}

/// A release directory like GitHub's: the archive of a fake `bpfcompat`
/// that says `bpfcompat <says>`, and its sha256 file.
fn release_dir(runner: &Runner, says: &str) -> PathBuf {
    let dir = runner.path(&format!("release-{says}"));
    let files = dir.join("files");
    std::fs::create_dir_all(&files).unwrap();
    for bin in ["bpfcompat", "bpfcompat-guest"] {
        let path = files.join(bin);
        std::fs::write(&path, format!("#!/bin/sh\necho 'bpfcompat {says}'\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let archive = dir.join("bpfcompat-x86_64-linux.tar.gz");
    let status = Command::new("tar")
        .arg("-czf")
        .arg(&archive)
        .arg("-C")
        .arg(&files)
        .args(["bpfcompat", "bpfcompat-guest"])
        .status()
        .unwrap();
    assert!(status.success());
    let digest = sha256_hex(&std::fs::read(&archive).unwrap());
    std::fs::write(
        dir.join("bpfcompat-x86_64-linux.tar.gz.sha256"),
        format!("{digest}  bpfcompat-x86_64-linux.tar.gz\n"),
    )
    .unwrap();
    dir
}

#[test]
fn the_binary_is_the_actions_release_verified_by_digest_and_version() {
    let runner = Runner::new();
    let bin = runner.path("bin");
    let bin = bin.to_str().unwrap();
    let version = env!("CARGO_PKG_VERSION");

    // By default: the release of action/RELEASE, from its repository.
    runner.fake("curl", "echo \"curl $*\" >&2; exit 22\n");
    let step = runner.run("install", &[("BPFCOMPAT_BIN_DIR", bin)]);
    assert_eq!(step.code, 1, "{}", step.context());
    let url = format!(
        "https://github.com/bpfcompat/bpfcompat/releases/download/v{version}/bpfcompat-x86_64-linux.tar.gz"
    );
    assert!(
        step.stdout.contains(&format!("fetching {url}")),
        "{}",
        step.context()
    );
    assert!(
        step.stderr.contains(&format!("cannot download {url}")),
        "{}",
        step.context()
    );
    std::fs::remove_file(runner.path("fakes/curl")).unwrap();

    // The install step, from a release published in `dir`.
    let install_from = |dir: &Path| {
        let base = format!("file://{}", dir.display());
        runner.run(
            "install",
            &[
                ("BPFCOMPAT_BIN_DIR", bin),
                ("BPFCOMPAT_RELEASE_BASE_URL", &base),
            ],
        )
    };
    let good = release_dir(&runner, version);
    let base = format!("file://{}", good.display());
    let step = install_from(&good);
    assert_eq!(step.code, 0, "{}", step.context());
    assert!(
        step.stdout
            .contains(&format!("installed bpfcompat {version} from {base}")),
        "{}",
        step.context()
    );

    // A binary of another release than the action's scripts is refused.
    let step = install_from(&release_dir(&runner, "0.0.1"));
    assert_eq!(step.code, 1, "{}", step.context());
    assert!(
        step.stderr.contains("says 'bpfcompat 0.0.1', not"),
        "{}",
        step.context()
    );

    // An archive that is not what its digest says is refused.
    let archive = good.join("bpfcompat-x86_64-linux.tar.gz");
    let mut bytes = std::fs::read(&archive).unwrap();
    bytes.push(0);
    std::fs::write(&archive, bytes).unwrap();
    let step = install_from(&good);
    assert_eq!(step.code, 1, "{}", step.context());
    assert!(
        step.stderr.contains("does not match its published sha256"),
        "{}",
        step.context()
    );
}

#[test]
fn inputs_are_checked_before_anything_is_downloaded() {
    let runner = Runner::new();
    std::fs::write(runner.workspace("probe.bpf.o"), b"x").unwrap();
    let base = [
        ("BPFCOMPAT_MATRIX", "default"),
        ("BPFCOMPAT_CHECK_NAME", "bpfcompat"),
        ("BPFCOMPAT_ARTIFACT", "*.bpf.o"),
    ];
    let with = |extra: &[(&'static str, &'static str)]| -> Step {
        let mut env: Vec<(&str, &str)> = base.to_vec();
        for (k, v) in extra {
            env.retain(|(key, _)| key != k);
            env.push((k, v));
        }
        runner.run("resolve", &env)
    };
    std::fs::write(runner.workspace("other.bpf.o"), b"y").unwrap();
    std::fs::write(runner.workspace("suite.yaml"), b"cases: []\n").unwrap();
    std::fs::write(runner.workspace("probe.manifest.yaml"), b"name: probe\n").unwrap();
    let ok = with(&[]);
    assert_eq!(ok.code, 0, "{}", ok.context());
    // Accepted: both spellings of every mode, a suite alone (with its
    // outputs under either name, or both naming one path), one object
    // with its manifest, and a command with several artifacts.
    let one = [("BPFCOMPAT_ARTIFACT", "probe.bpf.o")];
    let suite = [
        ("BPFCOMPAT_ARTIFACT", ""),
        ("BPFCOMPAT_SUITE", "suite.yaml"),
    ];
    let accepted: Vec<Vec<(&'static str, &'static str)>> = vec![
        vec![("BPFCOMPAT_VALIDATION_MODE", "load_only")],
        vec![("BPFCOMPAT_VALIDATION_MODE", "load-only")],
        vec![("BPFCOMPAT_VALIDATION_MODE", "load_attach")],
        vec![("BPFCOMPAT_VALIDATION_MODE", "behavior")],
        vec![("BPFCOMPAT_VALIDATION_MODE", "")],
        suite.to_vec(),
        [
            &suite[..],
            &[
                ("BPFCOMPAT_SUITE_OUT", "r/s.json"),
                ("BPFCOMPAT_SUITE_MARKDOWN", "r/s.md"),
            ],
        ]
        .concat(),
        [
            &suite[..],
            &[
                ("BPFCOMPAT_SUITE_OUT", "r/s.json"),
                ("BPFCOMPAT_OUT", "r/s.json"),
            ],
        ]
        .concat(),
        [&one[..], &[("BPFCOMPAT_MANIFEST", "probe.manifest.yaml")]].concat(),
        vec![("BPFCOMPAT_COMMAND", "./loader")],
    ];
    for extra in accepted {
        let step = with(&extra);
        assert_eq!(step.code, 0, "{extra:?}: {}", step.context());
    }
    for (extra, says) in [
        (
            vec![("BPFCOMPAT_ARTIFACT", "build/*.bpf.o")],
            "matches no file",
        ),
        (
            vec![("BPFCOMPAT_ARTIFACT", "")],
            "give the command input (your loader), the artifact input (.bpf.o files) or the suite input",
        ),
        (
            vec![("BPFCOMPAT_SUITE", "suite.yaml")],
            "suite and artifact are given",
        ),
        (
            [&suite[..], &[("BPFCOMPAT_COMMAND", "./loader")]].concat(),
            "suite and command are given",
        ),
        (
            [&suite[..], &[("BPFCOMPAT_MANIFEST", "probe.manifest.yaml")]].concat(),
            "suite and manifest are given",
        ),
        (
            vec![("BPFCOMPAT_ARTIFACT", ""), ("BPFCOMPAT_SUITE", "nowhere.yaml")],
            "suite 'nowhere.yaml' is not a file",
        ),
        (
            vec![("BPFCOMPAT_MANIFEST", "probe.manifest.yaml")],
            "manifest describes one object, and artifact '*.bpf.o' matches 2 files",
        ),
        (
            [&one[..], &[("BPFCOMPAT_MANIFEST", "nowhere.yaml")]].concat(),
            "manifest 'nowhere.yaml' is not a file",
        ),
        (
            [
                &one[..],
                &[
                    ("BPFCOMPAT_MANIFEST", "probe.manifest.yaml"),
                    ("BPFCOMPAT_COMMAND", "./loader"),
                ],
            ]
            .concat(),
            "manifest is given with command",
        ),
        (
            vec![("BPFCOMPAT_SUITE_OUT", "r/s.json")],
            "suite-out is given without suite; without a suite, use out",
        ),
        (
            [
                &suite[..],
                &[
                    ("BPFCOMPAT_SUITE_MARKDOWN", "r/s.md"),
                    ("BPFCOMPAT_MARKDOWN_OUT", "r/report.md"),
                ],
            ]
            .concat(),
            "markdown 'r/report.md' and suite-markdown 'r/s.md' name different files",
        ),
        (
            vec![
                ("BPFCOMPAT_COMMAND", "./loader"),
                ("BPFCOMPAT_COMMAND_BINARY", "loader"),
            ],
            "command-binary 'loader' is not a file",
        ),
        (
            vec![("BPFCOMPAT_GUEST_TOOLS", "tools/bpftool")],
            "guest-tools is given without command",
        ),
        (
            vec![
                ("BPFCOMPAT_COMMAND", "./loader"),
                ("BPFCOMPAT_GUEST_TOOLS", "tools/bpftool\ntools/nc"),
            ],
            "guest-tools: 'tools/bpftool' is not a file",
        ),
        (
            vec![("BPFCOMPAT_MATRIX", "no-such")],
            "nor one of the built-in matrices: amazon-linux arm64 default mvp oracle-uek \
             quirk-library rhel-family suse ubuntu-lts\n",
        ),
        (
            vec![("BPFCOMPAT_LOCKED", "yes")],
            "locked 'yes' is not one of: true false",
        ),
        (vec![("BPFCOMPAT_LOCKED", "true")], "no lock file"),
        (
            vec![("BPFCOMPAT_VALIDATION_MODE", "attach")],
            "validation-mode 'attach'",
        ),
        (
            vec![("BPFCOMPAT_COMMENT", "sometimes")],
            "comment 'sometimes'",
        ),
        (vec![("BPFCOMPAT_FAIL_ON", "all")], "fail-on 'all'"),
        (
            vec![("BPFCOMPAT_COMMAND_EXPECT_EXIT", "256")],
            "command-expect-exit '256'",
        ),
        (vec![("BPFCOMPAT_CONCURRENCY", "0")], "concurrency '0'"),
        (vec![("BPFCOMPAT_VERSION", "newest")], "version 'newest'"),
    ] {
        let step = with(&extra);
        assert_eq!(step.code, 1, "{extra:?}: {}", step.context());
        assert!(
            step.stderr.contains(says),
            "{extra:?}: expected {says:?}: {}",
            step.context()
        );
        assert!(
            step.stderr.starts_with("::error::bpfcompat: "),
            "{}",
            step.stderr
        );
    }
}

/// A built-in matrix keeps its lock file in the workspace's .bpfcompat/, a
/// matrix file beside itself; the test step runs with --locked when asked,
/// uploads the lock with the report and writes `out` and `markdown`.
#[test]
fn the_lock_file_lives_in_the_workspace_and_is_honoured_when_locked() {
    let runner = Runner::new();
    std::fs::write(runner.workspace("probe.bpf.o"), b"x").unwrap();
    let resolve = |matrix: &str, locked: &str| {
        runner.run(
            "resolve",
            &[
                ("BPFCOMPAT_MATRIX", matrix),
                ("BPFCOMPAT_CHECK_NAME", "bpfcompat"),
                ("BPFCOMPAT_ARTIFACT", "*.bpf.o"),
                ("BPFCOMPAT_LOCKED", locked),
            ],
        )
    };
    let step = resolve("mvp", "false");
    assert_eq!(step.code, 0, "{}", step.context());
    assert_eq!(
        step.outputs["matrix"], "mvp",
        "bpfcompat resolves the name itself"
    );
    let lock = runner.workspace(".bpfcompat/mvp.lock");
    assert_eq!(step.outputs["lock-file"], lock.display().to_string());
    std::fs::write(runner.workspace("ci.yaml"), "name: ci\nkernels: []\n").unwrap();
    let step = resolve("ci.yaml", "false");
    assert_eq!(
        step.outputs["lock-file"],
        format!("{}.lock", runner.workspace("ci.yaml").display())
    );

    fake_bpfcompat(&runner);
    std::fs::create_dir_all(lock.parent().unwrap()).unwrap();
    std::fs::write(&lock, "{}").unwrap();
    let step = resolve("mvp", "true");
    assert_eq!(step.code, 0, "{}", step.context());
    let report_dir = step.outputs["report-dir"].clone();
    let test = runner.run(
        "test",
        &[
            ("BPFCOMPAT_MATRIX_FILE", &step.outputs["matrix"]),
            ("BPFCOMPAT_LOCK_FILE", &step.outputs["lock-file"]),
            ("BPFCOMPAT_LOCKED", "true"),
            ("BPFCOMPAT_ARTIFACTS", &step.outputs["artifacts"]),
            ("BPFCOMPAT_REPORT_DIR", &report_dir),
            ("BPFCOMPAT_CACHE_DIR", "/tmp/cache"),
            ("BPFCOMPAT_OUT", "results/report.json"),
            ("BPFCOMPAT_MARKDOWN_OUT", "results/report.md"),
        ],
    );
    assert_eq!(test.code, 0, "{}", test.context());
    assert_eq!(test.outputs["exit-code"], "2");
    let args = recorded_args(&runner);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    assert_eq!(
        args[0],
        runner
            .workspace("")
            .display()
            .to_string()
            .trim_end_matches('/')
    );
    assert!(
        args.windows(2).any(|w| w == ["--matrix", "mvp"]),
        "{args:?}"
    );
    assert!(args.contains(&"--locked"), "{args:?}");
    let probe = runner.workspace("probe.bpf.o").display().to_string();
    assert!(
        args.windows(2).any(|w| w == ["--artifact", probe.as_str()]),
        "{args:?}"
    );
    assert_eq!(
        std::fs::read_to_string(Path::new(&report_dir).join("mvp.lock")).unwrap(),
        "{\"version\":1}\n",
        "the lock file is uploaded with the report"
    );
    assert_eq!(
        std::fs::read_to_string(runner.workspace("results/report.json")).unwrap(),
        "{\"report\":1}\n"
    );
    assert!(runner.workspace("results/report.md").is_file());
}

/// A stand-in bpfcompat: records its arguments and cwd, writes a report,
/// its Markdown and the built-in matrix's lock file where bpfcompat does.
fn fake_bpfcompat(runner: &Runner) {
    runner.fake(
        "bpfcompat",
        "printf '%s\\n' \"$PWD\" \"$@\" > \"$RUNNER_TEMP/args\"\n\
         out=; md=; while [ $# -gt 0 ]; do case $1 in --out) out=$2;; --markdown) md=$2;; esac; shift; done\n\
         echo '{\"report\":1}' > \"$out\"; echo '# report' > \"$md\"\n\
         mkdir -p .bpfcompat; echo '{\"version\":1}' > .bpfcompat/mvp.lock\nexit 2\n",
    );
}

/// The cwd and arguments the stand-in bpfcompat was last run with.
fn recorded_args(runner: &Runner) -> Vec<String> {
    std::fs::read_to_string(runner.path("temp/args"))
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The inputs the Go bpfcompat's action has: a suite with its outputs
/// under the Go names, a manifest, and validation modes in its spelling,
/// each reaching `bpfcompat test`; empty ones leave bpfcompat's defaults
/// (and a suite's) alone.
#[test]
fn suite_manifest_and_validation_mode_reach_bpfcompat_test() {
    let runner = Runner::new();
    fake_bpfcompat(&runner);
    std::fs::write(runner.workspace("probe.bpf.o"), b"x").unwrap();
    std::fs::write(runner.workspace("suite.yaml"), b"cases: []\n").unwrap();
    std::fs::write(runner.workspace("m.yaml"), b"name: probe\n").unwrap();
    let step = |resolve: &[(&str, &str)], test: &[(&str, &str)]| -> Vec<String> {
        let mut env = vec![("BPFCOMPAT_MATRIX", "mvp"), ("BPFCOMPAT_CHECK_NAME", "c")];
        env.extend_from_slice(resolve);
        let resolved = runner.run("resolve", &env);
        assert_eq!(resolved.code, 0, "{}", resolved.context());
        let mut env: Vec<(&str, &str)> = vec![
            ("BPFCOMPAT_MATRIX_FILE", &resolved.outputs["matrix"]),
            ("BPFCOMPAT_LOCK_FILE", &resolved.outputs["lock-file"]),
            ("BPFCOMPAT_ARTIFACTS", &resolved.outputs["artifacts"]),
            ("BPFCOMPAT_REPORT_DIR", &resolved.outputs["report-dir"]),
            ("BPFCOMPAT_CACHE_DIR", "/tmp/cache"),
        ];
        env.extend_from_slice(resolve);
        env.extend_from_slice(test);
        let tested = runner.run("test", &env);
        assert_eq!(tested.code, 0, "{}", tested.context());
        recorded_args(&runner)
    };
    let has = |args: &[String], flag: &str, value: &str| {
        args.windows(2).any(|w| w[0] == flag && w[1] == value)
    };

    let suite = [
        ("BPFCOMPAT_SUITE", "suite.yaml"),
        ("BPFCOMPAT_SUITE_OUT", "reports/bpfcompat-suite.json"),
        ("BPFCOMPAT_SUITE_MARKDOWN", "reports/bpfcompat-suite.md"),
    ];
    let args = step(&suite, &[]);
    assert!(has(&args, "--suite", "suite.yaml"), "{args:?}");
    for absent in ["--validation-mode", "--timeout", "--artifact", "--manifest"] {
        assert!(
            !args.iter().any(|a| a == absent),
            "{absent}: the suite's own: {args:?}"
        );
    }
    assert_eq!(
        std::fs::read_to_string(runner.workspace("reports/bpfcompat-suite.json")).unwrap(),
        "{\"report\":1}\n"
    );
    assert_eq!(
        std::fs::read_to_string(runner.workspace("reports/bpfcompat-suite.md")).unwrap(),
        "# report\n"
    );

    let args = step(
        &[
            ("BPFCOMPAT_ARTIFACT", "probe.bpf.o"),
            ("BPFCOMPAT_MANIFEST", "m.yaml"),
            ("BPFCOMPAT_VALIDATION_MODE", "load_only"),
        ],
        &[("BPFCOMPAT_TIMEOUT", "90s")],
    );
    assert!(has(&args, "--manifest", "m.yaml"), "{args:?}");
    assert!(has(&args, "--validation-mode", "load_only"), "{args:?}");
    assert!(has(&args, "--timeout", "90s"), "{args:?}");
    assert!(!args.iter().any(|a| a == "--suite"), "{args:?}");

    std::fs::write(runner.workspace("bpftool"), b"x").unwrap();
    std::fs::write(runner.workspace("nc"), b"x").unwrap();
    let args = step(
        &[
            ("BPFCOMPAT_COMMAND", "bpftool prog show"),
            ("BPFCOMPAT_GUEST_TOOLS", "bpftool\nnc\n"),
        ],
        &[],
    );
    assert!(has(&args, "--guest-tool", "bpftool"), "{args:?}");
    assert!(has(&args, "--guest-tool", "nc"), "{args:?}");
}

/// mode: test publishes nothing with its token (it only reads the base's
/// results); mode: publish, on workflow_run only, runs nothing but
/// `bpfcompat publish --workflow-run` on the report.json of the artifact it
/// downloaded, and refuses what would run something.
#[test]
fn modes_split_testing_from_publishing() {
    let runner = Runner::new();
    runner.fake(
        "bpfcompat",
        "printf '%s\\n' \"$@\" > \"$RUNNER_TEMP/args\"\n",
    );
    let publish = |env: &[(&str, &str)]| {
        let step = runner.run("publish", env);
        assert_eq!(step.code, 0, "{}", step.context());
        std::fs::read_to_string(runner.path("temp/args")).unwrap()
    };
    let report = runner.path("report.json");
    std::fs::write(&report, "{}").unwrap();
    let report = report.to_str().unwrap();
    let args = publish(&[("BPFCOMPAT_MODE", "test"), ("BPFCOMPAT_REPORT", report)]);
    assert!(args.contains("--check-run\nfalse\n"), "{args}");
    assert!(args.contains("--comment\nfalse\n"), "{args}");
    assert!(!args.contains("--workflow-run"), "{args}");
    let args = publish(&[
        ("BPFCOMPAT_REPORT", report),
        ("BPFCOMPAT_COMMENT_AUTHOR", "my-app[bot]"),
        ("BPFCOMPAT_PAGE_URL", "https://example.invalid/page"),
    ]);
    assert!(args.contains("--comment\ntrue\n"), "{args}");
    assert!(
        args.contains("--page-url\nhttps://example.invalid/page\n"),
        "{args}"
    );
    assert!(args.contains("--comment-author\nmy-app[bot]\n"), "{args}");
    assert!(!args.contains("--check-run"), "{args}");

    let resolve = |env: &[(&str, &str)]| runner.run("resolve", env);
    let on_run = [
        ("BPFCOMPAT_MODE", "publish"),
        ("GITHUB_EVENT_NAME", "workflow_run"),
        ("BPFCOMPAT_ARTIFACT_NAME", "bpfcompat-report"),
        ("BPFCOMPAT_MATRIX", "default"),
    ];
    let resolved = resolve(&on_run);
    assert_eq!(resolved.code, 0, "{}", resolved.context());
    let dir = &resolved.outputs["report-dir"];
    assert!(
        dir.starts_with(runner.path("temp").to_str().unwrap()),
        "{dir}"
    );
    assert_eq!(resolved.outputs["artifact-name"], "bpfcompat-report");
    let missing = runner.run(
        "publish",
        &[("BPFCOMPAT_MODE", "publish"), ("BPFCOMPAT_REPORT_DIR", dir)],
    );
    assert_eq!(missing.code, 1, "{}", missing.context());
    assert!(
        missing.stderr.contains("has no report.json"),
        "{}",
        missing.stderr
    );
    std::fs::write(Path::new(dir).join("report.json"), "{}").unwrap();
    let args = publish(&[("BPFCOMPAT_MODE", "publish"), ("BPFCOMPAT_REPORT_DIR", dir)]);
    assert!(
        args.starts_with(&format!(
            "publish\n--report\n{dir}/report.json\n--workflow-run\n"
        )),
        "{args}"
    );

    for (change, says) in [
        (
            ("GITHUB_EVENT_NAME", "pull_request"),
            "in a workflow on: workflow_run",
        ),
        (("BPFCOMPAT_ARTIFACT_NAME", ""), "needs artifact-name"),
        (
            ("BPFCOMPAT_ARTIFACT_NAME", "../x"),
            "is not made of letters",
        ),
        (("BPFCOMPAT_COMMAND", "make"), "command means nothing here"),
        (("BPFCOMPAT_MODE", "both"), "mode 'both' is not one of"),
    ] {
        let mut env = on_run.to_vec();
        env.retain(|(k, _)| *k != change.0);
        env.push(change);
        let step = resolve(&env);
        assert_eq!(step.code, 1, "{change:?}: {}", step.context());
        assert!(step.stderr.contains(says), "{change:?}: {}", step.stderr);
    }
}

/// The fan-out's three modes with the real bpfcompat (nothing boots): plan
/// splits a matrix and gives the strategy matrix; a shard (mode test) is
/// named for the merge and checks the plan's share; merge joins the
/// shards' reports into one.
#[test]
fn a_fan_out_plans_names_its_shards_and_merges_them() {
    let runner = Runner::new();
    std::os::unix::fs::symlink(
        env!("CARGO_BIN_EXE_bpfcompat"),
        runner.path("fakes/bpfcompat"),
    )
    .unwrap();
    let kernels: String = ["a", "b", "c"]
        .iter()
        .map(|id| {
            std::fs::write(runner.workspace(id), "not a kernel").unwrap();
            format!("  - id: {id}\n    source: {{file: {id}}}\n")
        })
        .collect();
    std::fs::write(
        runner.workspace("fleet.yaml"),
        format!("name: fleet\nkernels:\n{kernels}"),
    )
    .unwrap();
    let base = [
        ("BPFCOMPAT_MATRIX", "fleet.yaml"),
        ("BPFCOMPAT_CHECK_NAME", "fleet"),
        ("BPFCOMPAT_ARTIFACT_NAME", "fleet"),
    ];
    let with = |extra: &[(&'static str, &'static str)]| {
        let mut env = base.to_vec();
        env.extend_from_slice(extra);
        env
    };

    let resolved = runner.run(
        "resolve",
        &with(&[("BPFCOMPAT_MODE", "plan"), ("BPFCOMPAT_JOBS", "2")]),
    );
    assert_eq!(resolved.code, 0, "{}", resolved.context());
    assert_eq!(resolved.outputs["artifact-name"], "fleet-plan");
    let plan = resolved.outputs["plan"].clone();
    let planned = runner.run(
        "plan",
        &[
            ("BPFCOMPAT_MATRIX_FILE", &resolved.outputs["matrix"]),
            ("BPFCOMPAT_PLAN", &plan),
            ("BPFCOMPAT_JOBS", "2"),
            ("BPFCOMPAT_TIMINGS", "absent.json"),
        ],
    );
    assert_eq!(planned.code, 0, "{}", planned.context());
    assert_eq!(planned.outputs["shards"], r#"["1/2","2/2"]"#);
    std::fs::copy(&plan, runner.workspace("shard-plan.json")).unwrap();

    let shard = runner.run(
        "resolve",
        &with(&[
            ("BPFCOMPAT_MODE", "test"),
            ("BPFCOMPAT_ARTIFACT", "a"),
            ("BPFCOMPAT_SHARD", "2/2"),
            ("BPFCOMPAT_SHARD_PLAN", "shard-plan.json"),
        ]),
    );
    assert_eq!(shard.code, 0, "{}", shard.context());
    assert_eq!(shard.outputs["artifact-name"], "fleet-shard-2-of-2");

    // What download-artifact leaves: a directory per shard's artifact.
    let merge = runner.run("resolve", &with(&[("BPFCOMPAT_MODE", "merge")]));
    assert_eq!(merge.code, 0, "{}", merge.context());
    let shards_dir = Path::new(&merge.outputs["shards-dir"]);
    for (index, verdicts) in [
        (1, &[("a", "pass", None), ("c", "pass", None)][..]),
        (2, &[("b", "pass", None)][..]),
    ] {
        let mut report = reports::report_json(verdicts);
        report["shard"] =
            serde_json::json!({"index": index, "count": 2, "matrix_kernels": ["a", "b", "c"]});
        let dir = shards_dir.join(format!("fleet-shard-{index}-of-2"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("report.json"), report.to_string()).unwrap();
    }
    let merged = runner.run(
        "merge",
        &[
            ("BPFCOMPAT_SHARDS_DIR", shards_dir.to_str().unwrap()),
            ("BPFCOMPAT_REPORT_DIR", &merge.outputs["report-dir"]),
            ("BPFCOMPAT_OUT", "merged.json"),
        ],
    );
    assert_eq!(merged.code, 0, "{}", merged.context());
    assert_eq!(merged.outputs["exit-code"], "0");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(runner.workspace("merged.json")).unwrap())
            .unwrap();
    let ids = reports::target_ids(&report);
    assert_eq!(ids, ["a", "b", "c"]);
    let empty = runner.run(
        "merge",
        &[
            (
                "BPFCOMPAT_SHARDS_DIR",
                runner.path("temp").to_str().unwrap(),
            ),
            ("BPFCOMPAT_REPORT_DIR", &merge.outputs["report-dir"]),
            ("BPFCOMPAT_ARTIFACT_NAME", "fleet"),
        ],
    );
    assert_eq!(empty.code, 1);
    assert!(
        empty.stderr.contains("no shard reports"),
        "{}",
        empty.stderr
    );

    for (change, says) in [
        (
            &[("BPFCOMPAT_MODE", "full"), ("BPFCOMPAT_SHARD", "1/2")][..],
            "run each shard with mode: test",
        ),
        (
            &[("BPFCOMPAT_MODE", "test"), ("BPFCOMPAT_SHARD", "3/2")],
            "is not I/N",
        ),
        (
            &[
                ("BPFCOMPAT_MODE", "test"),
                ("BPFCOMPAT_SHARD", "1/2"),
                ("BPFCOMPAT_ARTIFACT_NAME", ""),
            ],
            "shard needs artifact-name",
        ),
        (
            &[
                ("BPFCOMPAT_MODE", "test"),
                ("BPFCOMPAT_SHARD_PLAN", "shard-plan.json"),
            ],
            "without shard",
        ),
        (
            &[
                ("BPFCOMPAT_MODE", "test"),
                ("BPFCOMPAT_SHARD", "1/2"),
                ("BPFCOMPAT_SHARD_PLAN", "nope.json"),
            ],
            "is not a file",
        ),
        (&[("BPFCOMPAT_MODE", "plan")], "needs jobs"),
        (
            &[("BPFCOMPAT_MODE", "merge"), ("BPFCOMPAT_ARTIFACT_NAME", "")],
            "merge needs artifact-name",
        ),
    ] {
        let mut env = with(&[("BPFCOMPAT_ARTIFACT", "a")]);
        for (k, v) in change {
            env.retain(|(key, _)| key != k);
            env.push((k, v));
        }
        let step = runner.run("resolve", &env);
        assert_eq!(step.code, 1, "{change:?}: {}", step.context());
        assert!(step.stderr.contains(says), "{change:?}: {}", step.stderr);
    }
}

/// The page step, with the real bpfcompat: report.html rendered from the
/// report for the run that publishes, named for its artifact; in mode
/// publish the report is another run's, checked against the schema first
/// (and the page that run uploaded is never used); a shard gets none.
#[test]
fn the_report_page_is_rendered_for_the_publishing_run_only() {
    let runner = Runner::new();
    std::os::unix::fs::symlink(
        env!("CARGO_BIN_EXE_bpfcompat"),
        runner.path("fakes/bpfcompat"),
    )
    .unwrap();
    let dir = runner.path("temp/downloaded");
    std::fs::create_dir_all(&dir).unwrap();
    let report = dir.join("report.json");
    let verdicts = [
        ("k1", "pass", None),
        ("k2", "fail", Some("VERIFIER_REJECTION")),
    ];
    std::fs::write(&report, reports::report_json(&verdicts).to_string()).unwrap();
    std::fs::write(dir.join("report.html"), "<script>planted</script>").unwrap();
    let page = |mode: &str| {
        runner.run(
            "page",
            &[
                ("BPFCOMPAT_MODE", mode),
                ("BPFCOMPAT_REPORT", report.to_str().unwrap()),
                ("BPFCOMPAT_REPORT_DIR", dir.to_str().unwrap()),
                ("BPFCOMPAT_ARTIFACT_NAME", "bpfcompat-report-check"),
            ],
        )
    };
    for mode in ["full", "merge", "publish"] {
        let step = page(mode);
        assert_eq!(step.code, 0, "{mode}: {}", step.context());
        let html = &step.outputs["html"];
        assert!(html.ends_with("/bpfcompat-report-check.html"), "{html}");
        let text = std::fs::read_to_string(html).unwrap();
        assert!(text.starts_with("<!DOCTYPE html>"), "{mode}");
        assert_eq!(
            text.matches("<th scope=\"col\" data-kernel=").count(),
            2,
            "{mode}"
        );
        assert!(!text.contains("planted"), "{mode}");
    }
    let shard = page("test");
    assert_eq!(shard.code, 0, "{}", shard.context());
    assert!(!shard.outputs.contains_key("html"), "{:?}", shard.outputs);

    // Another run's report that is not one of ours is refused, named.
    let mut odd = reports::report_json(&verdicts);
    odd["targets"][0]["status"] = "splendid".into();
    std::fs::write(&report, odd.to_string()).unwrap();
    let refused = page("publish");
    assert_eq!(refused.code, 1, "{}", refused.context());
    assert!(refused.stderr.contains("report.json"), "{}", refused.stderr);
    assert!(!refused.outputs.contains_key("html"));
}
