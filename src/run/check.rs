//! What runs in every guest, prepared on the host: inputs read and verified,
//! the identity the report and history know the run by, and the payload for
//! the initramfs. Everything that can be wrong with the user's inputs is
//! found here, before any kernel boots.

use std::path::{Path, PathBuf};

use bpfcompat_proto::object::{FunctionalTest, LoaderContract, ValidationMode};
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::arch::Arch;
use crate::boot::initramfs::{
    CommandPayload, GuestError, GuestTool, ObjectPayload, Payload, GUEST_ARTIFACT_DIR,
};
use crate::kernel::ModuleWant;
use crate::manifest::suite::Suite;
use crate::manifest::{Manifest, ManifestError, RequiredProfile};
use crate::object::{self, InvalidObject};
use crate::predict::{Plan, Subject};
use crate::report::{ArtifactIdentity, CheckArtifact, Mode};

/// The user's loader command and what ships with it.
pub struct CommandCheck {
    pub command: String,
    pub bin: Option<PathBuf>,
    /// Shipped side by side: their file names must differ.
    pub artifacts: Vec<PathBuf>,
    /// `--guest-tool`: on the guest's `PATH`, their file names differing too.
    pub guest_tools: Vec<PathBuf>,
    pub expected_exit: i32,
}

pub enum CheckSpec {
    Command(CommandCheck),
    /// `.bpf.o` files for the bundled validator, all checked in one boot.
    Objects(Vec<ObjectCheck>),
    /// A suite file's cases (`test --suite`): objects too, once the suite
    /// is read ([`suite_objects`]); its defaults come back in
    /// [`Prepared::suite`].
    Suite(SuiteCheck),
}

/// One `.bpf.o` for the validator, and how to check it.
#[derive(Debug, Clone)]
pub struct ObjectCheck {
    pub path: PathBuf,
    /// `--manifest` or a case's `manifest:`; `None`: `X.manifest.yaml`
    /// beside `X.bpf.o`, if there is one.
    pub manifest: Option<PathBuf>,
    /// The suite case.
    pub case: Option<String>,
    pub mode: ValidationMode,
    /// `false` with `--no-fixups` (`--no-auto-fixups`).
    pub auto_fixups: bool,
    /// A suite case's inline `test:`.
    pub test: Option<FunctionalTest>,
}

/// `test --suite FILE` and the flags that apply to every case.
pub struct SuiteCheck {
    pub path: PathBuf,
    /// `--validation-mode`: wins over the suite's modes.
    pub mode: Option<ValidationMode>,
    pub auto_fixups: bool,
}

/// The objects of a suite's cases; `mode` (the command line's) wins over
/// each case's.
pub fn suite_objects(suite: &Suite, check: &SuiteCheck) -> Vec<ObjectCheck> {
    suite
        .cases
        .iter()
        .map(|c| ObjectCheck {
            path: c.artifact.clone(),
            manifest: c.manifest.clone(),
            case: Some(c.name.clone()),
            mode: check.mode.or(c.mode).unwrap_or_default(),
            auto_fixups: check.auto_fixups,
            test: c.test.clone(),
        })
        .collect()
}

/// A check ready to run.
pub struct Prepared {
    pub mode: Mode,
    pub identity: ArtifactIdentity,
    /// One per check the guest runs, in request order.
    pub artifacts: Vec<CheckArtifact>,
    pub expected_exit: i32,
    pub payload: Payload,
    /// The manifests' `required_profiles`, for the matrix.
    pub required_profiles: Vec<RequiredProfile>,
    /// What the user should know before the kernels boot (a manifest found
    /// beside its object, parts of a contract this mode does not run).
    pub notes: Vec<String>,
    /// The suite the objects came from: its defaults and warnings.
    pub suite: Option<Suite>,
    /// The kernel modules every guest should load first: what the objects'
    /// programs attach to or call (see `run::modules`), and the modules the
    /// user named.
    pub module_wants: Vec<ModuleWant>,
}

#[derive(Debug, Error)]
pub enum CheckError {
    #[error("cannot read {what} {path}: {err}")]
    Unreadable {
        what: &'static str,
        path: PathBuf,
        err: std::io::Error,
    },
    // Not a `source`: the message already is the inner one, prefixed.
    #[error("INVALID_OBJECT: {0}")]
    InvalidObject(InvalidObject),
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error(
        "{what} {first} and {what} {second} have the same file name, and both would be \
         {dir}/{name} in the guest; rename one of them"
    )]
    SameName {
        what: &'static str,
        name: String,
        dir: &'static str,
        first: PathBuf,
        second: PathBuf,
    },
    #[error("--guest-tool {path} {why}; give an executable file (chmod +x)")]
    NotExecutable { path: PathBuf, why: String },
    #[error(transparent)]
    Guest(#[from] GuestError),
    #[error("--artifact {template}: no build of it exists (tried {tried})")]
    NoBuild { template: PathBuf, tried: String },
}

/// In an `--artifact` path, each architecture's word (see [`builds`]).
pub const ARCH_PLACEHOLDER: &str = "{arch}";

pub fn prepare(spec: &CheckSpec) -> Result<Prepared, CheckError> {
    match spec {
        CheckSpec::Command(check) => prepare_command(check),
        CheckSpec::Objects(objects) => prepare_objects(objects),
        CheckSpec::Suite(check) => {
            let suite = Suite::load(&check.path)?;
            let mut prepared = prepare_objects(&suite_objects(&suite, check))?;
            prepared.suite = Some(suite);
            Ok(prepared)
        }
    }
}

fn prepare_command(check: &CommandCheck) -> Result<Prepared, CheckError> {
    let bin = check
        .bin
        .as_deref()
        .map(|p| CheckArtifact::read("--bin", p))
        .transpose()?;
    distinct_names("--artifact", GUEST_ARTIFACT_DIR, &check.artifacts)?;
    let artifacts = check
        .artifacts
        .iter()
        .map(|p| CheckArtifact::read("--artifact", p))
        .collect::<Result<Vec<_>, _>>()?;
    let (tools, notes) = guest_tools(&check.guest_tools)?;
    let identity = if artifacts.is_empty() {
        command_identity(&check.command, bin.as_ref())
    } else {
        files_identity(&artifacts)
    };
    let shown = artifacts
        .into_iter()
        .next()
        .or(bin)
        .unwrap_or_else(|| CheckArtifact {
            name: identity.name.clone(),
            path: None,
            sha256: None,
            case: None,
            manifest: None,
            inspection: None,
            min_kernel: None,
        });
    Ok(Prepared {
        mode: Mode::Command,
        identity,
        artifacts: vec![shown],
        expected_exit: check.expected_exit,
        module_wants: Vec::new(),
        payload: Payload::Command(CommandPayload {
            command: check.command.clone(),
            bin: check.bin.clone(),
            artifacts: check.artifacts.clone(),
            tools,
        }),
        required_profiles: Vec::new(),
        notes,
        suite: None,
    })
}

/// `--guest-tool` files, checked, and the host's bpftool unless one of
/// them is a bpftool; a note when the guest gets no bpftool at all.
fn guest_tools(paths: &[PathBuf]) -> Result<(Vec<GuestTool>, Vec<String>), CheckError> {
    distinct_names(
        "--guest-tool",
        crate::boot::initramfs::GUEST_TOOL_DIR,
        paths,
    )?;
    let mut tools = Vec::with_capacity(paths.len() + 1);
    for path in paths {
        executable_file(path)?;
        tools.push(GuestTool::user(path)?);
    }
    let mut notes = Vec::new();
    if !tools.iter().any(|t| t.name() == "bpftool") {
        match GuestTool::host_bpftool() {
            Ok(bpftool) => tools.push(bpftool),
            Err(why) => notes.push(format!("the guest has no bpftool: {why}")),
        }
    }
    Ok((tools, notes))
}

fn executable_file(path: &Path) -> Result<(), CheckError> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).map_err(|err| CheckError::Unreadable {
        what: "--guest-tool",
        path: path.to_owned(),
        err,
    })?;
    let mode = meta.permissions().mode();
    let why = if !meta.is_file() {
        "is not a file".to_owned()
    } else if mode & 0o111 == 0 {
        format!("is not executable (mode {:04o})", mode & 0o7777)
    } else {
        return Ok(());
    };
    Err(CheckError::NotExecutable {
        path: path.to_owned(),
        why,
    })
}

/// Files shipped side by side in `dir` of the guest must differ in name.
fn distinct_names(
    what: &'static str,
    dir: &'static str,
    paths: &[PathBuf],
) -> Result<(), CheckError> {
    let mut seen: std::collections::HashMap<String, &PathBuf> = Default::default();
    for path in paths {
        if let Some(first) = seen.insert(file_name(path), path) {
            return Err(CheckError::SameName {
                what,
                name: file_name(path),
                dir,
                first: first.clone(),
                second: path.clone(),
            });
        }
    }
    Ok(())
}

fn prepare_objects(objects: &[ObjectCheck]) -> Result<Prepared, CheckError> {
    let mut artifacts = Vec::with_capacity(objects.len());
    let mut payloads = Vec::with_capacity(objects.len());
    let mut required_profiles = Vec::new();
    let mut notes = Vec::new();
    for check in objects {
        for (arch, path) in builds(&check.path)? {
            let check = ObjectCheck {
                path,
                ..check.clone()
            };
            let (artifact, payload) =
                prepare_object(&check, arch, &mut notes, &mut required_profiles)?;
            artifacts.push(artifact);
            payloads.push(payload);
        }
    }
    let identity = files_identity(&artifacts);
    let module_wants = crate::run::modules::dedup(
        artifacts
            .iter()
            .filter_map(|a| a.inspection.as_ref())
            .flat_map(crate::run::modules::object_wants)
            .collect(),
    );
    Ok(Prepared {
        mode: Mode::Artifact,
        identity,
        artifacts,
        expected_exit: 0,
        module_wants,
        payload: Payload::Objects(payloads),
        required_profiles,
        notes,
        suite: None,
    })
}

/// The builds an `--artifact` path names: `{arch}` in it stands for each
/// architecture's word (`x86`, `arm64`, as bpf2go and libbpf-bootstrap name
/// their builds), and each build that exists is checked on its
/// architecture's kernels; a path without it is one object for every kernel.
fn builds(path: &Path) -> Result<Vec<(Option<Arch>, PathBuf)>, CheckError> {
    let text = path.to_string_lossy();
    if !text.contains(ARCH_PLACEHOLDER) {
        return Ok(vec![(None, path.to_owned())]);
    }
    let all: Vec<(Arch, PathBuf)> = Arch::ALL
        .iter()
        .map(|a| {
            (
                *a,
                PathBuf::from(text.replace(ARCH_PLACEHOLDER, a.target_word())),
            )
        })
        .collect();
    let found: Vec<(Option<Arch>, PathBuf)> = all
        .iter()
        .filter(|(_, p)| p.is_file())
        .map(|(a, p)| (Some(*a), p.clone()))
        .collect();
    if found.is_empty() {
        return Err(CheckError::NoBuild {
            template: path.to_owned(),
            tried: all
                .iter()
                .map(|(_, p)| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    Ok(found)
}

/// One object (one build of an `{arch}` path): inspected, its manifest
/// applied.
fn prepare_object(
    check: &ObjectCheck,
    arch: Option<Arch>,
    notes: &mut Vec<String>,
    required_profiles: &mut Vec<RequiredProfile>,
) -> Result<(CheckArtifact, ObjectPayload), CheckError> {
    // Inspection rejects what is not a BPF object (and oversized files
    // without reading them whole); the digest is of the bytes it read.
    let summary = object::inspect(&check.path).map_err(CheckError::InvalidObject)?;
    let manifest = match &check.manifest {
        Some(path) => Some(Manifest::load(path)?),
        None => match Manifest::beside(&check.path) {
            Some(path) => {
                let m = Manifest::load(&path)?;
                notes.push(format!(
                    "{}: using the manifest beside it, {}",
                    check.path.display(),
                    m.describe()
                ));
                Some(m)
            }
            None => None,
        },
    };
    let mut contract = match &manifest {
        Some(m) => {
            required_profiles.extend(m.required_profiles()?);
            m.contract(&summary)?
        }
        None => LoaderContract::default(),
    };
    contract.case = check.case.clone();
    contract.validation_mode = check.mode;
    contract.auto_fixups = check.auto_fixups;
    contract.functional_tests.extend(check.test.clone());
    notes.extend(behavior_only(check, &contract));
    let artifact = CheckArtifact {
        name: file_name(&check.path),
        path: Some(check.path.display().to_string()),
        sha256: Some(summary.sha256.clone()),
        case: check.case.clone(),
        manifest: manifest.as_ref().map(|m| m.path().display().to_string()),
        min_kernel: crate::predict::min_kernel(&summary, &Plan::of(&contract)),
        inspection: Some(summary),
    };
    let payload = ObjectPayload {
        host: check.path.clone(),
        contract,
        arch,
    };
    Ok((artifact, payload))
}

/// One file is known by its digest; several are one artifact, known by
/// their digests in order.
fn files_identity(artifacts: &[CheckArtifact]) -> ArtifactIdentity {
    match artifacts {
        [one] => ArtifactIdentity {
            id: format!("sha256:{}", one.sha256.as_deref().unwrap_or_default()),
            name: one.name.clone(),
        },
        many => {
            let mut hasher = Sha256::new();
            for a in many {
                hasher.update(a.sha256.as_deref().unwrap_or_default().as_bytes());
                hasher.update(b"\n");
            }
            ArtifactIdentity {
                id: format!("sha256:{}", hex::encode(hasher.finalize())),
                name: format!("{} (+{} more)", many[0].name, many.len() - 1),
            }
        }
    }
}

/// What a contract asks that only behavior mode does, said when the mode
/// is another.
fn behavior_only(check: &ObjectCheck, contract: &LoaderContract) -> Option<String> {
    let tests = contract.functional_tests.len();
    let expect_run = contract.programs.iter().filter(|p| p.expect_run).count();
    (check.mode != ValidationMode::Behavior && tests + expect_run > 0).then(|| {
        format!(
            "{}{}: {tests} functional test(s) and {expect_run} expect_run program(s) are checked \
             only in behavior mode (--validation-mode behavior, or validation_mode: behavior in \
             the suite); not in this run",
            check.path.display(),
            check
                .case
                .as_ref()
                .map(|c| format!(" (case {c})"))
                .unwrap_or_default()
        )
    })
}

impl CheckArtifact {
    fn read(what: &'static str, path: &Path) -> Result<CheckArtifact, CheckError> {
        let bytes = std::fs::read(path).map_err(|err| CheckError::Unreadable {
            what,
            path: path.to_owned(),
            err,
        })?;
        Ok(CheckArtifact {
            name: file_name(path),
            path: Some(path.display().to_string()),
            sha256: Some(hex::encode(Sha256::digest(&bytes))),
            case: None,
            manifest: None,
            inspection: None,
            min_kernel: None,
        })
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

/// `command://<name>@<digest>`, the digest covering the command string and
/// the binary, so changing either is a different identity.
fn command_identity(command: &str, bin: Option<&CheckArtifact>) -> ArtifactIdentity {
    let name = match bin {
        Some(b) => b.name.clone(),
        None => {
            let first = command.split_whitespace().next().unwrap_or("command");
            let base = first.rsplit('/').next().unwrap_or(first);
            let clean: String = base
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || "._-".contains(*c))
                .take(64)
                .collect();
            if clean.is_empty() {
                "command".into()
            } else {
                clean
            }
        }
    };
    let mut hasher = Sha256::new();
    hasher.update(command.as_bytes());
    hasher.update([0]);
    hasher.update(
        bin.and_then(|b| b.sha256.as_deref())
            .unwrap_or("")
            .as_bytes(),
    );
    let digest = hex::encode(hasher.finalize());
    ArtifactIdentity {
        id: format!("command://{name}@{}", &digest[..16]),
        name,
    }
}

/// What the preflight checks, artifact by artifact: each object with the
/// alternatives its manifest gives.
pub fn subjects(payload: &Payload, artifacts: &[CheckArtifact]) -> Vec<Option<Subject>> {
    let Payload::Objects(objects) = payload else {
        return artifacts.iter().map(|_| None).collect();
    };
    objects
        .iter()
        .zip(artifacts)
        .map(|(o, a)| {
            Some(Subject {
                summary: a.inspection.clone()?,
                plan: Plan::of(&o.contract),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn command(artifacts: Vec<PathBuf>, guest_tools: Vec<PathBuf>) -> CheckSpec {
        CheckSpec::Command(CommandCheck {
            command: "true".into(),
            bin: None,
            artifacts,
            guest_tools,
            expected_exit: 0,
        })
    }

    fn write(dir: &Path, name: &str, mode: u32) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, name).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    #[test]
    fn every_artifact_ships_and_all_of_them_are_the_identity() {
        let dir = tempfile::tempdir().unwrap();
        let a = write(dir.path(), "a.bpf.o", 0o644);
        let b = write(dir.path(), "b.bpf.o", 0o644);
        let prepared = prepare(&command(vec![a.clone(), b.clone()], vec![])).unwrap();
        let Payload::Command(payload) = &prepared.payload else {
            panic!("not a command payload");
        };
        assert_eq!(payload.artifacts, [a.clone(), b]);
        assert_eq!(prepared.identity.name, "a.bpf.o (+1 more)");
        let one = prepare(&command(vec![a], vec![])).unwrap();
        assert_ne!(one.identity.id, prepared.identity.id);
        assert_eq!(one.identity.name, "a.bpf.o");
    }

    #[test]
    fn same_named_files_are_refused_naming_both() {
        let dir = tempfile::tempdir().unwrap();
        let first = write(dir.path(), "v1/prog.bpf.o", 0o644);
        let second = write(dir.path(), "v2/prog.bpf.o", 0o644);
        let err = prepare(&command(vec![first.clone(), second.clone()], vec![]))
            .err()
            .unwrap()
            .to_string();
        for part in [
            first.display().to_string(),
            second.display().to_string(),
            "/bpfcompat/artifact/prog.bpf.o".into(),
            "rename one".into(),
        ] {
            assert!(err.contains(&part), "{part}: {err}");
        }
        let one = write(dir.path(), "v1/tool", 0o755);
        let two = write(dir.path(), "v2/tool", 0o755);
        let err = prepare(&command(vec![], vec![one, two.clone()]))
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("--guest-tool") && err.contains("/usr/local/bin/tool"),
            "{err}"
        );
        assert!(err.contains(&two.display().to_string()), "{err}");
    }

    #[test]
    fn guest_tools_must_be_executable_files() {
        let dir = tempfile::tempdir().unwrap();
        let plain = write(dir.path(), "plain", 0o644);
        let missing = dir.path().join("missing");
        for (path, says) in [
            (plain, "is not executable (mode 0644)"),
            (missing, "cannot read --guest-tool"),
            (dir.path().to_owned(), "is not a file"),
        ] {
            let err = prepare(&command(vec![], vec![path.clone()]))
                .err()
                .unwrap()
                .to_string();
            assert!(
                err.contains(says) && err.contains(&path.display().to_string()),
                "{err}"
            );
        }
    }

    /// A `--guest-tool` named bpftool is the guest's bpftool: the host's
    /// is not shipped beside it, and nothing is missing.
    #[test]
    fn a_bpftool_of_ones_own_replaces_the_hosts() {
        let dir = tempfile::tempdir().unwrap();
        let own = write(dir.path(), "bpftool", 0o755);
        let prepared = prepare(&command(vec![], vec![own.clone()])).unwrap();
        let Payload::Command(payload) = &prepared.payload else {
            panic!("not a command payload");
        };
        assert_eq!(payload.tools.len(), 1, "{:?}", payload.tools);
        assert_eq!(payload.tools[0].host, own);
        assert_eq!(payload.tools[0].guest, "/usr/local/bin/bpftool");
        assert!(prepared.notes.is_empty(), "{:?}", prepared.notes);
    }
}
