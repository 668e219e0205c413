//! Compressed streams: which compression a stream uses, by its name or its
//! first bytes, and streaming decoders that stop at a size no kernel package
//! reaches.

use std::io::{self, BufRead, BufReader, Read};

use ruzstd::decoding::{FrameDecoder, StreamingDecoder};

use super::sniff;

/// A whole linux-image package with its modules unpacks to well under 1 GiB;
/// past this a stream is a decompression bomb, not a kernel package.
const MAX_DECOMPRESSED_BYTES: u64 = 16 << 30;

/// xz -9 needs a 64 MiB dictionary; refuse streams that ask for far more.
const XZ_MEM_LIMIT_KIB: u32 = 512 * 1024;

#[derive(Debug, Clone, Copy)]
pub(crate) enum Compression {
    None,
    Xz,
    Zstd,
    Gzip,
}

impl Compression {
    /// From a stream's first bytes; anything else is taken as uncompressed.
    pub(crate) fn sniff(head: &[u8]) -> Compression {
        if sniff::is_gzip(head) {
            Compression::Gzip
        } else if sniff::is_xz(head) {
            Compression::Xz
        } else if sniff::is_zstd(head) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }

    /// From what follows a file name's stem (`data.tar.xz` → `.xz`): none,
    /// `.xz`, `.zst` or `.gz`; `None` for a compression not supported here.
    pub(crate) fn from_suffix(suffix: &str) -> Option<Compression> {
        match suffix {
            "" => Some(Compression::None),
            ".xz" => Some(Compression::Xz),
            ".zst" => Some(Compression::Zstd),
            ".gz" => Some(Compression::Gzip),
            _ => None,
        }
    }
}

/// A streaming decoder for `compression`, capped at [`MAX_DECOMPRESSED_BYTES`].
pub(crate) fn decompressor<'a>(
    compression: Compression,
    r: impl Read + 'a,
) -> io::Result<Box<dyn Read + 'a>> {
    // Decoders read in small pieces: buffer what they read from the archive.
    let r = BufReader::with_capacity(64 * 1024, r);
    let decoded: Box<dyn Read + 'a> = match compression {
        Compression::None => Box::new(r),
        Compression::Xz => Box::new(lzma_rust2::XzReader::new_mem_limit(
            r,
            true,
            XZ_MEM_LIMIT_KIB,
        )),
        Compression::Zstd => Box::new(ZstdFrames::new(r)?),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(r)),
    };
    Ok(Box::new(Capped {
        inner: decoded,
        left: MAX_DECOMPRESSED_BYTES,
    }))
}

/// Fails once more than `left` bytes have been read.
struct Capped<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.left = self.left.checked_sub(n as u64).ok_or_else(|| {
            io::Error::other(format!(
                "it decompresses to more than {MAX_DECOMPRESSED_BYTES} bytes, far more than any kernel package"
            ))
        })?;
        Ok(n)
    }
}

/// A zstd stream of one or more frames (ruzstd's decoder reads one).
struct ZstdFrames<R: BufRead> {
    decoder: Option<StreamingDecoder<R, FrameDecoder>>,
}

impl<R: BufRead> ZstdFrames<R> {
    fn new(source: R) -> io::Result<Self> {
        let decoder = StreamingDecoder::new(source).map_err(io::Error::other)?;
        Ok(Self {
            decoder: Some(decoder),
        })
    }
}

impl<R: BufRead> Read for ZstdFrames<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let Some(decoder) = self.decoder.as_mut() else {
                return Err(io::Error::other("zstd stream already failed"));
            };
            let n = decoder.read(buf)?;
            if n > 0 || buf.is_empty() {
                return Ok(n);
            }
            // End of a frame: another one follows, or this is the end.
            if decoder.get_mut().fill_buf()?.is_empty() {
                return Ok(0);
            }
            // Reuse the frame decoder's buffers; this reads the next frame's header.
            let (source, frame) = self.decoder.take().expect("checked above").into_parts();
            self.decoder =
                Some(StreamingDecoder::new_with_decoder(source, frame).map_err(io::Error::other)?);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decompression_is_capped() {
        let mut capped = Capped {
            inner: io::repeat(0),
            left: 1000,
        };
        let err = io::copy(&mut capped, &mut io::sink()).unwrap_err();
        assert!(
            err.to_string().contains("decompresses to more than"),
            "{err}"
        );
    }

    #[test]
    fn zstd_with_several_frames_is_read_whole() {
        let first = ruzstd::encoding::compress_to_vec(
            &b"hello "[..],
            ruzstd::encoding::CompressionLevel::Fastest,
        );
        let second = ruzstd::encoding::compress_to_vec(
            &b"world"[..],
            ruzstd::encoding::CompressionLevel::Fastest,
        );
        let joined = [first, second].concat();
        let mut out = String::new();
        decompressor(Compression::Zstd, &joined[..])
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out, "hello world");
    }
}
