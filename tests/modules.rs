//! End-to-end: kernels with their distribution's modules. The Debian 6.1
//! package (kernel and modules) and the 7.2 modules package are served over
//! loopback HTTP; classic tc and a kprobe on a module's function attach for
//! real there, and keep their explained outcome where there is no module
//! tree. The expected cells are the "With the kernels' own modules" table
//! of `tests/bpf/GROUND_TRUTH.md`.

mod common;

use bpfcompat_testkit::http::{Plan, TestServer};
use common::truth::*;
use common::*;
use serde_json::Value;

fn serve(file: &str) -> TestServer {
    TestServer::start(
        std::fs::read(kernels_dir().join(file)).unwrap(),
        Plan::default(),
    )
}

fn names(list: &Value) -> Vec<&str> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect()
}

#[test]
fn tc_and_a_module_kprobe_attach_with_the_kernels_own_modules() {
    let _lock = boot_lock();
    let s = Scratch::new();
    let corpus = build_corpus(s.dir.path());
    let deb61 = serve(K61_DEB.file);
    let modules72 = serve(MODULES_72.file);
    let dir = kernels_dir();
    let matrix = s.write(
        "modules.yaml",
        &format!(
            "name: modules\nkernels:\n\
             - id: deb-6.1\n  source:\n    url: {}\n    sha256: {}\n\
             - id: sid-7.2\n  source:\n    file: {}\n  modules:\n    url: {}\n    sha256: {}\n\
             - id: bare-6.1-other-modules\n  source:\n    file: {}\n  modules:\n    url: {}\n    sha256: {}\n\
             - id: bare-6.12\n  source:\n    file: {}\n",
            deb61.url("linux-image.deb"),
            K61_DEB.sha256,
            dir.join(K72.file).display(),
            modules72.url("linux-modules.deb"),
            MODULES_72.sha256,
            dir.join(K61.file).display(),
            modules72.url("linux-modules.deb"),
            MODULES_72.sha256,
            dir.join(K612.file).display(),
        ),
    );
    let truth = table("| object | 6.1 deb | 7.2 + modules | 6.1 + 7.2 modules |");
    let mut args = vec!["test", "--matrix", matrix.to_str().unwrap()];
    let objects: Vec<String> = truth
        .iter()
        .map(|(name, _)| corpus.join(format!("{name}.bpf.o")).display().to_string())
        .collect();
    for o in &objects {
        args.extend(["--artifact", o.as_str()]);
    }
    let run = s.run(&args);
    assert_eq!(run.code, 2, "{}", run.context());

    let ids = ["deb-6.1", "sid-7.2", "bare-6.1-other-modules"];
    let wrong = differences(&truth, &ids, |id| run.target(id).clone());
    assert!(
        wrong.is_empty(),
        "ground truth differs:\n{}",
        wrong.join("\n")
    );

    // What was loaded, in dependency order, and why.
    let m61 = &run.target("deb-6.1")["kernel"]["modules"];
    assert_eq!(
        names(&m61["loaded"]),
        [
            "sch_ingress",
            "cls_bpf",
            "nf_defrag_ipv4",
            "nf_defrag_ipv6",
            "libcrc32c",
            "nf_conntrack"
        ]
    );
    assert_eq!(
        m61["loaded"][5]["why"],
        "defines nf_conntrack_in (kprobe/nf_conntrack_in)"
    );
    assert!(
        m61["tree"]
            .as_str()
            .unwrap()
            .contains("the kernel's package"),
        "{m61}"
    );
    assert_eq!(m61["failed"], serde_json::json!([]));
    let tc = &check_of(run.target("deb-6.1"), "tc")["validation"]["programs"][0]["attach"];
    assert_eq!(tc["target"], "lo (ifindex 1) clsact ingress");
    let m72 = &run.target("sid-7.2")["kernel"]["modules"];
    assert!(
        m72["tree"].as_str().unwrap().starts_with("modules: url:"),
        "{m72}"
    );
    assert_eq!(
        names(&m72["loaded"]),
        [
            "sch_ingress",
            "cls_bpf",
            "nf_defrag_ipv6",
            "nf_defrag_ipv4",
            "nf_conntrack"
        ]
    );

    // Another kernel's modules: each refused with the kernel's reason, and
    // the other checks carry on.
    let other = &run.target("bare-6.1-other-modules")["kernel"]["modules"];
    assert!(other["loaded"].as_array().unwrap().is_empty(), "{other}");
    let cls = other["failed"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "cls_bpf")
        .unwrap();
    let reason = cls["reason"].as_str().unwrap();
    assert!(
        reason.contains("version magic '7.2.13+deb14-cloud-amd64")
            && reason.contains("should be '6.1.0-47-cloud-amd64"),
        "{reason}"
    );

    // No module tree at all: a fact, and the explained skip.
    let bare = &run.target("bare-6.12")["kernel"]["modules"];
    assert_eq!(bare["tree"], Value::Null);
    assert!(
        bare["note"]
            .as_str()
            .unwrap()
            .contains("without a module tree"),
        "{bare}"
    );
    assert_eq!(names(&bare["not_found"]), ["sch_ingress", "cls_bpf"]);
    assert_eq!(
        observed(check_of(run.target("bare-6.12"), "tc")),
        Expected::Partial
    );

    let md = std::fs::read_to_string(s.path("report.md")).unwrap();
    assert!(
        md.contains(
            "⚠️ module `cls_bpf` (tc program tc\\_pass) was not loaded: cls\\_bpf: version magic"
        ),
        "{md}"
    );
    assert!(
        md.contains(
            "module `sch_ingress` (tc program tc\\_pass) is not in the kernel's module tree"
        ),
        "{md}"
    );
}

/// Command mode loads what `--modules` and the matrix name; a kernel
/// without modules says so. A check that needs no module ships none.
#[test]
fn command_mode_loads_the_named_modules() {
    let _lock = boot_lock();
    let s = Scratch::new();
    let deb61 = serve(K61_DEB.file);
    let dir = kernels_dir();
    let matrix = s.write(
        "modules.yaml",
        &format!(
            "name: modules\nkernels:\n\
             - id: deb-6.1\n  source:\n    url: {}\n    sha256: {}\n  modules: [veth]\n\
             - id: bare-6.12\n  source:\n    file: {}\n",
            deb61.url("linux-image.deb"),
            K61_DEB.sha256,
            dir.join(K612.file).display(),
        ),
    );
    let run = s.test_command(
        "test -d /sys/module/dummy",
        &matrix,
        &["--modules", "dummy"],
    );
    assert_eq!(run.code, 2, "{}", run.context());
    assert_eq!(run.target("deb-6.1")["status"], "pass", "{}", run.context());
    let m = &run.target("deb-6.1")["kernel"]["modules"];
    assert_eq!(names(&m["loaded"]), ["dummy", "veth"]);
    assert_eq!(m["loaded"][0]["why"], "--modules");
    assert_eq!(
        m["loaded"][1]["why"],
        "the matrix's modules: for this kernel"
    );
    assert_eq!(run.target("bare-6.12")["status"], "fail");
    let bare = &run.target("bare-6.12")["kernel"]["modules"];
    assert_eq!(names(&bare["not_found"]), ["dummy"]);

    // Nothing needed: no module facts, the shared initramfs only.
    let s = Scratch::new();
    let run = s.test_command("true", &s.matrix(&[(&K612, "")]), &[]);
    assert_eq!(run.code, 0, "{}", run.context());
    assert!(run.target(K612.id)["kernel"].get("modules").is_none());
    let runs = s.path("work").join("runs");
    let shared: Vec<_> = walk(&runs)
        .into_iter()
        .filter(|p| p.ends_with("initramfs.cpio"))
        .collect();
    assert!(
        shared
            .iter()
            .all(|p| p.parent().unwrap().parent() == Some(&runs)),
        "only run-wide initramfs files without modules: {shared:?}"
    );
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}
