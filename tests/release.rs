//! The release archive as it ships, not `cargo run`: the archive that
//! `scripts/build-release.sh` writes to `dist/` (or `$BPFCOMPAT_DIST`), which
//! the release workflow publishes. Its binaries need no shared glibc (or none
//! newer than 2.31), the action's install step installs it, and the installed
//! binaries check objects and run a command on a real kernel downloaded over
//! loopback HTTP.
//!
//! Ignored by a plain `cargo test` (the archive is a release build); `.ci/run`
//! and the release workflow build it, then run
//! `cargo test --test release -- --ignored`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use bpfcompat_testkit::http::{Plan, TestServer};
use common::*;
use object::elf::{DT_NEEDED, PT_INTERP};
use object::read::elf::{Dyn, ElfFile64, FileHeader, ProgramHeader};
use object::Endianness;

const ARCHIVE: &str = "bpfcompat-x86_64-linux.tar.gz";
const BINARIES: [&str; 3] = ["bpfcompat", "bpfcompat-guest", "bpfcompat-guest-aarch64"];
/// The oldest glibc a dynamically linked release may need: Debian 11's.
const OLDEST_GLIBC: (u32, u32) = (2, 31);

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn dist() -> PathBuf {
    let dist = std::env::var_os("BPFCOMPAT_DIST")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("dist"));
    assert!(
        dist.join(ARCHIVE).is_file(),
        "no {ARCHIVE} in {}: run scripts/build-release.sh first",
        dist.display()
    );
    dist
}

/// The archive's files, unpacked into a temporary directory.
fn unpack() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new("tar")
        .arg("-xzf")
        .arg(dist().join(ARCHIVE))
        .arg("-C")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    dir
}

/// What a binary needs from the system at run time.
#[derive(Debug)]
struct Linkage {
    /// `e_machine`: 62 for x86-64, 183 for AArch64.
    machine: u16,
    interpreter: Option<String>,
    needed: Vec<String>,
    /// The `GLIBC_x.y` versions it asks for, newest last.
    glibc: Vec<(u32, u32)>,
}

fn linkage(path: &Path) -> Linkage {
    let data = std::fs::read(path).unwrap();
    let data = &*data;
    let elf = ElfFile64::<Endianness>::parse(data).unwrap();
    let endian = elf.endian();
    let interpreter = elf.elf_program_headers().iter().find_map(|ph| {
        (ph.p_type(endian) == PT_INTERP).then(|| {
            let bytes = ph.data(endian, data).unwrap();
            String::from_utf8_lossy(bytes)
                .trim_end_matches('\0')
                .to_owned()
        })
    });
    let machine = elf.elf_header().e_machine(endian);
    let sections = elf.elf_section_table();
    let mut needed = Vec::new();
    if let Some((dynamic, link)) = sections.dynamic(endian, data).unwrap() {
        let strings = sections.strings(endian, data, link).unwrap();
        for d in dynamic
            .iter()
            .filter(|d| d.tag32(endian) == Some(DT_NEEDED))
        {
            let name = d.string(endian, strings).unwrap();
            needed.push(String::from_utf8_lossy(name).into_owned());
        }
    }
    let mut glibc = Vec::new();
    if let Some((mut verneed, link)) = sections.gnu_verneed(endian, data).unwrap() {
        let strings = sections.strings(endian, data, link).unwrap();
        while let Some((_, mut aux)) = verneed.next().unwrap() {
            while let Some(aux) = aux.next().unwrap() {
                let name = String::from_utf8_lossy(aux.name(endian, strings).unwrap());
                if let Some((major, minor)) =
                    name.strip_prefix("GLIBC_").and_then(|v| v.split_once('.'))
                {
                    let minor = minor.split('.').next().unwrap();
                    glibc.push((major.parse().unwrap(), minor.parse().unwrap()));
                }
            }
        }
    }
    glibc.sort();
    Linkage {
        machine,
        interpreter,
        needed,
        glibc,
    }
}

#[test]
#[ignore = "needs dist/ from scripts/build-release.sh; .ci/run runs it"]
fn release_binaries_are_static_or_need_glibc_2_31_at_most() {
    let dir = unpack();
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names, BINARIES,
        "the archive holds the host's binaries and the arm64 agent"
    );
    for name in BINARIES {
        let l = linkage(&dir.path().join(name));
        let is_static = l.interpreter.is_none() && l.needed.is_empty();
        let newest = l.glibc.last().copied().unwrap_or_default();
        assert!(
            is_static || newest <= OLDEST_GLIBC,
            "{name} is dynamically linked ({l:?}) and needs GLIBC_{}.{}, newer than {}.{}",
            newest.0,
            newest.1,
            OLDEST_GLIBC.0,
            OLDEST_GLIBC.1
        );
        // The agents are /init: static, they bring no library into the guest.
        if name.starts_with("bpfcompat-guest") {
            assert!(is_static, "{name} is static: {l:?}");
        }
    }
    let machine = |name: &str| linkage(&dir.path().join(name)).machine;
    assert_eq!(machine("bpfcompat-guest"), 62);
    assert_eq!(machine("bpfcompat-guest-aarch64"), 183);
    // The linkage check itself tells a dynamic program from a static one.
    let bash = linkage(Path::new("/bin/bash"));
    assert!(bash.interpreter.is_some() && bash.needed.iter().any(|n| n == "libc.so.6"));
    assert!(bash.glibc.last().is_some_and(|v| v.0 == 2), "{bash:?}");
}

/// The CycloneDX SBOM beside the archive describes bpfcompat with the crates
/// Cargo.lock pins, at their locked versions.
#[test]
#[ignore = "needs dist/ from scripts/build-release.sh; .ci/run runs it"]
fn the_sbom_lists_the_locked_crates() {
    let path = dist().join("bpfcompat-x86_64-linux.cdx.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (build-release.sh writes it when cargo-cyclonedx is installed)",
            path.display()
        )
    });
    let sbom: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(sbom["bomFormat"], "CycloneDX");
    assert_eq!(sbom["metadata"]["component"]["name"], "bpfcompat");
    let lock = std::fs::read_to_string(root().join("Cargo.lock")).unwrap();
    let locked: Vec<(&str, &str)> = lock
        .split("[[package]]")
        .skip(1)
        .map(|p| {
            let field = |k: &str| {
                p.lines()
                    .find_map(|l| l.strip_prefix(&format!("{k} = \"")))
                    .and_then(|v| v.strip_suffix('"'))
                    .unwrap()
            };
            (field("name"), field("version"))
        })
        .collect();
    let components = sbom["components"].as_array().unwrap();
    for c in components {
        let pair = (c["name"].as_str().unwrap(), c["version"].as_str().unwrap());
        assert!(locked.contains(&pair), "{pair:?} is not in Cargo.lock");
    }
    for name in ["bpfcompat-guest", "libbpf-sys", "ureq", "rustls", "tokio"] {
        assert!(
            components.iter().any(|c| c["name"] == name),
            "the SBOM lists {name}"
        );
    }
}

/// `action/run.sh install`, as the action's install step runs it, from a
/// release directory on disk instead of GitHub.
fn action_install(bin_dir: &Path) -> String {
    let github = tempfile::tempdir().unwrap();
    let out = Command::new("bash")
        .arg(root().join("action/run.sh"))
        .arg("install")
        .env("BPFCOMPAT_VERSION", "0.1.0")
        .env("BPFCOMPAT_BIN_DIR", bin_dir)
        .env(
            "BPFCOMPAT_RELEASE_BASE_URL",
            format!("file://{}", dist().display()),
        )
        .env("GITHUB_PATH", github.path().join("path"))
        .env("GITHUB_OUTPUT", github.path().join("output"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = std::fs::read_to_string(github.path().join("path")).unwrap();
    assert_eq!(path.trim(), bin_dir.to_str().unwrap(), "bin dir on PATH");
    stdout
}

#[test]
#[ignore = "needs dist/ from scripts/build-release.sh; .ci/run runs it"]
fn the_installed_release_checks_objects_and_runs_commands_on_a_real_kernel() {
    let _boot = boot_lock();
    let s = Scratch::new();
    let bin_dir = s.path("bin");
    let stdout = action_install(&bin_dir);
    let digest = std::fs::read_to_string(dist().join(format!("{ARCHIVE}.sha256"))).unwrap();
    let digest = digest.split_whitespace().next().unwrap();
    let version = format!("bpfcompat {}", env!("CARGO_PKG_VERSION"));
    assert!(
        stdout.contains(&format!("installed {version} from "))
            && stdout.contains(&format!("{ARCHIVE}, sha256 {digest}")),
        "the install step names the version and digest it installed:\n{stdout}"
    );

    // The kernel comes over HTTP from `localhost`: the static binary
    // resolves the name (glibc's built-in `files`) and downloads it.
    let server = TestServer::start(
        std::fs::read(kernels_dir().join(K61.file)).unwrap(),
        Plan::default(),
    );
    let url = server.url("vmlinuz").replace("127.0.0.1", "localhost");
    let matrix = s.write(
        "release.yaml",
        &format!(
            "name: release\nkernels:\n  - id: {}\n    source:\n      url: {url}\n      sha256: {}\n",
            K61.id, K61.sha256
        ),
    );
    let corpus = s.path("corpus");
    let built = Command::new("sh")
        .arg(root().join("tests/bpf/build.sh"))
        .arg(&corpus)
        .status()
        .unwrap();
    assert!(built.success(), "tests/bpf/build.sh");

    let run = |args: &[&str]| {
        let mut program = Command::new(bin_dir.join("bpfcompat"));
        // The agent beside the installed binary, nowhere else.
        program.env_remove("BPFCOMPAT_GUEST");
        s.run_program(program, &s.path("report.json"), args, &[])
    };
    let objects = ["core_ok", "kprobe"].map(|o| corpus.join(format!("{o}.bpf.o")));
    let mut args = vec!["test", "--matrix", matrix.to_str().unwrap()];
    for o in &objects {
        args.extend(["--artifact", o.to_str().unwrap()]);
    }
    let r = run(&args);
    assert_eq!(r.code, 0, "{}", r.context());
    assert_eq!(server.requests(), 1);
    let checks = r.target(K61.id)["checks"].as_array().unwrap();
    assert_eq!(checks.len(), objects.len(), "{}", r.context());
    assert!(
        checks.iter().all(|c| c["status"] == "pass"),
        "{}",
        r.context()
    );

    let r = run(&[
        "test-command",
        "--cmd",
        "uname -r",
        "--matrix",
        matrix.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "{}", r.context());
    assert!(
        r.command_test(K61.id)["stdout_tail"]
            .as_str()
            .unwrap()
            .contains(K61.release),
        "{}",
        r.context()
    );

    // The static agent brings no library of its own into the initramfs:
    // every Rust program that links glibc dynamically needs libgcc_s; bash
    // and busybox do not.
    for entry in std::fs::read_dir(s.path("work/runs")).unwrap() {
        let cpio = entry.unwrap().path().join("initramfs.cpio");
        let list = Command::new("cpio")
            .args(["-t", "--quiet"])
            .stdin(std::fs::File::open(&cpio).unwrap())
            .output()
            .unwrap();
        let list = String::from_utf8_lossy(&list.stdout);
        assert!(list.lines().any(|l| l == "init"), "{list}");
        assert!(
            !list.contains("libgcc_s"),
            "{} holds the agent's libraries:\n{list}",
            cpio.display()
        );
    }

    // An arm64 kernel runs with the arm64 agent the archive ships beside it.
    let arm64 = s.write(
        "arm64.yaml",
        &format!(
            "name: arm64\nkernels:\n  - id: {}\n    arch: arm64\n    source:\n      file: {}\n",
            ARM64_61.id,
            ARM64_61.path().display()
        ),
    );
    let program = |mut c: Command| {
        c.env_remove("BPFCOMPAT_GUEST_AARCH64");
        c
    };
    let kprobe = corpus.join("kprobe.bpf.o");
    let r = s.run_program(
        program(Command::new(bin_dir.join("bpfcompat"))),
        &s.path("arm64.json"),
        &[
            "test",
            "--matrix",
            arm64.to_str().unwrap(),
            "--artifact",
            kprobe.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(r.code, 0, "{}", r.context());
    assert_eq!(r.target(ARM64_61.id)["kernel"]["arch"], "arm64");
}

/// The static binary resolves names with glibc's built-in `files` and `dns`
/// whatever the host's nsswitch.conf names (a module there would be loaded
/// with the host's shared glibc): under `hosts: dns`, where the host's own
/// programs cannot resolve `localhost`, it still reads /etc/hosts.
#[test]
#[ignore = "needs dist/ from scripts/build-release.sh; .ci/run runs it"]
fn the_release_binary_resolves_names_without_the_hosts_nss_modules() {
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("not root: no mount namespace for another nsswitch.conf");
        return;
    }
    let dir = unpack();
    let s = Scratch::new();
    let server = TestServer::start(
        std::fs::read(kernels_dir().join(TINY.file)).unwrap(),
        Plan::default(),
    );
    let url = server.url("vmlinuz").replace("127.0.0.1", "localhost");
    let matrix = s.write(
        "nss.yaml",
        &format!("name: nss\nkernels:\n  - id: tiny\n    source:\n      url: {url}\n"),
    );
    let conf = s.write("nsswitch.conf", "hosts: dns\n");
    let with_dns_only = |argv: &[&Path]| {
        Command::new("unshare")
            .args([
                "-m",
                "sh",
                "-c",
                r#"mount --bind "$0" /etc/nsswitch.conf && exec "$@""#,
            ])
            .arg(&conf)
            .args(argv)
            .output()
            .unwrap()
    };
    let getent = with_dns_only(&[
        Path::new("getent"),
        Path::new("hosts"),
        Path::new("localhost"),
    ]);
    assert!(
        !getent.status.success(),
        "the host's getent resolved localhost: {getent:?}"
    );
    let fetch = with_dns_only(&[
        &dir.path().join("bpfcompat"),
        Path::new("kernels"),
        Path::new("fetch"),
        Path::new("--matrix"),
        &matrix,
        Path::new("--cache-dir"),
        &s.path("cache"),
    ]);
    let stdout = String::from_utf8_lossy(&fetch.stdout);
    assert!(
        fetch.status.success() && stdout.contains("cached") && !stdout.contains("ERROR"),
        "{fetch:?}"
    );
    assert_eq!(server.requests(), 1);
}
