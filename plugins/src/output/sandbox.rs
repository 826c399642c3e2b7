//! SandboxOutput: a Heka Lua output. The script's `process_message()` delivers each matched
//! message itself; its environment is the looser one of inputs and outputs (`io` and most of
//! `os` available, reference §5.4), and it cannot inject. With a `ticker_interval`,
//! `timer_event(ns)` runs every interval (e.g. to flush what the script buffers).
//!
//! ```toml
//! [archive]
//! type = "SandboxOutput"
//! filename = "lua_outputs/archive.lua"
//! message_matcher = "Type == 'nginx.access'"
//! ticker_interval = 60
//!
//! [archive.config]
//! path = "/var/log/archive.log"
//! ```
//!
//! Options: the common sandbox options (`plugins/src/sandbox.rs`), the common output options
//! (its `encoder` is not used), `timer_event_on_shutdown` (false). One instance, on a home core,
//! sees every matching message. The script runs on that core between batches: keep its I/O
//! short.
//!
//! A negative status counts the message as dropped (logged). A sandbox that terminates is taken
//! out of routing with a `heka.sandbox-terminated` message; with `can_exit = false` (the
//! default for outputs, as in Heka) hekate then shuts down.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hekate_config::{ConfigError, PluginSection};
use hekate_engine::plugin::{
    BuildContext, Built, Delivery, LocalBoxFuture, Output, OutputError, OutputPlugin, Placement,
    PluginContext, PluginError, PluginType, ProcessError, ReportSink, Termination,
};
use hekate_model::writer::now_ns;
use hekate_sandbox::{InjectError, Outcome, PluginType as Kind, Sandbox, SandboxHost};

use crate::sandbox::{SandboxSettings, Timing, report};

/// The registry entry.
pub const TYPE: PluginType = PluginType {
    name: "SandboxOutput",
    source: include_str!("sandbox.rs"),
    options: crate::sandbox::output_script_options,
    default_matcher: None,
    build,
};

#[derive(Debug)]
struct SandboxOutputPlugin {
    settings: SandboxSettings,
    ticker: Option<Duration>,
    timer_event_on_shutdown: bool,
    can_exit: bool,
}

fn build(section: &PluginSection, ctx: &BuildContext<'_>) -> Result<Built, ConfigError> {
    let (settings, opts) = SandboxSettings::from_section(section, ctx, Kind::Output, None)?;
    let common = section.output();
    Ok(Built::Output(Arc::new(SandboxOutputPlugin {
        settings,
        ticker: common
            .and_then(|o| o.ticker_interval)
            .filter(|d| !d.is_zero()),
        timer_event_on_shutdown: opts.timer_event_on_shutdown,
        can_exit: common.and_then(|o| o.can_exit).unwrap_or(false),
    })))
}

impl OutputPlugin for SandboxOutputPlugin {
    fn placement(&self) -> Placement {
        Placement::Single
    }

    fn new_output(&self, ctx: &PluginContext) -> Result<Box<dyn Output>, PluginError> {
        let sb = self
            .settings
            .sandbox(Kind::Output, &ctx.name, &ctx.name)
            .map_err(|e| PluginError::Other(e.to_string()))?;
        if self.ticker.is_some() && !sb.has_timer_event() {
            return Err(PluginError::Other(format!(
                "a ticker_interval is set but the script {} has no timer_event() function",
                self.settings.script.display()
            )));
        }
        Ok(Box::new(SandboxOutput {
            sb,
            name: ctx.name.clone(),
            ticker: self.ticker,
            next_tick: self.ticker.map(|t| Instant::now() + t),
            timer_event_on_shutdown: self.timer_event_on_shutdown,
            preserve: self.settings.config.preserve_data,
            can_exit: self.can_exit,
            terminated: None,
            processed: 0,
            timing: Timing::new(self.settings.sample_every),
        }))
    }
}

struct SandboxOutput {
    sb: Sandbox,
    name: String,
    ticker: Option<Duration>,
    next_tick: Option<Instant>,
    timer_event_on_shutdown: bool,
    preserve: bool,
    can_exit: bool,
    terminated: Option<String>,
    /// Messages delivered since the runtime last asked.
    processed: u64,
    timing: Timing,
}

/// Outputs cannot inject.
struct OutputHost;

impl SandboxHost for OutputHost {
    fn inject(&mut self, _msg: &[u8]) -> Result<(), InjectError> {
        Err(InjectError::Other("outputs cannot inject messages".into()))
    }
}

impl SandboxOutput {
    fn timer(&mut self) -> Result<(), String> {
        let started = Instant::now();
        let r = self.sb.timer_event(now_ns(), &mut OutputHost);
        self.timing.timer(started);
        match r {
            Ok(_) => Ok(()),
            Err(t) => {
                self.terminated = Some(t.reason.clone());
                Err(t.reason)
            }
        }
    }
}

impl Output for SandboxOutput {
    fn process(&mut self, msg: &Delivery<'_>) -> Result<(), ProcessError> {
        let started = self.timing.start();
        let r = self.sb.process_message(&msg.view, &mut OutputHost);
        self.timing.end(started);
        match r {
            Ok(Outcome::Failed { status, message }) => Err(ProcessError(format!(
                "process_message() returned {status}{}",
                message.map(|m| format!(": {m}")).unwrap_or_default()
            ))),
            Ok(_) => {
                self.processed += 1;
                Ok(())
            }
            Err(t) => {
                self.terminated = Some(t.reason.clone());
                Err(ProcessError(t.reason))
            }
        }
    }

    fn must_flush(&self) -> bool {
        false
    }

    /// The timer is driven as a flush: due when the ticker interval has passed.
    fn should_flush(&self, now: Instant) -> bool {
        self.terminated.is_none() && self.next_tick.is_some_and(|t| now >= t)
    }

    fn flush_deadline(&self) -> Option<Instant> {
        self.next_tick.filter(|_| self.terminated.is_none())
    }

    fn flush(&mut self) -> LocalBoxFuture<'_, Result<(), OutputError>> {
        let result = match (self.next_tick, self.ticker) {
            (Some(t), Some(every)) if Instant::now() >= t && self.terminated.is_none() => {
                self.next_tick = Some((t + every).max(Instant::now()));
                self.timer().map_err(|reason| OutputError {
                    message: reason,
                    dropped: 0,
                })
            }
            _ => Ok(()),
        };
        Box::pin(async move { result })
    }

    fn buffered(&self) -> u64 {
        0
    }

    fn take_written(&mut self) -> u64 {
        std::mem::take(&mut self.processed)
    }

    fn close(&mut self) -> LocalBoxFuture<'_, ()> {
        if self.terminated.is_none() {
            if self.timer_event_on_shutdown
                && let Err(e) = self.timer()
            {
                tracing::warn!("Output '{}': timer_event at shutdown: {e}", self.name);
            }
            if self.preserve
                && self.terminated.is_none()
                && let Err(e) = self.sb.preserve()
            {
                tracing::warn!("Output '{}': {e}", self.name);
            }
        }
        Box::pin(async {})
    }

    fn report(&self, sink: &mut dyn ReportSink) {
        report(sink, &self.sb, &self.timing);
    }

    fn termination(&self) -> Option<Termination> {
        self.terminated.as_ref().map(|reason| Termination {
            reason: reason.clone(),
            can_exit: self.can_exit,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::testing::{build as build_config, doc_sample};
    use crate::sandbox::testing::script_dir;
    use hekate_model::message::{Message, MessageView};

    #[test]
    fn doc_sample_builds() {
        // The script is loaded when the output starts (its global code may do I/O).
        let mut sample = doc_sample(include_str!("sandbox.rs"));
        sample.push_str("\n[i]\ntype = \"TcpInput\"\naddress = \"127.0.0.1:0\"\n");
        let p = build_config(&sample).unwrap();
        assert!(p.plugins.iter().any(|p| p.name == "archive"));
    }

    #[test]
    fn writes_with_io_and_runs_its_timer_as_a_flush() {
        let dir = script_dir(
            r#"local path = read_config("path")
            n = 0
            function process_message()
                local f = io.open(path, "a")
                f:write(read_message("Payload"), "\n")
                f:close()
                n = n + 1
                return 0
            end
            function timer_event(ns)
                local f = io.open(path, "a") f:write("tick ", n, "\n") f:close()
            end"#,
        );
        let out_path = dir.join("out.txt");
        let toml = format!(
            "[hekate]\nshare_dir = \"{d}\"\n[o]\ntype = \"SandboxOutput\"\nfilename = \"script.lua\"\nmessage_matcher = \"TRUE\"\nticker_interval = 1\ntimer_event_on_shutdown = true\n[o.config]\npath = \"{p}\"\n",
            d = dir.display(),
            p = out_path.display()
        );
        let config = hekate_config::Config::from_str(&toml, "t.toml").unwrap();
        let built = std::collections::HashMap::new();
        let ctx = BuildContext::new(&config.global, &built);
        let Built::Output(plugin) = build(config.plugin("o").unwrap(), &ctx).unwrap() else {
            unreachable!()
        };
        let pctx = PluginContext {
            name: "o".into(),
            shard: 0,
            core: 0,
            shards: 1,
            hostname: "h".into(),
            max_message_size: 65536,
        };
        let mut o = plugin.new_output(&pctx).unwrap();
        let mut m = Message::new_now();
        m.payload = Some("hello".into());
        let bytes = m.to_bytes();
        o.process(&Delivery {
            view: MessageView::new(&bytes).unwrap(),
            loops: 0,
        })
        .unwrap();
        assert_eq!(o.take_written(), 1);
        assert!(!o.should_flush(Instant::now()));
        assert!(o.should_flush(Instant::now() + Duration::from_secs(2)));
        futures_lite::future::block_on(o.close());
        assert_eq!(
            std::fs::read_to_string(&out_path).unwrap(),
            "hello\ntick 1\n"
        );
    }
}
