//! Recognising what a file is from its first bytes, and hashing.

use std::io::{self, Read, Write};

use sha2::{Digest, Sha256};

use super::SourceFormat;

/// How many leading bytes recognition needs: the bzImage magic ends at 0x206.
pub(crate) const HEAD_LEN: usize = 0x206;

const BZIMAGE_MAGIC_OFFSET: usize = 0x202;
const BZIMAGE_MAGIC: &[u8; 4] = b"HdrS";
const AR_MAGIC: &[u8; 8] = b"!<arch>\n";

/// An x86 boot-protocol image: "HdrS" at 0x202 (Documentation/arch/x86/boot.rst).
pub(crate) fn is_bzimage(head: &[u8]) -> bool {
    head.get(BZIMAGE_MAGIC_OFFSET..BZIMAGE_MAGIC_OFFSET + 4) == Some(BZIMAGE_MAGIC)
}

/// What a file is, from its first [`HEAD_LEN`] bytes. An ar archive counts as
/// a package here; whether it really is a Debian one is checked on extraction.
pub(crate) fn recognise(head: &[u8]) -> Option<SourceFormat> {
    if is_bzimage(head) {
        Some(SourceFormat::BzImage)
    } else if head.starts_with(AR_MAGIC) {
        Some(SourceFormat::Deb)
    } else {
        None
    }
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

/// The sha256 of everything `r` yields, and its first [`HEAD_LEN`] bytes.
pub(crate) fn hash_and_head(mut r: impl Read) -> io::Result<(String, Vec<u8>)> {
    let head = read_head(&mut r)?;
    let mut w = HashingWriter::new(io::sink());
    w.write_all(&head)?;
    io::copy(&mut r, &mut w)?;
    Ok((w.finish().1, head))
}

/// The sha256 of everything `r` yields.
pub(crate) fn hash_reader(r: impl Read) -> io::Result<String> {
    hash_and_head(r).map(|(digest, _)| digest)
}

/// Passes writes through to `inner`, hashing and counting them.
pub(crate) struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    written: u64,
}

impl<W: Write> HashingWriter<W> {
    pub(crate) fn new(inner: W) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            written: 0,
        }
    }

    pub(crate) fn written(&self) -> u64 {
        self.written
    }

    /// The inner writer and the lowercase hex sha256 of all bytes written.
    pub(crate) fn finish(self) -> (W, String) {
        (self.inner, hex::encode(self.hasher.finalize()))
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Passes reads through from `inner`, hashing them.
pub(crate) struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
}

impl<R: Read> HashingReader<R> {
    pub(crate) fn new(inner: R) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
        }
    }

    /// Read the rest of `inner` and return the sha256 of everything it gave.
    pub(crate) fn finish(mut self) -> io::Result<String> {
        io::copy(&mut self, &mut io::sink())?;
        Ok(hex::encode(self.hasher.finalize()))
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::testutil::{fake_bzimage, kernels_dir, sha256_hex};
    use std::fs::File;

    #[test]
    fn real_kernels_are_bzimages() {
        let dir = kernels_dir();
        for name in [
            "vmlinuz-5.10.0-46-cloud-amd64",
            "vmlinuz-6.1.0-47-cloud-amd64",
            "vmlinuz-6.12.107+deb13-cloud-amd64",
            "vmlinuz-6.1.192-tiny-nobtf",
        ] {
            let head = read_head(&mut File::open(dir.join(name)).unwrap()).unwrap();
            assert_eq!(recognise(&head), Some(SourceFormat::BzImage), "{name}");
        }
    }

    #[test]
    fn real_deb_is_a_package() {
        let path = kernels_dir().join(crate::kernel::testutil::DEB_72);
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

    #[test]
    fn hashing_matches_a_one_shot_digest() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7) as u8).collect();
        let (digest, head) = hash_and_head(&data[..]).unwrap();
        assert_eq!(digest, sha256_hex(&data));
        assert_eq!(head, &data[..HEAD_LEN]);
        let mut r = HashingReader::new(&data[..]);
        let mut first = [0u8; 10];
        r.read_exact(&mut first).unwrap();
        assert_eq!(r.finish().unwrap(), sha256_hex(&data));
    }
}
