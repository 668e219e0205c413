//! libbpf feature probes for exactly what an object uses.

use bpfcompat_proto::object::{helper_name, FeatureProbe, ProbeKind};

use super::names;

fn answer(rc: i32) -> (Option<bool>, Option<String>) {
    match rc {
        1 => (Some(true), None),
        0 => (Some(false), None),
        e => (
            None,
            Some(format!(
                "probe failed: {}",
                std::io::Error::from_raw_os_error(-e)
            )),
        ),
    }
}

pub fn prog_type(t: u32) -> FeatureProbe {
    let rc = unsafe { libbpf_sys::libbpf_probe_bpf_prog_type(t, std::ptr::null()) };
    let (supported, error) = answer(rc);
    FeatureProbe {
        kind: ProbeKind::ProgramType,
        name: names::prog_type(t),
        prog_type: None,
        id: None,
        supported,
        error,
    }
}

pub fn map_type(t: u32) -> FeatureProbe {
    let rc = unsafe { libbpf_sys::libbpf_probe_bpf_map_type(t, std::ptr::null()) };
    let (supported, error) = answer(rc);
    FeatureProbe {
        kind: ProbeKind::MapType,
        name: names::map_type(t),
        prog_type: None,
        id: None,
        supported,
        error,
    }
}

pub fn helper(prog_type: u32, id: u32) -> FeatureProbe {
    let rc = unsafe { libbpf_sys::libbpf_probe_bpf_helper(prog_type, id, std::ptr::null()) };
    let (supported, error) = answer(rc);
    FeatureProbe {
        kind: ProbeKind::Helper,
        name: helper_name(id)
            .map(str::to_owned)
            .unwrap_or_else(|| format!("helper#{id}")),
        prog_type: Some(names::prog_type(prog_type)),
        id: Some(id),
        supported,
        error,
    }
}
