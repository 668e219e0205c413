//! `required_profiles`: the kernels a manifest says must pass, matched
//! with the matrix's kernel ids.

use std::collections::BTreeSet;

use super::{parse::Manifest, ManifestError};
use crate::matrix::Matrix;
use crate::yaml::Field;

/// Kernels a manifest's `required_profiles` names (the Go tool's profile
/// ids), to be matched with the matrix's kernel ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequiredProfile {
    pub name: String,
    /// `FILE:LINE: required_profiles[i]`, for the warning if no kernel has it.
    pub place: String,
}

impl Manifest {
    pub fn required_profiles(&self) -> Result<Vec<RequiredProfile>, ManifestError> {
        let field = Field::root().key("required_profiles");
        let mut seen = BTreeSet::new();
        let mut profiles = Vec::new();
        for (i, name) in self.raw.required_profiles.iter().enumerate() {
            let at = field.index(i);
            if name.trim().is_empty() {
                return Err(self
                    .doc
                    .err(&at, "is empty; give a kernel id of the matrix"));
            }
            if !seen.insert(name) {
                return Err(self.doc.err(&at, format!("{name:?} is listed twice")));
            }
            profiles.push(RequiredProfile {
                name: name.clone(),
                place: format!(
                    "{}{}: {at}",
                    self.doc.path.display(),
                    at.line(&self.doc.text)
                        .map(|l| format!(":{l}"))
                        .unwrap_or_default()
                ),
            });
        }
        Ok(profiles)
    }
}

/// Marks the kernels that `profiles` name as required; a name that is no
/// kernel of the matrix is a warning (the Go tool's profile catalogue is not
/// ours), returned for the caller to print.
pub fn require_profiles(matrix: &mut Matrix, profiles: &[RequiredProfile]) -> Vec<String> {
    let mut warnings = Vec::new();
    for p in profiles {
        match matrix.kernels.iter_mut().find(|k| k.id == p.name) {
            Some(kernel) => kernel.required = true,
            None => warnings.push(format!(
                "{}: {:?} is not a kernel of matrix {} (its kernels: {}); ignored",
                p.place,
                p.name,
                matrix.path.display(),
                matrix
                    .kernels
                    .iter()
                    .map(|k| k.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }
    warnings
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::manifest::fixture;

    #[test]
    fn required_profiles_mark_matrix_kernels() {
        let text = "name: m\nkernels:\n  - id: debian-12-6.1\n    required: false\n    source: {file: /k}\n  - id: tiny\n    source: {file: /k}\n";
        let mut matrix = Matrix::parse(text, Path::new("/m.yaml"), |_| None).unwrap();
        let m = Manifest::load(&fixture("full.manifest.yaml")).unwrap();
        let warnings = require_profiles(&mut matrix, &m.required_profiles().unwrap());
        assert!(matrix.kernels[0].required);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].contains(":69: required_profiles[1]: \"ubuntu-22.04-5.15\" is not a kernel of matrix /m.yaml (its kernels: debian-12-6.1, tiny); ignored"),
            "{}",
            warnings[0]
        );
    }
}
