//! scripts/fetch-test-kernels.sh, which makes the test kernels where there
//! is no shared/kernels (GitHub's runners): present files are checked
//! without a network, and the packages fetched from the Debian mirror this
//! machine's apt names come out as the digests the tests pin.
//!
//! The tiny kernel's build (minutes, a whole kernel) is not run here: the
//! release workflow runs it, and the script compares its digest itself.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod common;

use bpfcompat_testkit::sha256_hex;
use common::{output_text, ALL, ARM64, K61_DEB, MODULES_72, TINY};

fn script(args: &[&Path], env: &[(&str, &str)]) -> Output {
    Command::new("bash")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/fetch-test-kernels.sh"))
        .args(args)
        .env_remove("BPFCOMPAT_DEBIAN_MIRROR")
        .env_remove("BPFCOMPAT_DEBIAN_SECURITY_MIRROR")
        .envs(env.iter().copied())
        .output()
        .expect("bash runs")
}

/// Every file the tests use, with the digest they pin.
fn pinned() -> Vec<(&'static str, &'static str)> {
    ALL.iter()
        .map(|k| (k.file, k.sha256))
        .chain([
            (K61_DEB.file, K61_DEB.sha256),
            (MODULES_72.file, MODULES_72.sha256),
        ])
        .chain(ARM64.iter().map(|k| (k.file, k.sha256)))
        .collect()
}

fn shared_kernels() -> PathBuf {
    std::env::var_os("BPFCOMPAT_TEST_KERNELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/kernels"))
}

#[test]
fn the_script_reproduces_the_test_kernels() {
    let shared = shared_kernels();
    let have_files = pinned().iter().all(|(f, _)| shared.join(f).is_file());
    if have_files {
        // Present and right: checked, left alone, and no mirror is asked
        // (the one named here listens nowhere).
        let nowhere = "http://127.0.0.1:1/debian";
        let out = script(
            &[&shared],
            &[
                ("BPFCOMPAT_DEBIAN_MIRROR", nowhere),
                ("BPFCOMPAT_DEBIAN_SECURITY_MIRROR", nowhere),
            ],
        );
        assert!(out.status.success(), "{}", output_text(&out));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(stdout.matches(": present").count(), 8, "{stdout}");
        assert!(stdout.contains("every test kernel is in"), "{stdout}");
    }

    // The packages from the mirror apt is configured with: into an empty
    // folder, each file checked against the digest the tests pin.
    let dir = tempfile::tempdir().unwrap();
    let out = script(&[Path::new("--no-build"), dir.path()], &[]);
    let unreachable = String::from_utf8_lossy(&out.stderr).contains("cannot download")
        || String::from_utf8_lossy(&out.stderr).contains("no Debian mirror");
    match (out.status.success(), unreachable) {
        (true, _) => {}
        (false, true) if have_files => {
            eprintln!(
                "SKIPPED the download half: no Debian mirror is reachable from here; the \
                 present test kernels were checked offline\n{}",
                output_text(&out)
            );
            return;
        }
        (false, true) => {
            eprintln!(
                "SKIPPED: neither the test kernels ({}) nor a Debian mirror are reachable, \
                 so scripts/fetch-test-kernels.sh cannot be checked here\n{}",
                shared.display(),
                output_text(&out)
            );
            return;
        }
        (false, false) => panic!("{}", output_text(&out)),
    }
    for (file, digest) in pinned() {
        let path = dir.path().join(file);
        if file == TINY.file {
            assert!(!path.exists(), "--no-build builds nothing");
            continue;
        }
        assert_eq!(sha256_hex(&std::fs::read(&path).unwrap()), digest, "{file}");
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("{}: missing, not built (--no-build)", TINY.file)),
        "{stdout}"
    );
    // A second run has everything it needs and asks nothing.
    let nowhere = "http://127.0.0.1:1/debian";
    let again = script(
        &[Path::new("--no-build"), dir.path()],
        &[
            ("BPFCOMPAT_DEBIAN_MIRROR", nowhere),
            ("BPFCOMPAT_DEBIAN_SECURITY_MIRROR", nowhere),
        ],
    );
    assert!(again.status.success(), "{}", output_text(&again));
}

/// Without a mirror of its own or one in apt's sources (Ubuntu's runners),
/// the script says what to set, before downloading anything.
#[test]
fn without_a_debian_mirror_the_script_says_what_to_set() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new("bash")
        .arg("-c")
        .arg(
            // A machine whose apt names no Debian source: an empty /etc/apt
            // in a mount namespace of its own (tests run as root).
            "unshare -m bash -c 'mount -t tmpfs none /etc/apt && bash \"$SCRIPT\" --print-mirrors'",
        )
        .env(
            "SCRIPT",
            Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/fetch-test-kernels.sh"),
        )
        .current_dir(dir.path())
        .env_remove("BPFCOMPAT_DEBIAN_MIRROR")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{}", output_text(&out));
    assert!(
        stderr.contains("no Debian mirror: set BPFCOMPAT_DEBIAN_MIRROR"),
        "{stderr}"
    );
}
