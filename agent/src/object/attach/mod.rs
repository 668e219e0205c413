//! Attaching every loaded program to a real target inside the guest.
//!
//! Targets: the program's own section for tracing-family programs (libbpf
//! auto-attach), `lo` (ifindex 1) for XDP and tc/tcx, the cgroup2 root for
//! cgroup programs, a sockmap of the object for sk_skb/sk_msg, a fresh socket
//! for socket filters and reuseport, the network namespace for sk_lookup and
//! the flow dissector, a software perf event for perf_event programs, and
//! the struct_ops maps themselves. "skipped" only where no target can exist
//! in an isolated guest, with the reason.
//!
//! [`plan`] decides how each program is attached; [`targets`] attaches one
//! program as planned; this module goes through the object and builds the
//! results.

mod overrides;
pub mod plan;
mod targets;

use std::path::Path;

use bpfcompat_proto::object::{AttachResult, Phase, ProgramContract, Status};
use libbpf_rs::{MapCore, Object};

use super::capture::{Capture, Output};
use super::classify::{classify, Evidence};
use super::load::{MapDecl, ProgDecl};
use super::names;
use plan::{plan, Plan};
pub use targets::Held;
use targets::{attach_one, clsact_unavailable, err, Failure};

/// What attaching needs besides the object: the kernel facts the
/// classifier uses, and the contract's per-program targets.
pub struct AttachCtx<'a> {
    pub kernel_btf: bool,
    pub lockdown: Option<&'a str>,
    pub programs: &'a [ProgramContract],
}

/// One result per program and per map (None for maps that are not
/// struct_ops), and the links, if asked to keep them.
pub struct Attached {
    pub programs: Vec<AttachResult>,
    pub maps: Vec<Option<AttachResult>>,
    pub held: Vec<Held>,
}

impl AttachCtx<'_> {
    /// What is known about a failed attach of `subject`: the failure and
    /// what libbpf said meanwhile.
    fn evidence(&self, subject: &str, e: &Failure, out: &Output) -> Evidence {
        let mut ev = Evidence::new(Phase::Attach, subject);
        ev.errno = e.0;
        ev.libbpf_lines = out.warn_lines();
        ev.kernel_btf = self.kernel_btf;
        ev
    }
}
fn passed(target: String, iter_bytes: Option<u64>) -> AttachResult {
    AttachResult {
        status: Status::Pass,
        errno: None,
        error: None,
        target: Some(target),
        iter_bytes,
        diagnosis: None,
    }
}

fn failed(e: Failure, evidence: Evidence) -> AttachResult {
    AttachResult {
        status: Status::Fail,
        errno: e.0,
        error: Some(e.1),
        target: evidence.target.clone(),
        iter_bytes: None,
        diagnosis: Some(classify(&evidence)),
    }
}

/// Why a struct_ops program is not attached by itself; its struct_ops
/// map's result replaces it.
const VIA_STRUCT_OPS_MAP: &str = "registered through its struct_ops map";

/// Attaches every loaded program of `obj`, one at a time, and registers its
/// struct_ops maps. Without `keep`, each link is dropped before the next
/// attach (two XDP programs cannot share `lo`); with it, the links are
/// returned, for behavior mode.
pub fn attach_all(
    obj: &mut Object,
    progs: &[ProgDecl],
    loaded: &[bool],
    maps: &[MapDecl],
    ctx: &AttachCtx<'_>,
    keep: bool,
) -> Attached {
    let mut held = Vec::new();
    let mut hold = |(result, h): (AttachResult, Option<Held>)| {
        if keep {
            held.extend(h);
        }
        result
    };
    let mut programs: Vec<AttachResult> = progs
        .iter()
        .zip(loaded)
        .map(|(decl, &loaded)| {
            if loaded {
                hold(attach_program(obj, decl, maps, ctx))
            } else {
                AttachResult::skipped("not loaded")
            }
        })
        .collect();
    let maps: Vec<Option<AttachResult>> = maps
        .iter()
        .map(|decl| register_struct_ops(obj, decl, ctx).map(&mut hold))
        .collect();
    share_struct_ops_fate(progs, &mut programs, &maps);
    Attached {
        programs,
        maps,
        held,
    }
}

/// Attaches one loaded program as its plan (and the contract) says.
fn attach_program(
    obj: &mut Object,
    decl: &ProgDecl,
    maps: &[MapDecl],
    ctx: &AttachCtx<'_>,
) -> (AttachResult, Option<Held>) {
    let target = ctx
        .programs
        .iter()
        .find(|p| p.name == decl.name)
        .and_then(|p| p.target.as_ref());
    let (plan, site) = overrides::apply(plan(decl), decl, target);
    match &plan {
        Plan::Skip(why) => return (AttachResult::skipped(why.clone()), None),
        Plan::StructOps => return (AttachResult::skipped(VIA_STRUCT_OPS_MAP), None),
        _ => {}
    }
    let Some(prog) = obj
        .progs_mut()
        .find(|p| p.name().to_string_lossy() == decl.name)
    else {
        return (AttachResult::skipped("not in the loaded object"), None);
    };
    let cap = Capture::start();
    let r = attach_one(&prog, &plan, obj, maps, &site);
    let out = cap.take();
    match r {
        Ok(done) => (passed(done.target, done.iter_bytes), Some(done.held)),
        Err(e) if clsact_unavailable(&plan, &e) => (
            AttachResult::skipped(format!(
                "the kernel has no clsact qdisc here ({}): it is a module on this \
                 kernel, and it is not loaded in the guest (the kernel has no module tree \
                 here, or its modules failed to load: see kernel.modules); tcx needs none",
                e.1
            )),
            None,
        ),
        Err(e) => (failed_attach(decl, (&plan, &site), e, &out, ctx), None),
    }
}

fn failed_attach(
    decl: &ProgDecl,
    (plan, site): (&Plan, &overrides::Site),
    e: Failure,
    out: &Output,
    ctx: &AttachCtx<'_>,
) -> AttachResult {
    let mut ev = ctx.evidence(&decl.name, &e, out);
    ev.lockdown = ctx.lockdown.map(str::to_owned);
    ev.prog_type = Some(names::prog_type(decl.prog_type));
    match plan.named_target() {
        Some((target, lookup)) => {
            ev.target = Some(target);
            ev.target_exists = lookup.exists();
            ev.target_traceable = lookup.traceable();
        }
        None => {
            let (target, exists) = site_target(plan, site);
            ev.target = Some(target);
            ev.target_exists = exists;
        }
    }
    if ev.libbpf_lines.is_empty() {
        ev.libbpf_lines.push(e.1.clone());
    }
    failed(e, ev)
}

/// What a plan without a named target attached to, and whether it exists.
fn site_target(plan: &Plan, site: &overrides::Site) -> (String, Option<bool>) {
    match plan {
        Plan::Uprobe { binary, symbol, .. } => (
            format!("{binary}:{symbol}"),
            // The binary may lack the symbol: not known here.
            (!Path::new(binary).exists()).then_some(false),
        ),
        Plan::Xdp | Plan::Tc | Plan::Tcx { .. } if site.ifname != "lo" => (
            format!("interface {}", site.ifname),
            Some(Path::new("/sys/class/net").join(&site.ifname).exists()),
        ),
        Plan::Cgroup => (
            format!("cgroup {}", site.cgroup),
            Some(Path::new(&site.cgroup).is_dir()),
        ),
        // lo, the netns, sockets: made or checked by us, they exist.
        _ => (format!("{plan:?}"), Some(true)),
    }
}

/// Registers `decl` if it is a struct_ops map; None for other maps.
fn register_struct_ops(
    obj: &mut Object,
    decl: &MapDecl,
    ctx: &AttachCtx<'_>,
) -> Option<(AttachResult, Option<Held>)> {
    if !decl.is_struct_ops() {
        return None;
    }
    let Some(mut map) = obj
        .maps_mut()
        .find(|m| m.name().to_string_lossy() == decl.name)
    else {
        return Some((AttachResult::skipped("not created"), None));
    };
    let cap = Capture::start();
    let r = map.attach_struct_ops();
    let out = cap.take();
    let target = format!("struct_ops {}", decl.name);
    Some(match r {
        Ok(link) => (passed(target, None), Some(Held::Link(link))),
        Err(e) => {
            let e = err(e);
            let mut ev = ctx.evidence(&decl.name, &e, &out);
            ev.target = Some(target);
            (failed(e, ev), None)
        }
    })
}

/// struct_ops programs share the fate of the struct_ops maps: the first
/// failed map's result, else the first map's.
fn share_struct_ops_fate(
    progs: &[ProgDecl],
    prog_results: &mut [AttachResult],
    map_results: &[Option<AttachResult>],
) {
    let st = map_results.iter().flatten().collect::<Vec<_>>();
    for (decl, r) in progs.iter().zip(prog_results.iter_mut()) {
        if decl.is_struct_ops() && r.error.as_deref() == Some(VIA_STRUCT_OPS_MAP) {
            if let Some(failed) = st.iter().find(|m| m.status == Status::Fail) {
                *r = (*failed).clone();
            } else if let Some(pass) = st.first() {
                *r = (*pass).clone();
            }
        }
    }
}
