//! Tokens of the matcher language (heka.md §3.1).
//!
//! The lexer is pulled one token at a time by the parser, so errors surface in reading order, as
//! in Heka. It works on bytes and only ever splits the source at ASCII characters, so every
//! offset it reports is a char boundary of the source.

use super::error::MatcherError;

/// A header compared as a string.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StrVar {
    Uuid,
    Type,
    Logger,
    Payload,
    EnvVersion,
    Hostname,
}

/// A header compared as a number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NumVar {
    Timestamp,
    Severity,
    Pid,
}

/// A relational operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RelOp {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

impl RelOp {
    /// The operator as written.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            RelOp::Eq => "==",
            RelOp::Ne => "!=",
            RelOp::Gt => ">",
            RelOp::Ge => ">=",
            RelOp::Lt => "<",
            RelOp::Le => "<=",
        }
    }
}

/// `Fields[name][fi][ai]`; missing indices are 0.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct FieldRef {
    pub(crate) name: Box<[u8]>,
    pub(crate) fi: usize,
    pub(crate) ai: usize,
}

/// What a token is.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum TokenKind {
    StrVar(StrVar),
    NumVar(NumVar),
    Field(FieldRef),
    True,
    False,
    Nil,
    Number(f64),
    /// A string literal with its escapes resolved.
    Str(Box<[u8]>),
    /// A regex literal with `\/` resolved; the pattern handed to the regex compiler.
    Regex(String),
    Rel(RelOp),
    /// `=~`
    Match,
    /// `!~`
    NotMatch,
    And,
    Or,
    LParen,
    RParen,
    End,
}

/// A token and the byte range of the source it was read from.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Token {
    pub(crate) kind: TokenKind,
    pub(crate) start: usize,
    pub(crate) end: usize,
}

/// Pulls tokens out of a matcher expression.
#[derive(Debug)]
pub(crate) struct Lexer<'a> {
    src: &'a str,
    pos: usize,
}

impl<'a> Lexer<'a> {
    /// A lexer over `spec`. As in Heka, a newline (or a NUL) ends the input: what follows is
    /// ignored.
    pub(crate) fn new(spec: &'a str) -> Self {
        let end = spec.find(['\n', '\0']).unwrap_or(spec.len());
        Lexer {
            src: &spec[..end],
            pos: 0,
        }
    }

    /// The part of the source the lexer reads.
    pub(crate) fn source(&self) -> &'a str {
        self.src
    }

    fn byte(&self, at: usize) -> Option<u8> {
        self.src.as_bytes().get(at).copied()
    }

    /// The character at `at` (a char boundary), quoted, for error messages.
    fn quoted_char(&self, at: usize) -> String {
        match self.src.get(at..).and_then(|s| s.chars().next()) {
            Some(c) => format!("'{}'", c.escape_debug()),
            None => "the end of the expression".to_owned(),
        }
    }

    /// Length in bytes of the character at `at` (1 past the end).
    fn char_len(&self, at: usize) -> usize {
        self.src
            .get(at..)
            .and_then(|s| s.chars().next())
            .map_or(1, char::len_utf8)
    }

    /// Reads the next token; [`TokenKind::End`] once the input is exhausted.
    pub(crate) fn next_token(&mut self) -> Result<Token, MatcherError> {
        while matches!(self.byte(self.pos), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
        let start = self.pos;
        let Some(b) = self.byte(start) else {
            return Ok(Token {
                kind: TokenKind::End,
                start,
                end: start,
            });
        };
        let kind = match b {
            b'A'..=b'Z' => self.word(start)?,
            b'a'..=b'z' | b'_' => {
                let end = self.scan_word(start);
                return Err(MatcherError::UnknownIdentifier {
                    pos: start,
                    word: self.src[start..end].to_owned(),
                });
            }
            b'0'..=b'9' | b'.' => self.number(start),
            b'"' | b'\'' => TokenKind::Str(self.quoted(start, b)?.into_boxed_slice()),
            b'/' => self.regex(start)?,
            b'=' | b'!' | b'|' | b'&' | b'>' | b'<' => self.operator(start, b)?,
            b'(' => {
                self.pos += 1;
                TokenKind::LParen
            }
            b')' => {
                self.pos += 1;
                TokenKind::RParen
            }
            _ => {
                let hint = match b {
                    b'-' => "; numbers cannot be negative in a matcher",
                    b'[' => "; Fields takes at most [name][field index][array index]",
                    _ => "",
                };
                return Err(MatcherError::UnexpectedChar {
                    pos: start,
                    found: self.quoted_char(start),
                    hint,
                });
            }
        };
        Ok(Token {
            kind,
            start,
            end: self.pos,
        })
    }

    fn scan_word(&self, start: usize) -> usize {
        let mut end = start;
        while matches!(self.byte(end), Some(b'A'..=b'Z' | b'a'..=b'z')) {
            end += 1;
        }
        end
    }

    fn word(&mut self, start: usize) -> Result<TokenKind, MatcherError> {
        let end = self.scan_word(start);
        self.pos = end;
        Ok(match &self.src[start..end] {
            "Uuid" => TokenKind::StrVar(StrVar::Uuid),
            "Type" => TokenKind::StrVar(StrVar::Type),
            "Logger" => TokenKind::StrVar(StrVar::Logger),
            "Payload" => TokenKind::StrVar(StrVar::Payload),
            "EnvVersion" => TokenKind::StrVar(StrVar::EnvVersion),
            "Hostname" => TokenKind::StrVar(StrVar::Hostname),
            "Timestamp" => TokenKind::NumVar(NumVar::Timestamp),
            "Severity" => TokenKind::NumVar(NumVar::Severity),
            "Pid" => TokenKind::NumVar(NumVar::Pid),
            "TRUE" => TokenKind::True,
            "FALSE" => TokenKind::False,
            "NIL" => TokenKind::Nil,
            "Fields" => TokenKind::Field(self.field(end)?),
            word => {
                return Err(MatcherError::UnknownIdentifier {
                    pos: start,
                    word: word.to_owned(),
                });
            }
        })
    }

    /// `[name]`, then up to two `[digits]`, right after `Fields` (which ends at `at`).
    fn field(&mut self, at: usize) -> Result<FieldRef, MatcherError> {
        if self.byte(at) != Some(b'[') {
            return Err(MatcherError::FieldsWithoutName { pos: at });
        }
        let name_start = at + 1;
        let Some(len) = self.src[name_start..].find(']') else {
            return Err(MatcherError::UnterminatedField { pos: at });
        };
        if len == 0 {
            return Err(MatcherError::EmptyFieldName { pos: name_start });
        }
        let name = self.src.as_bytes()[name_start..name_start + len].into();
        let mut pos = name_start + len + 1;
        let mut indices = [0usize; 2];
        for index in &mut indices {
            if self.byte(pos) != Some(b'[') {
                break;
            }
            let open = pos;
            let digits_start = pos + 1;
            let mut i = digits_start;
            loop {
                match self.byte(i) {
                    Some(b'0'..=b'9') => i += 1,
                    Some(b']') if i > digits_start => break,
                    Some(_) => return Err(MatcherError::BadFieldIndex { pos: i }),
                    None => return Err(MatcherError::UnterminatedField { pos: open }),
                }
            }
            *index = self.src[digits_start..i]
                .parse()
                .map_err(|_| MatcherError::FieldIndexTooLarge { pos: digits_start })?;
            pos = i + 1;
        }
        self.pos = pos;
        Ok(FieldRef {
            name,
            fi: indices[0],
            ai: indices[1],
        })
    }

    /// A number: `[0-9.]` then `[0-9.e+-]*`, read as f64. As in Heka, text that does not parse
    /// (`1-2`, `.`, `1e`) or overflows reads as 0.
    fn number(&mut self, start: usize) -> TokenKind {
        let mut end = start + 1;
        while matches!(
            self.byte(end),
            Some(b'0'..=b'9' | b'.' | b'e' | b'+' | b'-')
        ) {
            end += 1;
        }
        self.pos = end;
        let value = self.src[start..end]
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .unwrap_or(0.0);
        TokenKind::Number(value)
    }

    /// The body of a `quote`-delimited literal starting at `start`. A backslash followed by the
    /// delimiter yields the delimiter; followed by anything else, both characters are kept.
    fn delimited(&mut self, start: usize, quote: u8) -> Option<Vec<u8>> {
        let bytes = self.src.as_bytes();
        let mut out = Vec::new();
        let mut i = start + 1;
        loop {
            let b = *bytes.get(i)?;
            if b == quote {
                self.pos = i + 1;
                return Some(out);
            }
            if b == b'\\' {
                let next = *bytes.get(i + 1)?;
                if next == quote {
                    out.push(quote);
                    i += 2;
                } else {
                    let len = self.char_len(i + 1);
                    out.extend_from_slice(bytes.get(i..i + 1 + len)?);
                    i += 1 + len;
                }
            } else {
                out.push(b);
                i += 1;
            }
        }
    }

    fn quoted(&mut self, start: usize, quote: u8) -> Result<Vec<u8>, MatcherError> {
        self.delimited(start, quote)
            .ok_or(MatcherError::UnterminatedString { pos: start })
    }

    fn regex(&mut self, start: usize) -> Result<TokenKind, MatcherError> {
        let body = self
            .delimited(start, b'/')
            .ok_or(MatcherError::UnterminatedRegex { pos: start })?;
        // Only whole characters were copied, so the body is UTF-8.
        String::from_utf8(body)
            .map(TokenKind::Regex)
            .map_err(|_| MatcherError::InvalidRegex {
                pos: start,
                reason: "the pattern is not valid UTF-8".to_owned(),
            })
    }

    fn operator(&mut self, start: usize, first: u8) -> Result<TokenKind, MatcherError> {
        let second = self.byte(start + 1);
        let (kind, len) = match (first, second) {
            (b'=', Some(b'=')) => (TokenKind::Rel(RelOp::Eq), 2),
            (b'=', Some(b'~')) => (TokenKind::Match, 2),
            (b'!', Some(b'=')) => (TokenKind::Rel(RelOp::Ne), 2),
            (b'!', Some(b'~')) => (TokenKind::NotMatch, 2),
            (b'>', Some(b'=')) => (TokenKind::Rel(RelOp::Ge), 2),
            (b'>', _) => (TokenKind::Rel(RelOp::Gt), 1),
            (b'<', Some(b'=')) => (TokenKind::Rel(RelOp::Le), 2),
            (b'<', _) => (TokenKind::Rel(RelOp::Lt), 1),
            (b'|', Some(b'|')) => (TokenKind::Or, 2),
            (b'&', Some(b'&')) => (TokenKind::And, 2),
            _ => {
                let hint = match first {
                    b'=' => "; did you mean '==' or '=~'?",
                    b'!' => "; did you mean '!=' or '!~'?",
                    b'|' => "; did you mean '||'?",
                    _ => "; did you mean '&&'?",
                };
                return Err(MatcherError::UnexpectedChar {
                    pos: start,
                    found: self.quoted_char(start),
                    hint,
                });
            }
        };
        self.pos = start + len;
        Ok(kind)
    }
}
