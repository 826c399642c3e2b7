//! ProtobufDecoder: records are encoded Heka messages. They are checked and routed in place: the
//! runtime views the record bytes (no copy, no full decode), so a message that only passes
//! through is never re-encoded. A record that is not a well-formed message is counted as a
//! decode failure.
//!
//! ```toml
//! [ProtobufDecoder]
//! ```
//!
//! No options. Always available, as in Heka.

use std::sync::Arc;

use hekate_config::{ConfigError, PluginSection};
use hekate_engine::plugin::{
    BuildContext, Built, DecodeError, Decoded, DecodedMessages, Decoder, DecoderPlugin, NoOptions,
    PluginType, RecordSource, options_of,
};
use hekate_model::message::MessageView;

/// The registry entry.
pub const TYPE: PluginType = PluginType {
    name: "ProtobufDecoder",
    source: include_str!("protobuf.rs"),
    options: options_of::<NoOptions>,
    default_matcher: None,
    build,
};

#[derive(Debug)]
struct ProtobufDecoder;

fn build(section: &PluginSection, _ctx: &BuildContext<'_>) -> Result<Built, ConfigError> {
    let _: NoOptions = section.options()?;
    Ok(Built::Decoder(Arc::new(ProtobufDecoder)))
}

impl DecoderPlugin for ProtobufDecoder {
    fn new_decoder(&self) -> Box<dyn Decoder> {
        Box::new(ProtobufDecoder)
    }

    fn is_protobuf(&self) -> bool {
        true
    }
}

impl Decoder for ProtobufDecoder {
    fn decode(
        &mut self,
        record: &[u8],
        _source: &RecordSource<'_>,
        _out: &mut DecodedMessages,
    ) -> Result<Decoded, DecodeError> {
        MessageView::new(record)
            .map(|_| Decoded::Record)
            .map_err(|e| DecodeError(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::testing::build_doc_sample;
    use hekate_model::message::Message;

    #[test]
    fn doc_sample_builds() {
        build_doc_sample(include_str!("protobuf.rs"));
    }

    #[test]
    fn accepts_messages_and_refuses_garbage() {
        let src = RecordSource {
            input: "i",
            hostname: "h",
            message_bytes: true,
            msg_type: None,
            fields: &[],
        };
        let mut out = DecodedMessages::default();
        let msg = Message::new_now().to_bytes();
        assert_eq!(
            ProtobufDecoder.decode(&msg, &src, &mut out),
            Ok(Decoded::Record)
        );
        assert!(ProtobufDecoder.decode(&[0xff], &src, &mut out).is_err());
    }
}
