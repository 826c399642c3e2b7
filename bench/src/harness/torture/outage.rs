//! Scenario 2: the upstream (the sink) down for a minute under 50k msg/s (see the
//! [module docs](super)).

use std::thread;
use std::time::Duration;

use serde_json::json;

use super::ledger::{against_sent, read_file, read_sink};
use super::rig::{
    CONNECTIONS, QUEUE_OUTPUT, Rig, SINK_READ_BUFFER, Sampler, await_queue_at_most, file_growth,
    longest_file_stall, output_reports, proc_status_kb, sample_at, still_running, stop_flood,
    stop_hekate, stop_sink_when_quiet, tail_max_seqs, tcp_in_flight,
};
use super::{Checks, Outcome, Plan, mb, secs};
use crate::flood::now_ns;
use crate::harness::{Bench, thousands};

/// Row label.
pub const LABEL: &str = "upstream down";

/// The file's rate during the outage must be at least this share of its rate before.
const MIN_RATE_RATIO: f64 = 0.95;

pub fn run(b: &Bench, plan: &Plan) -> Outcome {
    let label = format!("upstream down {} s", plan.outage.as_secs());
    let mut rig = Rig::new(b, "torture-outage", None, plan.outage_rate);
    let mut outcome = match outage(&mut rig, plan, &label) {
        Ok(o) => o,
        Err(e) => Outcome::broken(&label, e, Vec::new()),
    };
    outcome.commands = rig.commands.clone();
    outcome
}

fn outage(rig: &mut Rig<'_>, plan: &Plan, label: &str) -> Result<Outcome, String> {
    rig.check()?;
    let mut checks = Checks::default();
    let (mut sink_a, log_a) = rig.start_sink()?;
    let mut hk = rig.start_hekate()?;
    let sampler = Sampler::start(hk.pid(), &rig.out_file, &rig.queue_dir());
    let mut flood = rig.start_flood()?;
    let warm_ns = now_ns();
    thread::sleep(plan.warmup);
    still_running(&mut hk, "during the warm-up")?;

    // Take the upstream away (SIGKILL), counting the bytes in flight towards it just before.
    let in_flight = tcp_in_flight(rig.sink_port);
    let measured_ns = now_ns();
    sink_a.signal(libc::SIGKILL);
    let t0 = now_ns();
    sink_a.wait(Duration::from_secs(5));
    thread::sleep(plan.outage);
    if let Err(e) = still_running(&mut hk, "during the outage") {
        checks.fail(e);
    }

    // The upstream returns; the newest messages in the file now bound the backlog.
    let t1 = now_ns();
    let bound = tail_max_seqs(&rig.out_file, 4 << 20)
        .map_err(|e| format!("reading the file's tail: {e}"))?;
    let (mut sink_b, log_b) = rig.start_sink()?;
    let patience = Duration::from_secs(60).max(plan.outage * 2);
    let caught_up = await_queue_at_most(
        &rig.report_file,
        t1,
        (rig.rate / 2.0) as i64,
        patience,
        &mut hk,
    );
    checks.expect(caught_up.is_some(), || {
        format!(
            "the backlog did not drain within {} s of the upstream's return",
            patience.as_secs()
        )
    });
    thread::sleep(Duration::from_secs(2));
    let stop_ns = now_ns();
    let sent = stop_flood(&mut flood);
    let drained = await_queue_at_most(&rig.report_file, stop_ns, 0, plan.drain, &mut hk);
    checks.expect(drained.is_some(), || {
        format!(
            "the queue did not drain within {} s after the load stopped",
            plan.drain.as_secs()
        )
    });
    let hwm_kb = proc_status_kb(hk.pid(), "VmHWM").unwrap_or(0);
    stop_sink_when_quiet(
        &mut sink_b,
        &log_b,
        Duration::from_secs(1),
        Duration::from_secs(15),
    );
    if let Err(e) = stop_hekate(&mut hk) {
        checks.fail(format!("at the end: {e}"));
    }
    let samples = sampler.finish();
    let sent = sent?;
    checks.expect(sent.errors.is_empty(), || {
        format!("the flood failed: {}", sent.errors.join("; "))
    });

    let file = read_file(&rig.out_file, None)?;
    let got = read_sink(&[&log_a, &log_b], Some(&bound))?;
    let file_missing = against_sent(&sent, &[&file.set]);
    let lost = file.set.minus(&got.set);
    let rec_len = file.mean_record_len().max(1.0);
    // What the kill could take with it, in records: the sink's and hekate's socket buffers, what
    // the sink had read but not logged yet, what was sent between the count and the kill, and
    // a record cut in two at each end.
    let in_flight_records = ((in_flight + SINK_READ_BUFFER) as f64 / rec_len).ceil() as u64
        + (rig.rate * (t0 - measured_ns) as f64 / 1e9).ceil() as u64
        + 2;

    // The file's rate before and during the outage, from its sampled size.
    let before = file_growth(&samples, warm_ns + 1_000_000_000, t0) / rec_len;
    let during = file_growth(&samples, t0, t1) / rec_len;
    // While the backlog drains, delivery shares hekate's core with the input and the file.
    let drained_ns = got.bound_reached_ns.unwrap_or(t1).max(t1 + 1_000_000_000);
    let file_stall_drain = longest_file_stall(&samples, t1, stop_ns);
    let during_drain = file_growth(&samples, t1, drained_ns) / rec_len;
    // The file cannot keep up more than the flood sends: a "before" above the flood's rate is
    // the flood catching up after its start, not the file's pace.
    let reference = before.min(rig.rate);
    let ratio = if reference > 0.0 {
        during / reference
    } else {
        0.0
    };
    let rss_before_kb = sample_at(&samples, t0).map_or(0, |s| s.rss_kb);
    let rss_peak_kb = samples.iter().map(|s| s.rss_kb).max().unwrap_or(0);
    let rss_after_kb = samples
        .iter()
        .rev()
        .find(|s| s.rss_kb > 0)
        .map_or(0, |s| s.rss_kb);
    let queue_peak_bytes = samples.iter().map(|s| s.queue_bytes).max().unwrap_or(0);
    let reports = output_reports(&rig.report_file, QUEUE_OUTPUT);
    let queue_peak_records = reports
        .iter()
        .filter_map(|r| r.get("QueueRecords").copied())
        .max()
        .unwrap_or(0);
    let drain_s = got
        .bound_reached_ns
        .map(|t| t.saturating_sub(t1) as f64 / 1e9);
    let first_after_s = got
        .gaps
        .iter()
        .find(|&&(a, b)| a <= t1 && b > t1)
        .map(|&(_, b)| (b - t1) as f64 / 1e9);
    let (stall, _) = got.longest_gap(&[(t0, t1)]);

    checks.expect(lost.len() <= in_flight_records, || {
        format!(
            "{} messages in the file never reached the sink, more than the {} records that were \
             in flight towards the killed sink: {}",
            thousands(lost.len()),
            thousands(in_flight_records),
            lost.sample(4)
        )
    });
    // What was on its way is one stretch of the stream: one run of numbers per connection.
    let lost_runs = lost.runs().len();
    checks.expect(lost_runs <= CONNECTIONS as usize, || {
        format!(
            "the {} messages lost at the sink are not one stretch of the stream ({} runs of \
             numbers for {} connections): {}",
            thousands(lost.len()),
            lost_runs,
            CONNECTIONS,
            lost.sample(6)
        )
    });
    checks.expect(file_missing.nowhere.is_empty(), || {
        format!(
            "{} sent messages are missing from the file: {}",
            thousands(file_missing.nowhere.len()),
            file_missing.nowhere.sample(4)
        )
    });
    checks.expect(ratio >= MIN_RATE_RATIO, || {
        format!(
            "the file's rate during the outage was {:.1}% of its rate before (capped at the \
             flood's rate; < {:.0}%)",
            ratio * 100.0,
            MIN_RATE_RATIO * 100.0
        )
    });
    checks.expect(file_missing.unexpected == 0, || {
        format!(
            "{} messages arrived that were never sent",
            thousands(file_missing.unexpected)
        )
    });

    let mut findings = Vec::new();
    if !lost.is_empty() && lost.len() <= in_flight_records {
        findings.push(format!(
            "{} messages were on their way to the sink when it was killed ({} bytes in the TCP \
             buffers between hekate and the sink, from /proc/net/tcp, plus what the sink had read \
             and not yet logged) and are lost: like Heka, hekate's TcpOutput counts a record as \
             delivered (and lets the queue's checkpoint pass it) once it is written to the \
             socket; only an acknowledging protocol would keep them",
            thousands(lost.len()),
            thousands(in_flight)
        ));
    }
    if file_stall_drain >= 1.0 {
        findings.push(format!(
            "while the backlog drained ({} for {}), the FileOutput's file did not grow at all for \
             {} and took {:.0} msg/s on average ({:.0}% of its rate before the outage): \
             the input and the FileOutput share hekate's worker core with the queue's delivery, \
             which hands out record after record while the socket takes them (likely: \
             engine/src/runtime/buffered.rs, `deliver`, `if read > 0 {{ continue; }}` loops \
             without yielding to the executor), so the input stops reading and the senders are \
             pushed back",
            mb(queue_peak_bytes as f64),
            drain_s.map_or("—".into(), secs),
            secs(file_stall_drain),
            during_drain,
            if before > 0.0 {
                during_drain / before * 100.0
            } else {
                0.0
            },
        ));
    }
    if rss_before_kb > 0 && rss_after_kb > 2 * rss_before_kb {
        findings.push(format!(
            "hekate's resident memory grew from {} before the outage to {} while the backlog \
             drained (VmHWM {}) and was still {} after the load had stopped and the queue was \
             empty",
            mb(rss_before_kb as f64 * 1024.0),
            mb(rss_peak_kb as f64 * 1024.0),
            mb(hwm_kb as f64 * 1024.0),
            mb(rss_after_kb as f64 * 1024.0),
        ));
    }
    let figures = format!(
        "flood {} msg/s; the sink was killed after {} and started again {} later; lost {} in {} \
         run(s) of consecutive numbers (messages in the file that never reached the sink; at \
         most {} could be on their way to \
         the sink at the kill: {} bytes in TCP buffers, plus the sink's read buffer); missing \
         from the file {}; file rate {:.0} msg/s before, {:.0} during the outage ({:.1}%), \
         {:.0} while the backlog drained, during which it stood still for {} at most; hekate \
         RSS {} before the \
         outage, peak {} sampled, VmHWM {}, {} after the load; queue peak {} ({} records); \
         first delivery {} after the sink returned, backlog (everything in the file at the \
         return) delivered in {}; duplicates at the sink {}; longest gap outside the outage {}; \
         flood sent {}, sink got {} distinct.",
        thousands(rig.rate as u64),
        secs(plan.warmup.as_secs_f64()),
        secs(t1.saturating_sub(t0) as f64 / 1e9),
        thousands(lost.len()),
        lost_runs,
        thousands(in_flight_records),
        thousands(in_flight),
        thousands(file_missing.nowhere.len()),
        before,
        during,
        ratio * 100.0,
        during_drain,
        secs(file_stall_drain),
        mb(rss_before_kb as f64 * 1024.0),
        mb(rss_peak_kb as f64 * 1024.0),
        mb(hwm_kb as f64 * 1024.0),
        mb(rss_after_kb as f64 * 1024.0),
        mb(queue_peak_bytes as f64),
        thousands(queue_peak_records.max(0) as u64),
        first_after_s.map_or("—".into(), secs),
        drain_s.map_or("—".into(), secs),
        thousands(got.duplicates.len() as u64),
        secs(stall),
        thousands(sent.sent),
        thousands(got.set.len()),
    );
    Ok(Outcome {
        label: label.into(),
        verdict: checks.verdict(),
        cells: [
            format!(
                "{} (≤ {} in flight to the killed sink)",
                thousands(lost.len()),
                thousands(in_flight_records)
            ),
            thousands(got.duplicates.len() as u64),
            format!(
                "{} outside the outage; drained in {}",
                secs(stall),
                drain_s.map_or("—".into(), secs)
            ),
            format!(
                "{} (from {})",
                mb(hwm_kb.max(rss_peak_kb) as f64 * 1024.0),
                mb(rss_before_kb as f64 * 1024.0)
            ),
        ],
        figures,
        findings,
        commands: Vec::new(),
        data: json!({
            "rate": rig.rate,
            "outage_s": t1.saturating_sub(t0) as f64 / 1e9,
            "lost": lost.len(),
            "in_flight_bytes_at_kill": in_flight,
            "in_flight_records_at_kill": in_flight_records,
            "missing_from_file": file_missing.nowhere.len(),
            "file_rate_before": before,
            "file_rate_during": during,
            "file_rate_ratio": ratio,
            "file_rate_while_draining": during_drain,
            "file_longest_stall_while_draining_s": file_stall_drain,
            "rss_after_kb": rss_after_kb,
            "rss_before_kb": rss_before_kb,
            "rss_peak_sampled_kb": rss_peak_kb,
            "vm_hwm_kb": hwm_kb,
            "queue_peak_bytes": queue_peak_bytes,
            "queue_peak_records": queue_peak_records,
            "first_delivery_after_return_s": first_after_s,
            "backlog_drained_s": drain_s,
            "sink_duplicates": got.duplicates.len(),
            "longest_gap_outside_outage_s": stall,
            "sent": sent.sent,
            "at_sink": got.set.len(),
            "samples": samples.iter().map(|s| [s.at_ns, s.file_bytes, s.queue_bytes, s.rss_kb]).collect::<Vec<_>>(),
        }),
    })
}
