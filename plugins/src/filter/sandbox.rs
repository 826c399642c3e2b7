//! SandboxFilter: a Heka Lua filter. Each matched message is handed to the script's
//! `process_message()`; what it injects (`inject_message`, `inject_payload`) is routed like any
//! message: `inject_message` Types get the `heka.sandbox.` prefix, `inject_payload` makes a
//! `heka.sandbox-output` message, Logger = the filter's name (reference §5.2). With a
//! `ticker_interval`, `timer_event(ns)` runs every interval.
//!
//! ```toml
//! [Counter]
//! type = "SandboxFilter"
//! filename = "lua_filters/counter.lua"
//! message_matcher = "Type == 'nginx.access'"
//! ticker_interval = 60
//! preserve_data = true
//!
//! [Counter.config]
//! title = "Requests"
//! ```
//!
//! Options: the common sandbox options (`plugins/src/sandbox.rs`: `filename`, `preserve_data`,
//! limits, `module_directory`, `[X.config]`), the common filter options, and:
//!
//! - `timer_event_on_shutdown` (false): call `timer_event` once more at shutdown, after the
//!   last message.
//! - `placement` (`"single"`): `"single"` runs one sandbox on a home core that sees every
//!   matching message, from every shard (Heka's semantics). `"per_shard"` runs one sandbox per
//!   worker core, each seeing only the messages that core received: no ring hop, so use it
//!   for scripts that keep no state across messages (a transformer, a router) or whose
//!   outputs may be merged downstream. Each per-shard instance has its own timer and its own
//!   preserved data (`<name>_<shard>.data`).
//! - `can_exit` (true): when false, a terminated sandbox shuts hekate down.
//!
//! A sandbox that breaks a limit, raises an error or returns a fatal status is terminated: it
//! is taken out of routing, a `heka.sandbox-terminated` message (Field `plugin`, Payload = the
//! reason) is injected and the rest of the pipeline carries on; messages still queued for it
//! are counted as dropped. A negative status counts as a failure (`ProcessMessageFailures`)
//! and its message, if any, is logged.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hekate_config::{ConfigError, PluginSection};
use hekate_engine::plugin::{
    BuildContext, Built, Delivery, Filter, FilterPlugin, Inject, Placement, PluginContext,
    PluginError, PluginType, ProcessError, ReportSink, Termination,
};
use hekate_model::writer::now_ns;
use hekate_sandbox::{InjectError, Outcome, PluginType as Kind, Sandbox, SandboxHost};

use crate::sandbox::{ManagedLimits, SandboxSettings, Timing, inject_error, report};

/// The registry entry.
pub const TYPE: PluginType = PluginType {
    name: "SandboxFilter",
    source: include_str!("sandbox.rs"),
    options: crate::sandbox::filter_script_options,
    default_matcher: None,
    build,
};

/// A configured SandboxFilter.
#[derive(Debug)]
pub(crate) struct SandboxFilterPlugin {
    settings: SandboxSettings,
    placement: Placement,
    ticker: Option<Duration>,
    timer_event_on_shutdown: bool,
    can_exit: bool,
}

fn build(section: &PluginSection, ctx: &BuildContext<'_>) -> Result<Built, ConfigError> {
    Ok(Built::Filter(Arc::new(build_plugin(section, ctx, None)?)))
}

/// Builds a SandboxFilter; `managed` replaces its script and limits (SandboxManagerFilter).
pub(crate) fn build_plugin(
    section: &PluginSection,
    ctx: &BuildContext<'_>,
    managed: Option<&ManagedLimits>,
) -> Result<SandboxFilterPlugin, ConfigError> {
    let (settings, opts) = SandboxSettings::from_section(section, ctx, Kind::Filter, managed)?;
    let placement = match opts.placement.as_deref() {
        None | Some("single") => Placement::Single,
        Some("per_shard") => Placement::PerShard,
        Some(other) => {
            return Err(section.error_at_value(
                "placement",
                format!(
                    "placement `{other}` of section [{}] is not one of \"single\", \"per_shard\"",
                    section.name()
                ),
            ));
        }
    };
    let common = section.filter();
    let ticker = common
        .and_then(|f| f.ticker_interval)
        .filter(|d| !d.is_zero());
    settings.check(section, Kind::Filter, ticker.is_some())?;
    Ok(SandboxFilterPlugin {
        settings,
        placement,
        ticker,
        timer_event_on_shutdown: opts.timer_event_on_shutdown,
        can_exit: common.and_then(|f| f.can_exit).unwrap_or(true),
    })
}

impl FilterPlugin for SandboxFilterPlugin {
    fn placement(&self) -> Placement {
        self.placement
    }

    fn new_filter(&self, ctx: &PluginContext) -> Result<Box<dyn Filter>, PluginError> {
        let instance = match self.placement {
            Placement::Single => ctx.name.clone(),
            Placement::PerShard => format!("{}-{}", ctx.name, ctx.shard),
        };
        let sb = self
            .settings
            .sandbox(Kind::Filter, &ctx.name, &instance)
            .map_err(|e| PluginError::Other(e.to_string()))?;
        Ok(Box::new(SandboxFilter {
            sb,
            name: ctx.name.clone(),
            ticker: self.ticker,
            timer_event_on_shutdown: self.timer_event_on_shutdown,
            preserve: self.settings.config.preserve_data,
            can_exit: self.can_exit,
            terminated: None,
            timing: Timing::new(self.settings.sample_every),
        }))
    }
}

/// One running SandboxFilter.
struct SandboxFilter {
    sb: Sandbox,
    name: String,
    ticker: Option<Duration>,
    timer_event_on_shutdown: bool,
    preserve: bool,
    can_exit: bool,
    terminated: Option<String>,
    timing: Timing,
}

/// What the sandbox injects goes to the runtime's injector (loop and circular-reference checks).
struct FilterHost<'a> {
    inject: &'a mut dyn Inject,
}

impl SandboxHost for FilterHost<'_> {
    fn inject(&mut self, msg: &[u8]) -> Result<(), InjectError> {
        self.inject.inject_encoded(msg).map_err(inject_error)
    }
}

impl SandboxFilter {
    fn outcome(
        &mut self,
        call: &str,
        r: Result<Outcome, hekate_sandbox::Terminated>,
    ) -> Result<(), ProcessError> {
        match r {
            Ok(Outcome::Failed {
                message: Some(m), ..
            }) => {
                hekate_engine::plugin::log::warn_limited!("Filter '{}': {call}: {m}", self.name);
                Ok(())
            }
            Ok(_) => Ok(()),
            Err(t) => {
                self.terminated = Some(t.reason.clone());
                Err(ProcessError(t.reason))
            }
        }
    }

    fn run_timer(&mut self, ns: i64, inject: &mut dyn Inject) -> Result<(), ProcessError> {
        let started = Instant::now();
        let r = self.sb.timer_event(ns, &mut FilterHost { inject });
        self.timing.timer(started);
        self.outcome("timer_event", r)
    }
}

impl Filter for SandboxFilter {
    #[inline]
    fn process(&mut self, msg: &Delivery<'_>, inject: &mut dyn Inject) -> Result<(), ProcessError> {
        let started = self.timing.start();
        let r = self
            .sb
            .process_message(&msg.view, &mut FilterHost { inject });
        self.timing.end(started);
        self.outcome("process_message", r)
    }

    fn ticker_interval(&self) -> Option<Duration> {
        self.ticker
    }

    fn timer_event(&mut self, now_ns: i64, inject: &mut dyn Inject) -> Result<(), ProcessError> {
        self.run_timer(now_ns, inject)
    }

    fn shutdown(&mut self, inject: &mut dyn Inject) {
        if self.terminated.is_some() {
            return;
        }
        if self.timer_event_on_shutdown
            && let Err(e) = self.run_timer(now_ns(), inject)
        {
            tracing::warn!("Filter '{}': timer_event at shutdown: {e}", self.name);
        }
        if self.preserve
            && self.terminated.is_none()
            && let Err(e) = self.sb.preserve()
        {
            tracing::warn!("Filter '{}': {e}", self.name);
        }
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
    use crate::common::testing::{build, doc_sample};
    use crate::sandbox::testing::script_dir;
    use hekate_model::message::{Message, MessageAccess as _, MessageView};

    #[derive(Default)]
    struct Collect(Vec<Vec<u8>>);

    impl Inject for Collect {
        fn inject(&mut self, msg: &Message) -> Result<(), ProcessError> {
            self.0.push(msg.to_bytes());
            Ok(())
        }
        fn inject_encoded(&mut self, bytes: &[u8]) -> Result<(), ProcessError> {
            self.0.push(bytes.to_vec());
            Ok(())
        }
    }

    fn context(name: &str) -> PluginContext {
        PluginContext {
            name: name.into(),
            shard: 0,
            core: 0,
            shards: 1,
            hostname: "h".into(),
            max_message_size: 65536,
        }
    }

    fn filter(script: &str, extra: &str) -> (Box<dyn Filter>, SandboxFilterPlugin) {
        let dir = script_dir(script);
        let toml = format!(
            "[hekate]\nshare_dir = \"{}\"\nbase_dir = \"{}\"\n[f]\ntype = \"SandboxFilter\"\nfilename = \"script.lua\"\nmessage_matcher = \"TRUE\"\n{extra}\n[i]\ntype = \"TcpInput\"\naddress = \"127.0.0.1:0\"\n",
            dir.display(),
            dir.display()
        );
        let config = hekate_config::Config::from_str(&toml, "t.toml").unwrap();
        let section = config.plugin("f").unwrap();
        let built = std::collections::HashMap::new();
        let ctx = BuildContext::new(&config.global, &built);
        let plugin = build_plugin(section, &ctx, None).unwrap();
        (plugin.new_filter(&context("f")).unwrap(), plugin)
    }

    fn delivery(bytes: &[u8]) -> Delivery<'_> {
        Delivery {
            view: MessageView::new(bytes).unwrap(),
            loops: 0,
        }
    }

    #[test]
    fn doc_sample_parses() {
        let sample = doc_sample(include_str!("sandbox.rs"));
        let e = build(&sample).unwrap_err();
        // No script in the test environment: the error names it.
        assert!(e.contains("lua_filters/counter.lua"), "{e}");
    }

    #[test]
    fn counts_and_injects_on_timer() {
        let (mut f, _) = filter(
            r#"n = 0
            function process_message() n = n + 1 return 0 end
            function timer_event(ns) inject_payload("txt", "count", n) end"#,
            "ticker_interval = 1",
        );
        assert_eq!(f.ticker_interval(), Some(Duration::from_secs(1)));
        let msg = Message::new_now().to_bytes();
        let mut out = Collect::default();
        for _ in 0..3 {
            f.process(&delivery(&msg), &mut out).unwrap();
        }
        f.timer_event(0, &mut out).unwrap();
        let v = MessageView::new(&out.0[0]).unwrap();
        assert_eq!(v.msg_type(), b"heka.sandbox-output");
        assert_eq!(v.logger(), b"f");
        assert_eq!(v.payload(), b"3");
        let mut sink = hekate_engine::plugin::FieldCollector::default();
        f.report(&mut sink);
        let names: Vec<&str> = sink.fields.iter().map(|f| f.name.as_str()).collect();
        for want in [
            "Memory",
            "MaxMemory",
            "MaxInstructions",
            "MaxOutput",
            "ProcessMessageCount",
            "ProcessMessageFailures",
            "InjectMessageCount",
            "ProcessMessageSamples",
            "ProcessMessageAvgDuration",
            "TimerEventAvgDuration",
        ] {
            assert!(names.contains(&want), "{want} missing from {names:?}");
        }
    }

    #[test]
    fn a_runaway_script_terminates() {
        let (mut f, _) = filter(
            "function process_message() while true do end end",
            "can_exit = false",
        );
        let msg = Message::new_now().to_bytes();
        let mut out = Collect::default();
        assert!(f.termination().is_none());
        assert!(f.process(&delivery(&msg), &mut out).is_err());
        let t = f.termination().unwrap();
        assert!(t.reason.ends_with("instruction_limit exceeded"), "{t:?}");
        assert!(!t.can_exit);
    }

    #[test]
    fn scripts_that_cannot_run_are_refused_at_build() {
        let dir = script_dir("function process_message( return 0 end");
        let toml = format!(
            "[hekate]\nshare_dir = \"{}\"\n[f]\ntype = \"SandboxFilter\"\nfilename = \"script.lua\"\nmessage_matcher = \"TRUE\"\n[i]\ntype = \"TcpInput\"\naddress = \"127.0.0.1:0\"\n",
            dir.display()
        );
        let e = build(&toml).unwrap_err();
        assert!(e.contains("cannot be loaded"), "{e}");
        std::fs::write(
            dir.join("script.lua"),
            "function process_message() return 0 end",
        )
        .unwrap();
        let e = build(&format!("{toml}\n[f2]\ntype = \"SandboxFilter\"\nfilename = \"script.lua\"\nmessage_matcher = \"TRUE\"\nticker_interval = 5\n")).unwrap_err();
        assert!(e.contains("no timer_event()"), "{e}");
        let e = build(&toml.replace(
            "message_matcher",
            "placement = \"everywhere\"\nmessage_matcher",
        ))
        .unwrap_err();
        assert!(e.contains("per_shard"), "{e}");
    }

    #[test]
    fn per_shard_placement_is_chosen_in_config() {
        let (_, plugin) = filter(
            "function process_message() return 0 end",
            "placement = \"per_shard\"",
        );
        assert_eq!(plugin.placement(), Placement::PerShard);
    }
}
