//! `globals:`: the values a loader writes into `.rodata`, `.data` and
//! `.bss` before load (a skeleton's `skel->rodata->target_pid = 42`),
//! checked against the variables the object's BTF declares and encoded as
//! the bytes the agent writes.

use bpfcompat_proto::object::GlobalValue;
use serde_norway::{Mapping, Value};

use super::{list, Doc, ManifestError};
use crate::report::inspection::{GlobalVar, ObjectSummary};
use crate::yaml::Field;

/// Each `name: value` of `globals` as the bytes of its variable, in file
/// order.
pub(super) fn resolve(
    doc: &Doc,
    object: &ObjectSummary,
    globals: &Mapping,
) -> Result<Vec<GlobalValue>, ManifestError> {
    let mut out = Vec::with_capacity(globals.len());
    for (key, value) in globals {
        let Some(name) = key.as_str() else {
            return Err(doc.err(
                &Field::root().key("globals"),
                format!("{key:?} is not a variable name"),
            ));
        };
        let field = Field::root().key("globals").key(name);
        let var = variable(object, name).map_err(|why| doc.err(&field, why))?;
        let bytes = encode(var, value).map_err(|why| {
            doc.err(
                &field,
                format!(
                    "{} does not fit {name} ({} bytes in {}): {why}",
                    shown(value),
                    var.size,
                    var.section
                ),
            )
        })?;
        out.push(GlobalValue {
            name: name.to_owned(),
            section: var.section.clone(),
            offset: var.offset,
            bytes,
        });
    }
    Ok(out)
}

/// The one variable called `name`.
fn variable<'a>(object: &'a ObjectSummary, name: &str) -> Result<&'a GlobalVar, String> {
    let matches: Vec<&GlobalVar> = object.globals.iter().filter(|g| g.name == name).collect();
    match matches.as_slice() {
        [one] => Ok(one),
        [] => Err(format!(
            "{} has no global variable {name:?} in .rodata, .data or .bss (its globals: {}); \
             fix the name, or declare it (e.g. const volatile __u32 {name} = 0;)",
            object.path.display(),
            list(
                object
                    .globals
                    .iter()
                    .map(|g| format!("{} ({} bytes in {})", g.name, g.size, g.section))
            )
        )),
        many => Err(format!(
            "{name:?} is a static variable of {} sections ({}); rename one of them",
            many.len(),
            list(many.iter().map(|g| g.section.as_str()))
        )),
    }
}

/// The bytes of `value` for `var`, little-endian (the byte order of
/// `clang -target bpf` on x86-64 and arm64): an integer or bool for a 1, 2,
/// 4 or 8-byte variable, a string for a char array (NUL-padded), or a list
/// of exactly `size` byte values.
fn encode(var: &GlobalVar, value: &Value) -> Result<Vec<u8>, String> {
    let size = var.size as usize;
    match value {
        Value::Bool(b) => integer(size, i128::from(*b)),
        Value::Number(n) => {
            let v = n
                .as_i64()
                .map(i128::from)
                .or_else(|| n.as_u64().map(i128::from))
                .ok_or("it is not an integer")?;
            integer(size, v)
        }
        Value::String(s) if s.len() <= size => {
            let mut bytes = s.as_bytes().to_vec();
            bytes.resize(size, 0);
            Ok(bytes)
        }
        Value::String(s) => Err(format!("the string is {} bytes long", s.len())),
        Value::Sequence(items) => {
            let bytes = items
                .iter()
                .map(|i| {
                    i.as_u64()
                        .and_then(|b| u8::try_from(b).ok())
                        .ok_or("a byte list holds integers 0 to 255")
                })
                .collect::<Result<Vec<u8>, _>>()?;
            if bytes.len() == size {
                Ok(bytes)
            } else {
                Err(format!("the list has {} bytes", bytes.len()))
            }
        }
        _ => Err("give an integer, a bool, a string or a list of bytes".into()),
    }
}

fn integer(size: usize, v: i128) -> Result<Vec<u8>, String> {
    if ![1, 2, 4, 8].contains(&size) {
        return Err(format!(
            "a {size}-byte variable is not an integer; give a string or a list of {size} bytes"
        ));
    }
    let bits = 8 * size as u32;
    let (min, max) = (-(1i128 << (bits - 1)), (1i128 << bits) - 1);
    if !(min..=max).contains(&v) {
        return Err(format!("{size} bytes hold {min} to {max}"));
    }
    Ok(v.to_le_bytes()[..size].to_vec())
}

fn shown(value: &Value) -> String {
    match value {
        Value::String(s) => format!("{s:?}"),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Sequence(s) => format!("a list of {}", s.len()),
        _ => "the value".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn var(size: u32) -> GlobalVar {
        GlobalVar {
            name: "v".into(),
            section: ".rodata".into(),
            offset: 8,
            size,
        }
    }

    fn enc(size: u32, yaml: &str) -> Result<Vec<u8>, String> {
        encode(&var(size), &serde_norway::from_str(yaml).unwrap())
    }

    #[test]
    fn integers_fit_signed_or_unsigned() {
        assert_eq!(enc(4, "42"), Ok(vec![42, 0, 0, 0]));
        assert_eq!(enc(4, "-1"), Ok(vec![0xff; 4]));
        assert_eq!(enc(4, "4294967295"), Ok(vec![0xff; 4]));
        assert_eq!(enc(2, "true"), Ok(vec![1, 0]));
        assert_eq!(enc(8, "18446744073709551615"), Ok(vec![0xff; 8]));
        let e = enc(4, "4294967296").unwrap_err();
        assert!(e.contains("4 bytes hold -2147483648 to 4294967295"), "{e}");
        assert!(enc(1, "-129").is_err());
        assert!(enc(16, "1").unwrap_err().contains("not an integer"));
        assert!(enc(4, "1.5").is_err());
    }

    #[test]
    fn strings_and_bytes_fill_arrays() {
        assert_eq!(enc(4, "ab"), Ok(vec![b'a', b'b', 0, 0]));
        assert_eq!(enc(2, "ab"), Ok(vec![b'a', b'b']));
        assert!(enc(2, "abc").unwrap_err().contains("3 bytes long"));
        assert_eq!(enc(3, "[1, 2, 255]"), Ok(vec![1, 2, 255]));
        assert!(enc(3, "[1, 2]").unwrap_err().contains("2 bytes"));
        assert!(enc(2, "[1, 256]").is_err());
        assert!(enc(4, "{a: 1}").is_err());
    }
}
