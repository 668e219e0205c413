//! Loading the kernel modules the host shipped (see
//! `bpfcompat_proto::modules`): each with `finit_module(2)`, in the order
//! given (dependencies first), before any check runs. A module that fails
//! is reported with the kernel's own reason and does not stop the others:
//! the checks then show what its absence means.
//!
//! Without the load list (no check needs a module) this is one failed
//! `open` and nothing else.

use std::os::fd::AsRawFd;

use bpfcompat_proto::modules::{
    ModuleLoadRequest, ModuleLoadResult, ModuleStatus, ModuleToLoad, MODULES_PATH,
};

/// Loads every module of the load list, if there is one. The error is a
/// setup warning: a load list the agent cannot read.
pub fn load_requested() -> Result<Vec<ModuleLoadResult>, String> {
    let text = match std::fs::read(MODULES_PATH) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("cannot read the module list {MODULES_PATH}: {e}")),
    };
    let request: ModuleLoadRequest = serde_json::from_slice(&text)
        .map_err(|e| format!("cannot parse the module list {MODULES_PATH}: {e}"))?;
    Ok(request.modules.iter().map(load).collect())
}

fn load(module: &ModuleToLoad) -> ModuleLoadResult {
    eprintln!(
        "bpfcompat-guest: loading module {} ({})",
        module.name, module.why
    );
    let result = |status, errno, reason| ModuleLoadResult {
        name: module.name.clone(),
        why: module.why.clone(),
        status,
        errno,
        reason,
    };
    let file = match std::fs::File::open(&module.path) {
        Ok(file) => file,
        Err(e) => {
            return result(
                ModuleStatus::Failed,
                e.raw_os_error(),
                Some(format!("cannot open {}: {e}", module.path)),
            )
        }
    };
    // SAFETY: a valid fd and an empty, NUL-terminated parameter string.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_finit_module,
            file.as_raw_fd(),
            c"".as_ptr(),
            0 as libc::c_int,
        )
    };
    if rc == 0 {
        return result(ModuleStatus::Loaded, None, None);
    }
    let err = std::io::Error::last_os_error();
    let errno = err.raw_os_error();
    if errno == Some(libc::EEXIST) {
        return result(ModuleStatus::AlreadyLoaded, None, None);
    }
    let said = kernel_lines_about(&module.name);
    let reason = if said.is_empty() {
        format!("finit_module: {err}{}", meaning(errno))
    } else {
        format!("{} (finit_module: {err})", said.join("; "))
    };
    result(ModuleStatus::Failed, errno, Some(reason))
}

/// What an errno of `finit_module` means when the kernel said nothing.
fn meaning(errno: Option<i32>) -> &'static str {
    match errno {
        Some(libc::ENOSYS) => ": this kernel has no module support (CONFIG_MODULES is off)",
        Some(libc::ENOEXEC) => ": not a module this kernel can load (another kernel's build?)",
        Some(libc::ENOENT) => ": the module needs a symbol the kernel does not have",
        Some(libc::EPERM) => ": module loading is disabled (modules_disabled or lockdown)",
        Some(libc::EKEYREJECTED) => ": its signature was rejected",
        _ => "",
    }
}

/// The kernel log's last lines about `module` ("cls_bpf: ..."), without
/// their level and time stamp. Read only after a failure.
fn kernel_lines_about(module: &str) -> Vec<String> {
    const SYSLOG_ACTION_READ_ALL: libc::c_int = 3;
    let mut buf = vec![0u8; 256 * 1024];
    // SAFETY: the buffer is valid for its length.
    let n = unsafe {
        libc::klogctl(
            SYSLOG_ACTION_READ_ALL,
            buf.as_mut_ptr().cast(),
            buf.len() as libc::c_int,
        )
    };
    if n <= 0 {
        return Vec::new();
    }
    buf.truncate(n as usize);
    let prefix = format!("{module}: ");
    let mut lines: Vec<String> = String::from_utf8_lossy(&buf)
        .lines()
        .map(strip_log_prefix)
        .filter(|l| l.starts_with(&prefix))
        .map(str::to_owned)
        .collect();
    let keep = lines.len().saturating_sub(3);
    lines.drain(..keep);
    lines.dedup();
    lines
}

/// `<3>[    1.234567] text` → `text`.
fn strip_log_prefix(line: &str) -> &str {
    let line = match line.strip_prefix('<') {
        Some(rest) => rest.split_once('>').map_or(line, |(_, r)| r),
        None => line,
    };
    match line.trim_start().strip_prefix('[') {
        Some(rest) => rest.split_once(']').map_or(line, |(_, r)| r).trim_start(),
        None => line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_prefixes_are_stripped() {
        assert_eq!(
            strip_log_prefix("<3>[    1.234567] cls_bpf: version magic 'x' should be 'y'"),
            "cls_bpf: version magic 'x' should be 'y'"
        );
        assert_eq!(strip_log_prefix("plain"), "plain");
        assert_eq!(
            strip_log_prefix("<4>nf_conntrack: Unknown symbol"),
            "nf_conntrack: Unknown symbol"
        );
    }
}
