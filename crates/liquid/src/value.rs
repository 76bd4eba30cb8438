//! The values a template computes with: Liquid's data model.
//!
//! Cheap to clone (strings, arrays and objects are reference counted), `Send + Sync`, and converted
//! from JSON once per render context rather than per lookup. This module knows nothing of parsing or
//! rendering; it only defines how values compare, print and test for truthiness the way Ruby Liquid does.

use std::cmp::Ordering;
use std::fmt::Write as _;
use std::sync::Arc;

use indexmap::IndexMap;

/// An object's properties, in insertion order (Liquid prints and iterates hashes in that order).
/// Keys are short and come from templates and our own data, so a fast non-random hash is safe.
pub type Object = IndexMap<Arc<str>, Value, rustc_hash::FxBuildHasher>;

#[derive(Debug, Clone, Default)]
pub enum Value {
    #[default]
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Arc<str>),
    Array(Arc<Vec<Value>>),
    Object(Arc<Object>),
    /// An inclusive integer range `(a..b)`.
    Range(i64, i64),
    /// The special literal `empty`.
    Empty,
    /// The special literal `blank`.
    Blank,
}

impl Value {
    pub fn str(s: impl Into<Arc<str>>) -> Value {
        Value::Str(s.into())
    }

    pub fn array(items: Vec<Value>) -> Value {
        Value::Array(Arc::new(items))
    }

    pub fn object(map: Object) -> Value {
        Value::Object(Arc::new(map))
    }

    /// Liquid truthiness: only `nil` and `false` are falsy.
    pub fn is_truthy(&self) -> bool {
        !matches!(self, Value::Nil | Value::Bool(false))
    }

    pub fn is_nil(&self) -> bool {
        matches!(self, Value::Nil)
    }

    /// Ruby's `empty?` as used by the `default` filter and the `empty` literal.
    pub fn is_empty_like(&self) -> bool {
        match self {
            Value::Str(s) => s.is_empty(),
            Value::Array(a) => a.is_empty(),
            Value::Object(o) => o.is_empty(),
            // A Ruby Range has no `empty?`: `default` keeps even an empty one.
            Value::Empty | Value::Blank => true,
            _ => false,
        }
    }

    /// Ruby's `blank?`: nil, false, whitespace-only strings, empty collections.
    pub fn is_blank(&self) -> bool {
        match self {
            Value::Nil | Value::Bool(false) => true,
            Value::Str(s) => s.trim().is_empty(),
            Value::Array(a) => a.is_empty(),
            Value::Object(o) => o.is_empty(),
            Value::Empty | Value::Blank => true,
            _ => false,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Items when the value is array-like (arrays and ranges). Ranges longer than
    /// [`MAX_RANGE_ITEMS`] are cut there, so `(1..999999999)` cannot exhaust memory.
    pub fn to_items(&self) -> Option<Vec<Value>> {
        match self {
            Value::Array(a) => Some(a.as_ref().clone()),
            Value::Range(a, b) => Some(range_items(*a, *b)),
            _ => None,
        }
    }

    /// Renders the value as Liquid output does.
    pub fn render_to(&self, out: &mut String) {
        match self {
            Value::Nil | Value::Empty | Value::Blank => {}
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Int(i) => {
                let _ = write!(out, "{i}");
            }
            Value::Float(f) => write_float(*f, out),
            Value::Str(s) => out.push_str(s),
            Value::Array(items) => {
                for item in items.iter() {
                    item.render_to(out);
                }
            }
            // Ruby's Hash#to_s is its inspect: {"a"=>1, "b"=>nil}.
            Value::Object(_) => self.inspect_to(out),
            Value::Range(a, b) => {
                let _ = write!(out, "{a}..{b}");
            }
        }
    }

    /// Ruby's `#inspect` (Ruby 3.1): what `to_s` gives for hashes, and for arrays outside output.
    pub fn inspect_to(&self, out: &mut String) {
        match self {
            Value::Nil | Value::Empty | Value::Blank => out.push_str("nil"),
            Value::Str(s) => inspect_str(s, out),
            Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    item.inspect_to(out);
                }
                out.push(']');
            }
            Value::Object(o) => {
                out.push('{');
                for (i, (k, v)) in o.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    inspect_str(k, out);
                    out.push_str("=>");
                    v.inspect_to(out);
                }
                out.push('}');
            }
            other => other.render_to(out),
        }
    }

    pub fn to_output(&self) -> String {
        let mut s = String::new();
        self.render_to(&mut s);
        s
    }

    /// A string view for string filters, as Ruby's `to_s`: nil becomes empty, numbers their
    /// decimal form, arrays and hashes their inspect form (`[1, "a"]`, unlike output, which joins).
    pub fn to_str_lossy(&self) -> std::borrow::Cow<'_, str> {
        match self {
            Value::Str(s) => std::borrow::Cow::Borrowed(s),
            Value::Array(_) => {
                let mut s = String::new();
                self.inspect_to(&mut s);
                std::borrow::Cow::Owned(s)
            }
            other => std::borrow::Cow::Owned(other.to_output()),
        }
    }

    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Nil => "nil",
            Value::Bool(_) => "boolean",
            Value::Int(_) => "integer",
            Value::Float(_) => "float",
            Value::Str(_) => "string",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
            Value::Range(..) => "range",
            Value::Empty => "empty",
            Value::Blank => "blank",
        }
    }

    /// Liquid `==`.
    pub fn liquid_eq(&self, other: &Value) -> bool {
        use Value::*;
        match (self, other) {
            (Empty, Empty) | (Blank, Blank) => true,
            (Empty, Blank) | (Blank, Empty) => false,
            (Empty, v) | (v, Empty) => match v {
                Str(_) | Array(_) | Object(_) => v.is_empty_like(),
                _ => false,
            },
            // golden-liquid: nil and false are blank too (python-liquid 2.3.6 and Ruby 5.4 disagree).
            (Blank, v) | (v, Blank) => v.is_blank(),
            (Nil, Nil) => true,
            (Bool(a), Bool(b)) => a == b,
            (Int(a), Int(b)) => a == b,
            (Int(a), Float(b)) | (Float(b), Int(a)) => (*a as f64) == *b,
            (Float(a), Float(b)) => a == b,
            (Str(a), Str(b)) => a == b,
            (Array(a), Array(b)) => {
                a.len() == b.len() && a.iter().zip(b.iter()).all(|(x, y)| x.liquid_eq(y))
            }
            (Object(a), Object(b)) => {
                a.len() == b.len()
                    && a.iter()
                        .all(|(k, v)| b.get(k).is_some_and(|w| v.liquid_eq(w)))
            }
            (Range(a, b), Range(c, d)) => a == c && b == d,
            _ => false,
        }
    }

    /// Liquid `<`, `>` and friends: numbers with numbers, strings with strings; anything else is
    /// incomparable (`None`), which the caller turns into an error or `false`.
    pub fn liquid_cmp(&self, other: &Value) -> Option<Ordering> {
        use Value::*;
        match (self, other) {
            (Int(a), Int(b)) => Some(a.cmp(b)),
            (Int(a), Float(b)) => (*a as f64).partial_cmp(b),
            (Float(a), Int(b)) => a.partial_cmp(&(*b as f64)),
            (Float(a), Float(b)) => a.partial_cmp(b),
            (Str(a), Str(b)) => Some(a.cmp(b)),
            _ => None,
        }
    }

    /// Liquid `contains`: substring for strings, membership for arrays, key for objects.
    pub fn liquid_contains(&self, needle: &Value) -> bool {
        if !needle.is_truthy() {
            return false;
        }
        match self {
            // Ruby: `right.to_s` when the left is a string; `empty` and `blank` are "".
            Value::Str(s) => match needle {
                Value::Str(n) => s.contains(n.as_ref()),
                Value::Nil => false,
                Value::Empty | Value::Blank => true,
                other => s.contains(other.to_str_lossy().as_ref()),
            },
            Value::Array(items) => items.iter().any(|i| i.liquid_eq(needle)),
            Value::Range(a, b) => match needle {
                Value::Int(n) => a <= n && n <= b,
                _ => false,
            },
            Value::Object(o) => needle.as_str().is_some_and(|k| o.contains_key(k)),
            _ => false,
        }
    }

    /// JSON form (used by `as_json_string`, `json` output of objects, and connected_content bodies).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            Value::Nil | Value::Empty | Value::Blank => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Int(i) => J::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f)
                .map(J::Number)
                .unwrap_or(J::Null),
            Value::Str(s) => J::String(s.to_string()),
            Value::Array(items) => J::Array(items.iter().map(Value::to_json).collect()),
            Value::Object(o) => J::Object(
                o.iter()
                    .map(|(k, v)| (k.to_string(), v.to_json()))
                    .collect(),
            ),
            Value::Range(a, b) => {
                J::Array(range_items(*a, *b).iter().map(Value::to_json).collect())
            }
        }
    }

    pub fn to_json_string(&self) -> String {
        self.to_json().to_string()
    }

    /// A property of this value by key, or `None` when there is none (rendered as nil by callers).
    pub fn get_key(&self, key: &str) -> Option<Value> {
        match self {
            Value::Object(o) => o.get(key).cloned(),
            _ => None,
        }
    }
}

impl From<&serde_json::Value> for Value {
    fn from(json: &serde_json::Value) -> Self {
        use serde_json::Value as J;
        match json {
            J::Null => Value::Nil,
            J::Bool(b) => Value::Bool(*b),
            J::Number(n) => match n.as_i64() {
                Some(i) => Value::Int(i),
                None => Value::Float(n.as_f64().unwrap_or(0.0)),
            },
            J::String(s) => Value::str(s.as_str()),
            J::Array(items) => Value::array(items.iter().map(Value::from).collect()),
            J::Object(map) => Value::object(
                map.iter()
                    .map(|(k, v)| (Arc::from(k.as_str()), Value::from(v)))
                    .collect(),
            ),
        }
    }
}

impl From<serde_json::Value> for Value {
    fn from(json: serde_json::Value) -> Self {
        Value::from(&json)
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::str(s)
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::str(s)
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Int(i)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}

/// The most items a range yields when it is turned into a list.
pub const MAX_RANGE_ITEMS: i64 = 1_000_000;

pub(crate) fn range_items(start: i64, end: i64) -> Vec<Value> {
    let end = end.min(start.saturating_add(MAX_RANGE_ITEMS - 1));
    (start..=end).map(Value::Int).collect()
}

/// Formats a float as Ruby's `Float#to_s`: the shortest digits that read back the same, in fixed
/// notation while the decimal exponent is in -4 < e < 16 (`7.0`, `0.0001`, `123456789012345.0`)
/// and in Ruby's scientific notation otherwise (`1.0e+16`, `1.0e-05`, `1.234567890123456e+15`).
pub fn write_float(f: f64, out: &mut String) {
    if f.is_nan() {
        out.push_str("NaN");
        return;
    }
    if f.is_infinite() {
        out.push_str(if f > 0.0 { "Infinity" } else { "-Infinity" });
        return;
    }
    // Fast path, no allocation: in Ruby's fixed range Rust's shortest form is Ruby's.
    let magnitude = f.abs();
    if (1e-4..1e15).contains(&magnitude) {
        let _ = if f.fract() == 0.0 {
            write!(out, "{f:.1}")
        } else {
            write!(out, "{f}")
        };
        return;
    }
    if f.is_sign_negative() {
        out.push('-');
    }
    let f = magnitude;
    if f == 0.0 {
        out.push_str("0.0");
        return;
    }
    // `{:e}` prints the shortest round-trip digits: "1.2345e3".
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    // The value is 0.DIGITS x 10^decpt.
    let decpt = exp + 1;
    if (-3..=15).contains(&decpt) {
        if decpt <= 0 {
            out.push_str("0.");
            for _ in 0..-decpt {
                out.push('0');
            }
            out.push_str(&digits);
        } else {
            let decpt = decpt as usize;
            if digits.len() <= decpt {
                out.push_str(&digits);
                for _ in digits.len()..decpt {
                    out.push('0');
                }
                out.push_str(".0");
            } else {
                out.push_str(&digits[..decpt]);
                out.push('.');
                out.push_str(&digits[decpt..]);
            }
        }
    } else {
        out.push_str(&digits[..1]);
        out.push('.');
        out.push_str(if digits.len() > 1 { &digits[1..] } else { "0" });
        let _ = write!(out, "e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs());
    }
}

/// Ruby's `String#inspect` for UTF-8 text: double quotes, backslash escapes for quotes,
/// backslashes, `#{`, and control characters.
fn inspect_str(s: &str, out: &mut String) {
    out.push('"');
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            '\u{8}' => out.push_str("\\b"),
            '\u{7}' => out.push_str("\\a"),
            '\u{1b}' => out.push_str("\\e"),
            '#' if matches!(chars.peek(), Some('{' | '$' | '@')) => out.push_str("\\#"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_like_ruby() {
        let render = |f: f64| Value::Float(f).to_output();
        assert_eq!(render(7.0), "7.0");
        assert_eq!(render(10.5), "10.5");
        assert_eq!(render(-0.25), "-0.25");
        assert_eq!(render(1e15), "1.0e+15");
        assert_eq!(render(1e14), "100000000000000.0");
        assert_eq!(render(123456789012345.0), "123456789012345.0");
        assert_eq!(render(1234567890123456.0), "1.234567890123456e+15");
        assert_eq!(render(1e20), "1.0e+20");
        assert_eq!(render(0.0001), "0.0001");
        assert_eq!(render(0.00001), "1.0e-05");
        assert_eq!(render(1.5e-5), "1.5e-05");
        assert_eq!(render(7e-10), "7.0e-10");
        assert_eq!(render(-0.0), "-0.0");
        assert_eq!(render(0.30000000000000004), "0.30000000000000004");
    }

    #[test]
    fn hashes_print_as_ruby_inspects_them() {
        let json = serde_json::json!({"a": [1, null, 2.5], "b\"": {"c": "x\ny"}});
        assert_eq!(
            Value::from(&json).to_output(),
            r#"{"a"=>[1, nil, 2.5], "b\""=>{"c"=>"x\ny"}}"#
        );
        let array = Value::from(&serde_json::json!(["a", 1]));
        assert_eq!(array.to_output(), "a1");
        assert_eq!(array.to_str_lossy(), r#"["a", 1]"#);
    }

    #[test]
    fn blank_and_empty_follow_ruby() {
        assert!(Value::Nil.liquid_eq(&Value::Blank));
        assert!(Value::Bool(false).liquid_eq(&Value::Blank));
        assert!(!Value::Nil.liquid_eq(&Value::Empty));
        assert!(Value::str("").liquid_eq(&Value::Empty));
        assert!(Value::str("  ").liquid_eq(&Value::Blank));
        assert!(!Value::str("  ").liquid_eq(&Value::Empty));
    }

    #[test]
    fn json_round_trip_keeps_unicode_and_order() {
        let json = serde_json::json!({"b": "김민준", "a": [1, 2.5, null]});
        let value = Value::from(&json);
        assert_eq!(value.to_json(), json);
    }
}
