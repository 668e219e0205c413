//! The manifest file as written: the Go bpfcompat's schema
//! (`internal/manifest`), field for field, plus our extensions. Every
//! struct denies unknown fields, so a typo is an error, not a silent no-op.
//! Values whose shape depends on their content (`attach`, `max_entries`,
//! `requires_helper`, `globals`) stay YAML values, interpreted with errors
//! that name their field.

use serde::Deserialize;
use serde_norway::{Mapping, Value};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawManifest {
    /// Informational: shown with the manifest's path.
    pub name: Option<String>,
    #[serde(default)]
    pub programs: Vec<RawProgram>,
    #[serde(default)]
    pub maps: Vec<RawMap>,
    #[serde(default)]
    pub program_types: Vec<RawProgramType>,
    #[serde(default)]
    pub program_variants: Vec<RawVariantGroup>,
    #[serde(default)]
    pub probe_companions: Vec<String>,
    #[serde(default)]
    pub required_profiles: Vec<String>,
    #[serde(default)]
    pub functional_tests: Vec<RawFunctionalTest>,
    /// Free-form, for the user's own tools: accepted, not used.
    #[serde(rename = "metadata")]
    pub _metadata: Option<Mapping>,
    /// Ours: initial values of `.rodata`/`.data`/`.bss` variables.
    #[serde(default)]
    pub globals: Mapping,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProgram {
    pub name: String,
    pub section: Option<String>,
    /// Informational, as in the Go tool: accepted, not used (the section
    /// decides the type; `program_types` overrides it).
    #[serde(rename = "type")]
    pub _prog_type: Option<String>,
    /// The Go tool's mapping, or ours: `optional` / `required`.
    pub attach: Option<Value>,
    /// Ours: behavior mode checks that the program ran.
    #[serde(default)]
    pub expect_run: bool,
}

/// `programs[].attach` as a mapping: the Go tool's keys, then ours.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAttachSpec {
    pub kind: Option<String>,
    /// Tracepoint category and name.
    pub category: Option<String>,
    pub name: Option<String>,
    /// kprobe/fentry function, or uprobe symbol (with `binary`).
    pub symbol: Option<String>,
    pub required: Option<bool>,
    /// Ours: the uprobe's binary.
    pub binary: Option<String>,
    /// Ours: xdp/tc interface.
    pub interface: Option<String>,
    /// Ours: cgroup directory.
    pub cgroup: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMap {
    pub name: String,
    /// A positive integer or `cpus`.
    pub max_entries: Option<Value>,
    pub inner_ringbuf_bytes: Option<u32>,
    pub inner_map: Option<RawInnerMap>,
    /// Ours: `bpf_map__set_key_size`.
    pub key_size: Option<u32>,
    /// Ours: `bpf_map__set_value_size`.
    pub value_size: Option<u32>,
    /// Ours: a stack-trace map's value size, in frames.
    pub stack_depth: Option<u32>,
    /// Ours: `bpf_map__set_map_flags`: a number or a list of `BPF_F_*`.
    pub map_flags: Option<Value>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawInnerMap {
    #[serde(rename = "type")]
    pub map_type: String,
    #[serde(default)]
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProgramType {
    /// A program name or an ELF section.
    pub program: String,
    #[serde(rename = "type")]
    pub prog_type: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawVariantGroup {
    pub group: String,
    #[serde(default)]
    pub programs: Vec<RawVariant>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawVariant {
    pub name: String,
    /// A helper name or a numeric id.
    pub requires_helper: Option<Value>,
    /// Ours.
    pub requires_kfunc: Option<String>,
    /// Ours.
    pub requires_target: Option<String>,
    pub probe: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFunctionalTest {
    pub name: String,
    pub command: String,
    pub required: Option<bool>,
    pub timeout: Option<String>,
    pub expect_exit_code: Option<i64>,
    pub expect_stdout_contains: Option<String>,
    pub expect_stderr_contains: Option<String>,
}
