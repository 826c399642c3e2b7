//! SandboxInput: a Heka Lua input. The script's `process_message()` produces messages with
//! `inject_message`; it runs once at start and then every `ticker_interval` seconds (with no
//! ticker it runs once: a single run). Its environment is the looser one of inputs and outputs
//! (`io` and most of `os`, reference §5.4), without an instruction limit.
//!
//! ```toml
//! [loadavg]
//! type = "SandboxInput"
//! filename = "lua_inputs/loadavg.lua"
//! ticker_interval = 10
//!
//! [loadavg.config]
//! path = "/proc/loadavg"
//! ```
//!
//! Options: the common sandbox options (`plugins/src/sandbox.rs`) and the common input options
//! `ticker_interval` and `can_exit` (false). The input runs on one core; each run happens on that
//! core between other work, and what it injects is routed when the run returns, so keep a run
//! short (poll, don't loop forever).
//!
//! The report entry of the input carries the sandbox's fields (Memory, MaxMemory,
//! ProcessMessageCount — the runs —, InjectMessageCount, ProcessMessageAvgDuration — the time of
//! a run —, …), brought up to date after each run.
//!
//! A negative status is logged and counted (`ProcessMessageFailures`). A sandbox that
//! terminates injects a `heka.sandbox-terminated` message and stops; with `can_exit = false`
//! hekate then shuts down, as hekad does.

use std::sync::Arc;
use std::time::Duration;

use hekate_config::{ConfigError, PluginSection};
use hekate_engine::plugin::{
    BuildContext, Built, InputPlacement, InputPlugin, LocalBoxFuture, PluginError, PluginType,
};
use hekate_engine::plugin::{FieldCollector, InputContext};
use hekate_sandbox::{InjectError, Outcome, PluginType as Kind, SandboxHost, termination_message};

use crate::sandbox::{SandboxSettings, Timing, report};

/// The registry entry.
pub const TYPE: PluginType = PluginType {
    name: "SandboxInput",
    source: include_str!("sandbox.rs"),
    options: crate::sandbox::script_options,
    default_matcher: None,
    build,
};

#[derive(Debug)]
struct SandboxInputPlugin {
    settings: SandboxSettings,
    ticker: Option<Duration>,
    can_exit: bool,
}

fn build(section: &PluginSection, ctx: &BuildContext<'_>) -> Result<Built, ConfigError> {
    let (settings, _) = SandboxSettings::from_section(section, ctx, Kind::Input, None)?;
    let common = section.input();
    Ok(Built::Input(Arc::new(SandboxInputPlugin {
        settings,
        ticker: common
            .and_then(|i| i.ticker_interval)
            .filter(|d| !d.is_zero()),
        can_exit: common.is_some_and(|i| i.can_exit),
    })))
}

/// Injected messages are routed at once (they go into the lanes when the run returns).
struct InputHost<'a> {
    ctx: &'a InputContext,
}

impl SandboxHost for InputHost<'_> {
    fn inject(&mut self, msg: &[u8]) -> Result<(), InjectError> {
        if self.ctx.is_stopped() {
            return Err(InjectError::Aborted);
        }
        self.ctx
            .deliver(msg)
            .map_err(|e| InjectError::Other(format!("protobuf unmarshal failed: {e}")))
    }
}

impl InputPlugin for SandboxInputPlugin {
    fn placement(&self) -> InputPlacement {
        InputPlacement::OneShard
    }

    fn start(
        &self,
        ctx: InputContext,
    ) -> Result<LocalBoxFuture<'static, Result<(), PluginError>>, PluginError> {
        let name = ctx.name.to_string();
        let mut sb = self
            .settings
            .sandbox(Kind::Input, &name, &name)
            .map_err(|e| PluginError::Other(e.to_string()))?;
        let ticker = self.ticker;
        let can_exit = self.can_exit;
        let preserve = self.settings.config.preserve_data;
        Ok(Box::pin(async move {
            // The shard polls a new task at once: let it finish starting (and report ready)
            // before the script's first run, which may be long.
            futures_lite::future::yield_now().await;
            // every run is timed
            let mut timing = Timing::new(1);
            let result = loop {
                let started = timing.start();
                let r = sb.run_input(&mut InputHost { ctx: &ctx });
                timing.end(started);
                let mut fields = FieldCollector::default();
                report(&mut fields, &sb, &timing);
                ctx.counters().set_extra(fields.fields);
                ctx.flush().await;
                match r {
                    Ok(Outcome::Failed { status, message }) => {
                        hekate_engine::plugin::log::warn_limited!(
                            "Input '{name}': process_message() returned {status}{}",
                            message.map(|m| format!(": {m}")).unwrap_or_default()
                        )
                    }
                    Ok(_) => {}
                    Err(t) => {
                        let _ = ctx.deliver(&termination_message(&name, &t.reason).to_bytes());
                        ctx.flush().await;
                        if !can_exit {
                            ctx.request_shutdown(format!(
                                "Input '{name}' terminated and may not exit (can_exit = false)"
                            ));
                        }
                        break Err(PluginError::Other(format!("terminated: {}", t.reason)));
                    }
                }
                let Some(every) = ticker else {
                    tracing::info!("Input '{name}': single run completed");
                    break Ok(());
                };
                let stopped = ctx.sleep_unless_stopped(every).await;
                if stopped {
                    break Ok(());
                }
            };
            if preserve
                && result.is_ok()
                && let Err(e) = sb.preserve()
            {
                tracing::error!("Input '{name}': {e}");
            }
            result
        }))
    }
}

#[cfg(test)]
mod tests {
    use crate::common::testing::{build, doc_sample};

    #[test]
    fn doc_sample_parses() {
        let sample = doc_sample(include_str!("sandbox.rs"));
        let pipeline = build(&sample).unwrap();
        assert!(pipeline.plugins.iter().any(|p| p.name == "loadavg"));
    }
}
