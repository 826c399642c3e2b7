//! StatsToFieldsDecoder: turns graphite plaintext stat lines in the Payload (what StatAccumInput
//! emits with `emit_in_payload`) into message fields, as StatAccumInput writes them with
//! `emit_in_fields`: one DOUBLE field per stat, named by the stat, and an INTEGER field
//! `timestamp` (seconds since the epoch).
//!
//! ```toml
//! [stats]
//! type = "StatsToFieldsDecoder"
//! ```
//!
//! Each line is `name value timestamp` (whitespace-separated, exactly three words; the value a
//! number, the timestamp an unsigned 32-bit integer, in decimal or with Go's `0x`, `0o`, `0b`
//! or leading-`0` prefixes). The message keeps the original's headers, Payload and fields. A
//! payload holding several timestamps gives one message per timestamp: the first for the first
//! timestamp, each further one a copy of the original's headers with an empty Payload and only
//! its `timestamp` and stats as fields. (Heka documents this; its code also adds every stat to
//! the first message, which counts later stats twice — hekate puts each stat in the message of
//! its timestamp only.) A malformed line, a bad value or timestamp, or an empty payload fails the
//! record, naming the line.
//!
//! No options.

use std::sync::Arc;

use hekate_config::{ConfigError, PluginSection};
use hekate_engine::plugin::{
    BuildContext, Built, DecodeError, Decoded, DecodedMessages, Decoder, DecoderPlugin, NoOptions,
    PluginType, RecordSource, options_of,
};

use super::original::{Headers, Original, Value, write_field};

/// The registry entry.
pub const TYPE: PluginType = PluginType {
    name: "StatsToFieldsDecoder",
    source: include_str!("stats_to_fields.rs"),
    options: options_of::<NoOptions>,
    default_matcher: None,
    build,
};

#[derive(Debug)]
struct StatsToFieldsDecoderPlugin;

fn build(section: &PluginSection, _ctx: &BuildContext<'_>) -> Result<Built, ConfigError> {
    let _: NoOptions = section.options()?;
    Ok(Built::Decoder(Arc::new(StatsToFieldsDecoderPlugin)))
}

impl DecoderPlugin for StatsToFieldsDecoderPlugin {
    fn new_decoder(&self) -> Box<dyn Decoder> {
        Box::new(StatsToFieldsDecoder {
            stats: Vec::new(),
            scratch: Vec::new(),
        })
    }
}

/// One running StatsToFieldsDecoder (one per shard).
struct StatsToFieldsDecoder {
    /// (timestamp, name range in the payload, value) of each line.
    stats: Vec<(u32, usize, usize, f64)>,
    scratch: Vec<u8>,
}

/// Go's `strconv.ParseUint(s, 0, 32)`.
fn go_uint32(s: &str) -> Option<u32> {
    let (digits, radix) = if let Some(r) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        (r, 16)
    } else if let Some(r) = s.strip_prefix("0b").or_else(|| s.strip_prefix("0B")) {
        (r, 2)
    } else if let Some(r) = s.strip_prefix("0o").or_else(|| s.strip_prefix("0O")) {
        (r, 8)
    } else if s.len() > 1 && s.starts_with('0') {
        (&s[1..], 8)
    } else {
        (s, 10)
    };
    if digits.is_empty() || digits.starts_with('+') || digits.starts_with('-') {
        return None;
    }
    u32::from_str_radix(digits, radix).ok()
}

impl Decoder for StatsToFieldsDecoder {
    fn decode(
        &mut self,
        record: &[u8],
        source: &RecordSource<'_>,
        out: &mut DecodedMessages,
    ) -> Result<Decoded, DecodeError> {
        let original = Original::of(record, source)?;
        let payload = original.payload();
        self.stats.clear();
        let base = payload.as_ptr() as usize;
        for line in payload.trim_matches('\n').split('\n') {
            let mut words = line.split_whitespace();
            let (Some(name), Some(value), Some(ts), None) =
                (words.next(), words.next(), words.next(), words.next())
            else {
                return Err(DecodeError(format!("malformed statmetric line: '{line}'")));
            };
            let ts =
                go_uint32(ts).ok_or_else(|| DecodeError(format!("invalid timestamp: '{line}'")))?;
            let value: f64 = value
                .parse()
                .map_err(|_| DecodeError(format!("invalid value: '{line}'")))?;
            let start = name.as_ptr() as usize - base;
            self.stats.push((ts, start, start + name.len(), value));
        }
        // Timestamps in order of appearance.
        let first = self.stats[0].0;
        let mut produced = 0;
        let mut done: Vec<u32> = Vec::new();
        for &(ts, ..) in &self.stats {
            if done.contains(&ts) {
                continue;
            }
            done.push(ts);
            let headers = Headers {
                payload: (ts != first).then(|| "".into()),
                ..Headers::default()
            };
            let stats = &self.stats;
            let scratch = &mut self.scratch;
            let payload = &payload;
            let original = &original;
            out.push_with(|buf| {
                let mut w = if ts == first {
                    original.write(&headers, buf)
                } else {
                    original.write_headers(&headers, buf)
                };
                for &(t, s, e, v) in stats {
                    if t == ts {
                        write_field(&mut w, &payload[s..e], "", &Value::Double(v), scratch);
                    }
                }
                write_field(
                    &mut w,
                    "timestamp",
                    "",
                    &Value::Integer(i64::from(ts)),
                    scratch,
                );
                Ok::<(), DecodeError>(())
            })?;
            produced += 1;
        }
        Ok(Decoded::Messages(produced))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::testing::build_doc_sample;
    use hekate_model::message::{Field, Message};

    fn decode(payload: &str) -> Result<Vec<Message>, DecodeError> {
        let mut original = Message::new_now();
        original.payload = Some(payload.into());
        original.logger = Some("StatAccumInput".into());
        original.r#type = Some("heka.statmetric".into());
        original.fields.push(Field::string("kept", "yes"));
        let bytes = original.to_bytes();
        let src = RecordSource {
            input: "in",
            hostname: "h",
            message_bytes: true,
            msg_type: None,
            fields: &[],
        };
        let mut d = StatsToFieldsDecoderPlugin.new_decoder();
        let mut out = DecodedMessages::default();
        d.decode(&bytes, &src, &mut out)?;
        Ok(out
            .iter()
            .map(|b| Message::decode_bytes(b).unwrap())
            .collect())
    }

    fn stat(m: &Message, name: &str) -> Option<f64> {
        let f = m.find_first_field(name)?;
        assert_eq!(f.value_type, Some(3), "{name} is a DOUBLE");
        Some(f.value_double[0])
    }

    #[test]
    fn doc_sample_builds() {
        build_doc_sample(include_str!("stats_to_fields.rs"));
    }

    #[test]
    fn stat_lines_become_fields() {
        let payload = "stats.counters.hits.count 42 1414000000\nstats.timers.req.mean 12.5 1414000000\nstats.gauges.mem 1e3 1414000000\n";
        let msgs = decode(payload).unwrap();
        assert_eq!(msgs.len(), 1);
        let m = &msgs[0];
        assert_eq!(stat(m, "stats.counters.hits.count"), Some(42.0));
        assert_eq!(stat(m, "stats.timers.req.mean"), Some(12.5));
        assert_eq!(stat(m, "stats.gauges.mem"), Some(1000.0));
        assert_eq!(
            m.find_first_field("timestamp").unwrap().value_integer,
            [1_414_000_000]
        );
        assert_eq!(m.payload.as_deref(), Some(payload), "the payload stays");
        assert_eq!(m.r#type.as_deref(), Some("heka.statmetric"));
        assert_eq!(m.find_first_field("kept").unwrap().value_string, ["yes"]);
    }

    #[test]
    fn each_timestamp_gets_its_own_message() {
        let msgs = decode("a 1 100\nb 2 0x65\nc 3 100\nd 4 0145").unwrap();
        assert_eq!(msgs.len(), 2);
        let (m0, m1) = (&msgs[0], &msgs[1]);
        assert_eq!((stat(m0, "a"), stat(m0, "c")), (Some(1.0), Some(3.0)));
        assert_eq!(stat(m0, "b"), None);
        assert_eq!(
            m0.find_first_field("timestamp").unwrap().value_integer,
            [100]
        );
        // 0x65 and 0145 are both 101.
        assert_eq!((stat(m1, "b"), stat(m1, "d")), (Some(2.0), Some(4.0)));
        assert_eq!(
            m1.find_first_field("timestamp").unwrap().value_integer,
            [101]
        );
        assert_eq!(m1.payload, None, "empty payload");
        assert!(m1.find_first_field("kept").is_none(), "only its stats");
        assert_eq!(m1.logger.as_deref(), Some("StatAccumInput"));
    }

    #[test]
    fn malformed_lines_fail_with_the_line() {
        for (payload, why) in [
            ("", "malformed statmetric line: ''"),
            ("a 1", "malformed statmetric line: 'a 1'"),
            ("a 1 2 3", "malformed"),
            ("a x 100", "invalid value: 'a x 100'"),
            ("a 1 -100", "invalid timestamp"),
            ("a 1 4294967296", "invalid timestamp"),
            ("a 1 100\n\nb 2 100", "malformed statmetric line: ''"),
        ] {
            let e = decode(payload).unwrap_err();
            assert!(e.0.contains(why), "{payload:?}: {e}");
        }
    }
}
