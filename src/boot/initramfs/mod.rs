//! What goes into the guest: the initramfs the kernel unpacks, with our agent
//! (`bpfcompat-guest`) as `/init`.
//!
//! Command mode layout:
//!
//! | path | what |
//! |---|---|
//! | `/init` | the agent, plus its shared libraries at their host paths |
//! | `/bin/bash`, `/bin/sh -> bash` | the host's bash and its libraries |
//! | `/bin/busybox`, `/bin/<applet> -> busybox` | coreutils and friends |
//! | `/dev/{console,null,ttyS0,ttyS1}` | nodes, for kernels without devtmpfs |
//! | `/etc/passwd`, `/etc/group`, `/etc/ld.so.cache` | root only; the host's loader cache |
//! | `/bpfcompat/request.json` | the [`Request`] ([`proto::REQUEST_PATH`]) |
//! | `/bpfcompat/bin/<name>` | `--bin`, mode 0755, and its libraries |
//! | `/bpfcompat/artifact/<name>` | each `--artifact` (their file names differ) |
//! | `/usr/sbin/bpftool` | the host's bpftool and its libraries, when the host has one |
//! | `/usr/local/bin/<name>` | each `--guest-tool` and its libraries (first on `PATH`) |
//!
//! Object mode puts each object at `/bpfcompat/objects/<n>/<name>`, and its
//! request carries the object's loader contract.
//! Kernel modules, when a check needs some, come in a second archive that
//! is appended to this one for that kernel only ([`modules_archive`]: the
//! kernel unpacks concatenated archives in order): `/bpfcompat/modules/`
//! with the uncompressed `.ko` files and the load list
//! ([`proto::modules::MODULES_PATH`]).

mod cpio;
mod elf;
mod userland;

use std::path::{Path, PathBuf};

use bpfcompat_proto::modules::{ModuleLoadRequest, ModuleToLoad, MODULES_DIR, MODULES_PATH};
use bpfcompat_proto::object::{LoaderContract, ObjectCheckRequest};
use bpfcompat_proto::{self as proto, CheckRequest, Request};

use crate::arch::Arch;
use cpio::Archive;
pub use userland::{agent_env, agent_name, Userland, FOREIGN_BUSYBOX_DIR};

/// Name of the agent binary the workspace builds.
pub const AGENT_NAME: &str = "bpfcompat-guest";
/// Environment variable that overrides where the agent is.
pub const AGENT_ENV: &str = "BPFCOMPAT_GUEST";
/// Guest directory of `--bin`.
pub const GUEST_BIN_DIR: &str = "/bpfcompat/bin";
/// Guest directory of `--artifact`.
pub const GUEST_ARTIFACT_DIR: &str = "/bpfcompat/artifact";
/// Guest directory of the objects the validator checks.
pub const GUEST_OBJECT_DIR: &str = "/bpfcompat/objects";
/// Guest directory of `--guest-tool`: first on the command's `PATH`, so a
/// tool there wins over one of the same name that bpfcompat ships.
pub const GUEST_TOOL_DIR: &str = "/usr/local/bin";
/// Where the host's bpftool goes in command mode.
pub const GUEST_BPFTOOL: &str = "/usr/sbin/bpftool";
/// The [`GuestTool::what`] of the host's bpftool.
const BPFTOOL: &str = "bpftool";

/// What the user asked to run in command mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandPayload {
    /// Run as `bash -lc <command>` inside the guest.
    pub command: String,
    /// A host file copied to `/bpfcompat/bin/<file name>` (with its shared
    /// libraries) and exported as `BPFCOMPAT_BIN`.
    pub bin: Option<PathBuf>,
    /// Host files copied to `/bpfcompat/artifact/<file name>` (their file
    /// names differ) and exported one a line as `BPFCOMPAT_ARTIFACTS`, the
    /// first also as `BPFCOMPAT_ARTIFACT`.
    pub artifacts: Vec<PathBuf>,
    /// Host executables put on the guest's `PATH`, with their libraries.
    pub tools: Vec<GuestTool>,
}

/// A host executable for the guest's `PATH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestTool {
    /// What it is, for errors: `--guest-tool`, `bpftool`.
    pub what: &'static str,
    pub host: PathBuf,
    pub guest: String,
}

impl GuestTool {
    /// `--guest-tool FILE`: at `/usr/local/bin/<file name>`.
    pub fn user(host: &Path) -> Result<GuestTool, GuestError> {
        let what = "--guest-tool";
        Ok(GuestTool {
            what,
            guest: format!("{GUEST_TOOL_DIR}/{}", file_name(what, host)?),
            host: host.to_owned(),
        })
    }

    /// The host's bpftool at [`GUEST_BPFTOOL`]; why not, when the host
    /// has none, or only a wrapper script that cannot run in a guest.
    pub fn host_bpftool() -> Result<GuestTool, GuestError> {
        let host = find_tool(
            "bpftool",
            &[
                "/usr/sbin/bpftool",
                "/sbin/bpftool",
                "/usr/local/sbin/bpftool",
            ],
            "install it (the bpftool package, as scripts/install-deps.sh does), or ship \
             one with --guest-tool FILE",
        )?;
        Self::bpftool(host)
    }

    /// `host` at [`GUEST_BPFTOOL`], unless it is a script.
    fn bpftool(host: PathBuf) -> Result<GuestTool, GuestError> {
        let what = BPFTOOL;
        let is_program = elf::is_elf(&host).map_err(|err| GuestError::Elf {
            what: format!("{what} {}", host.display()),
            err,
        })?;
        if !is_program {
            return Err(GuestError::WrapperScript { path: host });
        }
        Ok(GuestTool {
            what,
            host,
            guest: GUEST_BPFTOOL.to_owned(),
        })
    }

    /// The name it is run by in the guest.
    pub fn name(&self) -> &str {
        self.guest.rsplit('/').next().unwrap_or(&self.guest)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum GuestError {
    #[error(
        "no {arch} guest agent was found (looked for {looked}); {}, or set {env} to its path",
        if *arch == Arch::host() {
            "build the workspace with `cargo build --release` so it sits next to the \
             bpfcompat binary"
        } else {
            "install the release archive (it ships bpfcompat-guest-aarch64 beside \
             bpfcompat), or build it with `scripts/build-guest.sh aarch64`"
        }
    )]
    AgentNotFound {
        arch: Arch,
        looked: String,
        env: String,
    },
    #[error(
        "{what} {path} is a program for {found}, not for the {arch} guest it would run in; \
         give one built for {arch}"
    )]
    WrongArch {
        what: String,
        path: PathBuf,
        arch: Arch,
        found: String,
    },
    #[error(
        "{what} {path} needs shared libraries, which a {arch} guest does not get from this \
         host (they are the host's own architecture's); link it statically for {arch}"
    )]
    ForeignDynamic {
        what: String,
        path: PathBuf,
        arch: Arch,
    },
    #[error(
        "command mode on {arch} guests needs a static {arch} busybox (looked for {looked}); \
         scripts/install-deps.sh unpacks Debian's busybox-static:{} there, or set {env}",
        arch.debian()
    )]
    ForeignBusybox {
        arch: Arch,
        env: String,
        looked: String,
    },
    #[error("{what} {path} cannot be read: {err}")]
    Unreadable {
        what: &'static str,
        path: PathBuf,
        err: std::io::Error,
    },
    #[error("{what} {path} has no file name to use inside the guest")]
    NoFileName { what: &'static str, path: PathBuf },
    #[error("{tool} was not found on this host (looked in {looked}); {hint}")]
    MissingTool {
        tool: &'static str,
        looked: String,
        hint: &'static str,
    },
    #[error(
        "{path} is a script, not the bpftool program (a wrapper such as Ubuntu's, which runs \
         the bpftool of the host's kernel, cannot run in a guest); ship the program itself \
         with --guest-tool FILE"
    )]
    WrapperScript { path: PathBuf },
    #[error("`{busybox} --list` failed: {why}; reinstall busybox-static")]
    BusyboxList { busybox: PathBuf, why: String },
    #[error("{what}: {err}")]
    Elf { what: String, err: elf::ElfError },
}

/// The uncompressed newc initramfs for one command-mode boot.
/// What a boot checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    Command(CommandPayload),
    /// `.bpf.o` files for the validator, at `/bpfcompat/objects/<n>/<name>`
    /// (numbered: two objects may share a file name).
    Objects(Vec<ObjectPayload>),
}

/// One object for the validator and what its loader would do with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectPayload {
    pub host: PathBuf,
    pub contract: LoaderContract,
    /// The one architecture whose kernels check it (an `{arch}` path's
    /// build); `None`: every kernel.
    pub arch: Option<Arch>,
}

/// A boot's initramfs, and the same split in two for wait mode: the part
/// every job of its kind shares (what a snapshot boots) and the job.
pub struct Initramfs {
    /// Everything: what a plain boot gets.
    pub full: Vec<u8>,
    /// The agent, shells, `/etc`, and the host's bpftool for commands.
    pub base: Vec<u8>,
    /// The rest: request, objects, `--bin`, `--guest-tool`s, artifacts and
    /// their libraries; unpacked over the base it makes `full`.
    pub job: Vec<u8>,
}

pub fn build(guest: &Userland, payload: &Payload) -> Result<Initramfs, GuestError> {
    let base = base_archive(guest, payload)?;
    let mut full = base.clone();
    add_payload(&mut full, payload, guest.arch)?;
    Ok(Initramfs {
        job: full.difference(&base).to_bytes(),
        base: base.to_bytes(),
        full: full.to_bytes(),
    })
}

/// What does not depend on the job: the same for every check of a kind.
fn base_archive(guest: &Userland, payload: &Payload) -> Result<Archive, GuestError> {
    let mut a = Archive::new();
    for (dir, mode) in [
        ("/proc", 0o555),
        ("/sys", 0o555),
        ("/dev", 0o755),
        ("/tmp", 0o1777),
        ("/run", 0o755),
        ("/root", 0o700),
        ("/bin", 0o755),
        ("/sbin", 0o755),
        ("/usr/bin", 0o755),
        ("/usr/sbin", 0o755),
        ("/etc", 0o755),
        (proto::REMOTE_ROOT, 0o755),
    ] {
        a.add_dir(dir, mode);
    }
    // Nodes the agent needs before it mounts devtmpfs (and if that fails).
    a.add_char_device("/dev/console", 5, 1, 0o600);
    a.add_char_device("/dev/null", 1, 3, 0o666);
    // The console and the result port: 8250s on x86, PL011s on arm64.
    let (tty, major) = match guest.arch {
        Arch::X86_64 => ("/dev/ttyS", 4),
        Arch::Arm64 => ("/dev/ttyAMA", 204),
    };
    a.add_char_device(&format!("{tty}0"), major, 64, 0o660);
    a.add_char_device(&format!("{tty}1"), major, 65, 0o660);
    a.add_symlink("/dev/fd", "/proc/self/fd");
    a.add_symlink("/dev/stdin", "/proc/self/fd/0");
    a.add_symlink("/dev/stdout", "/proc/self/fd/1");
    a.add_symlink("/dev/stderr", "/proc/self/fd/2");

    let arch = guest.arch;
    add_executable(&mut a, "the guest agent", &guest.agent, "/init", arch)?;
    if guest.is_foreign() {
        // No bash, bpftool or libraries of the host's: busybox's sh, for
        // commands and behavior mode's functional tests.
        let runs_commands = match payload {
            Payload::Command(_) => true,
            Payload::Objects(objects) => objects
                .iter()
                .any(|o| !o.contract.functional_tests.is_empty()),
        };
        if runs_commands {
            add_busybox(&mut a, &userland::foreign_busybox(arch)?, arch)?;
        }
        add_users(&mut a, "/bin/sh");
        return Ok(a);
    }
    let bash = find_tool("bash", &["/bin/bash", "/usr/bin/bash"], "install bash")?;
    add_executable(&mut a, "bash", &bash, "/bin/bash", arch)?;
    a.add_symlink("/bin/sh", "bash");
    add_busybox(&mut a, &find_busybox()?, arch)?;
    add_users(&mut a, "/bin/bash");
    // Libraries from ld.so.conf directories sit at their host paths; the
    // host's cache tells the guest's loader where they are.
    let cache = Path::new("/etc/ld.so.cache");
    if cache.is_file() {
        add_data_file(&mut a, "the loader cache", cache, "/etc/ld.so.cache")?;
    }
    // The host's bpftool is the same for every command: with the base, it
    // need not travel with each job.
    if let Payload::Command(command) = payload {
        for tool in command.tools.iter().filter(|t| t.what == BPFTOOL) {
            add_executable(&mut a, tool.what, &tool.host, &tool.guest, arch)?;
        }
    }
    Ok(a)
}

/// `/etc/passwd` and `/etc/group`: root, whose shell is `shell`, and nobody.
fn add_users(a: &mut Archive, shell: &str) {
    a.add_file(
        "/etc/passwd",
        format!(
            "root:x:0:0:root:/root:{shell}\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
        )
        .into_bytes(),
        0o644,
    );
    a.add_file(
        "/etc/group",
        b"root:x:0:\nnogroup:x:65534:\n".to_vec(),
        0o644,
    );
}

/// The request and everything it names.
fn add_payload(a: &mut Archive, payload: &Payload, arch: Arch) -> Result<(), GuestError> {
    let checks = match payload {
        Payload::Command(command) => vec![command_request(a, command, arch)?],
        Payload::Objects(objects) => objects
            .iter()
            .enumerate()
            .map(|(i, object)| {
                let host = &object.host;
                let guest = format!("{GUEST_OBJECT_DIR}/{i}/{}", file_name("--artifact", host)?);
                let bytes = std::fs::read(host).map_err(|err| GuestError::Unreadable {
                    what: "--artifact",
                    path: host.to_owned(),
                    err,
                })?;
                a.add_file(&guest, crate::object::without_dwarf(bytes), 0o644);
                Ok(CheckRequest::Object(ObjectCheckRequest::new(
                    guest,
                    object.contract.clone(),
                )))
            })
            .collect::<Result<_, GuestError>>()?,
    };
    let request = Request { checks };
    a.add_file(
        proto::REQUEST_PATH,
        serde_json::to_vec_pretty(&request).expect("a request serialises"),
        0o644,
    );
    Ok(())
}

/// One kernel module for a guest: its uncompressed ELF object.
pub struct GuestModule {
    pub name: String,
    pub why: String,
    pub object: Vec<u8>,
}

/// The archive appended to a kernel's initramfs to load `modules` in this
/// order: `/bpfcompat/modules/<n>-<name>.ko` and the load list.
pub fn modules_archive(modules: Vec<GuestModule>) -> Vec<u8> {
    let mut a = Archive::new();
    a.add_dir(MODULES_DIR, 0o755);
    let mut request = ModuleLoadRequest {
        modules: Vec::with_capacity(modules.len()),
    };
    for (i, module) in modules.into_iter().enumerate() {
        let path = format!("{MODULES_DIR}/{i:03}-{}.ko", module.name);
        a.add_file(&path, module.object, 0o644);
        request.modules.push(ModuleToLoad {
            name: module.name,
            path,
            why: module.why,
        });
    }
    a.add_file(
        MODULES_PATH,
        serde_json::to_vec_pretty(&request).expect("a load list serialises"),
        0o644,
    );
    a.to_bytes()
}

/// Ships `--bin` and the tools (with their libraries) and the artifacts
/// for a command check.
fn command_request(
    a: &mut Archive,
    payload: &CommandPayload,
    arch: Arch,
) -> Result<CheckRequest, GuestError> {
    let bin = match &payload.bin {
        Some(host) => {
            let guest = format!("{GUEST_BIN_DIR}/{}", file_name("--bin", host)?);
            add_executable(a, "--bin", host, &guest, arch)?;
            Some(guest)
        }
        None => None,
    };
    // The host's bpftool runs only in guests of the host's architecture.
    let tools = payload
        .tools
        .iter()
        .filter(|t| t.what != BPFTOOL || userland::runs_on(&t.host, arch));
    for tool in tools {
        add_executable(a, tool.what, &tool.host, &tool.guest, arch)?;
    }
    let artifacts = payload
        .artifacts
        .iter()
        .map(|host| {
            let guest = format!("{GUEST_ARTIFACT_DIR}/{}", file_name("--artifact", host)?);
            add_data_file(a, "--artifact", host, &guest)?;
            Ok(guest)
        })
        .collect::<Result<_, GuestError>>()?;
    Ok(CheckRequest::Command {
        command: payload.command.clone(),
        bin,
        artifacts,
    })
}

fn add_data_file(
    a: &mut Archive,
    what: &'static str,
    host: &Path,
    guest: &str,
) -> Result<(), GuestError> {
    a.add_host_file(guest, host, Some(0o644))
        .map_err(|err| GuestError::Unreadable {
            what,
            path: host.to_owned(),
            err,
        })
}

/// Copies an executable and every shared object it needs.
fn add_executable(
    a: &mut Archive,
    what: &'static str,
    host: &Path,
    guest: &str,
    arch: Arch,
) -> Result<(), GuestError> {
    a.add_host_file(guest, host, Some(0o755))
        .map_err(|err| GuestError::Unreadable {
            what,
            path: host.to_owned(),
            err,
        })?;
    userland::check_program(what, host, arch)?;
    if arch != Arch::host() {
        return Ok(()); // Static: checked.
    }
    let libs = elf::closure(host, Path::new(guest)).map_err(|err| GuestError::Elf {
        what: format!("the shared libraries of {what} {}", host.display()),
        err,
    })?;
    for lib in libs {
        let guest = lib.guest.to_string_lossy();
        if a.contains(&guest) {
            continue;
        }
        a.add_host_file(&guest, &lib.host, Some(0o755))
            .map_err(|err| GuestError::Unreadable {
                what: "shared library",
                path: lib.host.clone(),
                err,
            })?;
    }
    Ok(())
}

fn file_name<'a>(
    what: &'static str,
    path: &'a Path,
) -> Result<std::borrow::Cow<'a, str>, GuestError> {
    path.file_name()
        .map(|n| n.to_string_lossy())
        .ok_or_else(|| GuestError::NoFileName {
            what,
            path: path.to_owned(),
        })
}

/// First of `candidates` that exists, else `name` on `PATH`.
fn find_tool(
    name: &'static str,
    candidates: &[&str],
    hint: &'static str,
) -> Result<PathBuf, GuestError> {
    let mut looked: Vec<PathBuf> = candidates.iter().map(PathBuf::from).collect();
    looked.extend(path_dirs().into_iter().map(|d| d.join(name)));
    looked
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .ok_or_else(|| GuestError::MissingTool {
            tool: name,
            looked: looked
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            hint,
        })
}

fn path_dirs() -> Vec<PathBuf> {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default()
}

/// A static busybox from `PATH` (or the usual places) is preferred; a
/// dynamic one comes with its libraries.
fn find_busybox() -> Result<PathBuf, GuestError> {
    let mut candidates: Vec<PathBuf> = path_dirs().into_iter().map(|d| d.join("busybox")).collect();
    candidates.extend(["/bin/busybox", "/usr/bin/busybox", "/sbin/busybox"].map(PathBuf::from));
    let existing: Vec<&PathBuf> = candidates.iter().filter(|p| p.is_file()).collect();
    let is_static = |p: &Path| matches!(elf::closure(p, p), Ok(libs) if libs.is_empty());
    existing
        .iter()
        .find(|p| is_static(p))
        .or(existing.first())
        .map(|p| (*p).clone())
        .ok_or_else(|| GuestError::MissingTool {
            tool: "busybox",
            looked: candidates
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            hint: "install busybox-static",
        })
}

/// `busybox` at `/bin/busybox` and its applets as links to it. The list
/// comes from the host's busybox, which also runs where `busybox` (of
/// another architecture) cannot: Debian builds every architecture's alike.
fn add_busybox(a: &mut Archive, busybox: &Path, arch: Arch) -> Result<(), GuestError> {
    add_executable(a, "busybox", busybox, "/bin/busybox", arch)?;
    let busybox = if arch == Arch::host() {
        busybox.to_owned()
    } else {
        find_busybox()?
    };
    let out = std::process::Command::new(&busybox)
        .arg("--list")
        .output()
        .map_err(|e| GuestError::BusyboxList {
            busybox: busybox.clone(),
            why: e.to_string(),
        })?;
    if !out.status.success() {
        return Err(GuestError::BusyboxList {
            busybox,
            why: format!(
                "{}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        });
    }
    for applet in String::from_utf8_lossy(&out.stdout).lines() {
        let applet = applet.trim();
        if applet.is_empty() || applet.contains('/') || applet == "busybox" {
            continue;
        }
        let path = format!("/bin/{applet}");
        if !a.contains(&path) {
            a.add_symlink(&path, "busybox");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::process::Command;

    /// Unpacks an initramfs with the host's cpio into a temporary directory.
    pub(crate) fn unpack(bytes: &[u8]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        unpack_into(bytes, dir.path());
        dir
    }

    fn unpack_into(bytes: &[u8], dir: &Path) {
        super::cpio::tests::cpio(&["-idu", "--quiet", "--no-absolute-filenames"], bytes, dir);
    }

    fn build_initramfs(agent: &Path, payload: &Payload) -> Result<Vec<u8>, GuestError> {
        let guest = Userland {
            arch: Arch::host(),
            agent: agent.to_owned(),
        };
        build(&guest, payload).map(|initramfs| initramfs.full)
    }

    /// Every path under `root` with its type and content.
    fn tree(root: &Path) -> Vec<(PathBuf, String)> {
        let mut out = Vec::new();
        let mut dirs = vec![root.to_owned()];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                let meta = std::fs::symlink_metadata(&path).unwrap();
                let what = if meta.is_dir() {
                    dirs.push(path.clone());
                    "dir".to_owned()
                } else if meta.file_type().is_symlink() {
                    format!("-> {}", std::fs::read_link(&path).unwrap().display())
                } else if meta.is_file() {
                    bpfcompat_proto::job::digest(&std::fs::read(&path).unwrap())
                } else {
                    "node".to_owned()
                };
                out.push((path.strip_prefix(root).unwrap().to_owned(), what));
            }
        }
        out.sort();
        out
    }

    #[test]
    fn the_base_and_the_job_make_the_full_initramfs() {
        let dir = tempfile::tempdir().unwrap();
        let artifact = dir.path().join("probe.bpf.o");
        std::fs::write(&artifact, b"object").unwrap();
        let payload = payload(Some(PathBuf::from("/bin/true")), Some(artifact));
        let guest = Userland {
            arch: Arch::host(),
            agent: fake_agent(),
        };
        let built = build(&guest, &payload).unwrap();
        let full = unpack(&built.full);
        let split = tempfile::tempdir().unwrap();
        unpack_into(&built.base, split.path());
        unpack_into(&built.job, split.path());
        assert_eq!(tree(split.path()), tree(full.path()));
        let job = unpack(&built.job);
        assert!(job.path().join("bpfcompat/request.json").is_file());
        assert!(job.path().join("bpfcompat/bin/true").is_file());
        assert!(job.path().join("bpfcompat/artifact/probe.bpf.o").is_file());
        for shared in ["init", "bin/bash", "bin/busybox", "etc/passwd"] {
            assert!(!job.path().join(shared).exists(), "{shared} is in the job");
        }
        let base = unpack(&built.base);
        assert!(!base.path().join("bpfcompat/request.json").exists());
    }

    fn payload(bin: Option<PathBuf>, artifact: Option<PathBuf>) -> Payload {
        Payload::Command(CommandPayload {
            command: "echo hi".into(),
            bin,
            artifacts: artifact.into_iter().collect(),
            tools: Vec::new(),
        })
    }

    /// Any dynamically linked host program serves as a stand-in agent here.
    fn fake_agent() -> PathBuf {
        PathBuf::from("/bin/bash")
    }

    #[test]
    fn initramfs_has_the_command_mode_layout() {
        let dir = tempfile::tempdir().unwrap();
        let artifact = dir.path().join("prog.bpf.o");
        std::fs::write(&artifact, b"not really elf").unwrap();
        let bytes = build_initramfs(
            &fake_agent(),
            &payload(Some("/usr/bin/env".into()), Some(artifact.clone())),
        )
        .unwrap();
        let root = unpack(&bytes);
        let r = root.path();
        for p in [
            "init",
            "bin/bash",
            "bin/busybox",
            "etc/passwd",
            "etc/group",
            "proc",
            "sys",
            "tmp",
            "run",
            "root",
            "bpfcompat/bin/env",
            "bpfcompat/artifact/prog.bpf.o",
        ] {
            assert!(r.join(p).exists(), "{p} missing");
        }
        assert_eq!(
            std::fs::read_link(r.join("bin/sh")).unwrap(),
            Path::new("bash")
        );
        assert_eq!(
            std::fs::read_link(r.join("bin/ls")).unwrap(),
            Path::new("busybox")
        );
        assert!(r.join("bin/mount").is_symlink());
        assert!(
            !r.join("bin/bash").is_symlink(),
            "bash is not replaced by an applet"
        );
        let libc = Path::new("lib/x86_64-linux-gnu/libc.so.6");
        assert!(r.join(libc).is_file(), "bash's libc at its host path");
        let interp = Path::new("lib64/ld-linux-x86-64.so.2");
        assert!(r.join(interp).is_file());

        let request: Request =
            serde_json::from_slice(&std::fs::read(r.join("bpfcompat/request.json")).unwrap())
                .unwrap();
        assert_eq!(
            request.checks,
            [CheckRequest::Command {
                command: "echo hi".into(),
                bin: Some("/bpfcompat/bin/env".into()),
                artifacts: vec!["/bpfcompat/artifact/prog.bpf.o".into()],
            }]
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(r.join("bpfcompat/bin/env"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755);
    }

    #[test]
    fn request_without_bin_or_artifact_has_none() {
        let root = unpack(&build_initramfs(&fake_agent(), &payload(None, None)).unwrap());
        let request: Request = serde_json::from_slice(
            &std::fs::read(root.path().join("bpfcompat/request.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(
            request.checks,
            [CheckRequest::Command {
                command: "echo hi".into(),
                bin: None,
                artifacts: Vec::new(),
            }]
        );
        assert!(!root.path().join("bpfcompat/bin").exists());
    }

    /// Every artifact in the request in order, and the tools on `PATH`
    /// with their libraries: they run chrooted into the tree.
    #[test]
    fn tools_and_every_artifact_are_staged() {
        let dir = tempfile::tempdir().unwrap();
        let artifacts: Vec<PathBuf> = ["b.bpf.o", "a.bpf.o"]
            .iter()
            .map(|name| {
                let path = dir.path().join(name);
                std::fs::write(&path, name).unwrap();
                path
            })
            .collect();
        let mut tools = vec![GuestTool::user(Path::new("/usr/bin/env")).unwrap()];
        tools.extend(GuestTool::host_bpftool().ok());
        let payload = Payload::Command(CommandPayload {
            command: "true".into(),
            bin: None,
            artifacts,
            tools: tools.clone(),
        });
        let root = unpack(&build_initramfs(&fake_agent(), &payload).unwrap());
        let r = root.path();
        let request: Request =
            serde_json::from_slice(&std::fs::read(r.join("bpfcompat/request.json")).unwrap())
                .unwrap();
        let CheckRequest::Command { artifacts, .. } = &request.checks[0] else {
            panic!("not a command: {request:?}");
        };
        assert_eq!(
            artifacts,
            &["/bpfcompat/artifact/b.bpf.o", "/bpfcompat/artifact/a.bpf.o"]
        );
        assert_eq!(
            std::fs::read(r.join("bpfcompat/artifact/a.bpf.o")).unwrap(),
            b"a.bpf.o"
        );
        assert_eq!(tools[0].guest, "/usr/local/bin/env");
        assert_eq!(tools[0].name(), "env");
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("not root: the chroot runs are left to the boot tests");
            return;
        }
        for tool in &tools {
            let out = chroot_run(r, &[&tool.guest, "--help"]);
            assert!(
                out.status.success(),
                "{} in the guest: {}",
                tool.guest,
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    #[test]
    fn a_wrapper_script_is_no_bpftool_for_a_guest() {
        let dir = tempfile::tempdir().unwrap();
        let wrapper = dir.path().join("bpftool");
        std::fs::write(
            &wrapper,
            "#!/bin/sh\nexec /usr/lib/linux-tools/$(uname -r)/bpftool\n",
        )
        .unwrap();
        let err = GuestTool::bpftool(wrapper.clone()).unwrap_err().to_string();
        assert!(
            err.contains(&wrapper.display().to_string()) && err.contains("--guest-tool FILE"),
            "{err}"
        );
        let tool = GuestTool::bpftool("/bin/bash".into()).unwrap();
        assert_eq!(tool.guest, "/usr/sbin/bpftool");
        assert_eq!(tool.name(), "bpftool");
    }

    #[test]
    fn objects_go_with_their_contracts() {
        use bpfcompat_proto::object::ValidationMode;
        let dir = tempfile::tempdir().unwrap();
        let object = |name: &str, case: &str, mode| {
            let host = dir.path().join(name);
            std::fs::write(&host, b"an object").unwrap();
            ObjectPayload {
                host,
                contract: LoaderContract {
                    case: Some(case.into()),
                    validation_mode: mode,
                    ..LoaderContract::default()
                },
                arch: None,
            }
        };
        let payload = Payload::Objects(vec![
            object("a.bpf.o", "first", ValidationMode::Behavior),
            object("a.bpf.o", "second", ValidationMode::LoadOnly),
        ]);
        let root = unpack(&build_initramfs(&fake_agent(), &payload).unwrap());
        let request: Request = serde_json::from_slice(
            &std::fs::read(root.path().join("bpfcompat/request.json")).unwrap(),
        )
        .unwrap();
        let objects: Vec<_> = request
            .checks
            .iter()
            .map(|c| match c {
                CheckRequest::Object(o) => o,
                other => panic!("not an object: {other:?}"),
            })
            .collect();
        assert_eq!(objects[0].path, "/bpfcompat/objects/0/a.bpf.o");
        assert_eq!(objects[1].path, "/bpfcompat/objects/1/a.bpf.o");
        assert_eq!(objects[0].validation_mode(), ValidationMode::Behavior);
        assert_eq!(objects[1].validation_mode(), ValidationMode::LoadOnly);
        let cases: Vec<_> = objects.iter().map(|o| o.contract.case.as_deref()).collect();
        assert_eq!(cases, [Some("first"), Some("second")]);
        assert!(root.path().join("bpfcompat/objects/1/a.bpf.o").is_file());
    }

    #[test]
    fn runs_in_a_chroot_of_the_initramfs() {
        // The closure is complete if bash and an applet run chrooted into the
        // unpacked tree, where nothing from the host is visible.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("not root: chroot check left to the boot tests");
            return;
        }
        let root = unpack(&build_initramfs(&fake_agent(), &payload(None, None)).unwrap());
        let out = chroot_run(
            root.path(),
            &["/bin/bash", "-c", "ls /bpfcompat && echo ok-$BASH_VERSION"],
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{stdout} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            stdout.contains("request.json") && stdout.contains("ok-"),
            "{stdout}"
        );
    }

    /// Runs `argv` chrooted into `root`, with only `PATH=/bin`.
    fn chroot_run(root: &Path, argv: &[&str]) -> std::process::Output {
        let chroot = ["/usr/sbin/chroot", "/sbin/chroot", "/usr/bin/chroot"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .expect("coreutils' chroot");
        Command::new(chroot)
            .arg(root)
            .args(argv)
            .env_clear()
            .env("PATH", "/bin")
            .output()
            .unwrap()
    }

    /// A library found only through an `ld.so.conf` directory (not a default
    /// one) is found in the guest thanks to the shipped `/etc/ld.so.cache`.
    /// Uses libfakeroot, which Debian puts in such a directory.
    #[test]
    fn ld_so_conf_libraries_are_found_through_the_shipped_cache() {
        let lib_dir = Path::new("/usr/lib/x86_64-linux-gnu/libfakeroot");
        let conf_dirs = elf::read_ld_so_conf(Path::new("/etc/ld.so.conf"));
        if unsafe { libc::geteuid() } != 0
            || !lib_dir.join("libfakeroot-0.so").is_file()
            || !conf_dirs.iter().any(|d| d == lib_dir)
        {
            eprintln!("no root or no libfakeroot in ld.so.conf: nothing to prove here");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("fr.c");
        std::fs::write(
            &src,
            "#include <unistd.h>\nint main(void){write(1,\"ok\\n\",3);return 0;}\n",
        )
        .unwrap();
        let prog = dir.path().join("fr");
        super::elf::tests::cc(
            &[
                "-o",
                prog.to_str().unwrap(),
                src.to_str().unwrap(),
                "-Wl,--no-as-needed",
                &format!("-L{}", lib_dir.display()),
                "-l:libfakeroot-0.so",
            ],
            dir.path(),
        );
        let root = unpack(&build_initramfs(&fake_agent(), &payload(Some(prog), None)).unwrap());
        let r = root.path();
        assert!(r
            .join("usr/lib/x86_64-linux-gnu/libfakeroot/libfakeroot-0.so")
            .is_file());
        let out = chroot_run(r, &["/bpfcompat/bin/fr"]);
        assert_eq!(String::from_utf8_lossy(&out.stdout), "ok\n", "{out:?}");
        // Without the cache the loader cannot find it: the cache is what works.
        std::fs::remove_file(r.join("etc/ld.so.cache")).unwrap();
        let out = chroot_run(r, &["/bpfcompat/bin/fr"]);
        assert!(!out.status.success());
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("libfakeroot-0.so"),
            "{out:?}"
        );
    }

    #[test]
    fn modules_come_in_an_archive_of_their_own_with_their_load_order() {
        let bytes = modules_archive(vec![
            GuestModule {
                name: "nf_defrag_ipv4".into(),
                why: "needed by nf_conntrack".into(),
                object: b"\x7fELF one".to_vec(),
            },
            GuestModule {
                name: "nf_conntrack".into(),
                why: "--modules".into(),
                object: b"\x7fELF two".to_vec(),
            },
        ]);
        let root = unpack(&bytes);
        let r = root.path();
        assert_eq!(
            std::fs::read(r.join("bpfcompat/modules/001-nf_conntrack.ko")).unwrap(),
            b"\x7fELF two"
        );
        let list: ModuleLoadRequest =
            serde_json::from_slice(&std::fs::read(r.join("bpfcompat/modules/load.json")).unwrap())
                .unwrap();
        let order: Vec<&str> = list.modules.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(order, ["nf_defrag_ipv4", "nf_conntrack"]);
        assert_eq!(
            list.modules[0].path,
            "/bpfcompat/modules/000-nf_defrag_ipv4.ko"
        );
    }

    #[test]
    fn errors_name_the_missing_file() {
        let missing = PathBuf::from("/nonexistent/loader");
        let err =
            build_initramfs(&fake_agent(), &payload(Some(missing.clone()), None)).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("--bin") && msg.contains("/nonexistent/loader"),
            "{msg}"
        );

        let err =
            build_initramfs(Path::new("/nonexistent/agent"), &payload(None, None)).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/agent"), "{err}");

        let err = build_initramfs(
            &fake_agent(),
            &payload(None, Some("/nonexistent/prog.o".into())),
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("--artifact /nonexistent/prog.o"),
            "{err}"
        );
    }
}
