//! What a file is, from its first bytes: every magic number the kernel
//! module recognises content by, and words for content it cannot use.

use std::io::{self, Read};

use crate::arch::Arch;

/// How many leading bytes recognition needs: the bzImage magic ends at 0x206.
pub(crate) const HEAD_LEN: usize = 0x206;

/// The x86 boot protocol's header signature (Documentation/arch/x86/boot.rst).
const BZIMAGE_MAGIC_OFFSET: usize = 0x202;
const BZIMAGE_MAGIC: &[u8; 4] = b"HdrS";
/// The arm64 `Image` header's magic, "ARM\x64" at 0x38
/// (Documentation/arch/arm64/booting.rst).
const ARM64_MAGIC_OFFSET: usize = 0x38;
const ARM64_MAGIC: &[u8; 4] = b"ARM\x64";
const AR_MAGIC: &[u8; 8] = b"!<arch>\n";
/// The lead of an RPM package (rpm's `docs/manual/format.md`).
const RPM_MAGIC: &[u8; 4] = &[0xed, 0xab, 0xee, 0xdb];
const ELF_MAGIC: &[u8; 4] = b"\x7fELF";
const GZIP_MAGIC: &[u8; 2] = &[0x1f, 0x8b];
const XZ_MAGIC: &[u8; 6] = &[0xfd, b'7', b'z', b'X', b'Z', 0];
const ZSTD_MAGIC: &[u8; 4] = &[0x28, 0xb5, 0x2f, 0xfd];
const BZIP2_MAGIC: &[u8; 3] = b"BZh";
/// The legacy LZ4 format (`lz4 -l`), which kernels built with
/// CONFIG_KERNEL_LZ4 are compressed in: 0x184c2102 little-endian.
const LZ4_LEGACY_MAGIC: &[u8; 4] = &[0x02, 0x21, 0x4c, 0x18];
/// lzop's file magic (CONFIG_KERNEL_LZO).
const LZO_MAGIC: &[u8; 9] = &[0x89, b'L', b'Z', b'O', 0, 0x0d, 0x0a, 0x1a, 0x0a];
/// An EFI zboot image (drivers/firmware/efi/libstub/zboot-header.S): a PE
/// file ("MZ") whose DOS header says "zimg" where an arm64 Image has code.
const ZBOOT_MAGIC_OFFSET: usize = 4;
const ZBOOT_MAGIC: &[u8; 4] = b"zimg";
const PE_MAGIC: &[u8; 2] = b"MZ";
/// A raw lzma stream with the usual properties byte (lc=3, lp=0, pb=2).
const LZMA_MAGIC: &[u8; 3] = &[0x5d, 0, 0];
const ZIP_MAGIC: &[u8; 4] = b"PK\x03\x04";
/// A POSIX tar header's magic field.
const TAR_MAGIC_OFFSET: usize = 257;
const TAR_MAGIC: &[u8; 5] = b"ustar";
/// The last two bytes of a boot sector.
const BOOT_SIGNATURE_OFFSET: usize = 0x1fe;
const BOOT_SIGNATURE: &[u8; 2] = &[0x55, 0xaa];

/// Whether `head` (a file's first bytes) starts an x86 boot-protocol image:
/// "HdrS" at 0x202 (Documentation/arch/x86/boot.rst).
pub fn is_bzimage(head: &[u8]) -> bool {
    head.get(BZIMAGE_MAGIC_OFFSET..BZIMAGE_MAGIC_OFFSET + BZIMAGE_MAGIC.len())
        == Some(BZIMAGE_MAGIC)
}

/// The architecture of a kernel image QEMU boots with `-kernel`, from its
/// head: an x86 bzImage, or an arm64 `Image`, plain or gzip-compressed (as
/// Ubuntu ships it). `None` for anything else.
pub fn kernel_arch(head: &[u8]) -> Option<Arch> {
    let arm64 = |head: &[u8]| {
        head.get(ARM64_MAGIC_OFFSET..ARM64_MAGIC_OFFSET + ARM64_MAGIC.len()) == Some(ARM64_MAGIC)
    };
    if is_bzimage(head) {
        Some(Arch::X86_64)
    } else if arm64(head) || (is_gzip(head) && arm64(&inflated_head(head))) {
        Some(Arch::Arm64)
    } else {
        None
    }
}

/// An EFI zboot image: "MZ", then "zimg" at offset 4.
pub(crate) fn is_zboot(head: &[u8]) -> bool {
    head.starts_with(PE_MAGIC)
        && head.get(ZBOOT_MAGIC_OFFSET..ZBOOT_MAGIC_OFFSET + ZBOOT_MAGIC.len()) == Some(ZBOOT_MAGIC)
}

/// As much of a gzip stream's start as `head` inflates to.
fn inflated_head(head: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let _truncated = flate2::read::GzDecoder::new(head)
        .take(HEAD_LEN as u64)
        .read_to_end(&mut out);
    out
}

/// An ar archive: a Debian package, or a static library.
pub(crate) fn is_ar(head: &[u8]) -> bool {
    head.starts_with(AR_MAGIC)
}

pub(crate) fn is_rpm(head: &[u8]) -> bool {
    head.starts_with(RPM_MAGIC)
}

pub(crate) fn is_gzip(head: &[u8]) -> bool {
    head.starts_with(GZIP_MAGIC)
}

pub(crate) fn is_xz(head: &[u8]) -> bool {
    head.starts_with(XZ_MAGIC)
}

pub(crate) fn is_zstd(head: &[u8]) -> bool {
    head.starts_with(ZSTD_MAGIC)
}

pub(crate) fn is_lz4_legacy(head: &[u8]) -> bool {
    head.starts_with(LZ4_LEGACY_MAGIC)
}

pub(crate) fn is_elf(head: &[u8]) -> bool {
    head.starts_with(ELF_MAGIC)
}

/// The name of a compression a kernel may be built with that is not read
/// here (CONFIG_KERNEL_BZIP2, _LZMA, _LZO), from a stream's first bytes.
pub(crate) fn unread_kernel_compression(head: &[u8]) -> Option<&'static str> {
    if head.starts_with(BZIP2_MAGIC) {
        Some("bzip2")
    } else if head.starts_with(LZMA_MAGIC) {
        Some("lzma")
    } else if head.starts_with(LZO_MAGIC) {
        Some("lzo")
    } else {
        None
    }
}

/// bzip2 or lzma: compressions RPM payloads may use that are not read here.
pub(crate) fn is_bzip2_or_lzma(head: &[u8]) -> bool {
    head.starts_with(BZIP2_MAGIC) || head.starts_with(LZMA_MAGIC)
}

/// An uncompressed tarball.
pub(crate) fn is_tar(head: &[u8]) -> bool {
    head.len() > TAR_MAGIC_OFFSET + TAR_MAGIC.len()
        && &head[TAR_MAGIC_OFFSET..TAR_MAGIC_OFFSET + TAR_MAGIC.len()] == TAR_MAGIC
}

/// What starts a JSON object, such as an image manifest.
pub(crate) fn is_json_object(head: &[u8]) -> bool {
    head.starts_with(b"{")
}

/// A human description of content that is not what was wanted, for error
/// messages.
pub(crate) fn describe(head: &[u8]) -> String {
    let what = if head.is_empty() {
        "an empty file"
    } else if is_elf(head) {
        "an ELF file (an uncompressed vmlinux? QEMU needs the bzImage, e.g. arch/x86/boot/bzImage, or arm64's arch/arm64/boot/Image)"
    } else if is_gzip(head) {
        "gzip-compressed data"
    } else if is_xz(head) {
        "xz-compressed data"
    } else if is_zstd(head) {
        "zstd-compressed data"
    } else if head.starts_with(ZIP_MAGIC) {
        "a zip archive"
    } else if is_tar(head) {
        "a tar archive"
    } else if head.starts_with(b"<") || head.starts_with(b"\n<") {
        "what looks like an HTML or XML page"
    } else if head.get(BOOT_SIGNATURE_OFFSET..BOOT_SIGNATURE_OFFSET + 2) == Some(BOOT_SIGNATURE) {
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
