//! TokenSplitter: a record ends after every `count`-th occurrence of a one-byte delimiter (the
//! delimiter stays in the record). Lines by default.
//!
//! ```toml
//! [LineSplitter]
//! type = "TokenSplitter"
//! delimiter = "\n"
//! count = 1
//! deliver_incomplete_final = true
//! ```
//!
//! Options: `delimiter` ("\n", exactly one byte), `count` (1), plus the common splitter options
//! (`keep_truncated`, `min_buffer_size` 8 KiB, `deliver_incomplete_final`). A record longer than
//! the largest buffer (`max_message_size`) is skipped and counted, or delivered cut short with
//! `keep_truncated`.

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
    name: "TokenSplitter",
    source: include_str!("token.rs"),
    options: options_of::<Options>,
    default_matcher: None,
    build,
};

fn default_delimiter() -> String {
    "\n".into()
}

fn default_count() -> u32 {
    1
}

/// TokenSplitter's own options.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Options {
    /// The delimiter, one byte.
    #[serde(default = "default_delimiter")]
    delimiter: String,
    /// Delimiters per record.
    #[serde(default = "default_count")]
    count: u32,
}

#[derive(Debug)]
struct TokenSplitter {
    delimiter: u8,
    count: u32,
    min_buffer_size: usize,
    max_record_size: usize,
    keep_truncated: bool,
    deliver_incomplete_final: bool,
}

fn build(section: &PluginSection, ctx: &BuildContext<'_>) -> Result<Built, ConfigError> {
    let opts: Options = section.options()?;
    let &[delimiter] = opts.delimiter.as_bytes() else {
        return Err(section.error_at_value(
            "delimiter",
            format!(
                "`delimiter` of TokenSplitter [{}] must be exactly one byte, not {:?}",
                section.name(),
                opts.delimiter
            ),
        ));
    };
    if opts.count == 0 {
        return Err(section.error_at_value(
            "count",
            format!(
                "`count` of TokenSplitter [{}] must be at least 1",
                section.name()
            ),
        ));
    }
    let common = section.splitter().copied().unwrap_or_default();
    Ok(Built::Splitter(Arc::new(TokenSplitter {
        delimiter,
        count: opts.count,
        min_buffer_size: common.min_buffer_size.unwrap_or(8 * 1024) as usize,
        max_record_size: ctx.global.max_message_size as usize,
        keep_truncated: common.keep_truncated,
        deliver_incomplete_final: common.deliver_incomplete_final,
    })))
}

impl SplitterPlugin for TokenSplitter {
    fn new_splitter(&self, _signers: Option<&Arc<SignerKeys>>) -> Box<dyn Splitter> {
        Box::new(Tokens {
            delimiter: self.delimiter,
            count: self.count,
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

struct Tokens {
    delimiter: u8,
    count: u32,
    final_record: bool,
}

impl Splitter for Tokens {
    #[inline]
    fn split<'a>(&mut self, buf: &'a [u8]) -> Split<'a> {
        let mut seen = 0;
        for pos in memchr::memchr_iter(self.delimiter, buf) {
            seen += 1;
            if seen == self.count {
                return Split {
                    consumed: pos + 1,
                    skipped: 0,
                    outcome: SplitOutcome::Record {
                        bytes: &buf[..=pos],
                        signer: None,
                    },
                };
            }
        }
        Split {
            consumed: 0,
            skipped: 0,
            outcome: SplitOutcome::NeedData,
        }
    }

    fn finish<'a>(&mut self, buf: &'a [u8]) -> Split<'a> {
        let step = self.split(buf);
        if matches!(step.outcome, SplitOutcome::Record { .. }) || buf.is_empty() {
            return step;
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
    use crate::common::testing::{build, build_doc_sample};

    fn records(s: &mut dyn Splitter, mut buf: &[u8]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        loop {
            let step = s.split(buf);
            match step.outcome {
                SplitOutcome::Record { bytes, .. } => out.push(bytes.to_vec()),
                _ => return out,
            }
            buf = &buf[step.consumed..];
        }
    }

    #[test]
    fn doc_sample_builds() {
        build_doc_sample(include_str!("token.rs"));
    }

    #[test]
    fn splits_after_every_count_th_delimiter() {
        let mut s = Tokens {
            delimiter: b'\n',
            count: 2,
            final_record: false,
        };
        assert_eq!(records(&mut s, b"a\nb\nc\nd"), [b"a\nb\n".to_vec()]);
        let step = s.finish(b"c\nd");
        assert_eq!(step.skipped, 3);
    }

    #[test]
    fn delimiter_must_be_one_byte() {
        let e = build("[s]\ntype = \"TokenSplitter\"\ndelimiter = \"ab\"\n[i]\ntype = \"TcpInput\"\naddress = \":1\"\n")
            .unwrap_err();
        assert!(e.contains("exactly one byte"), "{e}");
    }
}
