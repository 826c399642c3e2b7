//! Regular expression literals: the fast paths and the RE2 dialect.
//!
//! Heka compiles `/.../` with Go's RE2 and replaces `^literal` by a prefix test and `literal$`
//! by a suffix test. hekate does the same and adds three more exact rewrites: `^literal$` is an
//! equality test, an unanchored `literal` a substring search, and an unanchored alternation of
//! literals (`timeout|refused`) a search for each in turn. "Literal" means what Go means:
//! ordinary characters plus escaped punctuation (`\.`, `\/`, `\$`, ...) and the escapes `\t \n \r
//! \f \v \a`; anything else goes to the regex engine, which is always correct, only slower.
//!
//! The `regex` crate's syntax is RE2's almost everywhere. Where the two differ in meaning, the
//! pattern is rewritten before compiling so that it means what it meant to hekad:
//! - `\d \s \w \D \S \W` are ASCII classes in RE2 (Unicode in `regex`): rewritten to explicit
//!   ASCII classes (`[0-9]`, `[\t\n\f\r ]`, `[0-9A-Za-z_]` and their negations);
//! - `\b \B` are ASCII word boundaries in RE2: rewritten to `(?-u:\b)`, `(?-u:\B)`;
//! - `\Q...\E` quotes a literal in RE2: rewritten to the escaped literal;
//! - inside a bracket class, RE2 reads `[` (when not starting `[:name:]`), `&` and `~` as plain
//!   characters, while `regex` gives them meaning (nested classes, `&&`, `~~`): they are escaped.
//!
//! Constructs that RE2 accepts and `regex` rejects (octal escapes, a `{` that starts no
//! repetition) are reported as invalid regular expressions.

use memchr::memmem;
use regex::bytes::{Regex, RegexBuilder};

use super::error::MatcherError;

/// A compiled `/.../` literal.
#[derive(Clone, Debug)]
pub(crate) enum Pattern {
    /// `^literal`
    Prefix(Box<[u8]>),
    /// `literal$`
    Suffix(Box<[u8]>),
    /// `^literal$`
    Exact(Box<[u8]>),
    /// `literal`, unanchored.
    Contains(Box<memmem::Finder<'static>>),
    /// `literal|literal|…`, unanchored: whether any of them occurs.
    AnyOf(Box<[memmem::Finder<'static>]>),
    /// Anything else.
    Regex(Regex),
}

impl Pattern {
    /// Compiles the body of a regex literal that starts at offset `pos` of the expression.
    pub(crate) fn compile(pattern: &str, pos: usize) -> Result<Pattern, MatcherError> {
        if let Some(rest) = pattern.strip_prefix('^') {
            if let Some(lit) = literal(rest) {
                return Ok(Pattern::Prefix(lit.into()));
            }
            if let Some(lit) = rest.strip_suffix('$').and_then(literal) {
                return Ok(Pattern::Exact(lit.into()));
            }
        }
        if let Some(lit) = pattern.strip_suffix('$').and_then(literal) {
            return Ok(Pattern::Suffix(lit.into()));
        }
        if let Some(lit) = literal(pattern) {
            return Ok(Pattern::Contains(Box::new(
                memmem::Finder::new(&lit).into_owned(),
            )));
        }
        if let Some(lits) = alternatives(pattern) {
            return Ok(Pattern::AnyOf(
                lits.iter()
                    .map(|l| memmem::Finder::new(l).into_owned())
                    .collect(),
            ));
        }
        Self::regex(pattern, pos).map(Pattern::Regex)
    }

    /// Compiles `pattern` with the regex engine, never taking a fast path.
    pub(crate) fn regex(pattern: &str, pos: usize) -> Result<Regex, MatcherError> {
        RegexBuilder::new(&translate(pattern))
            .build()
            .map_err(|e| MatcherError::InvalidRegex {
                pos,
                reason: one_line(&e),
            })
    }

    /// Whether `haystack` matches (an unanchored search, as RE2's `MatchString`).
    #[inline]
    pub(crate) fn is_match(&self, haystack: &[u8]) -> bool {
        match self {
            Pattern::Prefix(lit) => haystack.starts_with(lit),
            Pattern::Suffix(lit) => haystack.ends_with(lit),
            Pattern::Exact(lit) => haystack == &**lit,
            Pattern::Contains(finder) => finder.find(haystack).is_some(),
            Pattern::AnyOf(finders) => finders.iter().any(|f| f.find(haystack).is_some()),
            Pattern::Regex(re) => re.is_match(haystack),
        }
    }
}

/// The bytes `pattern` matches when it is a pure literal in RE2's sense, else `None`.
pub(crate) fn literal(pattern: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(pattern.len());
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        let lit = match c {
            '\\' => match chars.next()? {
                't' => '\t',
                'n' => '\n',
                'r' => '\r',
                'f' => '\x0c',
                'v' => '\x0b',
                'a' => '\x07',
                // RE2: an escaped ASCII character that is not a letter or digit is itself.
                e if e.is_ascii() && !e.is_ascii_alphanumeric() => e,
                _ => return None,
            },
            '.' | '+' | '*' | '?' | '(' | ')' | '|' | '[' | ']' | '{' | '}' | '^' | '$' => {
                return None;
            }
            c => c,
        };
        let mut buf = [0u8; 4];
        out.extend_from_slice(lit.encode_utf8(&mut buf).as_bytes());
    }
    Some(out)
}

/// The branches of `pattern` when it is two or more pure literals joined by `|` at its top
/// level (split at every `|` not escaped; a `|` inside a class or a group leaves a branch that
/// is no literal, so the pattern goes to the regex engine), else `None`.
pub(crate) fn alternatives(pattern: &str) -> Option<Vec<Vec<u8>>> {
    let mut branches = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (i, c) in pattern.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '|' => {
                branches.push(literal(&pattern[start..i])?);
                start = i + 1;
            }
            _ => {}
        }
    }
    if branches.is_empty() {
        return None;
    }
    branches.push(literal(&pattern[start..])?);
    Some(branches)
}

const ASCII_DIGIT: &str = "[0-9]";
const ASCII_NOT_DIGIT: &str = "[^0-9]";
const ASCII_SPACE: &str = r"[\t\n\f\r ]";
const ASCII_NOT_SPACE: &str = r"[^\t\n\f\r ]";
const ASCII_WORD: &str = "[0-9A-Za-z_]";
const ASCII_NOT_WORD: &str = "[^0-9A-Za-z_]";

/// Rewrites an RE2 pattern into the `regex` crate's dialect (see the module docs).
pub(crate) fn translate(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 16);
    let mut chars = pattern.char_indices().peekable();
    let mut in_class = false;
    // Right after `[` or `[^`, where `]` is an ordinary character.
    let mut class_start = false;
    while let Some((i, c)) = chars.next() {
        let at_class_start = std::mem::take(&mut class_start);
        if c == '\\' {
            let Some((_, e)) = chars.next() else {
                out.push('\\'); // dangling: let the regex compiler report it
                break;
            };
            match e {
                'd' => out.push_str(ASCII_DIGIT),
                'D' => out.push_str(ASCII_NOT_DIGIT),
                's' => out.push_str(ASCII_SPACE),
                'S' => out.push_str(ASCII_NOT_SPACE),
                'w' => out.push_str(ASCII_WORD),
                'W' => out.push_str(ASCII_NOT_WORD),
                'b' if !in_class => out.push_str(r"(?-u:\b)"),
                'B' if !in_class => out.push_str(r"(?-u:\B)"),
                'Q' if !in_class => {
                    let rest = &pattern[i + 2..];
                    let (quoted, skip) = match rest.find(r"\E") {
                        Some(end) => (&rest[..end], end + 2),
                        None => (rest, rest.len()),
                    };
                    out.push_str(&regex::escape(quoted));
                    while chars.peek().is_some_and(|&(j, _)| j < i + 2 + skip) {
                        chars.next();
                    }
                }
                e => {
                    out.push('\\');
                    out.push(e);
                }
            }
            continue;
        }
        if !in_class {
            out.push(c);
            if c == '[' {
                in_class = true;
                class_start = true;
                if chars.peek().is_some_and(|&(_, n)| n == '^') {
                    chars.next();
                    out.push('^');
                }
            }
            continue;
        }
        match c {
            ']' if at_class_start => out.push_str(r"\]"),
            ']' => {
                in_class = false;
                out.push(']');
            }
            '[' => match posix_class(&pattern[i..]) {
                Some(len) => {
                    out.push_str(&pattern[i..i + len]);
                    while chars.peek().is_some_and(|&(j, _)| j < i + len) {
                        chars.next();
                    }
                }
                None => out.push_str(r"\["),
            },
            '&' | '~' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// Length of a `[:name:]` or `[:^name:]` at the start of `s`, if there is one.
fn posix_class(s: &str) -> Option<usize> {
    let body = s.strip_prefix("[:")?;
    let end = body.find(":]")?;
    let name = body[..end].strip_prefix('^').unwrap_or(&body[..end]);
    (!name.is_empty() && name.bytes().all(|b| b.is_ascii_lowercase())).then_some(2 + end + 2)
}

/// The regex compiler's complaint on one line.
fn one_line(e: &regex::Error) -> String {
    match e {
        regex::Error::Syntax(text) => text
            .lines()
            .find_map(|l| l.trim().strip_prefix("error: "))
            .unwrap_or(text.trim())
            .to_owned(),
        regex::Error::CompiledTooBig(limit) => {
            format!("the compiled pattern exceeds the size limit of {limit} bytes")
        }
        other => other.to_string().replace('\n', " "),
    }
}
