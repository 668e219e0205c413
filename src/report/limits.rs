//! What a report may be: sizes no report bpfcompat writes comes near, checked
//! on every read, and (for a report from elsewhere, a stranger's words)
//! the published schema, `docs/report.schema.json`, checked before anything
//! in it is used. Each finding names the field it is about.

use std::sync::OnceLock;

use serde_json::Value;

use crate::escape;
use crate::yaml::Field;

/// A report file's size. A hundred objects on a dozen kernels, every one
/// failing with its log tails, is a few megabytes.
pub const MAX_REPORT_BYTES: u64 = 32 << 20;
/// One string: the longest bpfcompat writes are 8 KiB log tails.
pub const MAX_STRING_BYTES: usize = 1 << 20;
/// One array: kernels of a matrix, checks of a kernel, programs of an object.
pub const MAX_ARRAY_ITEMS: usize = 10_000;

const SCHEMA: &str = include_str!("../../docs/report.schema.json");
/// How much of a finding is quoted: enough to see what is wrong, never the
/// megabytes a hostile value may hold.
const MESSAGE_CHARS: usize = 200;

/// A field over a limit or against the schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The field's path, e.g. `targets[0].checks[1].artifact.name`, shown
    /// inert and on one line (it may hold a stranger's keys).
    pub field: String,
    pub message: String,
}

/// The first string or array in `value` over its limit.
pub fn check_sizes(value: &Value) -> Option<Finding> {
    walk(value, &Field::root())
}

fn walk(value: &Value, field: &Field) -> Option<Finding> {
    let over = |message: String| {
        Some(Finding {
            field: name(field),
            message,
        })
    };
    match value {
        Value::String(s) if s.len() > MAX_STRING_BYTES => over(format!(
            "a string of {} bytes, over the {MAX_STRING_BYTES} a report's string may have",
            s.len()
        )),
        Value::Array(items) if items.len() > MAX_ARRAY_ITEMS => over(format!(
            "a list of {} items, over the {MAX_ARRAY_ITEMS} a report's list may have",
            items.len()
        )),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, item)| walk(item, &field.index(i))),
        Value::Object(map) => map.iter().find_map(|(key, item)| {
            let inner = field.key(key);
            if key.len() > MAX_STRING_BYTES {
                return Some(Finding {
                    field: name(&inner),
                    message: format!("a key of {} bytes", key.len()),
                });
            }
            walk(item, &inner)
        }),
        _ => None,
    }
}

/// The first place `value` does not match `docs/report.schema.json`.
pub fn check_schema(value: &Value) -> Option<Finding> {
    static VALIDATOR: OnceLock<jsonschema::Validator> = OnceLock::new();
    let validator = VALIDATOR.get_or_init(|| {
        let schema: Value = serde_json::from_str(SCHEMA).expect("the report schema is JSON");
        jsonschema::validator_for(&schema).expect("the report schema compiles")
    });
    let error = validator.iter_errors(value).next()?;
    let mut field = Field::root();
    for segment in &error.instance_path {
        field = match segment {
            jsonschema::paths::LocationSegment::Property(key) => field.key(key),
            jsonschema::paths::LocationSegment::Index(i) => field.index(i),
        };
    }
    Some(Finding {
        field: name(&field),
        message: shown(&error.to_string()),
    })
}

/// `targets[0].id`, or `top level` for the document itself.
fn name(field: &Field) -> String {
    match field.to_string() {
        path if path.is_empty() => "top level".to_owned(),
        path => shown(&path),
    }
}

/// One inert line of at most [`MESSAGE_CHARS`] characters.
fn shown(text: &str) -> String {
    let line = escape::plain_line(text);
    match line.char_indices().nth(MESSAGE_CHARS) {
        Some((end, _)) => format!("{}…", &line[..end]),
        None => line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sizes_name_the_field_over_its_limit() {
        let long = "x".repeat(MAX_STRING_BYTES + 1);
        let report = json!({ "targets": [{ "id": "a" }, { "checks": [{ "name": long }] }] });
        let finding = check_sizes(&report).unwrap();
        assert_eq!(finding.field, "targets[1].checks[0].name");
        assert!(finding.message.contains("1048577 bytes"), "{finding:?}");
        let many = json!({ "targets": vec![0; MAX_ARRAY_ITEMS + 1] });
        assert_eq!(check_sizes(&many).unwrap().field, "targets");
        assert_eq!(check_sizes(&json!({ "a": ["b", 1, null] })), None);
    }

    #[test]
    fn schema_findings_are_one_short_inert_line() {
        let report = bpfcompat_testkit::reports::report_json(&[("k", "pass", None)]);
        assert_eq!(check_schema(&report), None);
        let mut bad = report.clone();
        bad["targets"][0]["id"] = json!(format!("../{}\n::error::x", "y".repeat(5000)));
        let finding = check_schema(&bad).unwrap();
        assert_eq!(finding.field, "targets[0].id");
        assert!(finding.message.chars().count() <= MESSAGE_CHARS + 1);
        assert!(!finding.message.contains('\n'), "{finding:?}");
    }
}
