//! SandboxEncoder: a Heka Lua encoder. For each message an output encodes, the script's
//! `process_message()` produces the bytes to write:
//!
//! - `inject_payload(type, name, …)`: the payload text (the last call wins);
//! - `inject_message(t)`: the protobuf encoding of `t`;
//! - nothing injected and status 0: the message itself, protobuf-encoded (as changed by
//!   `write_message`, which works on a copy);
//! - status -2: nothing to write for this message (not an error);
//! - a negative status: `Failed serializing: <error>`, the message is counted as dropped.
//!
//! ```toml
//! [line]
//! type = "SandboxEncoder"
//! filename = "lua_encoders/line.lua"
//!
//! [line.config]
//! separator = "|"
//! ```
//!
//! Options: the common sandbox options (`plugins/src/sandbox.rs`). The sandbox's report fields
//! (Memory, MaxInstructions, ProcessMessageCount, ProcessMessageAvgDuration, …) appear in the
//! report entry of the output that uses the encoder. Each output instance has its own encoder
//! sandbox; with `preserve_data`, each keeps its own file (`<name>.data`, then
//! `<name>_1.data`, …). A terminated encoder sandbox fails every later message of its output
//! (logged once; the output counts them as dropped).

use std::sync::Arc;

use hekate_config::{ConfigError, PluginSection};
use hekate_engine::plugin::{
    BuildContext, Built, Delivery, EncodeError, Encoder, EncoderPlugin, PluginType, ReportSink,
};
use hekate_sandbox::{InjectError, Outcome, PluginType as Kind, Sandbox, SandboxHost};

use crate::sandbox::{InstanceNames, SandboxSettings, Timing, report};

/// The registry entry.
pub const TYPE: PluginType = PluginType {
    name: "SandboxEncoder",
    source: include_str!("sandbox.rs"),
    options: crate::sandbox::script_options,
    default_matcher: None,
    build,
};

#[derive(Debug)]
struct SandboxEncoderPlugin {
    name: String,
    settings: SandboxSettings,
    instances: InstanceNames,
}

fn build(section: &PluginSection, ctx: &BuildContext<'_>) -> Result<Built, ConfigError> {
    let (settings, _) = SandboxSettings::from_section(section, ctx, Kind::Encoder, None)?;
    settings.check(section, Kind::Encoder, false)?;
    Ok(Built::Encoder(Arc::new(SandboxEncoderPlugin {
        name: section.name().to_string(),
        settings,
        instances: InstanceNames::default(),
    })))
}

impl EncoderPlugin for SandboxEncoderPlugin {
    fn new_encoder(&self) -> Box<dyn Encoder> {
        let instance = self.instances.next(&self.name);
        let sb = self.settings.sandbox(Kind::Encoder, &self.name, &instance);
        if let Err(e) = &sb {
            tracing::error!("Encoder '{}' cannot start: {e}", self.name);
        }
        Box::new(SandboxEncoder {
            sb: sb.map_err(|e| format!("encoder '{}' could not start: {e}", self.name)),
            name: self.name.clone(),
            preserve: self.settings.config.preserve_data,
            terminated: None,
            out: Vec::new(),
            timing: Timing::new(self.settings.sample_every),
        })
    }
}

/// One running SandboxEncoder.
struct SandboxEncoder {
    sb: Result<Sandbox, String>,
    name: String,
    preserve: bool,
    terminated: Option<String>,
    out: Vec<u8>,
    timing: Timing,
}

/// Takes the encoder output: the last one of a call wins, as in hekad.
struct EncoderHost<'a> {
    out: &'a mut Vec<u8>,
    given: bool,
}

impl SandboxHost for EncoderHost<'_> {
    fn inject(&mut self, msg: &[u8]) -> Result<(), InjectError> {
        self.output(msg)
    }

    fn output(&mut self, bytes: &[u8]) -> Result<(), InjectError> {
        self.out.clear();
        self.out.extend_from_slice(bytes);
        self.given = true;
        Ok(())
    }
}

impl Encoder for SandboxEncoder {
    fn encode<'a>(&'a mut self, msg: &'a Delivery<'a>) -> Result<Option<&'a [u8]>, EncodeError> {
        let sb = match &mut self.sb {
            Ok(sb) => sb,
            Err(e) => return Err(EncodeError(e.clone())),
        };
        if let Some(reason) = &self.terminated {
            return Err(EncodeError(format!(
                "SandboxEncoder has been terminated: {reason}"
            )));
        }
        let mut host = EncoderHost {
            out: &mut self.out,
            given: false,
        };
        let started = self.timing.start();
        let result = sb.process_message(&msg.view, &mut host);
        self.timing.end(started);
        let given = host.given;
        let written = sb.take_written_message();
        match result {
            Ok(Outcome::Skip) => Ok(None),
            Ok(Outcome::Failed { message, .. }) => Err(EncodeError(format!(
                "Failed serializing: {}",
                message.unwrap_or_default()
            ))),
            Ok(Outcome::Aborted) => Err(EncodeError("aborted".into())),
            Ok(Outcome::Ok) if given => Ok(Some(&self.out)),
            Ok(Outcome::Ok) => match written {
                Some(m) => {
                    self.out = m.to_bytes();
                    Ok(Some(&self.out))
                }
                None => Ok(Some(msg.bytes())),
            },
            Err(t) => {
                tracing::error!("Encoder '{}' terminated: {}", self.name, t.reason);
                self.terminated = Some(t.reason.clone());
                Err(EncodeError(format!(
                    "SandboxEncoder has been terminated: {}",
                    t.reason
                )))
            }
        }
    }

    fn report(&self, sink: &mut dyn ReportSink) {
        if let Ok(sb) = &self.sb {
            report(sink, sb, &self.timing);
        }
    }
}

impl Drop for SandboxEncoder {
    fn drop(&mut self) {
        if let Ok(sb) = &mut self.sb
            && self.preserve
            && self.terminated.is_none()
            && let Err(e) = sb.preserve()
        {
            tracing::warn!("Encoder '{}': {e}", self.name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::testing::{build as build_config, doc_sample};
    use crate::sandbox::testing::script_dir;
    use hekate_model::message::{Message, MessageView};

    fn encoder(script: &str) -> Box<dyn Encoder> {
        let dir = script_dir(script);
        let toml = format!(
            "[hekate]\nshare_dir = \"{}\"\n[e]\ntype = \"SandboxEncoder\"\nfilename = \"script.lua\"\n",
            dir.display()
        );
        let config = hekate_config::Config::from_str(&toml, "t.toml").unwrap();
        let built = std::collections::HashMap::new();
        let ctx = BuildContext::new(&config.global, &built);
        match build(config.plugin("e").unwrap(), &ctx).unwrap() {
            Built::Encoder(e) => e.new_encoder(),
            _ => unreachable!(),
        }
    }

    #[test]
    fn doc_sample_parses() {
        let e = build_config(&doc_sample(include_str!("sandbox.rs"))).unwrap_err();
        assert!(e.contains("lua_encoders/line.lua"), "{e}");
    }

    #[test]
    fn payloads_skips_and_failures() {
        let mut e = encoder(
            r#"function process_message()
                local p = read_message("Payload")
                if p == "skip" then return -2 end
                if p == "bad" then return -1, "cannot" end
                if p == "same" then return 0 end
                inject_payload("txt", "", "<", p, ">")
                return 0
            end"#,
        );
        let enc = |e: &mut Box<dyn Encoder>, payload: &str| -> Result<Option<Vec<u8>>, String> {
            let mut m = Message::new_now();
            m.payload = Some(payload.into());
            let bytes = m.to_bytes();
            let d = Delivery {
                view: MessageView::new(&bytes).unwrap(),
                loops: 0,
            };
            e.encode(&d).map(|o| o.map(<[u8]>::to_vec)).map_err(|e| e.0)
        };
        assert_eq!(enc(&mut e, "x"), Ok(Some(b"<x>".to_vec())));
        assert_eq!(enc(&mut e, "skip"), Ok(None));
        assert_eq!(
            enc(&mut e, "bad"),
            Err("Failed serializing: cannot".to_string())
        );
        let same = enc(&mut e, "same").unwrap().unwrap();
        assert_eq!(
            Message::decode_bytes(&same).unwrap().payload.as_deref(),
            Some("same")
        );
    }
}
