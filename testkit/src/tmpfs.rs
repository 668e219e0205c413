//! A small file system for one test: a disk that fills up on cue.

use std::io::Write;
use std::path::PathBuf;
use std::process::Command;

/// A tmpfs of a given size mounted for one test, unmounted when dropped.
pub struct Tmpfs(PathBuf);

impl Tmpfs {
    pub fn mount(path: PathBuf, size: &str) -> Tmpfs {
        std::fs::create_dir_all(&path).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&path)
            .output()
            .expect("mount(8) runs");
        assert!(
            out.status.success(),
            "cannot mount a {size} tmpfs on {} (these tests run as root and need to mount): {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
        Tmpfs(path)
    }

    /// Writes a file until the file system is full.
    pub fn fill(&self) {
        let mut filler = std::fs::File::create(self.0.join("filler")).unwrap();
        let chunk = vec![0u8; 1 << 20];
        let err = loop {
            if let Err(e) = filler.write_all(&chunk) {
                break e;
            }
        };
        assert_eq!(err.raw_os_error(), Some(libc::ENOSPC), "{err}");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazily: nothing of ours still uses it, and the scratch directory
        // is removed next.
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}
