//! Map shapes set before load: the contract's, then the automatic ones for
//! what a map leaves to its loader ([`MapShape::left_unset`]) that libbpf
//! does not set itself.
//!
//! Automatic fixups (docs/manifest.md, "Automatic fixups"):
//! - `max_entries` 0: ring buffers (and user ring buffers) get
//!   [`RINGBUF_BYTES`], a page-aligned power of two; maps of maps whose
//!   inner map is a ring buffer or a perf event array (one per CPU, as
//!   Falco's probe has them) and CPU maps the possible CPUs; stack-trace,
//!   hash, array, LRU, LPM, queue/stack, bloom, socket, device and
//!   prog-array maps and other maps of maps [`DEFAULT_ENTRIES`];
//! - a stack-trace map's value size 0: the kernel's `perf_event_max_stack`
//!   frames (127 where it does not say) of 8 bytes (32 with
//!   `BPF_F_STACK_BUILD_ID`), as profilers size it;
//! - a flag the map's type is never created without (`BPF_F_NO_PREALLOC`
//!   of LPM tries and local storages, `BPF_F_MMAPABLE` of arenas): added.
//!
//! Left alone: what libbpf sets itself (perf event arrays get the CPU
//! count), local storage sizes (which must be 0), everything with a value,
//! and what no loader has a default for (key sizes, other value sizes, an
//! arena's pages, an inner map to invent): those fail as the object's gap.

use std::os::fd::{FromRawFd, OwnedFd};

use bpfcompat_proto::object::map_params::{
    describe_flags, map_types, stack_frame_bytes, MapParam, MapShape,
};
use bpfcompat_proto::object::{Fixup, InnerMap, LoaderContract, MapFixup, MaxEntries};
use libbpf_rs::{AsRawLibbpf, OpenObject};
use libbpf_sys as s;

use super::InnerMapFailure;
use crate::object::names;

/// What an automatic fixup gives a ring buffer compiled with size 0.
pub const RINGBUF_BYTES: u32 = 256 * 1024;
/// What an automatic fixup gives other maps compiled with size 0.
pub const DEFAULT_ENTRIES: u32 = 10240;
/// `perf_event_max_stack`'s default, for a kernel that does not say.
pub const DEFAULT_MAX_STACK: u32 = 127;

/// An inner map to make before any load.
pub struct InnerWant {
    pub outer: String,
    pub map_type: u32,
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
}

/// A map parameter set before load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setting {
    MaxEntries,
    KeySize,
    ValueSize,
    MapFlags,
    /// `max_entries` of the inner map template libbpf made from the BTF.
    InnerMaxEntries,
}

impl Setting {
    /// Its name in the report's fixups.
    pub fn field(self) -> &'static str {
        match self {
            Setting::MaxEntries => "max_entries",
            Setting::KeySize => "key_size",
            Setting::ValueSize => "value_size",
            Setting::MapFlags => "map_flags",
            Setting::InnerMaxEntries => "inner_map.max_entries",
        }
    }
}

/// Every map shape to set, and what to report of them.
#[derive(Default)]
pub struct Sizes {
    /// (map, what, value), in the order they are set.
    pub settings: Vec<(String, Setting, u32)>,
    pub inner_maps: Vec<InnerWant>,
    pub recorded: Vec<Fixup>,
}

impl Sizes {
    fn set(&mut self, map: &str, setting: Setting, value: u32, shown: String, why: String) {
        self.settings.push((map.to_owned(), setting, value));
        self.recorded.push(Fixup {
            map: map.to_owned(),
            field: setting.field().to_owned(),
            value: shown,
            why,
        });
    }

    /// `shape` of map `name` once the settings so far are applied.
    fn applied(&self, name: &str, mut shape: MapShape) -> MapShape {
        for (_, setting, v) in self.settings.iter().filter(|(m, _, _)| m == name) {
            match setting {
                Setting::MaxEntries => shape.max_entries = *v,
                Setting::KeySize => shape.key_size = *v,
                Setting::ValueSize => shape.value_size = *v,
                Setting::MapFlags => shape.map_flags = *v,
                Setting::InnerMaxEntries => {}
            }
        }
        shape.inner_map |= self.inner_maps.iter().any(|w| w.outer == name);
        shape
    }
}

/// What the automatic fixups need to know of the booted kernel.
#[derive(Default)]
pub struct Kernel {
    pub cpus: u32,
    /// `/proc/sys/kernel/perf_event_max_stack`, if the kernel said.
    pub max_stack: Option<u32>,
}

fn possible_cpus() -> u32 {
    let n = unsafe { libbpf_sys::libbpf_num_possible_cpus() };
    n.max(1) as u32
}

/// A map as libbpf will create it (so far): its declaration with what
/// libbpf filled in at open.
pub fn shape_of(raw: *const s::bpf_map) -> MapShape {
    unsafe {
        MapShape {
            map_type: s::bpf_map__type(raw),
            key_size: s::bpf_map__key_size(raw),
            value_size: s::bpf_map__value_size(raw),
            max_entries: s::bpf_map__max_entries(raw),
            map_flags: s::bpf_map__map_flags(raw),
            inner_map: !s::bpf_map__inner_map(raw as *mut _).is_null(),
        }
    }
}

/// The map shapes `contract` and the automatic rules give `obj`'s maps;
/// `max_stack` is the kernel's `perf_event_max_stack`.
pub fn plan(contract: &LoaderContract, obj: &OpenObject, max_stack: Option<u32>) -> Sizes {
    let mut sizes = Sizes::default();
    for f in &contract.maps {
        from_manifest(f, &mut sizes);
    }
    if contract.auto_fixups {
        let kernel = Kernel {
            cpus: possible_cpus(),
            max_stack,
        };
        automatic(obj, &kernel, &mut sizes);
    }
    sizes
}

/// What a manifest's `maps:` entry sets.
fn from_manifest(f: &MapFixup, sizes: &mut Sizes) {
    let manifest = || "manifest".to_owned();
    if let Some(n) = f.max_entries {
        let (value, shown) = match n {
            MaxEntries::Exactly(n) => (n, n.to_string()),
            MaxEntries::PossibleCpus => {
                let n = possible_cpus();
                (n, format!("{n} (the possible CPUs)"))
            }
        };
        sizes.set(&f.name, Setting::MaxEntries, value, shown, manifest());
    }
    for (setting, value) in [
        (Setting::KeySize, f.key_size),
        (Setting::ValueSize, f.value_size),
    ] {
        if let Some(v) = value {
            sizes.set(&f.name, setting, v, v.to_string(), manifest());
        }
    }
    if let Some(flags) = f.map_flags {
        sizes.set(
            &f.name,
            Setting::MapFlags,
            flags,
            describe_flags(flags),
            manifest(),
        );
    }
    let inner = match (&f.inner_map, f.inner_ringbuf_bytes) {
        (Some(m), _) => Some(inner_from(&f.name, m)),
        (None, Some(bytes)) => Some(InnerWant {
            outer: f.name.clone(),
            map_type: s::BPF_MAP_TYPE_RINGBUF,
            key_size: 0,
            value_size: 0,
            max_entries: bytes,
        }),
        (None, None) => None,
    };
    if let Some(want) = inner {
        sizes.recorded.push(Fixup {
            map: f.name.clone(),
            field: "inner_map".into(),
            value: describe_inner(&want),
            why: manifest(),
        });
        sizes.inner_maps.push(want);
    }
}

fn inner_from(outer: &str, m: &InnerMap) -> InnerWant {
    InnerWant {
        outer: outer.to_owned(),
        map_type: m.map_type,
        key_size: m.key_size,
        value_size: m.value_size,
        max_entries: m.max_entries,
    }
}

fn describe_inner(w: &InnerWant) -> String {
    if w.map_type == s::BPF_MAP_TYPE_RINGBUF {
        format!("ringbuf of {} bytes", w.max_entries)
    } else {
        format!(
            "{} (key {}, value {}, {} entries)",
            names::map_type(w.map_type),
            w.key_size,
            w.value_size,
            w.max_entries
        )
    }
}

/// What the automatic rules set on the maps the contract leaves something
/// unset on (and the inner map templates of maps it hands no inner map).
fn automatic(obj: &OpenObject, kernel: &Kernel, sizes: &mut Sizes) {
    for m in obj.maps() {
        let name = m.name().to_string_lossy().into_owned();
        let raw = m.as_libbpf_object().as_ptr();
        let template = unsafe { libbpf_sys::bpf_map__inner_map(raw) };
        let template_type =
            (!template.is_null()).then(|| unsafe { libbpf_sys::bpf_map__type(template) });
        // What the map will hold: the inner map the contract hands it, else
        // its template.
        let handed = sizes
            .inner_maps
            .iter()
            .find(|w| w.outer == name)
            .map(|w| w.map_type);
        let shape = sizes.applied(&name, shape_of(raw));
        for param in shape.left_unset() {
            if let Some((setting, value, shown, why)) =
                automatic_value(param, &shape, handed.or(template_type), kernel)
            {
                sizes.set(&name, setting, value, shown, why);
            }
        }
        let template_unsized =
            !template.is_null() && unsafe { libbpf_sys::bpf_map__max_entries(template) } == 0;
        if handed.is_none() && template_unsized {
            let (cpus, t) = (kernel.cpus, template_type.unwrap_or(0));
            if let Some((value, shown, why)) = auto_size(t, None, cpus) {
                let why = format!("inner map: {why}");
                sizes.set(&name, Setting::InnerMaxEntries, value, shown, why);
            }
        }
    }
}

/// What an automatic fixup sets for `param`, which `shape` leaves unset,
/// as (what, value, shown, why); `None` where no loader has a default.
fn automatic_value(
    param: MapParam,
    shape: &MapShape,
    inner: Option<u32>,
    kernel: &Kernel,
) -> Option<(Setting, u32, String, String)> {
    match param {
        MapParam::MaxEntries => auto_size(shape.map_type, inner, kernel.cpus)
            .map(|(value, shown, why)| (Setting::MaxEntries, value, shown, why)),
        MapParam::ValueSize if shape.map_type == map_types::STACK_TRACE => {
            let (value, shown, why) = stack_value_size(kernel.max_stack, shape.map_flags);
            Some((Setting::ValueSize, value, shown, why))
        }
        MapParam::NoPrealloc | MapParam::Mmapable => {
            let flags = shape.map_flags | param.flag()?;
            let flag = param.name().trim_start_matches("map_flags ");
            let why = format!(
                "compiled without {flag}, without which the kernel creates no {}; added, as its loader must",
                names::map_type(shape.map_type)
            );
            Some((Setting::MapFlags, flags, describe_flags(flags), why))
        }
        _ => None,
    }
}

/// The automatic fixups would set `param` on a map shaped `shape`.
pub fn would_fix(param: MapParam, shape: &MapShape) -> bool {
    automatic_value(param, shape, None, &Kernel::default()).is_some()
}

/// A stack-trace map's value size as profilers give it: the deepest stack
/// the kernel keeps (`perf_event_max_stack`), in frames of 8 bytes (32
/// with build ids); as (value, shown, why).
fn stack_value_size(max_stack: Option<u32>, map_flags: u32) -> (u32, String, String) {
    let depth = max_stack.unwrap_or(DEFAULT_MAX_STACK);
    let frame = stack_frame_bytes(map_flags);
    let source = match max_stack {
        Some(_) => "the kernel's perf_event_max_stack",
        None => "perf_event_max_stack's default (the kernel does not say)",
    };
    (
        depth * frame,
        format!("{} ({depth} frames of {frame} bytes)", depth * frame),
        format!(
            "compiled with value size 0: a stack-trace map whose depth its loader sets; \
             {source}, {depth} frames of {frame} bytes, as profilers size it"
        ),
    )
}

/// The size a loader would give a map of `map_type` compiled with
/// `max_entries = 0`, as (value, shown, why); `None` where it must stay 0,
/// libbpf sizes it or no loader has a default.
fn auto_size(map_type: u32, inner: Option<u32>, cpus: u32) -> Option<(u32, String, String)> {
    let per_cpu = |what: &str| {
        Some((
            cpus,
            format!("{cpus} (the possible CPUs)"),
            format!("compiled with max_entries 0: {what}, one per CPU, as its loader sizes it"),
        ))
    };
    let default = |what: &str| {
        Some((
            DEFAULT_ENTRIES,
            DEFAULT_ENTRIES.to_string(),
            format!("compiled with max_entries 0: a {what} sized at run time; bpfcompat's default"),
        ))
    };
    match map_type {
        s::BPF_MAP_TYPE_RINGBUF | s::BPF_MAP_TYPE_USER_RINGBUF => Some((
            RINGBUF_BYTES,
            format!("{RINGBUF_BYTES} (256 KiB)"),
            "compiled with max_entries 0: a ring buffer sized at run time; 256 KiB, a page-aligned power of two".into(),
        )),
        s::BPF_MAP_TYPE_ARRAY_OF_MAPS | s::BPF_MAP_TYPE_HASH_OF_MAPS => match inner {
            Some(s::BPF_MAP_TYPE_RINGBUF | s::BPF_MAP_TYPE_PERF_EVENT_ARRAY) => {
                per_cpu("a map of per-CPU buffers")
            }
            _ => default("map of maps"),
        },
        s::BPF_MAP_TYPE_CPUMAP => per_cpu("a CPU map"),
        s::BPF_MAP_TYPE_STACK_TRACE
        | s::BPF_MAP_TYPE_HASH
        | s::BPF_MAP_TYPE_ARRAY
        | s::BPF_MAP_TYPE_PERCPU_HASH
        | s::BPF_MAP_TYPE_PERCPU_ARRAY
        | s::BPF_MAP_TYPE_LRU_HASH
        | s::BPF_MAP_TYPE_LRU_PERCPU_HASH
        | s::BPF_MAP_TYPE_LPM_TRIE
        | s::BPF_MAP_TYPE_QUEUE
        | s::BPF_MAP_TYPE_STACK
        | s::BPF_MAP_TYPE_BLOOM_FILTER
        | s::BPF_MAP_TYPE_SOCKMAP
        | s::BPF_MAP_TYPE_SOCKHASH
        | s::BPF_MAP_TYPE_DEVMAP
        | s::BPF_MAP_TYPE_DEVMAP_HASH
        | s::BPF_MAP_TYPE_XSKMAP
        | s::BPF_MAP_TYPE_PROG_ARRAY
        | s::BPF_MAP_TYPE_CGROUP_ARRAY
        | s::BPF_MAP_TYPE_REUSEPORT_SOCKARRAY => default(&names::map_type(map_type)),
        _ => None,
    }
}

/// Makes the inner map `want` asks for.
pub fn create_inner(want: &InnerWant) -> Result<OwnedFd, InnerMapFailure> {
    let name = c"bpfcompat_inner";
    let fd = unsafe {
        libbpf_sys::bpf_map_create(
            want.map_type,
            name.as_ptr(),
            want.key_size,
            want.value_size,
            want.max_entries,
            std::ptr::null(),
        )
    };
    if fd < 0 {
        return Err(InnerMapFailure {
            map: want.outer.clone(),
            map_type: want.map_type,
            errno: -fd,
            what: format!(
                "creating the inner map of {}: {}",
                want.outer,
                describe_inner(want)
            ),
        });
    }
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn automatic_sizes() {
        let (v, _, why) = auto_size(s::BPF_MAP_TYPE_RINGBUF, None, 4).unwrap();
        assert_eq!(v, 256 * 1024);
        assert!(v.is_power_of_two() && v % 4096 == 0);
        assert!(why.contains("ring buffer"), "{why}");
        assert_eq!(
            auto_size(
                s::BPF_MAP_TYPE_ARRAY_OF_MAPS,
                Some(s::BPF_MAP_TYPE_RINGBUF),
                4
            )
            .unwrap()
            .0,
            4
        );
        assert_eq!(
            auto_size(s::BPF_MAP_TYPE_HASH_OF_MAPS, Some(s::BPF_MAP_TYPE_HASH), 4)
                .unwrap()
                .0,
            DEFAULT_ENTRIES
        );
        assert_eq!(
            auto_size(s::BPF_MAP_TYPE_STACK_TRACE, None, 4).unwrap().0,
            DEFAULT_ENTRIES
        );
        // Sized by libbpf, or must stay 0.
        for t in [
            s::BPF_MAP_TYPE_PERF_EVENT_ARRAY,
            s::BPF_MAP_TYPE_TASK_STORAGE,
            s::BPF_MAP_TYPE_SK_STORAGE,
            s::BPF_MAP_TYPE_INODE_STORAGE,
            s::BPF_MAP_TYPE_CGROUP_STORAGE,
            s::BPF_MAP_TYPE_STRUCT_OPS,
            s::BPF_MAP_TYPE_ARENA,
        ] {
            assert_eq!(auto_size(t, None, 4), None, "{t}");
        }
    }

    /// A profiler's stack map (a key and nothing else) on a kernel that
    /// says 127, an LPM trie without its flag, a hash without a key.
    #[test]
    fn what_maps_leave_unset_gets_a_loaders_value_or_nothing() {
        let kernel = Kernel {
            cpus: 4,
            max_stack: Some(127),
        };
        let stack = MapShape {
            map_type: s::BPF_MAP_TYPE_STACK_TRACE,
            key_size: 4,
            ..MapShape::default()
        };
        let (setting, value, shown, why) =
            automatic_value(MapParam::ValueSize, &stack, None, &kernel).unwrap();
        assert_eq!((setting, value), (Setting::ValueSize, 1016));
        assert_eq!(shown, "1016 (127 frames of 8 bytes)");
        assert!(why.contains("the kernel's perf_event_max_stack"), "{why}");
        let build_ids = MapShape {
            map_flags: bpfcompat_proto::object::map_params::STACK_BUILD_ID,
            ..stack
        };
        let without_kernel = Kernel::default();
        let (_, value, _, why) =
            automatic_value(MapParam::ValueSize, &build_ids, None, &without_kernel).unwrap();
        assert_eq!(value, 127 * 32);
        assert!(why.contains("default"), "{why}");

        let trie = MapShape {
            map_type: s::BPF_MAP_TYPE_LPM_TRIE,
            map_flags: 1 << 7,
            ..MapShape::default()
        };
        let (setting, value, shown, why) =
            automatic_value(MapParam::NoPrealloc, &trie, None, &kernel).unwrap();
        assert_eq!((setting, value), (Setting::MapFlags, 0x81));
        assert_eq!(shown, "0x81 (BPF_F_NO_PREALLOC | BPF_F_RDONLY_PROG)");
        assert!(why.contains("no lpm_trie"), "{why}");

        let hash = MapShape {
            map_type: s::BPF_MAP_TYPE_HASH,
            ..MapShape::default()
        };
        assert!(!would_fix(MapParam::KeySize, &hash));
        assert!(!would_fix(MapParam::ValueSize, &hash));
        assert!(would_fix(MapParam::MaxEntries, &hash));
        assert!(would_fix(MapParam::ValueSize, &stack));
        let arena = MapShape {
            map_type: s::BPF_MAP_TYPE_ARENA,
            ..MapShape::default()
        };
        assert!(!would_fix(MapParam::MaxEntries, &arena));
    }
}
