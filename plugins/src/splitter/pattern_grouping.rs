//! PatternGroupingSplitter: splits like RegexSplitter (`delimiter`), then joins contiguous
//! records that match `grouping` into one — a stack trace among single-line log records stays
//! one record. As in Heka, every line keeps its delimiter, the joined record included.
//!
//! ```toml
//! [stacktraces]
//! type = "PatternGroupingSplitter"
//! delimiter = '\n'
//! grouping = '(\A\s*.+Exception: .)|(\A\s+at \S+\(\S+\))|(\A\s+\.\.\. \d+ more)|(\A\s*Caused by:.)'
//! max_lines = 99
//! ```
//!
//! A group is delivered when a line that does not match follows it, when it reaches
//! `max_lines` lines, or at the end of the stream; until then it waits for more data (the last
//! stack trace of a quiet log waits for the next line). `grouping` is tested on each line
//! without its delimiter.
//!
//! Options: `delimiter` ("\n"; at most one capture group), `grouping` (none: nothing is
//! joined — what the built-in default instance does), `max_lines`
//! (99), plus the common splitter options (`keep_truncated`, `min_buffer_size` 8 KiB,
//! `deliver_incomplete_final`).

use std::sync::Arc;

use hekate_config::{ConfigError, PluginSection};
use hekate_engine::plugin::{
    BuildContext, Built, PluginType, Split, SplitOutcome, Splitter, SplitterPlugin, options_of,
};
use hekate_model::framing::SignerKeys;
use regex::bytes::Regex;
use schemars::JsonSchema;
use serde::Deserialize;

use super::regex::{Delimiter, Lines};

/// The registry entry.
pub const TYPE: PluginType = PluginType {
    name: "PatternGroupingSplitter",
    source: include_str!("pattern_grouping.rs"),
    options: options_of::<Options>,
    default_matcher: None,
    build,
};

fn default_delimiter() -> String {
    "\n".into()
}

fn default_max_lines() -> u32 {
    99
}

/// PatternGroupingSplitter's own options.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Options {
    /// The regex a line ends at (at most one capture group).
    #[serde(default = "default_delimiter")]
    delimiter: String,
    /// The regex of lines that join their neighbours into one record (none: no line is
    /// joined, as for the built-in default instance).
    #[serde(default)]
    grouping: String,
    /// The most lines joined into one record.
    #[serde(default = "default_max_lines")]
    max_lines: u32,
}

#[derive(Debug)]
struct PatternGrouping {
    delimiter: Arc<Delimiter>,
    grouping: Option<Arc<Regex>>,
    max_lines: usize,
    min_buffer_size: usize,
    max_record_size: usize,
    keep_truncated: bool,
    deliver_incomplete_final: bool,
}

fn build(section: &PluginSection, ctx: &BuildContext<'_>) -> Result<Built, ConfigError> {
    let opts: Options = section.options()?;
    // Lines keep their delimiter: a capture, if any, ends its line.
    let delimiter = Delimiter::compile(section, "delimiter", &opts.delimiter, true)?;
    let grouping = if opts.grouping.is_empty() {
        None
    } else {
        Some(Arc::new(Regex::new(&opts.grouping).map_err(|e| {
            section.error_at_value(
                "grouping",
                format!(
                    "`grouping` of [{}] is not a valid regex: {e}",
                    section.name()
                ),
            )
        })?))
    };
    if opts.max_lines == 0 {
        return Err(section.error_at_value(
            "max_lines",
            format!("`max_lines` of [{}] must be at least 1", section.name()),
        ));
    }
    let common = section.splitter().copied().unwrap_or_default();
    Ok(Built::Splitter(Arc::new(PatternGrouping {
        delimiter: Arc::new(delimiter),
        grouping,
        max_lines: opts.max_lines as usize,
        min_buffer_size: common.min_buffer_size.unwrap_or(8 * 1024) as usize,
        max_record_size: ctx.global.max_message_size as usize,
        keep_truncated: common.keep_truncated,
        deliver_incomplete_final: common.deliver_incomplete_final,
    })))
}

impl SplitterPlugin for PatternGrouping {
    fn new_splitter(&self, _signers: Option<&Arc<SignerKeys>>) -> Box<dyn Splitter> {
        Box::new(Groups {
            lines: Lines::new(Arc::clone(&self.delimiter)),
            grouping: self.grouping.clone(),
            max_lines: self.max_lines,
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

struct Groups {
    lines: Lines,
    grouping: Option<Arc<Regex>>,
    max_lines: usize,
    final_record: bool,
}

impl Groups {
    /// The record at the start of `buf`: `Some(end)` when it is complete (`eof`: the stream
    /// ended, so an open group is complete).
    fn find(&mut self, buf: &[u8], eof: bool) -> Option<usize> {
        // Lines are cut with eol semantics (the delimiter stays), so the splitter state is
        // never carried from one call to the next.
        self.lines.reset();
        let first = self.lines.next(buf)?;
        let Some(grouping) = self.grouping.clone() else {
            return Some(first.consumed);
        };
        if !grouping.is_match(&buf[..first.record]) {
            return Some(first.consumed);
        }
        let mut end = first.consumed;
        let mut count = 1;
        while count < self.max_lines {
            match self.lines.next(&buf[end..]) {
                Some(line) => {
                    if !grouping.is_match(&buf[end..end + line.record]) {
                        return Some(end);
                    }
                    end += line.consumed;
                    count += 1;
                }
                None => return eof.then_some(end),
            }
        }
        Some(end)
    }
}

impl Splitter for Groups {
    fn split<'a>(&mut self, buf: &'a [u8]) -> Split<'a> {
        match self.find(buf, false) {
            Some(end) => Split {
                consumed: end,
                skipped: 0,
                outcome: SplitOutcome::Record {
                    bytes: &buf[..end],
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
        if let Some(end) = self.find(buf, true) {
            return Split {
                consumed: end,
                skipped: 0,
                outcome: SplitOutcome::Record {
                    bytes: &buf[..end],
                    signer: None,
                },
            };
        }
        if buf.is_empty() {
            return Split {
                consumed: 0,
                skipped: 0,
                outcome: SplitOutcome::NeedData,
            };
        }
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::testing::build_doc_sample;

    const GROUPING: &str =
        r"(\A\s*.+Exception: .)|(\A\s+at \S+\(\S+\))|(\A\s+\.\.\. \d+ more)|(\A\s*Caused by:.)";

    fn splitter(max_lines: usize) -> Groups {
        let delimiter = Delimiter::for_tests("\n");
        Groups {
            lines: Lines::new(Arc::new(delimiter)),
            grouping: Some(Arc::new(Regex::new(GROUPING).unwrap())),
            max_lines,
            final_record: true,
        }
    }

    fn records(s: &mut Groups, input: &[u8], chunk: usize) -> Vec<String> {
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
        while !buf.is_empty() {
            let step = s.finish(&buf);
            let consumed = step.consumed;
            if let SplitOutcome::Record { bytes, .. } = step.outcome {
                out.push(String::from_utf8_lossy(bytes).into_owned());
            }
            buf.drain(..consumed);
        }
        out
    }

    #[test]
    fn doc_sample_builds() {
        build_doc_sample(include_str!("pattern_grouping.rs"));
    }

    /// A Java stack trace between two ordinary lines is one record, in any piece size.
    #[test]
    fn a_stack_trace_is_one_record() {
        let input = b"10:00 INFO started\n\
java.lang.IllegalStateException: boom\n\
\tat com.example.App.run(App.java:42)\n\
\tat com.example.App.main(App.java:7)\n\
Caused by: java.io.IOException: disk\n\
\t... 2 more\n\
10:01 INFO recovered\n";
        for chunk in [1, 7, 1000] {
            let got = records(&mut splitter(99), input, chunk);
            assert_eq!(got.len(), 3, "pieces of {chunk}: {got:?}");
            assert_eq!(got[0], "10:00 INFO started\n");
            assert!(got[1].starts_with("java.lang.IllegalStateException: boom\n\tat"));
            assert!(got[1].ends_with("\t... 2 more\n"));
            assert_eq!(got[2], "10:01 INFO recovered\n");
        }
    }

    /// A group stops at `max_lines`; the rest of it starts the next record.
    #[test]
    fn max_lines_bounds_a_group() {
        let input = b"x Exception: a\n\tat a.b(C.java:1)\n\tat a.b(C.java:2)\nend\n";
        let got = records(&mut splitter(2), input, 1000);
        assert_eq!(
            got,
            [
                "x Exception: a\n\tat a.b(C.java:1)\n",
                "\tat a.b(C.java:2)\n",
                "end\n"
            ]
        );
    }
}
