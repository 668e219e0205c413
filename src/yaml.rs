//! Strict YAML input (matrices, manifests, suites): parsing whose errors
//! carry a line, and the line of a field named by its path, so that every
//! error about an input file can say file, line and field.
//!
//! YAML parsers give spans for syntax and type errors but not for values
//! that parse and are wrong (a program the object lacks), so [`Field::line`]
//! finds a field's line from the text: block-style YAML, the form these
//! files are written in, is located exactly; inside a flow-style value
//! (`attach: {kind: kprobe}`) the line of the value itself is the answer.

use std::fmt;

use serde::de::DeserializeOwned;

/// A YAML syntax or shape error: its 1-based line, if the parser knows
/// it, and the parser's message without its own "at line L column C".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub line: Option<usize>,
    pub message: String,
}

/// Parses `text` into `T` (whose structs deny unknown fields).
pub fn parse<T: DeserializeOwned>(text: &str) -> Result<T, ParseError> {
    serde_norway::from_str(text).map_err(|e| {
        let message = e.to_string();
        ParseError {
            line: e.location().map(|l| l.line()),
            message: message
                .split(" at line ")
                .next()
                .unwrap_or(&message)
                .to_owned(),
        }
    })
}

/// The path of a field inside a YAML document, e.g. `programs[2].attach`;
/// displayed the way errors name fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Field(Vec<Step>);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
}

impl Field {
    /// The document itself.
    pub fn root() -> Field {
        Field::default()
    }

    /// The mapping key `key` of this field.
    pub fn key(&self, key: &str) -> Field {
        let mut steps = self.0.clone();
        steps.push(Step::Key(key.to_owned()));
        Field(steps)
    }

    /// Item `index` of this field's sequence.
    pub fn index(&self, index: usize) -> Field {
        let mut steps = self.0.clone();
        steps.push(Step::Index(index));
        Field(steps)
    }

    /// The 1-based line of this field in `text`, or of the deepest part of
    /// its path that the text spells out in block style; `None` if not even
    /// the first part is there.
    pub fn line(&self, text: &str) -> Option<usize> {
        let lines: Vec<Line<'_>> = text.lines().enumerate().filter_map(Line::parse).collect();
        let mut scope = 0..lines.len();
        let mut found = None;
        for step in &self.0 {
            let Some((at, inner)) = (match step {
                Step::Key(key) => find_key(&lines, scope.clone(), key),
                Step::Index(index) => find_item(&lines, scope.clone(), *index),
            }) else {
                break;
            };
            found = Some(lines[at].number);
            scope = inner;
        }
        found
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, step) in self.0.iter().enumerate() {
            match step {
                Step::Key(key) if i == 0 => f.write_str(key)?,
                Step::Key(key) => write!(f, ".{key}")?,
                Step::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

/// A line that holds YAML content (not blank, not a comment).
struct Line<'a> {
    /// 1-based.
    number: usize,
    indent: usize,
    /// Starts a sequence item (`- `).
    item: bool,
    /// Column of what follows the item marker (the indent otherwise).
    column: usize,
    /// The mapping key this line starts, if any.
    key: Option<&'a str>,
}

impl<'a> Line<'a> {
    fn parse((index, text): (usize, &'a str)) -> Option<Line<'a>> {
        let body = text.trim_start();
        if body.is_empty() || body.starts_with('#') || body.starts_with("---") {
            return None;
        }
        let indent = text.len() - body.len();
        let (item, column, content) = match body.strip_prefix('-') {
            Some(rest) if rest.is_empty() || rest.starts_with(' ') => {
                let after = rest.trim_start();
                (true, text.len() - after.len(), after)
            }
            _ => (false, indent, body),
        };
        Some(Line {
            number: index + 1,
            indent,
            item,
            column,
            key: mapping_key(content),
        })
    }
}

/// `key` of `key: value` or `key:` (quotes removed); flow collections,
/// scalars and block scalars are not keys.
fn mapping_key(content: &str) -> Option<&str> {
    if content.starts_with(['{', '[', '|', '>']) {
        return None;
    }
    let colon = content
        .char_indices()
        .find(|&(i, c)| c == ':' && content[i + 1..].chars().next().is_none_or(|n| n == ' '))?
        .0;
    let key = content[..colon].trim();
    let key = key
        .strip_prefix('"')
        .and_then(|k| k.strip_suffix('"'))
        .or_else(|| key.strip_prefix('\'').and_then(|k| k.strip_suffix('\'')))
        .unwrap_or(key);
    (!key.is_empty()).then_some(key)
}

type Scope = std::ops::Range<usize>;

/// The line of `key` among the mapping keys directly in `scope`, and the
/// scope of its value.
fn find_key(lines: &[Line<'_>], scope: Scope, key: &str) -> Option<(usize, Scope)> {
    let column = scope
        .clone()
        .filter(|&i| lines[i].key.is_some())
        .map(|i| lines[i].column)
        .min()?;
    let at = scope
        .clone()
        .find(|&i| lines[i].column == column && lines[i].key == Some(key))?;
    // The value runs until a line at or left of the key; a sequence's items
    // may stand at the key's own indent (`programs:\n- name: a`).
    let end = (at + 1..scope.end)
        .find(|&i| {
            let l = &lines[i];
            if l.item {
                l.indent < column
            } else {
                l.indent <= column
            }
        })
        .unwrap_or(scope.end);
    Some((at, at + 1..end))
}

/// The line of item `index` of the sequence directly in `scope`, and the
/// item's scope (its first line holds its first key).
fn find_item(lines: &[Line<'_>], scope: Scope, index: usize) -> Option<(usize, Scope)> {
    let indent = scope
        .clone()
        .filter(|&i| lines[i].item)
        .map(|i| lines[i].indent)
        .min()?;
    let items: Vec<usize> = scope
        .clone()
        .filter(|&i| lines[i].item && lines[i].indent == indent)
        .collect();
    let at = *items.get(index)?;
    let end = items.get(index + 1).copied().unwrap_or(scope.end);
    Some((at, at..end))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "\
# a manifest
name: demo
programs:
  - name: first
    section: kprobe/x
  - name: second   # trailing comment
    attach:
      kind: kprobe
      symbol: vfs_read
maps:
- name: events
  max_entries: cpus
- {name: other, max_entries: 4}
required_profiles: [a, b]
functional_tests:
  - name: smoke
    command: |
      name: not a key
    timeout: 5s
";

    fn line(field: Field) -> Option<usize> {
        field.line(DOC)
    }

    #[test]
    fn finds_block_fields_by_path() {
        let root = Field::root();
        assert_eq!(line(root.key("name")), Some(2));
        assert_eq!(line(root.key("programs")), Some(3));
        assert_eq!(line(root.key("programs").index(0).key("name")), Some(4));
        assert_eq!(line(root.key("programs").index(0).key("section")), Some(5));
        assert_eq!(line(root.key("programs").index(1)), Some(6));
        let attach = root.key("programs").index(1).key("attach");
        assert_eq!(line(attach.key("symbol")), Some(9));
        assert_eq!(line(root.key("maps").index(0).key("max_entries")), Some(12));
        assert_eq!(
            line(root.key("functional_tests").index(0).key("timeout")),
            Some(19)
        );
    }

    #[test]
    fn stops_at_the_deepest_part_it_can_see() {
        let root = Field::root();
        // Flow style: the item's line.
        assert_eq!(line(root.key("maps").index(1).key("max_entries")), Some(13));
        assert_eq!(line(root.key("required_profiles").index(1)), Some(14));
        // A missing key: the last part found.
        assert_eq!(line(root.key("programs").index(0).key("attach")), Some(4));
        assert_eq!(line(root.key("nope")), None);
        // A key's siblings are not its children.
        assert_eq!(line(root.key("programs").index(0).key("symbol")), Some(4));
    }

    #[test]
    fn names_fields_like_errors_do() {
        let f = Field::root()
            .key("program_variants")
            .index(2)
            .key("programs")
            .index(0)
            .key("name");
        assert_eq!(f.to_string(), "program_variants[2].programs[0].name");
    }

    #[test]
    fn parse_errors_carry_the_line() {
        #[derive(serde::Deserialize, Debug)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct T {
            a: u32,
        }
        let e = parse::<T>("a: 1\nb: 2\n").unwrap_err();
        assert_eq!(e.line, Some(2));
        assert!(e.message.contains("unknown field `b`"), "{e:?}");
        assert!(!e.message.contains("column"), "{e:?}");
    }
}
