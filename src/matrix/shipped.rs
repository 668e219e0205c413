//! The matrices that ship inside the binary (`matrices/*.yaml`), so that
//! `--matrix default` (or no `--matrix` at all) works wherever bpfcompat is
//! installed, e.g. in the GitHub Action.

use std::path::Path;

use crate::matrix::{Matrix, MatrixError};

/// Name and text of every shipped matrix; the first is the default.
const SHIPPED: [(&str, &str); 3] = [
    ("default", include_str!("../../matrices/default.yaml")),
    ("mvp", include_str!("../../matrices/mvp.yaml")),
    (
        "quirk-library",
        include_str!("../../matrices/quirk-library.yaml"),
    ),
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
            let m = Matrix::parse(text, Path::new("/x/m.yaml"), |_| None)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(m.name, name);
            assert!(m.kernels.len() >= 3, "{name}");
        }
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
