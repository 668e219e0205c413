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

pub fn kernel_facts() -> BpfKernelFacts {
    let mut f = BpfKernelFacts {
        btf: Path::new("/sys/kernel/btf/vmlinux").exists(),
        ..Default::default()
    };
    match read_trim("/proc/sys/net/core/bpf_jit_enable") {
        Ok(v) => f.jit_enable = v.parse().ok(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => f
            .warnings
            .push(format!("/proc/sys/net/core/bpf_jit_enable: {e}")),
    }
    f.jit = matches!(f.jit_enable, Some(1) | Some(2));
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
    match read_trim("/sys/kernel/security/lockdown") {
        Ok(v) => f.lockdown = parse_lockdown(&v),
        // No lockdown LSM built in: nothing is locked down.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => f
            .warnings
            .push(format!("/sys/kernel/security/lockdown: {e}")),
    }
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
