//! `json`: JSON lines (~300 B, `hekate-flood --format json`) over TCP → TokenSplitter →
//! JsonDecoder (headers mapped, timestamp parsed, the rest flattened into fields) → router with
//! six matchers → FileOutput to /dev/null (`bench/configs/json.toml`). Delivery is checked by the
//! output's count in hekate's SIGUSR1 report; the figure is the rate hekate read at (TCP pushes
//! back on the generator). Target (BENCHMARKS.md): ≥ 300 MB/s per core.
//!
//! The reference row, in the same run: `route`'s null path (Heka protobuf messages of the same
//! size, no decoding, ten matchers), so the ratio says what parsing JSON costs.

use super::drive::FloodSpec;
use super::report::{Row, Section};
use super::route::{NullRun, null_run_with};
use super::{Bench, Workload, si};

/// The workload.
pub const WORKLOAD: Workload = Workload {
    id: "json",
    about: "JSON lines → JsonDecoder → 6 matchers → null, MB/s per core",
    in_quick: true,
    run,
};

const LABEL: &str = "hekate, JsonDecoder → 6 matchers → /dev/null, flat out";
const REFERENCE: &str =
    "hekate, Heka protobuf → 10 matchers → /dev/null (route-null; reference, same run)";

fn row(
    label: &str,
    run: Result<NullRun, String>,
    reference: Option<f64>,
    cores: &str,
) -> (Row, Option<f64>) {
    match run {
        Ok(r) => {
            let mb = r.gbit_per_s * 1000.0 / 8.0;
            let ratio = reference.map_or("1.00×".into(), |x| format!("{:.2}×", r.msg_per_s / x));
            let mut row = Row::ok(
                label,
                vec![
                    si(r.msg_per_s),
                    format!("{mb:.0}"),
                    format!("{:.2}", r.gbit_per_s),
                    ratio,
                    r.check,
                ],
            );
            row.plot = Some(mb);
            let rate = r.msg_per_s;
            (
                row.commands(r.commands).cores(cores).data(r.data),
                Some(rate),
            )
        }
        Err(e) => (Row::failed(label, e).cores(cores), None),
    }
}

fn run(b: &mut Bench) -> Section {
    let mut s = Section::new(
        "json",
        "json: JSON lines → JsonDecoder → route → null",
        "JSON lines of ~300 B (`hekate-flood --format json`: a timestamp, host, service, level, \
         request fields and a message) over 2 TCP connections → `TcpInput` with `TokenSplitter` \
         → `JsonDecoder` mapping Hostname, Logger, Severity, Payload and Timestamp as `json.lua` \
         would → six matchers → `FileOutput` to /dev/null (`bench/configs/json.toml`). Target \
         (BENCHMARKS.md): ≥ 300 MB/s per core.",
        &["msg/s", "MB/s", "Gbit/s", "msg/s vs protobuf", "delivery"],
    );
    s.plot_unit = Some("MB/s of messages".into());
    if let Some(why) = b.hekate.unavailable() {
        s.rows.push(Row::not_run(REFERENCE, why.to_owned()));
        s.rows.push(Row::not_run(LABEL, why.to_owned()));
        return s;
    }
    let n = b.pick(1_000_000, 5_000_000);
    let cores = format!("flood {} · hekate {}", b.cores.generator, b.cores.sut);
    let reference = FloodSpec::heka(2, n, "300");
    let (mut r, rate) = row(
        REFERENCE,
        null_run_with(b, "json-reference", "route-null", &b.cores.sut, &reference),
        None,
        &cores,
    );
    r.reference = true;
    s.rows.push(r);
    let mut spec = FloodSpec::heka(2, n, "300");
    spec.format = "json";
    let (r, _) = row(
        LABEL,
        null_run_with(b, "json-null", "json", &b.cores.sut, &spec),
        rate,
        &cores,
    );
    s.rows.push(r);
    s.notes.push(format!(
        "hekate runs with `worker_cores = [{}]`, the generator on core {}.",
        b.cores.sut, b.cores.generator
    ));
    s
}
