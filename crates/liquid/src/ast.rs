//! The parsed form of a template. Immutable after parsing; rendering only reads it.

use std::sync::Arc;

use crate::value::Value;

#[derive(Debug, Default)]
pub(crate) struct Block {
    pub nodes: Vec<Node>,
}

#[derive(Debug)]
pub(crate) enum Node {
    Text(Box<str>),
    Output(Filtered),
    If {
        branches: Vec<(Condition, Block)>,
        otherwise: Option<Block>,
    },
    Case {
        subject: Expr,
        branches: Vec<CaseBranch>,
    },
    For(Box<ForLoop>),
    Tablerow(Box<ForLoop>),
    Assign {
        name: Arc<str>,
        value: Filtered,
    },
    Capture {
        name: Arc<str>,
        body: Block,
    },
    Increment(Arc<str>),
    Decrement(Arc<str>),
    Cycle {
        group: Option<Expr>,
        values: Vec<Expr>,
        key: Arc<str>,
    },
    Break,
    Continue,
    IfChanged(Block),
    Include(Box<Partial>),
    Render(Box<Partial>),
    Abort(Option<Box<str>>),
    ConnectedContent(Box<crate::connected::ConnectedContentTag>),
}

#[derive(Debug)]
pub(crate) enum CaseBranch {
    When(Vec<Expr>, Block),
    Else(Block),
}

#[derive(Debug)]
pub(crate) struct ForLoop {
    pub var: Arc<str>,
    pub iterable: Expr,
    pub limit: Option<Expr>,
    pub offset: Option<LoopOffset>,
    pub cols: Option<Expr>,
    pub reversed: bool,
    pub body: Block,
    pub otherwise: Option<Block>,
    /// The tag's markup, which names the loop for `offset: continue`.
    pub name: Arc<str>,
    pub offset_pos: usize,
}

#[derive(Debug)]
pub(crate) enum LoopOffset {
    Continue,
    Expr(Expr),
}

#[derive(Debug)]
pub(crate) struct Partial {
    pub name: Expr,
    /// `with x` / `for x`, with the alias (`as y`) or the partial's name as the variable.
    pub bound: Option<(Expr, bool)>,
    pub alias: Option<Arc<str>>,
    pub args: Vec<(Arc<str>, Expr)>,
    pub offset: usize,
}

/// An expression followed by filters: `x | f: a, key: b | g`.
#[derive(Debug)]
pub(crate) struct Filtered {
    pub expr: Expr,
    pub filters: Vec<FilterCall>,
}

#[derive(Debug)]
pub(crate) struct FilterCall {
    pub name: Arc<str>,
    pub args: Vec<Expr>,
    pub kwargs: Vec<(Arc<str>, Expr)>,
    pub offset: usize,
}

#[derive(Debug, Clone)]
pub(crate) enum Expr {
    Literal(Value),
    Path(Arc<Path>),
    Range(Box<Expr>, Box<Expr>),
}

#[derive(Debug)]
pub(crate) struct Path {
    pub root: PathRoot,
    pub segments: Vec<Segment>,
}

#[derive(Debug)]
pub(crate) enum PathRoot {
    Var(Arc<str>),
    /// `${first_name}` at the root: a Braze standard attribute.
    Braze(Arc<str>),
    /// `['name']` or `[expr]` at the root.
    Index(Expr),
}

#[derive(Debug)]
pub(crate) enum Segment {
    Key(Arc<str>),
    /// `.${name}`: a Braze key, which may itself be a dotted path (`address.city`).
    Braze(Arc<str>),
    Index(Expr),
}

#[derive(Debug)]
pub(crate) enum Condition {
    Value(Expr),
    Compare(Expr, CompareOp, Expr, usize),
    And(Box<Condition>, Box<Condition>),
    Or(Box<Condition>, Box<Condition>),
    /// The first branch of `unless`.
    Not(Box<Condition>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CompareOp {
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
    Contains,
}
