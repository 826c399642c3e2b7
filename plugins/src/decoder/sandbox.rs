//! SandboxDecoder: a Heka Lua decoder. For each record the script's `process_message()` sees a
//! message built as Heka builds it — Uuid, Timestamp, Logger = the input's name, Hostname and
//! Payload = the record (or, after HekaFramingSplitter, the record's own message, `raw` included)
//! — and turns it into messages:
//!
//! - each `inject_message(t)` emits a message; headers it leaves empty (Type, Logger, Hostname)
//!   are taken from the original, as hekad does;
//! - nothing injected: the message as changed by `write_message`, or the original, goes on;
//! - a negative status fails the record: `Failed parsing: <error> payload: <payload>`, counted
//!   as a decode failure and dropped (or passed on with `decode_failure = true` when the input
//!   sets `send_decode_failures`).
//!
//! ```toml
//! [nginx]
//! type = "SandboxDecoder"
//! filename = "lua_decoders/nginx_access.lua"
//!
//! [nginx.config]
//! log_format = '$remote_addr - $remote_user [$time_local] "$request" $status'
//! type = "nginx.access"
//! ```
//!
//! Options: the common sandbox options (`plugins/src/sandbox.rs`). Decoders run inline on
//! every worker core, one sandbox per core (a sandbox lives on its core), so a script's global
//! state is per core; with `preserve_data` each instance keeps its own file (`<name>.data`,
//! then `<name>_1.data`, …).
//!
//! A sandbox that breaks a limit or fails fatally is terminated: a `heka.sandbox-terminated`
//! message is injected and every later record of that core fails to decode (hekad shuts down
//! instead; hekate keeps the rest of the pipeline running).

use std::borrow::Cow;
use std::sync::Arc;

use hekate_config::{ConfigError, PluginSection};
use hekate_engine::plugin::{
    BuildContext, Built, DecodeError, Decoded, DecodedMessages, Decoder, DecoderPlugin, PluginType,
    RecordSource, ReportSink,
};
use hekate_model::message::{MessageAccess as _, MessageView};
use hekate_model::writer::{MessageWriter, now_ns, random_uuid};
use hekate_sandbox::{
    InjectError, Outcome, PluginType as Kind, Sandbox, SandboxHost, termination_message,
};

use crate::sandbox::{InstanceNames, SandboxSettings, Timing, report};

/// The registry entry.
pub const TYPE: PluginType = PluginType {
    name: "SandboxDecoder",
    source: include_str!("sandbox.rs"),
    options: crate::sandbox::script_options,
    default_matcher: None,
    build,
};

#[derive(Debug)]
struct SandboxDecoderPlugin {
    name: String,
    settings: SandboxSettings,
    instances: InstanceNames,
}

fn build(section: &PluginSection, ctx: &BuildContext<'_>) -> Result<Built, ConfigError> {
    let (settings, _) = SandboxSettings::from_section(section, ctx, Kind::Decoder, None)?;
    settings.check(section, Kind::Decoder, false)?;
    Ok(Built::Decoder(Arc::new(SandboxDecoderPlugin {
        name: section.name().to_string(),
        settings,
        instances: InstanceNames::default(),
    })))
}

impl DecoderPlugin for SandboxDecoderPlugin {
    fn new_decoder(&self) -> Box<dyn Decoder> {
        let instance = self.instances.next(&self.name);
        match self.settings.sandbox(Kind::Decoder, &self.name, &instance) {
            Ok(sb) => Box::new(SandboxDecoder {
                sb,
                name: self.name.clone(),
                preserve: self.settings.config.preserve_data,
                terminated: None,
                original: Vec::new(),
                scratch: Vec::new(),
                timing: Timing::new(self.settings.sample_every),
            }),
            Err(e) => {
                tracing::error!("Decoder '{}' cannot start: {e}", self.name);
                Box::new(BrokenDecoder(format!(
                    "decoder '{}' could not start: {e}",
                    self.name
                )))
            }
        }
    }
}

/// A decoder whose sandbox could not be built on this core: every record fails.
struct BrokenDecoder(String);

impl Decoder for BrokenDecoder {
    fn decode(
        &mut self,
        _record: &[u8],
        _source: &RecordSource<'_>,
        _out: &mut DecodedMessages,
    ) -> Result<Decoded, DecodeError> {
        Err(DecodeError(self.0.clone()))
    }
}

/// One running SandboxDecoder (one per core).
struct SandboxDecoder {
    sb: Sandbox,
    name: String,
    preserve: bool,
    terminated: Option<String>,
    /// The message built around a payload record.
    original: Vec<u8>,
    /// An injected message with the original's headers filled in.
    scratch: Vec<u8>,
    timing: Timing,
}

/// Collects what the script injects, filling the headers it left empty from the original.
struct DecoderHost<'a> {
    out: &'a mut DecodedMessages,
    original: &'a MessageView<'a>,
    scratch: &'a mut Vec<u8>,
    injected: usize,
}

impl SandboxHost for DecoderHost<'_> {
    fn inject(&mut self, msg: &[u8]) -> Result<(), InjectError> {
        let view = MessageView::new(msg)
            .map_err(|e| InjectError::Other(format!("protobuf unmarshal failed: {e}")))?;
        let o = self.original;
        let fill_type = view.msg_type().is_empty() && !o.msg_type().is_empty();
        let fill_logger = view.logger().is_empty() && !o.logger().is_empty();
        let fill_host = view.hostname().is_empty() && !o.hostname().is_empty();
        if fill_type || fill_logger || fill_host {
            // Protobuf lets a field come after the others: append the missing headers.
            self.scratch.clear();
            self.scratch.extend_from_slice(msg);
            let mut w = MessageWriter::new(self.scratch);
            if fill_type {
                w.msg_type(o.msg_type());
            }
            if fill_logger {
                w.logger(o.logger());
            }
            if fill_host {
                w.hostname(o.hostname());
            }
            self.out.push_encoded(self.scratch);
        } else {
            self.out.push_encoded(msg);
        }
        self.injected += 1;
        Ok(())
    }
}

impl Decoder for SandboxDecoder {
    fn decode(
        &mut self,
        record: &[u8],
        source: &RecordSource<'_>,
        out: &mut DecodedMessages,
    ) -> Result<Decoded, DecodeError> {
        if let Some(reason) = &self.terminated {
            return Err(DecodeError(format!(
                "SandboxDecoder has been terminated: {reason}"
            )));
        }
        let message_bytes = source.message_bytes;
        let bytes: &[u8] = if message_bytes {
            record
        } else {
            self.original.clear();
            // A payload is text: invalid UTF-8 is replaced (the common valid case is only
            // checked, by the faster validator).
            let payload = match simdutf8::basic::from_utf8(record) {
                Ok(s) => Cow::Borrowed(s),
                Err(_) => String::from_utf8_lossy(record),
            };
            let mut w = MessageWriter::new(&mut self.original);
            w.uuid(&random_uuid()).timestamp(now_ns());
            if let Some(t) = source.msg_type {
                w.msg_type(t.as_bytes());
            }
            w.logger(source.input.as_bytes())
                .hostname(source.hostname.as_bytes())
                .payload(payload.as_bytes())
                .raw(source.fields);
            &self.original
        };
        let view = MessageView::new(bytes).map_err(|e| DecodeError(e.to_string()))?;
        let mut host = DecoderHost {
            out,
            original: &view,
            scratch: &mut self.scratch,
            injected: 0,
        };
        let started = self.timing.start();
        let result = self.sb.process_message(&view, &mut host);
        self.timing.end(started);
        let injected = host.injected;
        let written = self.sb.take_written_message();
        match result {
            Ok(Outcome::Failed { message, .. }) => {
                out.clear();
                Err(DecodeError(format!(
                    "Failed parsing: {} payload: {}",
                    message.unwrap_or_default(),
                    payload_text(&view)
                )))
            }
            Ok(Outcome::Aborted) => {
                out.clear();
                Err(DecodeError("aborted".into()))
            }
            Ok(_) if injected > 0 => Ok(Decoded::Messages(injected)),
            Ok(_) => match written {
                Some(m) => {
                    out.push(&m);
                    Ok(Decoded::Messages(1))
                }
                None if message_bytes => Ok(Decoded::Record),
                None => {
                    out.push_encoded(bytes);
                    Ok(Decoded::Messages(1))
                }
            },
            Err(t) => {
                tracing::error!("Decoder '{}' terminated: {}", self.name, t.reason);
                out.clear();
                out.push(&termination_message(&self.name, &t.reason));
                self.terminated = Some(t.reason.clone());
                Err(DecodeError(format!(
                    "SandboxDecoder has been terminated: {}",
                    t.reason
                )))
            }
        }
    }

    fn report(&self, sink: &mut dyn ReportSink) {
        report(sink, &self.sb, &self.timing);
    }
}

fn payload_text<'a>(view: &'a MessageView<'a>) -> Cow<'a, str> {
    String::from_utf8_lossy(view.payload())
}

impl Drop for SandboxDecoder {
    fn drop(&mut self) {
        if self.preserve
            && self.terminated.is_none()
            && let Err(e) = self.sb.preserve()
        {
            tracing::warn!("Decoder '{}': {e}", self.name);
        }
    }
}

#[cfg(test)]
mod linux_stats_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::testing::doc_sample;
    use crate::sandbox::testing::script_dir;
    use hekate_model::message::Message;

    fn decoder(script: &str) -> Box<dyn Decoder> {
        let dir = script_dir(script);
        let toml = format!(
            "[hekate]\nshare_dir = \"{}\"\n[d]\ntype = \"SandboxDecoder\"\nfilename = \"script.lua\"\n[d.config]\nsep = \" \"\n",
            dir.display()
        );
        let config = hekate_config::Config::from_str(&toml, "t.toml").unwrap();
        let built = std::collections::HashMap::new();
        let ctx = BuildContext::new(&config.global, &built);
        match build(config.plugin("d").unwrap(), &ctx).unwrap() {
            Built::Decoder(d) => d.new_decoder(),
            _ => unreachable!(),
        }
    }

    const SRC: RecordSource<'static> = RecordSource {
        input: "lines",
        hostname: "web1",
        message_bytes: false,
        msg_type: None,
        fields: &[],
    };

    #[test]
    fn doc_sample_parses() {
        let e = crate::common::testing::build(&doc_sample(include_str!("sandbox.rs"))).unwrap_err();
        assert!(e.contains("lua_decoders/nginx_access.lua"), "{e}");
    }

    #[test]
    fn lines_become_messages_with_fields() {
        let mut d = decoder(
            r#"local sep = read_config("sep")
            function process_message()
                local p = read_message("Payload")
                local k, v = p:match("^(%w+)" .. sep .. "(%d+)")
                if not k then return -1, "no match" end
                inject_message({Type = "kv", Fields = {key = k, value = tonumber(v)}})
                return 0
            end"#,
        );
        let mut out = DecodedMessages::default();
        assert_eq!(
            d.decode(b"answer 42\n", &SRC, &mut out),
            Ok(Decoded::Messages(1))
        );
        let m = Message::decode_bytes(out.iter().next().unwrap()).unwrap();
        assert_eq!(m.r#type.as_deref(), Some("kv"));
        // Headers the script did not set come from the original message.
        assert_eq!(m.logger.as_deref(), Some("lines"));
        assert_eq!(m.hostname.as_deref(), Some("web1"));
        assert_eq!(
            m.find_first_field("key").unwrap().value_string,
            ["answer".to_string()]
        );
        out.clear();
        let e = d.decode(b"garbage", &SRC, &mut out).unwrap_err();
        assert_eq!(e.0, "Failed parsing: no match payload: garbage");
        assert!(out.is_empty());
    }

    #[test]
    fn nothing_injected_passes_the_message_on() {
        let mut d = decoder(
            r#"function process_message()
                if read_message("Payload") == "w" then write_message("Type", "written") end
                return 0
            end"#,
        );
        let mut out = DecodedMessages::default();
        d.decode(b"x", &SRC, &mut out).unwrap();
        let v = MessageView::new(out.iter().next().unwrap()).unwrap();
        assert_eq!(v.payload(), b"x");
        out.clear();
        d.decode(b"w", &SRC, &mut out).unwrap();
        let v = MessageView::new(out.iter().next().unwrap()).unwrap();
        assert_eq!(v.msg_type(), b"written");
        let mut framed = SRC;
        framed.message_bytes = true;
        let msg = Message::new_now().to_bytes();
        out.clear();
        assert_eq!(d.decode(&msg, &framed, &mut out), Ok(Decoded::Record));
    }

    #[test]
    fn termination_is_announced_once_and_later_records_fail() {
        let mut d = decoder("function process_message() error('boom') end");
        let mut out = DecodedMessages::default();
        let e = d.decode(b"x", &SRC, &mut out).unwrap_err();
        assert!(e.0.contains("boom"), "{e}");
        let v = MessageView::new(out.iter().next().unwrap()).unwrap();
        assert_eq!(v.msg_type(), b"heka.sandbox-terminated");
        out.clear();
        assert!(d.decode(b"x", &SRC, &mut out).is_err());
        assert!(out.is_empty());
    }
}
