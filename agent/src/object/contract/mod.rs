//! Applying an object's loader contract: what its own loader does between
//! `bpf_object__open` and load (map sizes, inner maps, program types,
//! globals, fentry targets, the variants it turns off), to every open of
//! the object, so the whole load, the trial loads and the isolation loads
//! all see the object its loader would load.
//!
//! [`fixups`] decides map shapes (sizes, flags), [`variants`] which variant of each group
//! is kept, [`behavior`] runs the workload and tests once everything is
//! attached.

pub mod behavior;
pub mod fixups;
pub mod variants;

use fixups::Setting;

use std::collections::BTreeSet;
use std::os::fd::{AsRawFd, OwnedFd};

use bpfcompat_proto::object::{AttachTarget, Fixup, GlobalValue, LoaderContract};
use libbpf_rs::{AsRawLibbpf, OpenObject};

/// Everything applied to an opened object before it is loaded.
#[derive(Default)]
pub struct Prepare {
    /// Map sizes and flags, as (map, what, value).
    settings: Vec<(String, Setting, u32)>,
    /// Inner maps made here, for maps of maps (`bpf_map__set_inner_map_fd`).
    inner_maps: Vec<(String, OwnedFd)>,
    prog_types: Vec<(String, u32)>,
    globals: Vec<GlobalValue>,
    /// fentry/fexit/lsm programs given another function: set before load.
    attach_targets: Vec<(String, String)>,
    /// Variants not selected: autoload off.
    pub off: BTreeSet<String>,
    /// The automatic fixups are on (no `--no-fixups`).
    pub auto_fixups: bool,
}

/// An inner map that could not be made: the kernel refused it.
pub struct InnerMapFailure {
    pub map: String,
    pub map_type: u32,
    pub errno: i32,
    pub what: String,
}

impl Prepare {
    /// What `contract` asks for `obj` (as opened) on a kernel whose
    /// `perf_event_max_stack` is `max_stack`, with the fixups it implies
    /// recorded for the report.
    pub fn new(
        contract: &LoaderContract,
        obj: &OpenObject,
        max_stack: Option<u32>,
    ) -> Result<(Prepare, Vec<Fixup>), InnerMapFailure> {
        let sizes = fixups::plan(contract, obj, max_stack);
        let mut inner_maps = Vec::new();
        for want in &sizes.inner_maps {
            let fd = fixups::create_inner(want)?;
            inner_maps.push((want.outer.clone(), fd));
        }
        let prepare = Prepare {
            settings: sizes.settings,
            inner_maps,
            prog_types: contract
                .program_types
                .iter()
                .map(|t| (t.program.clone(), t.prog_type))
                .collect(),
            globals: contract.globals.clone(),
            attach_targets: contract
                .programs
                .iter()
                .filter_map(|p| match &p.target {
                    Some(AttachTarget::Function(f)) => Some((p.name.clone(), f.clone())),
                    _ => None,
                })
                .collect(),
            off: BTreeSet::new(),
            auto_fixups: contract.auto_fixups,
        };
        Ok((prepare, sizes.recorded))
    }

    /// The contract hands map `name` an inner map.
    pub fn gives_inner(&self, name: &str) -> bool {
        self.inner_maps.iter().any(|(m, _)| m == name)
    }

    /// Applies everything to a freshly opened `obj`. Errors are libbpf's
    /// refusals of a setting (its text names the map or program).
    pub fn apply(&self, obj: &mut OpenObject) -> Result<(), String> {
        for mut p in obj.progs_mut() {
            let name = p.name().to_string_lossy().into_owned();
            let raw = p.as_libbpf_object().as_ptr();
            if let Some((_, t)) = self.prog_types.iter().find(|(n, _)| *n == name) {
                check(
                    unsafe { libbpf_sys::bpf_program__set_type(raw, *t) },
                    || format!("setting the type of program {name}"),
                )?;
            }
            let target = self.attach_targets.iter().find(|(n, _)| *n == name);
            if let Some((_, f)) = target.filter(|_| is_tracing(raw)) {
                let func = std::ffi::CString::new(f.as_str()).map_err(|e| e.to_string())?;
                check(
                    unsafe { libbpf_sys::bpf_program__set_attach_target(raw, 0, func.as_ptr()) },
                    || format!("setting the attach target of {name} to {f}"),
                )?;
            }
            if self.off.contains(&name) {
                p.set_autoload(false);
            }
        }
        for m in obj.maps_mut() {
            let name = m.name().to_string_lossy().into_owned();
            self.apply_map(&name, m.as_libbpf_object().as_ptr())?;
        }
        Ok(())
    }

    /// Applies the settings, inner map and globals of map `name`.
    fn apply_map(&self, name: &str, raw: *mut libbpf_sys::bpf_map) -> Result<(), String> {
        for (_, setting, v) in self.settings.iter().filter(|(m, _, _)| m == name) {
            let target = match setting {
                Setting::InnerMaxEntries => unsafe { libbpf_sys::bpf_map__inner_map(raw) },
                _ => raw,
            };
            if target.is_null() {
                continue;
            }
            let rc = unsafe {
                match setting {
                    Setting::MaxEntries | Setting::InnerMaxEntries => {
                        libbpf_sys::bpf_map__set_max_entries(target, *v)
                    }
                    Setting::KeySize => libbpf_sys::bpf_map__set_key_size(target, *v),
                    Setting::ValueSize => libbpf_sys::bpf_map__set_value_size(target, *v),
                    Setting::MapFlags => libbpf_sys::bpf_map__set_map_flags(target, *v),
                }
            };
            check(rc, || {
                format!("setting {} of map {name} to {v}", setting.field())
            })?;
        }
        if let Some((_, fd)) = self.inner_maps.iter().find(|(m, _)| m == name) {
            check(
                unsafe { libbpf_sys::bpf_map__set_inner_map_fd(raw, fd.as_raw_fd()) },
                || format!("setting the inner map of {name}"),
            )?;
        }
        for g in self
            .globals
            .iter()
            .filter(|g| internal_map_of(name, raw, &g.section))
        {
            set_global(raw, g)?;
        }
        Ok(())
    }
}

fn check(rc: i32, what: impl Fn() -> String) -> Result<(), String> {
    if rc == 0 {
        return Ok(());
    }
    Err(format!(
        "{}: {}",
        what(),
        std::io::Error::from_raw_os_error(-rc)
    ))
}

fn is_tracing(raw: *mut libbpf_sys::bpf_program) -> bool {
    let t = unsafe { libbpf_sys::bpf_program__type(raw) };
    matches!(
        t,
        libbpf_sys::BPF_PROG_TYPE_TRACING | libbpf_sys::BPF_PROG_TYPE_LSM
    )
}

/// libbpf names the internal map of `.rodata` `<object>.rodata` (the
/// object's name cut to fit): the one ending in the section's name.
fn internal_map_of(name: &str, raw: *mut libbpf_sys::bpf_map, section: &str) -> bool {
    let internal = unsafe { libbpf_sys::bpf_map__is_internal(raw) };
    internal && name.ends_with(section)
}

/// Writes `g`'s bytes into its section's initial value.
fn set_global(raw: *mut libbpf_sys::bpf_map, g: &GlobalValue) -> Result<(), String> {
    let mut size = 0usize;
    let data =
        unsafe { libbpf_sys::bpf_map__initial_value(raw, &mut size as *mut usize as *mut _) };
    let end = g.offset as usize + g.bytes.len();
    if data.is_null() || end > size {
        return Err(format!(
            "global {}: {} has {size} bytes of initial value, the variable ends at {end}",
            g.name, g.section
        ));
    }
    let mut value = unsafe { std::slice::from_raw_parts(data as *const u8, size) }.to_vec();
    value[g.offset as usize..end].copy_from_slice(&g.bytes);
    check(
        unsafe {
            libbpf_sys::bpf_map__set_initial_value(raw, value.as_ptr() as *const _, size as _)
        },
        || format!("setting global {} in {}", g.name, g.section),
    )
}
