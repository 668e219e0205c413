//! Throwaway ground-truth harness: runs `check_object` on every
//! `/corpus/*.bpf.o` as PID 1 of a test kernel and prints the outcomes on the
//! console, then powers off. Built static:
//! `RUSTFLAGS="-C target-feature=+crt-static" cargo build --release
//!  --target x86_64-unknown-linux-gnu -p bpfcompat-guest --example objcheck`
//! and packed as `/init` with the corpus (see `tests/bpf/boot.sh`).

#[path = "../src/object/mod.rs"]
#[allow(dead_code)]
mod object;

use std::ffi::CString;
use std::path::PathBuf;

use bpfcompat_proto::object::{ObjectMode, Status};

fn mount(src: &str, target: &str, fstype: &str) {
    let _ = std::fs::create_dir_all(target);
    let (s, t, f) = (
        CString::new(src).unwrap(),
        CString::new(target).unwrap(),
        CString::new(fstype).unwrap(),
    );
    let rc = unsafe { libc::mount(s.as_ptr(), t.as_ptr(), f.as_ptr(), 0, std::ptr::null()) };
    if rc != 0 {
        println!(
            "HARNESS mount {fstype} on {target}: {}",
            std::io::Error::last_os_error()
        );
    }
}

fn main() {
    if std::process::id() == 1 {
        mount("proc", "/proc", "proc");
        mount("sysfs", "/sys", "sysfs");
        mount("devtmpfs", "/dev", "devtmpfs");
        mount("bpf", "/sys/fs/bpf", "bpf");
        mount("tracefs", "/sys/kernel/tracing", "tracefs");
        mount("debugfs", "/sys/kernel/debug", "debugfs");
        mount("cgroup2", "/sys/fs/cgroup", "cgroup2");
    }
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let facts = object::kernel_facts();
    println!("HARNESS kernel {}", release.trim());
    println!("HARNESS facts {}", serde_json::to_string(&facts).unwrap());
    let only = std::env::args().nth(1);
    let mut objs: Vec<PathBuf> = std::fs::read_dir("/corpus")
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    objs.sort();
    for path in objs {
        if only
            .as_deref()
            .is_some_and(|o| !path.to_string_lossy().contains(o))
        {
            continue;
        }
        let mut out = object::check_object_with(&path, ObjectMode::LoadAttach, &facts);
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let class = out
            .diagnosis
            .as_ref()
            .map(|d| d.class.as_str())
            .unwrap_or("-");
        println!(
            "ROW {name} status={:?} load={:?}/{:?} class={class} ms={}",
            out.status, out.load.status, out.load.errno, out.duration_ms
        );
        if let Some(d) = &out.diagnosis {
            println!("  why {:?}: {}", d.phase, d.reason);
        }
        for p in &out.programs {
            println!(
                "  prog {} [{}] load={:?}/{:?} insns={:?} {} attach={:?}/{:?} {} {}",
                p.name,
                p.section,
                p.load.status,
                p.load.errno,
                p.load.insns_processed,
                p.load
                    .diagnosis
                    .as_ref()
                    .map(|d| d.class.as_str())
                    .unwrap_or(""),
                p.attach.status,
                p.attach.errno,
                p.attach
                    .diagnosis
                    .as_ref()
                    .map(|d| d.class.as_str())
                    .unwrap_or(""),
                if p.attach.status == Status::Pass {
                    p.attach.target.clone().unwrap_or_default()
                } else {
                    p.attach.error.clone().unwrap_or_default()
                }
            );
        }
        for m in &out.maps {
            if m.create.status != Status::Pass || m.attach.is_some() {
                println!(
                    "  map {} [{}] create={:?}/{:?} {} attach={:?}",
                    m.name,
                    m.map_type,
                    m.create.status,
                    m.create.errno,
                    m.diagnosis.as_ref().map(|d| d.class.as_str()).unwrap_or(""),
                    m.attach.as_ref().map(|a| (a.status, a.errno))
                );
            }
        }
        for p in &mut out.programs {
            p.load.verifier_log.clear();
        }
        println!("JSON {}", serde_json::to_string(&out).unwrap());
    }
    // What an unprivileged loader sees (unprivileged_bpf_disabled is set on
    // these kernels): run one object again as nobody.
    if only.is_none() && std::process::id() == 1 {
        let rc = unsafe { libc::setresuid(65534, 65534, 65534) };
        if rc == 0 {
            let out = object::check_object_with(
                std::path::Path::new("/corpus/maps.bpf.o"),
                ObjectMode::LoadAttach,
                &facts,
            );
            let d = out.diagnosis.as_ref();
            println!(
                "ROWUNPRIV maps.bpf.o status={:?} load={:?}/{:?} class={} why={}",
                out.status,
                out.load.status,
                out.load.errno,
                d.map(|d| d.class.as_str()).unwrap_or("-"),
                d.map(|d| d.reason.as_str()).unwrap_or("")
            );
        }
    }
    println!("HARNESS done");
    if std::process::id() == 1 {
        unsafe {
            libc::sync();
            libc::reboot(libc::RB_POWER_OFF);
        }
    }
}
