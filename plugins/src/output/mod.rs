//! Outputs, and what they share: turning a message into bytes with the section's encoder, framed
//! or not.

pub mod carbon;
pub mod dashboard;
pub mod file;
pub mod log;
pub mod sandbox;
pub mod tcp;
pub mod udp;
pub mod whisper;

use std::sync::Arc;

use hekate_config::{ConfigError, PluginSection};
use hekate_engine::plugin::{
    BuildContext, Delivery, Encoder, EncoderPlugin, ProcessError, ReportSink,
};
use hekate_model::framing::encode_record_with_limit;

/// An output's `encoder` and `use_framing`, resolved.
#[derive(Debug, Clone)]
pub(crate) struct Encoding {
    encoder: Arc<dyn EncoderPlugin>,
    framing: bool,
    max_message_size: u32,
}

impl Encoding {
    /// Reads `encoder` (or the plugin's default) and `use_framing` (default: true with
    /// ProtobufEncoder).
    pub(crate) fn from_section(
        section: &PluginSection,
        ctx: &BuildContext<'_>,
        default_encoder: Option<&str>,
    ) -> Result<Self, ConfigError> {
        let opts = section.output().cloned().unwrap_or_default();
        let Some(name) = opts.encoder.as_deref().or(default_encoder) else {
            return Err(section.error_at_key(
                "encoder",
                format!(
                    "{} [{}] requires an `encoder`, e.g. encoder = \"PayloadEncoder\"",
                    section.type_name(),
                    section.name()
                ),
            ));
        };
        let encoder = ctx.encoder(name).ok_or_else(|| {
            section.error_at_value(
                "encoder",
                format!(
                    "section [{}] uses encoder `{name}`, which is not an encoder this build can run",
                    section.name()
                ),
            )
        })?;
        let framing = opts.use_framing.unwrap_or_else(|| encoder.is_protobuf());
        Ok(Self {
            encoder,
            framing,
            max_message_size: ctx.global.max_message_size,
        })
    }

    /// Whether each encoded message is wrapped in Heka stream framing.
    pub(crate) fn framed(&self) -> bool {
        self.framing
    }

    /// The largest message the writer frames.
    pub(crate) fn max_message_size(&self) -> u32 {
        self.max_message_size
    }

    /// Without an explicit `use_framing`, messages are not framed (a datagram is one message).
    pub(crate) fn unframed_by_default(mut self, section: &PluginSection) -> Self {
        if section.output().and_then(|o| o.use_framing).is_none() {
            self.framing = false;
        }
        self
    }

    /// An encoder instance for one output instance.
    pub(crate) fn writer(&self) -> EncodedWriter {
        EncodedWriter {
            encoder: self.encoder.new_encoder(),
            framing: self.framing,
            max_message_size: self.max_message_size,
        }
    }
}

/// Encodes (and frames) messages into an output's buffer.
pub(crate) struct EncodedWriter {
    encoder: Box<dyn Encoder>,
    framing: bool,
    max_message_size: u32,
}

impl EncodedWriter {
    /// Appends the encoded message to `out`; `Ok(false)` when the encoder skipped it.
    #[inline]
    pub(crate) fn write(
        &mut self,
        msg: &Delivery<'_>,
        out: &mut Vec<u8>,
    ) -> Result<bool, ProcessError> {
        match self.encoder.encode(msg) {
            Ok(Some(bytes)) => {
                if self.framing {
                    encode_record_with_limit(bytes, None, self.max_message_size, out)
                        .map_err(|e| ProcessError(format!("cannot frame the message: {e}")))?;
                } else {
                    out.extend_from_slice(bytes);
                }
                Ok(true)
            }
            Ok(None) => Ok(false),
            Err(e) => Err(ProcessError(format!("encoding failed: {e}"))),
        }
    }

    /// The encoder's report fields (a SandboxEncoder's memory, instructions, timings…).
    pub(crate) fn report(&self, sink: &mut dyn ReportSink) {
        self.encoder.report(sink);
    }
}
