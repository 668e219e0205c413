//! Small, complete reports for unit tests of everything that reads reports.

use super::*;

pub fn target(id: &str, status: TargetStatus, class: Option<ClassCode>) -> Target {
    Target {
        id: id.to_owned(),
        required: true,
        status,
        kernel: KernelInfo {
            release: Some(format!("{id}-release")),
            arch: Some("x86_64".into()),
            btf: Some(true),
            source: format!("file:/kernels/{id}"),
            sha256: Some("0".repeat(64)),
            bpf: None,
        },
        classification: class.map(|code| Classification {
            code,
            reason: format!("{} on {id}", code.as_str()),
            hint: "hint".into(),
            phase: None,
        }),
        timing_ms: Timing {
            boot: 1000,
            check: 100,
            total: 1100,
        },
        console_log: format!("/runs/1/{id}/console.log"),
        accel: None,
        console_tail: None,
        checks: Vec::new(),
    }
}

pub fn report(targets: Vec<Target>) -> Report {
    Report {
        schema: SCHEMA.to_owned(),
        tool_version: "0.1.0".into(),
        mode: Mode::Command,
        artifact: ArtifactIdentity {
            id: "command://loader@0123456789abcdef".into(),
            name: "loader".into(),
        },
        matrix: MatrixRef {
            name: "ci".into(),
            digest: "ab".repeat(32),
            path: "/m/ci.yaml".into(),
        },
        shard: None,
        accel: Accel::Tcg,
        qemu_version: "10.0.2".into(),
        libbpf_version: None,
        started_at: "2025-01-01T00:00:00Z".into(),
        duration_ms: 5000,
        summary: Summary::of(&targets),
        targets,
    }
}

/// What a hostile name, reason or log may hold, short enough to fit a
/// table cell whole: Markdown (a table pipe, emphasis, a link, a heading,
/// fences, math), HTML (tags, a fake sticky marker), a mention and issue
/// references, workflow commands, ANSI and OSC 8 escape sequences, CR, NUL,
/// DEL, a C1 CSI and a bidirectional override.
pub const HOSTILE: &str = "|*_[l](https://e.ex)\n# H\n````t`</details><script><!-- bpfcompat:matrix:bpfcompat \
    -->@octocat #1 GH-7 $x\\\u{1b}[31m\u{1b}]8;;h\u{7}\r\n ::add-mask::m ##[error]%0A\u{0}\u{7f}\u{9b}\u{202e}";

/// A report of the validator whose every string is [`HOSTILE`] (ids and
/// names with a suffix, to stay distinct): a failing object with a
/// rejected program and map, a failing command with its output tails, a
/// kernel that could not be checked, one that passed.
pub fn hostile() -> Report {
    use bpfcompat_proto::object::{
        AttachResult, Diagnosis, FailureClass, MapOutcome, ObjectMode, Phase, ProgramLoad,
        ProgramOutcome, Status, StepResult,
    };
    let h = |suffix: &str| format!("{HOSTILE}{suffix}");
    let diagnosis = |class, phase| Diagnosis {
        class,
        phase,
        reason: h(" reason"),
        hint: h(" hint"),
    };
    let classification = |code| Classification {
        code,
        reason: h(" reason"),
        hint: h(" hint"),
        phase: Some(Phase::ProgramLoad),
    };
    let artifact = |suffix: &str| CheckArtifact {
        name: h(suffix),
        path: Some(h(" path")),
        sha256: Some(h(" sha")),
        inspection: None,
    };
    let object = Check {
        kind: CheckKind::Object,
        status: CheckStatus::Fail,
        classification: Some(classification(ClassCode::Object(
            FailureClass::VerifierRejection,
        ))),
        artifact: artifact(".bpf.o"),
        validation: Validation {
            load_status: LoadStatus::Fail,
            object: Some(ObjectOutcome {
                path: h(" guest"),
                mode: ObjectMode::LoadOnly,
                libbpf_version: h(" libbpf"),
                status: Status::Fail,
                open: StepResult::pass(),
                load: StepResult {
                    status: Status::Fail,
                    errno: Some(13),
                    error: Some(h(" load")),
                },
                diagnosis: Some(diagnosis(
                    FailureClass::VerifierRejection,
                    Phase::ProgramLoad,
                )),
                programs: vec![ProgramOutcome {
                    name: h(" prog"),
                    section: h(" section"),
                    prog_type: h(" type"),
                    attach_type: h(" attach"),
                    autoload: true,
                    load: ProgramLoad {
                        status: Status::Fail,
                        errno: Some(13),
                        error: Some(h(" error")),
                        verifier_log_tail: h(" verifier log\n````````\n"),
                        verifier_log: String::new(),
                        verifier_log_file: Some(h(" log")),
                        verifier_log_bytes: 1,
                        insns_processed: Some(1),
                        isolated: false,
                        diagnosis: Some(diagnosis(
                            FailureClass::VerifierRejection,
                            Phase::ProgramLoad,
                        )),
                    },
                    attach: AttachResult::skipped(h(" skipped")),
                }],
                maps: vec![MapOutcome {
                    name: h(" map"),
                    map_type: h(" map type"),
                    max_entries: 1,
                    create: StepResult::pass(),
                    attach: None,
                    diagnosis: Some(diagnosis(
                        FailureClass::UnsupportedMapType,
                        Phase::MapCreate,
                    )),
                }],
                probes: Vec::new(),
                libbpf_log: h(" libbpf log"),
                duration_ms: 1,
            }),
        },
        functional: Functional { tests: Vec::new() },
    };
    let command = Check {
        kind: CheckKind::Command,
        status: CheckStatus::Fail,
        classification: None,
        artifact: artifact(" loader"),
        validation: Validation {
            load_status: LoadStatus::Skipped,
            object: None,
        },
        functional: Functional {
            tests: vec![FunctionalTest {
                name: h(" test"),
                status: CheckStatus::Fail,
                expected_exit_code: 0,
                outcome: bpfcompat_proto::CommandOutcome {
                    exit_code: Some(3),
                    signal: None,
                    error: Some(h(" error")),
                    stdout_tail: h(" stdout"),
                    stderr_tail: h(" stderr"),
                    stdout_bytes: 1,
                    stderr_bytes: 1,
                    duration_ms: 1,
                },
            }],
        },
    };
    let kernel = |t: &mut Target| {
        t.kernel.release = Some(h(" release"));
        t.kernel.arch = Some(h(" arch"));
        t.kernel.source = h(" source");
        t.kernel.sha256 = Some(h(" sha256"));
        t.console_log = h(" console");
    };
    let mut failed = target(
        &h(" kernel 1"),
        TargetStatus::Fail,
        Some(ClassCode::Object(FailureClass::VerifierRejection)),
    );
    failed.classification = Some(classification(ClassCode::Object(
        FailureClass::VerifierRejection,
    )));
    failed.checks = vec![object.clone(), command];
    kernel(&mut failed);
    let mut broken = target(
        &h(" kernel 2"),
        TargetStatus::InfraError,
        Some(ClassCode::KernelPanic),
    );
    broken.required = false;
    broken.classification = Some(classification(ClassCode::KernelPanic));
    broken.console_tail = Some(h(" console"));
    kernel(&mut broken);
    let mut passed = target(&h(" kernel 3"), TargetStatus::Pass, None);
    let mut pass = object;
    pass.status = CheckStatus::Pass;
    pass.classification = None;
    passed.checks = vec![pass];
    kernel(&mut passed);
    let mut r = report(vec![failed, broken, passed]);
    r.mode = Mode::Artifact;
    r.artifact = ArtifactIdentity {
        id: h(" id"),
        name: h(" artifact"),
    };
    r.matrix = MatrixRef {
        name: h(" matrix"),
        digest: h(" digest"),
        path: h(" yaml"),
    };
    r.tool_version = h(" version");
    r.qemu_version = h(" qemu");
    r.libbpf_version = Some(h(" libbpf"));
    r
}

// ------------------------------------------------ what renderings must not hold

/// Asserts `markdown` (a rendering of [`hostile`]) shows the hostile text
/// as text: every fence and comment closes, the only HTML is ours, and
/// outside code nothing mentions, references, links, makes a heading or
/// math, or changes the shape of a table; no control character anywhere.
pub fn assert_inert_markdown(what: &str, markdown: &str) {
    assert_no_controls(what, markdown);
    for (i, _) in markdown.match_indices("<!--") {
        let rest = &markdown[i..];
        assert!(
            rest.starts_with("<!-- bpfcompat:matrix:") && i == 0
                || rest.starts_with("<!-- bpfcompat:results "),
            "{what}: a comment that is not ours:\n{markdown}"
        );
    }
    // A line starting with `<details>` is an HTML block, where Markdown is
    // not parsed, but HTML is and GitHub links mentions.
    let outside = outside_code(markdown);
    let (html, prose): (Vec<&str>, Vec<&str>) =
        outside.lines().partition(|l| l.starts_with("<details>"));
    let (spans, prose) = code_spans(&(prose.join("\n") + "\n"));
    for span in &spans {
        // Backslashes do not escape inside a code span: escaped text there
        // would end it at its first `\``.
        let escaped = span
            .split('\\')
            .skip(1)
            .any(|after| after.starts_with(|c: char| c.is_ascii_punctuation()));
        assert!(!escaped, "{what}: escaped text in a code span: {span}");
    }
    let shown = format!("{prose}{}", html.join("\n"));
    let mut tags = shown.clone();
    for tag in [
        "<details>",
        "</details>",
        "<summary>",
        "</summary>",
        "<br>",
        "<sub>",
        "</sub>",
    ] {
        tags = tags.replace(tag, "");
    }
    assert!(
        !tags.contains('<'),
        "{what}: HTML that is not ours:\n{markdown}"
    );
    for (open, close) in [("<details>", "</details>"), ("<summary>", "</summary>")] {
        assert_eq!(
            shown.matches(open).count(),
            shown.matches(close).count(),
            "{what}: {open} and {close}:\n{markdown}"
        );
    }
    let after = |i: usize| shown[i + 1..].chars().next();
    for (i, c) in shown.char_indices() {
        let linked = match c {
            '@' => after(i).is_some_and(char::is_alphanumeric),
            // Not in an entity such as `&#36;`.
            '#' => after(i).is_some_and(char::is_alphanumeric) && !shown[..i].ends_with('&'),
            '$' => !shown[..i].ends_with('\\'),
            _ => false,
        };
        assert!(!linked, "{what}: {:?} at {i}:\n{shown}", &shown[i..]);
    }
    assert!(!shown.contains("GH-7"), "{what}: an issue reference");
    assert!(!shown.contains("https://e.ex"), "{what}: a link");
    for (i, _) in prose.match_indices("](") {
        assert!(
            prose[..i].ends_with('\\') || prose[..i].ends_with("[this workflow run"),
            "{what}: a link at {i}:\n{prose}"
        );
    }
    let mut table: Option<usize> = None;
    for line in prose.lines() {
        assert!(!line.starts_with("# "), "{what}: a heading: {line}");
        table = match (line.starts_with('|'), table) {
            (false, _) => None,
            (true, None) => Some(columns(line)),
            (true, Some(n)) => {
                assert_eq!(
                    columns(line),
                    n,
                    "{what}: a row out of shape: {line}\n{markdown}"
                );
                Some(n)
            }
        };
    }
}

/// Asserts `text`, shown on a terminal or in a CI log, can neither drive
/// the terminal nor be read as a workflow command by the Actions runner.
pub fn assert_inert_plain(what: &str, text: &str) {
    assert_no_controls(what, text);
    for line in text.lines() {
        assert!(!line.trim_start().starts_with("::"), "{what}: {line:?}");
        assert!(!line.contains("##["), "{what}: {line:?}");
    }
}

fn assert_no_controls(what: &str, text: &str) {
    for c in text.chars() {
        let active = c.is_control() && c != '\n' && c != '\t'
            || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
        assert!(!active, "{what}: {c:?} in:\n{text:?}");
    }
}

/// What GitHub renders as Markdown: outside fenced code blocks (checking
/// every fence closes) and outside HTML comments (the hidden marker and
/// results, whose own escaping the unit tests check).
pub fn outside_code(markdown: &str) -> String {
    let mut markdown = markdown.to_owned();
    while let Some(start) = markdown.find("<!--") {
        let end = markdown[start..].find("-->").expect("comments close") + start + 3;
        markdown.replace_range(start..end, "");
    }
    let mut out = String::new();
    let mut fence: Option<String> = None;
    for line in markdown.lines() {
        let ticks: String = line.chars().take_while(|c| *c == '`').collect();
        match &fence {
            None if ticks.len() >= 3 => fence = Some(ticks),
            None => {
                out.push_str(line);
                out.push('\n');
            }
            Some(open) if ticks == *open && line.trim_end() == open => fence = None,
            Some(_) => {}
        }
    }
    assert!(fence.is_none(), "a code fence is never closed:\n{markdown}");
    out
}

/// The contents of inline code spans as CommonMark finds them (a run of
/// backticks outside a span opens one, the next run as long closes it, a
/// backslash escapes only outside), and the text outside them.
pub fn code_spans(markdown: &str) -> (Vec<String>, String) {
    let chars: Vec<char> = markdown.chars().collect();
    let run = |i: usize| chars[i..].iter().take_while(|c| **c == '`').count();
    let (mut spans, mut outside, mut i) = (Vec::new(), String::new(), 0);
    while i < chars.len() {
        match chars[i] {
            '\\' => {
                outside.extend(&chars[i..(i + 2).min(chars.len())]);
                i += 2;
            }
            '`' => {
                let n = run(i);
                let start = i + n;
                let mut j = start;
                while j < chars.len() && !(chars[j] == '`' && run(j) == n) {
                    j += if chars[j] == '`' { run(j) } else { 1 };
                }
                if j < chars.len() {
                    spans.push(chars[start..j].iter().collect());
                    // A span shows as text: keep its place in a table row.
                    outside.push('c');
                    i = j + n;
                } else {
                    outside.extend(&chars[i..start]);
                    i = start;
                }
            }
            c => {
                outside.push(c);
                i += 1;
            }
        }
    }
    (spans, outside)
}

/// Table cells of a table row, counting only unescaped pipes.
pub fn columns(row: &str) -> usize {
    let mut count = 0;
    let mut escaped = false;
    for c in row.chars() {
        match c {
            '\\' if !escaped => escaped = true,
            '|' if !escaped => count += 1,
            _ => escaped = false,
        }
        if c != '\\' {
            escaped = false;
        }
    }
    count - 1
}
