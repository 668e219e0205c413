//! Manifests and suites: what an object's own loader does that a generic
//! libbpf load would not (the loader contract), and collections of objects
//! to check together. Both are read in the format of the Go bpfcompat, so
//! its users keep their files, plus extensions (docs/manifest.md).
//!
//! Parsing is strict: an unknown field or a wrong type is an error naming
//! file, line and field ([`parse`], the schema in [`schema`]). A manifest is
//! then checked against the object it describes ([`Manifest::contract`], in
//! [`contract`]: [`programs`], [`maps`], [`variants`], [`globals`],
//! [`functional`] tests): every program, map and global it names must be in
//! the object and every value must fit, all before any kernel boots. What
//! passes becomes the [`LoaderContract`](bpfcompat_proto::object::LoaderContract)
//! the agent applies in the guest.

mod checker;
mod contract;
mod functional;
mod globals;
mod maps;
mod parse;
mod profiles;
mod programs;
mod schema;
pub mod suite;
mod variants;

use std::fmt::Display;
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::yaml::{self, Field};

pub use functional::DEFAULT_TEST_TIMEOUT;
pub use parse::Manifest;
pub use profiles::{require_profiles, RequiredProfile};

#[derive(Debug, Error)]
pub enum ManifestError {
    #[error("cannot read {what} {path}: {err}")]
    Read {
        what: &'static str,
        path: PathBuf,
        err: std::io::Error,
    },
    #[error("{path}{}: {message}", line.map(|l| format!(":{l}")).unwrap_or_default())]
    Invalid {
        path: PathBuf,
        line: Option<usize>,
        message: String,
    },
}

/// An input file's text, for errors that name its file, line and field.
#[derive(Debug, Clone)]
struct Doc {
    path: PathBuf,
    text: String,
}

impl Doc {
    fn read(what: &'static str, path: &Path) -> Result<Doc, ManifestError> {
        let text = std::fs::read_to_string(path).map_err(|err| ManifestError::Read {
            what,
            path: path.to_owned(),
            err,
        })?;
        Ok(Doc {
            path: path.to_owned(),
            text,
        })
    }

    fn parse<T: serde::de::DeserializeOwned>(&self) -> Result<T, ManifestError> {
        yaml::parse(&self.text).map_err(|e| ManifestError::Invalid {
            path: self.path.clone(),
            line: e.line,
            message: e.message,
        })
    }

    /// An error about `field`, at its line: `FILE:LINE: FIELD: MESSAGE`.
    fn err(&self, field: &Field, message: impl Display) -> ManifestError {
        ManifestError::Invalid {
            path: self.path.clone(),
            line: field.line(&self.text),
            message: format!("{field}: {message}"),
        }
    }

    /// A warning about `field`, in the same form.
    fn warning(&self, field: &Field, message: impl Display) -> String {
        self.err(field, message).to_string()
    }
}

fn list<S: AsRef<str>>(items: impl Iterator<Item = S>) -> String {
    let items: Vec<String> = items.map(|s| s.as_ref().to_owned()).collect();
    if items.is_empty() {
        "none".to_owned()
    } else {
        items.join(", ")
    }
}

/// A manifest or suite of the unit tests (tests/fixtures/contract/).
#[cfg(test)]
fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/contract")
        .join(name)
}
