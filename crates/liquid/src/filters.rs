//! Standard Liquid 5 filters and Braze's additions. Pure functions of their input and arguments
//! (plus the render's fixed "now"); an error is a message the renderer prefixes with the filter
//! name and location.

use std::sync::Arc;

use base64::Engine as _;
use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use hmac::Mac as _;
use sha2::Digest as _;

use crate::value::Value;

pub(crate) struct FilterContext {
    /// The render's fixed "now", or `None` for the clock, read only by `date` (a clock read per
    /// filter call would cost more than most filters).
    pub now: Option<DateTime<Utc>>,
}

type FResult = Result<Value, String>;

/// Every filter name the engine knows; an unknown name is a compile-time error.
pub(crate) const KNOWN: &[&str] = &[
    "abs",
    "append",
    "at_least",
    "at_most",
    "base64_decode",
    "base64_encode",
    "base64_url_safe_decode",
    "base64_url_safe_encode",
    "capitalize",
    "ceil",
    "compact",
    "concat",
    "date",
    "default",
    "divided_by",
    "downcase",
    "escape",
    "escape_once",
    "find",
    "find_index",
    "first",
    "floor",
    "h",
    "has",
    "join",
    "last",
    "lstrip",
    "map",
    "minus",
    "modulo",
    "newline_to_br",
    "plus",
    "prepend",
    "reject",
    "remove",
    "remove_first",
    "remove_last",
    "replace",
    "replace_first",
    "replace_last",
    "reverse",
    "round",
    "rstrip",
    "size",
    "slice",
    "sort",
    "sort_natural",
    "split",
    "strip",
    "strip_html",
    "strip_newlines",
    "sum",
    "times",
    "truncate",
    "truncatewords",
    "uniq",
    "upcase",
    "url_decode",
    "url_encode",
    "where",
    // Braze
    "json_escape",
    "url_escape",
    "url_param_escape",
    "md5",
    "sha1",
    "sha2",
    "hmac_sha1",
    "hmac_sha1_hex",
    "hmac_sha1_base64",
    "hmac_sha256",
    "hmac_sha256_hex",
    "hmac_sha256_base64",
    "hmac_sha512",
    "property_accessor",
    "number_with_delimiter",
    "json_parse",
    "as_json_string",
    "money",
];

pub(crate) fn is_known(name: &str) -> bool {
    KNOWN.contains(&name)
}

fn arity(args: &[Value], min: usize, max: usize) -> Result<(), String> {
    if args.len() < min {
        return Err(format!(
            "expected at least {min} argument(s), got {}",
            args.len()
        ));
    }
    if args.len() > max {
        return Err(format!(
            "expected at most {max} argument(s), got {}",
            args.len()
        ));
    }
    Ok(())
}

fn arg(args: &[Value], i: usize) -> Value {
    args.get(i).cloned().unwrap_or_default()
}

/// A number from a value, as Ruby Liquid's `Utils.to_number` (non-numeric strings are 0).
fn to_number(v: &Value) -> Value {
    match v {
        Value::Int(_) | Value::Float(_) => v.clone(),
        Value::Str(s) => parse_number(s).unwrap_or(Value::Int(0)),
        _ => Value::Int(0),
    }
}

/// Ruby Liquid's `Utils.to_number` of a string: `-?\d+\.\d+` is a (decimal) float, anything
/// else is Ruby's `String#to_i` (leading whitespace, a sign, digits with single underscores; the
/// rest ignored), so "1_000" is 1000, "10abc" is 10, "1e3" is 1 and "abc" is 0.
fn parse_number(s: &str) -> Option<Value> {
    let b = s.as_bytes();
    let digits = |from: usize| b[from..].iter().take_while(|c| c.is_ascii_digit()).count();
    let sign = usize::from(b.first() == Some(&b'-'));
    let int = digits(sign);
    if int > 0 && b.get(sign + int) == Some(&b'.') {
        let frac = digits(sign + int + 1);
        if frac > 0 && sign + int + 1 + frac == b.len() {
            return s.parse::<f64>().ok().map(Value::Float);
        }
    }
    Some(ruby_to_i(s))
}

/// Ruby's `String#to_i`.
fn ruby_to_i(s: &str) -> Value {
    let t = s.trim_start();
    let (negative, rest) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let mut text = String::new();
    let mut last_was_digit = false;
    for c in rest.chars() {
        if c.is_ascii_digit() {
            text.push(c);
            last_was_digit = true;
        } else if c == '_' && last_was_digit {
            last_was_digit = false;
        } else {
            break;
        }
    }
    if text.is_empty() {
        return Value::Int(0);
    }
    let signed = if negative { format!("-{text}") } else { text };
    match signed.parse::<i64>() {
        Ok(i) => Value::Int(i),
        Err(_) => Value::Float(signed.parse::<f64>().unwrap_or(0.0)),
    }
}

/// A number argument that must look like one (strict arithmetic filters).
fn strict_number(v: &Value) -> Result<Value, String> {
    match v {
        Value::Int(_) | Value::Float(_) => Ok(v.clone()),
        Value::Str(s) => parse_number(s).ok_or_else(|| format!("'{s}' is not a number")),
        Value::Nil => Err("argument is undefined; expected a number".into()),
        other => Err(format!("expected a number, got {}", other.type_name())),
    }
}

fn as_f64(v: &Value) -> f64 {
    match v {
        Value::Int(i) => *i as f64,
        Value::Float(f) => *f,
        _ => 0.0,
    }
}

/// An exact decimal, `mantissa x 10^-scale`: how Ruby Liquid (BigDecimal) computes with floats.
/// A float becomes the decimal of its shortest printed form (0.1 is exactly 0.1).
#[derive(Debug, Clone, Copy)]
struct Decimal {
    mantissa: i128,
    scale: u32,
}

impl Decimal {
    /// `None` for values too large or too precise for an i128 mantissa (the caller uses f64).
    fn of(v: &Value) -> Option<Decimal> {
        match v {
            Value::Int(i) => Some(Decimal {
                mantissa: i128::from(*i),
                scale: 0,
            }),
            Value::Float(f) if f.is_finite() => {
                let text = format!("{f}");
                let (sign, digits) = match text.strip_prefix('-') {
                    Some(rest) => (-1, rest),
                    None => (1, text.as_str()),
                };
                let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
                let scale = u32::try_from(frac.len()).ok().filter(|s| *s <= 30)?;
                let mut mantissa: i128 = 0;
                for c in int.chars().chain(frac.chars()) {
                    let d = i128::from(c.to_digit(10)?);
                    mantissa = mantissa.checked_mul(10)?.checked_add(d)?;
                }
                Some(Decimal {
                    mantissa: sign * mantissa,
                    scale,
                })
            }
            _ => None,
        }
    }

    fn rescale(self, scale: u32) -> Option<i128> {
        self.mantissa
            .checked_mul(10i128.checked_pow(scale.checked_sub(self.scale)?)?)
    }

    fn neg(self) -> Option<Decimal> {
        Some(Decimal {
            mantissa: self.mantissa.checked_neg()?,
            scale: self.scale,
        })
    }

    fn add(self, other: Decimal) -> Option<Decimal> {
        let scale = self.scale.max(other.scale);
        Some(Decimal {
            mantissa: self.rescale(scale)?.checked_add(other.rescale(scale)?)?,
            scale,
        })
    }

    fn mul(self, other: Decimal) -> Option<Decimal> {
        let scale = self.scale + other.scale;
        if scale > 60 {
            return None;
        }
        Some(Decimal {
            mantissa: self.mantissa.checked_mul(other.mantissa)?,
            scale,
        })
    }

    /// Ruby's `%`: the remainder takes the divisor's sign. `None` for a zero divisor too.
    fn rem_floor(self, other: Decimal) -> Option<Decimal> {
        let scale = self.scale.max(other.scale);
        let (x, y) = (self.rescale(scale)?, other.rescale(scale)?);
        let r = x.checked_rem(y)?;
        let r = if r != 0 && ((r < 0) != (y < 0)) {
            r + y
        } else {
            r
        };
        Some(Decimal { mantissa: r, scale })
    }

    /// Rounds half away from zero to `places` decimal places (BigDecimal's default mode).
    fn round(self, places: i64) -> Option<Decimal> {
        let drop = i64::from(self.scale) - places;
        if drop <= 0 {
            return Some(self);
        }
        let factor = 10i128.checked_pow(u32::try_from(drop).ok()?)?;
        let q = self.mantissa / factor;
        let r = self.mantissa % factor;
        let q = if r.checked_abs()?.checked_mul(2)? >= factor {
            q + self.mantissa.signum()
        } else {
            q
        };
        if places >= 0 {
            Some(Decimal {
                mantissa: q,
                scale: u32::try_from(places).ok()?,
            })
        } else {
            Some(Decimal {
                mantissa: q.checked_mul(10i128.checked_pow(u32::try_from(-places).ok()?)?)?,
                scale: 0,
            })
        }
    }

    fn to_f64(self) -> f64 {
        format!("{}e-{}", self.mantissa, self.scale)
            .parse()
            .unwrap_or(f64::NAN)
    }
}

/// Ruby Liquid's `round`: an integer for 0 places (and for integer input), else a float rounded
/// in decimal (2.675 rounds to 2.68, as BigDecimal does, not 2.67 as binary floats would).
fn round_number(n: &Value, digits: i64) -> Value {
    match n {
        Value::Int(i) if digits >= 0 => Value::Int(*i),
        Value::Int(i) => {
            let factor = 10i128.checked_pow(u32::try_from(-digits).unwrap_or(u32::MAX));
            match factor {
                Some(f) => {
                    let v = i128::from(*i);
                    let q = v / f;
                    let q = if (v % f).abs() * 2 >= f {
                        q + v.signum()
                    } else {
                        q
                    };
                    i64::try_from(q * f).map_or(Value::Int(0), Value::Int)
                }
                None => Value::Int(0),
            }
        }
        Value::Float(f) if !f.is_finite() => Value::Float(*f),
        other => {
            let rounded = Decimal::of(other).and_then(|d| d.round(digits));
            let f = match rounded {
                Some(d) => d.to_f64(),
                None => {
                    let factor = 10f64.powi(digits as i32);
                    (as_f64(other) * factor).round() / factor
                }
            };
            // golden-liquid: no decimal places (or negative places) give an integer.
            if digits <= 0 {
                if f.is_finite() && f.abs() < 9.2e18 {
                    Value::Int(f as i64)
                } else {
                    Value::Float(f)
                }
            } else {
                Value::Float(f)
            }
        }
    }
}

/// Ruby Liquid's `Utils.to_integer`: `Integer(x.to_s)`, which allows single underscores between
/// digits and refuses floats (golden-liquid: `slice: 2.2` is an error).
fn to_int(v: &Value) -> Result<i64, String> {
    match v {
        Value::Int(i) => Ok(*i),
        Value::Str(s) => {
            let t = s.trim();
            let digits_ok = !t.starts_with('_') && !t.ends_with('_') && !t.contains("__");
            t.replace('_', "")
                .parse::<i64>()
                .ok()
                .filter(|_| digits_ok)
                .ok_or_else(|| format!("'{s}' is not an integer"))
        }
        Value::Nil => Err("argument is undefined; expected an integer".into()),
        other => Err(format!("expected an integer, got {}", other.type_name())),
    }
}

fn arith(
    a: &Value,
    b: &Value,
    int_op: fn(i64, i64) -> Option<i64>,
    float_op: fn(f64, f64) -> f64,
) -> Value {
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => int_op(*x, *y)
            .map(Value::Int)
            .unwrap_or_else(|| Value::Float(float_op(*x as f64, *y as f64))),
        _ => Value::Float(float_op(as_f64(a), as_f64(b))),
    }
}

/// Flattens nested arrays, as Ruby's `Array#flatten` which many array filters apply.
fn flatten(items: &[Value], out: &mut Vec<Value>) {
    for item in items {
        match item {
            Value::Array(inner) => flatten(inner, out),
            other => out.push(other.clone()),
        }
    }
}

fn input_items(v: &Value) -> Vec<Value> {
    match v {
        Value::Array(a) => {
            let mut out = Vec::with_capacity(a.len());
            flatten(a, &mut out);
            out
        }
        Value::Range(a, b) => crate::value::range_items(*a, *b),
        Value::Nil => Vec::new(),
        other => vec![other.clone()],
    }
}

fn str_of(v: &Value) -> String {
    v.to_str_lossy().into_owned()
}

fn kw<'a>(kwargs: &'a [(Arc<str>, Value)], name: &str) -> Option<&'a Value> {
    kwargs
        .iter()
        .find(|(k, _)| k.as_ref() == name)
        .map(|(_, v)| v)
}

pub(crate) fn apply(
    name: &str,
    input: Value,
    args: &[Value],
    kwargs: &[(Arc<str>, Value)],
    ctx: &FilterContext,
) -> FResult {
    match name {
        // ---- strings ----
        "append" => {
            arity(args, 1, 1)?;
            Ok(Value::str(format!(
                "{}{}",
                input.to_str_lossy(),
                args[0].to_str_lossy()
            )))
        }
        "prepend" => {
            arity(args, 1, 1)?;
            Ok(Value::str(format!(
                "{}{}",
                args[0].to_str_lossy(),
                input.to_str_lossy()
            )))
        }
        "capitalize" => {
            arity(args, 0, 0)?;
            let s = str_of(&input);
            let mut chars = s.chars();
            Ok(Value::str(match chars.next() {
                Some(c) => c.to_uppercase().collect::<String>() + &chars.as_str().to_lowercase(),
                None => String::new(),
            }))
        }
        "downcase" => {
            arity(args, 0, 0)?;
            Ok(Value::str(input.to_str_lossy().to_lowercase()))
        }
        "upcase" => {
            arity(args, 0, 0)?;
            Ok(Value::str(input.to_str_lossy().to_uppercase()))
        }
        "escape" | "h" => {
            arity(args, 0, 0)?;
            if input.is_nil() {
                return Ok(Value::Nil);
            }
            Ok(Value::str(html_escape(&input.to_str_lossy())))
        }
        "escape_once" => {
            arity(args, 0, 0)?;
            Ok(Value::str(escape_once(&input.to_str_lossy())))
        }
        "lstrip" => {
            arity(args, 0, 0)?;
            Ok(Value::str(input.to_str_lossy().trim_start()))
        }
        "rstrip" => {
            arity(args, 0, 0)?;
            Ok(Value::str(input.to_str_lossy().trim_end()))
        }
        "strip" => {
            arity(args, 0, 0)?;
            Ok(Value::str(input.to_str_lossy().trim()))
        }
        "strip_newlines" => {
            arity(args, 0, 0)?;
            Ok(Value::str(
                input.to_str_lossy().replace("\r\n", "").replace('\n', ""),
            ))
        }
        "newline_to_br" => {
            arity(args, 0, 0)?;
            Ok(Value::str(
                input
                    .to_str_lossy()
                    .replace("\r\n", "\n")
                    .replace('\n', "<br />\n"),
            ))
        }
        "strip_html" => {
            arity(args, 0, 0)?;
            Ok(Value::str(strip_html(&input.to_str_lossy())))
        }
        "remove" => {
            arity(args, 1, 1)?;
            Ok(Value::str(
                input
                    .to_str_lossy()
                    .replace(args[0].to_str_lossy().as_ref(), ""),
            ))
        }
        "remove_first" => {
            arity(args, 1, 1)?;
            Ok(Value::str(input.to_str_lossy().replacen(
                args[0].to_str_lossy().as_ref(),
                "",
                1,
            )))
        }
        "remove_last" => {
            arity(args, 1, 1)?;
            Ok(Value::str(replace_last(
                &input.to_str_lossy(),
                &args[0].to_str_lossy(),
                "",
            )))
        }
        "replace" => {
            arity(args, 1, 2)?;
            let s = input.to_str_lossy();
            Ok(Value::str(s.replace(
                args[0].to_str_lossy().as_ref(),
                arg(args, 1).to_str_lossy().as_ref(),
            )))
        }
        "replace_first" => {
            arity(args, 1, 2)?;
            let s = input.to_str_lossy();
            Ok(Value::str(s.replacen(
                args[0].to_str_lossy().as_ref(),
                arg(args, 1).to_str_lossy().as_ref(),
                1,
            )))
        }
        "replace_last" => {
            arity(args, 2, 2)?;
            Ok(Value::str(replace_last(
                &input.to_str_lossy(),
                &args[0].to_str_lossy(),
                &args[1].to_str_lossy(),
            )))
        }
        "slice" => {
            arity(args, 1, 2)?;
            let start = to_int(&args[0])?;
            let len = match args.get(1) {
                // Ruby: `length ? to_integer(length) : 1`.
                Some(Value::Nil | Value::Bool(false)) | None => 1,
                Some(v) => to_int(v)?,
            };
            match &input {
                Value::Array(a) => Ok(Value::array(
                    slice_range(a.len(), start, len)
                        .map(|r| a[r].to_vec())
                        .unwrap_or_default(),
                )),
                other => {
                    let chars: Vec<char> = other.to_str_lossy().chars().collect();
                    Ok(Value::str(
                        slice_range(chars.len(), start, len)
                            .map(|r| chars[r].iter().collect::<String>())
                            .unwrap_or_default(),
                    ))
                }
            }
        }
        "split" => {
            arity(args, 1, 1)?;
            let s = str_of(&input);
            let sep = match &args[0] {
                Value::Nil => String::new(),
                other => str_of(other),
            };
            if s.is_empty() {
                return Ok(Value::array(Vec::new()));
            }
            let parts: Vec<Value> = if sep.is_empty() {
                s.chars().map(|c| Value::str(c.to_string())).collect()
            } else if sep == " " {
                s.split_whitespace().map(Value::str).collect()
            } else {
                let mut parts: Vec<&str> = s.split(sep.as_str()).collect();
                // Ruby's String#split drops trailing empty strings.
                while parts.last() == Some(&"") {
                    parts.pop();
                }
                parts.into_iter().map(Value::str).collect()
            };
            Ok(Value::array(parts))
        }
        "truncate" => {
            arity(args, 0, 2)?;
            if input.is_nil() {
                return Ok(Value::Nil);
            }
            let length = match args.first() {
                Some(v) => to_int(v)?,
                None => 50,
            };
            let ellipsis = match args.get(1) {
                Some(v) => str_of(v),
                None => "...".to_string(),
            };
            let s = str_of(&input);
            let chars: Vec<char> = s.chars().collect();
            if chars.len() as i64 <= length {
                return Ok(Value::str(s));
            }
            let keep = (length - ellipsis.chars().count() as i64).max(0) as usize;
            Ok(Value::str(
                chars[..keep.min(chars.len())].iter().collect::<String>() + &ellipsis,
            ))
        }
        "truncatewords" => {
            arity(args, 0, 2)?;
            if input.is_nil() {
                return Ok(Value::Nil);
            }
            let words_n = match args.first() {
                Some(v) => to_int(v)?,
                None => 15,
            }
            .max(1) as usize;
            let ellipsis = match args.get(1) {
                Some(v) => str_of(v),
                None => "...".to_string(),
            };
            let s = str_of(&input);
            // Ruby: input.split(" ", words + 1); a trailing remainder counts even when empty.
            let mut words: Vec<&str> = Vec::new();
            let mut rest = s.trim_start();
            while !rest.is_empty() || words.len() == words_n {
                if words.len() == words_n {
                    words.push(rest);
                    break;
                }
                let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
                words.push(&rest[..end]);
                let after = &rest[end..];
                if after.is_empty() {
                    break;
                }
                rest = after.trim_start();
            }
            if words.len() <= words_n {
                return Ok(Value::str(s));
            }
            Ok(Value::str(words[..words_n].join(" ") + &ellipsis))
        }
        "url_encode" => {
            arity(args, 0, 0)?;
            if input.is_nil() {
                return Ok(Value::Nil);
            }
            Ok(Value::str(form_urlencode(&input.to_str_lossy())))
        }
        "url_decode" => {
            arity(args, 0, 0)?;
            let s = str_of(&input).replace('+', " ");
            Ok(Value::str(
                percent_encoding::percent_decode_str(&s)
                    .decode_utf8_lossy()
                    .into_owned(),
            ))
        }
        "base64_encode" => {
            arity(args, 0, 0)?;
            Ok(Value::str(
                base64::engine::general_purpose::STANDARD.encode(str_of(&input)),
            ))
        }
        "base64_url_safe_encode" => {
            arity(args, 0, 0)?;
            Ok(Value::str(
                base64::engine::general_purpose::URL_SAFE.encode(str_of(&input)),
            ))
        }
        "base64_decode" | "base64_url_safe_decode" => {
            arity(args, 0, 0)?;
            let s = str_of(&input);
            let engine = if name == "base64_decode" {
                &base64::engine::general_purpose::STANDARD
            } else {
                &base64::engine::general_purpose::URL_SAFE
            };
            let bytes = engine
                .decode(s.as_bytes())
                .map_err(|e| format!("invalid base64: {e}"))?;
            let text = String::from_utf8(bytes)
                .map_err(|_| "the decoded bytes are not UTF-8 text".to_string())?;
            Ok(Value::str(text))
        }

        // ---- numbers ----
        "abs" => {
            arity(args, 0, 0)?;
            Ok(match to_number(&input) {
                Value::Int(i) => Value::Int(i.saturating_abs()),
                Value::Float(f) => Value::Float(f.abs()),
                other => other,
            })
        }
        "ceil" | "floor" => {
            arity(args, 0, 0)?;
            let n = as_f64(&to_number(&input));
            Ok(Value::Int(
                if name == "ceil" { n.ceil() } else { n.floor() } as i64,
            ))
        }
        "round" => {
            arity(args, 0, 1)?;
            let n = to_number(&input);
            // Ruby truncates a float number of digits (`round: 1.5` rounds to 1 place).
            let digits = match args.first().map(to_number) {
                Some(Value::Int(d)) => d,
                Some(Value::Float(d)) if d.is_finite() => d as i64,
                _ => 0,
            }
            .clamp(-30, 30);
            Ok(round_number(&n, digits))
        }
        "plus" | "minus" | "times" => {
            arity(args, 1, 1)?;
            let a = to_number(&input);
            let b = to_number(&args[0]);
            // Ruby Liquid computes with floats as BigDecimal: 10.1 - 2.2 is 7.9, not 7.8999999999999995.
            if matches!((&a, &b), (Value::Int(_), Value::Int(_))) {
                return Ok(match name {
                    "plus" => arith(&a, &b, i64::checked_add, |x, y| x + y),
                    "minus" => arith(&a, &b, i64::checked_sub, |x, y| x - y),
                    _ => arith(&a, &b, i64::checked_mul, |x, y| x * y),
                });
            }
            let exact = match name {
                "plus" => Decimal::of(&a)
                    .zip(Decimal::of(&b))
                    .and_then(|(x, y)| x.add(y)),
                "minus" => Decimal::of(&a)
                    .zip(Decimal::of(&b))
                    .and_then(|(x, y)| x.add(y.neg()?)),
                _ => Decimal::of(&a)
                    .zip(Decimal::of(&b))
                    .and_then(|(x, y)| x.mul(y)),
            };
            Ok(match exact {
                // A zero keeps the sign IEEE gives it (-2.5 times 0 is -0.0, as BigDecimal's).
                Some(d) if d.mantissa == 0 && name == "times" => {
                    Value::Float(as_f64(&a) * as_f64(&b))
                }
                Some(d) => Value::Float(d.to_f64()),
                None => match name {
                    "plus" => arith(&a, &b, i64::checked_add, |x, y| x + y),
                    "minus" => arith(&a, &b, i64::checked_sub, |x, y| x - y),
                    _ => arith(&a, &b, i64::checked_mul, |x, y| x * y),
                },
            })
        }
        "divided_by" => {
            arity(args, 1, 1)?;
            let a = to_number(&input);
            let b = strict_number(&args[0])?;
            match (&a, &b) {
                (_, Value::Int(0)) => Err("divided by 0".into()),
                (Value::Int(x), Value::Int(y)) => {
                    // Ruby integer division floors.
                    let q = x.checked_div(*y).ok_or("integer overflow")?;
                    Ok(Value::Int(if x % y != 0 && ((*x < 0) != (*y < 0)) {
                        q - 1
                    } else {
                        q
                    }))
                }
                _ => Ok(Value::Float(as_f64(&a) / as_f64(&b))),
            }
        }
        "modulo" => {
            arity(args, 1, 1)?;
            let a = to_number(&input);
            let b = strict_number(&args[0])?;
            match (&a, &b) {
                (_, Value::Int(0)) => Err("modulo by 0".into()),
                (Value::Int(x), Value::Int(y)) => {
                    // Ruby's modulo takes the sign of the divisor.
                    let r = x.checked_rem(*y).ok_or("integer overflow")?;
                    Ok(Value::Int(if r != 0 && ((r < 0) != (*y < 0)) {
                        r + y
                    } else {
                        r
                    }))
                }
                _ => {
                    if let Some(d) = Decimal::of(&a)
                        .zip(Decimal::of(&b))
                        .and_then(|(x, y)| x.rem_floor(y))
                    {
                        return Ok(Value::Float(d.to_f64()));
                    }
                    let (x, y) = (as_f64(&a), as_f64(&b));
                    if y == 0.0 {
                        return Err("modulo by 0".into());
                    }
                    Ok(Value::Float(x - y * (x / y).floor()))
                }
            }
        }
        "at_least" | "at_most" => {
            arity(args, 1, 1)?;
            let a = to_number(&input);
            let b = to_number(&args[0]);
            let pick_b = if name == "at_least" {
                as_f64(&b) > as_f64(&a)
            } else {
                as_f64(&b) < as_f64(&a)
            };
            Ok(if pick_b { b } else { a })
        }
        "money" => {
            arity(args, 0, 0)?;
            // Braze's money does not shift decimals: 145 renders 145.00.
            let n = as_f64(&to_number(&input));
            Ok(Value::str(with_delimiter(&format!("{n:.2}"))))
        }
        "number_with_delimiter" => {
            arity(args, 0, 0)?;
            let n = to_number(&input);
            Ok(Value::str(with_delimiter(&n.to_output())))
        }

        // ---- arrays ----
        "size" => {
            arity(args, 0, 0)?;
            Ok(Value::Int(match &input {
                Value::Str(s) => s.chars().count() as i64,
                Value::Array(a) => a.len() as i64,
                Value::Object(o) => o.len() as i64,
                Value::Range(a, b) => (b - a + 1).max(0),
                _ => 0,
            }))
        }
        "first" | "last" => {
            arity(args, 0, 0)?;
            Ok(match &input {
                Value::Array(a) => if name == "first" { a.first() } else { a.last() }
                    .cloned()
                    .unwrap_or_default(),
                Value::Range(a, b) => Value::Int(if name == "first" { *a } else { *b }),
                // Ruby's Hash#first is the first [key, value] pair; a hash has no `last`.
                Value::Object(o) if name == "first" => o
                    .first()
                    .map(|(k, v)| Value::array(vec![Value::Str(k.clone()), v.clone()]))
                    .unwrap_or_default(),
                // Ruby's String has no `first`/`last`: nil, as python-liquid.
                _ => Value::Nil,
            })
        }
        "join" => {
            arity(args, 0, 1)?;
            let sep = match args.first() {
                Some(v) => str_of(v),
                None => " ".into(),
            };
            // Ruby joins whatever its InputIterator makes of the input: a number is one item.
            let items = match &input {
                Value::Object(_) => vec![input.clone()],
                other => input_items(other),
            };
            Ok(Value::str(
                items
                    .iter()
                    .map(|v| v.to_str_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join(&sep),
            ))
        }
        "reverse" => {
            arity(args, 0, 0)?;
            let mut items = input_items(&input);
            items.reverse();
            Ok(Value::array(items))
        }
        "compact" => {
            arity(args, 0, 1)?;
            let items = input_items(&input);
            Ok(Value::array(match args.first() {
                Some(p) if !p.is_nil() => {
                    let key = str_of(p);
                    items
                        .into_iter()
                        .filter(|i| !i.get_key(&key).unwrap_or_default().is_nil())
                        .collect()
                }
                _ => items.into_iter().filter(|i| !i.is_nil()).collect(),
            }))
        }
        "concat" => {
            arity(args, 1, 1)?;
            // Ruby wants an array (`to_ary`): a range is an error, as in python-liquid.
            let Some(extra) = args[0]
                .to_items()
                .filter(|_| matches!(args[0], Value::Array(_)))
            else {
                return Err(format!(
                    "expected an array argument, got {}",
                    args[0].type_name()
                ));
            };
            let mut items = input_items(&input);
            let mut flat = Vec::new();
            flatten(&extra, &mut flat);
            items.extend(flat);
            Ok(Value::array(items))
        }
        "uniq" => {
            arity(args, 0, 1)?;
            let items = input_items(&input);
            let key = args.first().filter(|v| !v.is_nil()).map(str_of);
            let mut seen: Vec<Value> = Vec::new();
            let mut out = Vec::new();
            for item in items {
                let probe = match &key {
                    Some(k) => item.get_key(k).unwrap_or_default(),
                    None => item.clone(),
                };
                if !seen.iter().any(|s| s.liquid_eq(&probe)) {
                    seen.push(probe);
                    out.push(item);
                }
            }
            Ok(Value::array(out))
        }
        "map" => {
            arity(args, 1, 1)?;
            let key = match &args[0] {
                Value::Nil => return Ok(Value::array(Vec::new())),
                other => str_of(other),
            };
            match &input {
                Value::Object(o) => Ok(o.get(key.as_str()).cloned().unwrap_or_default()),
                Value::Array(_) | Value::Str(_) => {
                    let mut out = Vec::new();
                    for item in input_items(&input) {
                        match &item {
                            Value::Object(o) => {
                                out.push(o.get(key.as_str()).cloned().unwrap_or_default())
                            }
                            Value::Nil => out.push(Value::Nil),
                            // Ruby's String#[] with a string: the substring if present, else nil.
                            Value::Str(text) => out.push(if text.contains(key.as_str()) {
                                Value::str(key.as_str())
                            } else {
                                Value::Nil
                            }),
                            other => {
                                return Err(format!(
                                    "cannot read '{key}' of {}",
                                    other.type_name()
                                ));
                            }
                        }
                    }
                    Ok(Value::array(out))
                }
                Value::Nil => Ok(Value::array(Vec::new())),
                other => Err(format!("cannot map over {}", other.type_name())),
            }
        }
        "sort" | "sort_natural" => {
            arity(args, 0, 1)?;
            let mut items = match &input {
                Value::Object(_) => vec![input.clone()],
                other => input_items(other),
            };
            let key = args.first().filter(|v| !v.is_nil()).map(str_of);
            let natural = name == "sort_natural";
            let probe = |v: &Value| -> Value {
                match &key {
                    Some(k) => v.get_key(k).unwrap_or_default(),
                    None => v.clone(),
                }
            };
            if natural {
                items.sort_by(|a, b| {
                    let (pa, pb) = (probe(a), probe(b));
                    match (pa.is_nil(), pb.is_nil()) {
                        (true, true) => std::cmp::Ordering::Equal,
                        (true, false) => std::cmp::Ordering::Greater,
                        (false, true) => std::cmp::Ordering::Less,
                        _ => pa
                            .to_output()
                            .to_lowercase()
                            .cmp(&pb.to_output().to_lowercase()),
                    }
                });
                return Ok(Value::array(items));
            }
            let mut failed = false;
            items.sort_by(|a, b| {
                let (pa, pb) = (probe(a), probe(b));
                match (pa.is_nil(), pb.is_nil()) {
                    (true, true) => std::cmp::Ordering::Equal,
                    (true, false) => std::cmp::Ordering::Greater,
                    (false, true) => std::cmp::Ordering::Less,
                    _ => pa.liquid_cmp(&pb).unwrap_or_else(|| {
                        failed = true;
                        std::cmp::Ordering::Equal
                    }),
                }
            });
            if failed {
                return Err("cannot compare the items of this array".into());
            }
            Ok(Value::array(items))
        }
        "where" => {
            arity(args, 1, 2)?;
            let key = str_of(&args[0]);
            if !matches!(input, Value::Array(_) | Value::Object(_) | Value::Nil) {
                return Err(format!("expected an array, got {}", input.type_name()));
            }
            let items = input_items(&input);
            let target = args.get(1);
            Ok(Value::array(
                items
                    .into_iter()
                    .filter(|item| {
                        let v = item.get_key(&key).unwrap_or_default();
                        match target {
                            Some(t) if !t.is_nil() => v.liquid_eq(t),
                            _ => v.is_truthy(),
                        }
                    })
                    .collect(),
            ))
        }
        "reject" | "find" | "find_index" | "has" => array_predicate(name, &input, args),
        "sum" => {
            arity(args, 0, 1)?;
            let items = input_items(&input);
            let key = args.first().filter(|v| !v.is_nil()).map(str_of);
            let mut total = Value::Int(0);
            for item in items {
                let v = match &key {
                    Some(k) => match &item {
                        Value::Object(o) => o.get(k.as_str()).cloned().unwrap_or_default(),
                        _ => return Err(format!("cannot read '{k}' of {}", item.type_name())),
                    },
                    None => item,
                };
                let n = match &v {
                    Value::Int(_) | Value::Float(_) => v.clone(),
                    Value::Str(s) => parse_number(s).unwrap_or(Value::Int(0)),
                    _ => Value::Int(0),
                };
                total = arith(&total, &n, i64::checked_add, |x, y| x + y);
            }
            Ok(total)
        }

        // ---- misc ----
        "default" => {
            arity(args, 0, 1)?;
            let allow_false = kw(kwargs, "allow_false").is_some_and(Value::is_truthy);
            let use_default = match &input {
                Value::Bool(false) => !allow_false,
                Value::Nil => true,
                other => other.is_empty_like(),
            };
            Ok(if use_default { arg(args, 0) } else { input })
        }
        "date" => {
            arity(args, 0, 1)?;
            let format = match args.first() {
                Some(Value::Nil) | None => return Ok(input),
                Some(f) => str_of(f),
            };
            if format.is_empty() {
                return Ok(input);
            }
            match to_datetime(&input, ctx.now.unwrap_or_else(Utc::now)) {
                Some(dt) => Ok(Value::str(strftime(&dt, &format))),
                None => Ok(input),
            }
        }

        // ---- Braze ----
        "json_escape" => {
            arity(args, 0, 0)?;
            let s = serde_json::Value::String(str_of(&input)).to_string();
            Ok(Value::str(&s[1..s.len() - 1]))
        }
        "url_escape" => {
            arity(args, 0, 0)?;
            Ok(Value::str(
                percent_encoding::utf8_percent_encode(&str_of(&input), URL_ESCAPE).to_string(),
            ))
        }
        "url_param_escape" => {
            arity(args, 0, 0)?;
            Ok(Value::str(
                percent_encoding::utf8_percent_encode(&str_of(&input), URL_PARAM_ESCAPE)
                    .to_string(),
            ))
        }
        "md5" => {
            arity(args, 0, 0)?;
            Ok(Value::str(hex(&md5::Md5::digest(
                str_of(&input).as_bytes(),
            ))))
        }
        "sha1" => {
            arity(args, 0, 0)?;
            Ok(Value::str(hex(&sha1::Sha1::digest(
                str_of(&input).as_bytes(),
            ))))
        }
        "sha2" => {
            arity(args, 0, 0)?;
            Ok(Value::str(hex(&sha2::Sha256::digest(
                str_of(&input).as_bytes(),
            ))))
        }
        "hmac_sha1" | "hmac_sha1_hex" | "hmac_sha1_base64" | "hmac_sha256" | "hmac_sha256_hex"
        | "hmac_sha256_base64" | "hmac_sha512" => {
            arity(args, 1, 1)?;
            let key = str_of(&args[0]);
            let msg = str_of(&input);
            let mac = match name {
                "hmac_sha1" | "hmac_sha1_hex" | "hmac_sha1_base64" => {
                    let mut m = hmac::Hmac::<sha1::Sha1>::new_from_slice(key.as_bytes())
                        .map_err(|e| e.to_string())?;
                    m.update(msg.as_bytes());
                    m.finalize().into_bytes().to_vec()
                }
                "hmac_sha512" => {
                    let mut m = hmac::Hmac::<sha2::Sha512>::new_from_slice(key.as_bytes())
                        .map_err(|e| e.to_string())?;
                    m.update(msg.as_bytes());
                    m.finalize().into_bytes().to_vec()
                }
                _ => {
                    let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes())
                        .map_err(|e| e.to_string())?;
                    m.update(msg.as_bytes());
                    m.finalize().into_bytes().to_vec()
                }
            };
            Ok(Value::str(if name.ends_with("_base64") {
                base64::engine::general_purpose::STANDARD.encode(mac)
            } else {
                hex(&mac)
            }))
        }
        "property_accessor" => {
            arity(args, 1, 1)?;
            Ok(input.get_key(&str_of(&args[0])).unwrap_or_default())
        }
        "json_parse" => {
            arity(args, 0, 0)?;
            let s = str_of(&input);
            let json: serde_json::Value =
                serde_json::from_str(&s).map_err(|e| format!("not valid JSON ({e})"))?;
            Ok(Value::from(&json))
        }
        "as_json_string" => {
            arity(args, 0, 0)?;
            Ok(Value::str(input.to_json_string()))
        }
        other => Err(format!("unknown filter '{other}'")),
    }
}

/// `reject`, `find`, `find_index` and `has`: Liquid 5.6's property-or-value predicates.
fn array_predicate(name: &str, input: &Value, args: &[Value]) -> FResult {
    arity(args, 1, 2)?;
    let items = match input {
        Value::Object(_) => vec![input.clone()],
        Value::Str(_) if name != "reject" => vec![input.clone()],
        _ => input_items(input),
    };
    let key = &args[0];
    let target = args.get(1);
    let matches = |item: &Value| -> Result<Option<bool>, String> {
        match item {
            Value::Object(o) => {
                let k = key.to_output();
                let v = o.get(k.as_str());
                Ok(Some(match target {
                    Some(t) if !t.is_nil() => v.is_some_and(|v| v.liquid_eq(t)),
                    _ => v.is_some_and(Value::is_truthy),
                }))
            }
            Value::Str(s) => match key {
                Value::Str(k) if target.is_none() || target.is_some_and(|t| t.liquid_eq(key)) => {
                    Ok(Some(s.contains(k.as_ref())))
                }
                Value::Str(_) => Ok(Some(false)),
                Value::Nil => Ok(Some(false)),
                _ => Ok(Some(false)),
            },
            Value::Nil => Ok(None),
            other => {
                if target.is_none() {
                    match key {
                        Value::Str(_) => Err(format!(
                            "cannot match a string against {}",
                            other.type_name()
                        )),
                        k => Ok(Some(other.liquid_eq(k))),
                    }
                } else {
                    Ok(Some(false))
                }
            }
        }
    };
    match name {
        "reject" => {
            if key.is_nil() {
                return Ok(Value::array(Vec::new()));
            }
            let mut out = Vec::new();
            for item in items {
                match matches(&item)? {
                    Some(true) => {}
                    Some(false) => out.push(item),
                    None => return Ok(Value::Nil),
                }
            }
            Ok(Value::array(out))
        }
        "find" | "find_index" => {
            for (i, item) in items.iter().enumerate() {
                match matches(item)? {
                    Some(true) => {
                        return Ok(if name == "find" {
                            item.clone()
                        } else {
                            Value::Int(i as i64)
                        });
                    }
                    Some(false) => {}
                    None => return Ok(Value::Nil),
                }
            }
            Ok(Value::Nil)
        }
        _ => {
            if key.is_nil() || matches!(key, Value::Bool(false)) {
                return Ok(Value::Bool(false));
            }
            for item in &items {
                match matches(item)? {
                    Some(true) => return Ok(Value::Bool(true)),
                    Some(false) => {}
                    None => return Ok(Value::Nil),
                }
            }
            Ok(Value::Bool(false))
        }
    }
}

fn slice_range(len: usize, start: i64, length: i64) -> Option<std::ops::Range<usize>> {
    let len = len as i64;
    let start = if start < 0 { len + start } else { start };
    if start < 0 || start >= len || length <= 0 {
        return None;
    }
    let end = (start + length).min(len);
    Some(start as usize..end as usize)
}

fn replace_last(s: &str, pat: &str, with: &str) -> String {
    match s.rfind(pat) {
        Some(i) => format!("{}{}{}", &s[..i], with, &s[i + pat.len()..]),
        None => s.to_string(),
    }
}

fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn escape_once(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(c) = rest.chars().next() {
        if c == '&' {
            let entity_len = rest[1..].find(';').filter(|&n| {
                n > 0
                    && n < 10
                    && rest[1..1 + n]
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '#')
            });
            if let Some(n) = entity_len {
                out.push_str(&rest[..n + 2]);
                rest = &rest[n + 2..];
                continue;
            }
            out.push_str("&amp;");
        } else {
            out.push_str(&html_escape(&c.to_string()));
        }
        rest = &rest[c.len_utf8()..];
    }
    out
}

fn strip_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let lower = s.to_ascii_lowercase();
    let mut i = 0;
    while i < s.len() {
        let rest = &lower[i..];
        let skip_block = ["<script", "<style", "<!--"]
            .iter()
            .find(|p| rest.starts_with(**p))
            .map(|p| match *p {
                "<script" => "</script>",
                "<style" => "</style>",
                _ => "-->",
            });
        if let Some(close) = skip_block {
            match rest.find(close) {
                Some(end) => {
                    i += end + close.len();
                    continue;
                }
                None => break,
            }
        }
        if rest.starts_with('<')
            && let Some(end) = rest.find('>')
        {
            i += end + 1;
            continue;
        }
        let c = s[i..].chars().next().unwrap_or(' ');
        out.push(c);
        i += c.len_utf8();
    }
    out
}

/// `application/x-www-form-urlencoded` as Ruby's `CGI.escape`: space becomes `+`.
fn form_urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Characters Braze's `url_escape` leaves alone: unreserved and reserved URL characters.
const URL_ESCAPE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'!')
    .remove(b'*')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')')
    .remove(b';')
    .remove(b':')
    .remove(b'@')
    .remove(b'&')
    .remove(b'=')
    .remove(b'+')
    .remove(b'$')
    .remove(b',')
    .remove(b'/')
    .remove(b'?')
    .remove(b'#')
    .remove(b'[')
    .remove(b']');

/// `url_param_escape` also escapes the characters that separate query parameters.
const URL_PARAM_ESCAPE: &percent_encoding::AsciiSet =
    &URL_ESCAPE.add(b'&').add(b'=').add(b'+').add(b'?').add(b'#');

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn with_delimiter(number: &str) -> String {
    let (sign, rest) = number.strip_prefix('-').map_or(("", number), |r| ("-", r));
    let (int, frac) = rest
        .split_once('.')
        .map_or((rest, None), |(i, f)| (i, Some(f)));
    let mut grouped = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    match frac {
        Some(f) => format!("{sign}{grouped}.{f}"),
        None => format!("{sign}{grouped}"),
    }
}

fn to_datetime(v: &Value, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    match v {
        Value::Int(ts) => Utc.timestamp_opt(*ts, 0).single(),
        Value::Float(ts) => Utc.timestamp_opt(*ts as i64, 0).single(),
        Value::Str(s) => {
            let t = s.trim();
            match t.to_ascii_lowercase().as_str() {
                "now" | "today" => return Some(now),
                _ => {}
            }
            if !t.is_empty() && t.chars().all(|c| c.is_ascii_digit()) {
                return t
                    .parse::<i64>()
                    .ok()
                    .and_then(|ts| Utc.timestamp_opt(ts, 0).single());
            }
            if let Ok(dt) = DateTime::parse_from_rfc3339(t) {
                return Some(dt.with_timezone(&Utc));
            }
            if let Ok(dt) = DateTime::parse_from_rfc2822(t) {
                return Some(dt.with_timezone(&Utc));
            }
            for fmt in [
                "%Y-%m-%d %H:%M:%S %z",
                "%Y-%m-%dT%H:%M:%S%.f%z",
                "%Y-%m-%d %H:%M:%S%.f %z",
            ] {
                if let Ok(dt) = DateTime::parse_from_str(t, fmt) {
                    return Some(dt.with_timezone(&Utc));
                }
            }
            for fmt in [
                "%Y-%m-%d %H:%M:%S",
                "%Y-%m-%dT%H:%M:%S",
                "%Y-%m-%dT%H:%M:%S%.f",
                "%Y-%m-%d %H:%M",
            ] {
                if let Ok(dt) = NaiveDateTime::parse_from_str(t, fmt) {
                    return Some(dt.and_utc());
                }
            }
            for fmt in [
                "%Y-%m-%d",
                "%B %d, %Y",
                "%b %d, %Y",
                "%d %B %Y",
                "%d %b %Y",
                "%m/%d/%Y",
                "%Y/%m/%d",
            ] {
                if let Ok(d) = NaiveDate::parse_from_str(t, fmt) {
                    return d.and_hms_opt(0, 0, 0).map(|dt| dt.and_utc());
                }
            }
            None
        }
        _ => None,
    }
}

/// Ruby's strftime on top of chrono's, including `%s` (Braze documents it for Unix time).
fn strftime(dt: &DateTime<Utc>, format: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let items = chrono::format::StrftimeItems::new(format);
    if write!(out, "{}", dt.format_with_items(items)).is_err() {
        return format.to_string();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(name: &str, input: Value, args: &[Value]) -> Value {
        let ctx = FilterContext { now: None };
        apply(name, input, args, &[], &ctx).expect("filter succeeds")
    }

    #[test]
    fn braze_documented_examples() {
        assert_eq!(
            run("url_escape", "hey<>hi".into(), &[]).to_output(),
            "hey%3C%3Ehi"
        );
        assert_eq!(
            run("url_param_escape", "hey<&>hi".into(), &[]).to_output(),
            "hey%3C%26%3Ehi"
        );
        assert_eq!(
            run("url_encode", "google search".into(), &[]).to_output(),
            "google+search"
        );
        assert_eq!(
            run("number_with_delimiter", Value::Int(123456), &[]).to_output(),
            "123,456"
        );
        assert_eq!(run("money", Value::Int(145), &[]).to_output(), "145.00");
        assert_eq!(
            run("base64_encode", "blah".into(), &[]).to_output(),
            "YmxhaA=="
        );
        assert_eq!(
            run("sha2", "hey".into(), &[]).to_output(),
            "fa690b82061edfd2852629aeba8a8977b57e40fcb77d1a7a28b26cba62591204"
        );
    }

    #[test]
    fn integer_division_floors() {
        assert_eq!(
            run("divided_by", Value::Int(15), &[Value::Int(2)]).to_output(),
            "7"
        );
        assert_eq!(
            run("divided_by", Value::Int(-15), &[Value::Int(2)]).to_output(),
            "-8"
        );
        assert_eq!(
            run("divided_by", Value::Int(15), &[Value::Float(2.0)]).to_output(),
            "7.5"
        );
    }

    #[test]
    fn json_escape_escapes_quotes_and_keeps_unicode() {
        assert_eq!(
            run("json_escape", "He said \"hi\" \\o/ 김".into(), &[]).to_output(),
            "He said \\\"hi\\\" \\\\o/ 김"
        );
    }
}
