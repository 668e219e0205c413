//! When each BPF feature appeared upstream: `data/kernel-features.json`,
//! carried over from iovisor/bcc's `docs/kernel-versions.md` and the UAPI
//! header's history (`data/README.md` says how), compiled in.

use std::sync::OnceLock;

use serde::Deserialize;

use super::version::Version;

/// One feature: its UAPI id where it has one, name, and first release.
#[derive(Debug, Deserialize)]
pub struct Feature {
    #[serde(default)]
    pub id: Option<u32>,
    pub name: String,
    pub since: Version,
    /// Helpers only: `.gpl_only` in the kernel's `bpf_func_proto`, where
    /// the source establishes it.
    #[serde(default)]
    pub gpl_only: Option<bool>,
}

#[derive(Debug, Deserialize)]
pub struct Table {
    pub helpers: Vec<Feature>,
    pub map_types: Vec<Feature>,
    pub prog_types: Vec<Feature>,
    pub attach_types: Vec<Feature>,
    pub kfuncs: Vec<Feature>,
}

const JSON: &str = include_str!("../../data/kernel-features.json");

/// The table, parsed once; a test proves it parses.
pub fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| serde_json::from_str(JSON).expect("data/kernel-features.json parses"))
}

impl Table {
    pub fn helper(&self, id: u32) -> Option<&Feature> {
        self.helpers.iter().find(|f| f.id == Some(id))
    }

    pub fn map_type(&self, id: u32) -> Option<&Feature> {
        self.map_types.iter().find(|f| f.id == Some(id))
    }

    pub fn prog_type(&self, name: &str) -> Option<&Feature> {
        self.prog_types.iter().find(|f| f.name == name)
    }

    pub fn attach_type(&self, name: &str) -> Option<&Feature> {
        self.attach_types.iter().find(|f| f.name == name)
    }

    pub fn kfunc(&self, name: &str) -> Option<&Feature> {
        self.kfuncs.iter().find(|f| f.name == name)
    }
}
