//! End-to-end: kernels restored from snapshots give the verdicts a boot
//! gives, on the real test kernels; stale and refused snapshots are
//! replaced; `--snapshots off` boots as before.

mod common;

use std::path::{Path, PathBuf};

use bpfcompat_testkit::tmpfs::Tmpfs;
use common::truth::*;
use common::*;
use serde_json::Value;

/// What a report says, without what differs from run to run (times, log
/// files and paths, how the guest started): one line per target, check
/// and program.
fn verdicts(report: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for t in report["targets"].as_array().unwrap() {
        let kernel = strip(t["kernel"].clone());
        out.push(format!(
            "{}: {} {} {kernel}",
            t["id"], t["status"], t["classification"]["code"]
        ));
        for c in t["checks"].as_array().unwrap() {
            let name = &c["artifact"]["name"];
            let cell = match c["classification"].is_null() {
                true => String::new(),
                false => format!("{:?}", observed(c)),
            };
            let functional = strip(c["functional"].clone());
            out.push(format!(
                "{} {name}: {} {cell} {functional}",
                t["id"], c["status"]
            ));
            for p in c["validation"]["programs"].as_array().into_iter().flatten() {
                out.push(format!("{} {name} {}", t["id"], strip(p.clone())));
            }
        }
    }
    out
}

/// Drops the fields that say when, how long or where, how many bytes came
/// out (an iterator's output names the guest's tasks), and how much memory
/// the guest used.
fn strip(mut v: Value) -> Value {
    if let Some(map) = v.as_object_mut() {
        map.retain(|k, _| {
            !["log", "_ms", "duration", "file", "path", "_bytes", "memory"]
                .iter()
                .any(|w| k.contains(w))
        });
        for value in map.values_mut() {
            *value = strip(value.take());
        }
    } else if let Some(items) = v.as_array_mut() {
        for value in items {
            *value = strip(value.take());
        }
    }
    v
}

fn restored(run: &Run) -> Vec<(String, bool)> {
    run.report()["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["id"].as_str().unwrap().to_owned(), t["restored"] == true))
        .collect()
}

fn snapshot_keys(s: &Scratch) -> Vec<PathBuf> {
    let dir = s.path("cache").join("snapshots");
    let mut keys: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flat_map(|slot| std::fs::read_dir(slot.unwrap().path()).unwrap())
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    keys.sort();
    keys
}

/// Runs `args` three times: booting (`--snapshots off`), making the
/// snapshots, restoring them; asserts the three agree cell by cell and
/// that the last one restored every kernel.
fn boot_save_restore(s: &Scratch, args: &[&str], code: i32) -> Run {
    let off = s.run(&[args, &["--snapshots", "off"]].concat());
    assert_eq!(off.code, code, "{}", off.context());
    assert!(restored(&off).iter().all(|(_, r)| !r), "{}", off.context());
    assert!(snapshot_keys(s).is_empty(), "--snapshots off makes none");
    let cold = s.run(args);
    assert_eq!(cold.code, code, "{}", cold.context());
    let warm = s.run(args);
    assert_eq!(warm.code, code, "{}", warm.context());
    assert!(
        restored(&warm).iter().all(|(_, r)| *r),
        "every kernel restored: {:?}\n{}",
        restored(&warm),
        warm.context()
    );
    let (booted, restored) = (verdicts(off.report()), verdicts(warm.report()));
    for (b, r) in booted.iter().zip(&restored) {
        assert_eq!(b, r, "a restored kernel differs from a booted one");
    }
    assert_eq!(booted.len(), restored.len());
    assert_eq!(booted, verdicts(cold.report()), "the first run differs");
    warm
}

#[test]
fn the_corpus_restored_gives_the_verdicts_of_a_boot_on_every_kernel() {
    let _lock = boot_lock();
    let s = Scratch::new();
    let corpus = build_corpus(s.dir.path());
    // The objects the validator's ground truth runs on every kernel (the
    // rest are refused before anything boots).
    let objects: Vec<String> = table("| object | 5.10 | 6.1 | 6.12 | 7.2 | tiny |")
        .iter()
        .filter(|(_, cells)| cells[0] != Expected::Open)
        .map(|(name, _)| corpus.join(format!("{name}.bpf.o")).display().to_string())
        .collect();
    assert!(objects.len() >= 35, "the whole corpus: {objects:?}");
    let matrix = s.matrix(&ALL.map(|k| (k, "")));
    let artifacts = objects.iter().flat_map(|o| ["--artifact", o.as_str()]);
    let args: Vec<&str> = [
        "test",
        "--timeout",
        "10m",
        "--matrix",
        matrix.to_str().unwrap(),
    ]
    .into_iter()
    .chain(artifacts)
    .collect();
    let warm = boot_save_restore(&s, &args, 2);
    assert_eq!(
        snapshot_keys(&s).len(),
        ALL.len(),
        "one snapshot per kernel"
    );
    for t in warm.report()["targets"].as_array().unwrap() {
        assert_eq!(t["checks"].as_array().unwrap().len(), objects.len());
        assert!(t["restore_ms"].as_u64().is_some(), "{t}");
        let bytes = t["snapshot_bytes"].as_u64().unwrap_or_default();
        assert!(bytes > 1 << 20, "the snapshot's size is reported: {t}");
    }
}

/// A real-sized job: nine objects of the corpus and two of a megabyte of
/// incompressible data each, a 2 MB job. Every Debian kernel restores it
/// through fw_cfg with a boot's verdicts; the tiny kernel, which has no
/// port I/O for user space, says so and boots it.
#[test]
fn a_two_megabyte_job_restores_through_fw_cfg_with_the_verdicts_of_a_boot() {
    let _lock = boot_lock();
    let s = Scratch::new();
    let corpus = build_corpus(s.dir.path());
    let mut objects: Vec<PathBuf> = [
        "tracepoint",
        "kprobe",
        "ringbuf",
        "maps",
        "globals",
        "fentry",
        "xdp",
        "cgroup",
        "perf_event",
    ]
    .iter()
    .map(|name| corpus.join(format!("{name}.bpf.o")))
    .collect();
    objects.extend([1, 2].map(|seed| big_object(s.dir.path(), 1_000_000, seed)));
    let matrix = s.matrix(&ALL.map(|k| (k, "")));
    let mut args = vec!["test", "--matrix", matrix.to_str().unwrap()];
    args.extend(
        objects
            .iter()
            .flat_map(|o| ["--artifact", o.to_str().unwrap()]),
    );
    let off = s.run(&[&args[..], &["--snapshots", "off"]].concat());
    let cold = s.run(&args);
    let warm = s.run(&args);
    for run in [&off, &cold, &warm] {
        // The tiny kernel has no BTF for fentry.
        assert_eq!(run.code, 2, "{}", run.context());
    }
    let booted = verdicts(off.report());
    assert_eq!(booted, verdicts(cold.report()), "the first run differs");
    assert_eq!(
        booted,
        verdicts(warm.report()),
        "a restored kernel differs from a booted one"
    );
    for t in warm.report()["targets"].as_array().unwrap() {
        let tiny = t["id"] == TINY.id;
        assert_eq!(t["restored"] == true, !tiny, "{}", warm.context());
        let channel = if tiny { Value::Null } else { "fw_cfg".into() };
        assert_eq!(t["job_channel"], channel, "{t}");
    }
    assert!(
        warm.stderr.contains(&format!(
            "the guest of {} did not take its job (no fw_cfg (opt/bpfcompat/job: no access to \
             its I/O ports",
            TINY.id
        )),
        "{}",
        warm.stderr
    );
}

/// Two restores of one snapshot are two different machines: different
/// random bytes, and each has the host's clock, not the saved guest's.
#[test]
fn restored_guests_differ_in_randomness_and_clock() {
    let _lock = boot_lock();
    let s = Scratch::new();
    let matrix = s.matrix(&[(&K61, "")]);
    let cmd = "head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \\n'; echo; date +%s";
    let run = |label: &str| {
        let before = now();
        let run = s.test_command(cmd, &matrix, &[]);
        assert_eq!(run.code, 0, "{label}: {}", run.context());
        let out = run.command_test(K61.id)["stdout_tail"]
            .as_str()
            .unwrap()
            .to_owned();
        let (random, clock) = out.trim().split_once('\n').expect("two lines");
        let clock: u64 = clock.parse().unwrap();
        assert!(
            before - 1 <= clock && clock <= now() + 1,
            "{label}: the guest's clock {clock} is the host's ({before}..)"
        );
        (run.target(K61.id)["restored"] == true, random.to_owned())
    };
    let (_, saved) = run("cold");
    // Restored a while after the save: a clock carried over would be behind.
    std::thread::sleep(std::time::Duration::from_secs(3));
    let (first_restored, first) = run("first restore");
    let (second_restored, second) = run("second restore");
    assert!(first_restored && second_restored);
    assert_eq!(first.len(), 32, "{first}");
    assert!(
        first != second && first != saved,
        "{saved} {first} {second}"
    );
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn a_shipped_binary_restored_gives_the_verdict_of_a_boot() {
    let _lock = boot_lock();
    let s = Scratch::new();
    let bin = s.cc(
        "hello",
        "#include <stdio.h>\nint main(int c, char **v) { printf(\"hello from %s\\n\", v[0]); return 3; }\n",
    );
    let matrix = s.matrix(&[(&K61, ""), (&TINY, "")]);
    let args = command_args(
        "\"$BPFCOMPAT_BIN\"; uname -r",
        &matrix,
        &["--bin", bin.to_str().unwrap(), "--expect-exit", "0"],
    );
    let warm = boot_save_restore(&s, &args, 0);
    let stdout = warm.command_test(K61.id)["stdout_tail"].clone();
    assert!(
        stdout
            .as_str()
            .unwrap()
            .contains("hello from /bpfcompat/bin/hello"),
        "{stdout}"
    );
}

/// Rewrites one field of every key file, as another host or QEMU would
/// have written it.
fn forge(s: &Scratch, field: &str, value: Value) {
    let keys = snapshot_keys(s);
    assert!(!keys.is_empty(), "a snapshot to forge");
    for key in keys {
        let mut json: Value = serde_json::from_slice(&std::fs::read(&key).unwrap()).unwrap();
        json[field] = value.clone();
        std::fs::write(&key, serde_json::to_vec(&json).unwrap()).unwrap();
    }
}

fn run_once(s: &Scratch, matrix: &Path) -> Run {
    let run = s.test_command("uname -r", matrix, &[]);
    assert_eq!(run.code, 0, "{}", run.context());
    run
}

#[test]
fn a_snapshot_of_another_qemu_or_memory_size_is_replaced() {
    let _lock = boot_lock();
    let s = Scratch::new();
    let matrix = s.matrix(&[(&K61, "")]);
    assert_eq!(restored(&run_once(&s, &matrix)), [(K61.id.into(), false)]);
    assert_eq!(restored(&run_once(&s, &matrix)), [(K61.id.into(), true)]);

    forge(&s, "qemu_version", "QEMU emulator version 9.2.0".into());
    let replaced = run_once(&s, &matrix);
    assert_eq!(restored(&replaced), [(K61.id.into(), false)]);
    assert!(
        replaced
            .stderr
            .contains("qemu_version \"QEMU emulator version 9.2.0\" (now"),
        "{}",
        replaced.context()
    );
    forge(&s, "memory_mb", 256.into());
    let replaced = run_once(&s, &matrix);
    assert!(
        replaced.stderr.contains("memory_mb 256 (now 512)"),
        "{}",
        replaced.context()
    );
    assert_eq!(restored(&replaced), [(K61.id.into(), false)]);
    assert_eq!(snapshot_keys(&s).len(), 1, "replaced, not added");
    assert_eq!(restored(&run_once(&s, &matrix)), [(K61.id.into(), true)]);
}

#[test]
fn a_snapshot_qemu_refuses_is_booted_instead_and_replaced() {
    let _lock = boot_lock();
    let s = Scratch::new();
    let matrix = s.matrix(&[(&K61, "")]);
    run_once(&s, &matrix);
    let state = snapshot_keys(&s)[0].with_extension("vmstate");
    std::fs::write(&state, b"not a saved guest").unwrap();
    let refused = run_once(&s, &matrix);
    assert_eq!(restored(&refused), [(K61.id.into(), false)]);
    assert_eq!(
        refused.stderr.matches("QEMU refused the snapshot").count(),
        1,
        "{}",
        refused.context()
    );
    assert!(
        std::fs::metadata(&state).unwrap().len() > 1 << 20,
        "replaced"
    );
    assert_eq!(restored(&run_once(&s, &matrix)), [(K61.id.into(), true)]);
}

/// Two runs on one cache at once make one snapshot: the second waits for
/// the first's (under the cache's lock) and restores it.
#[test]
fn two_runs_on_one_cache_make_one_snapshot() {
    let _lock = boot_lock();
    let s = Scratch::new();
    let matrix = s.matrix(&[(&K61, "")]);
    let args = command_args("uname -r", &matrix, &[]);
    let runs: Vec<Run> = std::thread::scope(|scope| {
        let handles: Vec<_> = ["a.json", "b.json"]
            .map(|out| {
                let (s, args) = (&s, &args);
                scope.spawn(move || s.run_to(&s.path(out), args))
            })
            .into_iter()
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for run in &runs {
        assert_eq!(run.code, 0, "{}", run.context());
    }
    let mut flags: Vec<bool> = runs.iter().map(|r| restored(r)[0].1).collect();
    flags.sort();
    assert_eq!(flags, [false, true], "one made it, the other restored it");
    assert_eq!(snapshot_keys(&s).len(), 1);
}

/// A snapshot that cannot be saved (the cache's disk is full) costs the run
/// nothing but the saving: the check still gets its verdict, the failure is
/// said once, and no half-written state is left behind.
#[test]
fn a_snapshot_that_cannot_be_saved_leaves_the_check_and_nothing_behind() {
    let _lock = boot_lock();
    let s = Scratch::new();
    let matrix = s.matrix(&[(&K61, "")]);
    // The kernel is cached first; then the cache's temp space is too small
    // for a guest's state.
    let first = s.test_command("uname -r", &matrix, &["--snapshots", "off"]);
    assert_eq!(first.code, 0, "{}", first.context());
    let tmp = s.path("cache").join("tmp");
    let _disk = Tmpfs::mount(tmp.clone(), "16m");
    let run = run_once(&s, &matrix);
    assert_eq!(restored(&run), [(K61.id.into(), false)]);
    assert_eq!(
        run.stderr.matches("no snapshot of").count(),
        1,
        "said once: {}",
        run.context()
    );
    assert!(snapshot_keys(&s).is_empty(), "{:?}", snapshot_keys(&s));
    let left: Vec<_> = std::fs::read_dir(&tmp)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}
