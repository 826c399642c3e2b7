//! The one error type of the matcher compiler.

/// Why a matcher expression was rejected.
///
/// Every variant but [`MatcherError::Empty`] carries the byte offset (zero-based) in the
/// expression where the problem was found; [`MatcherError::position`] returns it. The `Display`
/// form is one sentence meant for the user, e.g. `expected a comparison operator after 'Severity'
/// at position 9, found '5'`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MatcherError {
    /// The expression holds nothing but whitespace.
    #[error("the matcher expression is empty")]
    Empty,
    /// A character that starts no token (or a lone `=`, `!`, `|`, `&`).
    #[error("unexpected character {found} at position {pos}{hint}")]
    UnexpectedChar {
        /// Offset of the character.
        pos: usize,
        /// The character, quoted.
        found: String,
        /// A suggestion, empty or starting with `; `.
        hint: &'static str,
    },
    /// A capitalised word that is not one of the language's names.
    #[error(
        "unknown identifier '{word}' at position {pos}; expected Uuid, Type, Logger, Payload, \
         EnvVersion, Hostname, Timestamp, Severity, Pid, Fields[name], TRUE, FALSE or NIL"
    )]
    UnknownIdentifier {
        /// Offset of the word.
        pos: usize,
        /// The word.
        word: String,
    },
    /// `Fields` not immediately followed by `[`.
    #[error("expected '[' right after 'Fields' at position {pos}")]
    FieldsWithoutName {
        /// Offset of the character after `Fields`.
        pos: usize,
    },
    /// `Fields[]`.
    #[error("the field name in Fields[...] must not be empty at position {pos}")]
    EmptyFieldName {
        /// Offset of the closing bracket.
        pos: usize,
    },
    /// A bracket group after `Fields` that never closes.
    #[error("unterminated Fields[...] starting at position {pos}")]
    UnterminatedField {
        /// Offset of the opening bracket.
        pos: usize,
    },
    /// A field or array index that is empty or holds something other than decimal digits.
    #[error("Fields index must be decimal digits at position {pos}")]
    BadFieldIndex {
        /// Offset of the offending character.
        pos: usize,
    },
    /// A field or array index that does not fit in a machine word.
    #[error("Fields index is too large at position {pos}")]
    FieldIndexTooLarge {
        /// Offset of the index.
        pos: usize,
    },
    /// A string literal without its closing quote.
    #[error("unterminated string starting at position {pos}")]
    UnterminatedString {
        /// Offset of the opening quote.
        pos: usize,
    },
    /// A regular expression literal without its closing `/`.
    #[error("unterminated regular expression starting at position {pos}")]
    UnterminatedRegex {
        /// Offset of the opening slash.
        pos: usize,
    },
    /// A regular expression that does not compile.
    #[error("invalid regular expression at position {pos}: {reason}")]
    InvalidRegex {
        /// Offset of the opening slash.
        pos: usize,
        /// What the regex compiler said, on one line.
        reason: String,
    },
    /// A token that the grammar does not allow where it stands.
    #[error("expected {expected} at position {pos}, found {found}")]
    Expected {
        /// Offset of the offending token.
        pos: usize,
        /// What the grammar allows there.
        expected: String,
        /// The offending token as written, quoted, or "the end of the expression".
        found: String,
    },
    /// A `(` whose `)` never comes.
    #[error(
        "expected '&&', '||' or ')' at position {pos} to close the '(' at position {open}, \
         found {found}"
    )]
    Unclosed {
        /// Offset of the token found instead of `)`.
        pos: usize,
        /// Offset of the `(`.
        open: usize,
        /// The token found, quoted, or "the end of the expression".
        found: String,
    },
    /// Parentheses nested deeper than the compiler accepts.
    #[error("parentheses are nested more than {max} deep at position {pos}")]
    TooDeep {
        /// Offset of the parenthesis that goes too deep.
        pos: usize,
        /// The nesting limit.
        max: usize,
    },
}

impl MatcherError {
    /// Byte offset in the expression where the error was found (0 for an empty expression).
    pub fn position(&self) -> usize {
        match self {
            MatcherError::Empty => 0,
            MatcherError::UnexpectedChar { pos, .. }
            | MatcherError::UnknownIdentifier { pos, .. }
            | MatcherError::FieldsWithoutName { pos }
            | MatcherError::EmptyFieldName { pos }
            | MatcherError::UnterminatedField { pos }
            | MatcherError::BadFieldIndex { pos }
            | MatcherError::FieldIndexTooLarge { pos }
            | MatcherError::UnterminatedString { pos }
            | MatcherError::UnterminatedRegex { pos }
            | MatcherError::InvalidRegex { pos, .. }
            | MatcherError::Expected { pos, .. }
            | MatcherError::Unclosed { pos, .. }
            | MatcherError::TooDeep { pos, .. } => *pos,
        }
    }
}
