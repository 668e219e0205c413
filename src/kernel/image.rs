//! Recognising what a file is from its first bytes.

use std::io::{self, Read};

use super::SourceFormat;

/// How many leading bytes recognition needs: the bzImage magic ends at 0x206.
pub(crate) const HEAD_LEN: usize = 0x206;

const BZIMAGE_MAGIC_OFFSET: usize = 0x202;
const BZIMAGE_MAGIC: &[u8; 4] = b"HdrS";
const AR_MAGIC: &[u8; 8] = b"!<arch>\n";

/// Whether `head` (a file's first bytes) starts an x86 boot-protocol image:
/// "HdrS" at 0x202 (Documentation/arch/x86/boot.rst).
pub fn is_bzimage(head: &[u8]) -> bool {
    head.get(BZIMAGE_MAGIC_OFFSET..BZIMAGE_MAGIC_OFFSET + 4) == Some(BZIMAGE_MAGIC)
}

/// What a file is, from its first [`HEAD_LEN`] bytes. An ar archive counts as
/// a package here; whether it really is a Debian one is checked on extraction.
pub(crate) fn recognise(head: &[u8]) -> Option<SourceFormat> {
    if is_bzimage(head) {
        Some(SourceFormat::BzImage)
    } else if head.starts_with(AR_MAGIC) {
        Some(SourceFormat::Deb)
    } else if head.starts_with(&super::rpm::LEAD_MAGIC) {
        Some(SourceFormat::Rpm)
    } else {
        None
    }
}

/// Where the setup header keeps the offset (minus 0x200) of the kernel
/// version string (Documentation/arch/x86/boot.rst, field `kernel_version`).
const KERNEL_VERSION_FIELD: usize = 0x20e;
/// The boot protocol version; `kernel_version` is valid from 2.00 on.
const PROTOCOL_VERSION_FIELD: usize = 0x206;

/// The release (`uname -r`) of a bzImage, read from its setup header without
/// booting it: the first word of the version string, e.g. "6.1.0-47-cloud-amd64"
/// from "6.1.0-47-cloud-amd64 (debian-kernel@lists.debian.org) #1 SMP ...".
/// `None` when the file is not a bzImage or carries no version string.
pub fn release_of(path: &std::path::Path) -> io::Result<Option<String>> {
    let mut file = std::fs::File::open(path)?;
    let mut setup = Vec::new();
    // The setup code is at most 64 KiB (setup_sects is one byte of 512-byte sectors).
    (&mut file).take(0x10000 + 0x200).read_to_end(&mut setup)?;
    Ok(release_from_setup(&setup))
}

fn release_from_setup(setup: &[u8]) -> Option<String> {
    if !is_bzimage(setup) {
        return None;
    }
    let u16_at = |at: usize| Some(u16::from_le_bytes(setup.get(at..at + 2)?.try_into().ok()?));
    if u16_at(PROTOCOL_VERSION_FIELD)? < 0x0200 {
        return None;
    }
    let offset = usize::from(u16_at(KERNEL_VERSION_FIELD)?);
    if offset == 0 {
        return None;
    }
    let text = setup.get(offset + 0x200..)?;
    let text = &text[..text
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(text.len())
        .min(256)];
    let release = std::str::from_utf8(text).ok()?.split_whitespace().next()?;
    (!release.is_empty() && release.bytes().all(|b| b.is_ascii_graphic()))
        .then(|| release.to_owned())
}

/// A human description of unrecognised content, for error messages.
pub(crate) fn describe_head(head: &[u8]) -> String {
    let what = if head.is_empty() {
        "an empty file"
    } else if head.starts_with(b"\x7fELF") {
        "an ELF file (an uncompressed vmlinux? QEMU needs the compressed bzImage, e.g. arch/x86/boot/bzImage)"
    } else if head.starts_with(&[0x1f, 0x8b]) {
        "gzip-compressed data"
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        "xz-compressed data"
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        "zstd-compressed data"
    } else if head.starts_with(b"PK\x03\x04") {
        "a zip archive"
    } else if head.len() > 262 && &head[257..262] == b"ustar" {
        "a tar archive"
    } else if head.starts_with(b"<") || head.starts_with(b"\n<") {
        "what looks like an HTML or XML page"
    } else if head.len() >= 0x200 && head[0x1fe..0x200] == [0x55, 0xaa] {
        "a boot sector without the x86 boot protocol header"
    } else {
        "unrecognised data"
    };
    format!("{what} ({} leading bytes examined)", head.len())
}

/// Read up to [`HEAD_LEN`] bytes (fewer only at end of file).
pub(crate) fn read_head(r: &mut impl Read) -> io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(HEAD_LEN);
    r.take(HEAD_LEN as u64).read_to_end(&mut head)?;
    Ok(head)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bpfcompat_testkit::kernels::{fake_bzimage, kernels_dir, K510, K61, K612, K72, TINY};
    use std::fs::File;

    #[test]
    fn real_kernels_are_bzimages() {
        let dir = kernels_dir();
        for name in [K510.file, K61.file, K612.file, TINY.file] {
            let head = read_head(&mut File::open(dir.join(name)).unwrap()).unwrap();
            assert_eq!(recognise(&head), Some(SourceFormat::BzImage), "{name}");
        }
    }

    #[test]
    fn the_release_is_read_from_the_setup_header() {
        let dir = kernels_dir();
        for (name, release) in [
            (K510.file, "5.10.0-46-cloud-amd64"),
            (K61.file, "6.1.0-47-cloud-amd64"),
            (K612.file, "6.12.107+deb13-cloud-amd64"),
            (TINY.file, "6.1.192"),
        ] {
            assert_eq!(
                release_of(&dir.join(name)).unwrap().as_deref(),
                Some(release),
                "{name}"
            );
        }
        assert_eq!(release_of(&dir.join(K72.file)).unwrap(), None);
        // A fake image whose header points nowhere has no release.
        assert_eq!(release_from_setup(&fake_bzimage(b"x")), None);
    }

    #[test]
    fn real_deb_is_a_package() {
        let path = kernels_dir().join(K72.file);
        let head = read_head(&mut File::open(path).unwrap()).unwrap();
        assert_eq!(recognise(&head), Some(SourceFormat::Deb));
    }

    #[test]
    fn other_content_is_not_recognised_and_described() {
        assert_eq!(recognise(b""), None);
        assert!(describe_head(b"").contains("empty file"));
        assert_eq!(recognise(b"\x7fELF\x02\x01\x01"), None);
        assert!(describe_head(b"\x7fELF\x02\x01\x01").contains("vmlinux"));
        assert_eq!(recognise(b"<!DOCTYPE html>"), None);
        assert!(describe_head(b"<!DOCTYPE html>").contains("HTML"));
        // "HdrS" one byte off is not a bzImage.
        let mut almost = fake_bzimage(b"x");
        almost.copy_within(0x202..0x206, 0x203);
        assert_eq!(recognise(&almost), None);
        // Too short to hold the header.
        assert_eq!(recognise(&fake_bzimage(b"")[..0x204]), None);
    }
}
