//! BPF-relevant facts about the running kernel.

use std::fs;
use std::path::Path;

use bpfcompat_proto::object::BpfKernelFacts;

fn read_trim(path: &str) -> std::io::Result<String> {
    fs::read_to_string(path).map(|s| s.trim().to_owned())
}

/// Mounts securityfs at `/sys/kernel/security` if it is not there yet (the
/// LSM list and lockdown mode live in it). Failure is tolerated: the facts
/// then say "unknown".
fn ensure_securityfs(warnings: &mut Vec<String>) {
    let dir = Path::new("/sys/kernel/security");
    if dir.join("lsm").exists() || !dir.exists() {
        return;
    }
    let rc = unsafe {
        libc::mount(
            c"securityfs".as_ptr(),
            c"/sys/kernel/security".as_ptr(),
            c"securityfs".as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        let e = std::io::Error::last_os_error();
        // EBUSY: already mounted (but without an lsm file: no LSMs at all).
        if e.raw_os_error() != Some(libc::EBUSY) {
            warnings.push(format!("mount securityfs on /sys/kernel/security: {e}"));
        }
    }
}

/// The selected mode in `none [integrity] confidentiality`.
pub fn parse_lockdown(s: &str) -> Option<String> {
    let start = s.find('[')?;
    let end = s[start..].find(']')? + start;
    Some(s[start + 1..end].to_owned())
}

/// A file that may be missing (the kernel lacks the feature): its trimmed
/// text, or None; a file that is there but unreadable is a warning.
fn read_optional(path: &str, warnings: &mut Vec<String>) -> Option<String> {
    match read_trim(path) {
        Ok(v) => Some(v),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            warnings.push(format!("{path}: {e}"));
            None
        }
    }
}

pub fn kernel_facts() -> BpfKernelFacts {
    let mut f = BpfKernelFacts {
        btf: Path::new("/sys/kernel/btf/vmlinux").exists(),
        ..Default::default()
    };
    let w = &mut f.warnings;
    // Missing: the kernel was built without a BPF JIT.
    f.jit_enable =
        read_optional("/proc/sys/net/core/bpf_jit_enable", w).and_then(|v| v.parse().ok());
    f.jit = matches!(f.jit_enable, Some(1) | Some(2));
    // Missing: no perf events, so no stack-trace maps either.
    f.perf_event_max_stack =
        read_optional("/proc/sys/kernel/perf_event_max_stack", w).and_then(|v| v.parse().ok());
    match read_trim("/proc/sys/kernel/unprivileged_bpf_disabled") {
        Ok(v) => f.unprivileged_bpf_disabled = v.parse().ok(),
        Err(e) => f
            .warnings
            .push(format!("/proc/sys/kernel/unprivileged_bpf_disabled: {e}")),
    }
    ensure_securityfs(&mut f.warnings);
    match read_trim("/sys/kernel/security/lsm") {
        Ok(v) => {
            let lsms: Vec<String> = v
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
            f.bpf_lsm_active = Some(lsms.iter().any(|l| l == "bpf"));
            f.lsms = Some(lsms);
        }
        Err(e) => f.warnings.push(format!("/sys/kernel/security/lsm: {e}")),
    }
    // Missing: no lockdown LSM built in, so nothing is locked down.
    f.lockdown = read_optional("/sys/kernel/security/lockdown", &mut f.warnings)
        .and_then(|v| parse_lockdown(&v));
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lockdown_mode() {
        assert_eq!(
            parse_lockdown("none [integrity] confidentiality").as_deref(),
            Some("integrity")
        );
        assert_eq!(parse_lockdown("[none] integrity").as_deref(), Some("none"));
        assert_eq!(parse_lockdown("garbage"), None);
    }
}
