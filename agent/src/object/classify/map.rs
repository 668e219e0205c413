//! Creating a map: the kernel does not know its type, the object left to
//! its loader a parameter nobody set, or the kernel refused parameters the
//! object did set.

use bpfcompat_proto::object::{Diagnosis, FailureClass, Phase};

use super::diagnosis::{diag, permission};
use super::evidence::{
    errno_text, find_line_or, says_unsupported, Evidence, LoaderGap, E2BIG, ENOMEM, EPERM,
};

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
    // A type the kernel predates: nothing the loader sets would help.
    if ev.map_type_supported == Some(false) {
        return diag(
            FailureClass::UnsupportedMapType,
            Phase::MapCreate,
            format!(
                "{line} (probe: map type {} not supported)",
                ev.map_type.as_deref().unwrap_or("?")
            ),
            map_hint(ev.map_type.as_deref()),
        );
    }
    if let Some(gap) = &ev.loader_gap {
        return loader_gap(ev, gap, line);
    }
    match ev.map_type_supported {
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

/// A map created without what its loader sets: the object's gap, named
/// with the manifest fields that fill it.
fn loader_gap(ev: &Evidence, gap: &LoaderGap, line: String) -> Diagnosis {
    let names: Vec<&str> = gap.params.iter().map(|p| p.name()).collect();
    let (names, them) = match names.split_last() {
        Some((last, [])) => (last.to_string(), "it"),
        Some((last, rest)) => (format!("{} and {last}", rest.join(", ")), "them"),
        None => (String::new(), "it"),
    };
    let fields = gap
        .params
        .iter()
        .map(|p| p.manifest_field(gap.map_type))
        .collect::<Vec<_>>()
        .join(", ");
    let fixups = if gap.fixups_would {
        format!(", or drop --no-fixups: the automatic fixups set {them} as loaders do")
    } else {
        String::new()
    };
    diag(
        FailureClass::InvalidObject,
        Phase::MapCreate,
        format!("{line} (the object leaves {names} to its loader, and nothing set {them})"),
        format!(
            "its loader sets {names} before load: say what it sets in a manifest (maps: - name: \
             {}, {fields}; docs/manifest.md){fixups}",
            ev.subject
        ),
    )
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
