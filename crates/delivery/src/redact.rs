//! Removes secrets from what the message activity log stores: credential headers, secret-looking
//! form and JSON fields (also in truncated bodies that no longer parse), bearer tokens, and every
//! value the caller marks secret (e.g. a credential store's client secret), wherever it appears.
//!
//! Pure text in, text out. Must not know HTTP clients, templates or storage.

/// What replaces a secret.
pub const REDACTED: &str = "[REDACTED]";

/// Headers whose whole value is a credential.
const SECRET_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-api-key",
    "api-key",
    "x-auth-token",
];

/// Field names (form or JSON) whose values are secrets.
const SECRET_FIELDS: &[&str] = &[
    "client_secret",
    "access_token",
    "refresh_token",
    "id_token",
    "password",
    "api_key",
    "apikey",
    "secret",
    "assertion",
];

/// Shortest marked secret we replace inside text; shorter ones would shred unrelated words.
const MIN_SECRET_LEN: usize = 4;

/// Redacts with the built-in rules plus the caller's secret values.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    secrets: Vec<String>,
    /// Runs of base64 text that can only come from a secret (at each of the three byte
    /// alignments, standard and URL-safe alphabets): a base64 token containing one is replaced
    /// whole, so `Basic base64(user:secret)` echoed into another header is caught too.
    encoded: Vec<String>,
}

/// Shortest base64 fragment matched; shorter ones would match unrelated tokens.
const MIN_FRAGMENT_LEN: usize = 6;

/// The base64 characters that depend only on `secret`'s bytes, wherever it sits in the encoded
/// data: for each of the three alignments, the characters whose six bits all fall inside it.
fn base64_fragments(secret: &[u8]) -> Vec<String> {
    use base64::Engine as _;
    let mut out = Vec::new();
    for offset in 0..3usize {
        let mut bytes = vec![0u8; offset];
        bytes.extend_from_slice(secret);
        let encoded = base64::engine::general_purpose::STANDARD_NO_PAD.encode(&bytes);
        let first = (8 * offset).div_ceil(6);
        let end = (8 * (offset + secret.len())) / 6;
        if end > first && end - first >= MIN_FRAGMENT_LEN {
            let fragment = encoded[first..end].to_owned();
            let url_safe = fragment.replace('+', "-").replace('/', "_");
            if url_safe != fragment {
                out.push(url_safe);
            }
            out.push(fragment);
        }
    }
    out
}

/// A base64 character of either alphabet (padding is only at the end, so not here).
fn is_base64_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'-' | b'_')
}

impl Redactor {
    pub fn new() -> Redactor {
        Redactor::default()
    }

    /// Marks a value secret: it is replaced wherever it appears (and in its URL-encoded form).
    pub fn with_secret(mut self, secret: impl Into<String>) -> Redactor {
        let secret = secret.into();
        if secret.len() >= MIN_SECRET_LEN {
            let encoded = form_encode(&secret);
            if encoded != secret {
                self.secrets.push(encoded);
            }
            self.encoded.extend(base64_fragments(secret.as_bytes()));
            self.secrets.push(secret);
            // Longest first, so a secret containing another is replaced whole.
            self.secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        }
        self
    }

    /// Header list with credential headers' values replaced and other values scrubbed.
    pub fn headers(&self, headers: &[(String, String)]) -> Vec<(String, String)> {
        headers
            .iter()
            .map(|(name, value)| {
                let lower = name.to_ascii_lowercase();
                let value = if SECRET_HEADERS.contains(&lower.as_str()) {
                    REDACTED.to_owned()
                } else {
                    self.text(value)
                };
                (name.clone(), value)
            })
            .collect()
    }

    /// Any text (URL, body, error message): secret fields, bearer tokens, marked secrets.
    pub fn text(&self, text: &str) -> String {
        let mut out = redact_fields(text);
        out = redact_bearer(&out);
        for secret in &self.secrets {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), REDACTED);
            }
        }
        self.redact_encoded(&out)
    }

    /// Replaces every base64 token that contains a secret's fragment.
    fn redact_encoded(&self, text: &str) -> String {
        let bytes = text.as_bytes();
        let mut ranges = Vec::new();
        for fragment in &self.encoded {
            let mut from = 0;
            while let Some(found) = text[from..].find(fragment.as_str()) {
                let mut start = from + found;
                let mut end = start + fragment.len();
                while start > 0 && is_base64_byte(bytes[start - 1]) {
                    start -= 1;
                }
                while end < bytes.len() && is_base64_byte(bytes[end]) {
                    end += 1;
                }
                while end < bytes.len() && bytes[end] == b'=' {
                    end += 1;
                }
                ranges.push((start, end));
                from = end;
            }
        }
        if ranges.is_empty() {
            return text.to_owned();
        }
        ranges.sort_unstable();
        ranges.dedup();
        // Overlapping finds (two fragments of one token) become one range.
        let mut merged: Vec<(usize, usize)> = Vec::new();
        for (start, end) in ranges {
            match merged.last_mut() {
                Some(last) if start <= last.1 => last.1 = last.1.max(end),
                _ => merged.push((start, end)),
            }
        }
        splice(text, merged)
    }
}

fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

/// `client_secret=abc&x=1` → `client_secret=[REDACTED]&x=1`; `"password": "x"` likewise; works on
/// text that does not parse (a truncated body) because it scans rather than parses.
fn redact_fields(text: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let bytes = text.as_bytes();
    // (start, end) byte ranges of values to replace.
    let mut ranges: Vec<(usize, usize)> = Vec::new();
    for field in SECRET_FIELDS {
        let mut from = 0;
        while let Some(found) = lower[from..].find(field) {
            let start = from + found;
            let end = start + field.len();
            from = end;
            // Whole names only: `my_password_hint` is not `password`.
            if start > 0 && is_name_byte(bytes[start - 1]) {
                continue;
            }
            if end < bytes.len() && is_name_byte(bytes[end]) {
                continue;
            }
            let mut i = end;
            if bytes.get(i) == Some(&b'"') {
                i += 1;
            }
            while bytes.get(i).is_some_and(|b| *b == b' ') {
                i += 1;
            }
            match bytes.get(i) {
                Some(b'=') | Some(b':') => i += 1,
                _ => continue,
            }
            while bytes.get(i).is_some_and(|b| *b == b' ') {
                i += 1;
            }
            let value_start;
            let mut value_end;
            if bytes.get(i) == Some(&b'"') {
                value_start = i + 1;
                value_end = value_start;
                while value_end < bytes.len() && bytes[value_end] != b'"' {
                    if bytes[value_end] == b'\\' {
                        value_end += 1;
                    }
                    value_end += 1;
                }
                value_end = value_end.min(bytes.len());
            } else {
                value_start = i;
                value_end = i;
                while value_end < bytes.len()
                    && !matches!(
                        bytes[value_end],
                        b'&' | b',' | b'}' | b']' | b' ' | b'\n' | b'\r' | b'\t'
                    )
                {
                    value_end += 1;
                }
            }
            if value_end > value_start {
                ranges.push((value_start, value_end));
            }
        }
    }
    splice(text, ranges)
}

/// `Bearer abc.def` → `Bearer [REDACTED]` anywhere in text.
fn redact_bearer(text: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let bytes = text.as_bytes();
    let mut ranges = Vec::new();
    let mut from = 0;
    while let Some(found) = lower[from..].find("bearer ") {
        let start = from + found + "bearer ".len();
        let mut end = start;
        while end < bytes.len()
            && !matches!(
                bytes[end],
                b' ' | b'"' | b'\'' | b',' | b'\n' | b'\r' | b'\t'
            )
        {
            end += 1;
        }
        if end > start {
            ranges.push((start, end));
        }
        from = end.max(start);
    }
    splice(text, ranges)
}

/// Replaces byte ranges (found at ASCII delimiters, so on char boundaries) with [`REDACTED`].
fn splice(text: &str, mut ranges: Vec<(usize, usize)>) -> String {
    if ranges.is_empty() {
        return text.to_owned();
    }
    ranges.sort_unstable();
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for (start, end) in ranges {
        if start < at {
            continue;
        }
        match (text.get(at..start), text.get(start..end)) {
            (Some(before), Some(_)) => {
                out.push_str(before);
                out.push_str(REDACTED);
                at = end;
            }
            _ => continue,
        }
    }
    out.push_str(text.get(at..).unwrap_or_default());
    out
}

#[cfg(test)]
mod tests {

    #[test]
    fn base64_encodings_of_a_secret_are_redacted_wherever_they_sit() {
        use base64::Engine as _;
        let r = Redactor::new().with_secret("s3cr3t-Pa55word");
        for prefix in ["", "u", "us", "user:", "client-id:"] {
            let encoded = base64::engine::general_purpose::STANDARD
                .encode(format!("{prefix}s3cr3t-Pa55word"));
            let text = format!("X-Echo: Basic {encoded}; next");
            assert_eq!(r.text(&text), "X-Echo: Basic [REDACTED]; next", "{prefix}");
            let url_safe = base64::engine::general_purpose::URL_SAFE
                .encode(format!("{prefix}s3cr3t-Pa55word?>?"));
            assert_eq!(r.text(&url_safe), "[REDACTED]", "{prefix}");
        }
        // Base64 without the secret is left alone.
        let other = base64::engine::general_purpose::STANDARD.encode("user:something-else");
        assert_eq!(r.text(&other), other);
    }

    use super::*;

    fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect()
    }

    #[test]
    fn credential_headers_are_replaced() {
        let r = Redactor::new();
        let out = r.headers(&h(&[
            ("Authorization", "Bearer 00Dxx!abc"),
            ("proxy-authorization", "Basic dXNlcjpwYXNz"),
            ("Cookie", "sid=1"),
            ("Set-Cookie", "sid=2; HttpOnly"),
            ("X-Api-Key", "k-123"),
            ("Content-Type", "application/json"),
            ("X-Note", "token is Bearer abc"),
        ]));
        assert_eq!(
            out,
            h(&[
                ("Authorization", REDACTED),
                ("proxy-authorization", REDACTED),
                ("Cookie", REDACTED),
                ("Set-Cookie", REDACTED),
                ("X-Api-Key", REDACTED),
                ("Content-Type", "application/json"),
                ("X-Note", "token is Bearer [REDACTED]"),
            ])
        );
    }

    #[test]
    fn form_bodies() {
        let r = Redactor::new();
        assert_eq!(
            r.text("client_id=abc&client_secret=s3cr3t&grant_type=client_credentials"),
            "client_id=abc&client_secret=[REDACTED]&grant_type=client_credentials"
        );
        assert_eq!(
            r.text("username=a&password=hunter2"),
            "username=a&password=[REDACTED]"
        );
        assert_eq!(r.text("my_password_hint=x"), "my_password_hint=x");
        assert_eq!(r.text("password="), "password=");
    }

    #[test]
    fn json_bodies_even_truncated() {
        let r = Redactor::new();
        assert_eq!(
            r.text(r#"{"access_token":"00D!x\"y","instance_url":"https://x"}"#),
            r#"{"access_token":"[REDACTED]","instance_url":"https://x"}"#
        );
        assert_eq!(
            r.text(r#"{"Password" : "p", "n": 1}"#),
            r#"{"Password" : "[REDACTED]", "n": 1}"#
        );
        assert_eq!(
            r.text(r#"{"refresh_token": "abc"#),
            r#"{"refresh_token": "[REDACTED]"#
        );
        assert_eq!(r.text(r#"{"secret": 12345}"#), r#"{"secret": [REDACTED]}"#);
    }

    #[test]
    fn marked_secrets_everywhere() {
        let r = Redactor::new().with_secret("my secret/1").with_secret("ab");
        assert_eq!(
            r.text("url?x=my%20secret%2F1 and my secret/1"),
            "url?x=[REDACTED] and [REDACTED]"
        );
        assert_eq!(
            r.text("ab stays: too short to mark"),
            "ab stays: too short to mark"
        );
        let headers = r.headers(&h(&[("X-Custom", "k=my secret/1")]));
        assert_eq!(headers[0].1, "k=[REDACTED]");
    }

    #[test]
    fn non_ascii_text_survives() {
        let r = Redactor::new().with_secret("geheim");
        assert_eq!(
            r.text("Müller password=ü geheim 주식회사"),
            "Müller password=[REDACTED] [REDACTED] 주식회사"
        );
    }
}
