//! Heka's message matcher language: compile once, evaluate per message.
//!
//! Every filter and output chooses its messages with an expression such as
//! `Type == 'nginx.access' && Fields[status] >= 500` (heka.md §3). [`MatcherSpec::parse`]
//! compiles one into a flat program; [`MatcherSpec::matches`] evaluates it against anything that
//! implements [`MessageAccess`], typically the borrowed [`MessageView`](crate::message::MessageView)
//! of a record on the routing path, without allocating. A router holds the matchers of all its
//! plugins in a [`MatcherSet`] and asks which of them a message satisfies.
//!
//! ```
//! use hekate_model::matcher::MatcherSpec;
//! use hekate_model::message::{Field, Message};
//!
//! let spec = MatcherSpec::parse("Type == 'nginx.access' && Fields[status] >= 500").unwrap();
//! let mut msg = Message::new_now();
//! msg.r#type = Some("nginx.access".into());
//! msg.add_field(Field::integer("status", 502));
//! assert!(spec.matches(&msg));
//!
//! let err = MatcherSpec::parse("Severity 5").unwrap_err();
//! assert_eq!(err.position(), 9);
//! ```
//!
//! # Language
//!
//! - String headers `Uuid Type Logger Payload EnvVersion Hostname` take `== != < <= > >=` with a
//!   quoted string (`'...'` or `"..."`; a backslash before the quote character yields the quote,
//!   before anything else both characters stay), or `=~ !~` with a `/regex/` (`\/` is a slash).
//!   Missing headers read as `""`; `Uuid` reads as its canonical 36-character string.
//! - Numeric headers `Timestamp Severity Pid` take a relational operator and a number
//!   (`5`, `1e3`, `.5`; no sign). Comparisons are on f64.
//! - `Fields[name]`, `Fields[name][fi]`, `Fields[name][fi][ai]` (the `fi`-th field of that name,
//!   its `ai`-th value) take a number, a string, a regex, `== TRUE`, `== FALSE`, `== NIL` or
//!   `!= NIL`. A missing field satisfies only `== NIL`. STRING and BYTES values compare with
//!   strings and regexes (a number gives false); INTEGER and DOUBLE values with numbers (a
//!   string or regex gives false); a BOOL value satisfies `== TRUE` when true and any other
//!   comparison (`== FALSE`, a string, a number, a regex) when false.
//! - `TRUE`, `FALSE`, `&&` (binds tighter), `||`, parentheses.
//!
//! # Where hekate differs from hekad
//!
//! hekad accepts a few inputs by accident of its yacc grammar; hekate rejects them with an error:
//! two expressions side by side (`A B`, of which hekad silently kept only one), and an unknown
//! capitalised word after a complete expression (which hekad's lexer took for the end of input).
//! Everything else follows hekad, quirks included: text after a newline is ignored, a number
//! that does not parse (`1-2`) reads as 0, and a STRING field compared `== TRUE` is compared with
//! the string `"TRUE"`. Regular expressions keep RE2's meaning: `\d \s \w \b` are ASCII as in RE2,
//! and `^literal`, `literal$`, `^literal$` and plain literals skip the regex engine.
//!
//! [`MessageAccess`]: crate::message::MessageAccess

mod ast;
mod error;
mod eval;
mod lexer;
mod parser;
mod pattern;
#[cfg(test)]
mod tests;

use std::fmt;
use std::str::FromStr;

pub use error::MatcherError;

use crate::message::MessageAccess;
use eval::Program;

/// A compiled matcher expression.
///
/// Cheap to evaluate, `Send + Sync`, and `Clone` (regexes share their compiled form), so each
/// router shard can hold its own copy.
#[derive(Clone, Debug)]
pub struct MatcherSpec {
    source: Box<str>,
    program: Program,
}

impl MatcherSpec {
    /// Compiles `spec`; the error names the offending position.
    pub fn parse(spec: &str) -> Result<MatcherSpec, MatcherError> {
        let expr = parser::parse(spec)?;
        Ok(MatcherSpec {
            source: spec.into(),
            program: Program::compile(expr),
        })
    }

    /// Whether `msg` satisfies the expression.
    #[inline]
    pub fn matches<M: MessageAccess + ?Sized>(&self, msg: &M) -> bool {
        self.program.eval(msg)
    }

    /// The expression as it was written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Why `msg` does not satisfy the expression: the first test (as written) that failed on
    /// the way to the verdict, `FALSE` for a constant, or `None` when it matches. Slower than
    /// [`MatcherSpec::matches`] (it parses the expression again): for tools, not routing.
    pub fn explain<M: MessageAccess + ?Sized>(&self, msg: &M) -> Option<String> {
        let (expr, spans) = parser::parse_with_spans(&self.source).ok()?;
        let mut leaf = 0;
        let (matched, failed) = explain(&expr, msg, &spans, &self.source, &mut leaf);
        (!matched).then(|| failed.unwrap_or_else(|| "FALSE".to_owned()))
    }

    /// Number of tests left after constant folding (0 for an expression that is constant).
    pub fn test_count(&self) -> usize {
        self.program.len()
    }
}

/// Evaluates every test of `expr` (numbering the leaves left to right, as `spans` does); the
/// verdict, and for a false one the first test that failed on the way to it.
fn explain<M: MessageAccess + ?Sized>(
    expr: &ast::Expr,
    msg: &M,
    spans: &[std::ops::Range<usize>],
    source: &str,
    leaf: &mut usize,
) -> (bool, Option<String>) {
    match expr {
        ast::Expr::Const(b) => (*b, (!b).then(|| "FALSE".to_owned())),
        ast::Expr::Test(test) => {
            let span = spans.get(*leaf).cloned().unwrap_or(0..0);
            *leaf += 1;
            let ok = eval::eval_test(test, msg);
            (ok, (!ok).then(|| source.get(span).unwrap_or("").to_owned()))
        }
        ast::Expr::And(items) => {
            let mut verdict = (true, None);
            for item in items {
                let (ok, failed) = explain(item, msg, spans, source, leaf);
                if !ok && verdict.0 {
                    verdict = (false, failed);
                }
            }
            verdict
        }
        ast::Expr::Or(items) => {
            let mut any = false;
            let mut first = None;
            for item in items {
                let (ok, failed) = explain(item, msg, spans, source, leaf);
                any |= ok;
                if first.is_none() {
                    first = failed;
                }
            }
            (any, if any { None } else { first })
        }
    }
}

impl fmt::Display for MatcherSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl FromStr for MatcherSpec {
    type Err = MatcherError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        MatcherSpec::parse(s)
    }
}

/// The matchers of a router, evaluated together against each message.
///
/// Matchers are numbered in the order they were added; [`MatcherSet::evaluate`] reports the
/// numbers of those a message satisfies.
#[derive(Clone, Debug, Default)]
pub struct MatcherSet {
    specs: Vec<MatcherSpec>,
}

impl MatcherSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a matcher and returns its number.
    pub fn push(&mut self, spec: MatcherSpec) -> usize {
        self.specs.push(spec);
        self.specs.len() - 1
    }

    /// Number of matchers.
    pub fn len(&self) -> usize {
        self.specs.len()
    }

    /// True when the set holds no matcher.
    pub fn is_empty(&self) -> bool {
        self.specs.is_empty()
    }

    /// Matcher number `i`.
    pub fn get(&self, i: usize) -> Option<&MatcherSpec> {
        self.specs.get(i)
    }

    /// The matchers, in order.
    pub fn iter(&self) -> std::slice::Iter<'_, MatcherSpec> {
        self.specs.iter()
    }

    /// Evaluates every matcher against `msg`, overwriting `out` with the numbers of those that
    /// match. Reusing `out` across messages avoids any allocation.
    pub fn evaluate<M: MessageAccess + ?Sized>(&self, msg: &M, out: &mut MatchBits) {
        out.reset(self.specs.len());
        for (i, spec) in self.specs.iter().enumerate() {
            if spec.matches(msg) {
                out.set(i);
            }
        }
    }

    /// The numbers of the matchers `msg` satisfies, in a new [`MatchBits`].
    pub fn matching<M: MessageAccess + ?Sized>(&self, msg: &M) -> MatchBits {
        let mut out = MatchBits::default();
        self.evaluate(msg, &mut out);
        out
    }
}

impl FromIterator<MatcherSpec> for MatcherSet {
    fn from_iter<I: IntoIterator<Item = MatcherSpec>>(iter: I) -> Self {
        MatcherSet {
            specs: iter.into_iter().collect(),
        }
    }
}

impl<'a> IntoIterator for &'a MatcherSet {
    type Item = &'a MatcherSpec;
    type IntoIter = std::slice::Iter<'a, MatcherSpec>;

    fn into_iter(self) -> Self::IntoIter {
        self.specs.iter()
    }
}

/// A set of matcher numbers, one bit each: the outcome of [`MatcherSet::evaluate`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MatchBits {
    words: Vec<u64>,
    len: usize,
}

impl MatchBits {
    /// Clears every bit and sizes the set for `len` matchers (keeping its allocation).
    pub fn reset(&mut self, len: usize) {
        self.words.clear();
        self.words.resize(len.div_ceil(64), 0);
        self.len = len;
    }

    /// Marks matcher `i` (ignored when `i` is out of range).
    pub fn set(&mut self, i: usize) {
        if i < self.len
            && let Some(w) = self.words.get_mut(i / 64)
        {
            *w |= 1 << (i % 64);
        }
    }

    /// Whether matcher `i` matched.
    pub fn contains(&self, i: usize) -> bool {
        self.words
            .get(i / 64)
            .is_some_and(|w| w & (1 << (i % 64)) != 0)
    }

    /// Number of matchers the set was sized for.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when sized for no matchers.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of matchers that matched.
    pub fn count(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// True when no matcher matched.
    pub fn none(&self) -> bool {
        self.words.iter().all(|&w| w == 0)
    }

    /// The numbers of the matchers that matched, ascending.
    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.words.iter().enumerate().flat_map(|(wi, &w)| {
            let mut bits = w;
            std::iter::from_fn(move || {
                if bits == 0 {
                    return None;
                }
                let b = bits.trailing_zeros() as usize;
                bits &= bits - 1;
                Some(wi * 64 + b)
            })
        })
    }
}
