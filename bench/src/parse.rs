//! Reading the stamps back: connection id, sequence number and send time of a received message.
//!
//! - Heka messages: the INTEGER fields `conn`, `seq` and `sent_ns`, read with hekate's lazy
//!   [`MessageView`] (no full decode).
//! - Text lines: `conn=`, `seq=`, `sent_ns=` anywhere in the line, or the same keys as JSON
//!   members (`"seq":         123`) or DogStatsD tags (`seq:123`). Whatever a pipeline puts
//!   around the line (a timestamp prefix, a JSON envelope) does not matter.
//!
//! Also the two text framings (newline, octet counting) and graphite plaintext lines.

use hekate_model::message::{FieldValue, MessageAccess, MessageView};
use memchr::memmem;

/// The numbers the generator stamped into a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    /// Connection id.
    pub conn: u64,
    /// Sequence number within the connection.
    pub seq: u64,
    /// Send time, ns since the epoch.
    pub sent_ns: u64,
}

fn int_field(view: &MessageView<'_>, name: &[u8]) -> Option<u64> {
    match view.field_value(name, 0, 0)? {
        FieldValue::Integer(v) if v >= 0 => Some(v as u64),
        _ => None,
    }
}

/// The stamp of an encoded Heka message; `None` when it has none (e.g. a pipeline's own
/// messages) or is not a valid message.
pub fn heka_stamp(message: &[u8]) -> Option<Stamp> {
    let view = MessageView::new(message).ok()?;
    Some(Stamp {
        conn: int_field(&view, b"conn")?,
        seq: int_field(&view, b"seq")?,
        sent_ns: int_field(&view, b"sent_ns")?,
    })
}

/// Finds the number after `key` in `line`: `key` must start a word, be followed by an optional
/// `"`, then `=` or `:`, optional spaces, and digits.
fn number_after(line: &[u8], finder: &memmem::Finder<'_>) -> Option<u64> {
    let key_len = finder.needle().len();
    for at in finder.find_iter(line) {
        if at > 0 {
            let before = line[at - 1];
            if before.is_ascii_alphanumeric() || before == b'_' {
                continue;
            }
        }
        let mut i = at + key_len;
        if line.get(i) == Some(&b'"') {
            i += 1;
        }
        if !matches!(line.get(i), Some(b'=' | b':')) {
            continue;
        }
        i += 1;
        while line.get(i) == Some(&b' ') {
            i += 1;
        }
        let digits = line[i..].iter().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 || digits > 19 {
            continue;
        }
        let mut v = 0u64;
        for &d in &line[i..i + digits] {
            v = v.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
        }
        return Some(v);
    }
    None
}

/// Finds stamps in text lines; build once, use for every line.
#[derive(Debug)]
pub struct TextStamps {
    conn: memmem::Finder<'static>,
    seq: memmem::Finder<'static>,
    sent_ns: memmem::Finder<'static>,
}

impl Default for TextStamps {
    fn default() -> Self {
        TextStamps {
            conn: memmem::Finder::new(b"conn"),
            seq: memmem::Finder::new(b"seq"),
            sent_ns: memmem::Finder::new(b"sent_ns"),
        }
    }
}

impl TextStamps {
    /// The stamp in `line`, if it has all three numbers.
    pub fn find(&self, line: &[u8]) -> Option<Stamp> {
        Some(Stamp {
            seq: number_after(line, &self.seq)?,
            sent_ns: number_after(line, &self.sent_ns)?,
            conn: number_after(line, &self.conn)?,
        })
    }
}

/// Splits text records out of a byte stream, by newline or by RFC 6587 octet counting.
///
/// [`LineFraming::next`] looks at the unconsumed bytes and returns the first record without its
/// framing and the bytes it used. A malformed octet count is skipped up to the next newline and
/// reported as [`LineStep::Garbage`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LineFraming {
    /// Records end at `\n` (a `\r` before it is dropped).
    Newline,
    /// `<decimal length> <record>`.
    OctetCounted,
}

/// One step of a [`LineFraming`] split.
#[derive(Debug, PartialEq, Eq)]
pub enum LineStep<'a> {
    /// A record, and the bytes it used.
    Record(&'a [u8], usize),
    /// Bytes that are not a record (a bad octet count), to drop.
    Garbage(usize),
    /// Need more bytes.
    NeedData,
}

impl LineFraming {
    /// The next record at the front of `buf`.
    pub fn next<'a>(&self, buf: &'a [u8]) -> LineStep<'a> {
        match self {
            LineFraming::Newline => match memchr::memchr(b'\n', buf) {
                Some(nl) => {
                    let line = &buf[..nl];
                    let line = line.strip_suffix(b"\r").unwrap_or(line);
                    LineStep::Record(line, nl + 1)
                }
                None => LineStep::NeedData,
            },
            LineFraming::OctetCounted => {
                // Tolerate newlines between frames (some senders add them).
                let lead = buf
                    .iter()
                    .take_while(|b| matches!(b, b'\n' | b'\r'))
                    .count();
                let rest = &buf[lead..];
                let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
                if digits == rest.len() {
                    return if digits > 10 {
                        LineStep::Garbage(buf.len())
                    } else if lead > 0 {
                        LineStep::Garbage(lead)
                    } else {
                        LineStep::NeedData
                    };
                }
                if digits == 0 || digits > 10 || rest[digits] != b' ' {
                    let skip = memchr::memchr(b'\n', rest).map_or(buf.len(), |nl| lead + nl + 1);
                    return LineStep::Garbage(skip);
                }
                let len: usize = std::str::from_utf8(&rest[..digits])
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(usize::MAX);
                let start = digits + 1;
                if rest.len() - start < len {
                    return LineStep::NeedData;
                }
                LineStep::Record(&rest[start..start + len], lead + start + len)
            }
        }
    }
}

/// One graphite plaintext line, `path value timestamp`.
pub fn carbon_line(line: &[u8]) -> Option<(&str, f64)> {
    let line = std::str::from_utf8(line).ok()?;
    let mut parts = line.split_ascii_whitespace();
    let path = parts.next()?;
    let value = parts.next()?.parse().ok()?;
    Some((path, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_stamps_in_every_shape() {
        let t = TextStamps::default();
        let want = Some(Stamp {
            conn: 3,
            seq: 123,
            sent_ns: 1_732_484_000_123_456_789,
        });
        for line in [
            &b"<134>1 2026-11-24T21:33:12Z h app 1 - - GET / conn=3 seq=000000000123 sent_ns=1732484000123456789 lorem"[..],
            b"{\"conn\":3,\"seq\":         123,\"sent_ns\":1732484000123456789,\"message\":\"x\"}",
            b"bench.c3.api.ok:1|c|#conn:3,seq:000000000123,sent_ns:1732484000123456789",
            b"2026/11/24 21:33:12 subseq=9 conn=3 seq=123 sent_ns=1732484000123456789",
        ] {
            assert_eq!(t.find(line), want, "{}", String::from_utf8_lossy(line));
        }
        assert_eq!(t.find(b"conn=3 seq=1"), None);
        assert_eq!(t.find(b"conn=3 seq= sent_ns=5"), None);
    }

    #[test]
    fn octet_counting_and_newlines() {
        let f = LineFraming::OctetCounted;
        assert_eq!(f.next(b"5 hello3 abc"), LineStep::Record(b"hello", 7));
        assert_eq!(f.next(b"5 hel"), LineStep::NeedData);
        assert_eq!(f.next(b"12"), LineStep::NeedData);
        assert_eq!(f.next(b"\n3 abc"), LineStep::Record(b"abc", 6));
        assert_eq!(f.next(b"x y\n3 abc"), LineStep::Garbage(4));
        let n = LineFraming::Newline;
        assert_eq!(n.next(b"a b\r\nc"), LineStep::Record(b"a b", 5));
        assert_eq!(n.next(b"abc"), LineStep::NeedData);
        assert_eq!(
            carbon_line(b"stats.counters.x.count 42 1700000000"),
            Some(("stats.counters.x.count", 42.0))
        );
    }
}
