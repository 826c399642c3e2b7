//! PayloadEncoder: the message's Payload, optionally with a newline appended and a timestamp
//! prefix. For writing plain log lines to files or stdout.
//!
//! ```toml
//! [PayloadEncoder]
//! append_newlines = true
//! prefix_ts = true
//! ts_from_message = true
//! ts_format = "[%Y/%b/%d:%H:%M:%S %z]"
//! ```
//!
//! Options: `append_newlines` (true), `prefix_ts` (false), `ts_from_message` (true: the message's
//! Timestamp, else the time of encoding), `ts_format` (strftime, `[%Y/%b/%d:%H:%M:%S %z]`; a space
//! is appended unless it ends in one). Times are in the local time zone, as in Heka.

use std::fmt::Write as _;
use std::sync::Arc;

use chrono::TimeZone as _;
use hekate_config::{ConfigError, PluginSection};
use hekate_engine::plugin::{
    BuildContext, Built, Delivery, EncodeError, Encoder, EncoderPlugin, PluginType, options_of,
};
use hekate_model::message::MessageAccess as _;
use hekate_model::writer::now_ns;
use schemars::JsonSchema;
use serde::Deserialize;

/// The registry entry.
pub const TYPE: PluginType = PluginType {
    name: "PayloadEncoder",
    source: include_str!("payload.rs"),
    options: options_of::<Options>,
    default_matcher: None,
    build,
};

fn yes() -> bool {
    true
}

fn default_ts_format() -> String {
    "[%Y/%b/%d:%H:%M:%S %z]".into()
}

/// PayloadEncoder's own options.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Options {
    /// Append a newline to each payload.
    #[serde(default = "yes")]
    append_newlines: bool,
    /// Prefix each payload with a timestamp.
    #[serde(default)]
    prefix_ts: bool,
    /// Take the timestamp from the message rather than the clock.
    #[serde(default = "yes")]
    ts_from_message: bool,
    /// strftime format of the prefix.
    #[serde(default = "default_ts_format")]
    ts_format: String,
}

#[derive(Debug, Clone)]
struct PayloadEncoder {
    append_newlines: bool,
    prefix: Option<(bool, String)>,
}

fn build(section: &PluginSection, _ctx: &BuildContext<'_>) -> Result<Built, ConfigError> {
    let opts: Options = section.options()?;
    let mut format = opts.ts_format;
    if !format.ends_with(' ') {
        format.push(' ');
    }
    // Refuse a format chrono cannot render instead of failing on every message.
    let probe = chrono::Utc.timestamp_opt(0, 0).single().expect("epoch");
    let mut rendered = String::new();
    if write!(rendered, "{}", probe.format(&format)).is_err() {
        return Err(section.error_at_value(
            "ts_format",
            format!(
                "`ts_format` {format:?} of section [{}] is not a valid strftime format",
                section.name()
            ),
        ));
    }
    Ok(Built::Encoder(Arc::new(PayloadEncoder {
        append_newlines: opts.append_newlines,
        prefix: opts.prefix_ts.then_some((opts.ts_from_message, format)),
    })))
}

impl EncoderPlugin for PayloadEncoder {
    fn new_encoder(&self) -> Box<dyn Encoder> {
        Box::new(PayloadWriter {
            config: self.clone(),
            scratch: Vec::new(),
        })
    }
}

struct PayloadWriter {
    config: PayloadEncoder,
    scratch: Vec<u8>,
}

impl Encoder for PayloadWriter {
    fn encode<'a>(&'a mut self, msg: &'a Delivery<'a>) -> Result<Option<&'a [u8]>, EncodeError> {
        let payload = msg.view.payload();
        if self.config.prefix.is_none() && !self.config.append_newlines {
            return Ok(Some(payload));
        }
        self.scratch.clear();
        if let Some((from_message, format)) = &self.config.prefix {
            let ns = if *from_message {
                msg.view.timestamp()
            } else {
                now_ns()
            };
            let t = chrono::Local.timestamp_nanos(ns);
            let mut s = String::new();
            let _ = write!(s, "{}", t.format(format));
            self.scratch.extend_from_slice(s.as_bytes());
        }
        self.scratch.extend_from_slice(payload);
        if self.config.append_newlines {
            self.scratch.push(b'\n');
        }
        Ok(Some(&self.scratch))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::testing::build_doc_sample;
    use hekate_model::message::{Message, MessageView};

    #[test]
    fn doc_sample_builds() {
        build_doc_sample(include_str!("payload.rs"));
    }

    #[test]
    fn payload_with_newline() {
        let mut m = Message::new_now();
        m.payload = Some("hello".into());
        let bytes = m.to_bytes();
        let d = Delivery {
            view: MessageView::new(&bytes).unwrap(),
            loops: 0,
        };
        let mut e = PayloadEncoder {
            append_newlines: true,
            prefix: None,
        }
        .new_encoder();
        assert_eq!(e.encode(&d).unwrap(), Some(&b"hello\n"[..]));
        let mut e = PayloadEncoder {
            append_newlines: false,
            prefix: Some((true, "%Y ".into())),
        }
        .new_encoder();
        let out = e.encode(&d).unwrap().unwrap().to_vec();
        assert!(out.ends_with(b" hello") && out.len() == 10, "{out:?}");
    }
}
