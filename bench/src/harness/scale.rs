//! `scale`: the `route` path into a null output with one and with two worker cores, same load,
//! same run; the figure is the ratio (target ≥ 1.8).

use super::drive::FloodSpec;
use super::report::{Row, Section};
use super::route::null_run;
use super::{Bench, Workload, si};

/// The workload.
pub const WORKLOAD: Workload = Workload {
    id: "scale",
    about: "route into null with 1 and 2 worker cores: the ratio",
    in_quick: true,
    run,
};

fn run(b: &mut Bench) -> Section {
    let mut s = Section::new(
        "scale",
        "scale: 1 → 2 worker cores",
        "The `route` path into a null output (`bench/configs/route-null.toml`), 4 TCP connections \
         so that SO_REUSEPORT spreads them over the shards, run with one and with two worker \
         cores. Target: 2-core / 1-core ≥ 1.8.",
        &["msg/s", "Gbit/s", "vs 1 core", "delivery"],
    );
    s.plot_unit = Some("msg/s".into());
    let one = b.cores.sut.clone();
    let two = b.cores.sut_two.clone();
    let labels = [
        format!("1 worker core ({one})"),
        format!("2 worker cores ({two})"),
    ];
    if let Some(why) = b.hekate.unavailable() {
        let why = why.to_owned();
        s.rows
            .extend(labels.iter().map(|l| Row::not_run(l.as_str(), why.clone())));
        return s;
    }
    let spec = FloodSpec::heka(4, b.pick(1_000_000, 4_000_000), "300");
    let mut first = None;
    for (label, cores, name) in [(&labels[0], &one, "scale-1"), (&labels[1], &two, "scale-2")] {
        let pinned = format!("flood {} · hekate {cores}", b.cores.generator);
        let row = match null_run(b, name, cores, &spec) {
            Ok(r) => {
                let ratio = match first {
                    None => {
                        first = Some(r.msg_per_s);
                        "1.00×".to_owned()
                    }
                    Some(x) => format!("{:.2}×", r.msg_per_s / x),
                };
                let mut row = Row::ok(
                    label.as_str(),
                    vec![
                        si(r.msg_per_s),
                        format!("{:.2}", r.gbit_per_s),
                        ratio,
                        r.check,
                    ],
                );
                row.plot = Some(r.msg_per_s);
                row.commands(r.commands).cores(pinned).data(r.data)
            }
            Err(e) => Row::failed(label.as_str(), e).cores(pinned),
        };
        s.rows.push(row);
    }
    if b.machine.cpus <= 2 {
        s.notes.push(format!(
            "This host has {} cores: with two workers, one of them shares core {} with the \
             generator, so the ratio understates what two free cores give.",
            b.machine.cpus, b.cores.generator
        ));
    }
    s
}
