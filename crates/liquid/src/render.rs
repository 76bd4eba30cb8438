//! Walks a parsed template against a [`Context`](crate::Context). All mutable state of one render
//! (assigns, counters, cycles, loop interrupts, the output buffer) lives in [`State`], so a template
//! is shared read-only between any number of concurrent renders.

use rustc_hash::FxHashMap as HashMap;
use std::fmt::Write as _;
use std::sync::Arc;

use crate::ast::*;
use crate::context::Context;
use crate::error::{ErrorKind, RawError};
use crate::filters;
use crate::value::{Object, Value};

/// Keys of the `forloop` and `tablerowloop` objects, allocated once rather than per iteration.
struct LoopKeys {
    name: Arc<str>,
    length: Arc<str>,
    index: Arc<str>,
    index0: Arc<str>,
    rindex: Arc<str>,
    rindex0: Arc<str>,
    first: Arc<str>,
    last: Arc<str>,
    parentloop: Arc<str>,
    forloop: Arc<str>,
}

static LOOP_KEYS: std::sync::LazyLock<LoopKeys> = std::sync::LazyLock::new(|| LoopKeys {
    name: "name".into(),
    length: "length".into(),
    index: "index".into(),
    index0: "index0".into(),
    rindex: "rindex".into(),
    rindex0: "rindex0".into(),
    first: "first".into(),
    last: "last".into(),
    parentloop: "parentloop".into(),
    forloop: "forloop".into(),
});

/// Why rendering stopped early.
#[derive(Debug)]
pub(crate) enum Stop {
    Error(RawError),
    /// `abort_message` (or a connected_content `:retry` that ran out): not an error, an outcome.
    Abort(String),
    /// An OAuth token call failed: the request cannot be authorised, so it is not sent.
    TokenFailed(Box<crate::connected::TokenFailure>),
}

impl From<RawError> for Stop {
    fn from(e: RawError) -> Self {
        Stop::Error(e)
    }
}

pub(crate) type Flow = Result<(), Stop>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Interrupt {
    Break,
    Continue,
}

/// Loop iterations one render may run; past it rendering stops with a limit error, so a template
/// of nested loops that prints nothing cannot spin for hours.
const MAX_LOOP_ITERATIONS: u64 = 10_000_000;

/// Partials may include partials; this bounds the nesting (Ruby Liquid's limit is 100).
const MAX_PARTIAL_DEPTH: usize = 100;

pub(crate) struct State<'c> {
    pub ctx: &'c Context,
    /// Template-level assigns.
    assigns: HashMap<Arc<str>, Value>,
    /// Loops and `include` push a scope for their variables, innermost last. Apart from
    /// `assigns` so a render without loops allocates no list of scopes.
    scopes: Vec<HashMap<Arc<str>, Value>>,
    counters: HashMap<Arc<str>, i64>,
    cycles: HashMap<String, usize>,
    loop_offsets: HashMap<Arc<str>, i64>,
    ifchanged: Option<String>,
    interrupt: Option<Interrupt>,
    depth: usize,
    iterations: u64,
    /// When the first loop iteration ran (a render without loops never reads the clock).
    loops_started: Option<std::time::Instant>,
    /// Bytes of the strings `assign` and `capture` made.
    assigned_bytes: usize,
}

/// Loop time is checked every this many iterations.
const LOOP_TIME_CHECK_EVERY: u64 = 1024;

impl<'c> State<'c> {
    pub fn new(ctx: &'c Context) -> State<'c> {
        State {
            ctx,
            assigns: HashMap::default(),
            scopes: Vec::new(),
            counters: HashMap::default(),
            cycles: HashMap::default(),
            loop_offsets: HashMap::default(),
            ifchanged: None,
            interrupt: None,
            depth: 0,
            iterations: 0,
            loops_started: None,
            assigned_bytes: 0,
        }
    }

    /// Bounds the memory a render's variables take: one string as large as the output may be,
    /// and four times that in all (`assign` doubling a string 28 times would otherwise hold
    /// 256 MB).
    fn check_assigned(&mut self, value: &Value) -> Result<(), RawError> {
        let Value::Str(text) = value else {
            return Ok(());
        };
        let max = self.ctx.max_output_bytes();
        self.assigned_bytes = self.assigned_bytes.saturating_add(text.len());
        if text.len() > max || self.assigned_bytes > max.saturating_mul(4) {
            return Err(RawError {
                kind: ErrorKind::Limit,
                message: format!(
                    "the template builds strings larger than {max} bytes (or {} in all) with assign or capture",
                    max.saturating_mul(4)
                ),
                offset: 0,
            });
        }
        Ok(())
    }

    /// Counts one loop iteration against the iteration cap and the loop time.
    fn count_iteration(&mut self, offset: usize) -> Result<(), RawError> {
        self.iterations += 1;
        if self.iterations > MAX_LOOP_ITERATIONS {
            return Err(RawError {
                kind: ErrorKind::Limit,
                message: format!("more than {MAX_LOOP_ITERATIONS} loop iterations"),
                offset,
            });
        }
        if self.iterations == 1 {
            self.loops_started = Some(std::time::Instant::now());
        } else if self.iterations.is_multiple_of(LOOP_TIME_CHECK_EVERY)
            && let Some(started) = self.loops_started
            && started.elapsed() > self.ctx.max_loop_time()
        {
            return Err(RawError {
                kind: ErrorKind::Limit,
                message: format!(
                    "loops ran longer than {:.1} s ({} iterations)",
                    self.ctx.max_loop_time().as_secs_f64(),
                    self.iterations
                ),
                offset,
            });
        }
        Ok(())
    }

    /// Sets a template-level variable, as `assign` does.
    pub fn assign(&mut self, name: Arc<str>, value: Value) {
        self.assigns.insert(name, value);
    }

    fn lookup(&self, name: &str) -> Value {
        for scope in self.scopes.iter().rev() {
            if let Some(v) = scope.get(name) {
                return v.clone();
            }
        }
        if let Some(v) = self.assigns.get(name) {
            return v.clone();
        }
        // Counters live apart from variables and are read last (python-liquid, current Liquid).
        if let Some(v) = self.ctx.global_opt(name) {
            return v;
        }
        match self.counters.get(name) {
            Some(n) => Value::Int(*n),
            None => Value::Nil,
        }
    }

    pub fn render_block(&mut self, block: &Block, out: &mut String) -> Flow {
        for node in &block.nodes {
            self.render_node(node, out)?;
            if self.interrupt.is_some() {
                break;
            }
        }
        Ok(())
    }

    fn render_node(&mut self, node: &Node, out: &mut String) -> Flow {
        match node {
            Node::Text(text) => out.push_str(text),
            Node::Output(filtered) => {
                let value = self.eval_filtered(filtered)?;
                value.render_to(out);
            }
            Node::If {
                branches,
                otherwise,
            } => {
                for (cond, body) in branches {
                    if self.eval_condition(cond)? {
                        return self.render_block(body, out);
                    }
                }
                if let Some(body) = otherwise {
                    self.render_block(body, out)?;
                }
            }
            Node::Case { subject, branches } => {
                let subject = self.eval(subject)?;
                let mut matched = false;
                for branch in branches {
                    match branch {
                        CaseBranch::When(values, body) => {
                            // Ruby Liquid attaches the body once per value: each match renders it.
                            for v in values {
                                if self.eval(v)?.liquid_eq(&subject) {
                                    matched = true;
                                    self.render_block(body, out)?;
                                }
                            }
                        }
                        CaseBranch::Else(body) => {
                            if !matched {
                                self.render_block(body, out)?;
                            }
                        }
                    }
                    if self.interrupt.is_some() {
                        break;
                    }
                }
            }
            Node::For(lp) => self.render_for(lp, out)?,
            Node::Tablerow(lp) => self.render_tablerow(lp, out)?,
            Node::Assign { name, value } => {
                let value = self.eval_filtered(value)?;
                self.check_assigned(&value)?;
                self.assign(name.clone(), value);
            }
            Node::Capture { name, body } => {
                let mut captured = String::new();
                self.render_block(body, &mut captured)?;
                self.ctx.check_output_size(captured.len())?;
                let value = Value::str(captured);
                self.check_assigned(&value)?;
                self.assign(name.clone(), value);
            }
            Node::Increment(name) => {
                let counter = self.counters.entry(name.clone()).or_insert(0);
                let _ = write!(out, "{counter}");
                *counter += 1;
            }
            Node::Decrement(name) => {
                let counter = self.counters.entry(name.clone()).or_insert(0);
                *counter -= 1;
                let _ = write!(out, "{counter}");
            }
            Node::Cycle { group, values, key } => {
                let key = match group {
                    Some(g) => format!("named:{}", self.eval(g)?.to_output()),
                    None => format!("anon:{key}"),
                };
                let iteration = self.cycles.get(&key).copied().unwrap_or(0);
                if let Some(expr) = values.get(iteration) {
                    self.eval(expr)?.render_to(out);
                }
                let next = if iteration + 1 >= values.len() {
                    0
                } else {
                    iteration + 1
                };
                self.cycles.insert(key, next);
            }
            Node::Break => self.interrupt = Some(Interrupt::Break),
            Node::Continue => self.interrupt = Some(Interrupt::Continue),
            Node::IfChanged(body) => {
                let mut rendered = String::new();
                self.render_block(body, &mut rendered)?;
                if self.ifchanged.as_deref() != Some(rendered.as_str()) {
                    out.push_str(&rendered);
                    self.ifchanged = Some(rendered);
                }
            }
            Node::Include(partial) => self.render_include(partial, out)?,
            Node::Render(partial) => self.render_render(partial, out)?,
            Node::Abort(reason) => {
                return Err(Stop::Abort(
                    reason
                        .as_deref()
                        .unwrap_or("{% abort_message %} called")
                        .to_string(),
                ));
            }
            Node::ConnectedContent(tag) => crate::connected::render_tag(tag, self, out)?,
        }
        Ok(())
    }

    fn loop_items(&mut self, lp: &ForLoop) -> Result<Vec<Value>, Stop> {
        let iterable = self.eval(&lp.iterable)?;
        let mut items = match iterable {
            Value::Array(a) => a.as_ref().clone(),
            Value::Range(a, b) => crate::value::range_items(a, b),
            Value::Object(o) => o
                .iter()
                .map(|(k, v)| Value::array(vec![Value::Str(k.clone()), v.clone()]))
                .collect(),
            Value::Str(s) if !s.is_empty() => vec![Value::Str(s)],
            _ => Vec::new(),
        };
        let offset = match &lp.offset {
            Some(LoopOffset::Continue) => self.loop_offsets.get(&lp.name).copied().unwrap_or(0),
            Some(LoopOffset::Expr(e)) => self.loop_number(e, "offset", lp.offset_pos)?.unwrap_or(0),
            None => 0,
        };
        let limit = match &lp.limit {
            Some(e) => self.loop_number(e, "limit", lp.offset_pos)?,
            None => None,
        };
        let start = offset.clamp(0, items.len() as i64) as usize;
        let end = match limit {
            Some(l) => (start as i64 + l.max(0)).min(items.len() as i64) as usize,
            None => items.len(),
        };
        // Ruby records where every loop stopped (by its slice, even after a break) for `offset: continue`.
        self.loop_offsets.insert(lp.name.clone(), end as i64);
        items.truncate(end);
        items.drain(..start);
        if lp.reversed {
            items.reverse();
        }
        Ok(items)
    }

    fn loop_number(&mut self, expr: &Expr, what: &str, offset: usize) -> Result<Option<i64>, Stop> {
        match self.eval(expr)? {
            Value::Nil => Ok(None),
            Value::Int(i) => Ok(Some(i)),
            Value::Float(f) => Ok(Some(f as i64)),
            Value::Str(s) => match s.trim().parse::<i64>() {
                Ok(i) => Ok(Some(i)),
                Err(_) => Err(RawError::filter(
                    format!("loop {what} must be a number, got '{s}'"),
                    offset,
                )
                .into()),
            },
            other => Err(RawError::filter(
                format!("loop {what} must be a number, got {}", other.type_name()),
                offset,
            )
            .into()),
        }
    }

    fn render_for(&mut self, lp: &ForLoop, out: &mut String) -> Flow {
        let items = self.loop_items(lp)?;
        if items.is_empty() {
            if let Some(otherwise) = &lp.otherwise {
                self.render_block(otherwise, out)?;
            }
            return Ok(());
        }
        let length = items.len() as i64;
        // Only an enclosing `for` is a parent loop, not a `render ... for` binding in `assigns`.
        let parent_loop = self
            .scopes
            .iter()
            .rev()
            .find_map(|s| s.get("forloop").cloned())
            .unwrap_or_default();
        self.scopes.push(HashMap::default());
        let mut result = Ok(());
        for (i, item) in items.into_iter().enumerate() {
            let i = i as i64;
            let k = &*LOOP_KEYS;
            let mut forloop = Object::with_capacity_and_hasher(9, Default::default());
            forloop.insert(k.name.clone(), Value::Str(lp.name.clone()));
            forloop.insert(k.length.clone(), Value::Int(length));
            forloop.insert(k.index.clone(), Value::Int(i + 1));
            forloop.insert(k.index0.clone(), Value::Int(i));
            forloop.insert(k.rindex.clone(), Value::Int(length - i));
            forloop.insert(k.rindex0.clone(), Value::Int(length - i - 1));
            forloop.insert(k.first.clone(), Value::Bool(i == 0));
            forloop.insert(k.last.clone(), Value::Bool(i == length - 1));
            forloop.insert(k.parentloop.clone(), parent_loop.clone());
            if let Some(scope) = self.scopes.last_mut() {
                scope.insert(lp.var.clone(), item);
                scope.insert(k.forloop.clone(), Value::object(forloop));
            }
            if let Err(e) = self.render_block(&lp.body, out) {
                result = Err(e);
                break;
            }
            if let Err(e) = self.ctx.check_output_size(out.len()) {
                result = Err(e.into());
                break;
            }
            if let Err(e) = self.count_iteration(lp.offset_pos) {
                result = Err(e.into());
                break;
            }
            match self.interrupt.take() {
                Some(Interrupt::Break) => break,
                Some(Interrupt::Continue) | None => {}
            }
        }
        self.scopes.pop();
        result
    }

    fn render_tablerow(&mut self, lp: &ForLoop, out: &mut String) -> Flow {
        let items = self.loop_items(lp)?;
        let cols = match &lp.cols {
            Some(e) => self.loop_number(e, "cols", lp.offset_pos)?,
            None => None,
        };
        let length = items.len() as i64;
        // An empty collection renders no row (current Liquid and python-liquid; Ruby 5.4 printed one).
        if length == 0 {
            return Ok(());
        }
        let cols = cols.filter(|c| *c > 0).unwrap_or(length.max(1));
        self.scopes.push(HashMap::default());
        out.push_str("<tr class=\"row1\">\n");
        let mut result = Ok(());
        for (i, item) in items.into_iter().enumerate() {
            let i = i as i64;
            let col0 = i % cols;
            let row = i / cols + 1;
            if i > 0 && col0 == 0 {
                let _ = write!(out, "</tr>\n<tr class=\"row{row}\">");
            }
            let mut tl = Object::with_capacity_and_hasher(12, Default::default());
            tl.insert("length".into(), Value::Int(length));
            tl.insert("index".into(), Value::Int(i + 1));
            tl.insert("index0".into(), Value::Int(i));
            tl.insert("rindex".into(), Value::Int(length - i));
            tl.insert("rindex0".into(), Value::Int(length - i - 1));
            tl.insert("first".into(), Value::Bool(i == 0));
            tl.insert("last".into(), Value::Bool(i == length - 1));
            tl.insert("col".into(), Value::Int(col0 + 1));
            tl.insert("col0".into(), Value::Int(col0));
            tl.insert("col_first".into(), Value::Bool(col0 == 0));
            tl.insert(
                "col_last".into(),
                Value::Bool(col0 == cols - 1 || i == length - 1),
            );
            tl.insert("row".into(), Value::Int(row));
            if let Some(scope) = self.scopes.last_mut() {
                scope.insert(lp.var.clone(), item);
                scope.insert("tablerowloop".into(), Value::object(tl));
            }
            let _ = write!(out, "<td class=\"col{}\">", col0 + 1);
            if let Err(e) = self.render_block(&lp.body, out) {
                result = Err(e);
                break;
            }
            out.push_str("</td>");
            match self.interrupt.take() {
                Some(Interrupt::Break) => break,
                Some(Interrupt::Continue) | None => {}
            }
        }
        out.push_str("</tr>\n");
        self.scopes.pop();
        result
    }

    fn partial_template(
        &self,
        partial: &Partial,
        name: &str,
    ) -> Result<Arc<crate::Template>, Stop> {
        if self.depth >= MAX_PARTIAL_DEPTH {
            return Err(RawError {
                kind: ErrorKind::Partial,
                message: "partials are nested too deeply".into(),
                offset: partial.offset,
            }
            .into());
        }
        self.ctx.partial(name).map_err(|message| {
            RawError {
                kind: ErrorKind::Partial,
                message,
                offset: partial.offset,
            }
            .into()
        })
    }

    fn render_include(&mut self, partial: &Partial, out: &mut String) -> Flow {
        let name = self.eval(&partial.name)?.to_output();
        let template = self.partial_template(partial, &name)?;
        let var: Arc<str> = partial
            .alias
            .clone()
            .unwrap_or_else(|| name.as_str().into());
        let mut scope = HashMap::default();
        for (k, e) in &partial.args {
            scope.insert(k.clone(), self.eval(e)?);
        }
        let bound = match &partial.bound {
            Some((e, is_for)) => Some((self.eval(e)?, *is_for)),
            None => None,
        };
        self.depth += 1;
        // `include ... with` an array renders once per item, like `for` (Ruby and python-liquid).
        let result = match bound {
            Some((Value::Array(items), _)) => {
                let mut r = Ok(());
                for item in items.iter() {
                    let mut s = scope.clone();
                    s.insert(var.clone(), item.clone());
                    self.scopes.push(s);
                    r = self.render_block(&template.root, out);
                    self.scopes.pop();
                    if r.is_err() {
                        break;
                    }
                }
                r
            }
            other => {
                if let Some((v, _)) = other {
                    scope.insert(var.clone(), v);
                }
                self.scopes.push(scope);
                let r = self.render_block(&template.root, out);
                self.scopes.pop();
                r
            }
        };
        self.depth -= 1;
        result
    }

    fn render_render(&mut self, partial: &Partial, out: &mut String) -> Flow {
        let name = self.eval(&partial.name)?.to_output();
        let template = self.partial_template(partial, &name)?;
        let var: Arc<str> = partial
            .alias
            .clone()
            .unwrap_or_else(|| name.as_str().into());
        let mut args = HashMap::default();
        for (k, e) in &partial.args {
            args.insert(k.clone(), self.eval(e)?);
        }
        let render_one = |state: &mut State<'c>,
                          bound: Option<(Value, Option<Object>)>,
                          out: &mut String|
         -> Flow {
            let mut child = State::new(state.ctx);
            child.depth = state.depth + 1;
            child.assigns = args.clone();
            if let Some((value, forloop)) = bound {
                child.assigns.insert(var.clone(), value);
                if let Some(fl) = forloop {
                    child.assigns.insert("forloop".into(), Value::object(fl));
                }
            }
            child.render_block(&template.root, out)
        };
        match &partial.bound {
            Some((e, true)) => {
                let value = self.eval(e)?;
                match value.to_items() {
                    Some(items) => {
                        let length = items.len() as i64;
                        for (i, item) in items.into_iter().enumerate() {
                            let i = i as i64;
                            let mut fl = Object::default();
                            fl.insert("length".into(), Value::Int(length));
                            fl.insert("index".into(), Value::Int(i + 1));
                            fl.insert("index0".into(), Value::Int(i));
                            fl.insert("rindex".into(), Value::Int(length - i));
                            fl.insert("rindex0".into(), Value::Int(length - i - 1));
                            fl.insert("first".into(), Value::Bool(i == 0));
                            fl.insert("last".into(), Value::Bool(i == length - 1));
                            render_one(self, Some((item, Some(fl))), out)?;
                        }
                        Ok(())
                    }
                    None => render_one(self, Some((value, None)), out),
                }
            }
            Some((e, false)) => {
                let value = self.eval(e)?;
                render_one(self, Some((value, None)), out)
            }
            None => render_one(self, None, out),
        }
    }

    pub fn eval_filtered(&mut self, filtered: &Filtered) -> Result<Value, Stop> {
        let mut value = self.eval(&filtered.expr)?;
        for call in &filtered.filters {
            let args = call
                .args
                .iter()
                .map(|a| self.eval(a))
                .collect::<Result<Vec<_>, _>>()?;
            let kwargs = call
                .kwargs
                .iter()
                .map(|(k, a)| Ok((k.clone(), self.eval(a)?)))
                .collect::<Result<Vec<_>, Stop>>()?;
            let ctx = filters::FilterContext {
                now: self.ctx.fixed_now(),
            };
            value = filters::apply(&call.name, value, &args, &kwargs, &ctx).map_err(|message| {
                RawError::filter(format!("{}: {message}", call.name), call.offset)
            })?;
        }
        Ok(value)
    }

    pub fn eval(&mut self, expr: &Expr) -> Result<Value, Stop> {
        match expr {
            Expr::Literal(v) => Ok(v.clone()),
            Expr::Range(a, b) => {
                let start = range_bound(self.eval(a)?);
                let end = range_bound(self.eval(b)?);
                Ok(Value::Range(start, end))
            }
            Expr::Path(path) => self.eval_path(path),
        }
    }

    fn eval_path(&mut self, path: &Path) -> Result<Value, Stop> {
        let mut value = match &path.root {
            PathRoot::Var(name) => self.lookup(name),
            PathRoot::Braze(name) => self.ctx.braze_attribute(name),
            PathRoot::Index(e) => {
                let key = self.eval(e)?;
                self.lookup(&key.to_output())
            }
        };
        for seg in &path.segments {
            value = match seg {
                Segment::Key(k) => property(&value, k),
                Segment::Braze(k) => braze_property(&value, k),
                Segment::Index(e) => {
                    let key = self.eval(e)?;
                    index(&value, &key)
                }
            };
            if value.is_nil() {
                break;
            }
        }
        Ok(value)
    }

    pub fn eval_condition(&mut self, cond: &Condition) -> Result<bool, Stop> {
        Ok(match cond {
            Condition::Value(e) => self.eval(e)?.is_truthy(),
            Condition::Not(c) => !self.eval_condition(c)?,
            Condition::And(a, b) => self.eval_condition(a)? && self.eval_condition(b)?,
            Condition::Or(a, b) => self.eval_condition(a)? || self.eval_condition(b)?,
            Condition::Compare(a, op, b, offset) => {
                let left = self.eval(a)?;
                let right = self.eval(b)?;
                compare(&left, *op, &right, *offset)?
            }
        })
    }
}

fn range_bound(v: Value) -> i64 {
    match v {
        Value::Int(i) => i,
        Value::Float(f) => f as i64,
        Value::Str(s) => s.trim().parse::<f64>().map(|f| f as i64).unwrap_or(0),
        _ => 0,
    }
}

pub(crate) fn compare(
    left: &Value,
    op: CompareOp,
    right: &Value,
    offset: usize,
) -> Result<bool, RawError> {
    use std::cmp::Ordering::*;
    Ok(match op {
        CompareOp::Eq => left.liquid_eq(right),
        CompareOp::Ne => !left.liquid_eq(right),
        CompareOp::Contains => left.liquid_contains(right),
        _ => {
            // Braze compares attribute values that arrive as numeric strings with numbers.
            let ordering = left
                .liquid_cmp(right)
                .or_else(|| numeric(left)?.liquid_cmp(&numeric(right)?));
            // A number and a string that is not one cannot be ordered: Ruby raises
            // "comparison of Integer with String failed", python-liquid a type error. Other
            // mismatches (nil, booleans, arrays, hashes) are false, as Ruby's Condition has them.
            let number_and_text = matches!(
                (left, right),
                (Value::Int(_) | Value::Float(_), Value::Str(_))
                    | (Value::Str(_), Value::Int(_) | Value::Float(_))
            );
            if ordering.is_none() && number_and_text {
                return Err(RawError::filter(
                    format!(
                        "cannot compare {} with {}",
                        left.type_name(),
                        right.type_name()
                    ),
                    offset,
                ));
            }
            match (op, ordering) {
                (CompareOp::Lt, Some(o)) => o == Less,
                (CompareOp::Gt, Some(o)) => o == Greater,
                (CompareOp::Le, Some(o)) => o != Greater,
                (CompareOp::Ge, Some(o)) => o != Less,
                _ => false,
            }
        }
    })
}

fn numeric(v: &Value) -> Option<Value> {
    match v {
        Value::Int(_) | Value::Float(_) => Some(v.clone()),
        Value::Str(s) => {
            let t = s.trim();
            t.parse::<i64>()
                .map(Value::Int)
                .ok()
                .or_else(|| t.parse::<f64>().ok().map(Value::Float))
        }
        _ => None,
    }
}

/// `value.key`, including Liquid's `size`, `first` and `last` on arrays and strings.
pub(crate) fn property(value: &Value, key: &str) -> Value {
    match value {
        Value::Object(o) => match o.get(key) {
            Some(v) => v.clone(),
            None if key == "size" => Value::Int(o.len() as i64),
            None => Value::Nil,
        },
        Value::Array(a) => match key {
            "size" => Value::Int(a.len() as i64),
            "first" => a.first().cloned().unwrap_or_default(),
            "last" => a.last().cloned().unwrap_or_default(),
            _ => Value::Nil,
        },
        Value::Range(s, e) => match key {
            "size" => Value::Int((e - s + 1).max(0)),
            "first" => Value::Int(*s),
            "last" => Value::Int(*e),
            _ => Value::Nil,
        },
        Value::Str(s) => match key {
            "size" => Value::Int(s.chars().count() as i64),
            _ => Value::Nil,
        },
        _ => Value::Nil,
    }
}

/// `.${name}`: the literal key first, then, for Braze's nested attributes, a dotted path.
fn braze_property(value: &Value, key: &str) -> Value {
    let direct = property(value, key);
    if !direct.is_nil() || !key.contains('.') {
        return direct;
    }
    key.split('.')
        .fold(value.clone(), |v, k| property(&v, k.trim()))
}

pub(crate) fn index(value: &Value, key: &Value) -> Value {
    match (value, key) {
        (Value::Array(a), Value::Int(i)) => {
            let i = if *i < 0 { a.len() as i64 + i } else { *i };
            if i < 0 {
                Value::Nil
            } else {
                a.get(i as usize).cloned().unwrap_or_default()
            }
        }
        (Value::Range(s, e), Value::Int(i)) => {
            let len = (e - s + 1).max(0);
            let i = if *i < 0 { len + i } else { *i };
            if (0..len).contains(&i) {
                Value::Int(s + i)
            } else {
                Value::Nil
            }
        }
        (Value::Object(o), Value::Str(k)) => o.get(k.as_ref()).cloned().unwrap_or_default(),
        (Value::Object(o), other) => o
            .get(other.to_output().as_str())
            .cloned()
            .unwrap_or_default(),
        _ => Value::Nil,
    }
}
