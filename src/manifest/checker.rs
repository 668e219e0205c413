//! What every check of a manifest against its object shares: the file (for
//! errors at a field's line) and the object, and finding a program by name.

use std::fmt::Display;

use super::{list, Doc, ManifestError};
use crate::report::inspection::{ObjectSummary, ProgramSummary};
use crate::yaml::Field;

/// Checks a manifest's entries against the object.
pub(super) struct Checker<'a> {
    pub doc: &'a Doc,
    pub object: &'a ObjectSummary,
}

impl Checker<'_> {
    pub(super) fn err(&self, field: &Field, message: impl Display) -> ManifestError {
        self.doc.err(field, message)
    }

    /// The object's program `name`, or an error at `field` listing them.
    pub(super) fn program(
        &self,
        field: &Field,
        name: &str,
    ) -> Result<&ProgramSummary, ManifestError> {
        self.named(field, "program", &self.object.programs, name, |p| &p.name)
    }

    /// The one of `items` (the object's `what`s) called `name`, or an
    /// error at `field` listing them.
    pub(super) fn named<'b, T>(
        &self,
        field: &Field,
        what: &str,
        items: &'b [T],
        name: &str,
        name_of: impl Fn(&T) -> &str,
    ) -> Result<&'b T, ManifestError> {
        items.iter().find(|i| name_of(i) == name).ok_or_else(|| {
            self.err(
                field,
                format!(
                    "{} has no {what} {name:?} (its {what}s: {}); fix the name or drop the entry",
                    self.object.path.display(),
                    list(items.iter().map(&name_of))
                ),
            )
        })
    }
}

/// Letters, digits, `_` and `.`, at most 128: program, map, group, kfunc
/// and function names.
pub(super) fn identifier(name: &str) -> bool {
    (1..=128).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
}
