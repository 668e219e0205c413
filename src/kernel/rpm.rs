//! Taking the kernel image out of an RPM package, streaming.
//!
//! An `.rpm` is a 96-byte lead, a signature header (padded to 8 bytes), the
//! main header, then the payload: a cpio archive ("newc", magic `070701` or
//! `070702`) compressed with gzip, xz or zstd (rpm's file format document,
//! `docs/manual/format.md` in rpm's source). Nothing in the headers is needed
//! to find the image: the payload's compression is recognised by its magic,
//! and files are taken by name from the cpio archive, checked for path
//! traversal like the entries of a `.deb`.

use std::io::{self, BufRead, BufReader, Read};

use super::compress::{decompressor, Compression};
use super::contents::{Contents, Taken};
use super::error::KernelError;
use super::pick::is_unsafe_path;
use super::sniff;

const HEADER_MAGIC: [u8; 3] = [0x8e, 0xad, 0xe8];
const LEAD_LEN: usize = 96;
/// Real headers hold thousands of entries and a few MB; more is garbage.
const MAX_HEADER_BYTES: u64 = 256 << 20;
const S_IFMT: u32 = 0o170_000;
const S_IFREG: u32 = 0o100_000;
/// cpio names are short paths; a longer one is a corrupt archive.
const MAX_NAME: usize = 4096;

/// Read a whole package from `reader` and take out of it what `contents`
/// wants.
pub(crate) fn extract(
    reader: impl Read,
    origin: &str,
    mut contents: Contents<'_>,
) -> Result<Taken, KernelError> {
    let mut r = BufReader::with_capacity(64 * 1024, reader);
    let format_err = |detail: String| KernelError::RpmFormat {
        origin: origin.to_owned(),
        detail,
    };
    let read_err = |what: &str| {
        let entry = what.to_owned();
        move |err| KernelError::PackageRead {
            origin: origin.to_owned(),
            entry,
            err,
        }
    };

    let mut lead = [0u8; LEAD_LEN];
    r.read_exact(&mut lead).map_err(read_err("the lead"))?;
    if !sniff::is_rpm(&lead) {
        return Err(format_err("no RPM lead magic".into()));
    }
    skip_header(&mut r, true).map_err(|e| header_err(origin, "signature", e))?;
    skip_header(&mut r, false).map_err(|e| header_err(origin, "main", e))?;

    let head = r.fill_buf().map_err(read_err("the payload"))?;
    let compression = Compression::sniff(head);
    if sniff::is_bzip2_or_lzma(head) {
        return Err(format_err(
            "the payload is compressed with bzip2 or lzma, not supported here (supported: gzip, xz, zstd)".into(),
        ));
    }
    let payload = decompressor(compression, r).map_err(read_err("the payload"))?;
    scan_cpio(payload, origin, &mut contents)?;
    contents.finish("the cpio payload")
}

fn header_err(origin: &str, which: &str, err: io::Error) -> KernelError {
    KernelError::RpmFormat {
        origin: origin.to_owned(),
        detail: format!("the {which} header: {err}"),
    }
}

/// Skip one header structure: magic, version, 4 reserved bytes, the entry
/// count and data size, then 16 bytes per entry and the data. The signature
/// header is padded to a multiple of 8 bytes.
fn skip_header(r: &mut impl Read, padded: bool) -> io::Result<()> {
    let mut intro = [0u8; 16];
    r.read_exact(&mut intro)?;
    if intro[..3] != HEADER_MAGIC {
        return Err(io::Error::other(
            "no header magic (the file is not an RPM package, or is corrupt)",
        ));
    }
    let entries = u64::from(u32::from_be_bytes(
        intro[8..12].try_into().expect("4 bytes"),
    ));
    let data = u64::from(u32::from_be_bytes(
        intro[12..16].try_into().expect("4 bytes"),
    ));
    let mut len = entries * 16 + data;
    if len > MAX_HEADER_BYTES {
        return Err(io::Error::other(format!(
            "{len} bytes long, more than any real header"
        )));
    }
    if padded {
        len = len.next_multiple_of(8);
    }
    let skipped = io::copy(&mut r.take(len), &mut io::sink())?;
    if skipped != len {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    Ok(())
}

/// Read a newc cpio archive to its trailer, offering the entries `contents`
/// wants. Every name is checked for path traversal.
fn scan_cpio(
    mut r: impl Read,
    origin: &str,
    contents: &mut Contents<'_>,
) -> Result<(), KernelError> {
    let payload_err = |detail: String| KernelError::RpmFormat {
        origin: origin.to_owned(),
        detail: format!("the cpio payload: {detail}"),
    };
    let read_err = |entry: String| {
        move |err| KernelError::PackageRead {
            origin: origin.to_owned(),
            entry,
            err,
        }
    };
    let mut offset: u64 = 0;
    loop {
        let mut header = [0u8; 110];
        r.read_exact(&mut header).map_err(read_err(format!(
            "the cpio header at payload offset {offset}"
        )))?;
        if &header[..6] != b"070701" && &header[..6] != b"070702" {
            return Err(payload_err(format!(
                "no newc cpio header at offset {offset} (found {:?}); the package is corrupt or uses an unsupported payload format",
                String::from_utf8_lossy(&header[..6])
            )));
        }
        let field = |i: usize| {
            let text = std::str::from_utf8(&header[6 + i * 8..14 + i * 8]).unwrap_or("");
            u32::from_str_radix(text, 16)
                .map_err(|_| payload_err(format!("a header field at offset {offset} is not hex")))
        };
        let mode = field(1)?;
        let size = u64::from(field(6)?);
        let name_len = field(11)? as usize;
        if name_len == 0 || name_len > MAX_NAME {
            return Err(payload_err(format!(
                "a name of {name_len} bytes at offset {offset}"
            )));
        }
        // Header and name are padded to 4 bytes together, so is the data.
        let name_padded = (110 + name_len).next_multiple_of(4) - 110;
        let mut name = vec![0u8; name_padded];
        r.read_exact(&mut name)
            .map_err(read_err(format!("a cpio name at payload offset {offset}")))?;
        name.truncate(name_len - 1); // the terminating NUL
        let path = String::from_utf8_lossy(&name).into_owned();
        if path == "TRAILER!!!" {
            // Read the compressed stream to its end, so its own checksums are checked.
            io::copy(&mut r, &mut io::sink()).map_err(read_err("the end of the payload".into()))?;
            return Ok(());
        }
        if is_unsafe_path(&name) {
            return Err(KernelError::UnsafeEntry {
                origin: origin.to_owned(),
                entry: path,
            });
        }
        let mut data = (&mut r).take(size);
        if contents.wants(&path) {
            let regular = mode & S_IFMT == S_IFREG;
            contents.offer(&path, path.clone(), regular, size, &mut data)?;
        }
        // Whatever was left unread.
        io::copy(&mut data, &mut io::sink()).map_err(read_err(path.clone()))?;
        if data.limit() != 0 {
            return Err(read_err(path)(io::ErrorKind::UnexpectedEof.into()));
        }
        let pad = size.next_multiple_of(4) - size;
        io::copy(&mut (&mut r).take(pad), &mut io::sink()).map_err(read_err(path))?;
        offset += 110 + name_padded as u64 + size + pad;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::cache::KernelCache;
    use crate::kernel::pick::{Extracted, Layout};
    use bpfcompat_testkit::kernels::fake_bzimage;
    use bpfcompat_testkit::packages::build_rpm;
    use bpfcompat_testkit::sha256_hex;

    fn extract(rpm: &[u8], kernel_path: Option<&str>) -> Result<Extracted, KernelError> {
        let dir = tempfile::tempdir().unwrap();
        let cache = KernelCache::new(dir.path().to_owned());
        cache.prepare().unwrap();
        // Outside the cache, which goes when this returns.
        let out = tempfile::NamedTempFile::new().unwrap();
        let contents = Contents::kernel(&cache, "test.rpm", Layout::Rpm, kernel_path, out)?;
        Ok(super::extract(rpm, "test.rpm", contents)?
            .kernel
            .expect("a kernel was wanted"))
    }

    #[test]
    fn every_payload_compression_gives_the_image() {
        let kernel = fake_bzimage(b"an rpm kernel");
        for compression in [".gz", ".xz", ".zst"] {
            let rpm = build_rpm(
                compression,
                &[
                    ("./lib/modules/4.18.0-513.el8.x86_64/vmlinuz", &kernel[..]),
                    (
                        "./lib/modules/4.18.0-513.el8.x86_64/config",
                        b"CONFIG_BPF=y\n",
                    ),
                ],
            );
            let got = extract(&rpm, None).unwrap_or_else(|e| panic!("{compression}: {e}"));
            assert_eq!(got.sha256, sha256_hex(&kernel));
            assert_eq!(got.entry, "./lib/modules/4.18.0-513.el8.x86_64/vmlinuz");
            assert_eq!(std::fs::read(got.file.path()).unwrap(), kernel);
        }
    }

    #[test]
    fn kernel_path_picks_one_of_several() {
        let one = fake_bzimage(b"one");
        let two = fake_bzimage(b"two");
        let rpm = build_rpm(
            ".gz",
            &[
                ("./boot/vmlinuz-4.14.1", &one[..]),
                ("./lib/modules/4.14.1/vmlinuz", &two[..]),
            ],
        );
        let msg = extract(&rpm, None).err().unwrap().to_string();
        assert!(
            msg.contains("./boot/vmlinuz-4.14.1, ./lib/modules/4.14.1/vmlinuz"),
            "{msg}"
        );
        let got = extract(&rpm, Some("/lib/modules/4.14.1/vmlinuz")).unwrap();
        assert_eq!(got.sha256, sha256_hex(&two));
        let msg = extract(&rpm, Some("boot/nothing"))
            .err()
            .unwrap()
            .to_string();
        assert!(
            msg.contains("boot/nothing (the matrix's kernel_path)"),
            "{msg}"
        );
    }

    #[test]
    fn corrupt_and_unsafe_packages_are_refused() {
        let kernel = fake_bzimage(b"k");
        let rpm = build_rpm(".gz", &[("./boot/vmlinuz-1", &kernel[..])]);
        let cut = &rpm[..rpm.len() - 40];
        assert!(extract(cut, None).is_err());
        let evil = build_rpm(
            ".gz",
            &[
                ("../../etc/cron.d/x", b"boom"),
                ("./boot/vmlinuz-1", &kernel[..]),
            ],
        );
        let err = extract(&evil, None).err().unwrap();
        assert!(matches!(err, KernelError::UnsafeEntry { .. }), "{err}");
        let mut not = rpm.clone();
        not[96] = 0;
        let msg = extract(&not, None).err().unwrap().to_string();
        assert!(
            msg.contains("signature header") && msg.contains("test.rpm"),
            "{msg}"
        );
    }
}
