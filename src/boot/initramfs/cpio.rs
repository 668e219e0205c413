//! A writer for the "newc" cpio format, the one the kernel unpacks as an
//! initramfs (`Documentation/driver-api/early-userspace/buffer-format.rst`).
//!
//! Entries are kept by normalised path (no leading `/`), so adding a path twice
//! replaces the first entry. Missing parent directories are created (mode 0755)
//! when an entry is added; an implicit parent never replaces an existing entry,
//! so a symlink added as `lib64 -> lib` stays a symlink. The output is
//! deterministic: entries in path order, which puts every directory before
//! what it contains, inode numbers by position, mtime 0, owner root.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::Path;

const S_IFDIR: u32 = 0o040_000;
const S_IFREG: u32 = 0o100_000;
const S_IFLNK: u32 = 0o120_000;
const S_IFCHR: u32 = 0o020_000;
const PERMISSION_BITS: u32 = 0o7777;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Entry {
    Dir { mode: u32 },
    File { data: Vec<u8>, mode: u32 },
    Symlink { target: String },
    CharDevice { major: u32, minor: u32, mode: u32 },
}

/// An in-memory newc archive.
#[derive(Debug, Default, Clone)]
pub struct Archive {
    /// By normalised path; implicit parent directories included.
    entries: BTreeMap<String, Entry>,
}

impl Archive {
    pub fn new() -> Self {
        Self::default()
    }

    /// A directory with permission bits `mode`.
    pub fn add_dir(&mut self, path: &str, mode: u32) {
        self.insert(path, Entry::Dir { mode });
    }

    /// A regular file with the given contents and permission bits.
    pub fn add_file(&mut self, path: &str, data: Vec<u8>, mode: u32) {
        self.insert(path, Entry::File { data, mode });
    }

    /// A regular file copied from the host (symlinks followed). `mode: None`
    /// keeps the host file's permission bits.
    pub fn add_host_file(&mut self, path: &str, host: &Path, mode: Option<u32>) -> io::Result<()> {
        let data = std::fs::read(host)?;
        let mode = match mode {
            Some(mode) => mode,
            None => {
                use std::os::unix::fs::PermissionsExt;
                std::fs::metadata(host)?.permissions().mode() & PERMISSION_BITS
            }
        };
        self.add_file(path, data, mode);
        Ok(())
    }

    /// A symbolic link; `target` is stored as given (relative or absolute).
    pub fn add_symlink(&mut self, path: &str, target: &str) {
        self.insert(
            path,
            Entry::Symlink {
                target: target.to_owned(),
            },
        );
    }

    /// A character device node.
    pub fn add_char_device(&mut self, path: &str, major: u32, minor: u32, mode: u32) {
        self.insert(path, Entry::CharDevice { major, minor, mode });
    }

    /// Whether something (of any type) is at `path`.
    pub fn contains(&self, path: &str) -> bool {
        self.entries.contains_key(&normalise(path))
    }

    fn insert(&mut self, path: &str, entry: Entry) {
        let path = normalise(path);
        assert!(!path.is_empty(), "cpio entry without a name");
        let mut parent = path.as_str();
        while let Some((dir, _)) = parent.rsplit_once('/') {
            self.entries
                .entry(dir.to_owned())
                .or_insert(Entry::Dir { mode: 0o755 });
            parent = dir;
        }
        self.entries.insert(path, entry);
    }

    /// The entries of `self` that `base` lacks or has otherwise: unpacked
    /// over `base`, they make `self`.
    pub fn difference(&self, base: &Archive) -> Archive {
        let entries = self
            .entries
            .iter()
            .filter(|(path, entry)| base.entries.get(*path) != Some(entry))
            .map(|(path, entry)| (path.clone(), entry.clone()))
            .collect();
        Archive { entries }
    }

    /// Writes the whole archive, trailer included.
    pub fn write_to(&self, mut out: impl Write) -> io::Result<()> {
        for (index, (name, entry)) in self.entries.iter().enumerate() {
            let ino = index as u32 + 1;
            let (mode, nlink, data, (rmajor, rminor)): (u32, u32, &[u8], (u32, u32)) = match entry {
                Entry::Dir { mode } => (S_IFDIR | (mode & PERMISSION_BITS), 2, &[], (0, 0)),
                Entry::File { data, mode } => (S_IFREG | (mode & PERMISSION_BITS), 1, data, (0, 0)),
                Entry::Symlink { target } => (S_IFLNK | 0o777, 1, target.as_bytes(), (0, 0)),
                Entry::CharDevice { major, minor, mode } => {
                    (S_IFCHR | (mode & PERMISSION_BITS), 1, &[], (*major, *minor))
                }
            };
            write_entry(&mut out, ino, mode, nlink, (rmajor, rminor), name, data)?;
        }
        write_entry(&mut out, 0, 0, 1, (0, 0), "TRAILER!!!", &[])?;
        out.flush()
    }

    /// The archive as bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write_to(&mut out)
            .expect("writing to a Vec cannot fail");
        out
    }
}

/// `/a//b/./c/` -> `a/b/c`; `..` removes the previous component.
fn normalise(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            part => parts.push(part),
        }
    }
    parts.join("/")
}

fn write_entry(
    out: &mut impl Write,
    ino: u32,
    mode: u32,
    nlink: u32,
    (rdev_major, rdev_minor): (u32, u32),
    name: &str,
    data: &[u8],
) -> io::Result<()> {
    let filesize = u32::try_from(data.len()).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{name} is larger than the 4 GiB a newc entry can hold"),
        )
    })?;
    let namesize = name.len() as u32 + 1;
    let header = format!(
        "070701{ino:08x}{mode:08x}{uid:08x}{gid:08x}{nlink:08x}{mtime:08x}{filesize:08x}\
         {devmajor:08x}{devminor:08x}{rdev_major:08x}{rdev_minor:08x}{namesize:08x}{check:08x}",
        uid = 0,
        gid = 0,
        mtime = 0,
        devmajor = 0,
        devminor = 0,
        check = 0,
    );
    debug_assert_eq!(header.len(), 110);
    out.write_all(header.as_bytes())?;
    out.write_all(name.as_bytes())?;
    out.write_all(&[0])?;
    // Header and name, then the data, each padded to a multiple of 4 bytes
    // (the header is 110 bytes and starts 4-aligned, so padding depends on
    // the name length only).
    pad(out, header.len() + name.len() + 1)?;
    out.write_all(data)?;
    pad(out, data.len())
}

/// Zero bytes from `len` up to the next multiple of 4.
fn pad(out: &mut impl Write, len: usize) -> io::Result<()> {
    out.write_all(&[0u8; 3][..(4 - len % 4) % 4])
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
    use std::process::{Command, Stdio};

    fn sample() -> Archive {
        let mut a = Archive::new();
        a.add_file(
            "/etc/passwd",
            b"root:x:0:0::/root:/bin/sh\n".to_vec(),
            0o644,
        );
        a.add_dir("/tmp", 0o1777);
        a.add_file("/bin/tool", vec![0x7f, b'E', b'L', b'F', 1], 0o755);
        a.add_symlink("/bin/sh", "tool");
        a.add_file("/odd/name-of-5", b"12345".to_vec(), 0o600);
        a.add_dir("/empty", 0o700);
        a
    }

    /// Runs the host's `cpio` on an archive: the independent reader our
    /// writer is checked against.
    pub(crate) fn cpio(args: &[&str], archive: &[u8], cwd: &Path) -> String {
        let mut child = Command::new("cpio")
            .args(args)
            .current_dir(cwd)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the host `cpio` tool is installed (scripts/install-deps.sh)");
        child.stdin.take().unwrap().write_all(archive).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "cpio {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    #[test]
    fn host_cpio_lists_entries_parents_first() {
        let bytes = sample().to_bytes();
        let dir = tempfile::tempdir().unwrap();
        let listing = cpio(&["-it", "--quiet"], &bytes, dir.path());
        let names: Vec<&str> = listing.lines().collect();
        assert_eq!(
            names,
            [
                "bin",
                "bin/sh",
                "bin/tool",
                "empty",
                "etc",
                "etc/passwd",
                "odd",
                "odd/name-of-5",
                "tmp"
            ]
        );
    }

    #[test]
    fn host_cpio_extracts_contents_modes_and_links() {
        let bytes = sample().to_bytes();
        let dir = tempfile::tempdir().unwrap();
        cpio(
            &["-id", "--quiet", "--no-absolute-filenames"],
            &bytes,
            dir.path(),
        );
        let root = dir.path();
        assert_eq!(
            std::fs::read(root.join("etc/passwd")).unwrap(),
            b"root:x:0:0::/root:/bin/sh\n"
        );
        assert_eq!(std::fs::read(root.join("odd/name-of-5")).unwrap(), b"12345");
        let mode = |p: &str| std::fs::symlink_metadata(root.join(p)).unwrap().mode() & 0o7777;
        assert_eq!(mode("bin/tool"), 0o755);
        assert_eq!(mode("odd/name-of-5"), 0o600);
        assert_eq!(mode("tmp"), 0o1777);
        assert_eq!(mode("empty"), 0o700);
        assert_eq!(mode("etc"), 0o755, "implicit parents are 0755");
        assert_eq!(
            std::fs::read_link(root.join("bin/sh")).unwrap(),
            Path::new("tool")
        );
        assert!(std::fs::metadata(root.join("empty")).unwrap().is_dir());
    }

    #[test]
    fn device_nodes_carry_their_numbers() {
        let mut a = Archive::new();
        a.add_char_device("/dev/console", 5, 1, 0o600);
        a.add_char_device("/dev/ttyS1", 4, 65, 0o660);
        let bytes = a.to_bytes();
        let dir = tempfile::tempdir().unwrap();
        // `-tv` prints `crw-------   1 root     root       5,   1 ...`.
        let listing = cpio(&["-itv", "--quiet"], &bytes, dir.path());
        let console = listing
            .lines()
            .find(|l| l.ends_with("dev/console"))
            .unwrap();
        assert!(console.starts_with("crw-------"), "{console}");
        assert!(console.contains("5,   1"), "{console}");
        let tty = listing.lines().find(|l| l.ends_with("dev/ttyS1")).unwrap();
        assert!(tty.starts_with("crw-rw----"), "{tty}");
        assert!(tty.contains("4,  65"), "{tty}");
        // Creating nodes needs CAP_MKNOD; check them on disk only where we have it.
        if unsafe { libc::geteuid() } == 0 {
            cpio(&["-id", "--quiet"], &bytes, dir.path());
            let meta = std::fs::metadata(dir.path().join("dev/ttyS1"));
            if let Ok(meta) = meta {
                assert!(meta.file_type().is_char_device());
                assert_eq!(meta.rdev(), libc::makedev(4, 65));
            }
        }
    }

    #[test]
    fn dedups_by_path_last_wins_and_implicit_parents_do_not_replace() {
        let mut a = Archive::new();
        a.add_file("a/b", b"one".to_vec(), 0o644);
        a.add_file("/a/b", b"two".to_vec(), 0o600);
        a.add_dir("a", 0o700); // explicit replaces the implicit parent
        a.add_symlink("lib64", "lib");
        a.add_file("lib64/ld.so", vec![1], 0o755); // goes through the symlink
        assert_eq!(a.entries.len(), 4);
        assert_eq!(
            a.entries.get("lib64"),
            Some(&Entry::Symlink {
                target: "lib".into()
            })
        );
        let dir = tempfile::tempdir().unwrap();
        let listing = cpio(&["-it", "--quiet"], &a.to_bytes(), dir.path());
        assert_eq!(listing, "a\na/b\nlib64\nlib64/ld.so\n");
        assert_eq!(
            a.entries.get("a/b"),
            Some(&Entry::File {
                data: b"two".to_vec(),
                mode: 0o600
            })
        );
        assert_eq!(a.entries.get("a"), Some(&Entry::Dir { mode: 0o700 }));
    }

    #[test]
    fn layout_is_aligned_deterministic_and_ends_with_trailer() {
        let one = sample().to_bytes();
        let two = sample().to_bytes();
        assert_eq!(one, two);
        assert_eq!(one.len() % 4, 0);
        let tail = String::from_utf8_lossy(&one[one.len() - 124..]);
        assert!(tail.contains("TRAILER!!!"), "{tail:?}");
        // Every header starts on a 4-byte boundary with the newc magic.
        let mut off = 0;
        let mut count = 0;
        while off < one.len() {
            assert_eq!(&one[off..off + 6], b"070701", "at {off}");
            let field = |i: usize| {
                let s = std::str::from_utf8(&one[off + 6 + i * 8..off + 14 + i * 8]).unwrap();
                usize::from_str_radix(s, 16).unwrap()
            };
            let (filesize, namesize) = (field(6), field(11));
            let name = &one[off + 110..off + 110 + namesize - 1];
            count += 1;
            if name == b"TRAILER!!!" {
                break;
            }
            off += (110 + namesize).div_ceil(4) * 4;
            off += filesize.div_ceil(4) * 4;
        }
        assert_eq!(count, sample().entries.len() + 1);
    }

    #[test]
    fn host_file_keeps_mode_unless_overridden() {
        let dir = tempfile::tempdir().unwrap();
        let host = dir.path().join("x");
        std::fs::write(&host, b"data").unwrap();
        std::fs::set_permissions(&host, std::fs::Permissions::from_mode(0o751)).unwrap();
        let mut a = Archive::new();
        a.add_host_file("/kept", &host, None).unwrap();
        a.add_host_file("/forced", &host, Some(0o644)).unwrap();
        assert_eq!(
            a.entries.get("kept"),
            Some(&Entry::File {
                data: b"data".to_vec(),
                mode: 0o751
            })
        );
        let err = a
            .add_host_file("/missing", &dir.path().join("nope"), None)
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        let out = tempfile::tempdir().unwrap();
        cpio(&["-id", "--quiet"], &a.to_bytes(), out.path());
        let mode = |p: &str| std::fs::metadata(out.path().join(p)).unwrap().mode() & 0o7777;
        assert_eq!(mode("kept"), 0o751);
        assert_eq!(mode("forced"), 0o644);
    }
}
