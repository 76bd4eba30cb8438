//! Braze-flavoured Liquid: Shopify Liquid 5 plus Braze's dialect (`${attribute}` references,
//! `abort_message`, `connected_content` and Braze's filters).
//!
//! Parse once, render many: a [`Template`] is immutable, `Send + Sync`, and renders against a
//! [`Context`] any number of times, from any number of threads. Rendering ends in an [`Outcome`]:
//! the text, or an abort with its reason, which is a normal result and not an error.
//!
//! This crate must not know about HTTP clients, databases or campaigns: connected_content goes
//! through the [`Fetcher`] trait that the caller implements.

mod ast;
mod connected;
mod context;
mod error;
mod filters;
mod lexer;
mod parser;
mod render;
mod value;

pub mod golden;

use std::sync::Arc;

pub use connected::{
    ConnectedContent, ConnectedContentConfig, CredentialStore, FetchError, FetchRequest,
    FetchResponse, Fetcher, Method, TokenCredential, TokenFailure, is_token_request, validate_url,
};
pub use context::{Context, DEFAULT_MAX_OUTPUT_BYTES, PartialSource};
pub use error::{Error, ErrorKind, Location};
pub use value::{Object, Value};

/// A compiled template.
#[derive(Debug)]
pub struct Template {
    source: Arc<str>,
    root: ast::Block,
    /// The output buffer's first capacity (see [`output_hint`]).
    output_hint: usize,
}

/// Bytes a render's output is likely to need at least: the top-level text plus some per top-level
/// `{{ }}`, so a short template (a header, a one-line body) allocates its output once instead of
/// doubling it from 8 bytes. Nested blocks are left out: they may not render at all. At least
/// `MIN`, so a template whose text is all in blocks does not start from a few bytes either.
fn output_hint(root: &ast::Block) -> usize {
    const PER_OUTPUT: usize = 32;
    const MIN: usize = 64;
    const MAX: usize = 64 * 1024;
    root.nodes
        .iter()
        .map(|node| match node {
            ast::Node::Text(text) => text.len(),
            ast::Node::Output(_) => PER_OUTPUT,
            _ => 0,
        })
        .sum::<usize>()
        .clamp(MIN, MAX)
}

/// How a render ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Rendered(String),
    /// `{% abort_message %}` ran: the message must not be sent. The reason is what Braze logs.
    Aborted {
        reason: String,
    },
    /// A connected_content call to an OAuth token endpoint failed (Braze would render the
    /// header as `Bearer ` and send it anyway). The caller treats it as a failed attempt.
    TokenFailed(Box<TokenFailure>),
}

impl Outcome {
    /// The rendered text, or `None` for an abort.
    pub fn into_rendered(self) -> Option<String> {
        match self {
            Outcome::Rendered(s) => Some(s),
            Outcome::Aborted { .. } | Outcome::TokenFailed(_) => None,
        }
    }
}

impl Template {
    /// Compiles `source`; every syntax error is reported here with its line and column.
    pub fn parse(source: &str) -> Result<Template, Error> {
        let root = parser::parse_document(source).map_err(|e| e.locate(source))?;
        Ok(Template {
            source: source.into(),
            output_hint: output_hint(&root),
            root,
        })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether rendering may make HTTP calls (callers run such renders off the async executor).
    pub fn uses_connected_content(&self) -> bool {
        fn block_has(block: &ast::Block) -> bool {
            block.nodes.iter().any(node_has)
        }
        fn node_has(node: &ast::Node) -> bool {
            use ast::Node::*;
            match node {
                ConnectedContent(_) | Include(_) | Render(_) => true,
                If {
                    branches,
                    otherwise,
                } => {
                    branches.iter().any(|(_, b)| block_has(b))
                        || otherwise.as_ref().is_some_and(block_has)
                }
                Case { branches, .. } => branches.iter().any(|b| match b {
                    ast::CaseBranch::When(_, b) | ast::CaseBranch::Else(b) => block_has(b),
                }),
                For(lp) | Tablerow(lp) => {
                    block_has(&lp.body) || lp.otherwise.as_ref().is_some_and(block_has)
                }
                Capture { body, .. } | IfChanged(body) => block_has(body),
                _ => false,
            }
        }
        block_has(&self.root)
    }

    /// Renders against `context`.
    pub fn render(&self, context: &Context) -> Result<Outcome, Error> {
        let mut out = String::with_capacity(self.output_hint);
        let mut state = render::State::new(context);
        match state.render_block(&self.root, &mut out) {
            Ok(()) => Ok(Outcome::Rendered(out)),
            Err(render::Stop::Abort(reason)) => Ok(Outcome::Aborted { reason }),
            Err(render::Stop::TokenFailed(failure)) => Ok(Outcome::TokenFailed(failure)),
            Err(render::Stop::Error(e)) => Err(e.locate(&self.source)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn templates_are_shareable() {
        assert_send_sync::<Template>();
        assert_send_sync::<Context>();
    }

    #[test]
    fn syntax_errors_have_line_and_column() {
        let err = Template::parse("line one\n  {{ x | nosuchfilter }}").expect_err("invalid");
        assert_eq!(err.kind, ErrorKind::Syntax);
        assert_eq!(
            err.location,
            Location {
                line: 2,
                column: 10
            }
        );
        assert!(
            err.to_string().contains("unknown filter 'nosuchfilter'"),
            "{err}"
        );
    }

    #[test]
    fn strings_built_by_assign_and_capture_are_bounded() {
        // Doubling a string 28 times would hold 256 MB; past the cap the render stops.
        let doubling = format!(
            "{{% assign s = 'xxxxxxxx' %}}{}{{{{ s | size }}}}",
            "{% assign s = s | append: s %}".repeat(28)
        );
        let t = Template::parse(&doubling).expect("valid");
        let err = t
            .render(&Context::new().with_max_output_bytes(1 << 20))
            .expect_err("bounded");
        assert_eq!(err.kind, ErrorKind::Limit);
        assert!(err.message.contains("assign or capture"), "{}", err.message);
        let captured = format!(
            "{{% assign s = 'xxxxxxxx' %}}{}",
            "{% capture s %}{{ s }}{{ s }}{% endcapture %}".repeat(28)
        );
        let err = Template::parse(&captured)
            .expect("valid")
            .render(&Context::new().with_max_output_bytes(1 << 20))
            .expect_err("bounded");
        assert_eq!(err.kind, ErrorKind::Limit);
        // Under the cap nothing changes.
        let small = format!(
            "{{% assign s = 'x' %}}{}{{{{ s | size }}}}",
            "{% assign s = s | append: s %}".repeat(10)
        );
        assert_eq!(
            Template::parse(&small)
                .expect("valid")
                .render(&Context::new()),
            Ok(Outcome::Rendered("1024".into()))
        );
    }

    #[test]
    fn loops_are_bounded_in_time() {
        let t = Template::parse(
            "{% for a in (1..3000) %}{% for b in (1..3000) %}{% endfor %}{% endfor %}",
        )
        .expect("valid");
        let err = t
            .render(&Context::new().with_max_loop_time(std::time::Duration::ZERO))
            .expect_err("bounded");
        assert_eq!(err.kind, ErrorKind::Limit);
        assert!(
            err.message.contains("loops ran longer than"),
            "{}",
            err.message
        );
    }

    #[test]
    fn abort_is_an_outcome() {
        let t = Template::parse("x{% abort_message('not at threshold') %}y").expect("valid");
        assert_eq!(
            t.render(&Context::new()),
            Ok(Outcome::Aborted {
                reason: "not at threshold".into()
            })
        );
    }
}
