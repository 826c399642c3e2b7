//! CounterFilter: counts the messages it matches and, every ticker interval, injects a
//! `heka.counter-output` message: `Got N messages. R msg/sec`. Every tenth tick it also injects
//! the aggregate of the last ten rates: `AGG Sum. Min: … Max: … Mean: …`.
//!
//! One instance sees every matched message (the shards send them over the ring mesh to its home
//! core). Its matcher must not select its own output, or each injection is refused as a circular
//! reference, as in Heka.
//!
//! ```toml
//! [CounterFilter]
//! message_matcher = "Type != 'heka.counter-output'"
//! ticker_interval = 5
//! ```
//!
//! Options: `ticker_interval` (5 s), plus the common filter options. A tick with no new message
//! injects nothing.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hekate_config::{ConfigError, PluginSection};
use hekate_engine::plugin::{
    BuildContext, Built, Delivery, Filter, FilterPlugin, Inject, NoOptions, Placement,
    PluginContext, PluginError, PluginType, ProcessError, ReportSink, options_of,
};
use hekate_model::message::Message;

/// The registry entry.
pub const TYPE: PluginType = PluginType {
    name: "CounterFilter",
    source: include_str!("counter.rs"),
    options: options_of::<NoOptions>,
    default_matcher: None,
    build,
};

#[derive(Debug)]
struct CounterFilterPlugin {
    ticker: Duration,
}

fn build(section: &PluginSection, _ctx: &BuildContext<'_>) -> Result<Built, ConfigError> {
    let _: NoOptions = section.options()?;
    let ticker = section
        .filter()
        .and_then(|f| f.ticker_interval)
        .unwrap_or(Duration::from_secs(5));
    Ok(Built::Filter(Arc::new(CounterFilterPlugin { ticker })))
}

impl FilterPlugin for CounterFilterPlugin {
    fn placement(&self) -> Placement {
        Placement::Single
    }

    fn new_filter(&self, ctx: &PluginContext) -> Result<Box<dyn Filter>, PluginError> {
        Ok(Box::new(CounterFilter {
            ticker: self.ticker,
            name: ctx.name.clone(),
            hostname: ctx.hostname.clone(),
            count: 0,
            last_count: 0,
            last_time: Instant::now(),
            rates: Vec::with_capacity(10),
        }))
    }
}

struct CounterFilter {
    ticker: Duration,
    name: String,
    hostname: String,
    count: u64,
    last_count: u64,
    last_time: Instant,
    rates: Vec<f64>,
}

impl CounterFilter {
    fn output(&self, payload: String) -> Message {
        let mut m = Message::new_now();
        m.r#type = Some("heka.counter-output".into());
        m.logger = Some(self.name.clone());
        m.hostname = Some(self.hostname.clone());
        m.pid = Some(std::process::id() as i32);
        m.payload = Some(payload);
        m
    }
}

impl Filter for CounterFilter {
    #[inline]
    fn process(
        &mut self,
        _msg: &Delivery<'_>,
        _inject: &mut dyn Inject,
    ) -> Result<(), ProcessError> {
        self.count += 1;
        Ok(())
    }

    fn ticker_interval(&self) -> Option<Duration> {
        Some(self.ticker)
    }

    fn timer_event(&mut self, _now_ns: i64, inject: &mut dyn Inject) -> Result<(), ProcessError> {
        let elapsed = self.last_time.elapsed();
        if elapsed.is_zero() || self.count == self.last_count {
            self.last_time = Instant::now();
            return Ok(());
        }
        self.last_time = Instant::now();
        let rate = (self.count - self.last_count) as f64 / elapsed.as_secs_f64();
        self.rates.push(rate);
        self.last_count = self.count;
        inject.inject(&self.output(format!("Got {} messages. {rate:.2} msg/sec", self.count)))?;
        if self.rates.len() == 10 {
            let min = self.rates.iter().copied().fold(f64::INFINITY, f64::min);
            let max = self.rates.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let mean = self.rates.iter().sum::<f64>() / self.rates.len() as f64;
            self.rates.clear();
            inject.inject(&self.output(format!(
                "AGG Sum. Min: {min:.2}   Max: {max:.2}    Mean: {mean:.2}"
            )))?;
        }
        Ok(())
    }

    fn report(&self, sink: &mut dyn ReportSink) {
        sink.int("MessageCount", self.count as i64, "count");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::testing::build_doc_sample;
    use hekate_model::message::{MessageAccess as _, MessageView};

    #[derive(Default)]
    struct Collect(Vec<Message>);

    impl Inject for Collect {
        fn inject(&mut self, msg: &Message) -> Result<(), ProcessError> {
            self.0.push(msg.clone());
            Ok(())
        }
        fn inject_encoded(&mut self, bytes: &[u8]) -> Result<(), ProcessError> {
            self.0.push(Message::decode_bytes(bytes).unwrap());
            Ok(())
        }
    }

    #[test]
    fn doc_sample_builds() {
        build_doc_sample(include_str!("counter.rs"));
    }

    #[test]
    fn counts_and_reports_every_tick() {
        let ctx = PluginContext {
            name: "c".into(),
            shard: 0,
            core: 0,
            shards: 1,
            hostname: "h".into(),
            max_message_size: 65536,
        };
        let mut f = CounterFilterPlugin {
            ticker: Duration::from_secs(5),
        }
        .new_filter(&ctx)
        .unwrap();
        let bytes = Message::new_now().to_bytes();
        let d = Delivery {
            view: MessageView::new(&bytes).unwrap(),
            loops: 0,
        };
        let mut out = Collect::default();
        for _ in 0..3 {
            f.process(&d, &mut out).unwrap();
        }
        std::thread::sleep(Duration::from_millis(2));
        f.timer_event(0, &mut out).unwrap();
        f.timer_event(0, &mut out).unwrap();
        assert_eq!(out.0.len(), 1);
        let bytes = out.0[0].to_bytes();
        let v = MessageView::new(&bytes).unwrap();
        assert_eq!(v.msg_type(), b"heka.counter-output");
        assert!(v.payload().starts_with(b"Got 3 messages. "));
    }
}
