//! The shape of src/ that docs/architecture.md describes, checked: the
//! stages (the top-level modules) import each other without cycles, and so
//! do the files of each folder (a folder's mod.rs aside: it declares its
//! children and may share types with them). No test-only files in src/.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A module path (`["kernel", "cache"]`) and the code of its file, without
/// comments and its `#[cfg(test)] mod tests` block.
fn modules() -> Vec<(Vec<String>, String)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    walk(&src, &mut files);
    files
        .into_iter()
        .filter(|f| !f.starts_with(src.join("bin")) && f.file_name().unwrap() != "main.rs")
        .map(|f| {
            let rel = f.strip_prefix(&src).unwrap().with_extension("");
            let mut path: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if matches!(path.last().map(String::as_str), Some("mod" | "lib")) {
                path.pop();
            }
            let text = std::fs::read_to_string(&f).unwrap();
            let code = match text.find("#[cfg(test)]\nmod tests") {
                Some(at) => &text[..at],
                None => &text,
            };
            // Comments may name modules; only code imports them.
            let code: Vec<&str> = code
                .lines()
                .filter(|l| !l.trim_start().starts_with("//"))
                .collect();
            (path, code.join("\n"))
        })
        .collect()
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            walk(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module paths `code` names through `crate::a::b` and `super::c`,
/// resolved from the module at `here`.
fn references(here: &[String], code: &str) -> BTreeSet<Vec<String>> {
    let mut out = BTreeSet::new();
    let words = |rest: &str| -> Vec<String> {
        rest.split("::")
            .map(|w| {
                w.chars()
                    .take_while(|c| c.is_ascii_lowercase() || *c == '_' || c.is_ascii_digit())
                    .collect::<String>()
            })
            .take_while(|w| !w.is_empty())
            .collect()
    };
    for (at, _) in code.match_indices("crate::") {
        out.insert(words(&code[at + "crate::".len()..]));
    }
    for (at, _) in code.match_indices("super::") {
        if code[..at].ends_with("::") {
            continue;
        }
        // `super` is the parent module, for a mod.rs as for any file.
        let mut base = here[..here.len().saturating_sub(1)].to_vec();
        base.extend(words(&code[at + "super::".len()..]));
        out.insert(base);
    }
    out
}

/// A cycle in `graph`, if any, as the nodes along it.
fn cycle<N: Ord + Clone>(graph: &BTreeMap<N, BTreeSet<N>>) -> Option<Vec<N>> {
    fn visit<N: Ord + Clone>(
        n: &N,
        graph: &BTreeMap<N, BTreeSet<N>>,
        state: &mut BTreeMap<N, bool>,
        stack: &mut Vec<N>,
    ) -> Option<Vec<N>> {
        match state.get(n) {
            Some(true) => return None,
            Some(false) => {
                let from = stack.iter().position(|s| s == n).unwrap();
                let mut c = stack[from..].to_vec();
                c.push(n.clone());
                return Some(c);
            }
            None => {}
        }
        state.insert(n.clone(), false);
        stack.push(n.clone());
        for m in graph.get(n).into_iter().flatten() {
            if let Some(c) = visit(m, graph, state, stack) {
                return Some(c);
            }
        }
        stack.pop();
        state.insert(n.clone(), true);
        None
    }
    let mut state = BTreeMap::new();
    graph
        .keys()
        .find_map(|n| visit(n, graph, &mut state, &mut Vec::new()))
}

#[test]
fn the_stages_import_each_other_without_cycles() {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (path, code) in modules() {
        let Some(stage) = path.first() else { continue };
        let entry = graph.entry(stage.clone()).or_default();
        for r in references(&path, &code) {
            if let Some(other) = r.first().filter(|o| *o != stage) {
                entry.insert(other.clone());
            }
        }
    }
    assert_eq!(cycle(&graph), None, "stages: {graph:#?}");
}

#[test]
fn the_files_of_each_folder_import_each_other_without_cycles() {
    let all = modules();
    let dirs: BTreeSet<Vec<String>> = all
        .iter()
        .filter(|(p, _)| {
            all.iter()
                .any(|(q, _)| q.len() == p.len() + 1 && q.starts_with(p))
        })
        .map(|(p, _)| p.clone())
        .collect();
    for dir in &dirs {
        // The files directly in this folder, by their module name.
        let children: BTreeMap<&Vec<String>, &String> = all
            .iter()
            .filter(|(p, _)| p.len() == dir.len() + 1 && p.starts_with(dir))
            .map(|(p, c)| (p, c))
            .collect();
        let mut graph: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
        for (path, code) in &children {
            let entry = graph.entry((*path).clone()).or_default();
            for r in references(path, code) {
                if let Some(sibling) = children.keys().find(|c| r.starts_with(c) && *c != path) {
                    entry.insert((*sibling).clone());
                }
            }
        }
        assert_eq!(
            cycle(&graph),
            None,
            "files of src/{}: {graph:#?}",
            dir.join("/")
        );
    }
}

#[test]
fn src_has_no_test_only_files() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    walk(&src, &mut files);
    for f in files {
        let name = f.file_stem().unwrap().to_string_lossy().into_owned();
        assert!(
            !["tests", "testutil", "fixture", "fixtures", "test_helpers"].contains(&name.as_str()),
            "{} is test-only code: it belongs in testkit/ or tests/",
            f.display()
        );
    }
}

#[test]
fn the_cycle_finder_finds_cycles() {
    let g: BTreeMap<u8, BTreeSet<u8>> = [(1, [2].into()), (2, [3].into()), (3, [1].into())].into();
    assert_eq!(cycle(&g), Some(vec![1, 2, 3, 1]));
    let dag: BTreeMap<u8, BTreeSet<u8>> = [(1, [2, 3].into()), (2, [3].into())].into();
    assert_eq!(cycle(&dag), None);
}
