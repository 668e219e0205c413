//! Placeholder until the kernel branch lands.
use std::path::PathBuf;

#[derive(Debug, Clone)]
pub enum Source {
    File { path: PathBuf, sha256: Option<String> },
    Url { url: String, sha256: String },
}
impl Source {
    pub fn describe(&self) -> String {
        todo!()
    }
}
#[derive(Clone)]
pub struct KernelCache;
impl KernelCache {
    pub fn new(_root: PathBuf) -> Self {
        todo!()
    }
}
pub struct ResolvedKernel {
    pub image: PathBuf,
    pub sha256: String,
}
#[derive(Debug, thiserror::Error)]
#[error("kernel")]
pub struct KernelError;
pub fn resolve(_c: &KernelCache, _s: &Source) -> Result<ResolvedKernel, KernelError> {
    todo!()
}
