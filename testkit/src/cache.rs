//! What the tests of `bpfcompat::kernel` set up and read back: a kernel
//! cache in a temp dir, the sources they resolve into it, a test kernel
//! served over HTTP, what the cache holds afterwards, and the module wants
//! of a load plan.
//!
//! These speak bpfcompat's own types, so they serve the integration tests
//! (`tests/`) only: bpfcompat's unit tests see another build of them.

use std::fs;
use std::path::Path;

use bpfcompat::kernel::{
    self, KernelCache, KernelError, LoadPlan, ModuleTree, ModuleWant, Options, ResolvedKernel,
    Source,
};

use crate::http::{Plan, TestServer};
use crate::kernels::Kernel;

/// An empty kernel cache, `cache/` in a temp dir that the test may also
/// use; both go when the dir is dropped.
pub fn scratch_cache() -> (tempfile::TempDir, KernelCache) {
    let dir = tempfile::tempdir().unwrap();
    let cache = KernelCache::new(dir.path().join("cache"));
    (dir, cache)
}

pub fn file_source(path: &Path, sha256: Option<&str>) -> Source {
    Source::File {
        path: path.to_owned(),
        sha256: sha256.map(str::to_owned),
        kernel_path: None,
    }
}

pub fn url_source(url: String, sha256: &str) -> Source {
    Source::Url {
        url,
        sha256: Some(sha256.to_owned()),
        kernel_path: None,
    }
}

/// A URL without a pin: resolving it records the digest it found.
pub fn unpinned_url(url: String) -> Source {
    Source::Url {
        url,
        sha256: None,
        kernel_path: None,
    }
}

/// An image by reference (`host/repo:tag`), no digest pinned.
pub fn oci_source(reference: &str) -> Source {
    Source::Oci {
        reference: reference.to_owned(),
        digest: None,
        kernel_path: None,
    }
}

/// Resolves with the default options: no mirror, no progress.
pub fn resolve(cache: &KernelCache, source: &Source) -> Result<ResolvedKernel, KernelError> {
    kernel::resolve(cache, source, &Options::default())
}

/// The module tree of `source` (a kernel's own, or a modules-only
/// package), with the default options.
pub fn resolve_modules(cache: &KernelCache, source: &Source) -> Result<ModuleTree, KernelError> {
    kernel::resolve_modules(cache, source, &Options::default())
}

/// Resolves `source` from two threads at once; both results.
pub fn resolve_twice_at_once(cache: &KernelCache, source: &Source) -> [ResolvedKernel; 2] {
    std::thread::scope(|s| {
        let first = s.spawn(|| resolve(cache, source).unwrap());
        let second = s.spawn(|| resolve(cache, source).unwrap());
        [first.join().unwrap(), second.join().unwrap()]
    })
}

/// Options that never touch the network: only what is cached resolves.
pub fn offline() -> Options {
    Options {
        offline: true,
        ..Options::default()
    }
}

/// Resolves the kernel of digest `sha256` offline, from a URL that cannot
/// be reached: it is found in the cache by its pin, or not at all.
pub fn resolve_cached(cache: &KernelCache, sha256: &str) -> Result<ResolvedKernel, KernelError> {
    let source = url_source("https://example.invalid/k".into(), sha256);
    kernel::resolve(cache, &source, &offline())
}

/// An HTTP server on 127.0.0.1 whose every path serves the test kernel
/// `k`'s file (a bzImage or a package), faulted by `plan`.
pub fn serve_kernel(k: &Kernel, plan: Plan) -> TestServer {
    TestServer::start(k.bytes(), plan)
}

/// Names of the files in a cache subfolder, sorted (empty if it does not
/// exist).
pub fn listing(cache: &KernelCache, sub: &str) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(cache.root().join(sub))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// A failed resolve kept nothing: no blob, and nothing half-written in the
/// cache's `tmp/`.
pub fn assert_nothing_kept(cache: &KernelCache) {
    assert_eq!(listing(cache, "blobs/sha256"), Vec::<String>::new());
    assert_eq!(listing(cache, "tmp"), Vec::<String>::new());
}

/// A module wanted by name, as a tc program wants it.
pub fn want_module(name: &str) -> ModuleWant {
    ModuleWant::Module {
        name: name.into(),
        why: "tc program".into(),
    }
}

/// The module defining `function`, as a kprobe on it wants it.
pub fn want_function(function: &str) -> ModuleWant {
    ModuleWant::Function {
        name: function.into(),
        why: format!("kprobe/{function}"),
    }
}

/// The names of the modules a plan loads, in its order.
pub fn load_order(plan: &LoadPlan) -> Vec<&str> {
    plan.load.iter().map(|(m, _)| m.name.as_str()).collect()
}
