//! Attach targets the contract gives (`attach:` in a manifest) instead of
//! the ones the section names: a kernel function, a tracepoint, a uprobe's
//! binary and symbol, an interface, a cgroup.

use bpfcompat_proto::object::AttachTarget;
use libbpf_sys as s;

use super::plan::{Lookup, Plan};
use crate::object::load::ProgDecl;

/// Where network and cgroup programs attach: `lo` and the cgroup root
/// unless the contract says otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Site {
    pub ifname: String,
    pub cgroup: String,
}

impl Default for Site {
    fn default() -> Site {
        Site {
            ifname: "lo".into(),
            cgroup: "/sys/fs/cgroup".into(),
        }
    }
}

/// `plan` with `target` applied. fentry/fexit/lsm targets are set before
/// load (the contract's `Prepare`); here they only name the target.
pub fn apply(plan: Plan, decl: &ProgDecl, target: Option<&AttachTarget>) -> (Plan, Site) {
    let mut site = Site::default();
    let Some(target) = target else {
        return (plan, site);
    };
    let retprobe = decl.section.starts_with("kretprobe") || decl.section.starts_with("uretprobe");
    let plan = match (target, decl.prog_type) {
        (AttachTarget::Function(f), s::BPF_PROG_TYPE_KPROBE) => Plan::Kprobe {
            func: f.clone(),
            retprobe,
        },
        (AttachTarget::Function(f), _) => Plan::Auto {
            target: f.clone(),
            lookup: Lookup::Symbol(vec![f.clone()]),
        },
        (AttachTarget::Tracepoint { category, name }, s::BPF_PROG_TYPE_TRACEPOINT) => {
            Plan::Tracepoint {
                category: category.clone(),
                name: name.clone(),
            }
        }
        (AttachTarget::Tracepoint { name, .. }, _) => Plan::RawTracepoint(name.clone()),
        (AttachTarget::Uprobe { binary, symbol }, _) => Plan::Uprobe {
            binary: binary.clone(),
            symbol: symbol.clone(),
            retprobe,
        },
        (AttachTarget::Interface(i), _) => {
            site.ifname = i.clone();
            plan
        }
        (AttachTarget::Cgroup(c), _) => {
            site.cgroup = c.clone();
            plan
        }
    };
    (plan, site)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decl(prog_type: u32, section: &str) -> ProgDecl {
        ProgDecl {
            name: "p".into(),
            section: section.into(),
            prog_type,
            attach_type: 0,
            autoload: true,
            helpers: vec![],
        }
    }

    #[test]
    fn overrides_replace_the_sections_target() {
        let k = decl(s::BPF_PROG_TYPE_KPROBE, "kretprobe/vfs_read");
        let (p, _) = apply(
            Plan::Xdp,
            &k,
            Some(&AttachTarget::Function("vfs_write".into())),
        );
        assert_eq!(
            p,
            Plan::Kprobe {
                func: "vfs_write".into(),
                retprobe: true
            }
        );
        let x = decl(s::BPF_PROG_TYPE_XDP, "xdp");
        let (p, site) = apply(Plan::Xdp, &x, Some(&AttachTarget::Interface("eth0".into())));
        assert_eq!((p, site.ifname.as_str()), (Plan::Xdp, "eth0"));
        let (_, site) = apply(Plan::Xdp, &x, None);
        assert_eq!(site, Site::default());
        let t = decl(
            s::BPF_PROG_TYPE_TRACEPOINT,
            "tracepoint/syscalls/sys_enter_read",
        );
        let target = AttachTarget::Tracepoint {
            category: "sched".into(),
            name: "sched_switch".into(),
        };
        assert!(
            matches!(apply(Plan::Xdp, &t, Some(&target)).0, Plan::Tracepoint { name, .. } if name == "sched_switch")
        );
    }
}
