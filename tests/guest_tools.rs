//! End-to-end: the tools a loader is run with in command mode. On every
//! test kernel the host's bpftool loads a corpus object and creates a ring
//! buffer, every `--artifact` is staged and listed in
//! `$BPFCOMPAT_ARTIFACTS`, and a `--guest-tool` runs from `PATH`. Needs
//! the host's bpftool (scripts/install-deps.sh installs it).

mod common;

use common::truth::build_corpus;
use common::*;

/// What the command prints when everything it needs is there; compared
/// whole, per kernel.
fn expected_stdout(release: &str, artifacts: &[(&str, u64)]) -> String {
    let mut out = String::new();
    for (name, bytes) in artifacts {
        out.push_str(&format!("artifact /bpfcompat/artifact/{name} {bytes}\n"));
    }
    out.push_str(&format!("first /bpfcompat/artifact/{}\n", artifacts[0].0));
    out.push_str("bpftool /usr/sbin/bpftool\n");
    out.push_str("loaded rb_on_switch\n");
    out.push_str("ringbuf m 4096\n");
    out.push_str(&format!(
        "/usr/local/bin/hello-tool\nhello from {release}\n"
    ));
    out
}

#[test]
fn bpftool_every_artifact_and_guest_tools_on_every_test_kernel() {
    assert!(
        std::path::Path::new("/usr/sbin/bpftool").is_file(),
        "this test needs the host's bpftool at /usr/sbin/bpftool: scripts/install-deps.sh \
         installs it"
    );
    let _lock = boot_lock();
    let s = Scratch::new();
    let corpus = build_corpus(s.dir.path());
    let object = corpus.join("ringbuf.bpf.o");
    let object_bytes = std::fs::metadata(&object).unwrap().len();
    let notes = s.write("notes.txt", "second artifact\n");
    let tool = s.cc(
        "hello-tool",
        "#include <stdio.h>\n#include <sys/utsname.h>\nint main(void) { struct utsname u; uname(&u); printf(\"hello from %s\\n\", u.release); return 0; }\n",
    );
    let matrix = s.matrix(&ALL.map(|k| (k, "")));
    // bpffs is the agent's to mount (/sys/fs/bpf); `set -e` makes any
    // step that fails the kernel's verdict.
    let cmd = r#"set -eo pipefail
while read -r a; do echo "artifact $a $(wc -c <"$a")"; done <<<"$BPFCOMPAT_ARTIFACTS"
echo "first $BPFCOMPAT_ARTIFACT"
echo "bpftool $(command -v bpftool)"
bpftool prog loadall "$BPFCOMPAT_ARTIFACT" /sys/fs/bpf/x
echo "loaded $(ls /sys/fs/bpf/x)"
bpftool map create /sys/fs/bpf/m type ringbuf key 0 value 0 entries 4096 name m
bpftool -j map show pinned /sys/fs/bpf/m | sed -E 's/.*"type":"([a-z_]+)".*"name":"([a-z]+)".*"max_entries":([0-9]+).*/\1 \2 \3/'
command -v hello-tool
hello-tool"#;
    let run = s.test_command(
        cmd,
        &matrix,
        &[
            "--artifact",
            object.to_str().unwrap(),
            "--artifact",
            notes.to_str().unwrap(),
            "--guest-tool",
            tool.to_str().unwrap(),
        ],
    );
    assert_eq!(run.code, 0, "{}", run.context());
    assert!(
        !run.stderr.contains("no bpftool"),
        "the host has one: {}",
        run.stderr
    );
    let report = run.report();
    assert_eq!(report["artifact"]["name"], "ringbuf.bpf.o (+1 more)");
    for k in ALL {
        let test = run.command_test(k.id);
        assert_eq!(
            test["stdout_tail"].as_str().unwrap(),
            expected_stdout(
                k.release,
                &[("ringbuf.bpf.o", object_bytes), ("notes.txt", 16)]
            ),
            "{}: stderr: {}",
            k.id,
            test["stderr_tail"]
        );
        assert_eq!(run.target(k.id)["status"], "pass", "{}", k.id);
    }
}

/// Bad tools and clashing artifacts stop the run before anything boots,
/// naming the file.
#[test]
fn bad_guest_tools_and_clashing_artifacts_are_refused_before_any_boot() {
    let s = Scratch::new();
    let matrix = s.matrix(&[(&TINY, "")]);
    std::fs::create_dir_all(s.path("v1")).unwrap();
    std::fs::create_dir_all(s.path("v2")).unwrap();
    let a1 = s.write("v1/prog.bpf.o", "one");
    let a2 = s.write("v2/prog.bpf.o", "two");
    let plain = s.write("plain-tool", "#!/bin/sh\n");
    let missing = s.path("missing-tool");
    let cases: [(Vec<&str>, Vec<String>); 3] = [
        (
            vec!["--guest-tool", missing.to_str().unwrap()],
            vec![format!("cannot read --guest-tool {}", missing.display())],
        ),
        (
            vec!["--guest-tool", plain.to_str().unwrap()],
            vec![format!(
                "--guest-tool {} is not executable (mode 0644)",
                plain.display()
            )],
        ),
        (
            vec![
                "--artifact",
                a1.to_str().unwrap(),
                "--artifact",
                a2.to_str().unwrap(),
            ],
            vec![
                a1.display().to_string(),
                a2.display().to_string(),
                "/bpfcompat/artifact/prog.bpf.o".into(),
            ],
        ),
    ];
    for (extra, says) in cases {
        let run = s.test_command("true", &matrix, &extra);
        assert_eq!(run.code, 1, "{extra:?}: {}", run.context());
        for part in says {
            assert!(run.stderr.contains(&part), "{part}: {}", run.context());
        }
        assert!(run.report.is_none(), "nothing ran: {extra:?}");
    }
}
