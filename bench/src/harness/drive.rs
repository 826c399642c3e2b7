//! Driving a measurement: a checking sink, a flood, and the verdict.

use std::time::Duration;

use serde::de::DeserializeOwned;

use super::Bench;
use super::proc::Running;
use crate::check::{Delivery, LatencySummary};
use crate::flood::FloodReport;
use crate::sink::SinkReport;

/// What `hekate-flood` should send.
#[derive(Clone, Debug)]
pub struct FloodSpec {
    /// `--format`.
    pub format: &'static str,
    /// `--framing`.
    pub framing: &'static str,
    /// `--transport`.
    pub transport: &'static str,
    /// `--connections`.
    pub connections: u32,
    /// `--count`.
    pub count: u64,
    /// `--rate`.
    pub rate: Option<f64>,
    /// `--size`.
    pub size: String,
    /// Further arguments.
    pub extra: Vec<String>,
}

impl FloodSpec {
    /// Heka messages of `size` bytes over `connections` TCP connections.
    pub fn heka(connections: u32, count: u64, size: &str) -> Self {
        FloodSpec {
            format: "heka",
            framing: "newline",
            transport: "tcp",
            connections,
            count,
            rate: None,
            size: size.into(),
            extra: Vec::new(),
        }
    }

    /// Text lines of a format over TCP.
    pub fn text(format: &'static str, connections: u32, count: u64, size: &str) -> Self {
        FloodSpec {
            format,
            ..FloodSpec::heka(connections, count, size)
        }
    }

    /// Sends at `rate` messages per second.
    pub fn at_rate(mut self, rate: f64) -> Self {
        self.rate = Some(rate);
        self
    }

    /// The command-line arguments, sending to `address`.
    pub fn args(&self, address: &str) -> Vec<String> {
        let mut a = vec![
            "--format".into(),
            self.format.into(),
            "--address".into(),
            address.into(),
            "--connections".into(),
            self.connections.to_string(),
            "--count".into(),
            self.count.to_string(),
            "--size".into(),
            self.size.clone(),
        ];
        if self.transport == "tcp" {
            // A pipeline that stops reading fails the run within seconds, not at the timeout.
            a.extend(["--stall-timeout".into(), "15s".into()]);
        }
        if self.framing != "newline" {
            a.extend(["--framing".into(), self.framing.into()]);
        }
        if self.transport != "tcp" {
            a.extend(["--transport".into(), self.transport.into()]);
        }
        if let Some(r) = self.rate {
            a.extend(["--rate".into(), format!("{r:.0}")]);
        }
        a.extend(self.extra.iter().cloned());
        a
    }
}

/// Parses a process's JSON report from its stdout.
pub fn json_report<T: DeserializeOwned>(p: &Running) -> Result<T, String> {
    let out = p.stdout();
    serde_json::from_str(&out)
        .map_err(|e| format!("{} printed no report ({e}): {}", p.name, p.tail(3)))
}

/// Starts `hekate-sink` with `args` on `cores`; returns it and the address it listens on
/// (`host:port`), or the file it reads.
pub fn start_sink(
    b: &Bench,
    name: &str,
    cores: &str,
    args: Vec<String>,
) -> Result<(Running, String), String> {
    let mut sink = b
        .launch(name, "hekate-sink")
        .cores(cores)
        .args(args)
        .spawn(&b.opts.run_dir)?;
    let line = sink
        .wait_for_line("listening on", Duration::from_secs(10))
        .ok_or_else(|| format!("the sink did not start: {}", sink.tail(3)))?;
    let at = line
        .rsplit_once("://")
        .map(|(_, a)| a.trim().to_owned())
        .unwrap_or_default();
    Ok((sink, at))
}

/// Waits for a sink to finish and reads its report.
pub fn finish_sink(sink: &mut Running, timeout: Duration) -> Result<SinkReport, String> {
    if sink.wait(timeout).is_none() {
        sink.stop(Duration::from_secs(2));
        return Err(format!(
            "the sink did not finish within {} s",
            timeout.as_secs()
        ));
    }
    json_report(sink)
}

/// Runs `hekate-flood` to completion.
pub fn run_flood(
    b: &Bench,
    name: &str,
    cores: &str,
    spec: &FloodSpec,
    address: &str,
    timeout: Duration,
) -> Result<(FloodReport, String), String> {
    let mut flood = b
        .launch(name, "hekate-flood")
        .cores(cores)
        .args(spec.args(address))
        .spawn(&b.opts.run_dir)?;
    let command = flood.command.clone();
    if flood.wait(timeout).is_none() {
        flood.stop(Duration::from_secs(2));
        return Err(format!(
            "the load generator did not finish within {} s (the receiver stopped reading?)",
            timeout.as_secs()
        ));
    }
    let report: FloodReport = json_report(&flood)?;
    if let Some(first) = report.errors.first() {
        let more = report.errors.len() - 1;
        return Err(match more {
            0 => first.clone(),
            n => format!("{first} (and {n} more connection(s) likewise)"),
        });
    }
    Ok((report, command))
}

/// A checked measurement: what was sent, what arrived, and the verdict.
#[derive(Clone, Debug)]
pub struct Measured {
    /// The flood's report.
    pub flood: FloodReport,
    /// The sink's report.
    pub sink: SinkReport,
    /// Sent vs received.
    pub delivery: Delivery,
}

impl Measured {
    /// Puts the two reports together.
    pub fn new(flood: FloodReport, sink: SinkReport) -> Self {
        let delivery = Delivery::compare(&flood.sent_by_conn(), &sink.check);
        Measured {
            flood,
            sink,
            delivery,
        }
    }

    /// Seconds from the first message sent to the last one received.
    pub fn span_s(&self) -> f64 {
        self.sink.last_ns.saturating_sub(self.flood.start_ns) as f64 / 1e9
    }

    /// Delivered messages per second, first send to last receive.
    pub fn msg_per_s(&self) -> f64 {
        let s = self.span_s();
        if s > 0.0 {
            self.delivery.delivered as f64 / s
        } else {
            0.0
        }
    }

    /// Gigabits per second of message data, first send to last receive.
    pub fn gbit_per_s(&self) -> f64 {
        let s = self.span_s();
        if s > 0.0 {
            self.sink.message_bytes as f64 * 8.0 / s / 1e9
        } else {
            0.0
        }
    }

    /// Latency percentiles.
    pub fn latency(&self) -> Option<LatencySummary> {
        self.sink.latency
    }

    /// `Err(reason)` when anything was lost, duplicated or unexpected.
    pub fn verdict(&self) -> Result<(), String> {
        match self.delivery.problem() {
            None => Ok(()),
            Some(p) => Err(format!("{p} (sink stopped on {})", self.sink.exit)),
        }
    }

    /// The delivery cell: `2,000,000 ✓` or what went wrong.
    pub fn delivery_cell(&self) -> String {
        let d = &self.delivery;
        let mut s = format!("{} exactly once", super::thousands(d.delivered));
        if d.reordered > 0 {
            s.push_str(&format!(", {} reordered", super::thousands(d.reordered)));
        }
        s
    }

    /// Everything, for the JSON file.
    pub fn data(&self) -> serde_json::Value {
        serde_json::json!({
            "msg_per_s": self.msg_per_s(),
            "gbit_per_s": self.gbit_per_s(),
            "span_s": self.span_s(),
            "delivery": self.delivery,
            "flood": self.flood,
            "sink": self.sink,
        })
    }
}
