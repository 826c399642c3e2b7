//! ScribbleDecoder: sets fixed headers and fields on every message, as Heka's ScribbleDecoder
//! does — typically behind another decoder in a MultiDecoder with `cascade_strategy = "all"`,
//! or alone to tag what an input receives.
//!
//! ```toml
//! [tag_web]
//! type = "ScribbleDecoder"
//!
//! [tag_web.message_fields]
//! Type = "web.access"
//! Logger = "nginx"
//! "datacenter|dc" = "fra1"
//! "replica||int" = "3"
//! ```
//!
//! `message_fields` are Heka's message template without substitutions: each key names a header
//! (`Logger`, `Type`, `Payload`, `Hostname`, `Pid`, `Severity`, `Uuid`) or a field
//! (`name|representation|type`, type `int`, `float`, `bool` or `bytes`; a header name with a `|`
//! suffix is a field); each value is written as given (`%…%` is not interpolated), and must be
//! a string. A Pid or Severity that is not an integer fails every record (Heka's rule); there is
//! no Timestamp header (a `Timestamp` key is a field). The message starts as the input makes it
//! (or as the record's own message, for encoded records); keys with `|` need quotes in TOML.
//!
//! Options: `message_fields` ({}).

use std::sync::Arc;

use hekate_config::{ConfigError, PluginSection};
use hekate_engine::plugin::{
    BuildContext, Built, DecodeError, Decoded, DecodedMessages, Decoder, DecoderPlugin, PluginType,
    RecordSource, options_of,
};
use schemars::JsonSchema;
use serde::Deserialize;

use super::original::{Headers, Original};
use super::template::{MessageTemplate, message_template};

/// The registry entry.
pub const TYPE: PluginType = PluginType {
    name: "ScribbleDecoder",
    source: include_str!("scribble.rs"),
    options: options_of::<Options>,
    default_matcher: None,
    build,
};

/// ScribbleDecoder's own options.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Options {
    /// Headers and fields to set: key = header or `field|representation|type`, value = the
    /// value, a string.
    #[serde(default)]
    #[schemars(schema_with = "crate::common::any_table")]
    message_fields: toml::Table,
}

#[derive(Debug)]
struct ScribbleDecoderPlugin {
    template: Arc<MessageTemplate>,
}

fn build(section: &PluginSection, _ctx: &BuildContext<'_>) -> Result<Built, ConfigError> {
    let opts: Options = section.options()?;
    let template = message_template(section, &opts.message_fields)?;
    // The values are fixed: a bad Pid or Severity is a config error, not a failure per record.
    template
        .headers(None, &mut Headers::default())
        .map_err(|e| {
            section.error_at_key("message_fields", format!("[{}]: {e}", section.name()))
        })?;
    Ok(Built::Decoder(Arc::new(ScribbleDecoderPlugin {
        template: Arc::new(template),
    })))
}

impl DecoderPlugin for ScribbleDecoderPlugin {
    fn new_decoder(&self) -> Box<dyn Decoder> {
        Box::new(ScribbleDecoder {
            template: Arc::clone(&self.template),
            scratch: Vec::new(),
        })
    }
}

/// One running ScribbleDecoder (one per shard).
struct ScribbleDecoder {
    template: Arc<MessageTemplate>,
    scratch: Vec<u8>,
}

impl Decoder for ScribbleDecoder {
    fn decode(
        &mut self,
        record: &[u8],
        source: &RecordSource<'_>,
        out: &mut DecodedMessages,
    ) -> Result<Decoded, DecodeError> {
        let original = Original::of(record, source)?;
        let mut headers = Headers::default();
        self.template.headers(None, &mut headers)?;
        let scratch = &mut self.scratch;
        let template = &*self.template;
        out.push_with(|buf| {
            buf.reserve(record.len() + 128);
            let mut w = original.write(&headers, buf);
            template.fields(None, &mut w, scratch);
            Ok::<(), DecodeError>(())
        })?;
        Ok(Decoded::Messages(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::testing::{build as build_config, build_doc_sample};
    use hekate_model::message::{Field, Message};

    fn decoder(fields: &str) -> Result<Box<dyn Decoder>, String> {
        let toml = format!("[s]\ntype = \"ScribbleDecoder\"\n[s.message_fields]\n{fields}\n");
        let config = hekate_config::Config::from_str(&toml, "t.toml").unwrap();
        let built = std::collections::HashMap::new();
        let ctx = BuildContext::new(&config.global, &built);
        match build(config.plugin("s").unwrap(), &ctx) {
            Ok(Built::Decoder(d)) => Ok(d.new_decoder()),
            Ok(_) => unreachable!(),
            Err(e) => Err(e.to_string()),
        }
    }

    #[test]
    fn doc_sample_builds() {
        build_doc_sample(include_str!("scribble.rs"));
        build_config(
            "[s]\ntype = \"ScribbleDecoder\"\n[i]\ntype = \"TcpInput\"\naddress = \"127.0.0.1:0\"\ndecoder = \"s\"\n",
        )
        .unwrap();
    }

    #[test]
    fn fixed_values_set_headers_and_fields_without_interpolation() {
        let mut d = decoder(
            "Type = \"%Type%Decoded\"\nHostname = \"h2\"\nPid = \"12.9\"\nSeverity = \"2\"\n\"dc|name\" = \"fra1\"\n\"n||int\" = \"3\"\nTimestamp = \"now\"",
        )
        .unwrap();
        let src = RecordSource {
            input: "in",
            hostname: "h",
            message_bytes: false,
            msg_type: None,
            fields: &[],
        };
        let mut out = DecodedMessages::default();
        d.decode(b"payload\n", &src, &mut out).unwrap();
        let m = Message::decode_bytes(out.iter().next().unwrap()).unwrap();
        assert_eq!(m.r#type.as_deref(), Some("%Type%Decoded"));
        assert_eq!(m.hostname.as_deref(), Some("h2"));
        assert_eq!(m.logger.as_deref(), Some("in"));
        assert_eq!(m.pid, Some(12));
        assert_eq!(m.severity, Some(2));
        assert_eq!(m.payload.as_deref(), Some("payload"));
        let f = m.find_first_field("dc").unwrap();
        assert_eq!(
            (f.value_string.as_slice(), f.representation.as_deref()),
            (&["fra1".to_string()][..], Some("name"))
        );
        assert_eq!(m.find_first_field("n").unwrap().value_integer, [3]);
        assert_eq!(
            m.find_first_field("Timestamp").unwrap().value_string,
            ["now"]
        );

        // On an encoded message: its headers and fields stay unless named.
        let mut original = Message::new_now();
        original.logger = Some("up".into());
        original.fields.push(Field::string("kept", "yes"));
        let bytes = original.to_bytes();
        let src = RecordSource {
            message_bytes: true,
            ..src
        };
        let mut out = DecodedMessages::default();
        d.decode(&bytes, &src, &mut out).unwrap();
        let m = Message::decode_bytes(out.iter().next().unwrap()).unwrap();
        assert_eq!(m.uuid, original.uuid);
        assert_eq!(m.logger.as_deref(), Some("up"));
        assert_eq!(m.hostname.as_deref(), Some("h2"));
        assert_eq!(m.find_first_field("kept").unwrap().value_string, ["yes"]);
    }

    #[test]
    fn bad_fixed_values_are_refused_at_config_time() {
        let err = |fields: &str| decoder(fields).err().expect("refused");
        assert!(err("Pid = \"abc\"").contains("Pid"));
        assert!(err("Severity = \"high\"").contains("Severity"));
        assert!(err("Uuid = \"x\"").contains("UUID"));
        assert!(err("n = 5").contains("must be a string"));
    }
}
