//! Unpacking a job's newc archive over `/`, as the kernel unpacks an
//! initramfs: directories, regular files, symlinks and device nodes, in
//! archive order; archives may follow each other (the payload, then the
//! modules), separated by zero padding.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

const MAGIC: &[u8] = b"070701";
const HEADER_LEN: usize = 110;
const TRAILER: &str = "TRAILER!!!";
const S_IFMT: u32 = 0o170_000;
const S_IFDIR: u32 = 0o040_000;
const S_IFREG: u32 = 0o100_000;
const S_IFLNK: u32 = 0o120_000;
const S_IFCHR: u32 = 0o020_000;

/// Unpacks every archive in `bytes` under `root`; the number of entries.
pub fn unpack(bytes: &[u8], root: &Path) -> Result<usize, String> {
    let mut at = 0;
    let mut entries = 0;
    while let Some(skip) = bytes[at..].iter().position(|&b| b != 0) {
        at += skip;
        let entry = Entry::parse(bytes, at)?;
        at = entry.next;
        if entry.name != TRAILER {
            entry.create(root)?;
            entries += 1;
        }
    }
    Ok(entries)
}

struct Entry<'a> {
    name: String,
    mode: u32,
    data: &'a [u8],
    rdev: (u32, u32),
    next: usize,
}

impl<'a> Entry<'a> {
    fn parse(bytes: &'a [u8], at: usize) -> Result<Entry<'a>, String> {
        let header = bytes
            .get(at..at + HEADER_LEN)
            .filter(|h| h.starts_with(MAGIC))
            .ok_or_else(|| format!("no newc header at offset {at} of the job"))?;
        let field = |n: usize| {
            let hex = &header[6 + 8 * n..14 + 8 * n];
            std::str::from_utf8(hex)
                .ok()
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("a bad newc header field at offset {at} of the job"))
        };
        let (mode, filesize, namesize) = (field(1)?, field(6)? as usize, field(11)? as usize);
        let name_at = at + HEADER_LEN;
        let data_at = align4(name_at + namesize);
        let next = align4(data_at + filesize);
        let (Some(name), Some(data)) = (
            bytes.get(name_at..name_at + namesize.saturating_sub(1)),
            bytes.get(data_at..data_at + filesize),
        ) else {
            return Err(format!("the job's archive is cut short at offset {at}"));
        };
        Ok(Entry {
            name: String::from_utf8_lossy(name).into_owned(),
            mode,
            data,
            rdev: (field(9)?, field(10)?),
            next,
        })
    }

    fn create(&self, root: &Path) -> Result<(), String> {
        let path = root.join(self.name.trim_start_matches('/'));
        let fail = |what: &str, e: std::io::Error| format!("{what} {}: {e}", path.display());
        let permissions = std::fs::Permissions::from_mode(self.mode & 0o7777);
        match self.mode & S_IFMT {
            S_IFDIR => {
                std::fs::create_dir_all(&path).map_err(|e| fail("mkdir", e))?;
                std::fs::set_permissions(&path, permissions).map_err(|e| fail("chmod", e))
            }
            S_IFREG => {
                replace(&path);
                std::fs::write(&path, self.data).map_err(|e| fail("write", e))?;
                std::fs::set_permissions(&path, permissions).map_err(|e| fail("chmod", e))
            }
            S_IFLNK => {
                replace(&path);
                let target = PathBuf::from(std::ffi::OsStr::from_bytes(self.data));
                std::os::unix::fs::symlink(target, &path).map_err(|e| fail("symlink", e))
            }
            S_IFCHR if !path.exists() => mknod(&path, self.mode, self.rdev),
            S_IFCHR => Ok(()),
            other => Err(format!("{}: unsupported file type {other:o}", self.name)),
        }
    }
}

fn align4(n: usize) -> usize {
    n.div_ceil(4) * 4
}

/// Like the kernel's initramfs unpacker: a later entry replaces an earlier one.
fn replace(path: &Path) {
    if let Some(parent) = path.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    let _ = std::fs::remove_file(path);
}

fn mknod(path: &Path, mode: u32, (major, minor): (u32, u32)) -> Result<(), String> {
    let c = CString::new(path.as_os_str().as_bytes()).map_err(|e| e.to_string())?;
    // SAFETY: a valid NUL-terminated path.
    let rc = unsafe { libc::mknod(c.as_ptr(), mode, libc::makedev(major, minor)) };
    if rc == 0 {
        Ok(())
    } else {
        Err(format!(
            "mknod {}: {}",
            path.display(),
            std::io::Error::last_os_error()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One newc entry, as the host's writer lays it out.
    fn entry(name: &str, mode: u32, data: &[u8]) -> Vec<u8> {
        let mut out = format!(
            "070701{:08x}{mode:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}",
            1, 0, 0, 1, 0, data.len(), 0, 0, 0, 0, name.len() + 1, 0
        )
        .into_bytes();
        out.extend_from_slice(name.as_bytes());
        out.push(0);
        out.resize(align4(out.len()), 0);
        out.extend_from_slice(data);
        out.resize(align4(out.len()), 0);
        out
    }

    #[test]
    fn concatenated_archives_unpack_in_order() {
        let root = tempfile::tempdir().unwrap();
        let mut job = entry("bpfcompat", S_IFDIR | 0o755, b"");
        job.extend(entry("bpfcompat/request.json", S_IFREG | 0o644, b"{}"));
        job.extend(entry("bpfcompat/bin/tool", S_IFREG | 0o755, b"old"));
        job.extend(entry(TRAILER, 0, b""));
        job.extend([0u8; 12]);
        job.extend(entry("bpfcompat/bin/tool", S_IFREG | 0o700, b"new"));
        job.extend(entry("bpfcompat/link", S_IFLNK | 0o777, b"bin/tool"));
        job.extend(entry(TRAILER, 0, b""));
        assert_eq!(unpack(&job, root.path()), Ok(5));
        let tool = root.path().join("bpfcompat/bin/tool");
        assert_eq!(std::fs::read(&tool).unwrap(), b"new");
        let mode = std::fs::metadata(&tool).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        assert_eq!(
            std::fs::read_link(root.path().join("bpfcompat/link")).unwrap(),
            Path::new("bin/tool")
        );
    }

    #[test]
    fn a_cut_archive_is_an_error_naming_the_offset() {
        let root = tempfile::tempdir().unwrap();
        let job = entry("file", S_IFREG | 0o644, b"0123456789");
        let err = unpack(&job[..job.len() - 4], root.path()).unwrap_err();
        assert!(err.contains("cut short at offset 0"), "{err}");
        let err = unpack(b"garbage", root.path()).unwrap_err();
        assert!(err.contains("no newc header"), "{err}");
    }
}
