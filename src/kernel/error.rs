//! What can go wrong getting a kernel, in words that say what to do.

use std::io;
use std::path::PathBuf;

use crate::arch::Arch;

/// Everything that can go wrong getting a kernel. Each message names the input
/// it is about and says what to do. Reports and warnings print the message
/// alone, so most messages show their cause; such a cause is not also
/// returned by `source()`, or the CLI, which prints the chain, would show it
/// twice.
#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    #[error("kernel source {origin}: sha256 {value:?} is not 64 hexadecimal digits; give the full sha256 of the file (e.g. the output of `sha256sum`)")]
    BadSha256 { origin: String, value: String },

    #[error("kernel source {origin}: unsupported URL {url:?}; use an http://, https:// or file:// URL, or a local path")]
    UnsupportedUrl { origin: String, url: String },

    #[error("kernel source {origin}: cannot read {}: {err}; check that the file exists and is readable", path.display())]
    ReadSource {
        origin: String,
        path: PathBuf,
        err: io::Error,
    },

    #[error("kernel source {origin}: sha256 mismatch: expected {expected}, got {actual}; the file changed or the pinned sha256 is wrong: check the file and update sha256 in the matrix")]
    Sha256Mismatch {
        origin: String,
        expected: String,
        actual: String,
    },

    #[error("kernel source {origin}: the file changed while it was being read (sha256 {expected} before, {actual} after); retry once nothing is writing to it")]
    SourceChanged {
        origin: String,
        expected: String,
        actual: String,
    },

    #[error("kernel source {origin} is not a kernel: found {found}; expected an x86 bzImage (boot header \"HdrS\" at offset 0x202), an arm64 Image (\"ARM\\x64\" at 0x38), or a Debian (.deb) or RPM (.rpm) package containing one")]
    NotAKernel { origin: String, found: String },

    #[error("kernel source {origin}: downloading {url} failed after {attempts} attempt(s): {detail}; check the URL and the network (proxy settings come from HTTPS_PROXY/HTTP_PROXY/NO_PROXY)")]
    Download {
        origin: String,
        url: String,
        attempts: u32,
        detail: String,
    },

    #[error("kernel source {origin}: {url} answered HTTP {status}; check that the URL is right and still published")]
    HttpStatus {
        origin: String,
        url: String,
        status: u16,
    },

    #[error("kernel source {origin}: {url} is larger than the {limit}-byte limit; point it at a single kernel image or package")]
    TooLarge {
        origin: String,
        url: String,
        limit: u64,
    },

    #[error("kernel source {origin}: {detail}; the file is not a valid Debian package or is truncated: re-download it")]
    DebFormat { origin: String, detail: String },

    #[error("kernel source {origin}: {detail}; the file is not a valid RPM package or is truncated: re-download it")]
    RpmFormat { origin: String, detail: String },

    #[error("kernel source {origin}: reading {entry} in the package failed: {err}; the package is corrupt or truncated: re-download it")]
    PackageRead {
        origin: String,
        entry: String,
        err: io::Error,
    },

    #[error("kernel source {origin}: the package contains the unsafe path {entry:?} (absolute or with a \"..\" component); refusing to use it: use a package from a trusted build")]
    UnsafeEntry { origin: String, entry: String },

    #[error("kernel source {origin}: no kernel image in the package: looked for a regular file {looked_for} in {container}{ignored}; use the kernel image package (linux-image, kernel-core, kernel-default), not a headers/meta/modules package, or name the file with `kernel_path:`")]
    NoKernel {
        origin: String,
        container: String,
        looked_for: String,
        /// Already formatted: ", ignored (not regular files): ..." or empty.
        ignored: String,
    },

    #[error("kernel source {origin}: several kernel images in the package: {}; name the one to boot with `kernel_path:` in the matrix", candidates.join(", "))]
    ManyKernels {
        origin: String,
        candidates: Vec<String>,
    },

    #[error("kernel source {origin} is an {found} kernel, but the matrix declares `arch: {declared}` for it; set `arch: {found}` on this kernel, or point its source at the {declared} build")]
    WrongArch {
        origin: String,
        declared: Arch,
        found: Arch,
    },

    #[error("kernel source {origin}: package entry {entry} is neither an x86 bzImage nor an arm64 Image (found {found}); this package's kernel cannot be booted with qemu -kernel")]
    ImageNotBootable {
        origin: String,
        entry: String,
        found: String,
    },

    #[error("kernel source {origin}: package entry {entry} is larger than the {limit}-byte limit for a kernel image; the package is not a usable kernel package")]
    ImageTooLarge {
        origin: String,
        entry: String,
        limit: u64,
    },

    #[error("module source {origin}: it holds no kernel modules (no .ko, .ko.xz, .ko.zst or .ko.gz under lib/modules/ or usr/lib/modules/); point the kernel's `modules:` at the package that ships them (Debian and Ubuntu: linux-modules-RELEASE; Fedora: kernel-modules-core)")]
    NoModules { origin: String },

    #[error("kernel config {path}: {why}")]
    BadConfig { path: PathBuf, why: String },

    #[error("kernel source {origin}: package entry {entry} is larger than the {limit}-byte limit for a kernel module; the package is not a usable kernel package")]
    ModuleTooLarge {
        origin: String,
        entry: String,
        limit: u64,
    },

    #[error("kernel source {origin}: kernel_path {kernel_path:?} is given but the source is a bare bzImage, not a package or image; remove `kernel_path:`")]
    KernelPathOnImage { origin: String, kernel_path: String },

    #[error("kernel source {origin}: {detail}")]
    Oci { origin: String, detail: String },

    #[error("kernel source {origin}: {detail}; check the package name and version (`apt-cache policy PACKAGE` lists the versions this runner's apt knows; run `apt-get update` first)")]
    Apt { origin: String, detail: String },

    #[error("package index {index}: cannot read it: {err}; give a Debian or Ubuntu `Packages` index (plain, .gz or .xz), a file or an http(s) URL")]
    IndexRead { index: String, err: std::io::Error },

    #[error("kernel source {origin} is not in the kernel cache and this run may not fetch it; run `bpfcompat kernels fetch` with network access, or `bpfcompat kernels import` its file")]
    NotCached { origin: String },

    #[error("kernel image {}: cannot read its BTF: {detail}; check that the file is a whole x86 bzImage, arm64 Image or EFI zboot image (re-fetch it if it is truncated or corrupt)", path.display())]
    ImageBtf { path: PathBuf, detail: String },

    #[error("kernel image {}: its kernel is compressed with {compression}, which bpfcompat cannot decompress, so its BTF cannot be read from the file; use a build compressed with gzip, xz, zstd or lz4 (CONFIG_KERNEL_GZIP, _XZ, _ZSTD or _LZ4)", path.display())]
    ImageCompression { path: PathBuf, compression: String },

    #[error("kernel cache: cannot {action} {}: {err}; check permissions and free space under the cache directory, or delete it to start afresh", path.display())]
    Cache {
        action: &'static str,
        path: PathBuf,
        err: io::Error,
    },

    #[error("kernel cache: the disk is full (or the disk quota is used up): cannot {action} {}; free space on the disk that holds the cache (`bpfcompat kernels prune` removes what a matrix no longer needs), or point --cache-dir at a larger disk", path.display())]
    CacheFull {
        action: &'static str,
        path: PathBuf,
        #[source]
        err: io::Error,
    },
}

impl KernelError {
    /// Failing to `action` `path` in the cache; a full disk says so.
    pub(crate) fn cache(action: &'static str, path: PathBuf, err: io::Error) -> Self {
        match err.kind() {
            io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => {
                KernelError::CacheFull { action, path, err }
            }
            _ => KernelError::Cache { action, path, err },
        }
    }

    /// Whether the cache itself failed, rather than the source.
    pub(crate) fn is_cache(&self) -> bool {
        matches!(
            self,
            KernelError::Cache { .. } | KernelError::CacheFull { .. }
        )
    }
}
