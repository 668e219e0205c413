//! Manifests and suites: what an object's own loader does that a generic
//! libbpf load would not (the loader contract), and collections of objects
//! to check together. Both are read in the format of the Go bpfcompat, so
//! its users keep their files, plus extensions (docs/manifest.md).
//!
//! Parsing is strict: an unknown field or a wrong type is an error naming
//! file, line and field. A manifest is then checked against the object it
//! describes ([`Manifest::contract`]): every program, map and global it
//! names must be in the object and every value must fit, all before any
//! kernel boots. What passes becomes the [`LoaderContract`] the agent
//! applies in the guest.

mod globals;
mod schema;
pub mod suite;

use std::collections::BTreeSet;
use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bpfcompat_proto::object::{
    helper_id, helper_name, AttachTarget, FunctionalTest, InnerMap, LoaderContract, MapFixup,
    MaxEntries, ProgramContract, ProgramTypeOverride, Requirement, Variant, VariantGroup,
};
use serde_norway::Value;
use thiserror::Error;

use crate::matrix::{parse_duration, Matrix};
use crate::object::{map_type_id, map_type_name, prog_type_id, prog_type_names};
use crate::report::inspection::{ObjectSummary, ProgramSummary};
use crate::yaml::{self, Field};
use schema::{RawAttachSpec, RawManifest, RawMap};

/// Where a functional test stops when its manifest gives no `timeout`.
pub const DEFAULT_TEST_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest `timeout` a functional test may ask for (as in the Go tool).
const MAX_TEST_TIMEOUT: Duration = Duration::from_secs(300);

#[derive(Debug, Error)]
pub enum ManifestError {
    #[error("cannot read {what} {path}: {err}")]
    Read {
        what: &'static str,
        path: PathBuf,
        err: std::io::Error,
    },
    #[error("{path}{}: {message}", line.map(|l| format!(":{l}")).unwrap_or_default())]
    Invalid {
        path: PathBuf,
        line: Option<usize>,
        message: String,
    },
}

/// An input file's text, for errors that name its file, line and field.
#[derive(Debug, Clone)]
struct Doc {
    path: PathBuf,
    text: String,
}

impl Doc {
    fn read(what: &'static str, path: &Path) -> Result<Doc, ManifestError> {
        let text = std::fs::read_to_string(path).map_err(|err| ManifestError::Read {
            what,
            path: path.to_owned(),
            err,
        })?;
        Ok(Doc {
            path: path.to_owned(),
            text,
        })
    }

    fn parse<T: serde::de::DeserializeOwned>(&self) -> Result<T, ManifestError> {
        yaml::parse(&self.text).map_err(|e| ManifestError::Invalid {
            path: self.path.clone(),
            line: e.line,
            message: e.message,
        })
    }

    /// An error about `field`, at its line: `FILE:LINE: FIELD: MESSAGE`.
    fn err(&self, field: &Field, message: impl Display) -> ManifestError {
        ManifestError::Invalid {
            path: self.path.clone(),
            line: field.line(&self.text),
            message: format!("{field}: {message}"),
        }
    }

    /// A warning about `field`, in the same form.
    fn warning(&self, field: &Field, message: impl Display) -> String {
        self.err(field, message).to_string()
    }
}

/// A parsed manifest, not yet checked against its object.
#[derive(Debug, Clone)]
pub struct Manifest {
    doc: Doc,
    raw: RawManifest,
}

/// Kernels a manifest's `required_profiles` names (the Go tool's profile
/// ids), to be matched with the matrix's kernel ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequiredProfile {
    pub name: String,
    /// `FILE:LINE: required_profiles[i]`, for the warning if no kernel has it.
    pub place: String,
}

impl Manifest {
    pub fn load(path: &Path) -> Result<Manifest, ManifestError> {
        let doc = Doc::read("manifest", path)?;
        let raw = if doc.text.lines().all(|l| {
            let l = l.trim();
            l.is_empty() || l.starts_with('#') || l == "---"
        }) {
            RawManifest::default()
        } else {
            doc.parse()?
        };
        Ok(Manifest { doc, raw })
    }

    pub fn path(&self) -> &Path {
        &self.doc.path
    }

    /// The path, and the manifest's `name:` if it has one, for notes.
    pub fn describe(&self) -> String {
        match &self.raw.name {
            Some(name) => format!("{} ({name})", self.doc.path.display()),
            None => self.doc.path.display().to_string(),
        }
    }

    /// `X.manifest.yaml` beside `X.bpf.o` (or `X.o`), if there is one.
    pub fn beside(object: &Path) -> Option<PathBuf> {
        let name = object.file_name()?.to_str()?;
        let stem = name
            .strip_suffix(".bpf.o")
            .or_else(|| name.strip_suffix(".o"))
            .unwrap_or(name);
        let candidate = object.with_file_name(format!("{stem}.manifest.yaml"));
        candidate.is_file().then_some(candidate)
    }

    pub fn required_profiles(&self) -> Result<Vec<RequiredProfile>, ManifestError> {
        let field = Field::root().key("required_profiles");
        let mut seen = BTreeSet::new();
        let mut profiles = Vec::new();
        for (i, name) in self.raw.required_profiles.iter().enumerate() {
            let at = field.index(i);
            if name.trim().is_empty() {
                return Err(self
                    .doc
                    .err(&at, "is empty; give a kernel id of the matrix"));
            }
            if !seen.insert(name) {
                return Err(self.doc.err(&at, format!("{name:?} is listed twice")));
            }
            profiles.push(RequiredProfile {
                name: name.clone(),
                place: format!(
                    "{}{}: {at}",
                    self.doc.path.display(),
                    at.line(&self.doc.text)
                        .map(|l| format!(":{l}"))
                        .unwrap_or_default()
                ),
            });
        }
        Ok(profiles)
    }

    /// Checks the manifest against `object` and resolves it into what the
    /// agent applies. The case, mode and auto-fixup switch are the caller's.
    pub fn contract(&self, object: &ObjectSummary) -> Result<LoaderContract, ManifestError> {
        let c = Checker {
            doc: &self.doc,
            object,
        };
        let raw = &self.raw;
        let field = Field::root().key("functional_tests");
        let functional_tests = raw
            .functional_tests
            .iter()
            .enumerate()
            .map(|(i, t)| {
                TestSpec {
                    name: &t.name,
                    command: &t.command,
                    required: t.required.unwrap_or(true),
                    timeout: t.timeout.as_deref(),
                    exit_code: t.expect_exit_code,
                    stdout_contains: t.expect_stdout_contains.as_deref(),
                    stderr_contains: t.expect_stderr_contains.as_deref(),
                }
                .resolve(&self.doc, &field.index(i), (&field.index(i), "expect_"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        unique_tests(&self.doc, &functional_tests)?;
        Ok(LoaderContract {
            programs: c.programs(&raw.programs)?,
            maps: c.maps(&raw.maps)?,
            program_types: c.program_types(&raw.program_types)?,
            variant_groups: c.variant_groups(&raw.program_variants)?,
            probe_companions: c.probe_companions(&raw.probe_companions)?,
            globals: globals::resolve(&self.doc, object, &raw.globals)?,
            functional_tests,
            ..LoaderContract::default()
        })
    }
}

/// Marks the kernels that `profiles` name as required; a name that is no
/// kernel of the matrix is a warning (the Go tool's profile catalogue is not
/// ours), returned for the caller to print.
pub fn require_profiles(matrix: &mut Matrix, profiles: &[RequiredProfile]) -> Vec<String> {
    let mut warnings = Vec::new();
    for p in profiles {
        match matrix.kernels.iter_mut().find(|k| k.id == p.name) {
            Some(kernel) => kernel.required = true,
            None => warnings.push(format!(
                "{}: {:?} is not a kernel of matrix {} (its kernels: {}); ignored",
                p.place,
                p.name,
                matrix.path.display(),
                matrix
                    .kernels
                    .iter()
                    .map(|k| k.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }
    warnings
}

/// A functional test as written, in a manifest or in a suite's `test:`.
struct TestSpec<'a> {
    name: &'a str,
    command: &'a str,
    required: bool,
    timeout: Option<&'a str>,
    exit_code: Option<i64>,
    stdout_contains: Option<&'a str>,
    stderr_contains: Option<&'a str>,
}

impl TestSpec<'_> {
    /// The Go tool's rules: single-line name, command and expectations, a
    /// command of at most 1000 bytes, a timeout up to 5m, an exit code
    /// 0..=255. The expectations are `{prefix}exit_code`, ... under `expect`
    /// (`expect_exit_code` in a manifest's test, `expect.exit_code` in a
    /// suite's).
    fn resolve(
        &self,
        doc: &Doc,
        field: &Field,
        (expect, prefix): (&Field, &str),
    ) -> Result<FunctionalTest, ManifestError> {
        let expectation = |name: &str| expect.key(&format!("{prefix}{name}"));
        let single_line = |at: Field, value: &str| {
            if value.contains(['\n', '\r']) {
                Err(doc.err(&at, "must be one line (join commands with ; or &&)"))
            } else {
                Ok(())
            }
        };
        if self.name.trim().is_empty() {
            return Err(doc.err(&field.key("name"), "is empty; name the test"));
        }
        single_line(field.key("name"), self.name)?;
        if self.command.trim().is_empty() {
            return Err(doc.err(
                &field.key("command"),
                "is empty; give the command to run in the guest",
            ));
        }
        single_line(field.key("command"), self.command)?;
        if self.command.len() > 1000 {
            return Err(doc.err(
                &field.key("command"),
                format!(
                    "is {} bytes, more than 1000; put it in a script and run that",
                    self.command.len()
                ),
            ));
        }
        for (name, value) in [
            ("stdout_contains", self.stdout_contains),
            ("stderr_contains", self.stderr_contains),
        ] {
            if let Some(v) = value {
                single_line(expectation(name), v)?;
            }
        }
        let timeout = match self.timeout {
            None => DEFAULT_TEST_TIMEOUT,
            Some(t) => {
                let d = parse_duration(t).map_err(|m| doc.err(&field.key("timeout"), m))?;
                if d > MAX_TEST_TIMEOUT {
                    return Err(doc.err(
                        &field.key("timeout"),
                        format!("{t} is longer than the limit of 5m"),
                    ));
                }
                d
            }
        };
        let exit_code = match self.exit_code {
            None => 0,
            Some(c @ 0..=255) => c as i32,
            Some(c) => {
                return Err(doc.err(
                    &expectation("exit_code"),
                    format!("{c} is not an exit code (0 to 255)"),
                ))
            }
        };
        Ok(FunctionalTest {
            name: self.name.to_owned(),
            command: self.command.to_owned(),
            required: self.required,
            timeout_ms: timeout.as_millis() as u64,
            expect_exit_code: exit_code,
            expect_stdout_contains: self.stdout_contains.map(str::to_owned),
            expect_stderr_contains: self.stderr_contains.map(str::to_owned),
        })
    }
}

fn unique_tests(doc: &Doc, tests: &[FunctionalTest]) -> Result<(), ManifestError> {
    let mut seen = BTreeSet::new();
    for (i, t) in tests.iter().enumerate() {
        if !seen.insert(&t.name) {
            return Err(doc.err(
                &Field::root().key("functional_tests").index(i).key("name"),
                format!("{:?} is used by an earlier test; names must differ", t.name),
            ));
        }
    }
    Ok(())
}

/// The attach kinds the Go tool accepts in `programs[].attach.kind`.
const ATTACH_KINDS: [&str; 11] = [
    "tracepoint",
    "raw_tracepoint",
    "kprobe",
    "kretprobe",
    "fentry",
    "fexit",
    "xdp",
    "tc",
    "cgroup",
    "lsm",
    "uprobe",
];

/// Inner map types the Go tool accepts in `maps[].inner_map.type`.
const INNER_MAP_TYPES: [&str; 6] = [
    "hash",
    "array",
    "lru_hash",
    "percpu_hash",
    "percpu_array",
    "lru_percpu_hash",
];

const MAP_TYPE_ARRAY_OF_MAPS: u32 = 12;
const MAP_TYPE_HASH_OF_MAPS: u32 = 13;

/// Checks a manifest's entries against the object.
struct Checker<'a> {
    doc: &'a Doc,
    object: &'a ObjectSummary,
}

impl Checker<'_> {
    fn err(&self, field: &Field, message: impl Display) -> ManifestError {
        self.doc.err(field, message)
    }

    /// The object's program `name`, or an error at `field` listing them.
    fn program(&self, field: &Field, name: &str) -> Result<&ProgramSummary, ManifestError> {
        self.object
            .programs
            .iter()
            .find(|p| p.name == name)
            .ok_or_else(|| {
                self.err(
                    field,
                    format!(
                        "{} has no program {name:?} (its programs: {}); fix the name or drop the entry",
                        self.object.path.display(),
                        list(self.object.programs.iter().map(|p| p.name.as_str()))
                    ),
                )
            })
    }

    fn programs(
        &self,
        programs: &[schema::RawProgram],
    ) -> Result<Vec<ProgramContract>, ManifestError> {
        let list_field = Field::root().key("programs");
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        for (i, p) in programs.iter().enumerate() {
            let field = list_field.index(i);
            let program = self.program(&field.key("name"), &p.name)?;
            if !seen.insert(&p.name) {
                return Err(self.err(&field.key("name"), format!("{:?} is listed twice", p.name)));
            }
            if let Some(section) = &p.section {
                if *section != program.section {
                    return Err(self.err(
                        &field.key("section"),
                        format!(
                            "{:?} is in section {:?}, not {section:?}; fix the section or drop it",
                            p.name, program.section
                        ),
                    ));
                }
            }
            let (attach_required, target) = match &p.attach {
                None => (true, None),
                Some(value) => self.attach(&field.key("attach"), program, value)?,
            };
            if !attach_required || target.is_some() || p.expect_run {
                out.push(ProgramContract {
                    name: p.name.clone(),
                    attach_required,
                    target,
                    expect_run: p.expect_run,
                });
            }
        }
        Ok(out)
    }

    /// `attach: optional`, `attach: required`, or the Go tool's mapping
    /// with our target keys.
    fn attach(
        &self,
        field: &Field,
        program: &ProgramSummary,
        value: &Value,
    ) -> Result<(bool, Option<AttachTarget>), ManifestError> {
        let spec: RawAttachSpec = match value {
            Value::String(word) => {
                return match word.as_str() {
                    "optional" => Ok((false, None)),
                    "required" => Ok((true, None)),
                    other => Err(self.err(
                        field,
                        format!("{other:?} is not optional, required or a mapping like {{kind: kprobe, symbol: vfs_read}}"),
                    )),
                }
            }
            Value::Mapping(_) => serde_norway::from_value(value.clone())
                .map_err(|e| self.err(field, e))?,
            _ => {
                return Err(self.err(
                    field,
                    "must be optional, required or a mapping like {kind: kprobe, symbol: vfs_read}",
                ))
            }
        };
        if let Some(kind) = &spec.kind {
            if !ATTACH_KINDS.contains(&kind.as_str()) {
                return Err(self.err(
                    &field.key("kind"),
                    format!("{kind:?} is not one of {}", ATTACH_KINDS.join(", ")),
                ));
            }
            if let Some(actual) = &program.prog_type {
                if !kind_fits(kind, actual) {
                    return Err(self.err(
                        &field.key("kind"),
                        format!(
                            "{kind} does not fit {:?}, a {actual} program (section {:?})",
                            program.name, program.section
                        ),
                    ));
                }
            }
        }
        let target = self.attach_target(field, &spec)?;
        if let (Some(t), Some(actual)) = (&target, &program.prog_type) {
            if !target_fits(t, actual, &program.section) {
                return Err(self.err(
                    field,
                    format!(
                        "{} does not fit {:?}, a {actual} program (section {:?})",
                        describe(t),
                        program.name,
                        program.section
                    ),
                ));
            }
        }
        Ok((spec.required.unwrap_or(true), target))
    }

    fn attach_target(
        &self,
        field: &Field,
        spec: &RawAttachSpec,
    ) -> Result<Option<AttachTarget>, ManifestError> {
        let mut targets = Vec::new();
        match (&spec.category, &spec.name) {
            (Some(category), Some(name)) => targets.push(AttachTarget::Tracepoint {
                category: category.clone(),
                name: name.clone(),
            }),
            (None, None) => {}
            (Some(_), None) => {
                return Err(self.err(
                    &field.key("category"),
                    "needs name: too (the tracepoint is category/name)",
                ))
            }
            (None, Some(_)) => {
                return Err(self.err(
                    &field.key("name"),
                    "needs category: too (the tracepoint is category/name)",
                ))
            }
        }
        match (&spec.binary, &spec.symbol) {
            (Some(binary), Some(symbol)) => targets.push(AttachTarget::Uprobe {
                binary: binary.clone(),
                symbol: symbol.clone(),
            }),
            (Some(_), None) => {
                return Err(self.err(
                    &field.key("binary"),
                    "needs symbol: too (the uprobe is binary:symbol)",
                ))
            }
            (None, Some(symbol)) => targets.push(AttachTarget::Function(symbol.clone())),
            (None, None) => {}
        }
        if let Some(interface) = &spec.interface {
            targets.push(AttachTarget::Interface(interface.clone()));
        }
        if let Some(cgroup) = &spec.cgroup {
            targets.push(AttachTarget::Cgroup(cgroup.clone()));
        }
        if targets.len() > 1 {
            return Err(self.err(
                field,
                format!(
                    "names {} targets ({}); give one",
                    targets.len(),
                    list(targets.iter().map(describe))
                ),
            ));
        }
        Ok(targets.pop())
    }

    fn maps(&self, maps: &[RawMap]) -> Result<Vec<MapFixup>, ManifestError> {
        let list_field = Field::root().key("maps");
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        for (i, m) in maps.iter().enumerate() {
            let field = list_field.index(i);
            let map = self
                .object
                .maps
                .iter()
                .find(|x| x.name == m.name)
                .ok_or_else(|| {
                    self.err(
                        &field.key("name"),
                        format!(
                            "{} has no map {:?} (its maps: {}); fix the name or drop the entry",
                            self.object.path.display(),
                            m.name,
                            list(self.object.maps.iter().map(|m| m.name.as_str()))
                        ),
                    )
                })?;
            if !seen.insert(&m.name) {
                return Err(self.err(&field.key("name"), format!("{:?} is listed twice", m.name)));
            }
            if m.max_entries.is_none() && m.inner_ringbuf_bytes.is_none() && m.inner_map.is_none() {
                return Err(self.err(
                    &field,
                    "sets nothing: give max_entries, inner_ringbuf_bytes or inner_map",
                ));
            }
            let max_entries = m
                .max_entries
                .as_ref()
                .map(|v| self.max_entries(&field.key("max_entries"), v))
                .transpose()?;
            if m.inner_ringbuf_bytes.is_some() || m.inner_map.is_some() {
                let key = if m.inner_map.is_some() {
                    "inner_map"
                } else {
                    "inner_ringbuf_bytes"
                };
                if m.inner_ringbuf_bytes.is_some() && m.inner_map.is_some() {
                    return Err(self.err(
                        &field.key(key),
                        "give inner_map or inner_ringbuf_bytes, not both",
                    ));
                }
                if let Some(t) = map
                    .map_type
                    .filter(|t| ![MAP_TYPE_ARRAY_OF_MAPS, MAP_TYPE_HASH_OF_MAPS].contains(t))
                {
                    return Err(self.err(
                        &field.key(key),
                        format!(
                            "map {:?} is a {}, not an array_of_maps or hash_of_maps: it has no inner map",
                            m.name,
                            map_type_name(t).unwrap_or("map of unknown type")
                        ),
                    ));
                }
            }
            let inner_ringbuf_bytes = m
                .inner_ringbuf_bytes
                .map(|bytes| {
                    if bytes >= 4096 && bytes.is_power_of_two() {
                        Ok(bytes)
                    } else {
                        Err(self.err(
                            &field.key("inner_ringbuf_bytes"),
                            format!("{bytes} is not a power of two of at least 4096 (a ring buffer is whole pages)"),
                        ))
                    }
                })
                .transpose()?;
            let inner_map = m
                .inner_map
                .as_ref()
                .map(|inner| self.inner_map(&field.key("inner_map"), inner))
                .transpose()?;
            out.push(MapFixup {
                name: m.name.clone(),
                max_entries,
                inner_ringbuf_bytes,
                inner_map,
            });
        }
        Ok(out)
    }

    /// A positive integer (written as a number or a string, as the Go tool
    /// takes it) or `cpus`.
    fn max_entries(&self, field: &Field, value: &Value) -> Result<MaxEntries, ManifestError> {
        let text = match value {
            Value::Number(n) => n.to_string(),
            Value::String(s) => s.clone(),
            _ => String::new(),
        };
        if text == "cpus" {
            return Ok(MaxEntries::PossibleCpus);
        }
        match text.parse::<u32>() {
            Ok(n) if n > 0 => Ok(MaxEntries::Exactly(n)),
            _ => Err(self.err(
                field,
                format!(
                    "{} is not a positive integer (up to {}) or cpus",
                    if text.is_empty() {
                        "this".to_owned()
                    } else {
                        text
                    },
                    u32::MAX
                ),
            )),
        }
    }

    fn inner_map(
        &self,
        field: &Field,
        inner: &schema::RawInnerMap,
    ) -> Result<InnerMap, ManifestError> {
        if !INNER_MAP_TYPES.contains(&inner.map_type.as_str()) {
            return Err(self.err(
                &field.key("type"),
                format!(
                    "{:?} is not one of {}",
                    inner.map_type,
                    INNER_MAP_TYPES.join(", ")
                ),
            ));
        }
        let array = inner.map_type.ends_with("array");
        let key_size = match (inner.key_size, array) {
            (0, true) | (4, true) => 4,
            (k, true) => {
                return Err(self.err(
                    &field.key("key_size"),
                    format!("{k}: an array's keys are 4 bytes (or leave key_size out)"),
                ))
            }
            (0, false) => {
                return Err(self.err(
                    &field.key("key_size"),
                    format!(
                        "a {} needs key_size: the size of its keys in bytes",
                        inner.map_type
                    ),
                ))
            }
            (k, false) => k,
        };
        for (key, value) in [
            ("value_size", inner.value_size),
            ("max_entries", inner.max_entries),
        ] {
            if value == 0 {
                return Err(self.err(&field.key(key), "must be positive"));
            }
        }
        Ok(InnerMap {
            map_type: map_type_id(&inner.map_type).expect("inner map types are libbpf names"),
            map_type_name: inner.map_type.clone(),
            key_size,
            value_size: inner.value_size,
            max_entries: inner.max_entries,
        })
    }

    fn program_types(
        &self,
        overrides: &[schema::RawProgramType],
    ) -> Result<Vec<ProgramTypeOverride>, ManifestError> {
        let list_field = Field::root().key("program_types");
        let mut out = Vec::new();
        for (i, o) in overrides.iter().enumerate() {
            let field = list_field.index(i);
            let id = prog_type_id(&o.prog_type).ok_or_else(|| {
                self.err(
                    &field.key("type"),
                    format!(
                        "{:?} is not a BPF program type; one of {}",
                        o.prog_type,
                        prog_type_names().join(", ")
                    ),
                )
            })?;
            let programs: Vec<&ProgramSummary> = self
                .object
                .programs
                .iter()
                .filter(|p| p.name == o.program || p.section == o.program)
                .collect();
            if programs.is_empty() {
                return Err(self.err(
                    &field.key("program"),
                    format!(
                        "{} has no program or section {:?} (its programs: {}); fix the name or drop the entry",
                        self.object.path.display(),
                        o.program,
                        list(
                            self.object
                                .programs
                                .iter()
                                .map(|p| format!("{} in {}", p.name, p.section))
                        )
                    ),
                ));
            }
            out.extend(programs.into_iter().map(|p| ProgramTypeOverride {
                program: p.name.clone(),
                prog_type: id,
                prog_type_name: o.prog_type.clone(),
            }));
        }
        Ok(out)
    }

    fn variant_groups(
        &self,
        groups: &[schema::RawVariantGroup],
    ) -> Result<Vec<VariantGroup>, ManifestError> {
        let list_field = Field::root().key("program_variants");
        let mut names = BTreeSet::new();
        let mut used = BTreeSet::new();
        let mut out = Vec::new();
        for (i, g) in groups.iter().enumerate() {
            let field = list_field.index(i);
            if !identifier(&g.group) {
                return Err(self.err(
                    &field.key("group"),
                    format!("{:?} is not a name (letters, digits, _ and .)", g.group),
                ));
            }
            if !names.insert(&g.group) {
                return Err(self.err(&field.key("group"), format!("{:?} is used twice", g.group)));
            }
            if g.programs.is_empty() {
                return Err(self.err(
                    &field.key("programs"),
                    "is empty; list the group's programs, preferred first",
                ));
            }
            let mut variants = Vec::new();
            for (j, v) in g.programs.iter().enumerate() {
                let vfield = field.key("programs").index(j);
                self.program(&vfield.key("name"), &v.name)?;
                if !used.insert(&v.name) {
                    return Err(self.err(
                        &vfield.key("name"),
                        format!(
                            "{:?} is already a variant (of this or another group)",
                            v.name
                        ),
                    ));
                }
                variants.push(self.variant(&vfield, v)?);
            }
            out.push(VariantGroup {
                group: g.group.clone(),
                variants,
            });
        }
        Ok(out)
    }

    fn variant(&self, field: &Field, v: &schema::RawVariant) -> Result<Variant, ManifestError> {
        let mut requires = Vec::new();
        if let Some(helper) = &v.requires_helper {
            requires.push(self.helper(&field.key("requires_helper"), helper)?);
        }
        for (key, value, make) in [
            (
                "requires_kfunc",
                &v.requires_kfunc,
                Requirement::Kfunc as fn(String) -> Requirement,
            ),
            ("requires_target", &v.requires_target, Requirement::Target),
        ] {
            if let Some(name) = value {
                if !identifier(name) {
                    return Err(self.err(
                        &field.key(key),
                        format!("{name:?} is not a kernel function name"),
                    ));
                }
                requires.push(make(name.clone()));
            }
        }
        let trial_load = match v.probe.as_deref() {
            None => false,
            Some("trial_load") => true,
            Some(other) => {
                return Err(self.err(
                    &field.key("probe"),
                    format!("{other:?}: the one probe is trial_load"),
                ))
            }
        };
        Ok(Variant {
            program: v.name.clone(),
            requires,
            trial_load,
        })
    }

    /// A helper name (`bpf_loop`) or its numeric id, as the Go tool takes it.
    fn helper(&self, field: &Field, value: &Value) -> Result<Requirement, ManifestError> {
        let text = match value {
            Value::Number(n) => n.to_string(),
            Value::String(s) => s.clone(),
            _ => String::new(),
        };
        let id = helper_id(&text)
            .or_else(|| text.parse::<u32>().ok().filter(|&id| id > 0))
            .ok_or_else(|| {
                self.err(
                    field,
                    format!(
                        "{text:?} is not a BPF helper: give its name (bpf_loop) or its id (181)"
                    ),
                )
            })?;
        Ok(Requirement::Helper {
            id,
            name: helper_name(id).map(str::to_owned),
        })
    }

    fn probe_companions(&self, names: &[String]) -> Result<Vec<String>, ManifestError> {
        let list_field = Field::root().key("probe_companions");
        let mut seen = BTreeSet::new();
        for (i, name) in names.iter().enumerate() {
            self.program(&list_field.index(i), name)?;
            if !seen.insert(name) {
                return Err(self.err(&list_field.index(i), format!("{name:?} is listed twice")));
            }
        }
        Ok(names.to_vec())
    }
}

/// Whether the Go tool's attach `kind` can be a program of libbpf type
/// `prog_type`.
fn kind_fits(kind: &str, prog_type: &str) -> bool {
    match kind {
        "tracepoint" => prog_type == "tracepoint",
        "raw_tracepoint" => prog_type.starts_with("raw_tracepoint") || prog_type == "tracing",
        "kprobe" | "kretprobe" | "uprobe" => prog_type == "kprobe",
        "fentry" | "fexit" => prog_type == "tracing",
        "xdp" => prog_type == "xdp",
        "tc" => matches!(prog_type, "sched_cls" | "sched_act"),
        "cgroup" => prog_type.starts_with("cgroup") || prog_type == "sock_ops",
        "lsm" => prog_type == "lsm",
        _ => false,
    }
}

fn target_fits(target: &AttachTarget, prog_type: &str, section: &str) -> bool {
    let uprobe = section.starts_with("uprobe") || section.starts_with("uretprobe");
    match target {
        AttachTarget::Tracepoint { .. } => prog_type == "tracepoint",
        AttachTarget::Function(_) => matches!(prog_type, "kprobe" | "tracing" | "lsm") && !uprobe,
        AttachTarget::Uprobe { .. } => prog_type == "kprobe" && uprobe,
        AttachTarget::Interface(_) => matches!(prog_type, "xdp" | "sched_cls"),
        AttachTarget::Cgroup(_) => prog_type.starts_with("cgroup") || prog_type == "sock_ops",
    }
}

fn describe(target: &AttachTarget) -> String {
    match target {
        AttachTarget::Function(f) => format!("function {f}"),
        AttachTarget::Tracepoint { category, name } => format!("tracepoint {category}/{name}"),
        AttachTarget::Uprobe { binary, symbol } => format!("uprobe {binary}:{symbol}"),
        AttachTarget::Interface(i) => format!("interface {i}"),
        AttachTarget::Cgroup(c) => format!("cgroup {c}"),
    }
}

/// Letters, digits, `_` and `.`, at most 128: program, map, group, kfunc
/// and function names.
fn identifier(name: &str) -> bool {
    (1..=128).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
}

fn list<S: AsRef<str>>(items: impl Iterator<Item = S>) -> String {
    let items: Vec<String> = items.map(|s| s.as_ref().to_owned()).collect();
    if items.is_empty() {
        "none".to_owned()
    } else {
        items.join(", ")
    }
}

#[cfg(test)]
mod tests {
    //! Manifests and suites in the Go tool's format (the fixtures under
    //! tests/fixtures/contract/), checked against a made-up object.

    use std::path::{Path, PathBuf};

    use bpfcompat_proto::object::{
        AttachTarget, MaxEntries, ProgramContract, Requirement, ValidationMode,
    };

    use super::suite::Suite;
    use super::*;
    use crate::report::inspection::{GlobalVar, MapSummary};

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/contract")
            .join(name)
    }

    fn program(name: &str, section: &str) -> ProgramSummary {
        ProgramSummary {
            name: name.into(),
            section: section.into(),
            prog_type: crate::object::section_prog_type(section).map(|(t, _)| t.to_owned()),
            needs_kernel_btf: false,
            insns: 2,
            helpers: vec![],
            kfuncs: vec![],
        }
    }

    fn map(name: &str, map_type: u32) -> MapSummary {
        MapSummary {
            name: name.into(),
            map_type: Some(map_type),
            map_type_name: map_type_name(map_type).map(str::to_owned),
            max_entries: Some(0),
        }
    }

    fn global(name: &str, section: &str, offset: u32, size: u32) -> GlobalVar {
        GlobalVar {
            name: name.into(),
            section: section.into(),
            offset,
            size,
        }
    }

    /// The object `full.manifest.yaml` describes.
    fn object() -> ObjectSummary {
        ObjectSummary {
            path: "build/exec.bpf.o".into(),
            size: 1,
            sha256: "0".repeat(64),
            license: Some("GPL".into()),
            programs: vec![
                program("on_exec", "tracepoint/syscalls/sys_enter_execve"),
                program("on_open", "kprobe/do_sys_openat2"),
                program("on_readline", "uprobe"),
                program("on_ingress", "xdp"),
                program("on_connect", "cgroup/connect4"),
                program("socket1", "socket1"),
                program("exit_with_loop", "tracepoint/raw_syscalls/sys_exit"),
                program("exit_fallback", "tracepoint/raw_syscalls/sys_exit"),
                program("dump_task", "iter/task"),
                program("dump_task_numbered", "iter/task"),
                program("tail_target", "tracepoint/raw_syscalls/sys_enter"),
            ],
            maps: vec![
                map("per_cpu_scratch", 6),
                map("counters", 1),
                map("counters_by_string", 1),
                map("ringbufs", 12),
                map("visibility", 13),
            ],
            globals: vec![
                global("target_pid", ".rodata", 0, 4),
                global("comm_prefix", ".rodata", 4, 16),
                global("sample_every", ".data", 0, 4),
                global("verbose", ".bss", 0, 1),
            ],
            helpers: vec![],
            kfuncs: vec![],
            extern_vars: vec![],
            btf: true,
            core_relocations: 0,
            needs_kernel_btf: false,
            warnings: vec![],
        }
    }

    #[test]
    fn the_go_format_resolves_into_a_contract() {
        let m = Manifest::load(&fixture("full.manifest.yaml")).unwrap();
        assert!(m.describe().ends_with("full.manifest.yaml (exec-monitor)"));
        let c = m.contract(&object()).unwrap();

        let by_name = |n: &str| c.programs.iter().find(|p| p.name == n).cloned();
        assert_eq!(
            by_name("on_exec"),
            Some(ProgramContract {
                name: "on_exec".into(),
                attach_required: true,
                target: Some(AttachTarget::Tracepoint {
                    category: "syscalls".into(),
                    name: "sys_enter_execve".into()
                }),
                expect_run: false,
            })
        );
        let open = by_name("on_open").unwrap();
        assert!(!open.attach_required);
        assert_eq!(
            open.target,
            Some(AttachTarget::Function("do_sys_open".into()))
        );
        assert_eq!(
            by_name("on_readline").unwrap().target,
            Some(AttachTarget::Uprobe {
                binary: "/bin/bash".into(),
                symbol: "readline".into()
            })
        );
        let ingress = by_name("on_ingress").unwrap();
        assert!(ingress.expect_run);
        assert_eq!(ingress.target, Some(AttachTarget::Interface("eth0".into())));
        let connect = by_name("on_connect").unwrap();
        assert!(!connect.attach_required && connect.target.is_none());

        let fix = |n: &str| c.maps.iter().find(|m| m.name == n).unwrap();
        assert_eq!(
            fix("per_cpu_scratch").max_entries,
            Some(MaxEntries::PossibleCpus)
        );
        assert_eq!(fix("counters").max_entries, Some(MaxEntries::Exactly(64)));
        assert_eq!(
            fix("counters_by_string").max_entries,
            Some(MaxEntries::Exactly(128))
        );
        assert_eq!(fix("ringbufs").inner_ringbuf_bytes, Some(8 << 20));
        let inner = fix("visibility").inner_map.clone().unwrap();
        assert_eq!(
            (
                inner.map_type,
                inner.key_size,
                inner.value_size,
                inner.max_entries
            ),
            (1, 4, 4, 64)
        );

        // A section selector names every program in it.
        let typed: Vec<_> = c
            .program_types
            .iter()
            .map(|o| (o.program.as_str(), o.prog_type))
            .collect();
        assert_eq!(typed, vec![("socket1", 1), ("on_exec", 5)]);

        assert_eq!(c.variant_groups.len(), 2);
        let exit = &c.variant_groups[0].variants;
        assert_eq!(
            exit[0].requires,
            vec![Requirement::Helper {
                id: 181,
                name: Some("bpf_loop".into())
            }]
        );
        assert!(exit[1].requires.is_empty());
        let dump = &c.variant_groups[1].variants;
        assert!(dump[0].trial_load);
        assert_eq!(
            dump[1].requires,
            vec![
                Requirement::Helper {
                    id: 181,
                    name: Some("bpf_loop".into())
                },
                Requirement::Kfunc("bpf_iter_num_new".into()),
                Requirement::Target("do_exit".into()),
            ]
        );
        assert_eq!(c.probe_companions, vec!["tail_target"]);

        let globals: Vec<_> = c
            .globals
            .iter()
            .map(|g| {
                (
                    g.name.as_str(),
                    g.section.as_str(),
                    g.offset,
                    g.bytes.clone(),
                )
            })
            .collect();
        let mut comm = b"bash".to_vec();
        comm.resize(16, 0);
        assert_eq!(
            globals,
            vec![
                ("target_pid", ".rodata", 0, 4242u32.to_le_bytes().to_vec()),
                ("comm_prefix", ".rodata", 4, comm),
                ("sample_every", ".data", 0, vec![10, 0, 0, 0]),
                ("verbose", ".bss", 0, vec![1]),
            ]
        );

        let smoke = &c.functional_tests[0];
        assert_eq!(smoke.timeout_ms, 5000);
        assert_eq!(
            smoke.expect_stdout_contains.as_deref(),
            Some("exec-smoke-ok")
        );
        assert!(smoke.required);
        let optional = &c.functional_tests[1];
        assert!(!optional.required);
        assert_eq!(optional.timeout_ms, DEFAULT_TEST_TIMEOUT.as_millis() as u64);

        let profiles: Vec<_> = m.required_profiles().unwrap();
        assert_eq!(profiles[1].name, "ubuntu-22.04-5.15");
        assert!(
            profiles[1]
                .place
                .ends_with("full.manifest.yaml:69: required_profiles[1]"),
            "{}",
            profiles[1].place
        );
    }

    /// The error for `text` as a manifest of [`object`].
    fn error(text: &str) -> String {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.yaml");
        std::fs::write(&path, text).unwrap();
        let e = Manifest::load(&path)
            .and_then(|m| m.required_profiles().and_then(|_| m.contract(&object())))
            .unwrap_err()
            .to_string();
        e.strip_prefix(&path.display().to_string())
            .unwrap_or_else(|| panic!("names the file: {e}"))
            .to_owned()
    }

    #[test]
    fn errors_name_line_and_field() {
        let cases: &[(&str, &str, &[&str])] = &[
            ("name: x\nbogus: 1\n", ":2: ", &["unknown field `bogus`"]),
            (
                "programs:\n  - name: on_exec\n    attach: {kind: kprobe, symbol: x}\n",
                ":3: ",
                &["programs[0].attach.kind: kprobe does not fit \"on_exec\", a tracepoint program"],
            ),
            (
                "programs:\n  - name: on_exec\n    attach:\n      kind: tracepoint\n      colour: red\n",
                ":3: ",
                &["programs[0].attach: unknown field `colour`"],
            ),
            (
                "programs:\n  - name: on_exec\n  - name: nope\n",
                ":3: ",
                &["programs[1].name: build/exec.bpf.o has no program \"nope\" (its programs: on_exec, on_open"],
            ),
            (
                "programs:\n  - name: on_exec\n    section: kprobe/x\n",
                ":3: ",
                &["programs[0].section: \"on_exec\" is in section \"tracepoint/syscalls/sys_enter_execve\""],
            ),
            (
                "programs:\n  - name: on_ingress\n    attach:\n      interface: lo\n      cgroup: /sys/fs/cgroup\n",
                ":3: ",
                &["programs[0].attach: names 2 targets"],
            ),
            (
                "programs:\n  - name: on_exec\n    attach:\n      symbol: vfs_read\n",
                ":3: ",
                &["function vfs_read does not fit \"on_exec\""],
            ),
            (
                "programs:\n  - name: on_exec\n    attach: sometimes\n",
                ":3: ",
                &["programs[0].attach: \"sometimes\" is not optional, required"],
            ),
            (
                "maps:\n  - name: counters\n    max_entries: 0\n",
                ":3: ",
                &["maps[0].max_entries: 0 is not a positive integer"],
            ),
            (
                "maps:\n  - name: counters\n    max_entries: lots\n",
                ":3: ",
                &["lots is not a positive integer", "or cpus"],
            ),
            (
                "maps:\n  - name: countres\n    max_entries: 1\n",
                ":2: ",
                &["maps[0].name: build/exec.bpf.o has no map \"countres\" (its maps: per_cpu_scratch, counters"],
            ),
            ("maps:\n  - name: counters\n", ":2: ", &["maps[0]: sets nothing"]),
            (
                "maps:\n  - name: counters\n    inner_ringbuf_bytes: 4096\n",
                ":3: ",
                &["map \"counters\" is a hash, not an array_of_maps"],
            ),
            (
                "maps:\n  - name: ringbufs\n    inner_ringbuf_bytes: 5000\n",
                ":3: ",
                &["5000 is not a power of two"],
            ),
            (
                "maps:\n  - name: visibility\n    inner_map:\n      type: queue\n      value_size: 4\n      max_entries: 1\n",
                ":4: ",
                &["maps[0].inner_map.type: \"queue\" is not one of hash, array"],
            ),
            (
                "maps:\n  - name: visibility\n    inner_map: {type: hash, value_size: 4, max_entries: 1}\n",
                ":3: ",
                &["maps[0].inner_map.key_size: a hash needs key_size"],
            ),
            (
                "program_types:\n  - program: socket1\n    type: sockets\n",
                ":3: ",
                &["program_types[0].type: \"sockets\" is not a BPF program type; one of socket_filter"],
            ),
            (
                "program_types:\n  - program: socket2\n    type: socket_filter\n",
                ":2: ",
                &["program_types[0].program: build/exec.bpf.o has no program or section \"socket2\""],
            ),
            (
                "program_variants:\n  - group: g\n    programs:\n      - name: exit_with_loop\n        requires_helper: bpf_no_such\n",
                ":5: ",
                &["program_variants[0].programs[0].requires_helper: \"bpf_no_such\" is not a BPF helper"],
            ),
            (
                "program_variants:\n  - group: g\n    programs:\n      - name: exit_with_loop\n        probe: dry_run\n",
                ":5: ",
                &["probe: \"dry_run\": the one probe is trial_load"],
            ),
            (
                "program_variants:\n  - group: a\n    programs: [{name: dump_task}]\n  - group: b\n    programs:\n      - name: dump_task\n",
                ":6: ",
                &["program_variants[1].programs[0].name: \"dump_task\" is already a variant"],
            ),
            (
                "program_variants:\n  - group: a\n    programs: []\n",
                ":3: ",
                &["program_variants[0].programs: is empty"],
            ),
            (
                "probe_companions:\n  - tail_target\n  - tail_targte\n",
                ":3: ",
                &["probe_companions[1]: build/exec.bpf.o has no program \"tail_targte\""],
            ),
            (
                "required_profiles: [a, a]\n",
                ":1: ",
                &["required_profiles[1]: \"a\" is listed twice"],
            ),
            (
                "functional_tests:\n  - name: t\n    command: \"true\"\n    timeout: 10m\n",
                ":4: ",
                &["functional_tests[0].timeout: 10m is longer than the limit of 5m"],
            ),
            (
                "functional_tests:\n  - name: t\n    command: \"true\"\n    expect_exit_code: 256\n",
                ":4: ",
                &["functional_tests[0].expect_exit_code: 256 is not an exit code"],
            ),
            (
                "functional_tests:\n  - name: t\n    command: \"\"\n",
                ":3: ",
                &["functional_tests[0].command: is empty"],
            ),
            (
                "functional_tests:\n  - name: t\n    command: \"true\"\n  - name: t\n    command: \"false\"\n",
                ":4: ",
                &["functional_tests[1].name: \"t\" is used by an earlier test"],
            ),
            (
                "functional_tests:\n  - name: t\n    command: \"true\"\n    expect_exit_code: zero\n",
                ":4: ",
                &["expect_exit_code", "invalid type"],
            ),
            (
                "globals:\n  target_pid: 4294967296\n",
                ":2: ",
                &["globals.target_pid: 4294967296 does not fit target_pid (4 bytes in .rodata): 4 bytes hold"],
            ),
            (
                "globals:\n  comm_prefix: a-much-longer-name-than-fits\n",
                ":2: ",
                &["does not fit comm_prefix (16 bytes in .rodata): the string is 28 bytes long"],
            ),
            (
                "globals:\n  target_tgid: 1\n",
                ":2: ",
                &["globals.target_tgid: build/exec.bpf.o has no global variable \"target_tgid\"", "target_pid (4 bytes in .rodata)"],
            ),
        ];
        for (text, line, parts) in cases {
            let e = error(text);
            assert!(e.starts_with(line), "{text:?}: expected line {line}: {e}");
            for part in *parts {
                assert!(e.contains(part), "{text:?}: expected {part:?} in: {e}");
            }
        }
    }

    #[test]
    fn an_empty_manifest_is_no_contract() {
        let e = object();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.yaml");
        std::fs::write(&path, "# nothing yet\n").unwrap();
        let c = Manifest::load(&path).unwrap().contract(&e).unwrap();
        assert_eq!(c, LoaderContract::default());
    }

    #[test]
    fn manifests_are_found_beside_their_object() {
        let dir = tempfile::tempdir().unwrap();
        let obj = dir.path().join("probe.bpf.o");
        assert_eq!(Manifest::beside(&obj), None);
        std::fs::write(dir.path().join("probe.manifest.yaml"), "").unwrap();
        assert_eq!(
            Manifest::beside(&obj),
            Some(dir.path().join("probe.manifest.yaml"))
        );
        std::fs::write(dir.path().join("net.manifest.yaml"), "").unwrap();
        assert_eq!(
            Manifest::beside(&dir.path().join("net.o")),
            Some(dir.path().join("net.manifest.yaml"))
        );
    }

    #[test]
    fn required_profiles_mark_matrix_kernels() {
        let text = "name: m\nkernels:\n  - id: debian-12-6.1\n    required: false\n    source: {file: /k}\n  - id: tiny\n    source: {file: /k}\n";
        let mut matrix = Matrix::parse(text, Path::new("/m.yaml"), |_| None).unwrap();
        let m = Manifest::load(&fixture("full.manifest.yaml")).unwrap();
        let warnings = require_profiles(&mut matrix, &m.required_profiles().unwrap());
        assert!(matrix.kernels[0].required);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].contains(":69: required_profiles[1]: \"ubuntu-22.04-5.15\" is not a kernel of matrix /m.yaml (its kernels: debian-12-6.1, tiny); ignored"),
            "{}",
            warnings[0]
        );
    }

    #[test]
    fn the_go_suite_format_parses() {
        let s = Suite::load(&fixture("suite.yaml")).unwrap();
        let dir = fixture("");
        assert_eq!(s.name, "exec-monitor-suite");
        assert_eq!(
            s.matrix,
            Some(dir.join("../../../matrices/test-kernels.yaml"))
        );
        assert_eq!(s.workdir, Some(dir.join("../../../target/suite-work")));
        // The longest of the defaults' and the cases' timeouts.
        assert_eq!(s.timeout, Some(Duration::from_secs(360)));
        assert_eq!(s.concurrency, Some(2));
        let names: Vec<_> = s.cases.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "exec-tracepoint",
                "net-xdp",
                "exec-behavior",
                "legacy-fields"
            ]
        );
        let exec = &s.cases[0];
        assert_eq!(exec.artifact, dir.join("build/exec.bpf.o"));
        assert_eq!(exec.manifest, Some(dir.join("manifests/exec.yaml")));
        assert_eq!(exec.mode, Some(ValidationMode::LoadAttach));
        assert_eq!(s.cases[1].mode, Some(ValidationMode::LoadOnly));
        assert_eq!(s.cases[1].manifest, None);
        let behavior = &s.cases[2];
        assert_eq!(behavior.mode, Some(ValidationMode::Behavior));
        let test = behavior.test.as_ref().unwrap();
        assert_eq!(test.name, "exec-behavior");
        assert_eq!(test.command, "./scripts/smoke-exec.sh");
        assert_eq!(test.timeout_ms, 30_000);
        assert_eq!(test.expect_stdout_contains.as_deref(), Some("saw-execve"));

        // What the Go tool's runner used and bpfcompat does not: a warning each,
        // naming file, line and field.
        let fields: Vec<&str> = s
            .warnings
            .iter()
            .map(|w| w.split(": ").nth(1).unwrap())
            .collect();
        assert_eq!(
            fields,
            [
                "defaults.report_dir",
                "cases[3].runner",
                "cases[3].keep_vm_on_failure",
                "cases[3].out",
                "cases[3].markdown",
                "cases[3].artifact_uri",
                "cases[3].workdir",
                "cases[3].concurrency",
            ],
            "{:#?}",
            s.warnings
        );
        assert!(
            s.warnings[0].contains("suite.yaml:6: defaults.report_dir: not used"),
            "{}",
            s.warnings[0]
        );
    }

    fn suite_error(text: &str) -> String {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.yaml");
        std::fs::write(&path, text).unwrap();
        let e = Suite::load(&path).unwrap_err().to_string();
        e.strip_prefix(&path.display().to_string())
            .unwrap_or_else(|| panic!("names the file: {e}"))
            .to_owned()
    }

    #[test]
    fn suite_errors_name_line_and_field() {
        let cases: &[(&str, &str, &str)] = &[
            ("name: s\ncases:\n  - name: a\n    artifact: a.o\n    bogus: 1\n", ":5: ", "unknown field `bogus`"),
            ("name: s\ncases: []\n", ":2: ", "cases: the suite has no cases"),
            ("name: -s\ncases:\n  - {name: a, artifact: a.o}\n", ":1: ", "name: \"-s\" must be"),
            ("name: s\ncases:\n  - name: a\n", ":3: ", "cases[0]: has no artifact"),
            (
                "name: s\ncases:\n  - {name: a, artifact: a.o}\n  - name: a\n    artifact: b.o\n",
                ":4: ",
                "cases[1].name: \"a\" is used by an earlier case",
            ),
            (
                "name: s\ndefaults:\n  validation_mode: attach\ncases:\n  - {name: a, artifact: a.o}\n",
                ":3: ",
                "defaults.validation_mode: \"attach\" is not load_only, load_attach or behavior",
            ),
            (
                "name: s\ndefaults:\n  timeout: soon\ncases:\n  - {name: a, artifact: a.o}\n",
                ":3: ",
                "defaults.timeout: \"soon\" is not a duration",
            ),
            (
                "name: s\ndefaults:\n  matrix: a.yaml\ncases:\n  - name: a\n    artifact: a.o\n    matrix: b.yaml\n",
                ":7: ",
                "cases[0].matrix: ",
            ),
            (
                "name: s\ncases:\n  - name: a\n    artifact: a.o\n    test:\n      mode: load_only\n      command: x\n",
                ":6: ",
                "cases[0].test.mode: \"load_only\": a test runs in behavior mode",
            ),
            (
                "name: s\ncases:\n  - name: a\n    artifact: a.o\n    test:\n      command: x\n      expect:\n        exit_code: 300\n",
                ":8: ",
                "cases[0].test.expect.exit_code: 300 is not an exit code",
            ),
        ];
        for (text, line, part) in cases {
            let e = suite_error(text);
            assert!(e.starts_with(line), "{text:?}: expected line {line}: {e}");
            assert!(e.contains(part), "{text:?}: expected {part:?} in: {e}");
        }
    }
}
