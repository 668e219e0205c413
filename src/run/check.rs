//! What runs in every guest, prepared on the host: inputs read and verified,
//! the identity the report and history know the run by, and the payload for
//! the initramfs. Everything that can be wrong with the user's inputs is
//! found here, before any kernel boots.

use std::path::{Path, PathBuf};

use bpfcompat_proto::object::ObjectMode;
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::boot::initramfs::{CommandPayload, Payload};
use crate::kernel::ModuleWant;
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
    Objects {
        paths: Vec<PathBuf>,
        mode: ObjectMode,
    },
}

/// A check ready to run.
pub struct Prepared {
    pub mode: Mode,
    pub identity: ArtifactIdentity,
    /// One per check the guest runs, in request order.
    pub artifacts: Vec<CheckArtifact>,
    pub expected_exit: i32,
    pub payload: Payload,
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
}

pub fn prepare(spec: &CheckSpec) -> Result<Prepared, CheckError> {
    match spec {
        CheckSpec::Command(check) => prepare_command(check),
        CheckSpec::Objects { paths, mode } => prepare_objects(paths, *mode),
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
    })
}

fn prepare_objects(paths: &[PathBuf], mode: ObjectMode) -> Result<Prepared, CheckError> {
    let mut artifacts = Vec::with_capacity(paths.len());
    for path in paths {
        // Inspection rejects what is not a BPF object (and oversized files
        // without reading them whole); the digest is of the bytes it read.
        let summary = object::inspect(path).map_err(CheckError::InvalidObject)?;
        artifacts.push(CheckArtifact {
            name: file_name(path),
            path: Some(path.display().to_string()),
            sha256: Some(summary.sha256.clone()),
            inspection: Some(summary),
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
        payload: Payload::Objects {
            objects: paths.to_vec(),
            mode,
        },
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
