//! The compiled form of a matcher and its evaluation (heka.md §3.3).
//!
//! An expression compiles to a flat list of steps. Each step is one test and names the step to
//! run next when the test holds and when it does not; the two exits are `ACCEPT` and `REJECT`.
//! `a && b` sends `a`'s true exit to `b` and its false exit to the `&&`'s own false exit, `a || b`
//! the other way round, so short-circuiting costs nothing at run time: evaluation is a loop
//! over at most as many steps as the expression has tests, with no stack.

use super::ast::{CACHE_SLOTS, Expr, FieldTest, StrOp, Test};
use super::lexer::{FieldRef, NumVar, RelOp, StrVar};
use crate::message::{FieldValue, MessageAccess, UUID_STRING_LEN, format_uuid};

/// Applies a relational operator; `PartialOrd` gives byte-wise lexicographic order for byte
/// strings (Go's string order) and IEEE comparisons for f64 (NaN is only `!=`).
#[inline(always)]
fn compare<T: PartialOrd + ?Sized>(op: RelOp, a: &T, b: &T) -> bool {
    match op {
        RelOp::Eq => a == b,
        RelOp::Ne => a != b,
        RelOp::Gt => a > b,
        RelOp::Ge => a >= b,
        RelOp::Lt => a < b,
        RelOp::Le => a <= b,
    }
}

impl StrOp {
    #[inline(always)]
    fn eval(&self, s: &[u8]) -> bool {
        match self {
            StrOp::Compare(op, lit) => compare(*op, s, lit),
            StrOp::Match { pattern, negated } => pattern.is_match(s) != *negated,
        }
    }
}

impl FieldTest {
    /// The outcome for a present value, exactly as Heka's `testExpr`.
    #[inline]
    fn eval(&self, value: FieldValue<'_>) -> bool {
        match (self, value) {
            (FieldTest::Nil { equal }, _) => !equal,
            (FieldTest::String(op), FieldValue::String(s) | FieldValue::Bytes(s)) => op.eval(s),
            (FieldTest::Numeric(op, lit), FieldValue::Integer(v)) => compare(*op, &(v as f64), lit),
            (FieldTest::Numeric(op, lit), FieldValue::Double(v)) => compare(*op, &v, lit),
            // Heka hands TRUE/FALSE to its string test with the token text as the literal.
            (FieldTest::Bool(lit), FieldValue::String(s) | FieldValue::Bytes(s)) => {
                s == if *lit { &b"TRUE"[..] } else { &b"FALSE"[..] }
            }
            (FieldTest::Bool(lit), FieldValue::Bool(v)) => v == *lit,
            // A BOOL value compared with anything but TRUE asks "is the value false?".
            (FieldTest::String(_) | FieldTest::Numeric(..), FieldValue::Bool(v)) => !v,
            (FieldTest::String(_) | FieldTest::Bool(_), FieldValue::Integer(_))
            | (FieldTest::String(_) | FieldTest::Bool(_), FieldValue::Double(_))
            | (FieldTest::Numeric(..), FieldValue::String(_) | FieldValue::Bytes(_)) => false,
        }
    }
}

impl Test {
    #[inline(always)]
    fn eval<'m, M, L>(&self, msg: &'m M, lookup: &mut L) -> bool
    where
        M: MessageAccess + ?Sized,
        L: Lookup<'m>,
    {
        match self {
            Test::Str { var, op } => {
                let s = match var {
                    StrVar::Type => msg.msg_type(),
                    StrVar::Logger => msg.logger(),
                    StrVar::Payload => msg.payload(),
                    StrVar::Hostname => msg.hostname(),
                    StrVar::EnvVersion => msg.env_version(),
                    StrVar::Uuid => {
                        let mut buf = [0u8; UUID_STRING_LEN];
                        return match format_uuid(msg.uuid(), &mut buf) {
                            Some(()) => op.eval(&buf),
                            None => op.eval(b""),
                        };
                    }
                };
                op.eval(s)
            }
            Test::Numeric { var, op, value } => {
                let v = match var {
                    NumVar::Severity => f64::from(msg.severity()),
                    NumVar::Timestamp => msg.timestamp() as f64,
                    NumVar::Pid => f64::from(msg.pid()),
                };
                compare(*op, &v, value)
            }
            Test::Field { field, slot, test } => match lookup.field(msg, field, *slot) {
                Some(value) => test.eval(value),
                // A missing field or element satisfies only `== NIL`.
                None => matches!(test, FieldTest::Nil { equal: true }),
            },
            Test::Const(b) => *b,
        }
    }
}

/// Evaluates one test on its own (no field cache), for explanations.
pub(crate) fn eval_test<M: MessageAccess + ?Sized>(test: &Test, msg: &M) -> bool {
    test.eval(msg, &mut Direct)
}

/// How a test reads a field value.
trait Lookup<'m> {
    fn field<M: MessageAccess + ?Sized>(
        &mut self,
        msg: &'m M,
        field: &FieldRef,
        slot: u8,
    ) -> Option<FieldValue<'m>>;
}

/// Reads the message every time.
struct Direct;

impl<'m> Lookup<'m> for Direct {
    #[inline(always)]
    fn field<M: MessageAccess + ?Sized>(
        &mut self,
        msg: &'m M,
        field: &FieldRef,
        _slot: u8,
    ) -> Option<FieldValue<'m>> {
        msg.field_value(&field.name, field.fi, field.ai)
    }
}

/// Remembers the values of shared field references for one evaluation.
struct Cached<'m> {
    slots: [Option<Option<FieldValue<'m>>>; CACHE_SLOTS],
}

impl<'m> Lookup<'m> for Cached<'m> {
    #[inline]
    fn field<M: MessageAccess + ?Sized>(
        &mut self,
        msg: &'m M,
        field: &FieldRef,
        slot: u8,
    ) -> Option<FieldValue<'m>> {
        let Some(entry) = self.slots.get_mut(usize::from(slot)) else {
            return msg.field_value(&field.name, field.fi, field.ai);
        };
        if let Some(value) = *entry {
            return value;
        }
        let value = msg.field_value(&field.name, field.fi, field.ai);
        *entry = Some(value);
        value
    }
}

/// Exit: the expression holds.
const ACCEPT: u32 = u32::MAX;
/// Exit: the expression does not hold.
const REJECT: u32 = u32::MAX - 1;

/// One test and where to go after it.
#[derive(Clone, Debug)]
struct Step {
    test: Test,
    on_true: u32,
    on_false: u32,
}

/// A compiled expression; see the module docs.
#[derive(Clone, Debug)]
pub(crate) struct Program {
    steps: Box<[Step]>,
    entry: u32,
    /// Whether some field reference has a cache slot.
    cached: bool,
}

impl Program {
    /// Compiles a parsed expression.
    pub(crate) fn compile(expr: Expr) -> Program {
        let mut expr = fold(expr);
        let cached = assign_slots(&mut expr);
        let mut steps = Vec::new();
        let entry = match expr {
            Expr::Const(true) => ACCEPT,
            Expr::Const(false) => REJECT,
            expr => {
                emit(expr, ACCEPT, REJECT, &mut steps);
                0
            }
        };
        Program {
            steps: steps.into_boxed_slice(),
            entry,
            cached,
        }
    }

    /// Number of tests in the program.
    pub(crate) fn len(&self) -> usize {
        self.steps.len()
    }

    /// Evaluates the program against `msg`.
    #[inline]
    pub(crate) fn eval<M: MessageAccess + ?Sized>(&self, msg: &M) -> bool {
        if self.cached {
            self.run(
                msg,
                &mut Cached {
                    slots: [None; CACHE_SLOTS],
                },
            )
        } else {
            self.run(msg, &mut Direct)
        }
    }

    #[inline(always)]
    fn run<'m, M, L>(&self, msg: &'m M, lookup: &mut L) -> bool
    where
        M: MessageAccess + ?Sized,
        L: Lookup<'m>,
    {
        let mut pc = self.entry;
        // Exits are beyond the end of `steps`, so the loop ends there.
        while let Some(step) = self.steps.get(pc as usize) {
            pc = if step.test.eval(msg, lookup) {
                step.on_true
            } else {
                step.on_false
            };
        }
        pc == ACCEPT
    }
}

/// Removes constants from `&&`/`||` chains and merges nested chains of the same kind; tests have
/// no side effects, so this changes no outcome. Afterwards a constant only remains as the root.
fn fold(expr: Expr) -> Expr {
    let (is_and, items) = match expr {
        Expr::And(items) => (true, items),
        Expr::Or(items) => (false, items),
        other => return other,
    };
    // In an `&&` chain, TRUE is neutral and FALSE decides; in an `||` chain the reverse.
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        match fold(item) {
            Expr::Const(b) if b == is_and => {}
            Expr::Const(b) => return Expr::Const(b),
            Expr::And(inner) if is_and => out.extend(inner),
            Expr::Or(inner) if !is_and => out.extend(inner),
            e => out.push(e),
        }
    }
    match out.len() {
        0 => Expr::Const(is_and),
        1 => out.pop().unwrap_or(Expr::Const(is_and)),
        _ if is_and => Expr::And(out),
        _ => Expr::Or(out),
    }
}

fn for_each_field(expr: &mut Expr, f: &mut impl FnMut(&FieldRef, &mut u8)) {
    match expr {
        Expr::Test(Test::Field { field, slot, .. }) => f(field, slot),
        Expr::And(items) | Expr::Or(items) => {
            for item in items {
                for_each_field(item, f);
            }
        }
        Expr::Test(_) | Expr::Const(_) => {}
    }
}

/// Gives the field references used by more than one test a cache slot (as many as there are
/// slots). Returns whether any slot was given.
fn assign_slots(expr: &mut Expr) -> bool {
    let mut seen: Vec<(FieldRef, usize)> = Vec::new();
    for_each_field(
        expr,
        &mut |field, _| match seen.iter_mut().find(|(f, _)| f == field) {
            Some((_, n)) => *n += 1,
            None => seen.push((field.clone(), 1)),
        },
    );
    let shared: Vec<&FieldRef> = seen
        .iter()
        .filter(|(_, n)| *n > 1)
        .map(|(f, _)| f)
        .take(CACHE_SLOTS)
        .collect();
    if shared.is_empty() {
        return false;
    }
    for_each_field(expr, &mut |field, slot| {
        if let Some(i) = shared.iter().position(|f| *f == field) {
            *slot = i as u8;
        }
    });
    true
}

/// Number of tests in `expr`.
fn leaves(expr: &Expr) -> usize {
    match expr {
        Expr::And(items) | Expr::Or(items) => items.iter().map(leaves).sum::<usize>().max(1),
        Expr::Test(_) | Expr::Const(_) => 1,
    }
}

/// Appends the steps of `expr`, whose outcome continues at `on_true` / `on_false`.
fn emit(expr: Expr, on_true: u32, on_false: u32, steps: &mut Vec<Step>) {
    match expr {
        Expr::Test(test) => steps.push(Step {
            test,
            on_true,
            on_false,
        }),
        Expr::Const(b) => steps.push(Step {
            test: Test::Const(b),
            on_true,
            on_false,
        }),
        // Only reachable for an unfolded empty chain: `&&` of nothing holds, `||` does not.
        Expr::And(items) if items.is_empty() => emit(Expr::Const(true), on_true, on_false, steps),
        Expr::Or(items) if items.is_empty() => emit(Expr::Const(false), on_true, on_false, steps),
        Expr::And(items) => {
            let last = items.len() - 1;
            for (i, item) in items.into_iter().enumerate() {
                let next = (steps.len() + leaves(&item)) as u32;
                let t = if i == last { on_true } else { next };
                emit(item, t, on_false, steps);
            }
        }
        Expr::Or(items) => {
            let last = items.len() - 1;
            for (i, item) in items.into_iter().enumerate() {
                let next = (steps.len() + leaves(&item)) as u32;
                let f = if i == last { on_false } else { next };
                emit(item, on_true, f, steps);
            }
        }
    }
}
