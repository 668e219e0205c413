//! libbpf's names for program, attach and map types.

use std::ffi::CStr;

fn c(p: *const std::ffi::c_char, fallback: impl FnOnce() -> String) -> String {
    if p.is_null() {
        return fallback();
    }
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

pub fn prog_type(t: u32) -> String {
    c(unsafe { libbpf_sys::libbpf_bpf_prog_type_str(t) }, || {
        format!("prog_type#{t}")
    })
}

pub fn attach_type(t: u32) -> String {
    c(unsafe { libbpf_sys::libbpf_bpf_attach_type_str(t) }, || {
        format!("attach_type#{t}")
    })
}

pub fn map_type(t: u32) -> String {
    c(unsafe { libbpf_sys::libbpf_bpf_map_type_str(t) }, || {
        format!("map_type#{t}")
    })
}

pub fn libbpf_version() -> String {
    c(unsafe { libbpf_sys::libbpf_version_string() }, || {
        "unknown".into()
    })
    .trim_start_matches('v')
    .to_owned()
}
