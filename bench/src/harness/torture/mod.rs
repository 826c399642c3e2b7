//! `torture`: durable delivery under abuse (issue 10). `scripts/torture` runs it; it is not part
//! of `scripts/bench`'s default set (it takes ~10 minutes and needs root for one scenario).
//!
//! The rig ([`rig`]), on loopback: `hekate-flood --reconnect` at a steady rate, two
//! connections, 300-byte messages numbered per connection → hekate (`bench/configs/torture.toml`:
//! TcpInput, ProtobufDecoder) → every message to two outputs: a **FileOutput** (Heka-framed, so
//! the file reads back as records) and a disk-buffered **TcpOutput** (`use_buffering`, 2 MiB
//! segments, retries capped at 1 s) → `hekate-sink --arrivals`, which logs which message arrived
//! when, across hekate's restarts and its own. What hekate holds on disk is read by this crate
//! with hekate's framing ([`durable`]), never through hekate.
//!
//! Four scenarios, each a row of the `torture` block of `bench/RESULTS.md`, with PASS or FAIL:
//!
//! 1. **kill -9 cycles** ([`kill`]): N times, hekate runs 0.5–3 s under load and is killed with
//!    SIGKILL; before each restart the harness notes the messages in the file (whole records) and
//!    the unacknowledged records of the queue. At the end every message noted in the file must
//!    still be in it, and every message noted in the queue must have reached the sink. Reported:
//!    lost (of those noted), duplicates at the sink and in the file (per kill and in total, and
//!    whether each is explained by the queue's replay), the longest gap in the sink's timeline
//!    (with and without the time hekate was down), and sent vs arrived (what was in hekate's
//!    memory at a kill is lost by design: the TCP input had not acknowledged it).
//! 2. **upstream down** ([`outage`]): at 50k msg/s the sink is killed for 60 s, then started
//!    again. Nothing in the file may be missing at the sink, except what sat in the TCP buffers
//!    between hekate and the killed sink (Heka's stream protocol has no acknowledgement: a record
//!    counts as sent once written to the socket), which is measured from `/proc/net/tcp` at the
//!    kill and reported. Also the file's rate during the outage vs before (≥ 95%), hekate's
//!    peak RSS, the queue's peak depth, and how long the backlog took to drain.
//! 3. **disk full** ([`disk_full`]): the queue's base_dir on a 16 MiB tmpfs, upstream down, so
//!    the queue fills its disk: hekate must keep running, the file keep its rate and lose
//!    nothing, every record the queue held must arrive once the upstream is back, every message
//!    missing at the sink must be one hekate counted as dropped, and delivery must recover.
//!    Needs root (mount); not run otherwise, with the reason.
//! 4. **corrupt segment** ([`corrupt`]): with a backlog and the upstream down, hekate is stopped,
//!    random bytes are written into the middle of a segment, and hekate restarted: it must skip
//!    and count the damage, deliver the rest and keep running; the records lost must be exactly
//!    those the overwritten bytes touched.
//!
//! A finding about hekate is never worked around here: the scenario fails and says what it saw.

mod corrupt;
mod disk_full;
pub mod durable;
mod kill;
pub mod ledger;
mod outage;
pub mod rig;
pub mod seqset;

use std::time::Duration;

use super::report::{Row, Section};
use super::{Bench, Workload, thousands};

/// The workload.
pub const WORKLOAD: Workload = Workload {
    id: "torture",
    about: "kill -9 cycles, upstream down, disk full, corrupt queue segment, under load",
    in_quick: false,
    run,
};

/// The scenarios, by the names `--torture-scenarios` takes.
pub const SCENARIOS: &[&str] = &["kill", "outage", "disk-full", "corrupt"];

/// Settings of a torture run (`hekate-bench --torture-*`, `scripts/torture`); unset ones take
/// the full or the quick default.
#[derive(Clone, Debug, Default)]
pub struct TortureOptions {
    /// kill -9 cycles (100; quick 10).
    pub cycles: Option<u32>,
    /// How long the upstream stays down (60 s; quick 10 s).
    pub outage: Option<Duration>,
    /// Flood rate of the kill, disk-full and corrupt scenarios (20k msg/s).
    pub rate: Option<f64>,
    /// Flood rate of the outage scenario (50k msg/s).
    pub outage_rate: Option<f64>,
    /// Seed of the kill timings (default: from the clock; the page says which).
    pub seed: Option<u64>,
    /// Size of the disk-full tmpfs, as `mount -o size=` takes it (16m).
    pub tmpfs_size: Option<String>,
    /// Scenarios to run (default: all), of [`SCENARIOS`].
    pub scenarios: Vec<String>,
    /// Shorter phases around the measured events (warm-up, hold, recovery), for tests.
    pub short: bool,
}

impl TortureOptions {
    /// The `scripts/torture` flags that give these settings (empty for the defaults).
    pub fn flags(&self) -> String {
        let mut f = String::new();
        if let Some(n) = self.cycles {
            f.push_str(&format!(" --cycles {n}"));
        }
        if let Some(d) = self.outage {
            f.push_str(&format!(" --outage {}s", d.as_secs_f64()));
        }
        if let Some(r) = self.rate {
            f.push_str(&format!(" --rate {r:.0}"));
        }
        if let Some(r) = self.outage_rate {
            f.push_str(&format!(" --outage-rate {r:.0}"));
        }
        if let Some(s) = self.seed {
            f.push_str(&format!(" --seed {s}"));
        }
        if let Some(t) = &self.tmpfs_size {
            f.push_str(&format!(" --tmpfs-size {t}"));
        }
        if !self.scenarios.is_empty() {
            f.push_str(&format!(" --scenarios {}", self.scenarios.join(",")));
        }
        f
    }
}

/// The settings in force, defaults applied.
#[derive(Clone, Debug)]
pub struct Plan {
    /// kill -9 cycles.
    pub cycles: u32,
    /// Outage length.
    pub outage: Duration,
    /// Flood rate (kill, disk-full, corrupt).
    pub rate: f64,
    /// Flood rate (outage).
    pub outage_rate: f64,
    /// Seed of the kill timings.
    pub seed: u64,
    /// tmpfs size.
    pub tmpfs_size: String,
    /// Warm-up before the outage (the "before" rate).
    pub warmup: Duration,
    /// How long the disk stays full.
    pub full_hold: Duration,
    /// Load after the upstream returns (disk full).
    pub recovery: Duration,
    /// Load that builds the backlog to corrupt.
    pub backlog: Duration,
    /// How long a queue may take to drain once the load stopped.
    pub drain: Duration,
}

impl Plan {
    /// The plan of a run.
    pub fn new(b: &Bench) -> Plan {
        let o = &b.opts.torture;
        let quick = b.quick() || o.short;
        let secs = |full: u64, quick_: u64, short: u64| {
            Duration::from_secs(if o.short {
                short
            } else if quick {
                quick_
            } else {
                full
            })
        };
        Plan {
            cycles: o.cycles.unwrap_or(if quick { 10 } else { 100 }),
            outage: o.outage.unwrap_or(secs(60, 10, 3)),
            rate: o.rate.unwrap_or(20_000.0),
            outage_rate: o.outage_rate.unwrap_or(50_000.0),
            seed: o.seed.unwrap_or_else(|| crate::flood::now_ns() % 1_000_000),
            tmpfs_size: o.tmpfs_size.clone().unwrap_or_else(|| "16m".into()),
            warmup: secs(10, 4, 3),
            full_hold: secs(15, 5, 3),
            recovery: secs(10, 4, 2),
            backlog: secs(6, 3, 2),
            drain: secs(60, 20, 10),
        }
    }
}

/// How one scenario came out.
#[derive(Debug)]
pub struct Outcome {
    /// Row label.
    pub label: String,
    /// Whether it passed; the reasons it did not; or why it could not run.
    pub verdict: Verdict,
    /// Table cells: lost, duplicates, longest stall, peak RSS.
    pub cells: [String; 4],
    /// Every figure, one sentence (a note under the table, shown whatever the verdict).
    pub figures: String,
    /// Findings about hekate, for the notes.
    pub findings: Vec<String>,
    /// Commands that ran.
    pub commands: Vec<String>,
    /// Everything measured, for the JSON file.
    pub data: serde_json::Value,
}

/// The verdict of a scenario.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Every check passed.
    Pass,
    /// These checks failed.
    Fail(Vec<String>),
    /// Could not run here, for this reason.
    NotRun(String),
}

impl Outcome {
    /// A scenario that could not run.
    pub fn not_run(label: &str, why: impl Into<String>) -> Self {
        Outcome {
            label: label.into(),
            verdict: Verdict::NotRun(why.into()),
            cells: Default::default(),
            figures: String::new(),
            findings: Vec::new(),
            commands: Vec::new(),
            data: serde_json::Value::Null,
        }
    }

    /// A scenario that broke off before its figures (a process failed to start, say).
    pub fn broken(label: &str, why: impl Into<String>, commands: Vec<String>) -> Self {
        Outcome {
            verdict: Verdict::Fail(vec![why.into()]),
            commands,
            ..Outcome::not_run(label, "")
        }
    }
}

/// Collects the failed checks of a scenario.
#[derive(Debug, Default)]
pub struct Checks(Vec<String>);

impl Checks {
    /// Records `why` as a failure unless `ok`.
    pub fn expect(&mut self, ok: bool, why: impl FnOnce() -> String) {
        if !ok {
            self.0.push(why());
        }
    }

    /// Records an error as a failure.
    pub fn fail(&mut self, why: impl Into<String>) {
        self.0.push(why.into());
    }

    /// The verdict.
    pub fn verdict(self) -> Verdict {
        if self.0.is_empty() {
            Verdict::Pass
        } else {
            Verdict::Fail(self.0)
        }
    }
}

/// `1.23 s`.
pub fn secs(s: f64) -> String {
    format!("{s:.2} s")
}

/// `12.3 MB`.
pub fn mb(bytes: f64) -> String {
    format!("{:.1} MB", bytes / 1e6)
}

fn run(b: &mut Bench) -> Section {
    let plan = Plan::new(b);
    let mut section = Section::new(
        "torture",
        "torture: durable delivery under kill -9, outage, disk full, corruption",
        format!(
            "hekate-flood (2 TCP connections, 300 B Heka messages, numbered) → TcpInput → every \
             message to a FileOutput (Heka-framed file) and to a disk-buffered TcpOutput \
             (`bench/configs/torture.toml`: 2 MiB segments, `cursor_update_count` 50) → \
             hekate-sink, which logs every arrival. What hekate held on disk (whole records of the \
             file, records of the queue after its checkpoint) is read by the harness with \
             hekate's framing code, not through hekate. A message is *lost* when hekate had it in \
             a replayable place (the file, or the queue before acknowledging it) and it is gone \
             or never delivered; what hekate held only in memory at a kill -9 was never \
             acknowledged to the sender and is reported as in flight. How the scenarios work: \
             `bench/src/harness/torture/mod.rs`. Seed {}; kill-cycle, outage and disk-full \
             flood rates {} / {} / {} msg/s.",
            plan.seed,
            thousands(plan.rate as u64),
            thousands(plan.outage_rate as u64),
            thousands(plan.rate as u64),
        ),
        &["lost", "duplicates", "longest stall", "peak RSS"],
    );
    let wanted = |s: &str| {
        b.opts.torture.scenarios.is_empty() || b.opts.torture.scenarios.iter().any(|w| w == s)
    };
    let cores = format!(
        "flood {} · hekate {} · sink {}",
        b.cores.generator, b.cores.sut, b.cores.sink
    );
    type Scenario = fn(&Bench, &Plan) -> Outcome;
    let scenarios: [(&str, &str, Scenario); 4] = [
        ("kill", kill::LABEL, kill::run),
        ("outage", outage::LABEL, outage::run),
        ("disk-full", disk_full::LABEL, disk_full::run),
        ("corrupt", corrupt::LABEL, corrupt::run),
    ];
    let mut data = serde_json::Map::new();
    for (id, label, scenario) in scenarios {
        if !wanted(id) {
            continue;
        }
        eprintln!("torture: {label} …");
        let outcome = match b.hekate.unavailable() {
            Some(why) => Outcome::not_run(label, why),
            None => scenario(b, &plan),
        };
        if outcome.verdict == Verdict::Pass {
            // The output file and the queue of a passing scenario can be a gigabyte each; a
            // failing one keeps them for a look.
            let _ = std::fs::remove_dir_all(b.opts.run_dir.join(format!("torture-{id}")));
        }
        let row = match &outcome.verdict {
            Verdict::Pass => {
                eprintln!("torture: PASS {}: {}", outcome.label, outcome.figures);
                Row::ok(&outcome.label, outcome.cells.to_vec())
            }
            Verdict::Fail(why) => {
                eprintln!(
                    "torture: FAIL {}: {}{}{}",
                    outcome.label,
                    why.join("; "),
                    if outcome.figures.is_empty() {
                        ""
                    } else {
                        " — "
                    },
                    outcome.figures
                );
                Row::failed(&outcome.label, why.join("; "))
            }
            Verdict::NotRun(why) => {
                eprintln!("torture: NOT RUN {}: {why}", outcome.label);
                Row::not_run(&outcome.label, why.clone())
            }
        };
        if !outcome.figures.is_empty() {
            let word = match outcome.verdict {
                Verdict::Pass => "PASS",
                Verdict::Fail(_) => "FAIL",
                Verdict::NotRun(_) => "not run",
            };
            section.notes.push(format!(
                "**{}** ({word}): {}",
                outcome.label, outcome.figures
            ));
        }
        for f in &outcome.findings {
            section
                .notes
                .push(format!("**finding** ({}): {f}", outcome.label));
        }
        data.insert(id.into(), outcome.data.clone());
        section.rows.push(
            row.cores(cores.clone())
                .commands(outcome.commands.clone())
                .data(outcome.data),
        );
    }
    if section.rows.is_empty() {
        section.rows.push(Row::not_run(
            "torture",
            format!("no scenario selected (known: {})", SCENARIOS.join(", ")),
        ));
    }
    section
}
