//! Lua source literals, as `preserve_data` writes them and the probabilistic modules'
//! `tostring`/serialisation do: names, quoted strings and numbers.

use crate::number::format_g;

/// Whether `s` can name a global or a table key without quotes.
pub(crate) fn is_identifier(s: &[u8]) -> bool {
    const KEYWORDS: &[&str] = &[
        "and", "break", "do", "else", "elseif", "end", "false", "for", "function", "if", "in",
        "local", "nil", "not", "or", "repeat", "return", "then", "true", "until", "while",
    ];
    !s.is_empty()
        && !s[0].is_ascii_digit()
        && s.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
        && !KEYWORDS.iter().any(|k| k.as_bytes() == s)
}

/// A Lua string literal for arbitrary bytes.
pub(crate) fn quote(s: &[u8]) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for &c in s {
        match c {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            0x20..=0x7e => out.push(c as char),
            _ => out.push_str(&format!("\\{c:03}")),
        }
    }
    out.push('"');
    out
}

/// A Lua literal for a number, exact for integers and to 17 digits otherwise.
pub(crate) fn number_literal(d: f64) -> String {
    if d.is_nan() {
        "0/0".into()
    } else if d.is_infinite() {
        if d > 0.0 { "1/0".into() } else { "-1/0".into() }
    } else if d.fract() == 0.0 && d.abs() < 1e15 {
        format!("{}", d as i64)
    } else {
        format_g(d, 17)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_quoted_so_that_lua_reads_the_same_bytes() {
        assert_eq!(quote(b"a\"b\\c\n\x01"), "\"a\\\"b\\\\c\\n\\001\"");
    }

    #[test]
    fn keywords_and_digits_are_not_names() {
        assert!(is_identifier(b"_count1"));
        assert!(!is_identifier(b"end"));
        assert!(!is_identifier(b"1st"));
        assert!(!is_identifier(b""));
    }

    #[test]
    fn numbers_keep_their_value() {
        assert_eq!(number_literal(3.0), "3");
        assert_eq!(number_literal(f64::INFINITY), "1/0");
        assert_eq!(number_literal(f64::NAN), "0/0");
    }
}
