//! Errors a person reads: what went wrong, where (line and column), and, where we can, what to do.

use std::fmt;

/// A position in template source, 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    pub line: u32,
    pub column: u32,
}

impl Location {
    /// Computes the location of a byte offset in `source`.
    pub fn of(source: &str, offset: usize) -> Location {
        let offset = offset.min(source.len());
        let before = source.get(..offset).unwrap_or(source);
        let line = before.matches('\n').count() as u32 + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() as u32 + 1;
        Location { line, column }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}", self.line, self.column)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The template text is not valid Liquid; found when it is compiled.
    Syntax,
    /// A filter got arguments it cannot use, a number was divided by zero, and the like.
    Filter,
    /// A `connected_content` call failed in a way the template cannot handle (bad URL, unknown
    /// credential); HTTP failures are not errors, they render as Braze renders them.
    ConnectedContent,
    /// An `include` or `render` names a template the source does not have, or nesting is too deep.
    Partial,
    /// Rendering went past a resource limit (output size, loop iterations).
    Limit,
}

/// A compile or render error, with its location in the template.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} ({location})")]
pub struct Error {
    pub kind: ErrorKind,
    pub message: String,
    pub location: Location,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>, location: Location) -> Error {
        Error {
            kind,
            message: message.into(),
            location,
        }
    }
}

/// An error before its location is known: parsing and rendering carry byte offsets and the
/// template turns them into lines and columns at the boundary.
#[derive(Debug, Clone)]
pub(crate) struct RawError {
    pub kind: ErrorKind,
    pub message: String,
    pub offset: usize,
}

impl RawError {
    pub fn syntax(message: impl Into<String>, offset: usize) -> RawError {
        RawError {
            kind: ErrorKind::Syntax,
            message: message.into(),
            offset,
        }
    }

    pub fn filter(message: impl Into<String>, offset: usize) -> RawError {
        RawError {
            kind: ErrorKind::Filter,
            message: message.into(),
            offset,
        }
    }

    pub fn locate(self, source: &str) -> Error {
        Error::new(self.kind, self.message, Location::of(source, self.offset))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_count_lines_and_characters() {
        let src = "ab\nJosé {{ x";
        assert_eq!(Location::of(src, 0), Location { line: 1, column: 1 });
        let offset = src.find("{{").unwrap_or_default();
        assert_eq!(Location::of(src, offset), Location { line: 2, column: 6 });
    }
}
