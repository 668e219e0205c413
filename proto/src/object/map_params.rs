//! What the kernel requires of a map when it is created that an object may
//! leave to its loader: per map type, the parameters that must not be zero
//! (key size, value size, `max_entries`), the inner map of a map of maps,
//! and the flags a type is never created without. The host's inspection
//! lists them per map; the agent fixes them up as loaders do, or names them
//! when the kernel refuses the map.
//!
//! Read from the kernels' map constructors (5.10 to 7.x): `htab_map_alloc_check`
//! refuses a zero key size, value size or `max_entries`; `array_map_alloc_check`
//! a key that is not 4 bytes; `stack_map_alloc` a value that is not a
//! multiple of 8 bytes; `trie_alloc` and the local storages a map without
//! `BPF_F_NO_PREALLOC`; `arena_map_alloc` one without `BPF_F_MMAPABLE`.
//! `bloom_map_alloc` takes `map_extra` 0 as 5 hash functions, so a bloom
//! filter's `map_extra` is never required. What libbpf fills in itself is
//! not required of the object either: the CPU count of a perf event array,
//! the 4-byte value of a map with `__array(values, ...)`, everything of a
//! struct_ops map.

use serde::{Deserialize, Serialize};

/// `BPF_MAP_TYPE_*` ids (UAPI).
pub mod map_types {
    pub const HASH: u32 = 1;
    pub const ARRAY: u32 = 2;
    pub const PROG_ARRAY: u32 = 3;
    pub const PERF_EVENT_ARRAY: u32 = 4;
    pub const PERCPU_HASH: u32 = 5;
    pub const PERCPU_ARRAY: u32 = 6;
    pub const STACK_TRACE: u32 = 7;
    pub const CGROUP_ARRAY: u32 = 8;
    pub const LRU_HASH: u32 = 9;
    pub const LRU_PERCPU_HASH: u32 = 10;
    pub const LPM_TRIE: u32 = 11;
    pub const ARRAY_OF_MAPS: u32 = 12;
    pub const HASH_OF_MAPS: u32 = 13;
    pub const DEVMAP: u32 = 14;
    pub const SOCKMAP: u32 = 15;
    pub const CPUMAP: u32 = 16;
    pub const XSKMAP: u32 = 17;
    pub const SOCKHASH: u32 = 18;
    pub const CGROUP_STORAGE: u32 = 19;
    pub const REUSEPORT_SOCKARRAY: u32 = 20;
    pub const PERCPU_CGROUP_STORAGE: u32 = 21;
    pub const QUEUE: u32 = 22;
    pub const STACK: u32 = 23;
    pub const SK_STORAGE: u32 = 24;
    pub const DEVMAP_HASH: u32 = 25;
    pub const STRUCT_OPS: u32 = 26;
    pub const RINGBUF: u32 = 27;
    pub const INODE_STORAGE: u32 = 28;
    pub const TASK_STORAGE: u32 = 29;
    pub const BLOOM_FILTER: u32 = 30;
    pub const USER_RINGBUF: u32 = 31;
    pub const CGRP_STORAGE: u32 = 32;
    pub const ARENA: u32 = 33;
}

/// The map flags (`BPF_F_*` of `map_flags`, UAPI), by name.
pub const MAP_FLAGS: [(&str, u32); 20] = [
    ("BPF_F_NO_PREALLOC", 1 << 0),
    ("BPF_F_NO_COMMON_LRU", 1 << 1),
    ("BPF_F_NUMA_NODE", 1 << 2),
    ("BPF_F_RDONLY", 1 << 3),
    ("BPF_F_WRONLY", 1 << 4),
    ("BPF_F_STACK_BUILD_ID", 1 << 5),
    ("BPF_F_ZERO_SEED", 1 << 6),
    ("BPF_F_RDONLY_PROG", 1 << 7),
    ("BPF_F_WRONLY_PROG", 1 << 8),
    ("BPF_F_CLONE", 1 << 9),
    ("BPF_F_MMAPABLE", 1 << 10),
    ("BPF_F_PRESERVE_ELEMS", 1 << 11),
    ("BPF_F_INNER_MAP", 1 << 12),
    ("BPF_F_LINK", 1 << 13),
    ("BPF_F_PATH_FD", 1 << 14),
    ("BPF_F_VTYPE_BTF_OBJ_FD", 1 << 15),
    ("BPF_F_TOKEN_FD", 1 << 16),
    ("BPF_F_SEGV_ON_FAULT", 1 << 17),
    ("BPF_F_NO_USER_CONV", 1 << 18),
    ("BPF_F_RB_OVERWRITE", 1 << 19),
];

/// The value of map flag `name` (`BPF_F_NO_PREALLOC` → 1).
pub fn map_flag(name: &str) -> Option<u32> {
    MAP_FLAGS.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
}

/// `0x401 (BPF_F_NO_PREALLOC | BPF_F_MMAPABLE)`: flags in hex, with the
/// names of their bits.
pub fn describe_flags(flags: u32) -> String {
    let names: Vec<&str> = MAP_FLAGS
        .iter()
        .filter(|(_, bit)| flags & bit != 0)
        .map(|(name, _)| *name)
        .collect();
    if names.is_empty() {
        format!("{flags:#x}")
    } else {
        format!("{flags:#x} ({})", names.join(" | "))
    }
}

/// `BPF_F_NO_PREALLOC`.
pub const NO_PREALLOC: u32 = 1 << 0;
/// `BPF_F_STACK_BUILD_ID`: a stack-trace map of build ids and offsets.
pub const STACK_BUILD_ID: u32 = 1 << 5;
/// `BPF_F_MMAPABLE`.
pub const MMAPABLE: u32 = 1 << 10;

/// Bytes of one frame of a stack-trace map: an address, or with
/// [`STACK_BUILD_ID`] a `struct bpf_stack_build_id`.
pub fn stack_frame_bytes(map_flags: u32) -> u32 {
    if map_flags & STACK_BUILD_ID != 0 {
        32
    } else {
        8
    }
}

/// A map as it will be created: what the object declares, with what
/// libbpf fills in at open (a map with `__array(values, ...)` has a 4-byte
/// value and an inner map) and what the loader's contract sets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MapShape {
    pub map_type: u32,
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
    pub map_flags: u32,
    /// It has an inner map: a template, or one its loader hands it.
    pub inner_map: bool,
}

/// A parameter the kernel requires of a map's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MapParam {
    KeySize,
    ValueSize,
    MaxEntries,
    InnerMap,
    /// `BPF_F_NO_PREALLOC` in `map_flags`.
    NoPrealloc,
    /// `BPF_F_MMAPABLE` in `map_flags`.
    Mmapable,
}

impl MapParam {
    /// How messages name it.
    pub fn name(self) -> &'static str {
        match self {
            MapParam::KeySize => "key_size",
            MapParam::ValueSize => "value_size",
            MapParam::MaxEntries => "max_entries",
            MapParam::InnerMap => "inner_map",
            MapParam::NoPrealloc => "map_flags BPF_F_NO_PREALLOC",
            MapParam::Mmapable => "map_flags BPF_F_MMAPABLE",
        }
    }

    /// What sets it in a manifest's `maps:` entry.
    pub fn manifest_field(self, map_type: u32) -> &'static str {
        match self {
            MapParam::KeySize => "key_size: N",
            MapParam::ValueSize if map_type == map_types::STACK_TRACE => {
                "stack_depth: N (or value_size: N)"
            }
            MapParam::ValueSize => "value_size: N",
            MapParam::MaxEntries => "max_entries: N (or cpus)",
            MapParam::InnerMap => "inner_map: {...} or inner_ringbuf_bytes: N",
            MapParam::NoPrealloc => "map_flags: [BPF_F_NO_PREALLOC]",
            MapParam::Mmapable => "map_flags: [BPF_F_MMAPABLE]",
        }
    }

    /// The flag a flag parameter stands for.
    pub fn flag(self) -> Option<u32> {
        match self {
            MapParam::NoPrealloc => Some(NO_PREALLOC),
            MapParam::Mmapable => Some(MMAPABLE),
            _ => None,
        }
    }
}

/// What a map type requires: non-zero sizes, an inner map, a flag.
struct Needs {
    key: bool,
    value: bool,
    entries: bool,
    inner: bool,
    flag: Option<MapParam>,
}

fn needs(map_type: u32) -> Option<Needs> {
    use map_types::*;
    let sized = Needs {
        key: true,
        value: true,
        entries: true,
        inner: false,
        flag: None,
    };
    Some(match map_type {
        HASH | ARRAY | PROG_ARRAY | PERCPU_HASH | PERCPU_ARRAY | STACK_TRACE | CGROUP_ARRAY
        | LRU_HASH | LRU_PERCPU_HASH | DEVMAP | SOCKMAP | CPUMAP | XSKMAP | SOCKHASH
        | REUSEPORT_SOCKARRAY | DEVMAP_HASH => sized,
        // libbpf gives it the CPU count.
        PERF_EVENT_ARRAY => Needs {
            entries: false,
            ..sized
        },
        LPM_TRIE => Needs {
            flag: Some(MapParam::NoPrealloc),
            ..sized
        },
        ARRAY_OF_MAPS | HASH_OF_MAPS => Needs {
            inner: true,
            ..sized
        },
        QUEUE | STACK | BLOOM_FILTER => Needs {
            key: false,
            ..sized
        },
        RINGBUF | USER_RINGBUF => Needs {
            key: false,
            value: false,
            ..sized
        },
        // Their size is the number of cgroups, tasks, sockets: 0.
        CGROUP_STORAGE | PERCPU_CGROUP_STORAGE => Needs {
            entries: false,
            ..sized
        },
        SK_STORAGE | INODE_STORAGE | TASK_STORAGE | CGRP_STORAGE => Needs {
            entries: false,
            flag: Some(MapParam::NoPrealloc),
            ..sized
        },
        ARENA => Needs {
            key: false,
            value: false,
            flag: Some(MapParam::Mmapable),
            ..sized
        },
        _ => return None,
    })
}

impl MapShape {
    /// The parameters this map's type requires that it leaves zero or
    /// unset, in a fixed order; none for types the kernel or libbpf
    /// shapes (struct_ops) and for types unknown here.
    pub fn left_unset(&self) -> Vec<MapParam> {
        let Some(n) = needs(self.map_type) else {
            return Vec::new();
        };
        let flag = n
            .flag
            .filter(|f| self.map_flags & f.flag().unwrap_or(0) == 0);
        [
            (n.key && self.key_size == 0).then_some(MapParam::KeySize),
            (n.value && self.value_size == 0).then_some(MapParam::ValueSize),
            (n.entries && self.max_entries == 0).then_some(MapParam::MaxEntries),
            (n.inner && !self.inner_map).then_some(MapParam::InnerMap),
            flag,
        ]
        .into_iter()
        .flatten()
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::map_types::*;
    use super::*;

    fn shape(map_type: u32, key: u32, value: u32, entries: u32, flags: u32) -> MapShape {
        MapShape {
            map_type,
            key_size: key,
            value_size: value,
            max_entries: entries,
            map_flags: flags,
            inner_map: false,
        }
    }

    #[test]
    fn what_each_type_requires() {
        use MapParam::*;
        // A profiler's stack map: a key, nothing else.
        assert_eq!(
            shape(STACK_TRACE, 4, 0, 0, 0).left_unset(),
            [ValueSize, MaxEntries]
        );
        assert_eq!(shape(HASH, 0, 8, 1, 0).left_unset(), [KeySize]);
        assert_eq!(shape(LPM_TRIE, 8, 8, 16, 0).left_unset(), [NoPrealloc]);
        assert!(shape(LPM_TRIE, 8, 8, 16, NO_PREALLOC)
            .left_unset()
            .is_empty());
        // map_extra 0 is 5 hash functions: nothing is missing.
        assert!(shape(BLOOM_FILTER, 0, 4, 64, 0).left_unset().is_empty());
        assert_eq!(shape(BLOOM_FILTER, 0, 0, 64, 0).left_unset(), [ValueSize]);
        assert_eq!(shape(RINGBUF, 0, 0, 0, 0).left_unset(), [MaxEntries]);
        assert!(shape(PERF_EVENT_ARRAY, 4, 4, 0, 0).left_unset().is_empty());
        assert_eq!(shape(TASK_STORAGE, 4, 8, 0, 0).left_unset(), [NoPrealloc]);
        assert_eq!(shape(ARRAY_OF_MAPS, 4, 4, 8, 0).left_unset(), [InnerMap]);
        let with_inner = MapShape {
            inner_map: true,
            ..shape(ARRAY_OF_MAPS, 4, 4, 8, 0)
        };
        assert!(with_inner.left_unset().is_empty());
        assert_eq!(
            shape(ARENA, 0, 0, 0, 0).left_unset(),
            [MaxEntries, Mmapable]
        );
        assert!(shape(STRUCT_OPS, 0, 0, 0, 0).left_unset().is_empty());
    }

    #[test]
    fn params_name_their_manifest_field() {
        assert_eq!(MapParam::ValueSize.name(), "value_size");
        assert!(MapParam::ValueSize
            .manifest_field(STACK_TRACE)
            .starts_with("stack_depth"));
        assert_eq!(MapParam::ValueSize.manifest_field(HASH), "value_size: N");
        assert_eq!(
            serde_json::to_string(&MapParam::NoPrealloc).unwrap(),
            "\"no_prealloc\""
        );
        assert_eq!(map_flag("BPF_F_NO_PREALLOC"), Some(NO_PREALLOC));
        assert_eq!(map_flag("BPF_F_MMAPABLE"), Some(MMAPABLE));
        assert_eq!(map_flag("BPF_F_LINK"), Some(1 << 13));
        assert_eq!(stack_frame_bytes(STACK_BUILD_ID), 32);
        assert_eq!(
            describe_flags(NO_PREALLOC | MMAPABLE),
            "0x401 (BPF_F_NO_PREALLOC | BPF_F_MMAPABLE)"
        );
        assert_eq!(describe_flags(0), "0x0");
    }
}
