//! Kernels for the matrix: fetch, recognise, extract and cache them.
//!
//! A matrix entry names a kernel as a [`Source`]: a local file, a URL, an OCI
//! image or a Debian package that the runner's own apt knows. Whatever the
//! source points at (a bzImage, a `.deb`, an `.rpm`, an image's layers) is
//! recognised by its content, never by its name. [`resolve`] turns the source
//! into a verified bzImage on disk that QEMU can boot with `-kernel`.
//!
//! A source is *pinned* when its digest is known (given in the matrix, or
//! recorded in the lock file, see `crate::matrix::lock`); an unpinned one is resolved
//! from its origin and its digest remembered in the cache, so concurrent runs
//! fetch it once.
//!
//! Everything here is blocking; the async caller runs it in `spawn_blocking`.
//! Downloads and extractions are cached under a [`KernelCache`] root, shared
//! safely between threads and processes (see `cache.rs`).
//!
//! The modules stack without loops: each uses only modules named before it.
//! - `error`, `hash`, `sniff`: what goes wrong, sha256 digests, and every
//!   magic number; they use no sibling.
//! - `compress` (decoders), `image` (a bzImage's release), `fetch`
//!   (downloads), `cache` (blobs, locks and records), `vmlinux` (a kernel's
//!   own BTF, read out of its image and cached), `kconfig` (its build
//!   configuration, kept beside the BTF), `mirror`, `options`.
//! - `source`: what a matrix names, what it pointed at and what it gave.
//! - `pick` (which entry of a container is the kernel), `modtree` (module
//!   trees: collected, indexed, kept, and the closure a check needs),
//!   `contents` (both, as a container is read), `tarball`, `deb`, `rpm`:
//!   reading containers; `extract`: their image and modules into the cache,
//!   recorded.
//! - `apt`, `oci`: packages from the runner's apt, images from a registry;
//!   `resolve`: any source; `inventory`: the cache as a whole; `remote`:
//!   whether a source is still published, asked without downloading.

mod apt;
mod cache;
mod compress;
mod contents;
mod deb;
mod error;
mod extract;
mod fetch;
mod hash;
mod image;
mod inventory;
mod kconfig;
mod mirror;
mod modtree;
mod oci;
mod options;
mod pick;
mod remote;
mod resolve;
mod rpm;
mod sniff;
mod source;
pub mod sweep;
mod tarball;
mod vmlinux;

pub use apt::{
    valid_package as valid_apt_package, valid_version as valid_apt_version, APT_GET_ENV,
};
pub use cache::KernelCache;
pub(crate) use cache::{temp_prefix, DigestLock};
pub use error::KernelError;
pub use fetch::{Limits, ProgressFn, Transfer};
pub use image::release_of;
pub use inventory::{import, list_blobs, prune, source_digest, verify};
pub use kconfig::{read_config_file, KernelConfig};
pub use mirror::Mirror;
pub use modtree::{
    normalise_name as normalise_module_name, LoadPlan, ModuleEntry, ModuleTree, TreeIndex,
    Want as ModuleWant,
};
pub use oci::Reference as OciReference;
pub use options::Options;
pub use remote::check_remote;
pub use resolve::{open_modules, resolve, resolve_modules};
pub use sniff::is_bzimage;
pub use source::{ResolvedKernel, Source, SourceFormat};
pub use vmlinux::{btf_of_image, Features};
