//! `maps:`: the shapes a loader sets on maps before load (sizes, inner
//! maps), checked against each map's type.

use std::collections::BTreeSet;

use bpfcompat_proto::object::{InnerMap, MapFixup, MaxEntries};
use serde_norway::Value;

use super::checker::Checker;
use super::schema::{RawInnerMap, RawMap};
use super::{list, ManifestError};
use crate::object::{map_type_id, map_type_name};
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

const MAP_TYPE_ARRAY_OF_MAPS: u32 = 12;
const MAP_TYPE_HASH_OF_MAPS: u32 = 13;

impl Checker<'_> {
    pub(super) fn maps(&self, maps: &[RawMap]) -> Result<Vec<MapFixup>, ManifestError> {
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
                ..MapFixup::default()
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
