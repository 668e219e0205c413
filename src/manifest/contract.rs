//! Applying a manifest to its object: every entry checked against the
//! [`ObjectSummary`] and resolved into the proto's [`LoaderContract`].

use bpfcompat_proto::object::LoaderContract;

use super::checker::Checker;
use super::functional::manifest_tests;
use super::{globals, parse::Manifest, ManifestError};
use crate::report::inspection::ObjectSummary;

impl Manifest {
    /// Checks the manifest against `object` and resolves it into what the
    /// agent applies. The case, mode and auto-fixup switch are the caller's.
    pub fn contract(&self, object: &ObjectSummary) -> Result<LoaderContract, ManifestError> {
        let c = Checker {
            doc: &self.doc,
            object,
        };
        let raw = &self.raw;
        Ok(LoaderContract {
            programs: c.programs(&raw.programs)?,
            maps: c.maps(&raw.maps)?,
            program_types: c.program_types(&raw.program_types)?,
            variant_groups: c.variant_groups(&raw.program_variants)?,
            probe_companions: c.probe_companions(&raw.probe_companions)?,
            globals: globals::resolve(&self.doc, object, &raw.globals)?,
            functional_tests: manifest_tests(&self.doc, &raw.functional_tests)?,
            ..LoaderContract::default()
        })
    }
}

#[cfg(test)]
mod tests {
    //! Manifests in the Go tool's format (the fixtures under
    //! tests/fixtures/contract/), checked against a made-up object.

    use bpfcompat_proto::object::{AttachTarget, MaxEntries, ProgramContract, Requirement};

    use super::*;
    use crate::manifest::{fixture, DEFAULT_TEST_TIMEOUT};
    use crate::object::map_type_name;
    use crate::report::inspection::{GlobalVar, MapSummary, ProgramSummary};

    fn program(name: &str, section: &str) -> ProgramSummary {
        ProgramSummary {
            name: name.into(),
            section: section.into(),
            prog_type: crate::object::section_prog_type(section).map(|(t, _)| t.to_owned()),
            needs_kernel_btf: false,
            insns: 2,
            helpers: vec![],
            kfuncs: vec![],
            attach_type: None,
            attach_target: None,
            unchecked_lookup: None,
        }
    }

    fn map(name: &str, map_type: u32) -> MapSummary {
        MapSummary {
            name: name.into(),
            map_type: Some(map_type),
            map_type_name: map_type_name(map_type).map(str::to_owned),
            max_entries: Some(0),
            ..MapSummary::default()
        }
    }

    fn global(name: &str, section: &str, offset: u32, size: u32) -> GlobalVar {
        GlobalVar {
            name: name.into(),
            section: section.into(),
            offset,
            size,
        }
    }

    /// The object `full.manifest.yaml` describes.
    fn object() -> ObjectSummary {
        ObjectSummary {
            path: "build/exec.bpf.o".into(),
            size: 1,
            sha256: "0".repeat(64),
            license: Some("GPL".into()),
            programs: vec![
                program("on_exec", "tracepoint/syscalls/sys_enter_execve"),
                program("on_open", "kprobe/do_sys_openat2"),
                program("on_readline", "uprobe"),
                program("on_ingress", "xdp"),
                program("on_connect", "cgroup/connect4"),
                program("socket1", "socket1"),
                program("exit_with_loop", "tracepoint/raw_syscalls/sys_exit"),
                program("exit_fallback", "tracepoint/raw_syscalls/sys_exit"),
                program("dump_task", "iter/task"),
                program("dump_task_numbered", "iter/task"),
                program("tail_target", "tracepoint/raw_syscalls/sys_enter"),
            ],
            maps: vec![
                map("per_cpu_scratch", 6),
                map("counters", 1),
                map("counters_by_string", 1),
                map("ringbufs", 12),
                map("visibility", 13),
                map("stacks", 7),
                map("nets", 11),
            ],
            globals: vec![
                global("target_pid", ".rodata", 0, 4),
                global("comm_prefix", ".rodata", 4, 16),
                global("sample_every", ".data", 0, 4),
                global("verbose", ".bss", 0, 1),
            ],
            helpers: vec![],
            kfuncs: vec![],
            extern_vars: vec![],
            btf: true,
            core_relocations: 0,
            core: Vec::new(),
            btf_kinds: Vec::new(),
            needs_kernel_btf: false,
            warnings: vec![],
        }
    }

    #[test]
    fn the_go_format_resolves_into_a_contract() {
        let m = Manifest::load(&fixture("full.manifest.yaml")).unwrap();
        assert!(m.describe().ends_with("full.manifest.yaml (exec-monitor)"));
        let c = full();

        let profiles: Vec<_> = m.required_profiles().unwrap();
        assert_eq!(profiles[1].name, "ubuntu-22.04-5.15");
        assert!(
            profiles[1]
                .place
                .ends_with("full.manifest.yaml:69: required_profiles[1]"),
            "{}",
            profiles[1].place
        );

        let by_name = |n: &str| c.programs.iter().find(|p| p.name == n).cloned();
        assert_eq!(
            by_name("on_exec"),
            Some(ProgramContract {
                name: "on_exec".into(),
                attach_required: true,
                target: Some(AttachTarget::Tracepoint {
                    category: "syscalls".into(),
                    name: "sys_enter_execve".into()
                }),
                expect_run: false,
            })
        );
        let open = by_name("on_open").unwrap();
        assert!(!open.attach_required);
        assert_eq!(
            open.target,
            Some(AttachTarget::Function("do_sys_open".into()))
        );
        assert_eq!(
            by_name("on_readline").unwrap().target,
            Some(AttachTarget::Uprobe {
                binary: "/bin/bash".into(),
                symbol: "readline".into()
            })
        );
        let ingress = by_name("on_ingress").unwrap();
        assert!(ingress.expect_run);
        assert_eq!(ingress.target, Some(AttachTarget::Interface("eth0".into())));
        let connect = by_name("on_connect").unwrap();
        assert!(!connect.attach_required && connect.target.is_none());

        let fix = |n: &str| c.maps.iter().find(|m| m.name == n).unwrap();
        assert_eq!(
            fix("per_cpu_scratch").max_entries,
            Some(MaxEntries::PossibleCpus)
        );
        assert_eq!(fix("counters").max_entries, Some(MaxEntries::Exactly(64)));
        assert_eq!(
            fix("counters_by_string").max_entries,
            Some(MaxEntries::Exactly(128))
        );
        assert_eq!(fix("ringbufs").inner_ringbuf_bytes, Some(8 << 20));
        let inner = fix("visibility").inner_map.clone().unwrap();
        assert_eq!(
            (
                inner.map_type,
                inner.key_size,
                inner.value_size,
                inner.max_entries
            ),
            (1, 4, 4, 64)
        );
    }

    /// `full.manifest.yaml` as a contract of [`object`].
    fn full() -> LoaderContract {
        let m = Manifest::load(&fixture("full.manifest.yaml")).unwrap();
        m.contract(&object()).unwrap()
    }

    #[test]
    fn the_go_format_resolves_program_choices_globals_and_tests() {
        let c = full();
        // A section selector names every program in it.
        let typed: Vec<_> = c
            .program_types
            .iter()
            .map(|o| (o.program.as_str(), o.prog_type))
            .collect();
        assert_eq!(typed, vec![("socket1", 1), ("on_exec", 5)]);

        assert_eq!(c.variant_groups.len(), 2);
        let exit = &c.variant_groups[0].variants;
        assert_eq!(
            exit[0].requires,
            vec![Requirement::Helper {
                id: 181,
                name: Some("bpf_loop".into())
            }]
        );
        assert!(exit[1].requires.is_empty());
        let dump = &c.variant_groups[1].variants;
        assert!(dump[0].trial_load);
        assert_eq!(
            dump[1].requires,
            vec![
                Requirement::Helper {
                    id: 181,
                    name: Some("bpf_loop".into())
                },
                Requirement::Kfunc("bpf_iter_num_new".into()),
                Requirement::Target("do_exit".into()),
            ]
        );
        assert_eq!(c.probe_companions, vec!["tail_target"]);

        let globals: Vec<_> = c
            .globals
            .iter()
            .map(|g| {
                (
                    g.name.as_str(),
                    g.section.as_str(),
                    g.offset,
                    g.bytes.clone(),
                )
            })
            .collect();
        let mut comm = b"bash".to_vec();
        comm.resize(16, 0);
        assert_eq!(
            globals,
            vec![
                ("target_pid", ".rodata", 0, 4242u32.to_le_bytes().to_vec()),
                ("comm_prefix", ".rodata", 4, comm),
                ("sample_every", ".data", 0, vec![10, 0, 0, 0]),
                ("verbose", ".bss", 0, vec![1]),
            ]
        );

        let smoke = &c.functional_tests[0];
        assert_eq!(smoke.timeout_ms, 5000);
        assert_eq!(
            smoke.expect_stdout_contains.as_deref(),
            Some("exec-smoke-ok")
        );
        assert!(smoke.required);
        let optional = &c.functional_tests[1];
        assert!(!optional.required);
        assert_eq!(optional.timeout_ms, DEFAULT_TEST_TIMEOUT.as_millis() as u64);
    }

    /// The error for `text` as a manifest of [`object`].
    fn error(text: &str) -> String {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.yaml");
        std::fs::write(&path, text).unwrap();
        let e = Manifest::load(&path)
            .and_then(|m| m.required_profiles().and_then(|_| m.contract(&object())))
            .unwrap_err()
            .to_string();
        e.strip_prefix(&path.display().to_string())
            .unwrap_or_else(|| panic!("names the file: {e}"))
            .to_owned()
    }

    /// Our map fields: sizes, a stack depth in frames, flags by name or
    /// number.
    #[test]
    fn map_sizes_and_flags_resolve() {
        let c = contract(
            "maps:\n  - name: stacks\n    stack_depth: 127\n    max_entries: 1024\n  \
             - name: nets\n    map_flags: [BPF_F_NO_PREALLOC, BPF_F_RDONLY_PROG]\n  \
             - name: counters\n    key_size: 16\n    value_size: 24\n    map_flags: 1\n",
        );
        let fix = |n: &str| c.maps.iter().find(|m| m.name == n).unwrap();
        assert_eq!(fix("stacks").value_size, Some(127 * 8));
        assert_eq!(fix("stacks").max_entries, Some(MaxEntries::Exactly(1024)));
        assert_eq!(fix("nets").map_flags, Some(0x81));
        let counters = fix("counters");
        assert_eq!(
            (counters.key_size, counters.value_size, counters.map_flags),
            (Some(16), Some(24), Some(1))
        );
        // Build-id stacks are frames of 32 bytes.
        let c = contract(
            "maps:\n  - name: stacks\n    stack_depth: 10\n    map_flags: [BPF_F_STACK_BUILD_ID]\n",
        );
        assert_eq!(c.maps[0].value_size, Some(320));
    }

    /// `text` as a manifest of [`object`], resolved.
    fn contract(text: &str) -> LoaderContract {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.yaml");
        std::fs::write(&path, text).unwrap();
        Manifest::load(&path).unwrap().contract(&object()).unwrap()
    }

    /// Manifests [`object`] refuses: the text, the line of the error and
    /// what the error says.
    const BAD: &[(&str, &str, &[&str])] = &[
        ("name: x\nbogus: 1\n", ":2: ", &["unknown field `bogus`"]),
        (
            "programs:\n  - name: on_exec\n    attach: {kind: kprobe, symbol: x}\n",
            ":3: ",
            &["programs[0].attach.kind: kprobe does not fit \"on_exec\", a tracepoint program"],
        ),
        (
            "programs:\n  - name: on_exec\n    attach:\n      kind: tracepoint\n      colour: red\n",
            ":3: ",
            &["programs[0].attach: unknown field `colour`"],
        ),
        (
            "programs:\n  - name: on_exec\n  - name: nope\n",
            ":3: ",
            &["programs[1].name: build/exec.bpf.o has no program \"nope\" (its programs: on_exec, on_open"],
        ),
        (
            "programs:\n  - name: on_exec\n    section: kprobe/x\n",
            ":3: ",
            &["programs[0].section: \"on_exec\" is in section \"tracepoint/syscalls/sys_enter_execve\""],
        ),
        (
            "programs:\n  - name: on_ingress\n    attach:\n      interface: lo\n      cgroup: /sys/fs/cgroup\n",
            ":3: ",
            &["programs[0].attach: names 2 targets"],
        ),
        (
            "programs:\n  - name: on_exec\n    attach:\n      symbol: vfs_read\n",
            ":3: ",
            &["function vfs_read does not fit \"on_exec\""],
        ),
        (
            "programs:\n  - name: on_exec\n    attach: sometimes\n",
            ":3: ",
            &["programs[0].attach: \"sometimes\" is not optional, required"],
        ),
        (
            "maps:\n  - name: counters\n    max_entries: 0\n",
            ":3: ",
            &["maps[0].max_entries: 0 is not a positive integer"],
        ),
        (
            "maps:\n  - name: counters\n    max_entries: lots\n",
            ":3: ",
            &["lots is not a positive integer", "or cpus"],
        ),
        (
            "maps:\n  - name: countres\n    max_entries: 1\n",
            ":2: ",
            &["maps[0].name: build/exec.bpf.o has no map \"countres\" (its maps: per_cpu_scratch, counters"],
        ),
        ("maps:\n  - name: counters\n", ":2: ", &["maps[0]: sets nothing"]),
        (
            "maps:\n  - name: stacks\n    stack_depth: 127\n    value_size: 1016\n",
            ":3: ",
            &["maps[0].stack_depth: give value_size or stack_depth, not both"],
        ),
        (
            "maps:\n  - name: counters\n    stack_depth: 8\n",
            ":3: ",
            &["maps[0].stack_depth: map \"counters\" is a hash, not a stack_trace: give its value_size"],
        ),
        (
            "maps:\n  - name: stacks\n    value_size: 1020\n",
            ":3: ",
            &["maps[0].value_size: 1020 is not a whole number of 8-byte frames"],
        ),
        (
            "maps:\n  - name: stacks\n    stack_depth: 0\n",
            ":3: ",
            &["maps[0].stack_depth: 0 is not a stack depth"],
        ),
        (
            "maps:\n  - name: counters\n    key_size: 0\n",
            ":3: ",
            &["maps[0].key_size: must be positive"],
        ),
        (
            "maps:\n  - name: nets\n    map_flags:\n      - BPF_F_NO_PREALOC\n",
            ":4: ",
            &["maps[0].map_flags[0]: \"BPF_F_NO_PREALOC\" is not a map flag; one of BPF_F_NO_PREALLOC"],
        ),
        (
            "maps:\n  - name: nets\n    map_flags: prealloc\n",
            ":3: ",
            &["maps[0].map_flags: must be a number or a list of flags"],
        ),
        (
            "maps:\n  - name: counters\n    inner_ringbuf_bytes: 4096\n",
            ":3: ",
            &["map \"counters\" is a hash, not an array_of_maps"],
        ),
        (
            "maps:\n  - name: ringbufs\n    inner_ringbuf_bytes: 5000\n",
            ":3: ",
            &["5000 is not a power of two"],
        ),
        (
            "maps:\n  - name: visibility\n    inner_map:\n      type: queue\n      value_size: 4\n      max_entries: 1\n",
            ":4: ",
            &["maps[0].inner_map.type: \"queue\" is not one of hash, array"],
        ),
        (
            "maps:\n  - name: visibility\n    inner_map: {type: hash, value_size: 4, max_entries: 1}\n",
            ":3: ",
            &["maps[0].inner_map.key_size: a hash needs key_size"],
        ),
        (
            "program_types:\n  - program: socket1\n    type: sockets\n",
            ":3: ",
            &["program_types[0].type: \"sockets\" is not a BPF program type; one of socket_filter"],
        ),
        (
            "program_types:\n  - program: socket2\n    type: socket_filter\n",
            ":2: ",
            &["program_types[0].program: build/exec.bpf.o has no program or section \"socket2\""],
        ),
        (
            "program_variants:\n  - group: g\n    programs:\n      - name: exit_with_loop\n        requires_helper: bpf_no_such\n",
            ":5: ",
            &["program_variants[0].programs[0].requires_helper: \"bpf_no_such\" is not a BPF helper"],
        ),
        (
            "program_variants:\n  - group: g\n    programs:\n      - name: exit_with_loop\n        probe: dry_run\n",
            ":5: ",
            &["probe: \"dry_run\": the one probe is trial_load"],
        ),
        (
            "program_variants:\n  - group: a\n    programs: [{name: dump_task}]\n  - group: b\n    programs:\n      - name: dump_task\n",
            ":6: ",
            &["program_variants[1].programs[0].name: \"dump_task\" is already a variant"],
        ),
        (
            "program_variants:\n  - group: a\n    programs: []\n",
            ":3: ",
            &["program_variants[0].programs: is empty"],
        ),
        (
            "probe_companions:\n  - tail_target\n  - tail_targte\n",
            ":3: ",
            &["probe_companions[1]: build/exec.bpf.o has no program \"tail_targte\""],
        ),
        (
            "required_profiles: [a, a]\n",
            ":1: ",
            &["required_profiles[1]: \"a\" is listed twice"],
        ),
        (
            "functional_tests:\n  - name: t\n    command: \"true\"\n    timeout: 10m\n",
            ":4: ",
            &["functional_tests[0].timeout: 10m is longer than the limit of 5m"],
        ),
        (
            "functional_tests:\n  - name: t\n    command: \"true\"\n    expect_exit_code: 256\n",
            ":4: ",
            &["functional_tests[0].expect_exit_code: 256 is not an exit code"],
        ),
        (
            "functional_tests:\n  - name: t\n    command: \"\"\n",
            ":3: ",
            &["functional_tests[0].command: is empty"],
        ),
        (
            "functional_tests:\n  - name: t\n    command: \"true\"\n  - name: t\n    command: \"false\"\n",
            ":4: ",
            &["functional_tests[1].name: \"t\" is used by an earlier test"],
        ),
        (
            "functional_tests:\n  - name: t\n    command: \"true\"\n    expect_exit_code: zero\n",
            ":4: ",
            &["expect_exit_code", "invalid type"],
        ),
        (
            "globals:\n  target_pid: 4294967296\n",
            ":2: ",
            &["globals.target_pid: 4294967296 does not fit target_pid (4 bytes in .rodata): 4 bytes hold"],
        ),
        (
            "globals:\n  comm_prefix: a-much-longer-name-than-fits\n",
            ":2: ",
            &["does not fit comm_prefix (16 bytes in .rodata): the string is 28 bytes long"],
        ),
        (
            "globals:\n  target_tgid: 1\n",
            ":2: ",
            &["globals.target_tgid: build/exec.bpf.o has no global variable \"target_tgid\"", "target_pid (4 bytes in .rodata)"],
        ),
    ];

    #[test]
    fn errors_name_line_and_field() {
        for (text, line, parts) in BAD {
            let e = error(text);
            assert!(e.starts_with(line), "{text:?}: expected line {line}: {e}");
            for part in *parts {
                assert!(e.contains(part), "{text:?}: expected {part:?} in: {e}");
            }
        }
    }

    #[test]
    fn an_empty_manifest_is_no_contract() {
        let e = object();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.yaml");
        std::fs::write(&path, "# nothing yet\n").unwrap();
        let c = Manifest::load(&path).unwrap().contract(&e).unwrap();
        assert_eq!(c, LoaderContract::default());
    }
}
