//! Kernel modules the host ships into a guest, and what loading them gave.
//!
//! When a check needs modules (a classic tc program needs `sch_ingress` and
//! `cls_bpf` on kernels that build them as modules; a kprobe on a module's
//! function needs that module), the host resolves them and their
//! dependencies from the kernel's module tree, decompresses them and puts
//! them in the initramfs with a [`ModuleLoadRequest`] at [`MODULES_PATH`],
//! in the order they must be loaded (dependencies first). Without that file
//! the agent loads nothing and spends no time on modules.

use serde::{Deserialize, Serialize};

/// The load list inside the guest; absent when no module is to be loaded.
pub const MODULES_PATH: &str = "/bpfcompat/modules/load.json";
/// Where the module files sit inside the guest.
pub const MODULES_DIR: &str = "/bpfcompat/modules";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ModuleLoadRequest {
    /// In load order: every module after the modules it depends on.
    pub modules: Vec<ModuleToLoad>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ModuleToLoad {
    /// The module's name (`cls_bpf`), as the kernel knows it.
    pub name: String,
    /// The uncompressed `.ko` inside the guest.
    pub path: String,
    /// Why it is loaded: "tc program tc_pass", "defines nf_conntrack_in
    /// (kprobe/nf_conntrack_in)", "needed by nf_conntrack", "--modules".
    pub why: String,
}

/// What loading one module gave, in load order.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ModuleLoadResult {
    pub name: String,
    pub why: String,
    pub status: ModuleStatus,
    /// For a failure: the errno of `finit_module`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errno: Option<i32>,
    /// For a failure: the kernel's own words (its log lines about the
    /// module, e.g. "version magic '7.2.13 ...' should be '6.1.0 ...'" or
    /// "Unknown symbol nf_defrag_v4_enable"), else the errno's meaning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ModuleStatus {
    Loaded,
    /// Already in the kernel (EEXIST): loaded by another module's request.
    AlreadyLoaded,
    Failed,
}
