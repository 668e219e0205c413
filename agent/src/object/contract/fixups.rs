//! Map shapes set before load: the contract's, then the automatic ones for
//! maps compiled with `max_entries = 0` that libbpf does not size itself.
//!
//! Automatic sizes (docs/manifest.md, "Automatic fixups"):
//! - ring buffers (and user ring buffers): [`RINGBUF_BYTES`], a
//!   page-aligned power of two;
//! - maps of maps whose inner map is a ring buffer or a perf event array
//!   (one per CPU, as Falco's probe has them): the possible CPUs;
//! - CPU maps: the possible CPUs;
//! - stack-trace, hash, array, LRU, LPM, queue/stack, bloom, socket, device
//!   and prog-array maps and other maps of maps: [`DEFAULT_ENTRIES`].
//!
//! Left alone: maps libbpf sizes (perf event arrays get the CPU count),
//! local storage maps (whose size must be 0), and everything with a size.

use std::os::fd::{FromRawFd, OwnedFd};

use bpfcompat_proto::object::{Fixup, InnerMap, LoaderContract, MaxEntries};
use libbpf_rs::{AsRawLibbpf, OpenObject};
use libbpf_sys as s;

use super::InnerMapFailure;
use crate::object::names;

/// What an automatic fixup gives a ring buffer compiled with size 0.
pub const RINGBUF_BYTES: u32 = 256 * 1024;
/// What an automatic fixup gives other maps compiled with size 0.
pub const DEFAULT_ENTRIES: u32 = 10240;

/// An inner map to make before any load.
pub struct InnerWant {
    pub outer: String,
    pub map_type: u32,
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
}

/// Every map shape to set, and what to report of them.
#[derive(Default)]
pub struct Sizes {
    pub max_entries: Vec<(String, u32)>,
    pub inner_max_entries: Vec<(String, u32)>,
    pub inner_maps: Vec<InnerWant>,
    pub recorded: Vec<Fixup>,
}

impl Sizes {
    fn set(&mut self, map: &str, field: &str, value: u32, shown: String, why: String) {
        if field == "max_entries" {
            self.max_entries.push((map.to_owned(), value));
        } else {
            self.inner_max_entries.push((map.to_owned(), value));
        }
        self.recorded.push(Fixup {
            map: map.to_owned(),
            field: field.to_owned(),
            value: shown,
            why,
        });
    }
}

fn possible_cpus() -> u32 {
    let n = unsafe { libbpf_sys::libbpf_num_possible_cpus() };
    n.max(1) as u32
}

/// The map shapes `contract` and the automatic rules give `obj`'s maps.
pub fn plan(contract: &LoaderContract, obj: &OpenObject) -> Sizes {
    let mut sizes = Sizes::default();
    for f in &contract.maps {
        if let Some(n) = f.max_entries {
            let (value, shown) = match n {
                MaxEntries::Exactly(n) => (n, n.to_string()),
                MaxEntries::PossibleCpus => {
                    let n = possible_cpus();
                    (n, format!("{n} (the possible CPUs)"))
                }
            };
            sizes.set(&f.name, "max_entries", value, shown, "manifest".into());
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
                why: "manifest".into(),
            });
            sizes.inner_maps.push(want);
        }
    }
    if contract.auto_fixups {
        automatic(contract, obj, &mut sizes);
    }
    sizes
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

/// Sizes for the maps compiled with 0 that the contract leaves alone (and
/// for the inner map templates of maps it hands no inner map).
fn automatic(contract: &LoaderContract, obj: &OpenObject, sizes: &mut Sizes) {
    let cpus = possible_cpus();
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
        let sized = contract
            .maps
            .iter()
            .any(|f| f.name == name && f.max_entries.is_some());
        if m.max_entries() == 0 && !sized {
            let map_type = unsafe { libbpf_sys::bpf_map__type(raw) };
            if let Some((value, shown, why)) = auto_size(map_type, handed.or(template_type), cpus) {
                sizes.set(&name, "max_entries", value, shown, why);
            }
        }
        let template_unsized =
            !template.is_null() && unsafe { libbpf_sys::bpf_map__max_entries(template) } == 0;
        if handed.is_none() && template_unsized {
            if let Some((value, shown, why)) = auto_size(template_type.unwrap_or(0), None, cpus) {
                let why = format!("inner map: {why}");
                sizes.set(&name, "inner_map.max_entries", value, shown, why);
            }
        }
    }
}

/// The size a loader would give a map of `map_type` compiled with
/// `max_entries = 0`, as (value, shown, why); `None` where it must stay 0
/// or libbpf sizes it.
pub fn auto_size(map_type: u32, inner: Option<u32>, cpus: u32) -> Option<(u32, String, String)> {
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
}
