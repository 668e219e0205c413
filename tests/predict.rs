//! The preflight end to end, without booting: `inspect`, `kernels inspect`
//! and `test --predict-only` on the corpus and the real test kernels, held
//! against `tests/bpf/GROUND_TRUTH.md`: every cell predicted blocked is a
//! failure there, and each requirement kind is blocked on exactly the
//! kernels expected. (`tests/validator.rs` asserts the same of a real run.)

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use common::truth::*;
use common::*;
use serde_json::Value;

/// `bpfcompat ARGS` with the scratch cache; its exit code, stdout, stderr.
fn bpfcompat(s: &Scratch, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_bpfcompat"))
        .args(args)
        .env("BPFCOMPAT_CACHE_DIR", s.path("cache"))
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `test --predict-only` of `objects` on `matrix`: by object, by kernel, the
/// prediction.
fn predict(
    s: &Scratch,
    matrix: &Path,
    objects: &[String],
) -> (i32, String, BTreeMap<String, BTreeMap<String, Value>>) {
    let out = s.path("preflight.json");
    let mut args = vec![
        "test",
        "--predict-only",
        "--matrix",
        matrix.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    for o in objects {
        args.extend(["--artifact", o.as_str()]);
    }
    let (code, stdout, stderr) = bpfcompat(s, &args);
    let json: Value = serde_json::from_str(
        &std::fs::read_to_string(&out).unwrap_or_else(|e| panic!("{e}\n{stdout}\n{stderr}")),
    )
    .unwrap();
    assert_eq!(json["schema"], "bpfcompat.preflight/v1");
    let by_object = json["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            let name = o["name"]
                .as_str()
                .unwrap()
                .trim_end_matches(".bpf.o")
                .to_owned();
            let kernels = o["kernels"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, p)| (k.clone(), p.clone()))
                .collect();
            (name, kernels)
        })
        .collect();
    (code, stdout, by_object)
}

fn blocked(p: &Value) -> bool {
    p["verdict"] == "blocked"
}

fn reasons(p: &Value) -> String {
    p["obstacles"].to_string()
}

fn objects_of(corpus: &Path, truth: &[(String, Vec<Expected>)]) -> Vec<String> {
    truth
        .iter()
        .filter(|(_, cells)| cells[0] != Expected::Open)
        .map(|(name, _)| corpus.join(format!("{name}.bpf.o")).display().to_string())
        .collect()
}

/// Every cell predicted blocked fails in `truth`; returns the failing
/// cells and how many of them had a prediction.
fn no_false_blocks(
    truth: &[(String, Vec<Expected>)],
    ids: &[&str],
    predicted: &BTreeMap<String, BTreeMap<String, Value>>,
) -> (usize, usize) {
    let (mut failing, mut explained) = (0, 0);
    let mut wrong = Vec::new();
    for (object, cells) in truth.iter().filter(|(_, c)| c[0] != Expected::Open) {
        for (id, cell) in ids.iter().zip(cells) {
            let p = &predicted[object][*id];
            let fails = matches!(cell, Expected::Load(..) | Expected::Attach(_));
            failing += usize::from(fails);
            explained += usize::from(fails && blocked(p));
            if blocked(p) && !fails {
                wrong.push(format!(
                    "{object} on {id}: predicted blocked ({}), but {cell:?}",
                    reasons(p)
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "false blocks:\n{}", wrong.join("\n"));
    (failing, explained)
}

#[test]
fn every_predicted_block_fails_and_each_requirement_kind_blocks_where_expected() {
    let s = Scratch::new();
    let corpus = build_corpus(s.dir.path());
    let truth = table("| object | 5.10 | 6.1 | 6.12 | 7.2 | tiny |");
    let matrix = s.matrix_with_configs(&ALL);
    let (code, stdout, predicted) = predict(&s, &matrix, &objects_of(&corpus, &truth));
    assert_eq!(code, 2, "a required kernel is predicted blocked:\n{stdout}");
    assert!(stdout.contains("necessary conditions only"), "{stdout}");
    let ids = ALL.map(|k| k.id);
    let (failing, explained) = no_false_blocks(&truth, &ids, &predicted);
    eprintln!("{explained} of {failing} failing cells had a predicted reason");

    // Each kind of requirement, blocked on exactly these kernels, the
    // reason naming the thing. Kernels without BTF are judged by release.
    let expect: &[(&str, &[&str], &str)] = &[
        (
            "bpf_loop",
            &[K510.id, TINY.id],
            "helper bpf_loop (181) absent: this kernel's bpf_func_id ends at",
        ),
        (
            "kfunc_missing",
            &[K510.id, K61.id, K612.id, K72.id, TINY.id],
            "kfunc bpfcompat_no_such_kfunc absent",
        ),
        (
            "iter_num",
            &[K510.id, K61.id, TINY.id],
            "kfunc bpf_iter_num_new absent",
        ),
        (
            "arena",
            &[K510.id, K61.id, TINY.id],
            "type arena (33) absent",
        ),
        (
            "user_ringbuf",
            &[K510.id, TINY.id],
            "type user_ringbuf (31) absent",
        ),
        ("bloom", &[K510.id], "type bloom_filter (30) absent"),
        (
            "cgroup_unix",
            &[K510.id, K61.id, TINY.id],
            "BPF_CGROUP_UNIX_CONNECT",
        ),
        ("tcx", &[K510.id, K61.id, TINY.id], "BPF_TCX_INGRESS"),
        (
            "netfilter",
            &[K510.id, K61.id, TINY.id],
            "program type netfilter",
        ),
        (
            "fentry_missing",
            &[K510.id, K61.id, K612.id, K72.id, TINY.id],
            "fentry target bpfcompat_no_such_function absent",
        ),
        (
            "core_missing_field",
            &[K510.id, K61.id, K612.id, K72.id, TINY.id],
            "field task_struct.bpfcompat_no_such_field not in this kernel (CO-RE, unguarded)",
        ),
        (
            "core_state_unguarded",
            &[K510.id, TINY.id],
            "field task_struct.__state not in this kernel (CO-RE, unguarded)",
        ),
        ("core_state_guarded", &[TINY.id], "no BTF"),
        ("core_ok", &[TINY.id], "this kernel has no BTF"),
        (
            "untyped_socket",
            &ids,
            "section socket_acl: libbpf cannot tell its program type",
        ),
        (
            "helper_wrong_type",
            &ids,
            "helper bpf_xdp_adjust_head (44) works on packets; a tracepoint program cannot call it",
        ),
        ("struct_ops_link", &[K510.id, K61.id, TINY.id], ""),
        (
            "verifier_null",
            &ids,
            "dereferences bpf_map_lookup_elem's result on map counters (a hash map",
        ),
        // Newer verifiers prove an array's constant-key lookup non-NULL
        // (7.2 loads it): never predicted.
        ("array_nonnull", &[], ""),
        // The dereference is past a branch on a loader's knob: not judged.
        ("rodata_flag", &[], ""),
        // From each kernel's config (7.2 has none): no error injection, no
        // network namespaces on the tiny one.
        (
            "fmod_ret_syscall",
            &[K510.id, K61.id, K612.id, TINY.id],
            "its config has no CONFIG_FUNCTION_ERROR_INJECTION",
        ),
        ("fmod_ret", &[TINY.id], ""),
        ("sk", &[TINY.id], ""),
        (
            "gpl_helper",
            &[K510.id, K61.id, K612.id, K72.id, TINY.id],
            "GPL-only",
        ),
    ];
    let mut wrong = Vec::new();
    for (object, kernels, reason) in expect {
        for id in ids {
            let p = &predicted[*object][id];
            let want = kernels.contains(&id);
            // Without BTF, the reason is that, or the release.
            let named = id == TINY.id || reasons(p).contains(reason);
            if blocked(p) != want || (want && !named) {
                wrong.push(format!(
                    "{object} on {id}: want blocked={want} ({reason}), got {p}"
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    // Without BTF: what needs it, or what came after the release.
    let tiny = |object: &str| reasons(&predicted[object][TINY.id]);
    assert!(tiny("core_state_guarded").contains("this kernel has no BTF"));
    assert!(tiny("arena").contains("type arena appeared in 6.9; this kernel is 6.1"));
    assert!(tiny("cgroup_unix").contains("BPF_CGROUP_UNIX_CONNECT appeared in 6.7"));
    // ... and what its image shows it was built without.
    assert!(tiny("kprobe").contains("this kernel has none (its image has no kprobe_events"));
    assert!(tiny("bpf_loop").contains("takes a callback, which only a JIT runs"));
    assert!(tiny("sk").contains("config has no CONFIG_NET_NS"));
    // Loaded whole, variant_trio's fentry has no target on 5.10; with its
    // manifest, a variant group's alternatives are not obstacles: the
    // loader keeps the tracepoint there.
    assert!(blocked(&predicted["variant_trio"][K510.id]));
    let manifest =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bpf/variant_trio.manifest.yaml");
    let out = s.path("variant.json");
    let one = s.matrix(&[(&K510, "")]);
    let (code, stdout, stderr) = bpfcompat(
        &s,
        &[
            "test",
            "--predict-only",
            "--matrix",
            one.to_str().unwrap(),
            "--artifact",
            corpus.join("variant_trio.bpf.o").to_str().unwrap(),
            "--manifest",
            manifest.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains(&format!("{}: no known obstacle", K510.id)),
        "{stdout}"
    );
}

#[test]
fn arm64_kernels_are_predicted_from_their_packages_without_a_false_block() {
    let s = Scratch::new();
    let corpus = build_corpus(s.dir.path());
    let truth = table("| object | 5.10 arm64 | 6.1 arm64 |");
    let matrix = s.matrix(&ARM64.map(|k| (k, "    arch: arm64\n")));
    let (_, stdout, predicted) = predict(&s, &matrix, &objects_of(&corpus, &truth));
    let ids = ARM64.map(|k| k.id);
    no_false_blocks(&truth, &ids, &predicted);
    let loop510 = &predicted["bpf_loop"][ARM64_510.id];
    assert!(
        blocked(loop510) && reasons(loop510).contains("bpf_loop"),
        "{stdout}"
    );
    assert!(!blocked(&predicted["bpf_loop"][ARM64_61.id]), "{stdout}");
    // These packages bring their modules: a kprobe target may be a
    // module's, so a missing one is not judged (kprobe_module passes).
    assert!(
        !blocked(&predicted["kprobe_module"][ARM64_510.id]),
        "{stdout}"
    );
}

#[test]
fn inspect_names_each_requirement_and_the_minimum_kernel() {
    let s = Scratch::new();
    let corpus = build_corpus(s.dir.path());
    let obj = |n: &str| corpus.join(format!("{n}.bpf.o")).display().to_string();
    let (code, text, stderr) = bpfcompat(
        &s,
        &[
            "inspect",
            &obj("bpf_loop"),
            &obj("core_state_guarded"),
            &obj("cgroup_unix"),
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(
        text.contains("minimum kernel: ≥ 5.17 because bpf_loop (5.17, in loop_on_switch"),
        "{text}"
    );
    assert!(
        text.contains(
            "CO-RE field_exists struct task_struct.__state in read_state_guarded (guarded)"
        ),
        "{text}"
    );
    assert!(
        text.contains("CO-RE byte_off struct task_struct.state in read_state_guarded (guarded)"),
        "{text}"
    );
    assert!(text.contains("attach type cgroup_unix_connect"), "{text}");
    assert!(
        text.contains("≥ 6.7 because attach type cgroup_unix_connect"),
        "{text}"
    );

    let (code, json, _) = bpfcompat(&s, &["inspect", "--json", &obj("fentry_missing")]);
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&json).unwrap();
    let program = &v[0]["object"]["programs"][0];
    assert_eq!(program["attach_target"]["kind"], "fentry");
    assert_eq!(
        program["attach_target"]["name"],
        "bpfcompat_no_such_function"
    );
    assert_eq!(v[0]["min_kernel"]["version"], "5.5");

    let (code, _, stderr) = bpfcompat(
        &s,
        &[
            "inspect",
            &s.write("x.bpf.o", "not elf").display().to_string(),
        ],
    );
    assert_eq!(code, 1);
    assert!(stderr.contains("x.bpf.o: not an ELF file"), "{stderr}");
}

#[test]
fn kernels_inspect_reads_a_kernels_btf_without_booting_it() {
    let s = Scratch::new();
    let matrix = s.matrix(&[(&K510, ""), (&TINY, "")]);
    let m = matrix.to_str().unwrap();
    let (code, text, stderr) = bpfcompat(&s, &["kernels", "inspect", K510.id, "--matrix", m]);
    assert_eq!(code, 0, "{stderr}");
    assert!(text.contains("release: 5.10"), "{text}");
    assert!(text.contains("last helper: "), "{text}");
    assert!(
        text.contains("ringbuf") && !text.contains("user_ringbuf"),
        "{text}"
    );
    assert!(
        std::fs::read_dir(s.path("cache/btf")).unwrap().count() >= 1,
        "the BTF is cached"
    );

    let (_, json, _) = bpfcompat(
        &s,
        &["kernels", "inspect", TINY.id, "--matrix", m, "--json"],
    );
    let v: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["btf"], false);
    assert_eq!(v["version"], "6.1");
    assert_eq!(v["features"]["jit"], false);
    assert_eq!(v["features"]["kprobes"], false);

    let (code, _, stderr) = bpfcompat(&s, &["kernels", "inspect", "nope", "--matrix", m]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("no kernel \"nope\" in this matrix; its kernels are"),
        "{stderr}"
    );
}
