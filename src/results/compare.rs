//! `compare`: what changed, kernel by kernel, between two reports — two
//! files, or two versions of an artifact looked up in the history — and
//! whether that should fail CI.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use minijinja::context;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::escape;
use crate::predict::Version;
use crate::report::prediction::{MinKernel, MinKernelChange};
use crate::report::{
    self, ArtifactIdentity, ClassCode, MatrixRef, ReadError, Report, Summary, Target, TargetStatus,
};
use crate::results::history::{self, HistoryError};
use crate::term::progress;

pub const SCHEMA: &str = "bpfcompat.diff/v1";
const TEMPLATE: &str = include_str!("../../templates/compare.md.j2");

/// What makes a run fail a CI gate: one vocabulary for `compare`,
/// `publish` and the Action's `fail-on`, one rule for each word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailOn {
    /// The head report's own verdict: 2 when a required kernel failed, 1
    /// when one could not be checked.
    Required,
    /// Like `required`, counting optional kernels too.
    Any,
    /// 2 when a required kernel regressed: passed in the base, does not in
    /// the head. Optional kernels' regressions are shown, never gate.
    Regression,
    /// 2 when any kernel is not `unchanged`.
    AnyChange,
    /// 2 when an object's minimum upstream kernel went up.
    MinKernelRaised,
    /// 0 whatever happened: report only.
    Never,
}

/// How one kernel's verdict changed from the base to the head: the one
/// comparison model, for `compare` and for `publish`'s base commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// pass → fail or infra_error.
    Regressed,
    /// fail or infra_error → pass.
    Fixed,
    /// fail ↔ infra_error: still not passing, for another kind of reason.
    StatusChanged,
    /// Same status, different classification code.
    ClassChanged,
    Added,
    Removed,
    Unchanged,
}

impl Change {
    /// The name in the diff JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Change::Regressed => "regressed",
            Change::Fixed => "fixed",
            Change::StatusChanged => "status_changed",
            Change::ClassChanged => "class_changed",
            Change::Added => "added",
            Change::Removed => "removed",
            Change::Unchanged => "unchanged",
        }
    }
}

/// One side of the comparison.
pub enum Input {
    File(PathBuf),
    /// The latest whole-matrix run of `name` at `version` in the history.
    Version {
        workdir: PathBuf,
        name: String,
        version: String,
    },
}

#[derive(Debug, Error)]
pub enum CompareError {
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error(transparent)]
    History(#[from] HistoryError),
    #[error(
        "{base} and {head} are reports of different matrices ({base_matrix}; {head_matrix}): pass \
         --allow-matrix-change to compare them anyway"
    )]
    Matrix {
        base: PathBuf,
        /// Name and digest.
        base_matrix: String,
        head: PathBuf,
        head_matrix: String,
    },
    #[error("cannot write {what} {path}: {err}")]
    Write {
        what: &'static str,
        path: PathBuf,
        err: std::io::Error,
    },
}

/// A report and where it came from.
pub struct Loaded {
    label: String,
    path: PathBuf,
    version: Option<String>,
    report: Report,
}

impl Input {
    fn load(self) -> Result<Loaded, CompareError> {
        Ok(match self {
            Input::File(path) => Loaded {
                label: path.display().to_string(),
                report: Report::read(&path)?,
                path,
                version: None,
            },
            Input::Version {
                workdir,
                name,
                version,
            } => {
                let (path, report) = history::find_report(&workdir, &name, &version)?;
                Loaded {
                    label: version.clone(),
                    path,
                    version: Some(version),
                    report,
                }
            }
        })
    }
}

/// The machine-readable result, written by `--out`.
#[derive(Debug, Serialize)]
pub struct Diff {
    pub schema: &'static str,
    pub base: Side,
    pub head: Side,
    pub matrix_changed: bool,
    pub fail_on: FailOn,
    pub exit_code: u8,
    pub counts: Counts,
    /// The head's kernels in its order, then those only the base had.
    pub kernels: Vec<KernelDiff>,
    /// The objects whose minimum upstream kernel moved.
    pub min_kernel: Vec<MinKernelChange>,
}

/// Each object's minimum kernel in a run, by artifact name, with why.
pub fn min_kernels(report: &Report) -> BTreeMap<String, MinKernel> {
    report
        .targets
        .iter()
        .flat_map(|t| &t.checks)
        .filter_map(|c| Some((c.artifact.name.clone(), c.artifact.min_kernel.clone()?)))
        .collect()
}

/// The one rule for a minimum kernel's move: by release order, the
/// requirements that make the difference named.
pub fn min_kernel_changes(
    base: &BTreeMap<String, MinKernel>,
    head: &BTreeMap<String, MinKernel>,
) -> Vec<MinKernelChange> {
    head.iter()
        .filter_map(|(object, h)| {
            let b = base.get(object)?;
            let (bv, hv) = (Version::parse(&b.version)?, Version::parse(&h.version)?);
            let raised = hv > bv;
            let (newer, floor) = if raised { (h, bv) } else { (b, hv) };
            (hv != bv).then(|| MinKernelChange {
                object: object.clone(),
                base: b.version.clone(),
                head: h.version.clone(),
                raised,
                because: newer
                    .because
                    .iter()
                    .filter(|r| Version::parse(&r.since).is_some_and(|v| v > floor))
                    .cloned()
                    .collect(),
            })
        })
        .collect()
}

#[derive(Debug, Serialize)]
pub struct Side {
    pub label: String,
    pub report: PathBuf,
    pub version: Option<String>,
    pub artifact: ArtifactIdentity,
    pub matrix: MatrixRef,
    pub started_at: String,
    pub summary: Summary,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KernelDiff {
    pub id: String,
    pub change: Change,
    /// As the head's matrix says (the base's, for a removed kernel).
    pub required: bool,
    pub base: Option<State>,
    pub head: Option<State>,
}

/// One kernel's verdict: what a comparison reads of a target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub status: TargetStatus,
    pub class: Option<ClassCode>,
    pub release: Option<String>,
}

/// Every kernel's verdict, in the report's order: all a comparison needs of
/// a report, small enough to travel in a check run (see `github`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdicts(pub Vec<KernelVerdict>);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KernelVerdict {
    pub id: String,
    pub required: bool,
    #[serde(flatten)]
    pub state: State,
}

impl Verdicts {
    pub fn of(report: &Report) -> Verdicts {
        Verdicts(
            report
                .targets
                .iter()
                .map(|t| KernelVerdict {
                    id: t.id.clone(),
                    required: t.required,
                    state: state(t),
                })
                .collect(),
        )
    }
}

#[derive(Debug, Default, Serialize)]
pub struct Counts {
    pub regressed: usize,
    pub fixed: usize,
    pub status_changed: usize,
    pub class_changed: usize,
    pub added: usize,
    pub removed: usize,
    pub unchanged: usize,
}

fn state(t: &Target) -> State {
    State {
        status: t.status,
        class: t.classification.as_ref().map(|c| c.code),
        release: t.kernel.release.clone(),
    }
}

/// The rule: leaving `pass` (or `partial`: it loads) for a failure is a
/// regression, the way back a fix; otherwise a change of status (`pass` ↔
/// `partial` too), then of class, is a change.
fn change(base: Option<&State>, head: &State) -> Change {
    use TargetStatus::*;
    let Some(base) = base else {
        return Change::Added;
    };
    match (base.status, head.status) {
        (Pass | Partial, Fail | InfraError) => Change::Regressed,
        (Fail | InfraError, Pass | Partial) => Change::Fixed,
        (b, h) if b != h => Change::StatusChanged,
        _ if base.class != head.class => Change::ClassChanged,
        _ => Change::Unchanged,
    }
}

/// Pairs the kernels of two runs by id: the head's in its order, then those
/// only the base had.
pub fn kernel_diffs(base: &Verdicts, head: &Verdicts) -> Vec<KernelDiff> {
    let base_by_id: HashMap<&str, &KernelVerdict> =
        base.0.iter().map(|k| (k.id.as_str(), k)).collect();
    let head_ids: Vec<&str> = head.0.iter().map(|k| k.id.as_str()).collect();
    let present = head.0.iter().map(|h| {
        let b = base_by_id.get(h.id.as_str()).map(|b| &b.state);
        KernelDiff {
            id: h.id.clone(),
            change: change(b, &h.state),
            required: h.required,
            base: b.cloned(),
            head: Some(h.state.clone()),
        }
    });
    let removed = base
        .0
        .iter()
        .filter(|b| !head_ids.contains(&b.id.as_str()))
        .map(|b| KernelDiff {
            id: b.id.clone(),
            change: Change::Removed,
            required: b.required,
            base: Some(b.state.clone()),
            head: None,
        });
    present.chain(removed).collect()
}

impl FailOn {
    /// The gate's exit code for `head`, given its kernels' changes against a
    /// base (none when there is no base to compare with).
    pub fn exit_code(
        self,
        head: &Report,
        kernels: &[KernelDiff],
        min_kernel: &[MinKernelChange],
    ) -> u8 {
        let own = u8::try_from(head.summary.exit_code).unwrap_or(1);
        let any = |status| head.targets.iter().any(|t| t.status == status);
        let fail = match self {
            FailOn::Required => return own,
            FailOn::Any if own != 0 => return own,
            FailOn::Any if any(TargetStatus::Fail) => true,
            FailOn::Any if any(TargetStatus::InfraError) => return 1,
            FailOn::Any => false,
            FailOn::Regression => kernels
                .iter()
                .any(|k| k.change == Change::Regressed && k.required),
            FailOn::AnyChange => kernels.iter().any(|k| k.change != Change::Unchanged),
            FailOn::MinKernelRaised => min_kernel.iter().any(|m| m.raised),
            FailOn::Never => false,
        };
        if fail {
            2
        } else {
            0
        }
    }
}

impl Counts {
    fn of(kernels: &[KernelDiff]) -> Counts {
        let mut c = Counts::default();
        for k in kernels {
            *match k.change {
                Change::Regressed => &mut c.regressed,
                Change::Fixed => &mut c.fixed,
                Change::StatusChanged => &mut c.status_changed,
                Change::ClassChanged => &mut c.class_changed,
                Change::Added => &mut c.added,
                Change::Removed => &mut c.removed,
                Change::Unchanged => &mut c.unchanged,
            } += 1;
        }
        c
    }
}

impl Side {
    fn of(l: &Loaded) -> Side {
        Side {
            label: l.label.clone(),
            report: l.path.clone(),
            version: l.version.clone(),
            artifact: l.report.artifact.clone(),
            matrix: l.report.matrix.clone(),
            started_at: l.report.started_at.clone(),
            summary: l.report.summary.clone(),
        }
    }
}

/// Compares two loaded reports; refuses what cannot be compared meaningfully.
pub fn diff(
    base: &Loaded,
    head: &Loaded,
    fail_on: FailOn,
    allow_matrix_change: bool,
) -> Result<Diff, CompareError> {
    let (b, h) = (&base.report, &head.report);
    let matrix_changed = b.matrix.digest != h.matrix.digest;
    if matrix_changed && !allow_matrix_change {
        let describe = |m: &MatrixRef| format!("{}, sha256 {}", m.name, m.digest);
        return Err(CompareError::Matrix {
            base: base.path.clone(),
            base_matrix: describe(&b.matrix),
            head: head.path.clone(),
            head_matrix: describe(&h.matrix),
        });
    }
    let kernels = kernel_diffs(&Verdicts::of(b), &Verdicts::of(h));
    let min_kernel = min_kernel_changes(&min_kernels(b), &min_kernels(h));
    Ok(Diff {
        schema: SCHEMA,
        base: Side::of(base),
        head: Side::of(head),
        matrix_changed,
        fail_on,
        exit_code: fail_on.exit_code(h, &kernels, &min_kernel),
        counts: Counts::of(&kernels),
        kernels,
        min_kernel,
    })
}

/// Markdown for a pull request or job summary; `head` supplies the details
/// of each regression.
pub fn render_markdown(diff: &Diff, head: &Report) -> String {
    let mut env = report::markdown::environment();
    env.add_template("compare", TEMPLATE)
        .expect("compare template parses");
    let regressions: Vec<&Target> = diff
        .kernels
        .iter()
        .filter(|k| k.change == Change::Regressed)
        .filter_map(|k| head.targets.iter().find(|t| t.id == k.id))
        .collect();
    env.get_template("compare")
        .and_then(|t| t.render(context! { diff, regressions }))
        .expect("compare template renders")
}

/// The terminal view: every kernel, then the counts.
pub fn table(diff: &Diff) -> String {
    let show = |s: &Option<State>| match s {
        None => "-".to_owned(),
        Some(s) => match s.class {
            Some(c) => format!("{} ({})", progress::verdict(s.status), c.as_str()),
            None => progress::verdict(s.status).to_owned(),
        },
    };
    let rows: Vec<[String; 4]> = diff
        .kernels
        .iter()
        .map(|k| {
            [
                format!("{}{}", k.id, if k.required { "" } else { " (optional)" }),
                k.change.as_str().replace('_', " "),
                show(&k.base),
                show(&k.head),
            ]
        })
        .collect();
    let c = &diff.counts;
    crate::term::table::render(["KERNEL", "CHANGE", "BASE", "HEAD"], &rows)
        + &format!(
            "{} regressed, {} fixed, {} status changed, {} class changed, {} added, {} removed, \
             {} unchanged (base {}, head {})\n",
            c.regressed,
            c.fixed,
            c.status_changed,
            c.class_changed,
            c.added,
            c.removed,
            c.unchanged,
            escape::plain_line(&diff.base.label),
            escape::plain_line(&diff.head.label)
        )
        + &diff
            .min_kernel
            .iter()
            .map(|m| format!("The head {}\n", m.sentence(escape::plain_line)))
            .collect::<String>()
}

fn write(what: &'static str, path: &Path, contents: &str) -> Result<(), CompareError> {
    report::write_atomically(path, contents.as_bytes()).map_err(|err| CompareError::Write {
        what,
        path: path.to_owned(),
        err,
    })
}

pub struct Options {
    pub fail_on: FailOn,
    pub allow_matrix_change: bool,
    pub out: Option<PathBuf>,
    pub markdown: Option<PathBuf>,
}

/// `bpfcompat compare`: prints the table, writes what was asked for, and
/// returns the exit code (0, or 2 as `--fail-on` says).
pub fn run(base: Input, head: Input, options: &Options) -> Result<u8, CompareError> {
    let (base, head) = (base.load()?, head.load()?);
    let diff = diff(&base, &head, options.fail_on, options.allow_matrix_change)?;
    if let Some(out) = &options.out {
        let json = serde_json::to_string_pretty(&diff).expect("diff serialises") + "\n";
        write("diff", out, &json)?;
    }
    if let Some(md) = &options.markdown {
        write("Markdown diff", md, &render_markdown(&diff, &head.report))?;
    }
    print!("{}", table(&diff));
    Ok(diff.exit_code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use TargetStatus::*;

    fn s(status: TargetStatus, class: Option<ClassCode>) -> State {
        State {
            status,
            class,
            release: None,
        }
    }

    #[test]
    fn the_one_rule_for_what_changed() {
        let panic = Some(ClassCode::KernelPanic);
        let timeout = Some(ClassCode::InfraTimeout);
        assert_eq!(
            change(Some(&s(Pass, None)), &s(Fail, None)),
            Change::Regressed
        );
        assert_eq!(
            change(Some(&s(Pass, None)), &s(InfraError, panic)),
            Change::Regressed
        );
        assert_eq!(change(Some(&s(Fail, None)), &s(Pass, None)), Change::Fixed);
        assert_eq!(
            change(Some(&s(InfraError, panic)), &s(Pass, None)),
            Change::Fixed
        );
        assert_eq!(
            change(Some(&s(Fail, None)), &s(InfraError, panic)),
            Change::StatusChanged
        );
        assert_eq!(
            change(Some(&s(InfraError, panic)), &s(InfraError, timeout)),
            Change::ClassChanged
        );
        assert_eq!(
            change(Some(&s(Pass, None)), &s(Pass, None)),
            Change::Unchanged
        );
        assert_eq!(change(None, &s(Fail, None)), Change::Added);
        assert_eq!(
            change(Some(&s(Partial, None)), &s(Fail, None)),
            Change::Regressed
        );
        assert_eq!(
            change(Some(&s(Fail, None)), &s(Partial, None)),
            Change::Fixed
        );
        assert_eq!(
            change(Some(&s(Pass, None)), &s(Partial, None)),
            Change::StatusChanged
        );
    }
}
