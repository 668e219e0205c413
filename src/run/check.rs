//! What runs in every guest, prepared on the host: inputs read and verified,
//! the identity the report and history know the run by, and the payload for
//! the initramfs. Everything that can be wrong with the user's inputs is
//! found here, before any kernel boots.

use std::path::{Path, PathBuf};

use bpfcompat_proto::object::{FunctionalTest, LoaderContract, ValidationMode};
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::boot::initramfs::{CommandPayload, ObjectPayload, Payload};
use crate::kernel::ModuleWant;
use crate::manifest::suite::Suite;
use crate::manifest::{Manifest, ManifestError, RequiredProfile};
use crate::object::{self, InvalidObject};
use crate::report::{ArtifactIdentity, CheckArtifact, Mode};

/// The user's loader command and what ships with it.
pub struct CommandCheck {
    pub command: String,
    pub bin: Option<PathBuf>,
    pub artifact: Option<PathBuf>,
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
    /// `false` with `--no-auto-fixups`.
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
}

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
    let artifact = check
        .artifact
        .as_deref()
        .map(|p| CheckArtifact::read("--artifact", p))
        .transpose()?;
    let identity = match &artifact {
        Some(a) => ArtifactIdentity {
            id: format!("sha256:{}", a.sha256.as_deref().unwrap_or_default()),
            name: a.name.clone(),
        },
        None => command_identity(&check.command, bin.as_ref()),
    };
    let shown = artifact.or(bin).unwrap_or_else(|| CheckArtifact {
        name: identity.name.clone(),
        path: None,
        sha256: None,
        case: None,
        manifest: None,
        inspection: None,
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
            artifact: check.artifact.clone(),
        }),
        required_profiles: Vec::new(),
        notes: Vec::new(),
        suite: None,
    })
}

fn prepare_objects(objects: &[ObjectCheck]) -> Result<Prepared, CheckError> {
    let mut artifacts = Vec::with_capacity(objects.len());
    let mut payloads = Vec::with_capacity(objects.len());
    let mut required_profiles = Vec::new();
    let mut notes = Vec::new();
    for check in objects {
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
        artifacts.push(CheckArtifact {
            name: file_name(&check.path),
            path: Some(check.path.display().to_string()),
            sha256: Some(summary.sha256.clone()),
            case: check.case.clone(),
            manifest: manifest.as_ref().map(|m| m.path().display().to_string()),
            inspection: Some(summary),
        });
        payloads.push(ObjectPayload {
            host: check.path.clone(),
            contract,
        });
    }
    let identity = match artifacts.as_slice() {
        [one] => ArtifactIdentity {
            id: format!("sha256:{}", one.sha256.as_deref().unwrap_or_default()),
            name: one.name.clone(),
        },
        many => {
            // Several objects are one artifact: their digests, in order.
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
    };
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
