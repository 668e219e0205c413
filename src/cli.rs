//! Command-line interface: flags and help text, and their translation into
//! the plain option structs the commands take. The only module that knows
//! clap: the domain's enums have their command-line twins here.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::bail;
use bpfcompat_proto::object::ValidationMode;
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::boot::qemu::AccelChoice;
use crate::commands::doctor::DoctorOptions;
use crate::commands::kernels::SweepOptions;
use crate::commands::kernels::{KernelsAction, KernelsOptions};
use crate::commands::merge::{MergeOptions, RenderOptions};
use crate::commands::shards::PlanOptions;
use crate::commands::test::RunOptions;
use crate::commands::DEFAULT_WORKDIR;
use crate::github::{CommentMode, PublishOptions, Trigger};
use crate::matrix::parse_duration;
use crate::matrix::shard::ShardSpec;
use crate::results::compare;
use crate::run::check::{CheckSpec, CommandCheck, ObjectCheck, SuiteCheck};

#[derive(Parser)]
#[command(
    name = "bpfcompat",
    version,
    about = "On which real Linux kernels does my eBPF load, attach and run?",
    long_about = "Boots every kernel of a matrix in QEMU (KVM when available, TCG otherwise) with a \
                  generated initramfs, runs your check inside, and writes a per-kernel \
                  compatibility report.\n\n\
                  Exit codes: 0 every required kernel passed; 2 a required kernel failed; \
                  1 a tool or infrastructure error (bad input, or a required kernel that could \
                  not be checked).",
    after_help = "Example:\n  bpfcompat test-command --cmd '$BPFCOMPAT_BIN --self-test' --bin ./build/myloader \\\n      --matrix matrices/test-kernels.yaml --out report.json --markdown report.md"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Commands,
}

#[derive(Subcommand)]
pub enum Commands {
    /// Run your own loader command on every kernel; the verdict is its exit code.
    #[command(
        long_about = "Run your own loader command on every kernel; the verdict is its exit code.\n\n\
                      The command runs as root inside each guest as `bash -lc CMD` (never through \
                      a shell on the host), with these variables set:\n  \
                      BPFCOMPAT_BIN          the --bin file, executable, inside the guest\n  \
                      BPFCOMPAT_ARTIFACT     the first --artifact file inside the guest (empty if none)\n  \
                      BPFCOMPAT_ARTIFACTS    every --artifact file inside the guest, one a line\n  \
                      BPFCOMPAT_REMOTE_ROOT  the directory holding them (/bpfcompat)\n\
                      Quote the command with single quotes so your shell leaves $BPFCOMPAT_BIN \
                      for the guest.\n\n\
                      PATH has bash, busybox's applets, the host's bpftool (/usr/sbin/bpftool, \
                      when the host has one) and each --guest-tool (/usr/local/bin/NAME, first \
                      on PATH), all with their shared libraries."
    )]
    TestCommand(TestCommandArgs),
    /// Check .bpf.o objects with the bundled libbpf validator (or your loader with --command).
    #[command(
        long_about = "Check eBPF on every kernel of a matrix.\n\n\
                      With --artifact FILE.bpf.o (repeatable), the bundled libbpf validator does \
                      what a libbpf loader does inside each guest: open the object, create its \
                      maps, load it as a whole, then attach every program (xdp and tc on lo, \
                      cgroup programs on the cgroup2 root, ...). Every failure gets a class \
                      (UNSUPPORTED_MAP_TYPE, MISSING_BTF, VERIFIER_REJECTION, ...), the evidence \
                      line and a hint; all objects are checked in the same boot of each kernel. \
                      Files that are not BPF objects are refused before anything boots.\n\n\
                      A manifest (--manifest, or X.manifest.yaml found beside X.bpf.o) says \
                      what the object's own loader does that a plain libbpf load would not: map \
                      sizes, program types, variants, globals, attach targets, functional tests \
                      (docs/manifest.md). --suite runs a suite file's cases in one boot of each \
                      kernel. Manifests and suites are read in the Go bpfcompat's format.\n\n\
                      With --command, runs your loader exactly like `test-command`.",
        after_help = "Examples:\n  bpfcompat test --artifact build/probe.bpf.o --artifact build/net.bpf.o \\\n      --matrix matrices/test-kernels.yaml --out report.json --markdown report.md\n  \
                      bpfcompat test --suite bpfcompat-suite.yaml --out report.json"
    )]
    Test(TestArgs),
    /// Publish a report to GitHub: check run, sticky PR comment, job summary, step outputs.
    #[command(
        long_about = "Publish a report to GitHub from inside an Actions job: a check run on the \
                      pull request's head commit (updated in place on reruns), a sticky \
                      pull-request comment, the job summary and the step outputs (status, passed, \
                      failed, infra-errors, regressions, report, markdown).\n\n\
                      On pull requests, each kernel is compared with the check run of the same \
                      name on the base commit, which carries that run's results.\n\n\
                      Reads GITHUB_REPOSITORY, GITHUB_EVENT_PATH, GITHUB_SHA, GITHUB_API_URL, \
                      GITHUB_GRAPHQL_URL, GITHUB_STEP_SUMMARY, GITHUB_OUTPUT. A 403 from GitHub \
                      (pull requests from forks get a read-only token) is a warning, not a \
                      failure. The sticky comment is only ever one the token's own identity \
                      wrote (or --comment-author's).\n\n\
                      For forks' pull requests, publish from a workflow on workflow_run with \
                      --workflow-run: the report (another run's artifact) is checked against \
                      docs/report.schema.json and its size limits before anything is posted, and \
                      the commit and pull request come from the event (docs/github-action.md).\n\n\
                      Exit code by --fail-on, the same words and rules as `compare`: required: \
                      the report's own (0 pass, 2 a required kernel failed, 1 one could not be \
                      checked); any: also optional kernels; regression: 2 when a required kernel \
                      passed on the base commit and does not now; any-change: 2 when any kernel \
                      changed against the base; never: 0."
    )]
    Publish(PublishArgs),
    /// Past runs, as recorded in <workdir>/history.jsonl by test and test-command.
    History(HistoryArgs),
    /// What changed per kernel between two reports; exits 2 on a regression.
    #[command(
        long_about = "What changed per kernel between two reports: regressed (pass → fail or \
                      infra error), fixed, status_changed (fail ↔ infra error), class_changed \
                      (same status, other classification), added, removed, unchanged.\n\n\
                      Give two report files (--base, --head), or an artifact name and two \
                      versions to look up in the history (the latest whole-matrix run of each).\n\n\
                      Exit codes: 2 as --fail-on says (default: a required kernel regressed); \
                      0 otherwise; 1 bad input (a missing or unreadable report, different \
                      schemas, or different matrices without --allow-matrix-change).",
        after_help = "Examples:\n  bpfcompat compare --base main.json --head pr.json --markdown diff.md\n  \
                      bpfcompat compare --artifact-name myloader --base-version v1.2 --head-version v1.3"
    )]
    Compare(CompareArgs),
    /// Merge the reports of --shard runs into the report of the whole matrix.
    #[command(
        long_about = "Merge the reports of `--shard I/N` runs into the report one unsharded run \
                      would have written: kernels in matrix order, summary recomputed, started at \
                      the earliest shard's start and lasting until the last shard's end.\n\n\
                      Refuses shards of different artifacts, matrices or bpfcompat versions, and a \
                      shard given twice; a missing shard too, unless --allow-partial.\n\n\
                      Exit codes: like test: 0 every required kernel passed, 2 a required kernel \
                      failed, 1 an error (including a required kernel that could not be checked).",
        after_help = "Example:\n  bpfcompat merge shards/*.json --out report.json --markdown report.md"
    )]
    Merge(MergeArgs),
    /// Split a matrix into shards of about equal time for a fan-out over CI runners.
    Shards(ShardsArgs),
    /// Fetch, list, verify, prune and lock kernels; import kernel files into the cache.
    #[command(
        long_about = "Look after the kernels of a matrix and the kernel cache.\n\n\
                      Sources without a pinned digest (an oci: tag, an apt: version, a url: \
                      without sha256:) are pinned by `<matrix>.lock` beside the matrix (for a built-in \
                      matrix, .bpfcompat/<name>.lock in the current directory), written \
                      on first use; `lock` re-resolves them from their origins.\n\n\
                      $BPFCOMPAT_KERNEL_MIRROR (a directory or base URL) is tried before any \
                      origin, by digest (<mirror>/sha256/<hex>) and by file name."
    )]
    Kernels(KernelsArgs),
    /// What this host gives a run: QEMU, /dev/kvm, and the accelerator chosen, with its reason.
    #[command(
        long_about = "What this host gives a run: the QEMU found on PATH and its version, \
                      whether /dev/kvm is usable, and the accelerator `--accel auto` chooses, \
                      with its reason.\n\n\
                      The verdict on KVM (a probe guest's answer, and a kernel found silent \
                      under KVM by a run) is remembered in <cache>/accel.json for this boot of \
                      the host, host kernel and QEMU binary; --forget-accel removes it so the \
                      next run (or this command) finds it anew. --accel on a run always wins."
    )]
    Doctor(DoctorArgs),
    /// What each .bpf.o asks of a kernel, read from the object alone, and its minimum kernel.
    #[command(
        long_about = "What each .bpf.o asks of a kernel, read from the object alone: per \
                      program its type, attach type and attach target (fentry, kprobe, lsm, \
                      tp_btf, iter), the helpers and kfuncs it calls; the maps and their types; \
                      every CO-RE relocation (type, field or enumerator) and whether the object \
                      guards it with bpf_core_*_exists; global data; the BTF kinds libbpf rewrites \
                      for older kernels. Then the minimum upstream kernel, with every \
                      requirement newer than 5.4 (data/kernel-features.json, from iovisor/bcc's \
                      kernel-versions table and the UAPI history).\n\n\
                      `bpfcompat test --predict-only` checks these against each kernel of a matrix.",
        after_help = "Example:\n  bpfcompat inspect build/probe.bpf.o --json"
    )]
    Inspect(InspectArgs),
    /// Render existing JSON reports (one, or a set of shards) as report.html and Markdown.
    #[command(
        long_about = "Render existing JSON reports as one self-contained HTML page (and, with \
                      --markdown, Markdown): one report, or the reports of a sharded run, merged \
                      first as `merge` does. The page's history chart reads the runs recorded \
                      in --workdir's history of the same artifact on the same matrix.",
        after_help = "Example:\n  bpfcompat report --html report.html shard-*/report.json"
    )]
    Report(ReportArgs),
}

#[derive(Args)]
pub struct ReportArgs {
    /// The JSON report, or the reports of every shard of one run.
    #[arg(value_name = "REPORT", required = true)]
    pub reports: Vec<PathBuf>,
    /// Where to write the HTML page (written atomically).
    #[arg(long, value_name = "FILE")]
    pub html: PathBuf,
    /// Where to write the Markdown report too.
    #[arg(long, value_name = "FILE")]
    pub markdown: Option<PathBuf>,
    /// Render even if some shards are missing (their kernels are left out, with a warning).
    #[arg(long)]
    pub allow_partial: bool,
    /// Where the run history is, for the history chart [default: .bpfcompat].
    #[arg(long, value_name = "DIR")]
    pub workdir: Option<PathBuf>,
    /// The reports are another run's artifact: check them against the report schema first,
    /// as `publish --workflow-run` does.
    #[arg(long)]
    pub untrusted: bool,
}

impl ReportArgs {
    pub fn into_options(self) -> RenderOptions {
        RenderOptions {
            reports: self.reports,
            html: self.html,
            markdown: self.markdown,
            allow_partial: self.allow_partial,
            untrusted: self.untrusted,
            workdir: self.workdir.unwrap_or_else(|| DEFAULT_WORKDIR.into()),
        }
    }
}

#[derive(Args)]
pub struct InspectArgs {
    /// The objects.
    #[arg(value_name = "OBJECT", required = true)]
    pub objects: Vec<PathBuf>,
    /// JSON instead of text: the inspection and the minimum kernel of each object.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct DoctorArgs {
    /// Forget the remembered verdict on KVM, then find it anew.
    #[arg(long)]
    pub forget_accel: bool,
    #[command(flatten)]
    pub cache: CacheArgs,
}

impl DoctorArgs {
    pub fn into_options(self) -> DoctorOptions {
        DoctorOptions {
            cache_dir: self.cache.cache_dir(),
            forget_accel: self.forget_accel,
        }
    }
}

#[derive(Args)]
pub struct HistoryArgs {
    #[command(subcommand)]
    pub command: HistoryCommand,
}

#[derive(Subcommand)]
pub enum HistoryCommand {
    /// The recorded runs, newest first.
    List(HistoryListArgs),
}

#[derive(Args)]
pub struct HistoryListArgs {
    /// Only runs recorded under this artifact name.
    #[arg(long, value_name = "NAME")]
    pub artifact_name: Option<String>,
    /// Only the newest K runs.
    #[arg(long, value_name = "K", value_parser = clap::value_parser!(u64).range(1..))]
    pub limit: Option<u64>,
    /// The records as a JSON array instead of a table.
    #[arg(long)]
    pub json: bool,
    /// The --workdir of the runs.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_WORKDIR)]
    pub workdir: PathBuf,
}

#[derive(Args)]
pub struct CompareArgs {
    /// The earlier report.
    #[arg(
        long,
        value_name = "FILE",
        required_unless_present = "artifact_name",
        conflicts_with = "artifact_name",
        requires = "head"
    )]
    pub base: Option<PathBuf>,
    /// The later report.
    #[arg(long, value_name = "FILE", requires = "base")]
    pub head: Option<PathBuf>,
    /// Look both reports up in the history under this artifact name.
    #[arg(long, value_name = "NAME", requires_all = ["base_version", "head_version"])]
    pub artifact_name: Option<String>,
    /// The earlier version (with --artifact-name).
    #[arg(long, value_name = "VERSION", requires = "artifact_name")]
    pub base_version: Option<String>,
    /// The later version (with --artifact-name).
    #[arg(long, value_name = "VERSION", requires = "artifact_name")]
    pub head_version: Option<String>,
    /// The --workdir of the runs, whose history.jsonl to look versions up in.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_WORKDIR)]
    pub workdir: PathBuf,
    /// Where to write the comparison as JSON.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Where to write the comparison as Markdown.
    #[arg(long, value_name = "FILE")]
    pub markdown: Option<PathBuf>,
    /// What makes the exit code non-zero: regression (a required kernel regressed), any-change,
    /// required (the head's own verdict), any (optional kernels too), never; the same words and
    /// rules as `publish --fail-on`.
    #[arg(long, value_enum, default_value_t = FailOnArg::Regression)]
    pub fail_on: FailOnArg,
    /// Compare reports of different matrices (kernels only in one are added or removed).
    #[arg(long)]
    pub allow_matrix_change: bool,
}

impl CompareArgs {
    /// The two sides and the options; clap has made sure exactly one of the
    /// two forms (files, or name and versions) was given.
    pub fn into_parts(self) -> (compare::Input, compare::Input, compare::Options) {
        let options = compare::Options {
            fail_on: self.fail_on.into(),
            allow_matrix_change: self.allow_matrix_change,
            out: self.out,
            markdown: self.markdown,
        };
        let version = |version: Option<String>| compare::Input::Version {
            workdir: self.workdir.clone(),
            name: self.artifact_name.clone().unwrap_or_default(),
            version: version.unwrap_or_default(),
        };
        match (self.base, self.head) {
            (Some(base), Some(head)) => (
                compare::Input::File(base),
                compare::Input::File(head),
                options,
            ),
            _ => (
                version(self.base_version),
                version(self.head_version),
                options,
            ),
        }
    }
}

#[derive(Args)]
pub struct MergeArgs {
    /// The shard reports, in any order.
    #[arg(value_name = "REPORT", required = true)]
    pub reports: Vec<PathBuf>,
    /// Where to write the merged JSON report (written atomically).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Where to write a Markdown rendering of the merged report.
    #[arg(long, value_name = "FILE")]
    pub markdown: Option<PathBuf>,
    /// Merge even if some shards are missing (their kernels are left out, with a warning).
    #[arg(long)]
    pub allow_partial: bool,
}

#[derive(Args)]
pub struct ShardsArgs {
    #[command(subcommand)]
    pub command: ShardsCommand,
}

#[derive(Subcommand)]
pub enum ShardsCommand {
    /// Split the matrix into --jobs shards of about equal time; run each with --shard I/N
    /// --shard-plan FILE, then `merge` their reports.
    #[command(
        long_about = "Split the matrix into --jobs shards of about equal time, by each kernel's \
                      time (`timing_ms.total`) in the reports given with --timings (a merged \
                      report of the last run is the usual one; a later report wins). Kernels \
                      no report has cost the median of those measured; with no report at all, \
                      shards get equal counts. Longest first: each kernel, slowest first, goes \
                      to the shard with the least time so far.\n\n\
                      Writes the plan (JSON) for `test --shard I/N --shard-plan FILE`, and prints \
                      each shard's kernels and expected time. A run refuses a plan that does not \
                      split its matrix into N shards exactly (a kernel added since: plan again).",
        after_help = "Example:\n  bpfcompat shards plan --matrix matrices/fleet.yaml --jobs 5 \
                      --timings last-report.json --out plan.json\n  \
                      bpfcompat test --matrix matrices/fleet.yaml --artifact x.bpf.o --shard 2/5 \
                      --shard-plan plan.json --out shard-2.json"
    )]
    Plan(ShardsPlanArgs),
}

#[derive(Args)]
pub struct ShardsPlanArgs {
    /// The kernel matrix: a file, or the name of a built-in one [default: default].
    #[arg(long, value_name = "FILE|NAME")]
    pub matrix: Option<PathBuf>,
    /// How many shards (CI jobs); at most the matrix's kernel count.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub jobs: u16,
    /// A report of an earlier run (merged, whole or a shard's): its per-kernel times are the
    /// costs. Repeatable.
    #[arg(long, value_name = "REPORT")]
    pub timings: Vec<PathBuf>,
    /// Where to write the plan (written atomically).
    #[arg(long, value_name = "FILE", default_value = "shard-plan.json")]
    pub out: PathBuf,
    /// Append `shards=["1/N",...]` to this file, for a workflow's strategy.matrix (give
    /// "$GITHUB_OUTPUT").
    #[arg(long, value_name = "FILE")]
    pub github_output: Option<PathBuf>,
}

#[derive(Args)]
pub struct TestCommandArgs {
    /// The command to run in each guest (one string, run by `bash -lc`).
    #[arg(long, value_name = "CMD", allow_hyphen_values = true, value_parser = non_blank_command)]
    pub cmd: String,
    /// A binary to ship into the guest as $BPFCOMPAT_BIN (its shared libraries come along).
    #[arg(long, value_name = "FILE")]
    pub bin: Option<PathBuf>,
    /// The exit code that means "works on this kernel".
    #[arg(long, value_name = "N", default_value_t = 0, value_parser = clap::value_parser!(u8))]
    pub expect_exit: u8,
    /// A file to ship into the guest (e.g. your .bpf.o), repeatable: all are in
    /// /bpfcompat/artifact/ and listed in $BPFCOMPAT_ARTIFACTS, the first is
    /// $BPFCOMPAT_ARTIFACT; their file names must differ.
    #[arg(long, value_name = "FILE")]
    pub artifact: Vec<PathBuf>,
    /// A host program to put on the guest's PATH as /usr/local/bin/NAME (its shared
    /// libraries come along), repeatable; one named bpftool replaces the host's bpftool.
    #[arg(long, value_name = "FILE")]
    pub guest_tool: Vec<PathBuf>,
    #[command(flatten)]
    pub common: CommonArgs,
}

#[derive(Args)]
pub struct TestArgs {
    /// The command to run in each guest (one string, run by `bash -lc`).
    #[arg(long, value_name = "CMD", allow_hyphen_values = true, value_parser = non_blank_command)]
    pub command: Option<String>,
    /// A binary to ship into the guest as $BPFCOMPAT_BIN.
    #[arg(long, value_name = "FILE", requires = "command")]
    pub command_binary: Option<PathBuf>,
    /// The exit code that means "works on this kernel".
    #[arg(long, value_name = "N", default_value_t = 0, value_parser = clap::value_parser!(u8), requires = "command")]
    pub command_expect_exit: u8,
    /// A .bpf.o to check with the bundled validator; repeat it to check several in the
    /// same boot (each with X.manifest.yaml beside X.bpf.o, if there is one). `{arch}` in
    /// the path (quote it) is `x86` or `arm64`: each kernel checks its architecture's
    /// build, e.g. 'build/{arch}/probe.bpf.o'. With --command:
    /// files shipped into the guest, listed in $BPFCOMPAT_ARTIFACTS, the first as
    /// $BPFCOMPAT_ARTIFACT.
    #[arg(long, value_name = "FILE", conflicts_with = "suite")]
    pub artifact: Vec<PathBuf>,
    /// With --command: a host program to put on the guest's PATH as /usr/local/bin/NAME
    /// (with its shared libraries), repeatable.
    #[arg(long, value_name = "FILE", requires = "command")]
    pub guest_tool: Vec<PathBuf>,
    /// The manifest of the one --artifact (the Go bpfcompat's format, docs/manifest.md),
    /// instead of the X.manifest.yaml beside it.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["command", "suite"])]
    pub manifest: Option<PathBuf>,
    /// A suite file (the Go bpfcompat's format): its cases' objects, with their manifests, all
    /// checked in one boot of each kernel; its defaults stand in for --matrix, --workdir,
    /// --timeout and --concurrency when those are not given.
    #[arg(long, value_name = "FILE", conflicts_with = "command")]
    pub suite: Option<PathBuf>,
    /// Validator: what to prove (also spelt load_only, load_attach); wins over a suite's modes
    /// [default: load-attach].
    #[arg(long, value_enum, conflicts_with = "command")]
    pub validation_mode: Option<ValidationModeArg>,
    /// Apply only what manifests say, nothing for what maps leave to their loader. By default
    /// maps compiled with max_entries 0 get a loader's size (ring buffers 256 KiB, per-CPU
    /// buffer holders the CPU count, others 10240 entries), stack-trace maps with value size 0
    /// the kernel's perf_event_max_stack frames of 8 bytes, and LPM tries, local storages and
    /// arenas the flag they need (BPF_F_NO_PREALLOC, BPF_F_MMAPABLE), each named in the
    /// report's validation.fixups.
    #[arg(
        long = "no-fixups",
        visible_alias = "no-auto-fixups",
        conflicts_with = "command"
    )]
    pub no_auto_fixups: bool,
    /// Only the preflight, no QEMU: each object against each kernel's BTF (read from its image),
    /// printed with every obstacle found; --out gets the predictions as JSON
    /// (bpfcompat.preflight/v1). Exit 2 when an object is blocked on a required kernel.
    /// Necessary conditions only: "no known obstacle" is not a pass.
    #[arg(long, conflicts_with = "command")]
    pub predict_only: bool,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// `--validation-mode`: the words of [`ValidationMode`], and the Go tool's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ValidationModeArg {
    /// Open the object, create its maps and load its programs.
    #[value(alias = "load_only")]
    LoadOnly,
    /// Also attach every program to a real target in the guest.
    #[value(alias = "load_attach")]
    LoadAttach,
    /// Attach, then with every link alive: run statistics, a built-in workload (exec, fork,
    /// file I/O, TCP and UDP on lo, sockets, a sleep) and the manifests' functional tests;
    /// reports each program's run count.
    Behavior,
}

impl From<ValidationModeArg> for ValidationMode {
    fn from(mode: ValidationModeArg) -> ValidationMode {
        match mode {
            ValidationModeArg::LoadOnly => ValidationMode::LoadOnly,
            ValidationModeArg::LoadAttach => ValidationMode::LoadAttach,
            ValidationModeArg::Behavior => ValidationMode::Behavior,
        }
    }
}

#[derive(Args)]
pub struct PublishArgs {
    /// The report.json written by `bpfcompat test`.
    #[arg(long, value_name = "FILE")]
    pub report: PathBuf,
    /// GitHub token; without one only the job summary and outputs are written.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "GITHUB_TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
    /// The report is another workflow run's artifact, in a job `on: workflow_run`: publish
    /// for that run's head commit and pull request (from the event, never the report), after
    /// checking the report against docs/report.schema.json and its size limits; no path it
    /// names is read.
    #[arg(long)]
    pub workflow_run: bool,
    /// The check run's name; also tells this matrix's PR comment from others'.
    #[arg(long, value_name = "NAME", default_value = "bpfcompat")]
    pub check_name: String,
    /// Create or update the check run; false uses the token only to read the base's results.
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    pub check_run: bool,
    /// Post a sticky PR comment: true, false, or on-failure (a kernel failed or regressed).
    #[arg(long, value_enum, value_name = "WHEN", default_value = "true")]
    pub comment: CommentArg,
    /// The login whose comment with our marker is ours to update [default: who the token acts
    /// as, GraphQL's viewer: github-actions[bot] for GITHUB_TOKEN]. Comments by anyone else
    /// are never edited.
    #[arg(long, value_name = "LOGIN")]
    pub comment_author: Option<String>,
    /// What fails this step: required (the report's own exit code), any (optional kernels
    /// too), regression (a required kernel regressed against the base commit), any-change,
    /// never; the same words and rules as `compare --fail-on`.
    #[arg(long, value_enum, value_name = "POLICY", default_value = "required")]
    pub fail_on: FailOnArg,
    /// On pull requests, compare with this check run's results on the base commit.
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    pub compare_base: bool,
    /// Where the uploaded report.json is (upload-artifact's artifact-url) [default: the workflow run].
    #[arg(long, value_name = "URL")]
    pub artifact_url: Option<String>,
    /// Where the uploaded report.html is (its artifact-url): linked from the comment, the
    /// job summary and the check run.
    #[arg(long, value_name = "URL")]
    pub page_url: Option<String>,
}

#[derive(Args)]
pub struct KernelsArgs {
    #[command(subcommand)]
    pub command: KernelsCommand,
}

#[derive(Subcommand)]
pub enum KernelsCommand {
    /// Download and extract every kernel of a matrix into the cache (writes its lock file).
    Fetch(KernelsMatrixArgs),
    /// Which kernels of a matrix are cached; every cached file with size, digest and release.
    List(KernelsListArgs),
    /// Re-hash every cached file and remove corrupt ones; with --matrix, check its kernels are cached.
    /// With --remote, ask every source's origin whether it is still published instead.
    Verify(KernelsVerifyArgs),
    /// Remove cache entries that no kernel of the matrix needs (everything with --all).
    Prune(KernelsPruneArgs),
    /// Resolve the matrix's unpinned sources from their origins again and rewrite its lock file.
    Lock(KernelsMatrixArgs),
    /// Add kernel images or packages (files, or every file under a directory) to the cache, by digest.
    Import(KernelsImportArgs),
    /// Every point release of a kernel series in Debian or Ubuntu package indices, as a matrix
    /// pinned by the indices' sha256.
    #[command(
        long_about = "Every point release of a kernel series that Debian or Ubuntu archives \
                      offer, as a matrix: each `linux-image-SERIES.X-FLAVOUR` package of the \
                      `Packages` indices (--index, plain, .gz or .xz; a file or a URL; give the \
                      suite's and its security suite's to see every ABI still published), \
                      newest first by version, each a `url:` source under the archive's root \
                      pinned by the sha256 the index gives it, so the matrix needs no lock.",
        after_help = "Example:\n  bpfcompat kernels sweep 6.1 --flavour cloud-amd64 --last 5 \\\n    \
                      --index $MIRROR/debian/dists/bookworm/main/binary-amd64/Packages.xz \\\n    \
                      --index $MIRROR/debian-security/dists/bookworm-security/main/binary-amd64/Packages.xz \\\n    \
                      --out matrices/debian-6.1-sweep.yaml"
    )]
    Sweep(KernelsSweepArgs),
    /// Whether the matrix's `sweep:` entries are behind their indices: a newer point release
    /// published, or a swept one gone; exits 2 if so.
    #[command(
        long_about = "Whether the matrix's `sweep:` entries are behind their indices: each \
                      entry's point releases in the lock file against what its indices offer \
                      now. A newer point release, or a locked one no longer published, is \
                      listed and makes the exit code 2; 0 when all are current; 1 on an error \
                      (an index that cannot be read). `kernels lock` takes the new ones in. \
                      `kernels verify --remote` checks the other sources are still published."
    )]
    Outdated(KernelsOutdatedArgs),
    /// What a kernel of the matrix offers BPF, read from its own BTF without booting it.
    #[command(
        long_about = "What a kernel of the matrix offers BPF, read from its own BTF (the .BTF \
                      of the vmlinux inside its image, decompressed on the host, cached in \
                      <cache>/btf/ by the image's digest) without booting it: the release, the \
                      last helper of its bpf_func_id, its map, program and attach types, how \
                      many functions and structs its BTF has. A kernel without BTF is judged by \
                      its release. This is what `test --predict-only` and every run's preflight \
                      compare objects with."
    )]
    Inspect(KernelsInspectArgs),
}

#[derive(Args)]
pub struct KernelsInspectArgs {
    /// The kernel's id in the matrix.
    #[arg(value_name = "NAME")]
    pub name: String,
    /// The kernel matrix: a file, or the name of a built-in one [default: default].
    #[arg(long, value_name = "FILE|NAME")]
    pub matrix: Option<PathBuf>,
    /// JSON instead of text.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub cache: CacheArgs,
}

#[derive(Args)]
pub struct KernelsOutdatedArgs {
    /// The kernel matrix: a file, or the name of a built-in one [default: default].
    #[arg(long, value_name = "FILE|NAME")]
    pub matrix: Option<PathBuf>,
}

#[derive(Args)]
pub struct KernelsSweepArgs {
    /// The series: the kernel version's first two numbers (6.1, 5.15).
    #[arg(value_name = "SERIES")]
    pub series: String,
    /// The flavour ending the package names: cloud-amd64, amd64, arm64 (Debian), generic,
    /// aws (Ubuntu); for an RPM repository the package name: kernel-core (RHEL 9 and
    /// rebuilds), kernel (Amazon Linux), kernel-uek-core (Oracle UEK), kernel-default (SUSE).
    #[arg(long, value_name = "FLAVOUR", default_value = "")]
    pub flavour: String,
    /// A `Packages` index, or an RPM repository's repodata/repomd.xml (file or URL), or
    /// oci:REPOSITORY (its tags SERIES.N are the releases; no --flavour). Repeatable.
    #[arg(long = "index", value_name = "FILE|URL", required = true)]
    pub indices: Vec<String>,
    /// Only the N newest point releases.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub last: Option<u16>,
    /// The archive's root URL the packages' Filename paths are under [default: the index URL
    /// up to /dists/]. Needed for an index given as a file.
    #[arg(long, value_name = "URL")]
    pub archive: Option<String>,
    /// RPM repositories: the package each release's modules come from, of the same version
    /// (kernel-modules-core on RHEL 9 and its rebuilds).
    #[arg(long, value_name = "PACKAGE")]
    pub modules: Option<String>,
    /// The matrix's name [default: sweep-SERIES-FLAVOUR].
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Where to write the matrix (atomically) [default: standard output].
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

#[derive(Args)]
pub struct KernelsMatrixArgs {
    /// The kernel matrix: a file, or the name of a built-in one [default: default].
    #[arg(long, value_name = "FILE|NAME")]
    pub matrix: Option<PathBuf>,
    /// Fail (exit 1) instead of resolving a source its lock file does not pin.
    #[arg(long)]
    pub locked: bool,
    #[command(flatten)]
    pub cache: CacheArgs,
}

#[derive(Args)]
pub struct KernelsListArgs {
    /// Also show, per kernel of this matrix (a file or a built-in name), whether it is cached.
    #[arg(long, value_name = "FILE|NAME")]
    pub matrix: Option<PathBuf>,
    #[command(flatten)]
    pub cache: CacheArgs,
}

#[derive(Args)]
pub struct KernelsVerifyArgs {
    /// The matrix (a file or a built-in name) [default: the cache alone; with --remote, every
    /// built-in matrix].
    #[arg(long, value_name = "FILE|NAME")]
    pub matrix: Option<PathBuf>,
    /// Ask each source's origin whether it is still published, without downloading: a HEAD
    /// request per URL, one manifest request per image tag, `apt-get download --print-uris` per
    /// apt package. Exit 1 if one is not.
    #[arg(long)]
    pub remote: bool,
    #[command(flatten)]
    pub cache: CacheArgs,
}

#[derive(Args)]
pub struct KernelsPruneArgs {
    /// Keep what this matrix's kernels need (a file or a built-in name), and the snapshots
    /// of the kernel images kept.
    #[arg(long, value_name = "FILE|NAME", required_unless_present = "all")]
    pub matrix: Option<PathBuf>,
    /// Remove every cached kernel and snapshot.
    #[arg(long, conflicts_with = "matrix")]
    pub all: bool,
    #[command(flatten)]
    pub cache: CacheArgs,
}

#[derive(Args)]
pub struct KernelsImportArgs {
    /// Kernel images, packages or image layers, or directories holding them.
    #[arg(value_name = "PATH", required = true)]
    pub paths: Vec<PathBuf>,
    #[command(flatten)]
    pub cache: CacheArgs,
}

#[derive(Args)]
pub struct CacheArgs {
    /// Kernel cache [default: $XDG_CACHE_HOME/bpfcompat].
    #[arg(long, value_name = "DIR", env = "BPFCOMPAT_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
}

impl CacheArgs {
    pub fn cache_dir(&self) -> PathBuf {
        self.cache_dir.clone().unwrap_or_else(|| {
            let base = std::env::var_os("XDG_CACHE_HOME")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
                .unwrap_or_else(std::env::temp_dir);
            base.join("bpfcompat")
        })
    }
}

#[derive(Args)]
pub struct CommonArgs {
    /// The kernel matrix: a YAML file (relative paths inside it resolve against its own
    /// directory), or the name of a built-in one: default, mvp, quirk-library [default: default].
    #[arg(long, value_name = "FILE|NAME")]
    pub matrix: Option<PathBuf>,
    /// Fail (exit 1) if the matrix's lock file does not pin every unpinned source (for CI).
    #[arg(long)]
    pub locked: bool,
    /// Where to write the JSON report (written atomically).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Where to write a Markdown rendering of the report.
    #[arg(long, value_name = "FILE")]
    pub markdown: Option<PathBuf>,
    /// Where to write report.html: one self-contained page with the object x kernel grid, each
    /// cell's evidence, timing and history charts (written atomically; nothing in it is fetched).
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Kernels booted at once [default: what the machine's cores and memory allow].
    #[arg(long, visible_alias = "jobs", short = 'j', value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub concurrency: Option<u16>,
    /// Megabytes of memory the guests may use at once, each counting its `memory_mb` plus
    /// 150 MB for QEMU; guests beyond it wait their turn, and one that alone exceeds it is an
    /// infrastructure error [default: MemAvailable minus 1 GiB].
    #[arg(long, value_name = "MB", value_parser = clap::value_parser!(u64).range(1..))]
    pub memory_budget: Option<u64>,
    /// Per-kernel time limit, e.g. 90s or 5m; a kernel's `timeout:` in the matrix wins
    /// [default: a suite's, else 3m].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub timeout: Option<Duration>,
    /// Hardware acceleration. auto: KVM once a 64 KiB probe guest has entered long mode and
    /// printed under it on this host (checked within 2 s), else TCG emulation; a KVM guest
    /// that prints nothing for 10 s switches the run to TCG. Both findings are remembered per
    /// host boot (`bpfcompat doctor` shows them). kvm: fail fast if KVM cannot run guests.
    #[arg(long, value_enum, default_value_t = AccelArg::Auto)]
    pub accel: AccelArg,
    /// Restore each kernel from a snapshot of its booted guest, saved in the cache on first
    /// use (docs/snapshots.md). auto: when the job is small enough to send faster than a
    /// boot; off: always boot.
    #[arg(long, value_enum, default_value_t = SnapshotsArg::Auto)]
    pub snapshots: SnapshotsArg,
    #[command(flatten)]
    pub cache: CacheArgs,
    /// Where run directories (console logs, initramfs) and the run history go [default: a
    /// suite's, else .bpfcompat].
    #[arg(long, value_name = "DIR")]
    pub workdir: Option<PathBuf>,
    /// Check only share I of N of the matrix's kernels (every Nth, starting at the Ith),
    /// e.g. 2/3; combine the shards' reports with `bpfcompat merge`.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<ShardSpec>,
    /// Take shard I's kernels from this plan (`bpfcompat shards plan`: shards of about equal
    /// time) instead of every Nth; it must split this matrix into N shards.
    #[arg(long, value_name = "FILE", requires = "shard")]
    pub shard_plan: Option<PathBuf>,
    /// The name this run is recorded under in the history [default: the report's artifact name].
    #[arg(long, value_name = "NAME")]
    pub artifact_name: Option<String>,
    /// The version this run is recorded under in the history [default: `git describe --always
    /// --dirty` of the current directory's repository, if any].
    #[arg(long, value_name = "VERSION")]
    pub artifact_version: Option<String>,
    /// Kernel modules to load in every guest before the check (with their dependencies, from
    /// each kernel's module tree), e.g. nf_conntrack,xfs; objects get the modules their programs
    /// need without it.
    #[arg(long, value_name = "NAME,...", value_delimiter = ',', value_parser = module_name)]
    pub modules: Vec<String>,
}

fn module_name(s: &str) -> Result<String, String> {
    if crate::matrix::valid_module_name(s) {
        Ok(s.to_owned())
    } else {
        Err(format!(
            "{s:?} is not a module name (1 to 56 of A-Z a-z 0-9 _ -)"
        ))
    }
}

/// An empty command would "pass" on every kernel without checking anything.
fn non_blank_command(s: &str) -> Result<String, String> {
    if s.trim().is_empty() {
        return Err(
            "the command is empty; give the loader command to run in each guest, \
             e.g. './myloader --self-test'"
                .to_owned(),
        );
    }
    Ok(s.to_owned())
}

impl TestCommandArgs {
    pub fn into_check(self) -> (CheckSpec, RunOptions) {
        let check = CommandCheck {
            command: self.cmd,
            bin: self.bin,
            artifacts: self.artifact,
            guest_tools: self.guest_tool,
            expected_exit: i32::from(self.expect_exit),
        };
        (CheckSpec::Command(check), self.common.into_options())
    }
}

impl TestArgs {
    /// What to check: the loader command, or the objects for the validator.
    pub fn into_check(self) -> anyhow::Result<(CheckSpec, RunOptions)> {
        let spec = match self.command {
            Some(command) => CheckSpec::Command(CommandCheck {
                command,
                bin: self.command_binary,
                artifacts: self.artifact,
                guest_tools: self.guest_tool,
                expected_exit: i32::from(self.command_expect_exit),
            }),
            None => {
                let mode = self.validation_mode.map(ValidationMode::from);
                let auto_fixups = !self.no_auto_fixups;
                match self.suite {
                    Some(path) => CheckSpec::Suite(SuiteCheck {
                        path,
                        mode,
                        auto_fixups,
                    }),
                    None if self.artifact.is_empty() => bail!(
                        "nothing to check: give --artifact FILE.bpf.o (repeatable) or --suite FILE \
                         for the bundled validator, or --command CMD to run your own loader"
                    ),
                    None if self.manifest.is_some() && self.artifact.len() > 1 => bail!(
                        "--manifest describes one object, and {} --artifact were given; for \
                         several, put each object's manifest beside it as X.manifest.yaml \
                         (found for X.bpf.o), or write a --suite",
                        self.artifact.len()
                    ),
                    None => CheckSpec::Objects(
                        self.artifact
                            .into_iter()
                            .map(|path| ObjectCheck {
                                path,
                                manifest: self.manifest.clone(),
                                case: None,
                                mode: mode.unwrap_or_default(),
                                auto_fixups,
                                test: None,
                            })
                            .collect(),
                    ),
                }
            }
        };
        let mut options = self.common.into_options();
        options.predict_only = self.predict_only;
        Ok((spec, options))
    }
}

impl CommonArgs {
    fn into_options(self) -> RunOptions {
        RunOptions {
            cache_dir: self.cache.cache_dir(),
            matrix: self.matrix,
            locked: self.locked,
            out: self.out,
            markdown: self.markdown,
            html: self.html,
            concurrency: self.concurrency.map(usize::from),
            memory_budget_mb: self.memory_budget,
            timeout: self.timeout,
            accel: self.accel.into(),
            snapshots: self.snapshots == SnapshotsArg::Auto,
            workdir: self.workdir,
            shard: self.shard,
            shard_plan: self.shard_plan,
            artifact_name: self.artifact_name,
            artifact_version: self.artifact_version,
            modules: self.modules,
            predict_only: false,
        }
    }
}

impl PublishArgs {
    pub fn into_options(self) -> PublishOptions {
        PublishOptions {
            report: self.report,
            trigger: match self.workflow_run {
                true => Trigger::WorkflowRun,
                false => Trigger::ThisRun,
            },
            token: self.token,
            check_name: self.check_name,
            check_run: self.check_run,
            comment: self.comment.into(),
            comment_author: self.comment_author,
            fail_on: self.fail_on.into(),
            compare_base: self.compare_base,
            artifact_url: self.artifact_url,
            page_url: self.page_url,
        }
    }
}

impl ShardsPlanArgs {
    pub fn into_options(self) -> PlanOptions {
        PlanOptions {
            matrix: self.matrix,
            jobs: usize::from(self.jobs),
            timings: self.timings,
            out: self.out,
            github_output: self.github_output,
        }
    }
}

impl MergeArgs {
    pub fn into_options(self) -> MergeOptions {
        MergeOptions {
            reports: self.reports,
            out: self.out,
            markdown: self.markdown,
            allow_partial: self.allow_partial,
        }
    }
}

impl KernelsArgs {
    pub fn into_options(self) -> KernelsOptions {
        let (cache, action) = match self.command {
            KernelsCommand::Fetch(a) => (
                a.cache,
                KernelsAction::Fetch {
                    matrix: a.matrix,
                    locked: a.locked,
                },
            ),
            KernelsCommand::Lock(a) => (
                a.cache,
                KernelsAction::Lock {
                    matrix: a.matrix,
                    locked: a.locked,
                },
            ),
            KernelsCommand::List(a) => (a.cache, KernelsAction::List { matrix: a.matrix }),
            KernelsCommand::Verify(a) => (
                a.cache,
                KernelsAction::Verify {
                    matrix: a.matrix,
                    remote: a.remote,
                },
            ),
            KernelsCommand::Prune(a) => (a.cache, KernelsAction::Prune { keep_for: a.matrix }),
            KernelsCommand::Import(a) => (a.cache, KernelsAction::Import { paths: a.paths }),
            KernelsCommand::Inspect(a) => (
                a.cache,
                KernelsAction::Inspect {
                    matrix: a.matrix,
                    name: a.name,
                    json: a.json,
                },
            ),
            KernelsCommand::Outdated(a) => (
                CacheArgs { cache_dir: None },
                KernelsAction::Outdated { matrix: a.matrix },
            ),
            KernelsCommand::Sweep(a) => (
                CacheArgs { cache_dir: None },
                KernelsAction::Sweep(SweepOptions {
                    series: a.series,
                    flavour: a.flavour,
                    indices: a.indices,
                    last: a.last.map(usize::from),
                    modules: a.modules,
                    archive: a.archive,
                    name: a.name,
                    out: a.out,
                }),
            ),
        };
        KernelsOptions {
            cache_dir: cache.cache_dir(),
            action,
        }
    }
}

/// `--snapshots`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SnapshotsArg {
    Auto,
    Off,
}

/// `--accel`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AccelArg {
    /// KVM when a probe guest runs under it on this host, otherwise TCG.
    Auto,
    Kvm,
    Tcg,
}

impl From<AccelArg> for AccelChoice {
    fn from(a: AccelArg) -> AccelChoice {
        match a {
            AccelArg::Auto => AccelChoice::Auto,
            AccelArg::Kvm => AccelChoice::Kvm,
            AccelArg::Tcg => AccelChoice::Tcg,
        }
    }
}

/// `--fail-on` of `compare` and `publish`: the words of [`compare::FailOn`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FailOnArg {
    Required,
    Any,
    Regression,
    AnyChange,
    /// An object's minimum upstream kernel went up (see `inspect`).
    MinKernelRaised,
    Never,
}

impl From<FailOnArg> for compare::FailOn {
    fn from(a: FailOnArg) -> compare::FailOn {
        match a {
            FailOnArg::Required => compare::FailOn::Required,
            FailOnArg::Any => compare::FailOn::Any,
            FailOnArg::Regression => compare::FailOn::Regression,
            FailOnArg::AnyChange => compare::FailOn::AnyChange,
            FailOnArg::MinKernelRaised => compare::FailOn::MinKernelRaised,
            FailOnArg::Never => compare::FailOn::Never,
        }
    }
}

/// `publish --comment`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CommentArg {
    #[value(name = "true")]
    Always,
    #[value(name = "false")]
    Never,
    /// Only when a kernel did not pass or regressed; never deletes one.
    OnFailure,
}

impl From<CommentArg> for CommentMode {
    fn from(a: CommentArg) -> CommentMode {
        match a {
            CommentArg::Always => CommentMode::Always,
            CommentArg::Never => CommentMode::Never,
            CommentArg::OnFailure => CommentMode::OnFailure,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn test_spec(args: &[&str]) -> anyhow::Result<CheckSpec> {
        let argv = ["bpfcompat", "test", "--out", "r.json"]
            .into_iter()
            .chain(args.iter().copied());
        match Cli::try_parse_from(argv)?.command {
            Commands::Test(a) => Ok(a.into_check()?.0),
            _ => unreachable!("parsed as test"),
        }
    }

    fn objects(args: &[&str]) -> Vec<ObjectCheck> {
        match test_spec(args).unwrap() {
            CheckSpec::Objects(objects) => objects,
            _ => panic!("{args:?}: not objects"),
        }
    }

    #[test]
    fn validation_mode_takes_our_spelling_and_the_go_tools() {
        for (word, mode) in [
            ("load-only", ValidationMode::LoadOnly),
            ("load_only", ValidationMode::LoadOnly),
            ("load-attach", ValidationMode::LoadAttach),
            ("load_attach", ValidationMode::LoadAttach),
            ("behavior", ValidationMode::Behavior),
        ] {
            let o = objects(&["--artifact", "a.bpf.o", "--validation-mode", word]);
            assert_eq!(o[0].mode, mode, "{word}");
        }
        let o = objects(&["--artifact", "a.bpf.o", "--artifact", "b.bpf.o"]);
        assert_eq!(o.len(), 2);
        assert!(o.iter().all(|o| o.mode == ValidationMode::LoadAttach
            && o.auto_fixups
            && o.manifest.is_none()));
    }

    #[test]
    fn manifests_and_suites() {
        let o = objects(&[
            "--artifact",
            "a.bpf.o",
            "--manifest",
            "m.yaml",
            "--no-auto-fixups",
        ]);
        assert_eq!(o[0].manifest.as_deref(), Some(Path::new("m.yaml")));
        assert!(!o[0].auto_fixups);
        let o = objects(&["--artifact", "a.bpf.o", "--no-fixups"]);
        assert!(!o[0].auto_fixups);
        match test_spec(&["--suite", "s.yaml", "--validation-mode", "load_only"]).unwrap() {
            CheckSpec::Suite(s) => {
                assert_eq!(s.path, Path::new("s.yaml"));
                assert_eq!(s.mode, Some(ValidationMode::LoadOnly));
                assert!(s.auto_fixups);
            }
            _ => panic!("not a suite"),
        }
        let e = test_spec(&[
            "--artifact",
            "a.o",
            "--artifact",
            "b.o",
            "--manifest",
            "m.yaml",
        ]);
        let e = e.err().expect("refused").to_string();
        assert!(e.contains("--manifest describes one object"), "{e}");
        assert!(test_spec(&["--suite", "s.yaml", "--artifact", "a.o"]).is_err());
        assert!(test_spec(&["--command", "true", "--manifest", "m.yaml"]).is_err());
    }

    #[test]
    fn command_mode_ships_every_artifact_and_the_guest_tools() {
        let spec = test_spec(&[
            "--command",
            "true",
            "--artifact",
            "a.o",
            "--artifact",
            "b.o",
            "--guest-tool",
            "/usr/bin/jq",
        ]);
        match spec.unwrap() {
            CheckSpec::Command(c) => {
                assert_eq!(c.artifacts, [Path::new("a.o"), Path::new("b.o")]);
                assert_eq!(c.guest_tools, [Path::new("/usr/bin/jq")]);
            }
            _ => panic!("not a command"),
        }
        let e = test_spec(&["--artifact", "a.o", "--guest-tool", "/usr/bin/jq"]);
        let e = e.err().expect("refused without --command").to_string();
        assert!(e.contains("--command"), "{e}");
    }
}
