//! `maps:`: the shapes a loader sets on maps before load (sizes, flags,
//! inner maps), checked against each map's type.

use std::collections::BTreeSet;

use bpfcompat_proto::object::map_params::{map_flag, map_types, stack_frame_bytes, MAP_FLAGS};
use bpfcompat_proto::object::{InnerMap, MapFixup, MaxEntries};
use serde_norway::Value;

use super::checker::Checker;
use super::schema::{RawInnerMap, RawMap};
use super::{list, ManifestError};
use crate::object::{map_type_id, map_type_name};
use crate::report::inspection::MapSummary;
use crate::yaml::Field;

/// Inner map types the Go tool accepts in `maps[].inner_map.type`.
const INNER_MAP_TYPES: [&str; 6] = [
    "hash",
    "array",
    "lru_hash",
    "percpu_hash",
    "percpu_array",
    "lru_percpu_hash",
];

impl Checker<'_> {
    pub(super) fn maps(&self, maps: &[RawMap]) -> Result<Vec<MapFixup>, ManifestError> {
        let list_field = Field::root().key("maps");
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        for (i, m) in maps.iter().enumerate() {
            let field = list_field.index(i);
            let map = self.map(&field.key("name"), &m.name)?;
            if !seen.insert(&m.name) {
                return Err(self.err(&field.key("name"), format!("{:?} is listed twice", m.name)));
            }
            out.push(self.map_fixup(&field, m, map)?);
        }
        Ok(out)
    }

    /// The object's map `name`, or an error at `field` listing them.
    fn map(&self, field: &Field, name: &str) -> Result<&MapSummary, ManifestError> {
        self.named(field, "map", &self.object.maps, name, |m| &m.name)
    }

    /// What entry `m` at `field` sets on `map`.
    fn map_fixup(
        &self,
        field: &Field,
        m: &RawMap,
        map: &MapSummary,
    ) -> Result<MapFixup, ManifestError> {
        let sets = [
            m.max_entries.is_some(),
            m.key_size.is_some(),
            m.value_size.is_some(),
            m.stack_depth.is_some(),
            m.map_flags.is_some(),
            m.inner_ringbuf_bytes.is_some(),
            m.inner_map.is_some(),
        ];
        if !sets.contains(&true) {
            return Err(self.err(
                field,
                "sets nothing: give max_entries, key_size, value_size, stack_depth, map_flags, \
                 inner_ringbuf_bytes or inner_map",
            ));
        }
        let max_entries = m
            .max_entries
            .as_ref()
            .map(|v| self.max_entries(&field.key("max_entries"), v))
            .transpose()?;
        let map_flags = m
            .map_flags
            .as_ref()
            .map(|v| self.map_flags(&field.key("map_flags"), v))
            .transpose()?;
        let key_size = match m.key_size {
            Some(0) => return Err(self.err(&field.key("key_size"), "must be positive")),
            k => k,
        };
        let flags = map_flags.or(map.map_flags).unwrap_or(0);
        let (inner_ringbuf_bytes, inner_map) = self.inner(field, m, map)?;
        Ok(MapFixup {
            name: m.name.clone(),
            max_entries,
            key_size,
            value_size: self.value_size(field, m, map, flags)?,
            map_flags,
            inner_ringbuf_bytes,
            inner_map,
        })
    }

    /// `value_size: N` bytes, or for a stack-trace map `stack_depth: N`
    /// frames (of 8 bytes, 32 with `BPF_F_STACK_BUILD_ID` in `flags`).
    fn value_size(
        &self,
        field: &Field,
        m: &RawMap,
        map: &MapSummary,
        flags: u32,
    ) -> Result<Option<u32>, ManifestError> {
        let stack = map.map_type == Some(map_types::STACK_TRACE);
        let frame = stack_frame_bytes(flags);
        let depth_field = field.key("stack_depth");
        match (m.value_size, m.stack_depth) {
            (Some(_), Some(_)) => {
                Err(self.err(&depth_field, "give value_size or stack_depth, not both"))
            }
            (None, Some(_)) if !stack => Err(self.err(
                &depth_field,
                format!(
                    "map {:?} is a {}, not a stack_trace: give its value_size",
                    m.name,
                    type_name(map)
                ),
            )),
            (None, Some(depth)) => match depth.checked_mul(frame).filter(|&v| v > 0) {
                Some(bytes) => Ok(Some(bytes)),
                None => Err(self.err(
                    &depth_field,
                    format!(
                        "{depth} is not a stack depth (1 to {} frames)",
                        u32::MAX / frame
                    ),
                )),
            },
            (Some(0), None) => Err(self.err(&field.key("value_size"), "must be positive")),
            (Some(v), None) if stack && v % frame != 0 => Err(self.err(
                &field.key("value_size"),
                format!(
                    "{v} is not a whole number of {frame}-byte frames, a stack-trace map's \
                     value; or give stack_depth"
                ),
            )),
            (v, None) => Ok(v),
        }
    }

    /// `map_flags`: a number, or a list of `BPF_F_*` names.
    fn map_flags(&self, field: &Field, value: &Value) -> Result<u32, ManifestError> {
        let names = || list(MAP_FLAGS.iter().map(|(n, _)| *n));
        match value {
            Value::Number(n) => n
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| {
                    self.err(
                        field,
                        format!("{n} is not a set of map flags (0 to {})", u32::MAX),
                    )
                }),
            Value::Sequence(flags) => flags.iter().enumerate().try_fold(0, |all, (i, f)| {
                let name = f.as_str().unwrap_or_default();
                let bit = map_flag(name).ok_or_else(|| {
                    self.err(
                        &field.index(i),
                        format!("{name:?} is not a map flag; one of {}", names()),
                    )
                })?;
                Ok(all | bit)
            }),
            _ => Err(self.err(
                field,
                "must be a number or a list of flags like [BPF_F_NO_PREALLOC]",
            )),
        }
    }

    /// `inner_ringbuf_bytes` or `inner_map`, on a map of maps.
    fn inner(
        &self,
        field: &Field,
        m: &RawMap,
        map: &MapSummary,
    ) -> Result<(Option<u32>, Option<InnerMap>), ManifestError> {
        let key = match (&m.inner_map, m.inner_ringbuf_bytes) {
            (None, None) => return Ok((None, None)),
            (Some(_), Some(_)) => {
                return Err(self.err(
                    &field.key("inner_map"),
                    "give inner_map or inner_ringbuf_bytes, not both",
                ))
            }
            (Some(_), None) => "inner_map",
            (None, Some(_)) => "inner_ringbuf_bytes",
        };
        let maps_of_maps = [map_types::ARRAY_OF_MAPS, map_types::HASH_OF_MAPS];
        if map.map_type.is_some_and(|t| !maps_of_maps.contains(&t)) {
            return Err(self.err(
                &field.key(key),
                format!(
                    "map {:?} is a {}, not an array_of_maps or hash_of_maps: it has no inner map",
                    m.name,
                    type_name(map)
                ),
            ));
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
        Ok((inner_ringbuf_bytes, inner_map))
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

    fn inner_map(&self, field: &Field, inner: &RawInnerMap) -> Result<InnerMap, ManifestError> {
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
}

/// libbpf's name for `map`'s type, for messages.
fn type_name(map: &MapSummary) -> &'static str {
    map.map_type
        .and_then(map_type_name)
        .unwrap_or("map of unknown type")
}
