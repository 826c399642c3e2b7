//! HekaFramingSplitter: cuts a Heka stream into records (reference §2), resynchronising after
//! garbage and verifying signatures.
//!
//! Bytes that are not part of a record are skipped and counted; a record signed by an unknown
//! signer or with a wrong HMAC is dropped and counted. The trusted keys come from the `signer`
//! subsections of the input using the splitter (and of this section). Records are the encoded
//! messages (`use_message_bytes = true`), routed without a copy by ProtobufDecoder.
//!
//! ```toml
//! [HekaFramingSplitter]
//! skip_authentication = false
//!
//! [HekaFramingSplitter.signer.ops_0]
//! hmac_key = "secret"
//! ```
//!
//! Options: `signer` subsections, `skip_authentication` (false: signed records must verify),
//! plus the common splitter options (`use_message_bytes` true, `keep_truncated`,
//! `min_buffer_size` 8 KiB).

use std::collections::BTreeMap;
use std::sync::Arc;

use hekate_config::{ConfigError, PluginSection};
use hekate_engine::plugin::{
    BuildContext, Built, PluginType, Split, SplitOutcome, Splitter, SplitterPlugin, options_of,
};
use hekate_model::framing::{self, HekaSplitter, SignerKeys};
use schemars::JsonSchema;
use serde::Deserialize;

use crate::common::{SignerConfig, signer_keys};

/// The registry entry.
pub const TYPE: PluginType = PluginType {
    name: "HekaFramingSplitter",
    source: include_str!("heka_framing.rs"),
    options: options_of::<Options>,
    default_matcher: None,
    build,
};

/// HekaFramingSplitter's own options.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Options {
    /// Trusted signers.
    #[serde(default)]
    signer: BTreeMap<String, SignerConfig>,
    /// Accept signed records without verifying them.
    #[serde(default)]
    skip_authentication: bool,
}

#[derive(Debug)]
struct HekaFramingSplitter {
    max_message_size: u32,
    signers: Option<Arc<SignerKeys>>,
    skip_authentication: bool,
    use_message_bytes: bool,
    min_buffer_size: usize,
    keep_truncated: bool,
}

fn build(section: &PluginSection, ctx: &BuildContext<'_>) -> Result<Built, ConfigError> {
    let opts: Options = section.options()?;
    let common = section.splitter().copied().unwrap_or_default();
    Ok(Built::Splitter(Arc::new(HekaFramingSplitter {
        max_message_size: ctx.global.max_message_size,
        signers: signer_keys(section, &opts.signer)?,
        skip_authentication: opts.skip_authentication,
        use_message_bytes: common.use_message_bytes.unwrap_or(true),
        min_buffer_size: common.min_buffer_size.unwrap_or(8 * 1024) as usize,
        keep_truncated: common.keep_truncated,
    })))
}

impl SplitterPlugin for HekaFramingSplitter {
    fn new_splitter(&self, signers: Option<&Arc<SignerKeys>>) -> Box<dyn Splitter> {
        let mut s = HekaSplitter::new(self.max_message_size)
            .with_skip_authentication(self.skip_authentication);
        // The input's keys win; the splitter section's own keys are the fallback.
        if let Some(keys) = signers.or(self.signers.as_ref()) {
            s = s.with_signers(Arc::clone(keys));
        }
        Box::new(Framed(s))
    }

    fn use_message_bytes(&self) -> bool {
        self.use_message_bytes
    }

    fn min_buffer_size(&self) -> usize {
        self.min_buffer_size
    }

    fn max_record_size(&self) -> usize {
        framing::max_record_size(self.max_message_size)
    }

    fn keep_truncated(&self) -> bool {
        self.keep_truncated
    }
}

struct Framed(HekaSplitter);

fn convert(r: framing::SplitResult<'_>) -> Split<'_> {
    let mut skipped = r.skipped.map_or(0, |g| g.len);
    let outcome = match r.outcome {
        framing::SplitOutcome::Record(rec) => SplitOutcome::Record {
            bytes: rec.message,
            signer: rec.signer,
        },
        framing::SplitOutcome::Rejected(_) => SplitOutcome::Rejected,
        framing::SplitOutcome::NeedData => SplitOutcome::NeedData,
        framing::SplitOutcome::End { truncated } => {
            skipped += truncated.map_or(0, |g| g.len);
            SplitOutcome::NeedData
        }
    };
    Split {
        consumed: r.consumed,
        skipped,
        outcome,
    }
}

impl Splitter for Framed {
    #[inline]
    fn split<'a>(&mut self, buf: &'a [u8]) -> Split<'a> {
        convert(self.0.split(buf))
    }

    fn finish<'a>(&mut self, buf: &'a [u8]) -> Split<'a> {
        convert(self.0.finish(buf))
    }

    fn reset(&mut self) {
        self.0.reset();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::testing::build_doc_sample;

    #[test]
    fn doc_sample_builds() {
        build_doc_sample(include_str!("heka_framing.rs"));
    }

    #[test]
    fn splits_records_and_counts_garbage() {
        let plugin = HekaFramingSplitter {
            max_message_size: 1024,
            signers: None,
            skip_authentication: false,
            use_message_bytes: true,
            min_buffer_size: 8192,
            keep_truncated: false,
        };
        let mut s = plugin.new_splitter(None);
        let mut buf = b"xx".to_vec();
        framing::encode_record(b"one", None, &mut buf).unwrap();
        let step = s.split(&buf);
        assert_eq!(step.skipped, 2);
        assert!(matches!(
            step.outcome,
            SplitOutcome::Record { bytes: b"one", .. }
        ));
        assert_eq!(step.consumed, buf.len());
    }
}
