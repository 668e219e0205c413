//! Creating a map: the kernel does not know its type, or refused its
//! parameters.

use bpfcompat_proto::object::{Diagnosis, FailureClass, Phase};

use super::diagnosis::{diag, permission};
use super::evidence::{errno_text, find_line_or, says_unsupported, Evidence, E2BIG, ENOMEM, EPERM};

pub fn classify_map(ev: &Evidence) -> Diagnosis {
    let line = find_line_or(ev, &["failed to create", "map '"], || {
        format!(
            "map '{}': creation failed with {}",
            ev.subject,
            errno_text(ev.errno)
        )
    });
    if ev.errno == Some(EPERM) {
        return permission(ev, Phase::MapCreate, line);
    }
    if let Some(gap) = &ev.loader_gap {
        return diag(
            FailureClass::InvalidObject,
            Phase::MapCreate,
            format!("{line} (the map is {gap})"),
            format!(
                "its loader sets this before load; say what it sets in a manifest (maps: - name: \
                 {}, with max_entries: N or cpus, inner_ringbuf_bytes or inner_map; \
                 docs/manifest.md), or keep the automatic fixups on",
                ev.subject
            ),
        );
    }
    match ev.map_type_supported {
        Some(false) => diag(
            FailureClass::UnsupportedMapType,
            Phase::MapCreate,
            format!(
                "{line} (probe: map type {} not supported)",
                ev.map_type.as_deref().unwrap_or("?")
            ),
            map_hint(ev.map_type.as_deref()),
        ),
        None if says_unsupported(ev.errno) => diag(
            FailureClass::UnsupportedMapType,
            Phase::MapCreate,
            format!("{line} (the map-type probe did not answer)"),
            map_hint(ev.map_type.as_deref()),
        ),
        _ => diag(
            FailureClass::Unknown,
            Phase::MapCreate,
            line,
            match ev.errno {
                Some(ENOMEM) | Some(E2BIG) => {
                    "the kernel supports this map type but could not allocate it: \
                     lower max_entries/value size or check memory limits"
                }
                _ => {
                    "the kernel supports this map type but rejected its parameters \
                     (map_flags, key/value size, map_extra): check which were added \
                     after this kernel"
                }
            },
        ),
    }
}

fn map_hint(map_type: Option<&str>) -> String {
    match map_type {
        Some("ringbuf") => "ring buffers need 5.8+: fall back to a perf event array \
             (perf buffer) when libbpf_probe_bpf_map_type(BPF_MAP_TYPE_RINGBUF) says no"
            .into(),
        Some(t) => format!(
            "guard it with libbpf_probe_bpf_map_type(BPF_MAP_TYPE_{}) and ship a variant \
             (or set the map's autocreate off and the programs using it autoload off)",
            t.to_uppercase()
        ),
        None => "guard it with libbpf_probe_bpf_map_type() and ship a variant".into(),
    }
}
