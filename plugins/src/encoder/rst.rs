//! RstEncoder: a reStructuredText dump of every header and field of a message, for debugging
//! (typically with LogOutput).
//!
//! ```toml
//! [RstEncoder]
//! ```
//!
//! No options. Output, one message:
//!
//! ```text
//! :Timestamp: 2024-01-22 10:00:00.5 +0000 UTC
//! :Type: nginx.access
//! :Hostname: web1
//! :Pid: 0
//! :Uuid: 7d8f...
//! :Logger: TcpInput
//! :Payload: GET / 200
//! :EnvVersion:
//! :Severity: 7
//! :Fields:
//!     | name:"status" type:integer value:[200]
//! ```

use std::fmt::Write as _;
use std::sync::Arc;

use chrono::TimeZone as _;
use hekate_config::{ConfigError, PluginSection};
use hekate_engine::plugin::{
    BuildContext, Built, Delivery, EncodeError, Encoder, EncoderPlugin, NoOptions, PluginType,
    options_of,
};
use hekate_model::message::{FieldValue, MessageAccess as _, ValueType, uuid_string};

/// The registry entry.
pub const TYPE: PluginType = PluginType {
    name: "RstEncoder",
    source: include_str!("rst.rs"),
    options: options_of::<NoOptions>,
    default_matcher: None,
    build,
};

#[derive(Debug)]
struct RstEncoder;

fn build(section: &PluginSection, _ctx: &BuildContext<'_>) -> Result<Built, ConfigError> {
    let _: NoOptions = section.options()?;
    Ok(Built::Encoder(Arc::new(RstEncoder)))
}

impl EncoderPlugin for RstEncoder {
    fn new_encoder(&self) -> Box<dyn Encoder> {
        Box::new(RstWriter(String::new()))
    }
}

struct RstWriter(String);

/// Go's `time.Time.String()` in UTC: `2006-01-02 15:04:05.999999999 +0000 UTC`.
fn go_time(ns: i64) -> String {
    let t = chrono::Utc.timestamp_nanos(ns);
    let mut s = t.format("%Y-%m-%d %H:%M:%S").to_string();
    let frac = ns.rem_euclid(1_000_000_000);
    if frac != 0 {
        let digits = format!("{frac:09}");
        s.push('.');
        s.push_str(digits.trim_end_matches('0'));
    }
    s.push_str(" +0000 UTC");
    s
}

fn lossy(b: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(b)
}

impl Encoder for RstWriter {
    fn encode<'a>(&'a mut self, msg: &'a Delivery<'a>) -> Result<Option<&'a [u8]>, EncodeError> {
        let v = &msg.view;
        let out = &mut self.0;
        out.clear();
        let _ = writeln!(out, ":Timestamp: {}", go_time(v.timestamp()));
        let _ = writeln!(out, ":Type: {}", lossy(v.msg_type()));
        let _ = writeln!(out, ":Hostname: {}", lossy(v.hostname()));
        let _ = writeln!(out, ":Pid: {}", v.pid());
        let _ = writeln!(out, ":Uuid: {}", uuid_string(v.uuid()));
        let _ = writeln!(out, ":Logger: {}", lossy(v.logger()));
        let _ = writeln!(out, ":Payload: {}", lossy(v.payload()));
        let _ = writeln!(out, ":EnvVersion: {}", lossy(v.env_version()));
        let _ = writeln!(out, ":Severity: {}", v.severity());
        out.push_str(":Fields:\n");
        for f in v.fields() {
            let kind = match f.value_type() {
                ValueType::String => "string",
                ValueType::Bytes => "bytes",
                ValueType::Integer => "integer",
                ValueType::Double => "double",
                ValueType::Bool => "bool",
            };
            let values: Vec<String> = f
                .values()
                .into_iter()
                .map(|val| match val {
                    FieldValue::String(s) => format!("{:?}", lossy(s)),
                    FieldValue::Bytes(b) => format!("{b:?}"),
                    FieldValue::Integer(i) => i.to_string(),
                    FieldValue::Double(d) => d.to_string(),
                    FieldValue::Bool(b) => b.to_string(),
                })
                .collect();
            let _ = write!(
                out,
                "    | name:\"{}\" type:{kind} value:[{}]",
                lossy(f.name()),
                values.join(",")
            );
            let repr = f.representation();
            if !repr.is_empty() {
                let _ = write!(out, " representation:\"{}\"", lossy(repr));
            }
            out.push('\n');
        }
        out.push('\n');
        Ok(Some(out.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::testing::build_doc_sample;
    use hekate_model::message::{Field, Message, MessageView};

    #[test]
    fn doc_sample_builds() {
        build_doc_sample(include_str!("rst.rs"));
    }

    #[test]
    fn dumps_headers_and_fields() {
        let mut m = Message::new_now();
        m.timestamp = 1_500_000_000;
        m.r#type = Some("t".into());
        m.add_field(Field::integer("status", 200).with_representation("code"));
        let bytes = m.to_bytes();
        let d = Delivery {
            view: MessageView::new(&bytes).unwrap(),
            loops: 0,
        };
        let mut e = RstEncoder.new_encoder();
        let out = String::from_utf8(e.encode(&d).unwrap().unwrap().to_vec()).unwrap();
        assert!(
            out.starts_with(":Timestamp: 1970-01-01 00:00:01.5 +0000 UTC\n:Type: t\n"),
            "{out}"
        );
        assert!(
            out.contains(
                "    | name:\"status\" type:integer value:[200] representation:\"code\"\n"
            ),
            "{out}"
        );
    }
}
