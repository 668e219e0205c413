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

/// The running kernel's BTF, parsed once per boot: the modules' split BTF
/// (declared first: freed before the vmlinux BTF they extend).
struct KernelBtf {
    modules: Vec<Btf>,
    vmlinux: Btf,
}

impl KernelBtf {
    fn parse() -> Option<KernelBtf> {
        let vmlinux = Btf::parse(VMLINUX, None)?;
        let modules = std::fs::read_dir("/sys/kernel/btf")
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_name() != "vmlinux")
            .filter_map(|e| Btf::parse(&e.path().to_string_lossy(), Some(&vmlinux)))
            .collect();
        Some(KernelBtf { modules, vmlinux })
    }
}

thread_local! {
    static KERNEL_BTF: std::cell::OnceCell<Option<KernelBtf>> = const { std::cell::OnceCell::new() };
}

/// Whether the kernel's BTF (vmlinux or a loaded module's) has a type of
/// `kind` (`BTF_KIND_FUNC`, `BTF_KIND_TYPEDEF`) named `name`; `None`
/// without kernel BTF.
pub fn has(name: &str, kind: u32) -> Option<bool> {
    KERNEL_BTF.with(|cell| {
        let btf = cell.get_or_init(KernelBtf::parse).as_ref()?;
        Some(btf.vmlinux.has(name, kind) || btf.modules.iter().any(|m| m.has(name, kind)))
    })
}
