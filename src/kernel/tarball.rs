//! Reading a tarball (a `.deb`'s data member, an image layer) front to back
//! once, checking every entry for path traversal, whether or not it is the
//! one wanted, and offering the kernel image candidates and modules to a
//! [`Contents`].

use std::io::{self, Read};

use super::compress::{decompressor, Compression};
use super::contents::Contents;
use super::error::KernelError;
use super::pick::is_unsafe_path;

/// Read one tarball to its end, checking every entry for path traversal, and
/// offer the entries `contents` wants to it.
pub(crate) fn scan_tar(
    member: impl Read,
    compression: Compression,
    origin: &str,
    member_name: &str,
    mut contents: Option<&mut Contents<'_>>,
) -> Result<(), KernelError> {
    let read_err = |entry: String| {
        move |err| KernelError::PackageRead {
            origin: origin.to_owned(),
            entry,
            err,
        }
    };
    let decoder = decompressor(compression, member).map_err(read_err(member_name.to_owned()))?;
    let mut tar = tar::Archive::new(decoder);
    let entries = tar.entries().map_err(read_err(member_name.to_owned()))?;
    for entry in entries {
        let mut entry = entry.map_err(read_err(member_name.to_owned()))?;
        let path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let named = || format!("{member_name}: {path}");
        if is_unsafe_path(&entry.path_bytes()) {
            return Err(KernelError::UnsafeEntry {
                origin: origin.to_owned(),
                entry: named(),
            });
        }
        let kind = entry.header().entry_type();
        if kind.is_hard_link() {
            // A hard link names another entry of the archive: same rules.
            if let Some(target) = entry.link_name_bytes() {
                if is_unsafe_path(&target) {
                    return Err(KernelError::UnsafeEntry {
                        origin: origin.to_owned(),
                        entry: format!(
                            "{} (hard link to {})",
                            named(),
                            String::from_utf8_lossy(&target)
                        ),
                    });
                }
            }
        }
        let Some(contents) = contents.as_deref_mut().filter(|c| c.wants(&path)) else {
            continue;
        };
        let regular = matches!(kind, tar::EntryType::Regular | tar::EntryType::Continuous);
        let size = entry.size();
        contents.offer(&path, named(), regular, size, &mut entry)?;
    }
    // Read the compressed stream to its end, so its own checksums are checked.
    let mut decoder = tar.into_inner();
    io::copy(&mut decoder, &mut io::sink()).map_err(read_err(member_name.to_owned()))?;
    Ok(())
}
