//! What renderings of a hostile report must not hold: checks on text only.

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
    // Outside our own comments, nothing could close one.
    assert!(!shown.contains("-->"), "{what}: a comment's end:\n{shown}");
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
