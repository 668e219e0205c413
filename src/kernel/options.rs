//! How to resolve a kernel: where else to look, what to tell, what not to do.

use super::fetch::{Limits, ProgressFn};
use super::mirror::Mirror;
use crate::arch::Arch;

/// How to resolve: where else to look, what to tell, what not to do.
#[derive(Clone, Default)]
pub struct Options {
    /// Tried before the origin (`BPFCOMPAT_KERNEL_MIRROR`).
    pub mirror: Option<Mirror>,
    /// Told about every download's progress.
    pub progress: Option<ProgressFn>,
    /// Make no network request and run no apt-get: a kernel that is not in
    /// the cache (or a local mirror) is `KernelError::NotCached`.
    pub offline: bool,
    /// Resolve an unpinned source from its origin again, ignoring the digest
    /// the cache remembers for it (`bpfcompat kernels lock`).
    pub fresh: bool,
    /// Timeouts, size limit and attempts of every download (tests shorten
    /// them to provoke faults quickly).
    pub limits: Limits,
    /// The architecture the kernel must be (the matrix's `arch:`): which
    /// package apt fetches, which variant of an image index is taken.
    pub arch: Arch,
}
