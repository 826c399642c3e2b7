//! `json`: JSON lines (~300 B, `hekate-flood --format json`) over TCP → TokenSplitter →
//! JsonDecoder (headers mapped, timestamp parsed, the rest flattened into fields) → router with
//! six matchers → FileOutput to /dev/null (`bench/configs/json.toml`). Delivery is checked by the
//! output's count in hekate's SIGUSR1 report; the figure is the rate hekate read at (TCP pushes
//! back on the generator). Target (BENCHMARKS.md): ≥ 300 MB/s per core.

use super::drive::FloodSpec;
use super::report::{Row, Section};
use super::route::null_run_with;
use super::{Bench, Workload, si};

/// The workload.
pub const WORKLOAD: Workload = Workload {
    id: "json",
    about: "JSON lines → JsonDecoder → 6 matchers → null, MB/s per core",
    in_quick: true,
    run,
};

const LABEL: &str = "hekate, JsonDecoder → 6 matchers → /dev/null, flat out";

fn run(b: &mut Bench) -> Section {
    let mut s = Section::new(
        "json",
        "json: JSON lines → JsonDecoder → route → null",
        "JSON lines of ~300 B (`hekate-flood --format json`: a timestamp, host, service, level, \
         request fields and a message) over 2 TCP connections → `TcpInput` with `TokenSplitter` \
         → `JsonDecoder` mapping Hostname, Logger, Severity, Payload and Timestamp as `json.lua` \
         would → six matchers → `FileOutput` to /dev/null (`bench/configs/json.toml`). Target \
         (BENCHMARKS.md): ≥ 300 MB/s per core.",
        &["msg/s", "MB/s", "Gbit/s", "delivery"],
    );
    s.plot_unit = Some("MB/s of JSON lines".into());
    if let Some(why) = b.hekate.unavailable() {
        s.rows.push(Row::not_run(LABEL, why.to_owned()));
        return s;
    }
    let n = b.pick(1_000_000, 5_000_000);
    let mut spec = FloodSpec::heka(2, n, "300");
    spec.format = "json";
    let cores = format!("flood {} · hekate {}", b.cores.generator, b.cores.sut);
    let row = match null_run_with(b, "json-null", "json", &b.cores.sut, &spec) {
        Ok(r) => {
            let mb = r.gbit_per_s * 1000.0 / 8.0;
            let mut row = Row::ok(
                LABEL,
                vec![
                    si(r.msg_per_s),
                    format!("{mb:.0}"),
                    format!("{:.2}", r.gbit_per_s),
                    r.check,
                ],
            );
            row.plot = Some(mb);
            row.commands(r.commands).cores(cores).data(r.data)
        }
        Err(e) => Row::failed(LABEL, e).cores(cores),
    };
    s.rows.push(row);
    s.notes.push(format!(
        "hekate runs with `worker_cores = [{}]`, the generator on core {}.",
        b.cores.sut, b.cores.generator
    ));
    s
}
