//! NullSplitter: every read is one record, as it arrived (for UDP, one datagram).
//!
//! ```toml
//! [RawSplitter]
//! type = "NullSplitter"
//! ```
//!
//! Options: the common splitter options (`min_buffer_size` 64 KiB).

use std::sync::Arc;

use hekate_config::{ConfigError, PluginSection};
use hekate_engine::plugin::{
    BuildContext, Built, NoOptions, PluginType, Split, SplitOutcome, Splitter, SplitterPlugin,
    options_of,
};
use hekate_model::framing::SignerKeys;

/// The registry entry.
pub const TYPE: PluginType = PluginType {
    name: "NullSplitter",
    source: include_str!("null.rs"),
    options: options_of::<NoOptions>,
    default_matcher: None,
    build,
};

#[derive(Debug)]
struct NullSplitter {
    min_buffer_size: usize,
}

fn build(section: &PluginSection, _ctx: &BuildContext<'_>) -> Result<Built, ConfigError> {
    let _: NoOptions = section.options()?;
    let common = section.splitter().copied().unwrap_or_default();
    Ok(Built::Splitter(Arc::new(NullSplitter {
        min_buffer_size: common.min_buffer_size.unwrap_or(64 * 1024) as usize,
    })))
}

impl SplitterPlugin for NullSplitter {
    fn new_splitter(&self, _signers: Option<&Arc<SignerKeys>>) -> Box<dyn Splitter> {
        Box::new(Whole)
    }

    fn use_message_bytes(&self) -> bool {
        false
    }

    fn min_buffer_size(&self) -> usize {
        self.min_buffer_size
    }

    fn max_record_size(&self) -> usize {
        self.min_buffer_size
    }
}

struct Whole;

impl Splitter for Whole {
    fn split<'a>(&mut self, buf: &'a [u8]) -> Split<'a> {
        Split {
            consumed: buf.len(),
            skipped: 0,
            outcome: if buf.is_empty() {
                SplitOutcome::NeedData
            } else {
                SplitOutcome::Record {
                    bytes: buf,
                    signer: None,
                }
            },
        }
    }

    fn finish<'a>(&mut self, buf: &'a [u8]) -> Split<'a> {
        self.split(buf)
    }
}

#[cfg(test)]
mod tests {
    use crate::common::testing::build_doc_sample;

    #[test]
    fn doc_sample_builds() {
        build_doc_sample(include_str!("null.rs"));
    }
}
