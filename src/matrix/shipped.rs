//! The matrices that ship inside the binary (`matrices/*.yaml`), so that
//! `--matrix default` (or no `--matrix` at all) works wherever bpfcompat is
//! installed, e.g. in the GitHub Action.

use std::path::Path;

use crate::matrix::{Matrix, MatrixError};

/// Name and text of every shipped matrix; the first is the default.
const SHIPPED: [(&str, &str); 9] = [
    ("default", include_str!("../../matrices/default.yaml")),
    ("mvp", include_str!("../../matrices/mvp.yaml")),
    (
        "quirk-library",
        include_str!("../../matrices/quirk-library.yaml"),
    ),
    ("ubuntu-lts", include_str!("../../matrices/ubuntu-lts.yaml")),
    (
        "rhel-family",
        include_str!("../../matrices/rhel-family.yaml"),
    ),
    (
        "amazon-linux",
        include_str!("../../matrices/amazon-linux.yaml"),
    ),
    ("oracle-uek", include_str!("../../matrices/oracle-uek.yaml")),
    ("suse", include_str!("../../matrices/suse.yaml")),
    ("arm64", include_str!("../../matrices/arm64.yaml")),
];

/// The names, for help and errors.
pub fn names() -> Vec<&'static str> {
    SHIPPED.iter().map(|(name, _)| *name).collect()
}

/// The matrix `--matrix` names: a file, or (a bare name with no `/` and no
/// `.yaml` that is not a file) a shipped matrix; without `--matrix`, the
/// default one. A shipped matrix resolves relative paths against the
/// current directory and keeps its lock file there, in
/// `.bpfcompat/<name>.lock` (where the GitHub Action finds it in the
/// workspace), and a notice says so.
pub fn load(arg: Option<&Path>) -> Result<Matrix, MatrixError> {
    let name = match arg {
        None => SHIPPED[0].0,
        Some(path) => {
            let text = path.to_string_lossy();
            let bare = !text.contains('/') && !text.ends_with(".yaml") && !text.ends_with(".yml");
            if path.exists() || !bare {
                return Matrix::load(path);
            }
            SHIPPED
                .iter()
                .map(|(name, _)| *name)
                .find(|name| *name == text)
                .ok_or_else(|| MatrixError::Unknown {
                    name: text.into_owned(),
                    shipped: names().join(", "),
                })?
        }
    };
    let text = SHIPPED
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, text)| *text)
        .expect("the name was found above");
    let cwd = std::env::current_dir().map_err(|err| MatrixError::Read {
        path: Path::new(".").to_owned(),
        err,
    })?;
    let path = cwd.join(format!("{name}.yaml"));
    let mut matrix = Matrix::from_text(text, &path)?;
    matrix.lock = lock_path(&cwd, name);
    eprintln!(
        "bpfcompat: using the built-in matrix {name:?}{}; relative paths in it resolve against the current directory ({}), and its lock file is {}",
        if arg.is_none() { " (no --matrix given)" } else { "" },
        cwd.display(),
        matrix.lock.display()
    );
    Ok(matrix)
}

/// Where the lock file of the built-in matrix `name` lives, under `dir`.
pub fn lock_path(dir: &Path, name: &str) -> std::path::PathBuf {
    dir.join(".bpfcompat").join(format!("{name}.lock"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_matrix_parses() {
        for (name, text) in SHIPPED {
            let m = Matrix::parse(text, Path::new("/x/m.yaml"), debian_mirror)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(m.name, name);
            assert!(m.kernels.len() + m.sweeps.len() >= 1, "{name}");
        }
    }

    /// The arm64 matrix: Debian's arm64 cloud kernels, each entry an arm64
    /// sweep of arm64 indices (verified against Debian's archive).
    #[test]
    fn the_arm64_matrix_sweeps_debians_arm64_cloud_kernels() {
        let text = SHIPPED.iter().find(|(n, _)| *n == "arm64").unwrap().1;
        let m = Matrix::parse(text, Path::new("/x/m.yaml"), debian_mirror).unwrap();
        assert_eq!(m.sweeps.len(), 3);
        for sweep in &m.sweeps {
            assert_eq!(sweep.template.arch, crate::matrix::Arch::Arm64);
            let spec = sweep.spec.describe();
            assert!(
                spec.contains("cloud-arm64") && spec.contains("binary-arm64"),
                "{spec}"
            );
            assert!(spec.contains("http://mirror.test/debian"), "{spec}");
        }
        // Without a mirror, the error names the variable.
        let msg = Matrix::parse(text, Path::new("/x/m.yaml"), |_| None)
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("environment variable BPFCOMPAT_DEBIAN_MIRROR is not set"),
            "{msg}"
        );
    }

    /// The Debian mirror the arm64 matrix takes from the environment.
    fn debian_mirror(name: &str) -> Option<String> {
        (name == "BPFCOMPAT_DEBIAN_MIRROR").then(|| "http://mirror.test/debian".to_owned())
    }

    /// The vendor matrices sweep every entry, each in the index kind its
    /// vendor publishes, with modules where the vendor splits them out.
    #[test]
    fn vendor_matrices_sweep_their_repositories() {
        for (name, modules) in [
            (
                "ubuntu-lts",
                &[
                    "ubuntu-20.04",
                    "ubuntu-22.04",
                    "ubuntu-22.04-hwe",
                    "ubuntu-24.04",
                ][..],
            ),
            ("rhel-family", &["alma-9", "rocky-9"][..]),
            ("amazon-linux", &[]),
            ("oracle-uek", &["uek7", "uek8"]),
            ("suse", &[]),
        ] {
            let text = SHIPPED.iter().find(|(n, _)| *n == name).unwrap().1;
            let m = Matrix::parse(text, Path::new("/x/m.yaml"), |_| None).unwrap();
            assert!(m.kernels.is_empty() && !m.sweeps.is_empty(), "{name}");
            assert!(text.contains("verified weekly by"), "{name}");
            for sweep in &m.sweeps {
                let id = sweep.template.id.as_str();
                assert!(
                    !sweep.template.required,
                    "{name}/{id}: vendor kernels are optional"
                );
                assert_eq!(sweep.spec.last, Some(3), "{name}/{id}");
                assert_eq!(
                    sweep.spec.modules.is_some(),
                    modules.contains(&id),
                    "{name}/{id}"
                );
                let rpm = sweep.spec.flavour.starts_with("kernel");
                for index in &sweep.spec.indices {
                    let kind =
                        index.ends_with("/repodata/repomd.xml") || index.ends_with("/mirror.list");
                    assert_eq!(kind, rpm, "{name}/{id}: {index}");
                    assert!(index.starts_with("http"), "{name}/{id}: {index}");
                }
            }
        }
    }

    /// What docs/kernel-quirk-library.md and the README promise of them: the
    /// series ci-kernels still builds, no frozen tag outside the quirk
    /// library, and frozen tags there named as such.
    #[test]
    fn the_shipped_matrices_hold_the_series_that_are_built() {
        let tags = |name: &str| -> Vec<String> {
            let text = SHIPPED.iter().find(|(n, _)| *n == name).unwrap().1;
            let m = Matrix::parse(text, Path::new("/x/m.yaml"), |_| None).unwrap();
            m.kernels
                .iter()
                .filter_map(|k| match &k.source {
                    crate::kernel::Source::Oci { reference, .. } => {
                        Some(reference.rsplit(':').next().unwrap().to_owned())
                    }
                    _ => None,
                })
                .collect()
        };
        assert_eq!(
            tags("default"),
            ["5.10", "5.15", "6.1", "6.6", "6.12", "longterm"]
        );
        assert_eq!(tags("mvp"), ["5.10", "6.1", "6.12"]);
        let quirks = SHIPPED
            .iter()
            .find(|(n, _)| *n == "quirk-library")
            .unwrap()
            .1;
        let m = Matrix::parse(quirks, Path::new("/x/m.yaml"), |_| None).unwrap();
        for frozen in ["4.14", "4.19", "5.4"] {
            let k = m
                .kernels
                .iter()
                .find(|k| k.source.describe().ends_with(&format!(":{frozen}")))
                .unwrap();
            assert!(k.id.ends_with("-frozen"), "{}", k.id);
        }
        let suse = m
            .kernels
            .iter()
            .find(|k| k.id.starts_with("suse-"))
            .unwrap();
        assert!(
            suse.source.kernel_path().is_some(),
            "SUSE packages need kernel_path:"
        );
        assert!(m.kernels.iter().all(|k| !k.required));
    }

    #[test]
    fn unknown_bare_names_list_the_shipped_ones() {
        let e = load(Some(Path::new("no-such-matrix")))
            .unwrap_err()
            .to_string();
        assert!(e.contains("default, mvp, quirk-library"), "{e}");
        let e = load(Some(Path::new("no/such.yaml")))
            .unwrap_err()
            .to_string();
        assert!(e.contains("cannot read matrix"), "{e}");
    }
}
