//! What differs between guests of each architecture: the agent at `/init`
//! (the host's own build, or one built for the guest's architecture), and
//! for an architecture other than the host's, the programs the host cannot
//! lend (its bash, bpftool and shared libraries run only on the host's).

use std::path::{Path, PathBuf};

use super::{elf, path_dirs, GuestError, AGENT_ENV, AGENT_NAME};
use crate::arch::Arch;

/// Where `scripts/install-deps.sh` puts Debian's static busybox of each
/// other architecture (`<dir>/<machine>/busybox`).
pub const FOREIGN_BUSYBOX_DIR: &str = "/usr/local/lib/bpfcompat";

/// The programs a guest of one architecture is built from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Userland {
    pub arch: Arch,
    /// The agent, `/init`.
    pub agent: PathBuf,
}

impl Userland {
    /// The agent for `arch`: see [`agent_for`].
    pub fn locate(arch: Arch) -> Result<Userland, GuestError> {
        let exe = std::env::current_exe().map_err(|e| GuestError::AgentNotFound {
            arch,
            looked: format!("the directory of the running program, which is unknown: {e}"),
            env: agent_env(arch),
        })?;
        let env = std::env::var_os(agent_env(arch)).map(PathBuf::from);
        Ok(Userland {
            arch,
            agent: agent_for(arch, env, &exe)?,
        })
    }

    /// Whether the guest is of another architecture than the host.
    pub fn is_foreign(&self) -> bool {
        self.arch != Arch::host()
    }
}

/// The environment variable that names the agent for `arch`:
/// `BPFCOMPAT_GUEST` for the host's, `BPFCOMPAT_GUEST_AARCH64` for arm64
/// on an x86_64 host.
pub fn agent_env(arch: Arch) -> String {
    if arch == Arch::host() {
        AGENT_ENV.to_owned()
    } else {
        format!("{AGENT_ENV}_{}", arch.machine().to_uppercase())
    }
}

/// The agent's file name beside `bpfcompat`: `bpfcompat-guest`, and
/// `bpfcompat-guest-aarch64` for another architecture (as the release
/// archive ships them).
pub fn agent_name(arch: Arch) -> String {
    if arch == Arch::host() {
        AGENT_NAME.to_owned()
    } else {
        format!("{AGENT_NAME}-{}", arch.machine())
    }
}

/// The agent for `arch`: `env` (its [`agent_env`]) when set, else
/// [`agent_name`] beside the running executable `exe`, else, in a cargo
/// target directory, the cross build's `target/<triple>/<profile>/`
/// (`scripts/build-guest.sh`).
pub(super) fn agent_for(
    arch: Arch,
    env: Option<PathBuf>,
    exe: &Path,
) -> Result<PathBuf, GuestError> {
    let not_found = |looked: String| GuestError::AgentNotFound {
        arch,
        looked,
        env: agent_env(arch),
    };
    if let Some(path) = env.filter(|p| !p.as_os_str().is_empty()) {
        return if path.is_file() {
            Ok(path)
        } else {
            Err(not_found(format!(
                "{} (from {})",
                path.display(),
                agent_env(arch)
            )))
        };
    }
    // `target/<profile>/bpfcompat`, or `target/<profile>/deps/<test binary>`.
    let dir = exe.parent();
    let parent = dir
        .filter(|d| d.file_name() == Some("deps".as_ref()))
        .and_then(Path::parent);
    let mut candidates: Vec<PathBuf> = dir
        .into_iter()
        .chain(parent)
        .map(|d| d.join(agent_name(arch)))
        .collect();
    if arch != Arch::host() {
        candidates.extend(cross_build(arch, parent.or(dir)));
    }
    let found = candidates.iter().find(|c| c.is_file()).cloned();
    found.ok_or_else(|| {
        not_found(
            candidates
                .iter()
                .map(|c| c.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        )
    })
}

/// `target/<arch's triple>/<profile>/bpfcompat-guest` for an executable in
/// `profile_dir` = `target/<profile>` or `target/<host triple>/<profile>`.
fn cross_build(arch: Arch, profile_dir: Option<&Path>) -> Option<PathBuf> {
    let profile_dir = profile_dir?;
    let profile = profile_dir.file_name()?;
    let mut target = profile_dir.parent()?;
    if target
        .file_name()
        .is_some_and(|n| n.to_string_lossy().ends_with("-linux-gnu"))
    {
        target = target.parent()?;
    }
    Some(
        target
            .join(format!("{}-unknown-linux-gnu", arch.machine()))
            .join(profile)
            .join(AGENT_NAME),
    )
}

/// Refuses a program that cannot run in a guest of `arch`: an ELF of
/// another machine, or, in a guest of another architecture than the host,
/// one that needs shared libraries (the host has only its own). Scripts
/// pass: their interpreter is the guest's business.
pub(super) fn check_program(what: &str, path: &Path, arch: Arch) -> Result<(), GuestError> {
    let elf_err = |err| GuestError::Elf {
        what: format!("{what} {}", path.display()),
        err,
    };
    let Some(program) = elf::program(path).map_err(elf_err)? else {
        return Ok(());
    };
    if program.machine != arch.elf_machine() {
        return Err(GuestError::WrongArch {
            what: what.to_owned(),
            path: path.to_owned(),
            arch,
            found: crate::object::machine_name(program.machine),
        });
    }
    if arch != Arch::host() && !program.is_static {
        return Err(GuestError::ForeignDynamic {
            what: what.to_owned(),
            path: path.to_owned(),
            arch,
        });
    }
    Ok(())
}

/// Whether `path` is a program for a guest of `arch` (for the host's
/// bpftool, which only a guest of the host's architecture gets).
pub(super) fn runs_on(path: &Path, arch: Arch) -> bool {
    check_program("", path, arch).is_ok()
}

/// A static busybox for a guest of another architecture than the host's:
/// `BPFCOMPAT_BUSYBOX_<MACHINE>`, else the one `scripts/install-deps.sh`
/// unpacks from Debian's `busybox-static:<arch>`.
pub(super) fn foreign_busybox(arch: Arch) -> Result<PathBuf, GuestError> {
    let env = format!("BPFCOMPAT_BUSYBOX_{}", arch.machine().to_uppercase());
    let mut candidates: Vec<PathBuf> = std::env::var_os(&env)
        .map(PathBuf::from)
        .into_iter()
        .collect();
    candidates.push(
        Path::new(FOREIGN_BUSYBOX_DIR)
            .join(arch.machine())
            .join("busybox"),
    );
    candidates.extend(
        path_dirs()
            .into_iter()
            .map(|d| d.join(format!("busybox-{}", arch.machine()))),
    );
    let busybox = candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .ok_or_else(|| GuestError::ForeignBusybox {
            arch,
            env: env.clone(),
            looked: candidates
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        })?;
    check_program("busybox", &busybox, arch)?;
    Ok(busybox)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cross_built_agent_is_found_in_its_target_directory() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        let host = target.join("debug");
        let cross = target.join("aarch64-unknown-linux-gnu/debug");
        std::fs::create_dir_all(host.join("deps")).unwrap();
        std::fs::create_dir_all(&cross).unwrap();
        let foreign = if Arch::host() == Arch::X86_64 {
            Arch::Arm64
        } else {
            return;
        };
        let exe = host.join("deps/engine-0123");
        let msg = agent_for(foreign, None, &exe).unwrap_err().to_string();
        assert!(
            msg.contains("no arm64 guest agent")
                && msg.contains("bpfcompat-guest-aarch64")
                && msg.contains("scripts/build-guest.sh aarch64")
                && msg.contains("BPFCOMPAT_GUEST_AARCH64"),
            "{msg}"
        );
        std::fs::write(cross.join(AGENT_NAME), b"x").unwrap();
        assert_eq!(
            agent_for(foreign, None, &exe).unwrap(),
            cross.join(AGENT_NAME)
        );
        // Beside the executable (the release archive) wins.
        std::fs::write(host.join("bpfcompat-guest-aarch64"), b"x").unwrap();
        assert_eq!(
            agent_for(foreign, None, &host.join("bpfcompat")).unwrap(),
            host.join("bpfcompat-guest-aarch64")
        );
    }
}
