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
    let rc = match t {
        libbpf_sys::BPF_MAP_TYPE_STRUCT_OPS => struct_ops(),
        _ => unsafe { libbpf_sys::libbpf_probe_bpf_map_type(t, std::ptr::null()) },
    };
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

/// libbpf 1.7 probes struct_ops maps with `value_type_btf_obj_fd = -1`,
/// an attribute of 6.9: older kernels refuse the attribute (EINVAL), so
/// its probe says no on 5.6 to 6.8, where struct_ops works. The same probe
/// without it: a struct_ops map whose value type is no struct_ops type
/// (BTF id 1) is ENOTSUPP where struct_ops exists, EINVAL where not.
fn struct_ops() -> i32 {
    const ENOTSUPP: i32 = 524;
    let opts = libbpf_sys::bpf_map_create_opts {
        sz: std::mem::size_of::<libbpf_sys::bpf_map_create_opts>() as _,
        btf_vmlinux_value_type_id: 1,
        ..Default::default()
    };
    let rc = unsafe {
        libbpf_sys::bpf_map_create(
            libbpf_sys::BPF_MAP_TYPE_STRUCT_OPS,
            std::ptr::null(),
            4,
            4,
            1,
            &opts,
        )
    };
    match -rc {
        ENOTSUPP => 1,
        libc::EINVAL => 0,
        _ if rc >= 0 => {
            // Created after all: it exists.
            unsafe { libc::close(rc) };
            1
        }
        _ => rc,
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
