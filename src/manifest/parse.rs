//! Reading a manifest: the file, strictly parsed into its schema
//! ([`RawManifest`]), not yet checked against any object.

use std::path::{Path, PathBuf};

use super::schema::RawManifest;
use super::{Doc, ManifestError};

/// A parsed manifest, not yet checked against its object.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub(super) doc: Doc,
    pub(super) raw: RawManifest,
}

impl Manifest {
    pub fn load(path: &Path) -> Result<Manifest, ManifestError> {
        let doc = Doc::read("manifest", path)?;
        let raw = if doc.text.lines().all(|l| {
            let l = l.trim();
            l.is_empty() || l.starts_with('#') || l == "---"
        }) {
            RawManifest::default()
        } else {
            doc.parse()?
        };
        Ok(Manifest { doc, raw })
    }

    pub fn path(&self) -> &Path {
        &self.doc.path
    }

    /// The path, and the manifest's `name:` if it has one, for notes.
    pub fn describe(&self) -> String {
        match &self.raw.name {
            Some(name) => format!("{} ({name})", self.doc.path.display()),
            None => self.doc.path.display().to_string(),
        }
    }

    /// `X.manifest.yaml` beside `X.bpf.o` (or `X.o`), if there is one.
    pub fn beside(object: &Path) -> Option<PathBuf> {
        let name = object.file_name()?.to_str()?;
        let stem = name
            .strip_suffix(".bpf.o")
            .or_else(|| name.strip_suffix(".o"))
            .unwrap_or(name);
        let candidate = object.with_file_name(format!("{stem}.manifest.yaml"));
        candidate.is_file().then_some(candidate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests_are_found_beside_their_object() {
        let dir = tempfile::tempdir().unwrap();
        let obj = dir.path().join("probe.bpf.o");
        assert_eq!(Manifest::beside(&obj), None);
        std::fs::write(dir.path().join("probe.manifest.yaml"), "").unwrap();
        assert_eq!(
            Manifest::beside(&obj),
            Some(dir.path().join("probe.manifest.yaml"))
        );
        std::fs::write(dir.path().join("net.manifest.yaml"), "").unwrap();
        assert_eq!(
            Manifest::beside(&dir.path().join("net.o")),
            Some(dir.path().join("net.manifest.yaml"))
        );
    }
}
