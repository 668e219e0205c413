//! The guest agent for arm64 guests, cross-built once for the tests by the
//! script users build it with (`scripts/build-guest.sh`), in a target
//! directory of its own: `cargo test` holds the lock of the main one.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// The static aarch64 agent, built (or found up to date) on first use;
/// tests hand it to bpfcompat as `BPFCOMPAT_GUEST_AARCH64`.
pub fn aarch64_agent() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
            let target_dir = root.join("target/cross");
            let out = Command::new("bash")
                .arg(root.join("scripts/build-guest.sh"))
                .args(["aarch64", "debug"])
                .env("CARGO_TARGET_DIR", &target_dir)
                .output()
                .expect("bash runs scripts/build-guest.sh");
            assert!(
                out.status.success(),
                "scripts/build-guest.sh aarch64 failed (run scripts/install-deps.sh first):\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            target_dir.join("aarch64-unknown-linux-gnu/debug/bpfcompat-guest")
        })
        .clone()
}
