//! ProtobufEncoder: the message's protobuf encoding. A message that came in as protobuf is
//! written as the very bytes it arrived in (no re-encoding). Outputs frame it with Heka stream
//! framing by default (`use_framing`), which is what `hekate cat` and another hekate or hekad
//! read.
//!
//! ```toml
//! [ProtobufEncoder]
//! ```
//!
//! No options. Always available, as in Heka.

use std::sync::Arc;

use hekate_config::{ConfigError, PluginSection};
use hekate_engine::plugin::{
    BuildContext, Built, Delivery, EncodeError, Encoder, EncoderPlugin, NoOptions, PluginType,
    options_of,
};

/// The registry entry.
pub const TYPE: PluginType = PluginType {
    name: "ProtobufEncoder",
    source: include_str!("protobuf.rs"),
    options: options_of::<NoOptions>,
    default_matcher: None,
    build,
};

#[derive(Debug)]
struct ProtobufEncoder;

fn build(section: &PluginSection, _ctx: &BuildContext<'_>) -> Result<Built, ConfigError> {
    let _: NoOptions = section.options()?;
    Ok(Built::Encoder(Arc::new(ProtobufEncoder)))
}

impl EncoderPlugin for ProtobufEncoder {
    fn new_encoder(&self) -> Box<dyn Encoder> {
        Box::new(ProtobufEncoder)
    }

    fn is_protobuf(&self) -> bool {
        true
    }
}

impl Encoder for ProtobufEncoder {
    #[inline]
    fn encode<'a>(&'a mut self, msg: &'a Delivery<'a>) -> Result<Option<&'a [u8]>, EncodeError> {
        Ok(Some(msg.bytes()))
    }
}

#[cfg(test)]
mod tests {
    use crate::common::testing::build_doc_sample;

    #[test]
    fn doc_sample_builds() {
        build_doc_sample(include_str!("protobuf.rs"));
    }
}
