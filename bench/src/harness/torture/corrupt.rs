//! Scenario 4: random bytes written into the middle of a queue segment while hekate is stopped
//! with a backlog (see the [module docs](super)).

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt as _;
use std::thread;
use std::time::Duration;

use serde_json::json;

use super::super::hekate::Availability;
use super::super::proc::describe_exit;
use super::durable::scan_queue;
use super::ledger::read_sink;
use super::rig::{
    Prng, QUEUE_OUTPUT, Rig, await_queue_at_most, log_lines, output_reports, still_running,
    stop_flood, stop_hekate, stop_sink_when_quiet,
};
use super::seqset::SeqSet;
use super::{Checks, Outcome, Plan};
use crate::flood::now_ns;
use crate::harness::{Bench, thousands};

/// Row label.
pub const LABEL: &str = "corrupt queue segment";

/// Bytes overwritten (at most a quarter of the segment).
const DAMAGE: u64 = 4096;

pub fn run(b: &Bench, plan: &Plan) -> Outcome {
    let mut rig = Rig::new(b, "torture-corrupt", None, plan.rate);
    let mut outcome = match corrupt(&mut rig, plan) {
        Ok(o) => o,
        Err(e) => Outcome::broken(LABEL, e, Vec::new()),
    };
    outcome.commands = rig.commands.clone();
    outcome
}

fn corrupt(rig: &mut Rig<'_>, plan: &Plan) -> Result<Outcome, String> {
    rig.check()?;
    let mut checks = Checks::default();
    // A backlog: load with the upstream down, then an orderly stop (it keeps the queue).
    let mut hk = rig.start_hekate()?;
    let mut flood = rig.start_flood()?;
    thread::sleep(plan.backlog);
    let sent = stop_flood(&mut flood)?;
    thread::sleep(Duration::from_millis(500));
    stop_hekate(&mut hk).map_err(|e| format!("stopping hekate with a backlog: {e}"))?;
    let (kept_lines, kept) = log_lines(&hk.stderr(), "kept in");

    let dir = rig.queue_dir();
    let before = scan_queue(&dir).map_err(|e| format!("reading the queue: {e}"))?;
    let mut queued = SeqSet::new();
    for r in &before.records {
        if let Some((c, s)) = r.stamp {
            queued.insert(c, s);
        }
    }
    // The middle segment that has records; random bytes over the middle of it.
    let mut with_records: Vec<u64> = before.records.iter().map(|r| r.segment).collect();
    with_records.dedup();
    let Some(&segment) = with_records.get(with_records.len() / 2) else {
        return Err(format!(
            "no backlog to corrupt (flood sent {}; the queue is empty)",
            thousands(sent.sent)
        ));
    };
    let seg_len = before
        .segments
        .iter()
        .find(|s| s.0 == segment)
        .map_or(0, |s| s.1);
    let len = DAMAGE.min(seg_len / 4).max(1);
    let offset = seg_len / 2;
    let mut rng = Prng::new(plan.seed ^ 0xC0FF_EE00);
    let garbage: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
    let path = dir.join(format!("{segment}.log"));
    OpenOptions::new()
        .write(true)
        .open(&path)
        .and_then(|f| f.write_all_at(&garbage, offset))
        .map_err(|e| format!("corrupting {}: {e}", path.display()))?;
    let mut damaged = SeqSet::new();
    for r in &before.records {
        if r.segment == segment && r.start < offset + len && r.end > offset {
            if let Some((c, s)) = r.stamp {
                damaged.insert(c, s);
            }
        }
    }

    // What `hekate queue check` says about it (it should find the damage, exit 1).
    let mut check = rig.b.launch("torture-corrupt-queue-check", "hekate").args([
        "queue".to_owned(),
        "check".into(),
        dir.display().to_string(),
    ]);
    if let Availability::Ready(bin) = &rig.b.hekate {
        check.exe = Some(bin.clone());
    }
    let check_cmd = check.command_line();
    let mut checker = check.spawn(&rig.b.opts.run_dir)?;
    let check_status = checker.wait(Duration::from_secs(30));
    let check_out = checker.stdout();
    let (check_corrupt_lines, check_first) = log_lines(&check_out, "corrupt: ");
    checks.expect(check_status.is_some_and(|s| s.code() == Some(1)), || {
        format!(
            "`hekate queue check` on the damaged queue: {} (exit 1 expected): {}",
            describe_exit(check_status),
            checker.tail(3)
        )
    });

    // Restart with the upstream back: the rest must be delivered, the damage skipped.
    let (mut sink, log) = rig.start_sink()?;
    let restart_ns = now_ns();
    let mut hk = rig.start_hekate()?;
    let drained = await_queue_at_most(&rig.report_file, restart_ns, 0, plan.drain, &mut hk);
    checks.expect(drained.is_some(), || {
        format!(
            "the queue was not delivered within {} s of the restart",
            plan.drain.as_secs()
        )
    });
    thread::sleep(Duration::from_secs(1));
    let alive = still_running(&mut hk, "while delivering the damaged queue");
    if let Err(e) = &alive {
        checks.fail(e.clone());
    }
    stop_sink_when_quiet(
        &mut sink,
        &log,
        Duration::from_secs(1),
        Duration::from_secs(15),
    );
    let stderr = hk.stderr();
    if alive.is_ok()
        && let Err(e) = stop_hekate(&mut hk)
    {
        checks.fail(format!("at the end: {e}"));
    }
    let reports = output_reports(&rig.report_file, QUEUE_OUTPUT);
    let field = |k: &str| {
        reports
            .iter()
            .filter(|r| r.get("Timestamp").is_some_and(|&t| t as u64 > restart_ns))
            .filter_map(|r| r.get(k).copied())
            .max()
            .unwrap_or(0)
            .max(0) as u64
    };
    let skipped_regions = field("QueueCorruptRecordsSkipped");
    let skipped_bytes = field("QueueCorruptBytesSkipped");
    let (corrupt_lines, first_corrupt) = log_lines(&stderr, "corrupt bytes at offset");

    let got = read_sink(&[&log], None)?;
    let lost = queued.minus(&got.set);
    let lost_outside = lost.minus(&damaged);
    let damaged_delivered = damaged.intersection(&got.set);
    let unexpected = got.set.minus(&queued);

    checks.expect(lost_outside.is_empty(), || {
        format!(
            "{} records outside the overwritten bytes were lost: {}",
            thousands(lost_outside.len()),
            lost_outside.sample(4)
        )
    });
    checks.expect(damaged_delivered.is_empty(), || {
        format!(
            "{} records the garbage overwrote were delivered anyway: {}",
            thousands(damaged_delivered.len()),
            damaged_delivered.sample(4)
        )
    });
    checks.expect(unexpected.is_empty() && got.foreign == 0, || {
        format!(
            "the sink got {} messages that were not in the queue and {} unstamped records",
            thousands(unexpected.len()),
            got.foreign
        )
    });
    checks.expect(skipped_regions > 0, || {
        format!("hekate's report counts no corrupt region skipped (QueueCorruptRecordsSkipped {skipped_regions})")
    });
    checks.expect(got.duplicates.is_empty(), || {
        format!("{} duplicates at the sink", got.duplicates.len())
    });

    let figures = format!(
        "{} records queued with the upstream down (hekate stopped with them kept: {}); {} random \
         bytes written at offset {} of segment {segment}.log ({} bytes), touching {} records; \
         `hekate queue check`: {}, {} line(s) on corruption, first: {}; after the restart \
         hekate reported {} corrupt region(s), {} bytes skipped, and logged {} line(s) on \
         corruption, first: {}; it kept running: {}; lost {} records, {} of them outside the \
         overwritten bytes; delivered {}; duplicates {}.",
        thousands(queued.len()),
        if kept_lines > 0 {
            kept.as_deref().unwrap_or("")
        } else {
            "no \"kept in\" line"
        },
        len,
        offset,
        seg_len,
        thousands(damaged.len()),
        describe_exit(check_status),
        check_corrupt_lines,
        check_first.as_deref().unwrap_or("—"),
        skipped_regions,
        thousands(skipped_bytes),
        corrupt_lines,
        first_corrupt.as_deref().unwrap_or("—"),
        if alive.is_ok() { "yes" } else { "no" },
        thousands(lost.len()),
        thousands(lost_outside.len()),
        thousands(got.set.len()),
        thousands(got.duplicates.len() as u64),
    );
    let mut commands = vec![check_cmd];
    commands.extend(rig.commands.iter().cloned());
    rig.commands = commands;
    Ok(Outcome {
        label: LABEL.into(),
        verdict: checks.verdict(),
        cells: [
            format!(
                "{} ({} in the overwritten bytes)",
                thousands(lost.len()),
                thousands(damaged.len())
            ),
            thousands(got.duplicates.len() as u64),
            "—".into(),
            "—".into(),
        ],
        figures,
        findings: Vec::new(),
        commands: Vec::new(),
        data: json!({
            "queued": queued.len(),
            "segment": segment,
            "segment_len": seg_len,
            "offset": offset,
            "damage_len": len,
            "damaged_records": damaged.len(),
            "queue_check_exit": check_status.and_then(|s| s.code()),
            "reported_corrupt_regions": skipped_regions,
            "reported_corrupt_bytes": skipped_bytes,
            "log_corrupt_lines": corrupt_lines,
            "kept_running": alive.is_ok(),
            "lost": lost.len(),
            "lost_outside_damage": lost_outside.len(),
            "delivered": got.set.len(),
            "duplicates": got.duplicates.len(),
        }),
    })
}
