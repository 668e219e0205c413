//! Module trees in the kernel cache: collected from the real Debian
//! packages (a linux-image package with its modules, a modules-only
//! package), indexed from each module's own ELF, and the closure a check
//! needs; served over loopback HTTP like any package.

use bpfcompat::kernel::{self, prune, verify, KernelError};
use bpfcompat_testkit::cache::{
    file_source, load_order, oci_source, resolve, resolve_modules, scratch_cache, serve_kernel,
    url_source, want_function, want_module,
};
use bpfcompat_testkit::http::Plan;
use bpfcompat_testkit::kernels::{fake_bzimage, K61, K61_DEB, K72, MODULES_72, TINY};
use bpfcompat_testkit::oci::oci_registry;

#[test]
fn the_61_package_gives_its_kernel_and_its_module_tree() {
    let (_dir, cache) = scratch_cache();
    let server = serve_kernel(&K61_DEB, Plan::default());
    let source = url_source(server.url("linux-image.deb"), K61_DEB.sha256);
    let started = std::time::Instant::now();
    let k = resolve(&cache, &source).unwrap();
    eprintln!(
        "6.1 package with modules resolved in {:?}",
        started.elapsed()
    );
    assert_eq!(
        k.sha256, K61.sha256,
        "the package's image is the bare 6.1 one"
    );
    let tree = kernel::open_modules(&cache, k.modules.as_deref().expect("a module tree"))
        .unwrap()
        .unwrap();
    let index = &tree.index;
    assert_eq!(index.releases, ["6.1.0-47-cloud-amd64"]);
    assert!(index.modules.len() > 1000, "{}", index.modules.len());
    assert!(!index.builtin.as_ref().unwrap().is_empty());
    let conntrack = index
        .modules
        .iter()
        .find(|m| m.name == "nf_conntrack")
        .unwrap();
    assert_eq!(
        conntrack.depends,
        ["nf_defrag_ipv4", "nf_defrag_ipv6", "libcrc32c"]
    );
    assert!(conntrack
        .vermagic
        .as_deref()
        .unwrap()
        .starts_with("6.1.0-47-cloud-amd64 "));
    assert!(conntrack.functions.iter().any(|f| f == "nf_conntrack_in"));

    let plan = tree.plan(&[
        want_module("sch_ingress"),
        want_module("cls_bpf"),
        want_function("nf_conntrack_in"),
    ]);
    assert_eq!(
        load_order(&plan),
        [
            "sch_ingress",
            "cls_bpf",
            "nf_defrag_ipv4",
            "nf_defrag_ipv6",
            "libcrc32c",
            "nf_conntrack"
        ]
    );
    assert!(plan.missing.is_empty(), "{:?}", plan.missing);
    let elf = tree.read(&plan.load[1].0).unwrap();
    assert_eq!(&elf[..4], b"\x7fELF");

    // Resolved again: from the cache, with the same tree, without a request.
    let requests = server.requests();
    let again = resolve(&cache, &source).unwrap();
    assert_eq!(again, k);
    assert_eq!(server.requests(), requests);

    // The same package as a modules source needs no second extraction.
    let same = resolve_modules(&cache, &source).unwrap();
    assert_eq!(same.id, tree.id);

    // verify checks the tree's files; prune keeps the tree of a kept
    // source and removes it with the source.
    let report = verify(&cache).unwrap();
    assert!(report.removed.is_empty(), "{:?}", report.removed);
    let keep = [K61_DEB.sha256.to_owned()].into_iter().collect();
    prune(&cache, Some(&keep)).unwrap();
    assert!(kernel::open_modules(&cache, &tree.id).unwrap().is_some());
    let removed = prune(&cache, None).unwrap();
    assert!(removed.removed.iter().any(|(id, _)| *id == tree.id));
    assert!(kernel::open_modules(&cache, &tree.id).unwrap().is_none());
}

#[test]
fn a_modules_package_is_a_module_source_and_its_xz_modules_are_decompressed() {
    let (_dir, cache) = scratch_cache();
    let modules = file_source(&MODULES_72.path(), None);
    let tree = resolve_modules(&cache, &modules).unwrap();
    assert_eq!(tree.index.releases, ["7.2.13+deb14-cloud-amd64"]);
    assert_eq!(
        tree.index.builtin, None,
        "the package ships no modules.builtin"
    );
    let plan = tree.plan(&[
        want_module("sch_ingress"),
        want_module("cls_bpf"),
        want_module("no_such_module"),
        want_function("nf_conntrack_in"),
    ]);
    assert_eq!(
        load_order(&plan),
        [
            "sch_ingress",
            "cls_bpf",
            "nf_defrag_ipv6",
            "nf_defrag_ipv4",
            "nf_conntrack"
        ]
    );
    assert_eq!(
        plan.missing,
        [("no_such_module".to_owned(), "tc program".to_owned())]
    );
    assert!(plan.load[0].0.path.ends_with(".ko.xz"));
    let elf = tree.read(&plan.load[0].0).unwrap();
    assert_eq!(&elf[..4], b"\x7fELF", "decompressed for the guest");

    // Its kernel has no modules of its own, and is no module source.
    let binary = file_source(&K72.path(), None);
    let k = resolve(&cache, &binary).unwrap();
    assert_eq!(k.modules, None);
    let err = resolve_modules(&cache, &binary).unwrap_err();
    assert!(matches!(err, KernelError::NoModules { .. }), "{err}");
    assert!(err.to_string().contains("linux-modules-RELEASE"), "{err}");
    // Nor is a bare bzImage.
    let bare = file_source(&TINY.path(), None);
    let err = resolve_modules(&cache, &bare).unwrap_err();
    assert!(err.to_string().contains("holds no kernel modules"), "{err}");
}

#[test]
fn an_image_layer_of_modules_is_collected_even_when_a_module_is_unreadable() {
    let (_dir, cache) = scratch_cache();
    let registry = oci_registry("kernels/k", "6.1", &fake_bzimage(b"oci"), ".gz");
    let k = resolve(&cache, &oci_source(&registry.reference)).unwrap();
    let tree = kernel::open_modules(&cache, k.modules.as_deref().unwrap())
        .unwrap()
        .unwrap();
    let module = &tree.index.modules[0];
    assert_eq!(module.name, "bpf_testmod");
    assert!(
        module
            .unreadable
            .as_deref()
            .unwrap()
            .contains("not an ELF module"),
        "{module:?}"
    );
}
