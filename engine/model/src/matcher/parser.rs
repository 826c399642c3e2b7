//! The grammar of heka.md §3.2, by recursive descent.
//!
//! `||` binds loosest, `&&` tighter, both left-associative; since tests have no side effects
//! and both operators short-circuit, a chain `a && b && c` is kept as one n-ary node, which also
//! keeps the tree as shallow as the parentheses are deep.

use super::ast::{Expr, FieldTest, StrOp, Test};
use super::error::MatcherError;
use super::lexer::{Lexer, RelOp, Token, TokenKind};
use super::pattern::Pattern;

/// How deep parentheses may nest; deeper input is refused rather than risking the stack.
pub(crate) const MAX_DEPTH: usize = 64;

/// Parses a whole matcher expression.
pub(crate) fn parse(spec: &str) -> Result<Expr, MatcherError> {
    parse_with_spans(spec).map(|(expr, _)| expr)
}

/// Parses a whole matcher expression, with the source range of every test, in the order the
/// tests appear (which is the order of the tree's leaves, left to right).
pub(crate) fn parse_with_spans(
    spec: &str,
) -> Result<(Expr, Vec<std::ops::Range<usize>>), MatcherError> {
    let mut p = Parser {
        lexer: Lexer::new(spec),
        peeked: None,
        depth: 0,
        last_end: 0,
        spans: Vec::new(),
    };
    if p.peek()?.kind == TokenKind::End {
        return Err(MatcherError::Empty);
    }
    let expr = p.or()?;
    let tok = p.next()?;
    if tok.kind != TokenKind::End {
        return Err(p.expected(&tok, "'&&', '||' or the end of the expression".to_owned()));
    }
    Ok((expr, p.spans))
}

struct Parser<'a> {
    lexer: Lexer<'a>,
    peeked: Option<Token>,
    depth: usize,
    /// Where the last token taken ends.
    last_end: usize,
    /// The source range of every test so far.
    spans: Vec<std::ops::Range<usize>>,
}

impl Parser<'_> {
    fn next(&mut self) -> Result<Token, MatcherError> {
        let tok = match self.peeked.take() {
            Some(tok) => tok,
            None => self.lexer.next_token()?,
        };
        self.last_end = tok.end;
        Ok(tok)
    }

    /// A test that began at `start` and ends with the last token taken.
    fn test(&mut self, start: usize, test: Test) -> Expr {
        self.spans.push(start..self.last_end);
        Expr::Test(test)
    }

    fn peek(&mut self) -> Result<&Token, MatcherError> {
        let tok = match self.peeked.take() {
            Some(tok) => tok,
            None => self.lexer.next_token()?,
        };
        Ok(self.peeked.insert(tok))
    }

    /// The source text of a token.
    fn text(&self, tok: &Token) -> &str {
        self.lexer.source().get(tok.start..tok.end).unwrap_or("")
    }

    /// A token as the user wrote it, for "found ..." in errors.
    fn describe(&self, tok: &Token) -> String {
        if tok.kind == TokenKind::End {
            return "the end of the expression".to_owned();
        }
        let text = self.text(tok);
        match text.char_indices().nth(40) {
            Some((cut, _)) => format!("'{}...'", &text[..cut]),
            None => format!("'{text}'"),
        }
    }

    fn expected(&self, found: &Token, expected: String) -> MatcherError {
        MatcherError::Expected {
            pos: found.start,
            expected,
            found: self.describe(found),
        }
    }

    fn or(&mut self) -> Result<Expr, MatcherError> {
        let mut items = vec![self.and()?];
        while self.peek()?.kind == TokenKind::Or {
            self.next()?;
            items.push(self.and()?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Expr::Or(items)
        })
    }

    fn and(&mut self) -> Result<Expr, MatcherError> {
        let mut items = vec![self.primary()?];
        while self.peek()?.kind == TokenKind::And {
            self.next()?;
            items.push(self.primary()?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Expr::And(items)
        })
    }

    fn primary(&mut self) -> Result<Expr, MatcherError> {
        let tok = self.next()?;
        match tok.kind {
            TokenKind::LParen => {
                if self.depth == MAX_DEPTH {
                    return Err(MatcherError::TooDeep {
                        pos: tok.start,
                        max: MAX_DEPTH,
                    });
                }
                self.depth += 1;
                let inner = self.or()?;
                self.depth -= 1;
                let close = self.next()?;
                if close.kind != TokenKind::RParen {
                    return Err(MatcherError::Unclosed {
                        pos: close.start,
                        open: tok.start,
                        found: self.describe(&close),
                    });
                }
                Ok(inner)
            }
            TokenKind::True => Ok(Expr::Const(true)),
            TokenKind::False => Ok(Expr::Const(false)),
            TokenKind::StrVar(var) => {
                let subject = self.text(&tok).to_owned();
                let op = self.string_op(&subject)?;
                Ok(self.test(tok.start, Test::string(var, op)))
            }
            TokenKind::NumVar(var) => {
                let subject = self.text(&tok).to_owned();
                let (op, value) = self.numeric_op(&subject)?;
                Ok(self.test(tok.start, Test::Numeric { var, op, value }))
            }
            TokenKind::Field(ref field) => {
                let subject = self.text(&tok).to_owned();
                let field = field.clone();
                let test = self.field_op(&subject)?;
                Ok(self.test(tok.start, Test::field(field, test)))
            }
            _ => Err(self.expected(
                &tok,
                "a test (such as Type == 'x'), TRUE, FALSE or '('".to_owned(),
            )),
        }
    }

    /// The operator after `subject`, which must be a relational or a regex operator.
    fn operator(&mut self, subject: &str) -> Result<Token, MatcherError> {
        let op = self.next()?;
        match op.kind {
            TokenKind::Rel(_) | TokenKind::Match | TokenKind::NotMatch => Ok(op),
            _ => Err(self.expected(&op, format!("a comparison operator after '{subject}'"))),
        }
    }

    /// The regex literal after `subject op`, compiled.
    fn regex_value(&mut self, subject: &str, op: &Token) -> Result<(Pattern, bool), MatcherError> {
        let negated = op.kind == TokenKind::NotMatch;
        let value = self.next()?;
        match value.kind {
            TokenKind::Regex(ref pattern) => Ok((Pattern::compile(pattern, value.start)?, negated)),
            _ => Err(self.expected(
                &value,
                format!(
                    "a regular expression /.../ after '{subject} {}'",
                    self.text(op)
                ),
            )),
        }
    }

    fn string_op(&mut self, subject: &str) -> Result<StrOp, MatcherError> {
        let op = self.operator(subject)?;
        let TokenKind::Rel(rel) = op.kind else {
            let (pattern, negated) = self.regex_value(subject, &op)?;
            return Ok(StrOp::Match { pattern, negated });
        };
        let value = self.next()?;
        match value.kind {
            TokenKind::Str(s) => Ok(StrOp::Compare(rel, s)),
            _ => Err(self.expected(
                &value,
                format!("a quoted string after '{subject} {}'", rel.as_str()),
            )),
        }
    }

    fn numeric_op(&mut self, subject: &str) -> Result<(RelOp, f64), MatcherError> {
        let op = self.operator(subject)?;
        let TokenKind::Rel(rel) = op.kind else {
            return Err(self.expected(
                &op,
                format!("one of == != < <= > >= after '{subject}' (=~ and !~ apply to strings)"),
            ));
        };
        let value = self.next()?;
        match value.kind {
            TokenKind::Number(n) => Ok((rel, n)),
            _ => Err(self.expected(
                &value,
                format!("a number after '{subject} {}'", rel.as_str()),
            )),
        }
    }

    fn field_op(&mut self, subject: &str) -> Result<FieldTest, MatcherError> {
        let op = self.operator(subject)?;
        let TokenKind::Rel(rel) = op.kind else {
            let (pattern, negated) = self.regex_value(subject, &op)?;
            return Ok(FieldTest::String(StrOp::Match { pattern, negated }));
        };
        let value = self.next()?;
        match (value.kind, rel) {
            (TokenKind::Number(n), _) => Ok(FieldTest::Numeric(rel, n)),
            (TokenKind::Str(s), _) => Ok(FieldTest::String(StrOp::Compare(rel, s))),
            (TokenKind::True, RelOp::Eq) => Ok(FieldTest::Bool(true)),
            (TokenKind::False, RelOp::Eq) => Ok(FieldTest::Bool(false)),
            (TokenKind::Nil, RelOp::Eq) => Ok(FieldTest::Nil { equal: true }),
            (TokenKind::Nil, RelOp::Ne) => Ok(FieldTest::Nil { equal: false }),
            (kind, _) => {
                let allowed = match rel {
                    RelOp::Eq => "a number, a quoted string, TRUE, FALSE or NIL",
                    RelOp::Ne => "a number, a quoted string or NIL (TRUE and FALSE need ==)",
                    _ => "a number or a quoted string",
                };
                let tok = Token { kind, ..value };
                Err(self.expected(
                    &tok,
                    format!("{allowed} after '{subject} {}'", rel.as_str()),
                ))
            }
        }
    }
}
