//! Compressed streams: which compression a stream uses, by its name or its
//! first bytes, and streaming decoders that stop at a size no kernel package
//! reaches (packages use xz, zstd and gzip; kernel images LZ4 too).

use std::io::{self, BufRead, BufReader, Read};

use ruzstd::decoding::{FrameDecoder, StreamingDecoder};

use super::sniff;

/// A whole linux-image package with its modules unpacks to well under 1 GiB;
/// past this a stream is a decompression bomb, not a kernel package.
const MAX_DECOMPRESSED_BYTES: u64 = 16 << 30;

/// xz -9 needs a 64 MiB dictionary; refuse streams that ask for far more.
const XZ_MEM_LIMIT_KIB: u32 = 512 * 1024;

/// The legacy LZ4 format's magic, which also starts each of its frames.
const LZ4_LEGACY_MAGIC: u32 = 0x184c_2102;
/// Each block of the legacy LZ4 format decodes to at most 8 MiB.
const LZ4_LEGACY_BLOCK_BYTES: usize = 8 << 20;
/// The most an LZ4 block of that size compresses to (LZ4_compressBound).
const LZ4_LEGACY_MAX_COMPRESSED: usize = LZ4_LEGACY_BLOCK_BYTES + LZ4_LEGACY_BLOCK_BYTES / 255 + 16;

#[derive(Debug, Clone, Copy)]
pub(crate) enum Compression {
    None,
    Xz,
    Zstd,
    Gzip,
    /// `lz4 -l`, as kernels built with CONFIG_KERNEL_LZ4 are compressed.
    Lz4Legacy,
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
        } else if sniff::is_lz4_legacy(head) {
            Compression::Lz4Legacy
        } else {
            Compression::None
        }
    }

    /// Its name, for messages.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Compression::None => "uncompressed",
            Compression::Xz => "xz",
            Compression::Zstd => "zstd",
            Compression::Gzip => "gzip",
            Compression::Lz4Legacy => "LZ4 (legacy format)",
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
        Compression::Lz4Legacy => Box::new(Lz4Legacy::new(r)),
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

/// The legacy LZ4 format: its magic, then blocks, each a u32 LE compressed
/// size and an LZ4 block that decodes to at most 8 MiB, up to the end of the
/// input; the magic again where a size would be starts a new frame. (lz4's
/// `programs/lz4io.c` and the kernel's `lib/decompress_unlz4.c` read it so.)
struct Lz4Legacy<R> {
    inner: R,
    compressed: Vec<u8>,
    decoded: Vec<u8>,
    /// What of `decoded` has been read.
    pos: usize,
}

impl<R: BufRead> Lz4Legacy<R> {
    fn new(inner: R) -> Self {
        Self {
            inner,
            compressed: Vec::new(),
            decoded: Vec::new(),
            pos: 0,
        }
    }

    /// Decode the next block into `decoded`; false at the end of the input.
    fn next_block(&mut self) -> io::Result<bool> {
        let size = loop {
            match self.read_word()? {
                None => return Ok(false),
                Some(LZ4_LEGACY_MAGIC) => continue,
                Some(size) => break size as usize,
            }
        };
        if size > LZ4_LEGACY_MAX_COMPRESSED {
            return Err(io::Error::other(format!(
                "an LZ4 block of {size} bytes is larger than any 8 MiB block compresses to; the stream is corrupt"
            )));
        }
        self.compressed.resize(size, 0);
        self.inner.read_exact(&mut self.compressed)?;
        self.decoded.resize(LZ4_LEGACY_BLOCK_BYTES, 0);
        let n = lz4_flex::block::decompress_into(&self.compressed, &mut self.decoded)
            .map_err(|e| io::Error::other(format!("corrupt LZ4 block: {e}")))?;
        self.decoded.truncate(n);
        self.pos = 0;
        Ok(true)
    }

    /// The next u32 LE; `None` at the end of the input.
    fn read_word(&mut self) -> io::Result<Option<u32>> {
        if self.inner.fill_buf()?.is_empty() {
            return Ok(None);
        }
        let mut word = [0u8; 4];
        self.inner.read_exact(&mut word)?;
        Ok(Some(u32::from_le_bytes(word)))
    }
}

impl<R: BufRead> Read for Lz4Legacy<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.decoded.len() {
            if buf.is_empty() || !self.next_block()? {
                return Ok(0);
            }
        }
        let n = buf.len().min(self.decoded.len() - self.pos);
        buf[..n].copy_from_slice(&self.decoded[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
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

    /// `blocks` in the legacy LZ4 format; `frames` says after which a new
    /// frame starts.
    fn lz4_legacy(blocks: &[&[u8]], frames: &[usize]) -> Vec<u8> {
        let mut out = LZ4_LEGACY_MAGIC.to_le_bytes().to_vec();
        for (i, block) in blocks.iter().enumerate() {
            if frames.contains(&i) {
                out.extend_from_slice(&LZ4_LEGACY_MAGIC.to_le_bytes());
            }
            let compressed = lz4_flex::block::compress(block);
            out.extend_from_slice(&(compressed.len() as u32).to_le_bytes());
            out.extend_from_slice(&compressed);
        }
        out
    }

    fn decompress_all(data: &[u8]) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        decompressor(Compression::sniff(data), data)?.read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn lz4_legacy_blocks_and_frames_are_read_whole() {
        let big: Vec<u8> = (0..LZ4_LEGACY_BLOCK_BYTES as u32)
            .map(|i| (i % 251) as u8)
            .collect();
        let stream = lz4_legacy(&[&big, b"second ", b"", b"third"], &[2]);
        let out = decompress_all(&stream).unwrap();
        assert_eq!(out, [&big[..], b"second third"].concat());
    }

    #[test]
    fn damaged_lz4_legacy_streams_fail() {
        let stream = lz4_legacy(&[b"hello hello hello hello"], &[]);
        let truncated = decompress_all(&stream[..stream.len() - 1]).unwrap_err();
        assert_eq!(truncated.kind(), io::ErrorKind::UnexpectedEof);
        let mut huge = LZ4_LEGACY_MAGIC.to_le_bytes().to_vec();
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        let err = decompress_all(&huge).unwrap_err();
        assert!(err.to_string().contains("larger than any"), "{err}");
        // A block that decodes to more than 8 MiB.
        let too_big = lz4_legacy(&[&vec![0u8; LZ4_LEGACY_BLOCK_BYTES + 1]], &[]);
        let err = decompress_all(&too_big).unwrap_err();
        assert!(err.to_string().contains("corrupt LZ4 block"), "{err}");
    }
}
