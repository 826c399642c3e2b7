//! The syntax tree of a matcher expression: what the [parser](super::parser) builds and the
//! [compiler](super::eval) turns into a flat program.

use super::lexer::{FieldRef, NumVar, RelOp, StrVar};
use super::pattern::Pattern;

/// No field cache slot.
pub(crate) const NO_SLOT: u8 = u8::MAX;
/// Field references shared by several tests of one expression get one of these many slots,
/// so the message's fields are scanned once per reference, not once per test.
pub(crate) const CACHE_SLOTS: usize = 8;

/// A parsed expression.
#[derive(Debug)]
pub(crate) enum Expr {
    /// `TRUE` or `FALSE`.
    Const(bool),
    /// A comparison.
    Test(Test),
    /// Every operand holds (evaluated left to right, stopping at the first false).
    And(Vec<Expr>),
    /// Some operand holds (evaluated left to right, stopping at the first true).
    Or(Vec<Expr>),
}

/// A test applied to a string (a string header, or a STRING or BYTES field value).
#[derive(Clone, Debug)]
pub(crate) enum StrOp {
    /// `relop 'literal'`
    Compare(RelOp, Box<[u8]>),
    /// `=~ /re/` or `!~ /re/`
    Match { pattern: Pattern, negated: bool },
}

/// What a `Fields[...]` reference is compared with; the outcome depends on the value's type.
#[derive(Clone, Debug)]
pub(crate) enum FieldTest {
    /// A string literal or a regex.
    String(StrOp),
    /// A number literal.
    Numeric(RelOp, f64),
    /// `== TRUE` / `== FALSE`.
    Bool(bool),
    /// `== NIL` (`equal`) or `!= NIL`.
    Nil { equal: bool },
}

/// One test.
#[derive(Clone, Debug)]
pub(crate) enum Test {
    /// `TRUE` / `FALSE` (only ever an expression of its own after folding).
    Const(bool),
    /// A string header.
    Str { var: StrVar, op: StrOp },
    /// A numeric header, compared as f64.
    Numeric { var: NumVar, op: RelOp, value: f64 },
    /// A field value.
    Field {
        field: FieldRef,
        slot: u8,
        test: FieldTest,
    },
}

impl Test {
    /// A test on a string header.
    pub(crate) fn string(var: StrVar, op: StrOp) -> Test {
        Test::Str { var, op }
    }

    /// A test on a field.
    pub(crate) fn field(field: FieldRef, test: FieldTest) -> Test {
        Test::Field {
            field,
            slot: NO_SLOT,
            test,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::parser::parse;
    use super::*;

    #[test]
    fn a_chain_of_one_operator_is_one_node_and_fields_start_without_a_slot() {
        let expr =
            parse("Type == 'a' && Fields[x] == 1 && Fields[x] != NIL || Severity < 3").unwrap();
        let Expr::Or(alternatives) = expr else {
            panic!("{expr:?}")
        };
        assert_eq!(alternatives.len(), 2);
        let Expr::And(tests) = &alternatives[0] else {
            panic!("{alternatives:?}")
        };
        assert_eq!(tests.len(), 3);
        for t in &tests[1..] {
            assert!(
                matches!(t, Expr::Test(Test::Field { slot: NO_SLOT, .. })),
                "{t:?}"
            );
        }
        assert!(matches!(
            alternatives[1],
            Expr::Test(Test::Numeric { op: RelOp::Lt, .. })
        ));
    }
}
