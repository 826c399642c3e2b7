//! RegexSplitter: a record ends where a regular expression (`delimiter`) matches, as Heka's.
//!
//! Without a capture group the delimiter is dropped. With one, the captured text is kept: at
//! the end of the record it closes with `delimiter_eol = true` (the default), or at the start
//! of the next record with `delimiter_eol = false` — for logs whose records *start* with a
//! recognisable header (a timestamp), so that continuation lines stay with their record:
//!
//! ```toml
//! [multiline]
//! type = "RegexSplitter"
//! delimiter = '\n(\d{4}-\d{2}-\d{2} )'
//! delimiter_eol = false
//! deliver_incomplete_final = true
//! ```
//!
//! Options: `delimiter` ("\n"; at most one capture group; it must not match the empty text),
//! `delimiter_eol` (true), plus the common splitter options (`keep_truncated`,
//! `min_buffer_size` 8 KiB, `deliver_incomplete_final`). The regex dialect is the `regex`
//! crate's, which reads Go's RE2 syntax the same way for what Heka configs use.

use std::sync::Arc;

use hekate_config::{ConfigError, PluginSection};
use hekate_engine::plugin::{
    BuildContext, Built, PluginType, Split, SplitOutcome, Splitter, SplitterPlugin, options_of,
};
use hekate_model::framing::SignerKeys;
use regex::bytes::Regex;
use schemars::JsonSchema;
use serde::Deserialize;

/// The registry entry.
pub const TYPE: PluginType = PluginType {
    name: "RegexSplitter",
    source: include_str!("regex.rs"),
    options: options_of::<Options>,
    default_matcher: None,
    build,
};

fn default_delimiter() -> String {
    "\n".into()
}

fn yes() -> bool {
    true
}

/// RegexSplitter's own options.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Options {
    /// The regex a record ends at (at most one capture group).
    #[serde(default = "default_delimiter")]
    delimiter: String,
    /// With a capture group: the captured text ends the record (true) or starts the next (false).
    #[serde(default = "yes")]
    delimiter_eol: bool,
}

/// A compiled delimiter, shared by the splitters of every stream.
#[derive(Debug)]
pub(crate) struct Delimiter {
    regex: Regex,
    captures: bool,
    eol: bool,
}

impl Delimiter {
    /// A delimiter for unit tests (eol semantics).
    #[cfg(test)]
    pub(crate) fn for_tests(delimiter: &str) -> Delimiter {
        let regex = Regex::new(delimiter).unwrap();
        Delimiter {
            captures: regex.captures_len() == 2,
            regex,
            eol: true,
        }
    }

    /// Compiles `delimiter` as the `key` option of `section`.
    pub(crate) fn compile(
        section: &PluginSection,
        key: &str,
        delimiter: &str,
        eol: bool,
    ) -> Result<Delimiter, ConfigError> {
        let bad = |why: String| {
            section.error_at_value(key, format!("`{key}` of [{}] {why}", section.name()))
        };
        let regex = Regex::new(delimiter).map_err(|e| bad(format!("is not a valid regex: {e}")))?;
        if regex.captures_len() > 2 {
            return Err(bad(format!(
                "must not contain more than one capture group: {delimiter}"
            )));
        }
        if regex.is_match(b"") {
            return Err(bad(format!(
                "matches the empty text, so it would never end a record: {delimiter}"
            )));
        }
        Ok(Delimiter {
            captures: regex.captures_len() == 2,
            regex,
            eol,
        })
    }
}

#[derive(Debug)]
struct RegexSplitter {
    delimiter: Arc<Delimiter>,
    min_buffer_size: usize,
    max_record_size: usize,
    keep_truncated: bool,
    deliver_incomplete_final: bool,
}

fn build(section: &PluginSection, ctx: &BuildContext<'_>) -> Result<Built, ConfigError> {
    let opts: Options = section.options()?;
    let delimiter = Delimiter::compile(section, "delimiter", &opts.delimiter, opts.delimiter_eol)?;
    let common = section.splitter().copied().unwrap_or_default();
    Ok(Built::Splitter(Arc::new(RegexSplitter {
        delimiter: Arc::new(delimiter),
        min_buffer_size: common.min_buffer_size.unwrap_or(8 * 1024) as usize,
        max_record_size: ctx.global.max_message_size as usize,
        keep_truncated: common.keep_truncated,
        deliver_incomplete_final: common.deliver_incomplete_final,
    })))
}

impl SplitterPlugin for RegexSplitter {
    fn new_splitter(&self, _signers: Option<&Arc<SignerKeys>>) -> Box<dyn Splitter> {
        Box::new(Records {
            lines: Lines::new(Arc::clone(&self.delimiter)),
            final_record: self.deliver_incomplete_final,
        })
    }

    fn use_message_bytes(&self) -> bool {
        false
    }

    fn min_buffer_size(&self) -> usize {
        self.min_buffer_size
    }

    fn max_record_size(&self) -> usize {
        self.max_record_size
    }

    fn keep_truncated(&self) -> bool {
        self.keep_truncated
    }
}

/// One record found by [`Lines::next`]: `record` bytes from the start of the buffer, and how
/// many bytes it used up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cut {
    pub(crate) record: usize,
    pub(crate) consumed: usize,
}

/// Heka's RegexSplitter over a buffer, with its one piece of state: the length of a capture
/// kept at the start of the buffer for the next record (`delimiter_eol = false`).
#[derive(Debug)]
pub(crate) struct Lines {
    delimiter: Arc<Delimiter>,
    capture_len: usize,
}

impl Lines {
    pub(crate) fn new(delimiter: Arc<Delimiter>) -> Self {
        Lines {
            delimiter,
            capture_len: 0,
        }
    }

    /// The next record at the start of `buf`, if its delimiter is there.
    pub(crate) fn next(&mut self, buf: &[u8]) -> Option<Cut> {
        let from = self.capture_len.min(buf.len());
        let d = &*self.delimiter;
        if !d.captures {
            let m = d.regex.find_at(buf, from)?;
            return Some(Cut {
                record: m.start(),
                consumed: m.end(),
            });
        }
        let caps = d.regex.captures_at(buf, from)?;
        let whole = caps.get(0).expect("group 0 always matches");
        let Some(cap) = caps.get(1) else {
            // The capture group did not take part in the match: as without one.
            return Some(Cut {
                record: whole.start(),
                consumed: whole.end(),
            });
        };
        if d.eol {
            Some(Cut {
                record: cap.end(),
                consumed: whole.end(),
            })
        } else {
            self.capture_len = cap.end() - cap.start();
            Some(Cut {
                record: whole.start(),
                consumed: cap.start(),
            })
        }
    }

    /// Forgets the kept capture (a new stream).
    pub(crate) fn reset(&mut self) {
        self.capture_len = 0;
    }
}

struct Records {
    lines: Lines,
    final_record: bool,
}

impl Splitter for Records {
    fn split<'a>(&mut self, buf: &'a [u8]) -> Split<'a> {
        match self.lines.next(buf) {
            Some(cut) => Split {
                consumed: cut.consumed,
                skipped: 0,
                outcome: SplitOutcome::Record {
                    bytes: &buf[..cut.record],
                    signer: None,
                },
            },
            None => Split {
                consumed: 0,
                skipped: 0,
                outcome: SplitOutcome::NeedData,
            },
        }
    }

    fn finish<'a>(&mut self, buf: &'a [u8]) -> Split<'a> {
        let step = self.split(buf);
        if matches!(step.outcome, SplitOutcome::Record { .. }) || buf.is_empty() {
            return step;
        }
        self.lines.reset();
        if self.final_record {
            Split {
                consumed: buf.len(),
                skipped: 0,
                outcome: SplitOutcome::Record {
                    bytes: buf,
                    signer: None,
                },
            }
        } else {
            Split {
                consumed: buf.len(),
                skipped: buf.len() as u64,
                outcome: SplitOutcome::NeedData,
            }
        }
    }

    fn reset(&mut self) {
        self.lines.reset();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::testing::build_doc_sample;

    fn splitter(delimiter: &str, eol: bool, final_record: bool) -> Records {
        Records {
            lines: Lines::new(Arc::new(Delimiter {
                regex: Regex::new(delimiter).unwrap(),
                captures: Regex::new(delimiter).unwrap().captures_len() == 2,
                eol,
            })),
            final_record,
        }
    }

    /// Every record of `input`, fed in pieces of `chunk` bytes as a stream would be.
    fn records(s: &mut Records, input: &[u8], chunk: usize) -> Vec<String> {
        let mut out = Vec::new();
        let mut buf: Vec<u8> = Vec::new();
        for piece in input.chunks(chunk.max(1)) {
            buf.extend_from_slice(piece);
            loop {
                let step = s.split(&buf);
                let SplitOutcome::Record { bytes, .. } = step.outcome else {
                    break;
                };
                out.push(String::from_utf8_lossy(bytes).into_owned());
                buf.drain(..step.consumed);
            }
        }
        loop {
            let step = s.finish(&buf);
            let consumed = step.consumed;
            if let SplitOutcome::Record { bytes, .. } = step.outcome {
                out.push(String::from_utf8_lossy(bytes).into_owned());
            }
            buf.drain(..consumed);
            if buf.is_empty() || consumed == 0 {
                break;
            }
        }
        out
    }

    #[test]
    fn doc_sample_builds() {
        build_doc_sample(include_str!("regex.rs"));
    }

    /// No capture: the delimiter is dropped.
    #[test]
    fn without_a_capture_the_delimiter_goes() {
        let mut s = splitter(r"\r?\n", true, true);
        assert_eq!(
            records(&mut s, b"one\r\ntwo\nthree", 3),
            ["one", "two", "three"]
        );
    }

    /// A capture ending records stays at their end.
    #[test]
    fn a_capture_with_eol_ends_the_record() {
        let mut s = splitter(r"(;)\s*", true, false);
        assert_eq!(records(&mut s, b"a=1;  b=2;c=3", 100), ["a=1;", "b=2;"]);
    }

    /// A capture starting records: multi-line records that begin with a date, in any piece size.
    #[test]
    fn a_capture_without_eol_starts_the_next_record() {
        let input = b"2024-01-01 first\n  continued\n2024-01-02 second\n2024-01-03 third\n";
        for chunk in [1, 5, 64] {
            let mut s = splitter(r"\n(\d{4}-\d{2}-\d{2} )", false, true);
            assert_eq!(
                records(&mut s, input, chunk),
                [
                    "2024-01-01 first\n  continued",
                    "2024-01-02 second",
                    "2024-01-03 third\n"
                ],
                "pieces of {chunk}"
            );
        }
    }

    fn build_error(toml: &str) -> String {
        crate::common::testing::build(toml).expect_err("the config is refused")
    }

    #[test]
    fn config_mistakes_are_refused() {
        let two = build_error("[s]\ntype = \"RegexSplitter\"\ndelimiter = '(a)(b)'\n");
        assert!(two.contains("more than one capture group"), "{two}");
        let empty = build_error("[s]\ntype = \"RegexSplitter\"\ndelimiter = 'x*'\n");
        assert!(empty.contains("matches the empty text"), "{empty}");
        let bad = build_error("[s]\ntype = \"RegexSplitter\"\ndelimiter = '('\n");
        assert!(bad.contains("not a valid regex"), "{bad}");
    }
}
