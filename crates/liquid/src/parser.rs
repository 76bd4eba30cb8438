//! Template tokens to an AST. Strict: anything that is not valid Liquid (or Braze's dialect) is a
//! syntax error found here, at compile time, never at send time.

use std::sync::Arc;

use crate::ast::*;
use crate::error::RawError;
use crate::lexer::{self, Spanned, TemplateToken, Tok};
use crate::value::Value;

/// A token after whitespace control was applied: text is owned because `{%-`/`-%}` trims it.
#[derive(Debug, Clone)]
enum Token<'a> {
    Text(String),
    Output {
        markup: &'a str,
        markup_offset: usize,
    },
    Tag {
        name: &'a str,
        markup: &'a str,
        offset: usize,
        end: usize,
        markup_offset: usize,
    },
}

pub(crate) fn parse_document(source: &str) -> Result<Block, RawError> {
    let raw = lexer::tokenize(source)?;
    let tokens = apply_whitespace_control(source, &raw);
    let mut parser = Parser {
        source,
        tokens,
        pos: 0,
    };
    let (block, end) = parser.parse_block(&[])?;
    if let Some(end) = end {
        return Err(RawError::syntax(
            format!("unexpected tag '{}': nothing is open to close", end.name),
            end.offset,
        ));
    }
    Ok(block)
}

fn apply_whitespace_control<'a>(source: &'a str, raw: &[TemplateToken<'a>]) -> Vec<Token<'a>> {
    let mut out = Vec::with_capacity(raw.len());
    for (i, token) in raw.iter().enumerate() {
        match token {
            TemplateToken::Text { text, .. } => {
                let mut text: &str = text;
                let prev_trims = i > 0
                    && matches!(
                        raw[i - 1],
                        TemplateToken::Output {
                            trim_right: true,
                            ..
                        } | TemplateToken::Tag {
                            trim_right: true,
                            ..
                        }
                    );
                let next_trims = matches!(
                    raw.get(i + 1),
                    Some(
                        TemplateToken::Output {
                            trim_left: true,
                            ..
                        } | TemplateToken::Tag {
                            trim_left: true,
                            ..
                        }
                    )
                );
                if prev_trims {
                    text = text.trim_start();
                }
                if next_trims {
                    text = text.trim_end();
                }
                out.push(Token::Text(text.to_string()));
            }
            TemplateToken::Output {
                markup,
                markup_offset,
                ..
            } => out.push(Token::Output {
                markup,
                markup_offset: *markup_offset,
            }),
            TemplateToken::Tag {
                name,
                markup,
                offset,
                markup_offset,
                ..
            } => {
                let end = lexer::find_bytes(source.as_bytes(), *markup_offset, b"%}")
                    .map_or(source.len(), |e| e + 2);
                out.push(Token::Tag {
                    name,
                    markup,
                    offset: *offset,
                    end,
                    markup_offset: *markup_offset,
                })
            }
        }
    }
    out
}

/// The tag that ended a block: `endif`, `else`, `when` and the like.
#[derive(Debug, Clone)]
struct EndTag<'a> {
    name: &'a str,
    markup: &'a str,
    offset: usize,
    markup_offset: usize,
}

struct Parser<'a> {
    source: &'a str,
    tokens: Vec<Token<'a>>,
    pos: usize,
}

impl<'a> Parser<'a> {
    /// Parses nodes until one of `ends` (or the end of input, when `ends` is empty).
    fn parse_block(&mut self, ends: &[&str]) -> Result<(Block, Option<EndTag<'a>>), RawError> {
        let mut block = Block::default();
        while self.pos < self.tokens.len() {
            let token = self.tokens[self.pos].clone();
            self.pos += 1;
            match token {
                Token::Text(text) => {
                    if !text.is_empty() {
                        block.nodes.push(Node::Text(text.into_boxed_str()));
                    }
                }
                Token::Output {
                    markup,
                    markup_offset,
                } => {
                    block
                        .nodes
                        .push(Node::Output(parse_filtered(markup, markup_offset)?));
                }
                Token::Tag {
                    name,
                    markup,
                    offset,
                    end,
                    markup_offset,
                } => {
                    if ends.contains(&name) {
                        return Ok((
                            block,
                            Some(EndTag {
                                name,
                                markup,
                                offset,
                                markup_offset,
                            }),
                        ));
                    }
                    if let Some(node) = self.parse_tag(name, markup, offset, end, markup_offset)? {
                        block.nodes.push(node);
                    }
                }
            }
        }
        if ends.is_empty() {
            Ok((block, None))
        } else {
            Err(RawError::syntax(
                format!(
                    "block is not closed: expected '{{% {} %}}'",
                    ends[ends.len() - 1]
                ),
                self.source.len(),
            ))
        }
    }

    fn parse_tag(
        &mut self,
        name: &'a str,
        markup: &'a str,
        offset: usize,
        end: usize,
        markup_offset: usize,
    ) -> Result<Option<Node>, RawError> {
        let node = match name {
            "if" | "unless" => {
                let mut branches = Vec::new();
                let mut otherwise = None;
                let first = parse_condition(markup, markup_offset)?;
                let (body, mut tag) = self.parse_block_closing(
                    &["elsif", "else", "endif", "endunless"],
                    name,
                    offset,
                )?;
                branches.push((first, body));
                loop {
                    match tag.name {
                        "elsif" => {
                            let cond = parse_condition(tag.markup, tag.markup_offset)?;
                            let (body, next) = self.parse_block_closing(
                                &["elsif", "else", "endif", "endunless"],
                                name,
                                offset,
                            )?;
                            branches.push((cond, body));
                            tag = next;
                        }
                        "else" => {
                            let (body, mut next) = self.parse_block_closing(
                                &["endif", "endunless", "elsif", "else"],
                                name,
                                offset,
                            )?;
                            // Ruby Liquid ignores branches after the first else.
                            while matches!(next.name, "elsif" | "else") {
                                next = self
                                    .parse_block_closing(
                                        &["endif", "endunless", "elsif", "else"],
                                        name,
                                        offset,
                                    )?
                                    .1;
                            }
                            otherwise = Some(body);
                            tag = next;
                        }
                        _ => break,
                    }
                }
                let expected_end = if name == "if" { "endif" } else { "endunless" };
                if tag.name != expected_end {
                    return Err(RawError::syntax(
                        format!(
                            "'{}' closes '{name}': use '{{% {expected_end} %}}'",
                            tag.name
                        ),
                        tag.offset,
                    ));
                }
                if name == "unless"
                    && let Some((cond, _)) = branches.first_mut()
                {
                    let taken =
                        std::mem::replace(cond, Condition::Value(Expr::Literal(Value::Nil)));
                    *cond = Condition::Not(Box::new(taken));
                }
                let mut node = Node::If {
                    branches,
                    otherwise,
                };
                suppress_blank_bodies(&mut node);
                node
            }
            "case" => {
                let subject = parse_single_expr(markup, markup_offset, "case")?;
                let (_, mut tag) =
                    self.parse_block_closing(&["when", "else", "endcase"], name, offset)?;
                let mut branches = Vec::new();
                while tag.name != "endcase" {
                    let (body, next) =
                        self.parse_block_closing(&["when", "else", "endcase"], name, offset)?;
                    if tag.name == "when" {
                        branches.push(CaseBranch::When(
                            parse_when(tag.markup, tag.markup_offset)?,
                            body,
                        ));
                    } else {
                        branches.push(CaseBranch::Else(body));
                    }
                    tag = next;
                }
                let mut node = Node::Case { subject, branches };
                suppress_blank_bodies(&mut node);
                node
            }
            "for" | "tablerow" => {
                let end_name = if name == "for" {
                    "endfor"
                } else {
                    "endtablerow"
                };
                let ends: &[&str] = if name == "for" {
                    &["else", "endfor"]
                } else {
                    &["endtablerow"]
                };
                let mut lp = parse_loop_header(markup, markup_offset, name)?;
                let (body, tag) = self.parse_block_closing(ends, name, offset)?;
                lp.body = body;
                if tag.name == "else" {
                    let (otherwise, _) = self.parse_block_closing(&[end_name], name, offset)?;
                    lp.otherwise = Some(otherwise);
                }
                let mut node = if name == "for" {
                    Node::For(Box::new(lp))
                } else {
                    Node::Tablerow(Box::new(lp))
                };
                suppress_blank_bodies(&mut node);
                node
            }
            "assign" => {
                let Some(eq) = markup.find('=') else {
                    return Err(RawError::syntax(
                        "assign needs '=': write {% assign name = value %}",
                        markup_offset,
                    ));
                };
                let var = markup[..eq].trim();
                check_identifier(var, markup_offset)?;
                let value = parse_filtered(&markup[eq + 1..], markup_offset + eq + 1)?;
                Node::Assign {
                    name: var.into(),
                    value,
                }
            }
            "capture" => {
                let var = unquote(markup.trim());
                check_identifier(var, markup_offset)?;
                let (body, _) = self.parse_block_closing(&["endcapture"], name, offset)?;
                Node::Capture {
                    name: var.into(),
                    body,
                }
            }
            "increment" | "decrement" => {
                let var = markup.trim();
                check_identifier(var, markup_offset)?;
                if name == "increment" {
                    Node::Increment(var.into())
                } else {
                    Node::Decrement(var.into())
                }
            }
            "cycle" => parse_cycle(markup, markup_offset)?,
            "break" => Node::Break,
            "continue" => Node::Continue,
            "echo" => Node::Output(parse_filtered(markup, markup_offset)?),
            "comment" => {
                self.skip_comment(offset)?;
                return Ok(None);
            }
            "doc" => {
                if !markup.trim().is_empty() {
                    return Err(RawError::syntax("doc takes no arguments", markup_offset));
                }
                let rest = &self.source[end..];
                let Some((body_len, close_end)) = find_end_tag(rest, "enddoc") else {
                    return Err(RawError::syntax(
                        "'doc' is never closed: add '{% enddoc %}'",
                        offset,
                    ));
                };
                if find_end_tag(&rest[..body_len], "doc").is_some() {
                    return Err(RawError::syntax("doc blocks cannot be nested", offset));
                }
                self.skip_tokens_until(end + close_end);
                return Ok(None);
            }
            "#" => {
                // An inline comment: every line of it must itself start with '#'.
                for line in markup.split('\n').skip(1) {
                    let line = line.trim();
                    if !line.is_empty() && !line.starts_with('#') {
                        return Err(RawError::syntax(
                            "every line of an inline comment must start with '#'",
                            markup_offset,
                        ));
                    }
                }
                return Ok(None);
            }
            "raw" => {
                let rest = &self.source[end..];
                let Some((body_len, close_end)) = find_endraw(rest) else {
                    return Err(RawError::syntax(
                        "raw is not closed: add {% endraw %}",
                        offset,
                    ));
                };
                let body = rest[..body_len].to_string();
                let close_abs = end + close_end;
                // Skip every token that lies inside the raw body, and the endraw tag itself.
                self.skip_tokens_until(close_abs);
                // A `-%}` on the endraw tag trims the text after it.
                if let Some(Token::Text(next)) = self.tokens.get_mut(self.pos)
                    && self.source[..close_abs].ends_with("-%}")
                {
                    *next = next.trim_start().to_string();
                }
                Node::Text(body.into_boxed_str())
            }
            "ifchanged" => {
                let (body, _) = self.parse_block_closing(&["endifchanged"], name, offset)?;
                Node::IfChanged(body)
            }
            "liquid" => {
                let nodes = self.parse_liquid_tag(markup, markup_offset)?;
                return Ok(Some(Node::If {
                    branches: vec![(
                        Condition::Value(Expr::Literal(Value::Bool(true))),
                        Block { nodes },
                    )],
                    otherwise: None,
                }));
            }
            "include" | "render" => {
                let partial = parse_partial(markup, markup_offset, name)?;
                if name == "include" {
                    Node::Include(Box::new(partial))
                } else {
                    Node::Render(Box::new(partial))
                }
            }
            "abort_message" => Node::Abort(parse_abort(markup, markup_offset)?),
            "connected_content" => Node::ConnectedContent(Box::new(
                crate::connected::ConnectedContentTag::parse(markup, markup_offset)?,
            )),
            "" => {
                return Err(RawError::syntax(
                    "tag has no name: write {% name ... %}",
                    offset,
                ));
            }
            other => {
                let hint = match other {
                    "else" | "elsif" | "endif" | "endfor" | "endcase" | "when" | "endunless"
                    | "endcapture" | "endtablerow" | "endcomment" | "endraw" | "endifchanged"
                    | "enddoc" => " is not inside the block it belongs to",
                    _ => " is not a known tag",
                };
                return Err(RawError::syntax(format!("'{other}'{hint}"), offset));
            }
        };
        Ok(Some(node))
    }

    /// Like [`Parser::parse_block`], but an unclosed block names the tag that opened it.
    fn parse_block_closing(
        &mut self,
        ends: &[&str],
        opener: &str,
        opener_offset: usize,
    ) -> Result<(Block, EndTag<'a>), RawError> {
        let (block, end) = match self.parse_block(ends) {
            Ok(found) => found,
            Err(e) if e.offset == self.source.len() => {
                return Err(RawError::syntax(
                    format!(
                        "'{opener}' is never closed: add '{{% {} %}}'",
                        ends[ends.len() - 1]
                    ),
                    opener_offset,
                ));
            }
            Err(e) => return Err(e),
        };
        match end {
            Some(end) => Ok((block, end)),
            None => Err(RawError::syntax(
                format!("'{opener}' is never closed"),
                opener_offset,
            )),
        }
    }

    fn skip_comment(&mut self, offset: usize) -> Result<(), RawError> {
        let mut depth = 1;
        while self.pos < self.tokens.len() {
            let token = self.tokens[self.pos].clone();
            self.pos += 1;
            if let Token::Tag { name, end, .. } = token {
                match name {
                    "comment" => depth += 1,
                    "endcomment" => {
                        depth -= 1;
                        if depth == 0 {
                            return Ok(());
                        }
                    }
                    "raw" => {
                        let rest = &self.source[end..];
                        if let Some((_, close_end)) = find_endraw(rest) {
                            self.skip_tokens_until(end + close_end);
                        }
                    }
                    _ => {}
                }
            }
        }
        Err(RawError::syntax(
            "'comment' is never closed: add '{% endcomment %}'",
            offset,
        ))
    }

    /// Skips tokens up to and including the tag that ends at `close_abs`.
    fn skip_tokens_until(&mut self, close_abs: usize) {
        while self.pos < self.tokens.len() {
            let at = match &self.tokens[self.pos] {
                Token::Tag { end, .. } => *end,
                _ => 0,
            };
            self.pos += 1;
            if at == close_abs {
                break;
            }
        }
    }

    /// `{% liquid %}`: one tag per line, without delimiters.
    fn parse_liquid_tag(
        &mut self,
        markup: &'a str,
        markup_offset: usize,
    ) -> Result<Vec<Node>, RawError> {
        let mut tokens = Vec::new();
        let mut line_start = 0;
        for line in markup.split('\n') {
            let lead = line.len() - line.trim_start().len();
            let trimmed = line.trim();
            let at = markup_offset + line_start + lead;
            line_start += line.len() + 1;
            if trimmed.is_empty() {
                continue;
            }
            let name_len = if trimmed.starts_with('#') {
                1
            } else {
                trimmed
                    .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .unwrap_or(trimmed.len())
            };
            let name = &trimmed[..name_len];
            tokens.push(Token::Tag {
                name,
                markup: &trimmed[name_len..],
                offset: at,
                end: at + trimmed.len(),
                markup_offset: at + name_len,
            });
        }
        let mut inner = Parser {
            source: self.source,
            tokens,
            pos: 0,
        };
        let (block, end) = inner.parse_block(&[])?;
        if let Some(end) = end {
            return Err(RawError::syntax(
                format!("unexpected '{}' in liquid tag", end.name),
                end.offset,
            ));
        }
        Ok(block.nodes)
    }
}

fn find_endraw(rest: &str) -> Option<(usize, usize)> {
    find_end_tag(rest, "endraw")
}

/// Finds `{% name %}` (with optional `-` markers) in `rest`, for tags whose body is not Liquid.
/// Returns the body length and the end of the closing tag. A `{%-` on the closing tag does not
/// trim the body: it is not Liquid (python-liquid; Ruby 5.4 fails to close such a raw at all).
fn find_end_tag(rest: &str, tag_name: &str) -> Option<(usize, usize)> {
    let mut from = 0;
    while let Some(open) = rest[from..].find("{%") {
        let start = from + open;
        let mut i = start + 2;
        let bytes = rest.as_bytes();
        if bytes.get(i) == Some(&b'-') {
            i += 1;
        }
        let after = &rest[i..];
        let trimmed = after.trim_start();
        if let Some(stripped) = trimmed.strip_prefix(tag_name) {
            let stripped2 = stripped.trim_start();
            let stripped3 = stripped2.strip_prefix('-').unwrap_or(stripped2);
            if stripped3.starts_with("%}") {
                let close_end = rest.len() - stripped3.len() + 2;
                return Some((start, close_end));
            }
        }
        from = start + 2;
    }
    None
}

/// Whether a block renders nothing but whitespace: then that whitespace is dropped (Ruby Liquid's
/// blank-body rule, which keeps `{% if %}{% assign %}{% endif %}` from emitting blank lines).
fn block_is_blank(block: &Block) -> bool {
    block.nodes.iter().all(node_is_blank)
}

fn node_is_blank(node: &Node) -> bool {
    match node {
        Node::Text(t) => t.trim().is_empty(),
        Node::Assign { .. } | Node::Capture { .. } => true,
        Node::If {
            branches,
            otherwise,
        } => {
            branches.iter().all(|(_, b)| block_is_blank(b))
                && otherwise.as_ref().is_none_or(block_is_blank)
        }
        Node::Case { branches, .. } => branches.iter().all(|b| match b {
            CaseBranch::When(_, b) | CaseBranch::Else(b) => block_is_blank(b),
        }),
        Node::For(lp) => {
            block_is_blank(&lp.body) && lp.otherwise.as_ref().is_none_or(block_is_blank)
        }
        _ => false,
    }
}

fn strip_whitespace_text(block: &mut Block) {
    block
        .nodes
        .retain(|n| !matches!(n, Node::Text(t) if t.trim().is_empty()));
}

fn suppress_blank_bodies(node: &mut Node) {
    if !node_is_blank(node) {
        return;
    }
    match node {
        Node::If {
            branches,
            otherwise,
        } => {
            branches
                .iter_mut()
                .for_each(|(_, b)| strip_whitespace_text(b));
            if let Some(b) = otherwise {
                strip_whitespace_text(b);
            }
        }
        Node::Case { branches, .. } => {
            for b in branches {
                match b {
                    CaseBranch::When(_, b) | CaseBranch::Else(b) => strip_whitespace_text(b),
                }
            }
        }
        Node::For(lp) => {
            strip_whitespace_text(&mut lp.body);
            if let Some(b) = &mut lp.otherwise {
                strip_whitespace_text(b);
            }
        }
        _ => {}
    }
}

fn unquote(s: &str) -> &str {
    let b = s.as_bytes();
    if b.len() >= 2 && (b[0] == b'\'' || b[0] == b'"') && b[b.len() - 1] == b[0] {
        &s[1..s.len() - 1]
    } else {
        s
    }
}

fn check_identifier(name: &str, offset: usize) -> Result<(), RawError> {
    let valid = !name.is_empty()
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_alphanumeric() || c == '_')
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '-');
    if valid {
        Ok(())
    } else {
        Err(RawError::syntax(
            format!("'{name}' is not a valid variable name"),
            offset,
        ))
    }
}

/// A cursor over expression tokens.
pub(crate) struct Tokens<'a> {
    toks: Vec<Spanned<'a>>,
    pos: usize,
    end_offset: usize,
}

impl<'a> Tokens<'a> {
    pub(crate) fn new(markup: &'a str, base: usize) -> Result<Tokens<'a>, RawError> {
        Ok(Tokens {
            toks: lexer::lex_expression(markup, base)?,
            pos: 0,
            end_offset: base + markup.len(),
        })
    }

    fn peek(&self) -> Option<&Tok<'a>> {
        self.toks.get(self.pos).map(|s| &s.tok)
    }

    fn peek_at(&self, n: usize) -> Option<&Tok<'a>> {
        self.toks.get(self.pos + n).map(|s| &s.tok)
    }

    fn offset(&self) -> usize {
        self.toks
            .get(self.pos)
            .map_or(self.end_offset, |s| s.offset)
    }

    fn next(&mut self) -> Option<Tok<'a>> {
        let t = self.toks.get(self.pos).map(|s| s.tok.clone());
        self.pos += 1;
        t
    }

    fn eat(&mut self, tok: &Tok<'_>) -> bool {
        if self.peek() == Some(tok) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, tok: &Tok<'_>, what: &str) -> Result<(), RawError> {
        if self.eat(tok) {
            Ok(())
        } else {
            Err(self.unexpected(what))
        }
    }

    fn at_end(&self) -> bool {
        self.pos >= self.toks.len()
    }

    fn unexpected(&self, expected: &str) -> RawError {
        match self.toks.get(self.pos) {
            Some(s) => RawError::syntax(
                format!("unexpected {}: expected {expected}", describe(&s.tok)),
                s.offset,
            ),
            None => RawError::syntax(
                format!("unexpected end of expression: expected {expected}"),
                self.end_offset,
            ),
        }
    }

    fn expect_end(&self) -> Result<(), RawError> {
        if self.at_end() {
            Ok(())
        } else {
            Err(self.unexpected("end of tag"))
        }
    }

    pub(crate) fn expr(&mut self) -> Result<Expr, RawError> {
        let offset = self.offset();
        match self.next() {
            Some(Tok::Str(s)) => Ok(Expr::Literal(Value::str(s))),
            Some(Tok::Int(i)) => Ok(Expr::Literal(Value::Int(i))),
            Some(Tok::Float(f)) => Ok(Expr::Literal(Value::Float(f))),
            Some(Tok::LParen) => {
                let start = self.expr()?;
                self.expect(&Tok::DotDot, "'..' in a range")?;
                let end = self.expr()?;
                self.expect(&Tok::RParen, "')' to close the range")?;
                Ok(Expr::Range(Box::new(start), Box::new(end)))
            }
            Some(Tok::Ident(word)) => {
                let continues = matches!(self.peek(), Some(Tok::Dot | Tok::LBracket));
                if !continues {
                    match word {
                        "true" => return Ok(Expr::Literal(Value::Bool(true))),
                        "false" => return Ok(Expr::Literal(Value::Bool(false))),
                        "nil" | "null" => return Ok(Expr::Literal(Value::Nil)),
                        "empty" => return Ok(Expr::Literal(Value::Empty)),
                        "blank" => return Ok(Expr::Literal(Value::Blank)),
                        _ => {}
                    }
                }
                self.path(PathRoot::Var(word.into()))
            }
            Some(Tok::Braze(name)) => self.path(PathRoot::Braze(name.trim().into())),
            Some(Tok::LBracket) => {
                let index = self.expr()?;
                self.expect(&Tok::RBracket, "']'")?;
                self.path(PathRoot::Index(index))
            }
            _ => {
                self.pos -= 1;
                let _ = offset;
                Err(self.unexpected("a value"))
            }
        }
    }

    fn path(&mut self, root: PathRoot) -> Result<Expr, RawError> {
        let mut segments = Vec::new();
        loop {
            match self.peek() {
                Some(Tok::Dot) => {
                    self.pos += 1;
                    match self.next() {
                        Some(Tok::Ident(k)) => segments.push(Segment::Key(k.into())),
                        Some(Tok::Braze(k)) => segments.push(Segment::Braze(k.trim().into())),
                        _ => {
                            self.pos -= 1;
                            return Err(self.unexpected("a property name after '.'"));
                        }
                    }
                }
                Some(Tok::LBracket) => {
                    self.pos += 1;
                    let index = self.expr()?;
                    self.expect(&Tok::RBracket, "']'")?;
                    segments.push(Segment::Index(index));
                }
                _ => break,
            }
        }
        Ok(Expr::Path(Arc::new(Path { root, segments })))
    }

    pub(crate) fn filters(&mut self) -> Result<Vec<FilterCall>, RawError> {
        let mut filters = Vec::new();
        while self.eat(&Tok::Pipe) {
            let offset = self.offset();
            let Some(Tok::Ident(name)) = self.next() else {
                self.pos -= 1;
                return Err(self.unexpected("a filter name after '|'"));
            };
            if !crate::filters::is_known(name) {
                return Err(RawError::syntax(format!("unknown filter '{name}'"), offset));
            }
            let mut call = FilterCall {
                name: name.into(),
                args: Vec::new(),
                kwargs: Vec::new(),
                offset,
            };
            if self.eat(&Tok::Colon) {
                loop {
                    if let (Some(Tok::Ident(key)), Some(Tok::Colon)) =
                        (self.peek(), self.peek_at(1))
                    {
                        let key: Arc<str> = (*key).into();
                        self.pos += 2;
                        call.kwargs.push((key, self.expr()?));
                    } else {
                        call.args.push(self.expr()?);
                    }
                    if !self.eat(&Tok::Comma) {
                        break;
                    }
                }
            }
            filters.push(call);
        }
        Ok(filters)
    }

    fn condition(&mut self) -> Result<Condition, RawError> {
        let left = self.comparison()?;
        match self.peek() {
            Some(Tok::Word("and")) => {
                self.pos += 1;
                Ok(Condition::And(Box::new(left), Box::new(self.condition()?)))
            }
            Some(Tok::Word("or")) => {
                self.pos += 1;
                Ok(Condition::Or(Box::new(left), Box::new(self.condition()?)))
            }
            _ => Ok(left),
        }
    }

    fn comparison(&mut self) -> Result<Condition, RawError> {
        let left = self.expr()?;
        let offset = self.offset();
        let op = match self.peek() {
            Some(Tok::Op(op)) => match *op {
                "==" => CompareOp::Eq,
                "!=" | "<>" => CompareOp::Ne,
                "<" => CompareOp::Lt,
                ">" => CompareOp::Gt,
                "<=" => CompareOp::Le,
                _ => CompareOp::Ge,
            },
            Some(Tok::Word("contains")) => CompareOp::Contains,
            Some(Tok::Word(_)) | None => return Ok(Condition::Value(left)),
            Some(_) => {
                return Err(
                    self.unexpected("a comparison operator, 'and', 'or' or the end of the tag")
                );
            }
        };
        self.pos += 1;
        let right = self.expr()?;
        Ok(Condition::Compare(left, op, right, offset))
    }
}

fn describe(tok: &Tok<'_>) -> String {
    match tok {
        Tok::Ident(s) | Tok::Word(s) => format!("'{s}'"),
        Tok::Braze(s) => format!("'${{{s}}}'"),
        Tok::Str(s) => format!("string '{s}'"),
        Tok::Int(i) => format!("number {i}"),
        Tok::Float(f) => format!("number {f}"),
        Tok::Dot => "'.'".into(),
        Tok::DotDot => "'..'".into(),
        Tok::LBracket => "'['".into(),
        Tok::RBracket => "']'".into(),
        Tok::LParen => "'('".into(),
        Tok::RParen => "')'".into(),
        Tok::Colon => "':'".into(),
        Tok::Comma => "','".into(),
        Tok::Pipe => "'|'".into(),
        Tok::Assign => "'='".into(),
        Tok::Op(op) => format!("'{op}'"),
    }
}

pub(crate) fn parse_filtered(markup: &str, offset: usize) -> Result<Filtered, RawError> {
    let mut toks = Tokens::new(markup, offset)?;
    if toks.at_end() {
        return Ok(Filtered {
            expr: Expr::Literal(Value::Nil),
            filters: Vec::new(),
        });
    }
    let expr = toks.expr()?;
    let filters = toks.filters()?;
    toks.expect_end()?;
    Ok(Filtered { expr, filters })
}

fn parse_condition(markup: &str, offset: usize) -> Result<Condition, RawError> {
    let mut toks = Tokens::new(markup, offset)?;
    let cond = toks.condition()?;
    toks.expect_end()?;
    Ok(cond)
}

fn parse_single_expr(markup: &str, offset: usize, tag: &str) -> Result<Expr, RawError> {
    let mut toks = Tokens::new(markup, offset)?;
    if toks.at_end() {
        return Err(RawError::syntax(format!("'{tag}' needs a value"), offset));
    }
    let expr = toks.expr()?;
    toks.expect_end()?;
    Ok(expr)
}

fn parse_when(markup: &str, offset: usize) -> Result<Vec<Expr>, RawError> {
    let mut toks = Tokens::new(markup, offset)?;
    if toks.at_end() {
        return Err(RawError::syntax("'when' needs at least one value", offset));
    }
    let mut values = vec![toks.expr()?];
    while toks.eat(&Tok::Comma) || toks.eat(&Tok::Word("or")) {
        values.push(toks.expr()?);
    }
    toks.expect_end()?;
    Ok(values)
}

fn parse_loop_header(markup: &str, offset: usize, tag: &str) -> Result<ForLoop, RawError> {
    let mut toks = Tokens::new(markup, offset)?;
    let var = match toks.next() {
        Some(Tok::Ident(v)) => v,
        _ => {
            return Err(RawError::syntax(
                format!("'{tag}' needs a loop variable: {{% {tag} item in items %}}"),
                offset,
            ));
        }
    };
    check_identifier(var, offset)?;
    if toks.next() != Some(Tok::Ident("in")) {
        toks.pos -= 1;
        return Err(toks.unexpected("'in'"));
    }
    let iterable_start = toks.offset() - offset;
    let iterable = toks.expr()?;
    let iterable_end = toks.offset() - offset;
    let iterable_src = markup
        .get(iterable_start..iterable_end)
        .unwrap_or(markup)
        .trim();
    let mut lp = ForLoop {
        var: var.into(),
        iterable,
        limit: None,
        offset: None,
        cols: None,
        reversed: false,
        body: Block::default(),
        otherwise: None,
        name: format!("{var}-{iterable_src}").into(),
        offset_pos: offset,
    };
    while !toks.at_end() {
        if toks.eat(&Tok::Comma) && toks.at_end() {
            break;
        }
        match toks.next() {
            Some(Tok::Ident("reversed")) if tag == "for" => lp.reversed = true,
            Some(Tok::Ident(attr @ ("limit" | "offset" | "cols"))) => {
                toks.expect(&Tok::Colon, "':' after the loop attribute")?;
                if attr == "offset" && toks.peek() == Some(&Tok::Ident("continue")) {
                    toks.pos += 1;
                    lp.offset = Some(LoopOffset::Continue);
                    continue;
                }
                let value = toks.expr()?;
                if let Expr::Literal(v) = &value
                    && !matches!(v, Value::Int(_) | Value::Float(_) | Value::Nil)
                    && !matches!(v, Value::Str(s) if s.trim().parse::<i64>().is_ok())
                {
                    return Err(RawError::syntax(
                        format!("loop attribute '{attr}' must be a number"),
                        offset,
                    ));
                }
                match attr {
                    "limit" => lp.limit = Some(value),
                    "offset" => lp.offset = Some(LoopOffset::Expr(value)),
                    _ => lp.cols = Some(value),
                }
            }
            _ => {
                toks.pos -= 1;
                return Err(
                    toks.unexpected("'reversed', 'limit:', 'offset:' or the end of the tag")
                );
            }
        }
    }
    Ok(lp)
}

fn parse_cycle(markup: &str, offset: usize) -> Result<Node, RawError> {
    let mut toks = Tokens::new(markup, offset)?;
    let mut group = None;
    let first = toks.expr()?;
    let values_start;
    if toks.eat(&Tok::Colon) {
        group = Some(first);
        values_start = toks.offset();
    } else {
        toks.pos = 0;
        values_start = toks.offset();
    }
    let mut values = vec![toks.expr()?];
    while toks.eat(&Tok::Comma) {
        values.push(toks.expr()?);
    }
    toks.expect_end()?;
    let key: Arc<str> = markup
        .get(values_start.saturating_sub(offset)..)
        .unwrap_or(markup)
        .trim()
        .into();
    Ok(Node::Cycle { group, values, key })
}

fn parse_partial(markup: &str, offset: usize, tag: &str) -> Result<Partial, RawError> {
    let mut toks = Tokens::new(markup, offset)?;
    let name = toks.expr()?;
    if tag == "render" && !matches!(name, Expr::Literal(Value::Str(_))) {
        return Err(RawError::syntax(
            "render needs the template name as a quoted string",
            offset,
        ));
    }
    let mut partial = Partial {
        name,
        bound: None,
        alias: None,
        args: Vec::new(),
        offset,
    };
    if let Some(Tok::Ident(kw @ ("with" | "for"))) = toks.peek().cloned()
        && toks.peek_at(1) != Some(&Tok::Colon)
    {
        toks.pos += 1;
        let value = toks.expr()?;
        partial.bound = Some((value, kw == "for"));
        if toks.peek() == Some(&Tok::Ident("as")) {
            toks.pos += 1;
            match toks.next() {
                Some(Tok::Ident(alias)) => partial.alias = Some(alias.into()),
                _ => return Err(RawError::syntax("'as' needs a variable name", offset)),
            }
        }
    }
    loop {
        toks.eat(&Tok::Comma);
        if toks.at_end() {
            break;
        }
        match (toks.next(), toks.next()) {
            (Some(Tok::Ident(key)), Some(Tok::Colon)) => {
                let value = toks.expr()?;
                partial.args.push((key.into(), value));
            }
            _ => {
                toks.pos -= 2;
                return Err(toks.unexpected("'name: value' arguments"));
            }
        }
    }
    Ok(partial)
}

fn parse_abort(markup: &str, offset: usize) -> Result<Option<Box<str>>, RawError> {
    let inner = markup.trim();
    let inner = inner
        .strip_prefix('(')
        .and_then(|s| s.strip_suffix(')'))
        .unwrap_or(inner)
        .trim();
    if inner.is_empty() {
        return Ok(None);
    }
    let b = inner.as_bytes();
    if b.len() >= 2 && (b[0] == b'\'' || b[0] == b'"') && b[b.len() - 1] == b[0] {
        return Ok(Some(inner[1..inner.len() - 1].into()));
    }
    Err(RawError::syntax(
        "abort_message takes an optional quoted reason: {% abort_message('reason') %}",
        offset,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_arithmetic_operators() {
        assert!(parse_document("{% assign x = 1 + 2 %}").is_err());
    }

    #[test]
    fn braze_references_inside_tags_parse() {
        parse_document("{% if {{custom_attribute.${lead score}}} > 50 %}x{% endif %}")
            .expect("valid");
        parse_document(
            "{% assign v = custom_attribute.${one} | plus: {{custom_attribute.${two}}} %}",
        )
        .expect("valid");
    }

    #[test]
    fn unclosed_block_names_the_opener() {
        let err = parse_document("{% if x %}never closed").expect_err("invalid");
        assert!(
            err.message.contains("'if' is never closed"),
            "{}",
            err.message
        );
        assert_eq!(err.offset, 0);
    }
}
