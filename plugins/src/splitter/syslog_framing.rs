//! SyslogFramingSplitter: cuts a stream of syslog messages into records, octet-counted frames
//! (RFC 6587) and lines alike, told apart frame by frame as rsyslog does.
//!
//! A frame that starts with a digit run and a space is octet-counted (`LEN SP MSG`, what `logger
//! --octet-count` and rsyslog's `omfwd` with `TCP_Framing="octet-counted"` send); any other is a
//! line ended by `\n`. The line end (`\n` or `\r\n`) is not part of the record, nor are the line
//! ends an octet-counted frame ends with (senders that count their newline). Heka has no such
//! splitter; this is hekate's.
//!
//! ```toml
//! [syslog]
//! type = "TcpInput"
//! address = ":5514"
//! splitter = "SyslogFramingSplitter"
//! decoder = "SyslogDecoder"
//!
//! [SyslogFramingSplitter]
//! octet_counting = true
//!
//! [SyslogDecoder]
//! ```
//!
//! With UdpInput each datagram is one message (RFC 5426) and its final line needs no `\n`, so one
//! splitter and decoder serve a syslog port over TCP and UDP alike.
//!
//! Limits: a record is at most `max_message_size` bytes. An octet count above that is skipped
//! byte for byte as the frame goes by (counted in `SkippedBytes`, never buffered), so an honest
//! sender stays in step; a count of ten digits or more, or of 0, is no count at all, and the
//! frame is read as a line. A line longer than the limit is skipped up to its end (or delivered
//! cut to the limit with `keep_truncated`). Empty lines between frames (a sender that ends an
//! octet-counted frame with a newline it did not count) are dropped silently. At the end of a
//! stream, a final line without its `\n` is a record (`deliver_incomplete_final`, true here: a
//! UDP datagram or an old sender's last line), an octet-counted frame cut short is skipped and
//! counted.
//!
//! Options: `octet_counting` (true; false reads every frame as a line, for senders of lines
//! that start with a number and a space), plus the common splitter options (`keep_truncated`,
//! `min_buffer_size` 8 KiB, `deliver_incomplete_final` true).

use std::sync::Arc;

use hekate_config::{ConfigError, PluginSection};
use hekate_engine::plugin::{
    BuildContext, Built, PluginType, Split, SplitOutcome, Splitter, SplitterPlugin, options_of,
};
use hekate_model::framing::SignerKeys;
use schemars::JsonSchema;
use serde::Deserialize;

/// The registry entry.
pub const TYPE: PluginType = PluginType {
    name: "SyslogFramingSplitter",
    source: include_str!("syslog_framing.rs"),
    options: options_of::<Options>,
    default_matcher: None,
    build,
};

/// The longest octet count read as one (nine digits: under 1 GB).
const MAX_COUNT_DIGITS: usize = 9;

/// Room in the read buffer for a length prefix besides the largest record.
const PREFIX_ROOM: usize = MAX_COUNT_DIGITS + 1;

fn yes() -> bool {
    true
}

/// SyslogFramingSplitter's own options.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Options {
    /// Read a frame that starts with digits and a space as octet-counted (RFC 6587 §3.4.1);
    /// false reads every frame as a line.
    #[serde(default = "yes")]
    octet_counting: bool,
}

#[derive(Debug)]
struct SyslogFramingSplitter {
    octet_counting: bool,
    min_buffer_size: usize,
    max_record_size: usize,
    keep_truncated: bool,
    deliver_incomplete_final: bool,
}

fn build(section: &PluginSection, ctx: &BuildContext<'_>) -> Result<Built, ConfigError> {
    let opts: Options = section.options()?;
    let common = section.splitter().copied().unwrap_or_default();
    // Unlike Heka's splitters, a final line is delivered unless the section says otherwise.
    let deliver_incomplete_final =
        section.get("deliver_incomplete_final").is_none() || common.deliver_incomplete_final;
    Ok(Built::Splitter(Arc::new(SyslogFramingSplitter {
        octet_counting: opts.octet_counting,
        min_buffer_size: common.min_buffer_size.unwrap_or(8 * 1024) as usize,
        max_record_size: ctx.global.max_message_size as usize,
        keep_truncated: common.keep_truncated,
        deliver_incomplete_final,
    })))
}

impl SplitterPlugin for SyslogFramingSplitter {
    fn new_splitter(&self, _signers: Option<&Arc<SignerKeys>>) -> Box<dyn Splitter> {
        Box::new(SyslogFraming::new(
            self.max_record_size,
            self.octet_counting,
            self.keep_truncated,
            self.deliver_incomplete_final,
        ))
    }

    fn use_message_bytes(&self) -> bool {
        false
    }

    fn min_buffer_size(&self) -> usize {
        self.min_buffer_size
    }

    fn max_record_size(&self) -> usize {
        // The buffer holds the largest record and its length prefix, so that the splitter, not
        // the stream, decides what is too long.
        self.max_record_size + PREFIX_ROOM
    }

    fn keep_truncated(&self) -> bool {
        self.keep_truncated
    }
}

/// Where the stream is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At a frame, or inside one whose first `scanned` bytes hold no `\n`.
    Frame { scanned: usize },
    /// Passing over the rest of an octet-counted frame too large to keep.
    Skip(u64),
    /// Passing over the rest of a line too long to keep.
    Discard,
}

/// What the start of a frame says about its framing.
enum Count {
    /// Digits so far, and no byte after them yet.
    NeedData,
    /// `LEN SP`: the prefix length and LEN.
    Counted { prefix: usize, len: u64 },
    /// A line.
    Line,
}

fn octet_count(b: &[u8]) -> Count {
    let digits = b
        .iter()
        .take(MAX_COUNT_DIGITS + 1)
        .take_while(|c| c.is_ascii_digit())
        .count();
    if digits > MAX_COUNT_DIGITS {
        return Count::Line;
    }
    match b.get(digits) {
        None => Count::NeedData,
        Some(b' ') => {
            let len = b[..digits]
                .iter()
                .fold(0u64, |v, d| v * 10 + u64::from(d - b'0'));
            if len == 0 {
                Count::Line
            } else {
                Count::Counted {
                    prefix: digits + 1,
                    len,
                }
            }
        }
        Some(_) => Count::Line,
    }
}

/// An octet-counted frame without the line ends it ends with (a sender that counted its
/// newline, or several).
fn without_line_ends(r: &[u8]) -> &[u8] {
    let keep = r
        .iter()
        .rposition(|&c| c != b'\n' && c != b'\r')
        .map_or(0, |i| i + 1);
    &r[..keep]
}

/// A record without its line end (`\n`, `\r\n`).
fn without_line_end(r: &[u8]) -> &[u8] {
    let r = r.strip_suffix(b"\n").unwrap_or(r);
    r.strip_suffix(b"\r").unwrap_or(r)
}

/// The splitter of one stream.
#[derive(Debug)]
struct SyslogFraming {
    max: usize,
    octet_counting: bool,
    keep_truncated: bool,
    final_record: bool,
    state: State,
}

impl SyslogFraming {
    fn new(max: usize, octet_counting: bool, keep_truncated: bool, final_record: bool) -> Self {
        SyslogFraming {
            max,
            octet_counting,
            keep_truncated,
            final_record,
            state: State::Frame { scanned: 0 },
        }
    }
}

impl Splitter for SyslogFraming {
    fn split<'a>(&mut self, buf: &'a [u8]) -> Split<'a> {
        let mut pos = 0;
        let mut skipped = 0u64;
        let need_data = |pos, skipped| Split {
            consumed: pos,
            skipped,
            outcome: SplitOutcome::NeedData,
        };
        loop {
            let b = &buf[pos..];
            match self.state {
                State::Skip(left) => {
                    let take = left.min(b.len() as u64);
                    pos += take as usize;
                    skipped += take;
                    if take < left {
                        self.state = State::Skip(left - take);
                        return need_data(pos, skipped);
                    }
                    self.state = State::Frame { scanned: 0 };
                }
                State::Discard => match memchr::memchr(b'\n', b) {
                    Some(i) => {
                        pos += i + 1;
                        skipped += i as u64 + 1;
                        self.state = State::Frame { scanned: 0 };
                    }
                    None => {
                        pos += b.len();
                        skipped += b.len() as u64;
                        return need_data(pos, skipped);
                    }
                },
                State::Frame { scanned } => {
                    if scanned == 0 {
                        let blank = b.iter().take_while(|&&c| c == b'\n' || c == b'\r').count();
                        if blank > 0 {
                            pos += blank;
                            continue;
                        }
                        if b.is_empty() {
                            return need_data(pos, skipped);
                        }
                        if self.octet_counting && b[0].is_ascii_digit() {
                            match octet_count(b) {
                                Count::NeedData => return need_data(pos, skipped),
                                Count::Counted { prefix, len } if len <= self.max as u64 => {
                                    let end = prefix + len as usize;
                                    if b.len() < end {
                                        return need_data(pos, skipped);
                                    }
                                    return Split {
                                        consumed: pos + end,
                                        skipped,
                                        outcome: SplitOutcome::Record {
                                            bytes: without_line_ends(&b[prefix..end]),
                                            signer: None,
                                        },
                                    };
                                }
                                Count::Counted { prefix, len } => {
                                    pos += prefix;
                                    skipped += prefix as u64;
                                    self.state = State::Skip(len);
                                    continue;
                                }
                                Count::Line => {}
                            }
                        }
                    }
                    match memchr::memchr(b'\n', &b[scanned..]) {
                        Some(i) => {
                            let end = scanned + i;
                            self.state = State::Frame { scanned: 0 };
                            if end > self.max {
                                if self.keep_truncated {
                                    return Split {
                                        consumed: pos + end + 1,
                                        skipped,
                                        outcome: SplitOutcome::Record {
                                            bytes: &b[..self.max],
                                            signer: None,
                                        },
                                    };
                                }
                                pos += end + 1;
                                skipped += end as u64 + 1;
                                continue;
                            }
                            return Split {
                                consumed: pos + end + 1,
                                skipped,
                                outcome: SplitOutcome::Record {
                                    bytes: without_line_end(&b[..=end]),
                                    signer: None,
                                },
                            };
                        }
                        None if b.len() > self.max => {
                            self.state = State::Discard;
                            if self.keep_truncated {
                                return Split {
                                    consumed: pos + self.max,
                                    skipped,
                                    outcome: SplitOutcome::Record {
                                        bytes: &b[..self.max],
                                        signer: None,
                                    },
                                };
                            }
                            pos += b.len();
                            skipped += b.len() as u64;
                            return need_data(pos, skipped);
                        }
                        None => {
                            self.state = State::Frame { scanned: b.len() };
                            return need_data(pos, skipped);
                        }
                    }
                }
            }
        }
    }

    fn finish<'a>(&mut self, buf: &'a [u8]) -> Split<'a> {
        let step = self.split(buf);
        if matches!(step.outcome, SplitOutcome::Record { .. }) || step.consumed == buf.len() {
            return step;
        }
        let rest = &buf[step.consumed..];
        self.state = State::Frame { scanned: 0 };
        let counted = self.octet_counting && matches!(octet_count(rest), Count::Counted { .. });
        if self.final_record && !counted {
            Split {
                consumed: buf.len(),
                skipped: step.skipped,
                outcome: SplitOutcome::Record {
                    bytes: without_line_end(rest),
                    signer: None,
                },
            }
        } else {
            Split {
                consumed: buf.len(),
                skipped: step.skipped + rest.len() as u64,
                outcome: SplitOutcome::NeedData,
            }
        }
    }

    fn reset(&mut self) {
        self.state = State::Frame { scanned: 0 };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::testing::{build, build_doc_sample};
    use proptest::prelude::*;

    /// Feeds `data` in reads of `chunk` bytes into a growing buffer, as the input's record
    /// stream does, then ends the stream: the records and the skipped byte count.
    fn run(s: &mut SyslogFraming, data: &[u8], chunk: usize) -> (Vec<Vec<u8>>, u64) {
        let mut records = Vec::new();
        let mut skipped = 0;
        let mut buf = Vec::new();
        let mut feed = |buf: &mut Vec<u8>, eof: bool, s: &mut SyslogFraming| {
            let mut pos = 0;
            loop {
                let step = if eof {
                    s.finish(&buf[pos..])
                } else {
                    s.split(&buf[pos..])
                };
                pos += step.consumed;
                skipped += step.skipped;
                match step.outcome {
                    SplitOutcome::Record { bytes, .. } => records.push(bytes.to_vec()),
                    _ => break,
                }
                if step.consumed == 0 {
                    break;
                }
            }
            buf.drain(..pos);
        };
        for read in data.chunks(chunk.max(1)) {
            buf.extend_from_slice(read);
            feed(&mut buf, false, s);
        }
        feed(&mut buf, true, s);
        (records, skipped)
    }

    fn splitter(max: usize) -> SyslogFraming {
        SyslogFraming::new(max, true, false, true)
    }

    fn strings(r: &[Vec<u8>]) -> Vec<String> {
        r.iter()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .collect()
    }

    #[test]
    fn doc_sample_builds() {
        build_doc_sample(include_str!("syslog_framing.rs"));
    }

    #[test]
    fn octet_counted_and_newline_frames_mix_on_one_connection() {
        let data = b"11 <13>1 - - -\n<13>line one\r\n26 <14>Nov 24 21:33:12 h p: m\n<15>last";
        let (records, skipped) = run(&mut splitter(1024), data, data.len());
        assert_eq!(
            strings(&records),
            [
                "<13>1 - - -",
                "<13>line one",
                "<14>Nov 24 21:33:12 h p: m",
                "<15>last"
            ]
        );
        assert_eq!(skipped, 0);
    }

    #[test]
    fn lines_keep_no_line_end_and_empty_lines_are_no_records() {
        let (records, _) = run(&mut splitter(1024), b"a\r\n\n\r\nb\n\n", 100);
        assert_eq!(strings(&records), ["a", "b"]);
    }

    #[test]
    fn a_count_above_the_limit_is_skipped_as_it_goes_by() {
        let mut data = b"20 ".to_vec();
        data.extend_from_slice(&[b'x'; 20]);
        data.extend_from_slice(b"3 <1>");
        let (records, skipped) = run(&mut splitter(10), &data, 4);
        assert_eq!(strings(&records), ["<1>"]);
        assert_eq!(skipped, 23);
    }

    #[test]
    fn counts_that_are_not_counts_make_lines() {
        // Ten digits, 0, 2^64, a digit run not followed by a space.
        let data = b"1234567890 a\n0 b\n18446744073709551616 c\n2026-11-24 d\n";
        let (records, skipped) = run(&mut splitter(1024), data, 3);
        assert_eq!(
            strings(&records),
            [
                "1234567890 a",
                "0 b",
                "18446744073709551616 c",
                "2026-11-24 d"
            ]
        );
        assert_eq!(skipped, 0);
    }

    #[test]
    fn a_count_larger_than_what_follows_is_skipped_at_the_end() {
        let (records, skipped) = run(&mut splitter(1024), b"<1>ok\n500 <13>short", 5);
        assert_eq!(strings(&records), ["<1>ok"]);
        assert_eq!(skipped, 13);
    }

    #[test]
    fn overlong_lines_are_skipped_to_their_end() {
        let mut data = vec![b'y'; 100];
        data.extend_from_slice(b"\n<13>next\n");
        let (records, skipped) = run(&mut splitter(16), &data, 7);
        assert_eq!(strings(&records), ["<13>next"]);
        assert_eq!(skipped, 101);
        // Delivered cut short with keep_truncated.
        let mut keep = SyslogFraming::new(16, true, true, true);
        let (records, _) = run(&mut keep, &data, 7);
        assert_eq!(records[0], vec![b'y'; 16]);
        assert_eq!(strings(&records[1..]), ["<13>next"]);
    }

    #[test]
    fn without_octet_counting_digits_start_a_line() {
        let mut s = SyslogFraming::new(1024, false, false, true);
        let (records, _) = run(&mut s, b"5 hello\n", 100);
        assert_eq!(strings(&records), ["5 hello"]);
    }

    #[test]
    fn a_final_line_is_dropped_when_the_section_says_so() {
        let mut s = SyslogFraming::new(1024, true, false, false);
        let (records, skipped) = run(&mut s, b"<1>a\n<1>b", 100);
        assert_eq!(strings(&records), ["<1>a"]);
        assert_eq!(skipped, 4);
        let built = build(
            "[SyslogFramingSplitter]\ndeliver_incomplete_final = false\n[i]\ntype = \"TcpInput\"\naddress = \":1\"\nsplitter = \"SyslogFramingSplitter\"\n",
        );
        assert!(built.is_ok());
    }

    /// A stream of frames of both kinds; what each record should be.
    fn frames() -> impl Strategy<Value = (Vec<u8>, Vec<Vec<u8>>)> {
        let frame = prop_oneof![
            // Octet-counted: any bytes.
            proptest::collection::vec(any::<u8>(), 1..40).prop_map(|m| {
                let mut f = format!("{} ", m.len()).into_bytes();
                f.extend_from_slice(&m);
                (f, Some(without_line_ends(&m).to_vec()))
            }),
            // A line: no \n inside, not starting with a digit or a line end.
            ("<[0-9]{1,3}>[^\n]{0,40}", prop::bool::ANY).prop_map(|(l, crlf)| {
                let mut f = l.clone().into_bytes();
                f.extend_from_slice(if crlf { b"\r\n" } else { b"\n" });
                // The line end goes, and with `\n` alone a `\r` before it.
                let record = if crlf {
                    l.as_bytes()
                } else {
                    without_line_end(l.as_bytes())
                };
                (f, Some(record.to_vec()))
            }),
            // Blank lines.
            Just((b"\n".to_vec(), None)),
        ];
        proptest::collection::vec(frame, 0..20).prop_map(|fs| {
            let mut stream = Vec::new();
            let mut expected = Vec::new();
            for (f, r) in fs {
                stream.extend_from_slice(&f);
                expected.extend(r);
            }
            (stream, expected)
        })
    }

    proptest! {
        /// Well-framed streams give their frames, whatever the reads.
        #[test]
        fn every_frame_comes_out_whatever_the_reads((stream, expected) in frames(), chunk in 1usize..64) {
            let (records, skipped) = run(&mut splitter(256), &stream, chunk);
            prop_assert_eq!(records, expected);
            prop_assert_eq!(skipped, 0);
        }

        /// Any bytes: the records and the skipped count do not depend on where reads end.
        #[test]
        fn any_bytes_split_the_same_whatever_the_reads(data in proptest::collection::vec(
            prop_oneof![Just(b'\n'), Just(b'\r'), Just(b' '), Just(b'1'), Just(b'9'), any::<u8>()], 0..300),
            chunk in 1usize..64, max in 1usize..40)
        {
            let whole = run(&mut splitter(max), &data, data.len().max(1));
            let pieces = run(&mut splitter(max), &data, chunk);
            prop_assert_eq!(whole, pieces);
        }
    }
}
