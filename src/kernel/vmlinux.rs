//! A kernel's own BTF (the `.BTF` section of its vmlinux, the bytes it
//! serves at `/sys/kernel/btf/vmlinux`), read out of its image file without
//! booting it, and kept in the cache by the image's digest.
//!
//! Where the BTF is depends on the image, recognised by its content:
//! - an x86 bzImage: its boot header locates the compressed vmlinux (gzip,
//!   xz, zstd or LZ4), an ELF file whose `.BTF` section it is;
//! - an arm64 `Image`, plain or gzip-compressed: the kernel as it lies in
//!   memory, not ELF, so the BTF is found by its header (`blob_len`);
//! - an EFI zboot image: its header locates a compressed `Image`, read so.
//!
//! A decompressed payload that is not ELF is searched like an `Image`.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::Path;

use object::{Object, ObjectSection};

use super::cache::KernelCache;
use super::compress::{self, Compression};
use super::error::KernelError;
use super::hash::is_digest;
use super::sniff;
use crate::arch::Arch;

/// Kernel images are tens of MB and a vmlinux some hundreds at most; a file
/// or a payload past this is not a kernel.
const MAX_BYTES: u64 = 1 << 30;

/// The bzImage boot header (Documentation/arch/x86/boot.rst): the number
/// of 512-byte setup sectors (0 means 4), the boot protocol version, and
/// where the compressed kernel is, relative to the protected-mode code that
/// follows the setup sectors.
const SETUP_SECTS: usize = 0x1f1;
const BOOT_VERSION: usize = 0x206;
const PAYLOAD_OFFSET: usize = 0x248;
const PAYLOAD_LENGTH: usize = 0x24c;
/// Boot protocol 2.08 introduced payload_offset and payload_length.
const PAYLOAD_PROTOCOL: u16 = 0x0208;

/// The EFI zboot header (drivers/firmware/efi/libstub/zboot-header.S): the
/// payload's offset and size, then the NUL-terminated name of its
/// compression, up to the Linux PE magic at 0x38.
const ZBOOT_PAYLOAD_OFFSET: usize = 8;
const ZBOOT_PAYLOAD_SIZE: usize = 12;
const ZBOOT_COMPRESSION: std::ops::Range<usize> = 24..0x38;

/// The fixed start of a kernel's BTF header (include/uapi/linux/btf.h):
/// magic 0xeb9f little-endian, version 1, flags 0, hdr_len 24.
const BTF_HEADER_START: [u8; 8] = [0x9f, 0xeb, 1, 0, 24, 0, 0, 0];
const BTF_HEADER_LEN: usize = 24;

/// Why an image's BTF could not be read; the caller adds the file's name.
#[derive(Debug)]
enum Unreadable {
    /// The file is not what it claims, or is damaged.
    Corrupt(String),
    /// The kernel is compressed in a way not decoded here.
    Compression(String),
}

impl Unreadable {
    fn of(self, image: &Path) -> KernelError {
        let path = image.to_owned();
        match self {
            Unreadable::Corrupt(detail) => KernelError::ImageBtf { path, detail },
            Unreadable::Compression(compression) => {
                KernelError::ImageCompression { path, compression }
            }
        }
    }
}

/// The kernel's BTF, read out of its image: Ok(None) when the kernel was
/// built without BTF.
pub fn btf_of_image(image: &Path) -> Result<Option<Vec<u8>>, KernelError> {
    read_image(image)
        .and_then(|data| btf_of(&data))
        .map_err(|e| e.of(image))
}

/// What the image of a kernel without BTF shows of its BPF support: the
/// names only the code of a feature has (a sysctl, a tracefs file), found
/// in the decompressed kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Features {
    /// `CONFIG_BPF_JIT`: the `bpf_jit_enable` sysctl. Without it the
    /// interpreter runs programs, which refuses callbacks (`bpf_loop`).
    pub jit: bool,
    /// `CONFIG_KPROBE_EVENTS`: the `kprobe_events` tracefs file, without
    /// which no kprobe attaches.
    pub kprobes: bool,
}

impl Features {
    fn of(kernel: &[u8]) -> Features {
        let has = |name: &[u8]| kernel.windows(name.len()).any(|w| w == name);
        Features {
            jit: has(b"\0bpf_jit_enable\0"),
            kprobes: has(b"\0kprobe_events\0"),
        }
    }

    /// As the no-BTF marker keeps them.
    fn to_text(self) -> String {
        format!(
            "jit={}\nkprobes={}\n",
            u8::from(self.jit),
            u8::from(self.kprobes)
        )
    }

    fn from_text(text: &str) -> Option<Features> {
        let flag = |key: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
                .map(|v| v == "1")
        };
        Some(Features {
            jit: flag("jit")?,
            kprobes: flag("kprobes")?,
        })
    }
}

/// The whole image file, refused past [`MAX_BYTES`].
fn read_image(image: &Path) -> Result<Vec<u8>, Unreadable> {
    let mut data = Vec::new();
    File::open(image)
        .and_then(|f| f.take(MAX_BYTES + 1).read_to_end(&mut data))
        .map_err(|e| Unreadable::Corrupt(format!("reading the file failed: {e}")))?;
    if data.len() as u64 > MAX_BYTES {
        return Err(Unreadable::Corrupt(format!(
            "it is larger than {MAX_BYTES} bytes, larger than any kernel image"
        )));
    }
    Ok(data)
}

/// The BTF of the image `image` holds, whatever kind of image it is.
fn btf_of(image: &[u8]) -> Result<Option<Vec<u8>>, Unreadable> {
    btf_of_vmlinux(&kernel_of(image)?)
}

/// The kernel an image holds, decompressed: an ELF vmlinux, or an arm64
/// memory image.
fn kernel_of(image: &[u8]) -> Result<std::borrow::Cow<'_, [u8]>, Unreadable> {
    match sniff::kernel_arch(image) {
        Some(Arch::X86_64) => Ok(inflate(bzimage_payload(image)?, None)?.into()),
        Some(Arch::Arm64) if sniff::is_gzip(image) => Ok(inflate(image, None)?.into()),
        Some(Arch::Arm64) => Ok(image.into()),
        None if sniff::is_zboot(image) => {
            let (payload, compression) = zboot_payload(image)?;
            Ok(inflate(payload, Some(&compression))?.into())
        }
        None => Err(Unreadable::Corrupt(format!(
            "it is not a kernel image: found {}",
            sniff::describe(&image[..image.len().min(sniff::HEAD_LEN)])
        ))),
    }
}

/// The compressed vmlinux inside a bzImage, without the u32 of its size
/// that the kernel build appends to every compression but gzip (whose own
/// trailer ends with it), so the decoders meet the end of their stream.
fn bzimage_payload(image: &[u8]) -> Result<&[u8], Unreadable> {
    let corrupt = |what: String| Unreadable::Corrupt(format!("its boot header is damaged: {what}"));
    check_boot_protocol(image)?;
    let (Some(offset), Some(length)) =
        (u32_at(image, PAYLOAD_OFFSET), u32_at(image, PAYLOAD_LENGTH))
    else {
        return Err(corrupt("the file ends inside it".into()));
    };
    let setup_sects = match image[SETUP_SECTS] {
        0 => 4,
        n => usize::from(n),
    };
    let start = (setup_sects + 1) * 512 + offset as usize;
    let payload = image.get(start..start + length as usize).ok_or_else(|| {
        corrupt(format!(
            "it puts the kernel's {length} bytes at offset {start}, past the end of the {}-byte file",
            image.len()
        ))
    })?;
    Ok(match Compression::sniff(payload) {
        Compression::Gzip => payload,
        _ => &payload[..payload.len().saturating_sub(4)],
    })
}

/// That the bzImage's boot protocol says where its kernel is (2.08 on).
fn check_boot_protocol(image: &[u8]) -> Result<(), Unreadable> {
    let version = image
        .get(BOOT_VERSION..BOOT_VERSION + 2)
        .map(|v| u16::from_le_bytes([v[0], v[1]]))
        .ok_or_else(|| Unreadable::Corrupt("the file ends inside its boot header".into()))?;
    if version < PAYLOAD_PROTOCOL {
        return Err(Unreadable::Corrupt(format!(
            "its boot protocol {}.{:02} is older than 2.08, which first says where the kernel is in the image",
            version >> 8,
            version & 0xff
        )));
    }
    Ok(())
}

/// The compressed payload of an EFI zboot image and the name of its
/// compression, as its header gives them.
fn zboot_payload(image: &[u8]) -> Result<(&[u8], String), Unreadable> {
    let header =
        |what: &str| Unreadable::Corrupt(format!("its EFI zboot header is damaged: {what}"));
    let name = image
        .get(ZBOOT_COMPRESSION)
        .ok_or_else(|| header("the file ends inside it"))?;
    let name = name.split(|&b| b == 0).next().unwrap_or_default();
    let compression = String::from_utf8_lossy(name).into_owned();
    let (Some(offset), Some(size)) = (
        u32_at(image, ZBOOT_PAYLOAD_OFFSET),
        u32_at(image, ZBOOT_PAYLOAD_SIZE),
    ) else {
        return Err(header("the file ends inside it"));
    };
    let (start, size) = (offset as usize, size as usize);
    let payload = image
        .get(start..start + size)
        .ok_or_else(|| header("its payload lies past the end of the file"))?;
    Ok((payload, compression))
}

/// `payload` decompressed, by the compression its first bytes show (`named`
/// is what the image's header calls it, for a message when it is not
/// decoded here); at most [`MAX_BYTES`].
fn inflate(payload: &[u8], named: Option<&str>) -> Result<Vec<u8>, Unreadable> {
    let compression = Compression::sniff(payload);
    if let Compression::None = compression {
        return Err(match sniff::unread_kernel_compression(payload).or(named) {
            Some(name) => Unreadable::Compression(name.to_owned()),
            None => Unreadable::Corrupt(format!(
                "its kernel is compressed in no way known here (it starts with {:02x?})",
                &payload[..payload.len().min(8)]
            )),
        });
    }
    let mut out = Vec::new();
    compress::decompressor(compression, payload)
        .and_then(|r| r.take(MAX_BYTES + 1).read_to_end(&mut out))
        .map_err(|e| {
            Unreadable::Corrupt(format!(
                "decompressing its {} kernel failed: {e}",
                compression.name()
            ))
        })?;
    if out.len() as u64 > MAX_BYTES {
        return Err(Unreadable::Corrupt(format!(
            "its kernel decompresses to more than {MAX_BYTES} bytes, more than any vmlinux"
        )));
    }
    Ok(out)
}

/// The BTF of a decompressed kernel: the `.BTF` section of an ELF vmlinux
/// (none: built without BTF), else the blob found in a memory image.
fn btf_of_vmlinux(vmlinux: &[u8]) -> Result<Option<Vec<u8>>, Unreadable> {
    if !sniff::is_elf(vmlinux) {
        return Ok(found_blob(vmlinux));
    }
    let corrupt = |e: object::Error| Unreadable::Corrupt(format!("its vmlinux is damaged: {e}"));
    let elf = object::File::parse(vmlinux).map_err(corrupt)?;
    let Some(section) = elf.section_by_name(".BTF") else {
        return Ok(None);
    };
    let data = section.data().map_err(corrupt)?;
    match blob_len(data) {
        Some(len) => Ok(Some(data[..len].to_vec())),
        None => Err(Unreadable::Corrupt(
            "its vmlinux's .BTF section does not start with a BTF header".into(),
        )),
    }
}

/// The first BTF blob in a kernel's memory image, copied out; `None`: the
/// kernel has no BTF.
fn found_blob(image: &[u8]) -> Option<Vec<u8>> {
    let mut from = 0;
    while let Some(found) = image[from..].iter().position(|&b| b == BTF_HEADER_START[0]) {
        let at = from + found;
        if let Some(len) = blob_len(&image[at..]) {
            return Some(image[at..at + len].to_vec());
        }
        from = at + 1;
    }
    None
}

/// The length of the BTF blob `data` starts with, if it starts with a
/// kernel's BTF header: the fixed start, the type section right after the
/// header, the string section right after the types and starting with the
/// empty string, all within `data`. Loose bytes that look like the magic
/// fail this; a kernel's BTF passes it.
fn blob_len(data: &[u8]) -> Option<usize> {
    if !data.starts_with(&BTF_HEADER_START) {
        return None;
    }
    let type_off = u32_at(data, 8)?;
    let type_len = u32_at(data, 12)?;
    let str_off = u32_at(data, 16)?;
    let str_len = u32_at(data, 20)?;
    if type_off != 0 || str_off != type_len || str_len == 0 {
        return None;
    }
    let strings = BTF_HEADER_LEN.checked_add(str_off as usize)?;
    let len = strings.checked_add(str_len as usize)?;
    (len <= data.len() && data[strings] == 0).then_some(len)
}

/// The u32 LE at `at`, if `data` holds it.
fn u32_at(data: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        data.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

impl KernelCache {
    /// The BTF of the kernel image `image`, whose sha256 is `image_sha256`
    /// (as a `ResolvedKernel` gives them): kept at `btf/<image_sha256>` once
    /// read, since reading it decompresses the whole kernel. `None` for a
    /// kernel built without BTF, kept too (as `btf/<image_sha256>.none`).
    /// Under the digest's lock, so concurrent callers read an image once.
    pub fn kernel_btf(
        &self,
        image: &Path,
        image_sha256: &str,
    ) -> Result<Option<Vec<u8>>, KernelError> {
        if !is_digest(image_sha256) {
            return Err(KernelError::BadSha256 {
                origin: format!("file:{}", image.display()),
                value: image_sha256.to_owned(),
            });
        }
        self.prepare()?;
        let _lock = self.lock(&format!("btf-{image_sha256}"))?;
        if let Some(cached) = self.cached_btf(image_sha256)? {
            return Ok(cached);
        }
        let read = |data: &[u8]| -> Result<_, Unreadable> {
            let kernel = kernel_of(data)?;
            let btf = btf_of_vmlinux(&kernel)?;
            let features = btf.is_none().then(|| Features::of(&kernel));
            Ok((btf, features))
        };
        let (btf, features) = read_image(image)
            .and_then(|data| read(&data))
            .map_err(|e| e.of(image))?;
        self.store_btf(image_sha256, btf.as_deref(), features)?;
        Ok(btf)
    }

    /// For a kernel without BTF, what its image shows (see [`Features`]);
    /// `None` for a kernel with BTF, whose BTF says more.
    pub fn kernel_features(
        &self,
        image: &Path,
        image_sha256: &str,
    ) -> Result<Option<Features>, KernelError> {
        if self.kernel_btf(image, image_sha256)?.is_some() {
            return Ok(None);
        }
        let marker = no_btf_marker(self, image_sha256);
        let text = fs::read_to_string(&marker).unwrap_or_default();
        if let Some(features) = Features::from_text(&text) {
            return Ok(Some(features));
        }
        // A marker of an older bpfcompat, without them: read them again.
        let features = read_image(image)
            .and_then(|data| Ok(Features::of(&kernel_of(&data)?)))
            .map_err(|e| e.of(image))?;
        self.store_btf(image_sha256, None, Some(features))?;
        Ok(Some(features))
    }

    /// What `btf/` keeps for the image: `Some(None)` is the marker of no
    /// BTF. A file that is not one whole BTF blob (damaged) is not kept, so
    /// the BTF is read again and the file replaced.
    fn cached_btf(&self, image_sha256: &str) -> Result<Option<Option<Vec<u8>>>, KernelError> {
        let path = self.btf_dir().join(image_sha256);
        match fs::read(&path) {
            Ok(btf) if blob_len(&btf) == Some(btf.len()) => return Ok(Some(Some(btf))),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(err) => return Err(KernelError::cache("read", path, err)),
        }
        Ok(no_btf_marker(self, image_sha256).is_file().then_some(None))
    }

    /// Keep `btf`, or the marker that there is none (holding what the
    /// image showed, [`Features`]): written in `tmp/` and renamed into
    /// place, so no reader sees part of it.
    fn store_btf(
        &self,
        image_sha256: &str,
        btf: Option<&[u8]>,
        features: Option<Features>,
    ) -> Result<(), KernelError> {
        let (path, bytes) = match btf {
            Some(btf) => (self.btf_dir().join(image_sha256), btf.to_vec()),
            None => (
                no_btf_marker(self, image_sha256),
                features
                    .map(Features::to_text)
                    .unwrap_or_default()
                    .into_bytes(),
            ),
        };
        self.write_atomically(&path, &bytes, "write the kernel's BTF to")
    }
}

/// The file that says the image's kernel has no BTF, and what its image
/// shows instead.
fn no_btf_marker(cache: &KernelCache, image_sha256: &str) -> std::path::PathBuf {
    cache.btf_dir().join(format!("{image_sha256}.none"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::{resolve, Options, Source};
    use bpfcompat_testkit::kernels::{
        fake_bzimage, Kernel, ARM64_510, ARM64_61, K510, K61, K612, K72, TINY,
    };
    use std::io::Write;
    use std::path::PathBuf;
    use std::time::Instant;

    /// `f`'s result, its time printed as `what` took it.
    fn timed<T>(what: &str, f: impl FnOnce() -> T) -> T {
        let started = Instant::now();
        let result = f();
        eprintln!("{what}: {:?}", started.elapsed());
        result
    }

    /// The strings of a BTF blob (whose header `blob_len` accepted).
    fn strings(btf: &[u8]) -> Vec<&[u8]> {
        let start = BTF_HEADER_LEN + u32_at(btf, 16).unwrap() as usize;
        btf[start..].split(|&b| b == 0).collect()
    }

    /// What every kernel's BTF is: a whole, large blob naming the kernel's
    /// types and BPF's.
    fn assert_kernel_btf(btf: &[u8], id: &str) {
        assert_eq!(u16::from_le_bytes([btf[0], btf[1]]), 0xeb9f, "{id}");
        assert_eq!(blob_len(btf), Some(btf.len()), "{id}");
        assert!(btf.len() > 1_000_000, "{id}: only {} bytes", btf.len());
        let strings = strings(btf);
        for name in ["bpf_func_id", "task_struct"] {
            assert!(strings.contains(&name.as_bytes()), "{id}: no {name}");
        }
    }

    /// The kernel image of a package, extracted into `cache` as a run does.
    fn packaged_image(cache: &KernelCache, kernel: &Kernel, arch: Arch) -> PathBuf {
        let source = Source::File {
            path: kernel.path(),
            sha256: None,
            kernel_path: None,
        };
        let opts = Options {
            arch,
            ..Options::default()
        };
        resolve(cache, &source, &opts).unwrap().image
    }

    /// A bzImage with the boot header fields that locate `payload`.
    fn bzimage_around(payload: &[u8]) -> Vec<u8> {
        let mut image = fake_bzimage(payload);
        image[SETUP_SECTS] = 1; // the payload starts at (1 + 1) * 512 = 0x400
        image[BOOT_VERSION..BOOT_VERSION + 2].copy_from_slice(&0x020fu16.to_le_bytes());
        image[PAYLOAD_OFFSET..PAYLOAD_OFFSET + 4].copy_from_slice(&0u32.to_le_bytes());
        image[PAYLOAD_LENGTH..PAYLOAD_LENGTH + 4]
            .copy_from_slice(&(payload.len() as u32).to_le_bytes());
        image
    }

    /// An EFI zboot image holding `payload` compressed with `compression`,
    /// laid out as zboot-header.S does it.
    fn zboot_around(compression: &str, payload: &[u8]) -> Vec<u8> {
        let mut image = vec![0u8; 0x200];
        image[..8].copy_from_slice(b"MZ\0\0zimg");
        image[8..12].copy_from_slice(&0x200u32.to_le_bytes());
        image[12..16].copy_from_slice(&(payload.len() as u32).to_le_bytes());
        image[24..24 + compression.len()].copy_from_slice(compression.as_bytes());
        image[0x38..0x3c].copy_from_slice(&[0xcd, 0x23, 0x82, 0x81]);
        image.extend_from_slice(payload);
        // The uncompressed size the build appends, outside the payload.
        image.extend_from_slice(&[1, 2, 3, 4]);
        image
    }

    /// The BTF of `image`'s bytes, written to a file first.
    fn btf_of_bytes(image: &[u8]) -> Result<Option<Vec<u8>>, KernelError> {
        let file = tempfile::NamedTempFile::new().unwrap();
        fs::write(file.path(), image).unwrap();
        btf_of_image(file.path())
    }

    /// The smallest BTF blob there is: no types, only the empty string.
    const EMPTY_BTF: [u8; 25] = [
        0x9f, 0xeb, 1, 0, 24, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0,
    ];

    #[test]
    fn bzimages_give_their_btf() {
        for k in [&K510, &K61, &K612] {
            let btf = timed(&format!("BTF of {}", k.id), || btf_of_image(&k.path()))
                .unwrap()
                .unwrap_or_else(|| panic!("{}: no BTF", k.id));
            assert_kernel_btf(&btf, k.id);
        }
    }

    #[test]
    fn a_kernel_built_without_btf_has_none() {
        let btf = timed(&format!("BTF of {}", TINY.id), || {
            btf_of_image(&TINY.path())
        });
        assert_eq!(btf.unwrap(), None);
    }

    #[test]
    fn packaged_kernels_give_their_btf() {
        for (k, arch) in [
            (&K72, Arch::X86_64),
            (&ARM64_510, Arch::Arm64),
            (&ARM64_61, Arch::Arm64),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let cache = KernelCache::new(dir.path().to_owned());
            let image = packaged_image(&cache, k, arch);
            let btf = timed(&format!("BTF of {}", k.id), || btf_of_image(&image))
                .unwrap()
                .unwrap_or_else(|| panic!("{}: no BTF", k.id));
            assert_kernel_btf(&btf, k.id);
        }
    }

    #[test]
    fn compressed_arm64_images_give_the_same_btf() {
        let dir = tempfile::tempdir().unwrap();
        let cache = KernelCache::new(dir.path().to_owned());
        let image = fs::read(packaged_image(&cache, &ARM64_61, Arch::Arm64)).unwrap();
        let plain = btf_of_bytes(&image).unwrap().unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&image).unwrap();
        let gz = gz.finish().unwrap();
        // As Ubuntu ships an arm64 vmlinuz, and as an EFI zboot image holds it.
        let vmlinuz = timed("BTF of a gzip-compressed arm64 Image", || btf_of_bytes(&gz));
        assert_eq!(vmlinuz.unwrap().as_ref(), Some(&plain));
        let zboot = zboot_around("gzip", &gz);
        let zboot = timed("BTF of an EFI zboot image", || btf_of_bytes(&zboot));
        assert_eq!(zboot.unwrap().as_ref(), Some(&plain));
    }

    #[test]
    fn compressions_not_decoded_here_are_named() {
        let named = |result: Result<Option<Vec<u8>>, KernelError>| match result {
            Err(KernelError::ImageCompression { compression, .. }) => compression,
            other => panic!("{other:?}"),
        };
        let bzip2 = bzimage_around(b"BZh91AY&SY and more");
        assert_eq!(named(btf_of_bytes(&bzip2)), "bzip2");
        let lzma = bzimage_around(&[0x5d, 0, 0, 0x80, 0, 0xff, 0xff, 0xff]);
        assert_eq!(named(btf_of_bytes(&lzma)), "lzma");
        let lzo = zboot_around("lzo", b"\x89LZO\0\r\n\x1a\n and more");
        assert_eq!(named(btf_of_bytes(&lzo)), "lzo");
        // Unrecognised bytes: the zboot header's word for them.
        let other = zboot_around("brotli", b"\x01\x02\x03\x04\x05");
        let err = btf_of_bytes(&other).unwrap_err();
        assert_eq!(named(Err(err)), "brotli");
        let message = btf_of_bytes(&lzo).unwrap_err().to_string();
        assert!(message.contains("lzo") && message.contains("CONFIG_KERNEL_GZIP"));
    }

    #[test]
    fn damaged_images_are_errors_naming_the_file() {
        let file = tempfile::NamedTempFile::new().unwrap();
        let mut truncated = bzimage_around(b"BZh9");
        truncated[PAYLOAD_LENGTH..PAYLOAD_LENGTH + 4].copy_from_slice(&1000u32.to_le_bytes());
        for (image, says) in [
            (truncated, "past the end"),
            (
                bzimage_around(&[0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0, 0]),
                "zstd",
            ),
            (b"#!/bin/sh\n".to_vec(), "not a kernel image"),
        ] {
            fs::write(file.path(), image).unwrap();
            let message = btf_of_image(file.path()).unwrap_err().to_string();
            assert!(message.contains(says), "{message}");
            assert!(
                message.contains(&file.path().display().to_string()),
                "{message}"
            );
        }
        let gone = btf_of_image(Path::new("/nonexistent/vmlinuz")).unwrap_err();
        assert!(gone.to_string().contains("/nonexistent/vmlinuz"), "{gone}");
    }

    #[test]
    fn the_blob_is_found_by_a_header_that_fits() {
        assert_eq!(blob_len(&EMPTY_BTF), Some(25));
        assert_eq!(blob_len(&EMPTY_BTF[..24]), None, "strings past the end");
        let mut no_nul = EMPTY_BTF;
        no_nul[24] = b'x';
        assert_eq!(blob_len(&no_nul), None, "strings not starting with \"\"");
        let mut gap = EMPTY_BTF;
        gap[16] = 1; // str_off != type_len
        assert_eq!(blob_len(&gap), None, "strings not right after the types");
        // A decoy header first, then the real blob among other bytes.
        let image = [&b"\x9f\x9f"[..], &gap, b"junk", &EMPTY_BTF, b"more"].concat();
        assert_eq!(found_blob(&image), Some(EMPTY_BTF.to_vec()));
        assert_eq!(found_blob(&image[..30]), None);
    }

    #[test]
    fn the_cache_keeps_the_btf_and_its_absence() {
        let dir = tempfile::tempdir().unwrap();
        let cache = KernelCache::new(dir.path().join("cache"));
        for k in [&K61, &TINY] {
            let image = dir.path().join(k.file);
            fs::copy(k.path(), &image).unwrap();
            let first = timed(&format!("{}: read and cached", k.id), || {
                cache.kernel_btf(&image, k.sha256)
            })
            .unwrap();
            assert_eq!(first.is_some(), k.btf, "{}", k.id);
            let kept = match first {
                Some(_) => cache.btf_dir().join(k.sha256),
                None => cache.btf_dir().join(format!("{}.none", k.sha256)),
            };
            assert!(kept.is_file(), "{}", kept.display());
            assert_eq!(fs::read_dir(cache.tmp_dir()).unwrap().count(), 0);
            // Read from the cache: the image is no longer needed.
            fs::remove_file(&image).unwrap();
            let again = timed(&format!("{}: from the cache", k.id), || {
                cache.kernel_btf(&image, k.sha256)
            });
            assert_eq!(again.unwrap(), first, "{}", k.id);
        }
    }

    #[test]
    fn a_damaged_cached_btf_is_read_again() {
        let dir = tempfile::tempdir().unwrap();
        let cache = KernelCache::new(dir.path().to_owned());
        cache.prepare().unwrap();
        let kept = cache.btf_dir().join(K61.sha256);
        fs::write(&kept, &EMPTY_BTF[..20]).unwrap();
        let btf = cache.kernel_btf(&K61.path(), K61.sha256).unwrap().unwrap();
        assert_kernel_btf(&btf, K61.id);
        assert_eq!(fs::read(&kept).unwrap(), btf);
    }

    #[test]
    fn a_kernel_without_btf_shows_what_it_lacks_in_its_image() {
        let dir = tempfile::tempdir().unwrap();
        let cache = KernelCache::new(dir.path().to_owned());
        // The tiny kernel interprets BPF and has no kprobes (its config).
        let tiny = cache.kernel_features(&TINY.path(), TINY.sha256).unwrap();
        assert_eq!(
            tiny,
            Some(Features {
                jit: false,
                kprobes: false
            })
        );
        let marker = fs::read_to_string(no_btf_marker(&cache, TINY.sha256)).unwrap();
        assert_eq!(marker, "jit=0\nkprobes=0\n");
        // An older, empty marker is filled in.
        fs::write(no_btf_marker(&cache, TINY.sha256), "").unwrap();
        assert_eq!(
            cache.kernel_features(&TINY.path(), TINY.sha256).unwrap(),
            tiny
        );
        // The same names are found where the features are: Debian's 6.1.
        let data = read_image(&K61.path()).unwrap();
        let features = Features::of(&kernel_of(&data).unwrap());
        assert_eq!(
            features,
            Features {
                jit: true,
                kprobes: true
            }
        );
        // A kernel with BTF: its BTF says more.
        assert_eq!(
            cache.kernel_features(&K61.path(), K61.sha256).unwrap(),
            None
        );
    }

    #[test]
    fn a_digest_that_is_not_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let cache = KernelCache::new(dir.path().to_owned());
        let err = cache.kernel_btf(&TINY.path(), "../../etc").unwrap_err();
        assert!(matches!(err, KernelError::BadSha256 { .. }), "{err}");
    }
}
