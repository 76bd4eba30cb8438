//! Splits template source into text, `{{ output }}` and `{% tag %}` tokens, and tag markup into
//! expression tokens. Knows Braze's `${name}` references so `{{${first_name}}}` closes correctly.

use crate::error::RawError;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum TemplateToken<'a> {
    Text {
        text: &'a str,
        offset: usize,
    },
    Output {
        markup: &'a str,
        offset: usize,
        markup_offset: usize,
        trim_left: bool,
        trim_right: bool,
    },
    Tag {
        name: &'a str,
        markup: &'a str,
        offset: usize,
        markup_offset: usize,
        trim_left: bool,
        trim_right: bool,
    },
}

/// Tokenizes a whole template. Tags end at the first `%}` and outputs at the first `}}` outside a
/// `${...}` reference, as in Ruby Liquid (no quote awareness), so malformed tags are caught.
pub(crate) fn tokenize(source: &str) -> Result<Vec<TemplateToken<'_>>, RawError> {
    let bytes = source.as_bytes();
    let mut tokens = Vec::new();
    let mut pos = 0;
    while pos < source.len() {
        let Some(start) = find_open(bytes, pos) else {
            tokens.push(TemplateToken::Text {
                text: &source[pos..],
                offset: pos,
            });
            break;
        };
        if start > pos {
            tokens.push(TemplateToken::Text {
                text: &source[pos..start],
                offset: pos,
            });
        }
        let is_tag = bytes[start + 1] == b'%';
        let mut inner = start + 2;
        let trim_left = bytes.get(inner) == Some(&b'-');
        if trim_left {
            inner += 1;
        }
        if is_tag {
            let Some(end) = find_bytes(bytes, inner, b"%}") else {
                return Err(RawError::syntax(
                    "tag '{%' was not properly terminated: add '%}' to close it",
                    start,
                ));
            };
            let (markup_end, trim_right) = strip_trim_marker(bytes, inner, end);
            let markup = &source[inner..markup_end];
            let lead = markup.len() - markup.trim_start().len();
            let trimmed = markup.trim();
            let name_len = tag_name_len(trimmed);
            let name = &trimmed[..name_len];
            let rest = &trimmed[name_len..];
            let markup_offset = inner + lead + name_len;
            tokens.push(TemplateToken::Tag {
                name,
                markup: rest,
                offset: start,
                markup_offset,
                trim_left,
                trim_right,
            });
            pos = end + 2;
            // The bodies of raw and doc are not Liquid: `{{` or `%}` in them must not be lexed.
            if let Some(close) = match name {
                "raw" => find_closing_tag(source, pos, "endraw"),
                "doc" => find_closing_tag(source, pos, "enddoc"),
                _ => None,
            } {
                if close > pos {
                    tokens.push(TemplateToken::Text {
                        text: &source[pos..close],
                        offset: pos,
                    });
                }
                pos = close;
            }
        } else {
            let Some(end) = find_output_end(bytes, inner) else {
                return Err(RawError::syntax(
                    "output '{{' was not properly terminated: add '}}' to close it",
                    start,
                ));
            };
            let (markup_end, trim_right) = strip_trim_marker(bytes, inner, end);
            tokens.push(TemplateToken::Output {
                markup: &source[inner..markup_end],
                offset: start,
                markup_offset: inner,
                trim_left,
                trim_right,
            });
            pos = end + 2;
        }
    }
    Ok(tokens)
}

/// Where the first `{% name %}` (with optional `-` markers) at or after `from` starts.
pub(crate) fn find_closing_tag(source: &str, from: usize, name: &str) -> Option<usize> {
    let bytes = source.as_bytes();
    let mut at = from;
    while let Some(open) = find_bytes(bytes, at, b"{%") {
        let mut i = open + 2;
        if bytes.get(i) == Some(&b'-') {
            i += 1;
        }
        let rest = source[i..].trim_start();
        if let Some(after) = rest.strip_prefix(name) {
            let after = after.trim_start();
            let after = after.strip_prefix('-').unwrap_or(after);
            if after.starts_with("%}") {
                return Some(open);
            }
        }
        at = open + 2;
    }
    None
}

fn tag_name_len(markup: &str) -> usize {
    if markup.starts_with('#') {
        return 1;
    }
    markup
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(markup.len())
}

fn strip_trim_marker(bytes: &[u8], inner: usize, end: usize) -> (usize, bool) {
    if end > inner && bytes[end - 1] == b'-' {
        (end - 1, true)
    } else {
        (end, false)
    }
}

fn find_open(bytes: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while i + 1 < bytes.len() {
        if bytes[i] == b'{' && (bytes[i + 1] == b'{' || bytes[i + 1] == b'%') {
            return Some(i);
        }
        i += 1;
    }
    None
}

pub(crate) fn find_bytes(bytes: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    if from > bytes.len() {
        return None;
    }
    bytes[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

fn find_output_end(bytes: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while i + 1 < bytes.len() {
        if bytes[i] == b'$' && bytes[i + 1] == b'{' {
            // Braze reference: `${...}` may itself end right before the closing `}}`.
            let close = bytes[i + 2..].iter().position(|&b| b == b'}')?;
            i = i + 2 + close + 1;
            continue;
        }
        if bytes[i] == b'}' && bytes[i + 1] == b'}' {
            return Some(i);
        }
        i += 1;
    }
    None
}

/// A token of an expression inside a tag or output.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok<'a> {
    Ident(&'a str),
    /// Braze `${name}`: the text between the braces, spaces allowed.
    Braze(&'a str),
    Str(&'a str),
    Int(i64),
    Float(f64),
    Dot,
    DotDot,
    LBracket,
    RBracket,
    LParen,
    RParen,
    Colon,
    Comma,
    Pipe,
    Assign,
    Op(&'a str),
    Word(&'a str),
}

#[derive(Debug, Clone)]
pub(crate) struct Spanned<'a> {
    pub tok: Tok<'a>,
    pub offset: usize,
}

/// Tokenizes expression markup. `base` is the markup's offset in the template, for error locations.
/// Braze lets authors wrap references in `{{ }}` inside tags; those braces are skipped here.
pub(crate) fn lex_expression(markup: &str, base: usize) -> Result<Vec<Spanned<'_>>, RawError> {
    let bytes = markup.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let start = i;
        macro_rules! push {
            ($out:expr, $tok:expr) => {
                $out.push(Spanned {
                    tok: $tok,
                    offset: base + start,
                })
            };
        }
        match c {
            b' ' | b'\t' | b'\n' | b'\r' => i += 1,
            b'{' if bytes.get(i + 1) == Some(&b'{') => i += 2,
            b'}' if bytes.get(i + 1) == Some(&b'}') => i += 2,
            b'$' if bytes.get(i + 1) == Some(&b'{') => {
                let Some(close) = markup[i + 2..].find('}') else {
                    return Err(RawError::syntax(
                        "'${' is not closed: add '}' after the attribute name",
                        base + i,
                    ));
                };
                push!(out, Tok::Braze(&markup[i + 2..i + 2 + close]));
                i = i + 2 + close + 1;
            }
            b'\'' | b'"' => {
                let Some(close) = markup[i + 1..].find(c as char) else {
                    return Err(RawError::syntax(
                        "string literal is not closed: add the closing quote",
                        base + i,
                    ));
                };
                push!(out, Tok::Str(&markup[i + 1..i + 1 + close]));
                i = i + 1 + close + 1;
            }
            b'.' if bytes.get(i + 1) == Some(&b'.') => {
                push!(out, Tok::DotDot);
                i += 2;
            }
            b'.' => {
                push!(out, Tok::Dot);
                i += 1;
            }
            b'[' => {
                push!(out, Tok::LBracket);
                i += 1;
            }
            b']' => {
                push!(out, Tok::RBracket);
                i += 1;
            }
            b'(' => {
                push!(out, Tok::LParen);
                i += 1;
            }
            b')' => {
                push!(out, Tok::RParen);
                i += 1;
            }
            b':' => {
                push!(out, Tok::Colon);
                i += 1;
            }
            b',' => {
                push!(out, Tok::Comma);
                i += 1;
            }
            b'|' => {
                push!(out, Tok::Pipe);
                i += 1;
            }
            b'=' if bytes.get(i + 1) == Some(&b'=') => {
                push!(out, Tok::Op("=="));
                i += 2;
            }
            b'=' => {
                push!(out, Tok::Assign);
                i += 1;
            }
            b'!' if bytes.get(i + 1) == Some(&b'=') => {
                push!(out, Tok::Op("!="));
                i += 2;
            }
            b'<' | b'>' => {
                let two = bytes.get(i + 1).copied();
                let op = match (c, two) {
                    (b'<', Some(b'=')) => "<=",
                    (b'>', Some(b'=')) => ">=",
                    (b'<', Some(b'>')) => "<>",
                    (b'<', _) => "<",
                    _ => ">",
                };
                push!(out, Tok::Op(op));
                i += op.len();
            }
            b'-' | b'0'..=b'9' => {
                let mut j = i + 1;
                while j < bytes.len() && bytes[j].is_ascii_digit() {
                    j += 1;
                }
                if c == b'-' && j == i + 1 {
                    return Err(RawError::syntax(
                        "unexpected '-': Liquid has no arithmetic operators; use the minus filter",
                        base + i,
                    ));
                }
                let mut is_float = false;
                if j + 1 < bytes.len() && bytes[j] == b'.' && bytes[j + 1].is_ascii_digit() {
                    is_float = true;
                    j += 1;
                    while j < bytes.len() && bytes[j].is_ascii_digit() {
                        j += 1;
                    }
                }
                let text = &markup[i..j];
                let tok =
                    if is_float {
                        Tok::Float(text.parse().map_err(|_| {
                            RawError::syntax(format!("bad number '{text}'"), base + i)
                        })?)
                    } else {
                        match text.parse::<i64>() {
                            Ok(n) => Tok::Int(n),
                            Err(_) => Tok::Float(text.parse().map_err(|_| {
                                RawError::syntax(format!("bad number '{text}'"), base + i)
                            })?),
                        }
                    };
                push!(out, tok);
                i = j;
            }
            c if c.is_ascii_alphabetic() || c == b'_' || c >= 0x80 => {
                let mut j = i + 1;
                while j < bytes.len()
                    && (bytes[j].is_ascii_alphanumeric()
                        || bytes[j] == b'_'
                        || bytes[j] == b'-'
                        || bytes[j] >= 0x80)
                {
                    j += 1;
                }
                if j < bytes.len() && bytes[j] == b'?' {
                    j += 1;
                }
                let word = &markup[i..j];
                let tok = match word {
                    "and" | "or" | "contains" => Tok::Word(word),
                    _ => Tok::Ident(word),
                };
                push!(out, tok);
                i = j;
            }
            _ => {
                let ch = markup[i..].chars().next().unwrap_or('?');
                return Err(RawError::syntax(
                    format!("unexpected character '{ch}'"),
                    base + i,
                ));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn braze_output_closes_after_reference() {
        let tokens = tokenize("{{${first_name}}}!").expect("valid");
        assert!(matches!(
            tokens[0],
            TemplateToken::Output {
                markup: "${first_name}",
                ..
            }
        ));
        assert!(matches!(tokens[1], TemplateToken::Text { text: "!", .. }));
    }

    #[test]
    fn whitespace_control_markers() {
        let tokens = tokenize("{%- if x -%}").expect("valid");
        assert!(matches!(
            tokens[0],
            TemplateToken::Tag {
                name: "if",
                markup: " x",
                trim_left: true,
                trim_right: true,
                ..
            }
        ));
    }

    #[test]
    fn braze_reference_with_spaces_lexes_as_one_token() {
        let toks = lex_expression("custom_attribute.${zip code} | default: 'x'", 0).expect("valid");
        assert_eq!(toks[2].tok, Tok::Braze("zip code"));
    }
}
