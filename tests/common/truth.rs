//! The tables of `tests/bpf/GROUND_TRUTH.md`, the corpus built by
//! `tests/bpf/build.sh`, and what a report's check says in the tables'
//! terms: shared by the tests that assert the tables.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// Compiles the corpus with `tests/bpf/build.sh` into `dir`.
pub fn build_corpus(dir: &Path) -> PathBuf {
    let out = dir.join("corpus");
    let status = Command::new("sh")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bpf/build.sh"))
        .arg(&out)
        .status()
        .expect("sh runs tests/bpf/build.sh");
    assert!(
        status.success(),
        "compiling the BPF corpus failed: clang and libbpf-dev are installed by scripts/install-deps.sh"
    );
    out
}

/// `tests/bpf/make_big.sh`: an object in `dir` carrying `bytes` of
/// incompressible read-only data (seeded by `seed`), a real-sized job.
pub fn big_object(dir: &Path, bytes: usize, seed: u32) -> PathBuf {
    let out = dir.join(format!("big-{seed}.bpf.o"));
    let status = Command::new("sh")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bpf/make_big.sh"))
        .arg(&out)
        .arg(bytes.to_string())
        .arg(seed.to_string())
        .status()
        .expect("sh runs tests/bpf/make_big.sh");
    assert!(
        status.success(),
        "tests/bpf/make_big.sh failed: clang is installed by scripts/install-deps.sh"
    );
    out
}

/// One expected cell of a ground-truth table.
#[derive(Debug, PartialEq)]
pub enum Expected {
    Pass,
    /// Loaded; some attach was skipped (the reason is a remark in the cell).
    Partial,
    /// The whole-object load failed with this class and errno.
    Load(String, i64),
    /// Everything loaded; an attach failed with this class.
    Attach(String),
    /// Not an object: refused on the host.
    Open,
}

fn parse_cell(cell: &str) -> Expected {
    let cell = cell.trim();
    if cell.starts_with("pass") {
        Expected::Pass
    } else if cell.starts_with("partial") {
        Expected::Partial
    } else if let Some(rest) = cell.strip_prefix("load: ") {
        let (class, errno) = rest.split_once(" (errno ").expect("load: CLASS (errno N)");
        Expected::Load(
            class.to_owned(),
            errno.trim_end_matches(')').parse().unwrap(),
        )
    } else if let Some(rest) = cell.strip_prefix("attach: ") {
        Expected::Attach(rest.split_whitespace().next().unwrap().to_owned())
    } else if cell.starts_with("open: ") {
        Expected::Open
    } else {
        panic!("unreadable ground-truth cell {cell:?}")
    }
}

/// The table of `GROUND_TRUTH.md` whose header line is `header`: object
/// name, then one cell per column.
pub fn table(header: &str) -> Vec<(String, Vec<Expected>)> {
    rows(header)
        .into_iter()
        .map(|(object, cells)| (object, cells.iter().map(|c| parse_cell(c)).collect()))
        .collect()
}

/// Each cell's remark, the text in parentheses after `pass` (a variant
/// group's winner in the loader-contract table).
pub fn remarks(header: &str) -> Vec<(String, Vec<Option<String>>)> {
    rows(header)
        .into_iter()
        .map(|(object, cells)| {
            let remarks = cells
                .iter()
                .map(|c| {
                    let rest = c.strip_prefix("pass (")?;
                    Some(rest.strip_suffix(')')?.to_owned())
                })
                .collect();
            (object, remarks)
        })
        .collect()
}

/// The rows of the table whose header line is `header`, as text.
fn rows(header: &str) -> Vec<(String, Vec<String>)> {
    let text = include_str!("../bpf/GROUND_TRUTH.md");
    let mut lines = text.lines().skip_while(|l| *l != header);
    assert_eq!(
        lines.next(),
        Some(header),
        "the ground-truth table's columns"
    );
    lines
        .skip(1)
        .take_while(|l| l.starts_with('|'))
        .map(|l| {
            let cells: Vec<&str> = l.trim_matches('|').split('|').map(str::trim).collect();
            (
                cells[0].to_owned(),
                cells[1..].iter().map(|c| c.to_string()).collect(),
            )
        })
        .collect()
}

pub fn check_of<'a>(target: &'a Value, object: &str) -> &'a Value {
    let name = format!("{object}.bpf.o");
    target["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["artifact"]["name"] == name.as_str())
        .unwrap_or_else(|| panic!("no check of {name} on {}", target["id"]))
}

/// What a check says, in the ground truth's terms.
pub fn observed(check: &Value) -> Expected {
    let class = || check["classification"]["code"].as_str().unwrap().to_owned();
    if check["status"] == "pass" {
        Expected::Pass
    } else if check["status"] == "partial" {
        assert!(
            !check["skipped"].as_array().unwrap().is_empty(),
            "a partial check says what was skipped: {check}"
        );
        Expected::Partial
    } else if check["classification"]["phase"] == "attach" {
        Expected::Attach(class())
    } else {
        let errno = check["validation"]["load"]["errno"].as_i64().unwrap_or(-1);
        Expected::Load(class(), errno)
    }
}

/// Every cell of `truth` whose report check differs, for kernels `ids` in
/// the table's column order.
pub fn differences(
    truth: &[(String, Vec<Expected>)],
    ids: &[&str],
    target: impl Fn(&str) -> Value,
) -> Vec<String> {
    let mut wrong = Vec::new();
    for (object, cells) in truth {
        for (id, expected) in ids.iter().zip(cells) {
            if *expected == Expected::Open {
                continue;
            }
            let target = target(id);
            let check = check_of(&target, object);
            let got = observed(check);
            if &got != expected {
                wrong.push(format!(
                    "{object} on {id}: expected {expected:?}, got {got:?}: {}",
                    check["classification"]
                ));
            }
        }
    }
    wrong
}

/// The fixtures of loader contracts (manifests, suites, functional tests).
fn contract_fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/contract")
        .join(name)
}

/// The corpus, with the contract fixtures copied beside its objects (suites
/// name their artifacts relative to themselves; `ringbuf.manifest.yaml` is
/// found beside `ringbuf.bpf.o`), the bad ones under `bad/`.
pub fn corpus_with_fixtures(dir: &Path) -> PathBuf {
    let corpus = build_corpus(dir);
    for (from, to) in [
        (contract_fixture(""), corpus.clone()),
        (contract_fixture("bad"), corpus.join("bad")),
    ] {
        std::fs::create_dir_all(&to).unwrap();
        for entry in std::fs::read_dir(&from).unwrap() {
            let path = entry.unwrap().path();
            if path.is_file() {
                std::fs::copy(&path, to.join(path.file_name().unwrap())).unwrap();
            }
        }
    }
    corpus
}
