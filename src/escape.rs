//! Untrusted text, made inert for each place bpfcompat shows it.
//!
//! Program, map and section names come from the user's object; kernel ids,
//! labels and everything else in a report may come from a file a pull
//! request wrote; reasons, evidence and log tails quote a guest that ran the
//! user's code. None of it may change how the text around it is shown. Each
//! place has its one function here, and every rendering uses it:
//!
//! | where                                         | function        |
//! |-----------------------------------------------|-----------------|
//! | Markdown: a table cell, a line of prose       | [`markdown`]    |
//! | Markdown: an inline code span (not in tables) | [`code_span`]   |
//! | Markdown: a fenced code block                 | [`code_block`]  |
//! | text inside an HTML block (`<summary>`)       | [`html`]        |
//! | plain text: a terminal, a CI log, annotations | [`plain`], [`plain_line`] |
//! | the data of an Actions workflow command       | [`workflow_command`] |

/// Zero width space: breaks what a machine would read as syntax (a mention,
/// an issue reference, a workflow command) where a reader sees nothing.
const BREAK: char = '\u{200b}';
/// What is shown instead of a character that must not reach the reader.
const REPLACEMENT: char = '\u{fffd}';

/// Characters that act on the text around them instead of being shown: C0
/// and C1 controls (ESC starts ANSI sequences, CR rewrites the line, NUL
/// ends C strings), DEL, the line and paragraph separators, and the
/// bidirectional controls that reorder what a reader sees.
fn is_active(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
        )
}

/// Which inline escaping [`inline`] does.
#[derive(Clone, Copy, PartialEq)]
enum Inline {
    Markdown,
    Html,
}

/// One line of Markdown that shows `text` as it is, at most `max_chars` of
/// it: no table cell, emphasis, link, image, heading, list, math, HTML or
/// comment can start or end in it, and nothing in it mentions anyone or
/// references an issue.
pub fn markdown(text: &str, max_chars: usize) -> String {
    inline(text, max_chars, Inline::Markdown)
}

/// Text for inside an HTML block such as `<summary>`, where Markdown is not
/// parsed (a backslash would show) but HTML is, and GitHub still links
/// mentions and issue references. Like [`markdown`] otherwise.
pub fn html(text: &str, max_chars: usize) -> String {
    inline(text, max_chars, Inline::Html)
}

fn inline(text: &str, max_chars: usize, target: Inline) -> String {
    let text = text.trim();
    let markdown = target == Inline::Markdown;
    let mut out = String::with_capacity(text.len());
    for (n, (i, c)) in text.char_indices().enumerate() {
        if n == max_chars {
            out.push('…');
            break;
        }
        match c {
            '\n' | '\r' | '\t' | '\u{2028}' | '\u{2029}' => out.push(' '),
            c if is_active(c) => out.push(REPLACEMENT),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            // Math, which an entity cannot start.
            '$' if !markdown => out.push_str("&#36;"),
            '\\' | '`' | '*' | '_' | '[' | ']' | '~' | '|' | '$' if markdown => {
                out.push('\\');
                out.push(c);
            }
            // A list item, thematic break or setext underline at the start
            // of a line; harmless elsewhere.
            '-' | '+' | '=' if markdown && i == 0 => {
                out.push('\\');
                out.push(c);
            }
            // "1. " or "1) " at the start of a line starts a list.
            '.' | ')' if markdown && starts_list(text, i) => {
                out.push('\\');
                out.push(c);
            }
            // @name mentions, #123 and GH-123 reference issues (and notify
            // theirs), "://" and "www." start autolinks: a break inside each
            // stops it. A # followed by a break starts no heading either.
            '@' | '#' => {
                out.push(c);
                out.push(BREAK);
            }
            '-' if i >= 2 && text.as_bytes()[i - 2..i].eq_ignore_ascii_case(b"gh") => {
                out.push(c);
                out.push(BREAK);
            }
            ':' if text[i + 1..].starts_with("//") => {
                out.push(c);
                out.push(BREAK);
            }
            '.' if i >= 3 && text.as_bytes()[i - 3..i].eq_ignore_ascii_case(b"www") => {
                out.push(c);
                out.push(BREAK);
            }
            c => out.push(c),
        }
    }
    out
}

/// Whether `text[..=i]` is the "1." or "1)" of an ordered list item.
fn starts_list(text: &str, i: usize) -> bool {
    (1..=9).contains(&i)
        && text[..i].bytes().all(|b| b.is_ascii_digit())
        && text[i + 1..].chars().next().is_none_or(char::is_whitespace)
}

/// An inline code span showing `text` on one line, at most `max_chars` of
/// it: its backtick fence is longer than any run inside. Not for table
/// cells, where GitHub would still split the row at a `|` inside.
pub fn code_span(text: &str, max_chars: usize) -> String {
    let mut body = literal(&text.chars().take(max_chars).collect::<String>(), true);
    if text.chars().nth(max_chars).is_some() {
        body.push('…');
    }
    let fence = "`".repeat(longest_run(&body, '`') + 1);
    // A space each side keeps a backtick at either end off the fence, and
    // CommonMark takes exactly one off each side again.
    let pad = if body.is_empty() || body.starts_with(['`', ' ']) || body.ends_with(['`', ' ']) {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{body}{pad}{fence}")
}

/// A fenced code block of `text`, which the text cannot close: its fence is
/// longer than any run of backticks inside. Lines stay lines (a lone CR
/// becomes one).
pub fn code_block(text: &str) -> String {
    let body = literal(text, false);
    let body = body.trim_end_matches('\n');
    let fence = "`".repeat(longest_run(body, '`').max(2) + 1);
    format!("{fence}text\n{body}\n{fence}")
}

/// Text for an HTML page whose template escapes what it prints: at most
/// `max_chars` of it, line breaks and tabs kept, every character that acts
/// on the text around it (controls, bidirectional overrides) replaced.
pub fn shown(text: &str, max_chars: usize) -> String {
    let mut out: String = text
        .replace("\r\n", "\n")
        .chars()
        .take(max_chars)
        .map(|c| match c {
            '\n' | '\t' => c,
            c if is_active(c) => REPLACEMENT,
            c => c,
        })
        .collect();
    if text.chars().nth(max_chars).is_some() {
        out.push('…');
    }
    out
}

/// Text for code, which Markdown shows as it is: controls are replaced,
/// and an HTML comment opener is broken so that nothing in it looks like
/// our hidden markers to whoever searches the raw text.
fn literal(text: &str, one_line: bool) -> String {
    let text: String = text
        .replace("\r\n", "\n")
        .chars()
        .map(|c| match c {
            '\n' | '\r' | '\t' | '\u{2028}' | '\u{2029}' if one_line => ' ',
            '\n' | '\t' => c,
            '\r' => '\n',
            c if is_active(c) => REPLACEMENT,
            c => c,
        })
        .collect();
    text.replace("<!--", "<\u{200b}!--")
}

fn longest_run(text: &str, c: char) -> usize {
    text.split(|x| x != c).map(str::len).max().unwrap_or(0)
}

/// Text for a terminal or a CI log, lines kept: no escape sequence can
/// recolour the terminal, move its cursor or make a link, no CR can
/// overwrite what was printed, and no line is an Actions workflow command
/// (`::set-output::`, `::add-mask::`, `##[error]`), which the runner reads
/// from any line of a step's output.
pub fn plain(text: &str) -> String {
    plain_text(text, false)
}

/// [`plain`] on one line: line breaks and tabs become spaces, for a table
/// cell or a field of a message.
pub fn plain_line(text: &str) -> String {
    plain_text(text, true)
}

fn plain_text(text: &str, one_line: bool) -> String {
    let text = text.replace("\r\n", "\n");
    let mut out = String::with_capacity(text.len());
    // How the current line starts: the runner reads `::command::` at the
    // start of a line, spaces skipped.
    let mut lead = Lead::Blank;
    for c in text.chars() {
        let c = match c {
            '\n' | '\r' | '\t' | '\u{2028}' | '\u{2029}' if one_line => ' ',
            '\n' | '\r' => '\n',
            '\t' => c,
            c if is_active(c) => REPLACEMENT,
            c => c,
        };
        lead = match (lead, c) {
            (_, '\n') => Lead::Blank,
            (Lead::Blank, c) if c.is_whitespace() => Lead::Blank,
            (Lead::Blank, ':') => Lead::Colon,
            (Lead::Colon, ':') => {
                out.push(BREAK);
                Lead::Other
            }
            _ => Lead::Other,
        };
        // ... and `##[command]` anywhere in a line.
        if c == '[' && out.ends_with("##") {
            out.push(BREAK);
        }
        out.push(c);
    }
    out
}

#[derive(Clone, Copy)]
enum Lead {
    Blank,
    Colon,
    Other,
}

/// The data (message) of an Actions workflow command such as `::warning::`,
/// escaped as the runner unescapes it, so the message cannot end early or
/// carry a command of its own.
pub fn workflow_command(text: &str) -> String {
    plain(text)
        .replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_cannot_break_tables_link_or_mention() {
        let c = markdown(
            "a|b\n<img src=x> @octocat [x](y) `z` #12 GH-3 $x$ https://e",
            160,
        );
        assert!(!c.contains('\n'));
        assert!(!c.contains("<img"));
        assert!(c.contains("\\|"));
        assert!(!c.contains("@octocat") && c.contains("@\u{200b}octocat"));
        assert!(c.contains("\\[x\\]"));
        assert!(!c.contains("#12") && !c.contains("GH-3"));
        assert!(c.contains("\\$x\\$"));
        assert!(!c.contains("https://"));
        assert_eq!(markdown("WWW.e.ex", 160), "WWW.\u{200b}e.ex");
        assert_eq!(markdown("# Title", 160), "#\u{200b} Title");
        assert_eq!(markdown("- item", 160), "\\- item");
        assert_eq!(markdown("12. item", 160), "12\\. item");
        assert_eq!(markdown("6.1.0-47", 160), "6.1.0-47");
        assert_eq!(markdown("<!-- x -->", 160), "&lt;!-- x --&gt;");
        assert_eq!(markdown("a\u{1b}[31mb\0c\u{202e}d", 160), "a�\\[31mb�c�d");
        assert_eq!(markdown("abcdef", 3), "abc…");
        assert_eq!(
            markdown("@org/team @everyone --> <details> ../x", 160),
            "@\u{200b}org/team @\u{200b}everyone --&gt; &lt;details&gt; ../x"
        );
    }

    #[test]
    fn html_text_has_no_tags_and_no_backslashes() {
        let h = html("</summary></details> a_b @x #1 $y$", 160);
        assert_eq!(
            h,
            "&lt;/summary&gt;&lt;/details&gt; a_b @\u{200b}x #\u{200b}1 &#36;y&#36;"
        );
    }

    #[test]
    fn code_spans_cannot_be_closed() {
        assert_eq!(code_span("handle_exec", 160), "`handle_exec`");
        assert_eq!(code_span("a``b", 160), "```a``b```");
        assert_eq!(code_span("`x", 160), "`` `x ``");
        assert_eq!(code_span("a\nb\u{1b}", 160), "`a b�`");
        assert_eq!(code_span("abcd", 2), "`ab…`");
    }

    #[test]
    fn code_blocks_cannot_be_closed() {
        let b = code_block("x\n````\n</details>\n");
        assert!(b.starts_with("`````text\n"));
        assert!(b.ends_with("\n`````"));
        assert_eq!(
            code_block("a\r\nb\rc\u{1b}[2J\0<!-- x"),
            "```text\na\nb\nc�[2J�<\u{200b}!-- x\n```"
        );
    }

    #[test]
    fn plain_text_cannot_drive_the_terminal_or_the_runner() {
        let p = plain("ok\r\nFAIL\rpass\n\u{1b}]8;;http://x\u{7}link\u{9b}31m");
        assert_eq!(p, "ok\nFAIL\npass\n�]8;;http://x�link�31m");
        assert_eq!(plain_line("a\nb\tc"), "a b c");
        for line in plain("x\n::add-mask::y\n  ::set-output name=a::b\n##[error]z").lines() {
            assert!(!line.trim_start().starts_with("::"), "{line}");
            assert!(!line.contains("##["), "{line}");
        }
        assert_eq!(plain_line("::x::"), ":\u{200b}:x::");
        assert_eq!(plain_line("a::b"), "a::b");
    }

    #[test]
    fn workflow_command_data_stays_one_command() {
        assert_eq!(
            workflow_command("50% done\r\n::error::x"),
            "50%25 done%0A:\u{200b}:error::x"
        );
    }
}
