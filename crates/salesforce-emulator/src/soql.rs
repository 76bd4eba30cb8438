//! The SOQL subset the emulator answers: `SELECT f1, f2 FROM Lead [WHERE f = 'v' [AND f IN ('a', 'b') …]]
//! [LIMIT n]`, enough to find a lead (or up to a batch of them) by e-mail or external id. Parsing is pure and yields Salesforce's error codes
//! (`MALFORMED_QUERY`, `INVALID_FIELD`, `INVALID_TYPE`) with its message layout; evaluation takes
//! records and knows nothing of HTTP or storage.

use serde_json::Value;

use crate::api_error::ApiError;
use crate::schema::{FieldIndex, LeadSchema};

/// A parsed query over Lead.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub fields: Vec<FieldIndex>,
    pub conditions: Vec<Condition>,
    pub limit: Option<usize>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub field: FieldIndex,
    pub negated: bool,
    pub literal: Literal,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Text(String),
    Number(f64),
    Boolean(bool),
    Null,
    /// `IN ('a', 'b')`: equal to any of them.
    List(Vec<Literal>),
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Text(String),
    Number(f64),
    Comma,
    Equals,
    NotEquals,
    Star,
    Other(char),
}

struct Lexer<'a> {
    query: &'a str,
    tokens: Vec<(Token, usize)>,
}

impl<'a> Lexer<'a> {
    fn run(query: &'a str) -> Result<Vec<(Token, usize)>, ApiError> {
        let mut lexer = Lexer {
            query,
            tokens: Vec::new(),
        };
        let mut chars = query.char_indices().peekable();
        while let Some((at, c)) = chars.next() {
            let token = match c {
                c if c.is_whitespace() => continue,
                ',' => Token::Comma,
                '=' => Token::Equals,
                '*' => Token::Star,
                '!' | '<'
                    if chars
                        .peek()
                        .is_some_and(|(_, next)| *next == '=' || (c == '<' && *next == '>')) =>
                {
                    chars.next();
                    Token::NotEquals
                }
                '\'' => {
                    let mut text = String::new();
                    let mut closed = false;
                    while let Some((_, c)) = chars.next() {
                        match c {
                            '\\' => match chars.next() {
                                Some((_, 'n')) => text.push('\n'),
                                Some((_, 't')) => text.push('\t'),
                                Some((_, escaped)) => text.push(escaped),
                                None => break,
                            },
                            '\'' => {
                                closed = true;
                                break;
                            }
                            other => text.push(other),
                        }
                    }
                    if !closed {
                        return Err(lexer.error(
                            "MALFORMED_QUERY",
                            at,
                            "unexpected token: '''".to_owned(),
                        ));
                    }
                    Token::Text(text)
                }
                c if c.is_ascii_digit() || c == '-' || c == '.' => {
                    let mut end = at + c.len_utf8();
                    while let Some((i, next)) = chars.peek().copied() {
                        if next.is_ascii_digit() || next == '.' {
                            end = i + next.len_utf8();
                            chars.next();
                        } else {
                            break;
                        }
                    }
                    let text = &query[at..end];
                    let number = text.parse::<f64>().map_err(|_| {
                        lexer.error("MALFORMED_QUERY", at, format!("unexpected token: '{text}'"))
                    })?;
                    Token::Number(number)
                }
                c if c.is_alphabetic() || c == '_' => {
                    let mut end = at + c.len_utf8();
                    while let Some((i, next)) = chars.peek().copied() {
                        if next.is_alphanumeric() || next == '_' || next == '.' {
                            end = i + next.len_utf8();
                            chars.next();
                        } else {
                            break;
                        }
                    }
                    Token::Word(query[at..end].to_owned())
                }
                other => Token::Other(other),
            };
            lexer.tokens.push((token, at));
        }
        Ok(lexer.tokens)
    }

    fn error(&self, code: &'static str, at: usize, message: String) -> ApiError {
        query_error(self.query, code, at, message)
    }
}

/// Salesforce echoes the query with a caret under the offending token.
fn query_error(query: &str, code: &'static str, byte_at: usize, message: String) -> ApiError {
    let column = query[..byte_at.min(query.len())].chars().count() + 1;
    let caret = format!("{}^", " ".repeat(column - 1));
    ApiError::request(
        400,
        code,
        format!("\n{query}\n{caret}\nERROR at Row:1:Column:{column}\n{message}"),
    )
}

struct Parser<'a> {
    query: &'a str,
    tokens: Vec<(Token, usize)>,
    position: usize,
    schema: &'a LeadSchema,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.position).map(|(token, _)| token)
    }

    fn offset(&self) -> usize {
        self.tokens
            .get(self.position)
            .map_or(self.query.len(), |(_, at)| *at)
    }

    fn next(&mut self) -> Option<Token> {
        let token = self
            .tokens
            .get(self.position)
            .map(|(token, _)| token.clone());
        self.position += 1;
        token
    }

    fn unexpected(&self) -> ApiError {
        let text = match self.tokens.get(self.position) {
            Some((Token::Word(word), _)) => word.clone(),
            Some((Token::Text(text), _)) => format!("'{text}'"),
            Some((Token::Number(number), _)) => number.to_string(),
            Some((Token::Comma, _)) => ",".to_owned(),
            Some((Token::Equals, _)) => "=".to_owned(),
            Some((Token::NotEquals, _)) => "!=".to_owned(),
            Some((Token::Star, _)) => "*".to_owned(),
            Some((Token::Other(c), _)) => c.to_string(),
            None => "<EOF>".to_owned(),
        };
        query_error(
            self.query,
            "MALFORMED_QUERY",
            self.offset(),
            format!("unexpected token: '{text}'"),
        )
    }

    fn keyword(&mut self, keyword: &str) -> Result<(), ApiError> {
        match self.peek() {
            Some(Token::Word(word)) if word.eq_ignore_ascii_case(keyword) => {
                self.position += 1;
                Ok(())
            }
            _ => Err(self.unexpected()),
        }
    }

    fn at_keyword(&self, keyword: &str) -> bool {
        matches!(self.peek(), Some(Token::Word(word)) if word.eq_ignore_ascii_case(keyword))
    }

    fn field(&mut self) -> Result<FieldIndex, ApiError> {
        let at = self.offset();
        match self.next() {
            Some(Token::Word(name)) => self.schema.lookup(&name).ok_or_else(|| {
                query_error(
                    self.query,
                    "INVALID_FIELD",
                    at,
                    format!(
                        "No such column '{name}' on entity 'Lead'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names."
                    ),
                )
            }),
            _ => {
                self.position -= 1;
                Err(self.unexpected())
            }
        }
    }

    fn literal(&mut self) -> Result<Literal, ApiError> {
        match self.next() {
            Some(Token::Text(text)) => Ok(Literal::Text(text)),
            Some(Token::Number(number)) => Ok(Literal::Number(number)),
            Some(Token::Word(word)) if word.eq_ignore_ascii_case("true") => {
                Ok(Literal::Boolean(true))
            }
            Some(Token::Word(word)) if word.eq_ignore_ascii_case("false") => {
                Ok(Literal::Boolean(false))
            }
            Some(Token::Word(word)) if word.eq_ignore_ascii_case("null") => Ok(Literal::Null),
            _ => {
                self.position -= 1;
                Err(self.unexpected())
            }
        }
    }
}

impl Parser<'_> {
    /// `('a', 'b', …)` after `IN`.
    fn list(&mut self) -> Result<Literal, ApiError> {
        match self.next() {
            Some(Token::Other('(')) => {}
            _ => {
                self.position -= 1;
                return Err(self.unexpected());
            }
        }
        let mut items = Vec::new();
        loop {
            items.push(self.literal()?);
            match self.next() {
                Some(Token::Comma) => {}
                Some(Token::Other(')')) => return Ok(Literal::List(items)),
                _ => {
                    self.position -= 1;
                    return Err(self.unexpected());
                }
            }
        }
    }
}

/// Parses a query against the Lead schema.
pub fn parse(query: &str, schema: &LeadSchema) -> Result<Query, ApiError> {
    let tokens = Lexer::run(query)?;
    let mut parser = Parser {
        query,
        tokens,
        position: 0,
        schema,
    };
    parser.keyword("SELECT")?;
    let mut select = Vec::new();
    // Field names are resolved after FROM is known, so an unknown object is reported first, as Salesforce does.
    let mut pending = Vec::new();
    loop {
        match parser.peek() {
            Some(Token::Word(_)) => {
                pending.push(parser.position);
                parser.position += 1;
            }
            _ => return Err(parser.unexpected()),
        }
        if matches!(parser.peek(), Some(Token::Comma)) {
            parser.position += 1;
        } else {
            break;
        }
    }
    parser.keyword("FROM")?;
    let object_at = parser.offset();
    match parser.next() {
        Some(Token::Word(object)) if object.eq_ignore_ascii_case("Lead") => {}
        Some(Token::Word(object)) => {
            return Err(query_error(
                query,
                "INVALID_TYPE",
                object_at,
                format!(
                    "sObject type '{object}' is not supported. If you are attempting to use a custom object, be sure to append the '__c' after the entity name. Please reference your WSDL or the describe call for the appropriate names."
                ),
            ));
        }
        _ => {
            parser.position -= 1;
            return Err(parser.unexpected());
        }
    }
    let after_from = parser.position;
    for position in pending {
        parser.position = position;
        select.push(parser.field()?);
    }
    parser.position = after_from;
    let mut conditions = Vec::new();
    if parser.at_keyword("WHERE") {
        parser.position += 1;
        loop {
            let field = parser.field()?;
            let in_list = parser.at_keyword("IN")
                || (parser.at_keyword("NOT")
                    && matches!(parser.tokens.get(parser.position + 1), Some((Token::Word(w), _)) if w.eq_ignore_ascii_case("IN")));
            let (negated, literal) = if in_list {
                let negated = parser.at_keyword("NOT");
                if negated {
                    parser.position += 1;
                }
                parser.keyword("IN")?;
                (negated, parser.list()?)
            } else {
                let negated = match parser.next() {
                    Some(Token::Equals) => false,
                    Some(Token::NotEquals) => true,
                    _ => {
                        parser.position -= 1;
                        return Err(parser.unexpected());
                    }
                };
                (negated, parser.literal()?)
            };
            conditions.push(Condition {
                field,
                negated,
                literal,
            });
            if parser.at_keyword("AND") {
                parser.position += 1;
            } else {
                break;
            }
        }
    }
    let mut limit = None;
    if parser.at_keyword("LIMIT") {
        parser.position += 1;
        match parser.next() {
            Some(Token::Number(number)) if number >= 0.0 && number.fract() == 0.0 => {
                limit = Some(number as usize)
            }
            _ => {
                parser.position -= 1;
                return Err(parser.unexpected());
            }
        }
    }
    if parser.peek().is_some() {
        return Err(parser.unexpected());
    }
    Ok(Query {
        fields: select,
        conditions,
        limit,
    })
}

impl Condition {
    /// SOQL `=` on text is case-insensitive.
    pub fn matches(&self, value: &Value) -> bool {
        equals(&self.literal, value) != self.negated
    }
}

fn equals(literal: &Literal, value: &Value) -> bool {
    {
        match (literal, value) {
            (Literal::List(items), value) => items.iter().any(|item| equals(item, value)),
            (Literal::Null, value) => value.is_null(),
            (_, Value::Null) => false,
            (Literal::Text(expected), Value::String(actual)) => {
                expected.to_lowercase() == actual.to_lowercase()
            }
            (Literal::Number(expected), Value::Number(actual)) => {
                actual.as_f64() == Some(*expected)
            }
            (Literal::Number(expected), Value::String(actual)) => {
                actual.parse::<f64>().ok() == Some(*expected)
            }
            (Literal::Boolean(expected), Value::Bool(actual)) => expected == actual,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> LeadSchema {
        LeadSchema::new(&[]).expect("standard schema")
    }

    #[test]
    fn parses_select_where_and_limit() {
        let schema = schema();
        let query = parse(
            "select id, email FROM Lead WHERE Email = 'a@b.co' AND lastname != 'X' LIMIT 5",
            &schema,
        )
        .expect("valid query");
        assert_eq!(query.fields.len(), 2);
        assert_eq!(schema.field(query.fields[1]).name, "Email");
        assert_eq!(query.conditions.len(), 2);
        assert!(query.conditions[1].negated);
        assert_eq!(query.limit, Some(5));
        assert!(query.conditions[0].matches(&Value::String("A@B.CO".into())));
    }

    #[test]
    fn in_lists_match_any_member() {
        let query = parse(
            "SELECT Id, Email FROM Lead WHERE Email IN ('a@b.co', 'c@d.co') LIMIT 400",
            &schema(),
        )
        .expect("valid query");
        assert!(query.conditions[0].matches(&Value::String("C@D.CO".into())));
        assert!(!query.conditions[0].matches(&Value::String("x@d.co".into())));
        let query = parse(
            "SELECT Id FROM Lead WHERE Email NOT IN ('a@b.co')",
            &schema(),
        )
        .expect("valid query");
        assert!(query.conditions[0].negated);
        assert!(parse("SELECT Id FROM Lead WHERE Email IN 'a'", &schema()).is_err());
        assert!(parse("SELECT Id FROM Lead WHERE Email IN ('a'", &schema()).is_err());
    }

    #[test]
    fn handles_escapes_in_literals() {
        let query = parse(
            r"SELECT Id FROM Lead WHERE LastName = 'O\'Brien'",
            &schema(),
        )
        .expect("valid query");
        assert_eq!(query.conditions[0].literal, Literal::Text("O'Brien".into()));
    }

    #[test]
    fn reports_unknown_fields_objects_and_syntax_like_salesforce() {
        let error = parse("SELECT Id, Foo FROM Lead", &schema()).expect_err("must be rejected");
        assert_eq!(error.error_code, "INVALID_FIELD");
        assert!(error.message.starts_with("\nSELECT Id, Foo FROM Lead\n           ^\nERROR at Row:1:Column:12\nNo such column 'Foo' on entity 'Lead'."));
        let error = parse("SELECT Id FROM Contactz", &schema()).expect_err("must be rejected");
        assert_eq!(error.error_code, "INVALID_TYPE");
        let error = parse("SELECT Id FROM Lead WHERE", &schema()).expect_err("must be rejected");
        assert_eq!(error.error_code, "MALFORMED_QUERY");
        let error = parse("SELECT Id FROM Lead LIMIT x", &schema()).expect_err("must be rejected");
        assert_eq!(error.error_code, "MALFORMED_QUERY");
    }
}
