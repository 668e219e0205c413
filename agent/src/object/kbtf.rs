//! Looking names up in the running kernel's BTF: vmlinux, then each
//! module's split BTF under `/sys/kernel/btf/`.

use std::ffi::CString;

const VMLINUX: &str = "/sys/kernel/btf/vmlinux";

/// A parsed BTF, freed on drop.
struct Btf(*mut libbpf_sys::btf);

impl Btf {
    fn parse(path: &str, base: Option<&Btf>) -> Option<Btf> {
        let c = CString::new(path).ok()?;
        let raw = unsafe {
            match base {
                None => libbpf_sys::btf__parse(c.as_ptr(), std::ptr::null_mut()),
                Some(b) => libbpf_sys::btf__parse_split(c.as_ptr(), b.0),
            }
        };
        let bad = raw.is_null() || unsafe { libbpf_sys::libbpf_get_error(raw as *const _) } != 0;
        (!bad).then_some(Btf(raw))
    }

    fn has(&self, name: &str, kind: u32) -> bool {
        let Ok(c) = CString::new(name) else {
            return false;
        };
        unsafe { libbpf_sys::btf__find_by_name_kind(self.0, c.as_ptr(), kind) > 0 }
    }
}

impl Drop for Btf {
    fn drop(&mut self) {
        unsafe { libbpf_sys::btf__free(self.0) }
    }
}

/// Whether the kernel's BTF (vmlinux or a loaded module's) has a type of
/// `kind` (`BTF_KIND_FUNC`, `BTF_KIND_TYPEDEF`) named `name`; `None`
/// without kernel BTF.
pub fn has(name: &str, kind: u32) -> Option<bool> {
    let vmlinux = Btf::parse(VMLINUX, None)?;
    if vmlinux.has(name, kind) {
        return Some(true);
    }
    let modules = std::fs::read_dir("/sys/kernel/btf").ok()?;
    let found = modules
        .flatten()
        .filter(|e| e.file_name() != "vmlinux")
        .filter_map(|e| Btf::parse(&e.path().to_string_lossy(), Some(&vmlinux)))
        .any(|m| m.has(name, kind));
    Some(found)
}
