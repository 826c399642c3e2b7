//! Scenario 1: kill -9 cycles under load (see the [module docs](super)).

use std::thread;
use std::time::Duration;

use serde_json::json;

use super::durable::{StreamReader, scan_queue};
use super::ledger::{against_sent, read_file, read_sink};
use super::rig::{
    Prng, Rig, await_queue_at_most, proc_status_kb, still_running, stop_flood, stop_hekate,
    stop_sink_when_quiet,
};
use super::seqset::SeqSet;
use super::{Checks, Outcome, Plan, mb, secs};
use crate::flood::now_ns;
use crate::harness::{Bench, thousands};

/// Row label.
pub const LABEL: &str = "kill -9 cycles";

/// What one kill left on disk.
#[derive(Debug, Default, serde::Serialize)]
struct Kill {
    /// When, ns since the epoch.
    at_ns: u64,
    /// How long hekate had run since it accepted connections, s.
    ran_s: f64,
    /// New whole records in the file since the last kill.
    file_records: u64,
    /// Of those, records whose message was in the file before.
    file_duplicates: u64,
    /// Whether the file ended in a torn record.
    file_torn: bool,
    /// Unacknowledged stamped records in the queue.
    queue_records: u64,
    /// Bytes of a torn last record in the queue.
    queue_torn_bytes: u64,
    /// Damaged regions in the queue (a kill should leave none).
    queue_corrupt_regions: u64,
    /// Seconds from the kill until the restarted hekate accepted connections.
    down_s: f64,
    /// Of those, seconds the dead hekate's listener stayed in the kernel after it was reaped
    /// (the restart waits for it to go).
    linger_s: f64,
}

pub fn run(b: &Bench, plan: &Plan) -> Outcome {
    let mut rig = Rig::new(b, "torture-kill", None, plan.rate);
    let mut outcome = match cycles(&mut rig, plan) {
        Ok(o) => o,
        Err(e) => Outcome::broken(LABEL, e, Vec::new()),
    };
    outcome.commands = rig.commands.clone();
    outcome
}

fn cycles(rig: &mut Rig<'_>, plan: &Plan) -> Result<Outcome, String> {
    rig.check()?;
    let (mut sink, sink_log) = rig.start_sink()?;
    let mut hk = rig.start_hekate()?;
    let mut ready_ns = now_ns();
    let mut flood = rig.start_flood()?;
    let mut rng = Prng::new(plan.seed);
    let mut checks = Checks::default();

    let mut file = StreamReader::new(&rig.out_file);
    let mut seen_in_file = SeqSet::new();
    let mut seen_in_queue = SeqSet::new();
    let mut kills: Vec<Kill> = Vec::new();
    // (kill, ready again), ns: when hekate was down.
    let mut down: Vec<(u64, u64)> = Vec::new();
    let mut lifetimes = vec![ready_ns];
    let mut restart_failure = None;
    let mut peak_rss_kb = 0u64;
    for k in 0..plan.cycles {
        let run_for = rng.uniform(0.5, 3.0);
        thread::sleep(Duration::from_secs_f64(run_for));
        if let Err(e) = still_running(&mut hk, &format!("on its own before kill {}", k + 1)) {
            checks.fail(e);
            break;
        }
        peak_rss_kb = peak_rss_kb.max(proc_status_kb(hk.pid(), "VmHWM").unwrap_or(0));
        let at_ns = now_ns();
        hk.signal(libc::SIGKILL);
        if hk.wait(Duration::from_secs(10)).is_none() {
            checks.fail(format!("hekate did not die within 10 s of kill {}", k + 1));
            break;
        }
        // What a restart finds: whole records of the file, the queue after its checkpoint.
        let mut kill = Kill {
            at_ns,
            ran_s: at_ns.saturating_sub(ready_ns) as f64 / 1e9,
            ..Kill::default()
        };
        let step = file
            .read_new(|c, s, _| {
                if !seen_in_file.insert(c, s) {
                    kill.file_duplicates += 1;
                }
            })
            .map_err(|e| format!("reading the file after kill {}: {e}", k + 1))?;
        kill.file_records = step.records;
        kill.file_torn = file.trailing_bytes() > 0;
        let scan = scan_queue(&rig.queue_dir())
            .map_err(|e| format!("reading the queue after kill {}: {e}", k + 1))?;
        for r in &scan.records {
            if let Some((c, s)) = r.stamp {
                seen_in_queue.insert(c, s);
                kill.queue_records += 1;
            }
        }
        kill.queue_torn_bytes = scan.tail_bytes;
        kill.queue_corrupt_regions = scan.corrupt_regions;
        match rig.start_hekate() {
            Ok(p) => hk = p,
            Err(e) => {
                restart_failure = Some(format!("after kill {}: {e}", k + 1));
                kills.push(kill);
                break;
            }
        }
        ready_ns = now_ns();
        kill.down_s = ready_ns.saturating_sub(at_ns) as f64 / 1e9;
        kill.linger_s = rig.lingered.last().map_or(0.0, |d| d.as_secs_f64());
        down.push((at_ns, ready_ns));
        lifetimes.push(ready_ns);
        kills.push(kill);
    }
    if let Some(e) = restart_failure {
        checks.fail(format!("hekate did not restart {e}"));
        let _ = stop_flood(&mut flood);
        sink.stop(Duration::from_secs(1));
        return Ok(Outcome {
            verdict: checks.verdict(),
            data: json!({ "kills": kills }),
            ..Outcome::broken(LABEL, "", Vec::new())
        });
    }

    // Let the last run carry some load, stop the load, let the queue drain, stop cleanly.
    thread::sleep(Duration::from_secs(1));
    let flood_stopped_ns = now_ns();
    let sent = stop_flood(&mut flood);
    let drained = await_queue_at_most(&rig.report_file, flood_stopped_ns, 0, plan.drain, &mut hk);
    checks.expect(drained.is_some(), || {
        format!(
            "the queue did not drain within {} s after the load stopped",
            plan.drain.as_secs()
        )
    });
    peak_rss_kb = peak_rss_kb.max(proc_status_kb(hk.pid(), "VmHWM").unwrap_or(0));
    stop_sink_when_quiet(
        &mut sink,
        &sink_log,
        Duration::from_secs(1),
        Duration::from_secs(15),
    );
    if let Err(e) = stop_hekate(&mut hk) {
        checks.fail(format!("at the end: {e}"));
    }
    let sent = sent?;
    checks.expect(sent.errors.is_empty(), || {
        format!("the flood failed: {}", sent.errors.join("; "))
    });

    // What ended where.
    let final_file = read_file(&rig.out_file, None)?;
    let got = read_sink(&[&sink_log], None)?;
    let lost_from_file = seen_in_file.minus(&final_file.set);
    let lost_from_queue = seen_in_queue.minus(&got.set);
    let mut accepted = seen_in_file.clone();
    accepted.extend(&seen_in_queue);
    let mut lost = lost_from_file.clone();
    lost.extend(&lost_from_queue);
    let everywhere = against_sent(&sent, &[&final_file.set, &got.set]);
    let in_file_not_sink = final_file.set.minus(&got.set).len();
    let at_sink_not_file = got.set.minus(&final_file.set).len();

    // Duplicates at the sink, by the hekate lifetime they arrived in; each should be a record
    // the queue replayed (it was unacknowledged at a kill).
    let mut dups_per_life = vec![0u64; lifetimes.len()];
    let mut unexplained = SeqSet::new();
    for d in &got.duplicates {
        let life = lifetimes
            .partition_point(|&t| t <= d.at_ns)
            .saturating_sub(1);
        dups_per_life[life] += 1;
        if !seen_in_queue.contains(d.conn, d.seq) {
            unexplained.insert(d.conn, d.seq);
        }
    }
    let max_dups = dups_per_life.iter().copied().max().unwrap_or(0);
    let max_queue_at_kill = kills.iter().map(|k| k.queue_records).max().unwrap_or(0);
    let max_file_dups = kills.iter().map(|k| k.file_duplicates).max().unwrap_or(0);
    let nowhere_runs = everywhere.nowhere.runs();
    let largest_run = nowhere_runs
        .iter()
        .map(|&(_, a, b)| b - a + 1)
        .max()
        .unwrap_or(0);
    let (stall_all, stall_all_at) = got.longest_gap(&[]);
    let (stall_up, _) = got.longest_gap(&down);
    let mean_down = if down.is_empty() {
        0.0
    } else {
        kills.iter().map(|k| k.down_s).sum::<f64>() / down.len() as f64
    };
    let torn_file = kills.iter().filter(|k| k.file_torn).count();
    let torn_queue = kills.iter().filter(|k| k.queue_torn_bytes > 0).count();
    let corrupt_after_kill: Vec<usize> = kills
        .iter()
        .enumerate()
        .filter(|(_, k)| k.queue_corrupt_regions > 0)
        .map(|(i, _)| i + 1)
        .collect();

    checks.expect(lost.is_empty(), || {
        format!(
            "{} of {} messages hekate held in a replayable place were lost ({} noted in the file \
             at a kill and missing from the final file: {}; {} noted in the queue at a kill and \
             never delivered: {})",
            thousands(lost.len()),
            thousands(accepted.len()),
            thousands(lost_from_file.len()),
            lost_from_file.sample(4),
            thousands(lost_from_queue.len()),
            lost_from_queue.sample(4)
        )
    });
    checks.expect(unexplained.is_empty(), || {
        format!(
            "{} duplicates at the sink were never unacknowledged in the queue at a kill: {}",
            thousands(unexplained.len()),
            unexplained.sample(4)
        )
    });
    checks.expect(final_file.duplicates == 0, || {
        format!(
            "{} messages are in the file more than once (a FileOutput never replays)",
            thousands(final_file.duplicates)
        )
    });
    checks.expect(final_file.skipped_bytes == 0, || {
        format!(
            "{} bytes of the file are not whole records (a torn record was not cut at restart?)",
            thousands(final_file.skipped_bytes)
        )
    });
    checks.expect(everywhere.unexpected == 0, || {
        format!(
            "{} messages arrived that were never sent",
            thousands(everywhere.unexpected)
        )
    });
    checks.expect(corrupt_after_kill.is_empty(), || {
        format!(
            "the queue held damaged records after kill(s) {:?} (a kill should only tear the tail)",
            corrupt_after_kill
        )
    });
    checks.expect(got.foreign == 0, || {
        format!("{} unstamped records reached the sink", got.foreign)
    });

    let lingering: Vec<f64> = kills
        .iter()
        .map(|k| k.linger_s)
        .filter(|&s| s >= 0.001)
        .collect();
    let max_linger = lingering.iter().copied().fold(0.0, f64::max);
    let figures = format!(
        "{} kills after 0.5–3 s of load each (hekate down {} on average, kill to accepting \
         again); lost {} of {} messages seen durable at a kill ({} in the file, {} \
         unacknowledged in the queue); duplicates at the sink {} in total, at most {} in one \
         life of hekate (the queue held at most {} unacknowledged records at a kill), every one \
         a record unacknowledged in the queue at a kill: {}; duplicates in the file {} (at most {} between two kills); flood sent {}, the file has {}, the sink got \
         {} distinct; {} were in hekate's memory only at a kill (in flight, unacknowledged; {} \
         runs, the largest {}), {} reached the file but not the sink and {} the sink but not the \
         file (the other output had not taken them yet at a kill); longest gap in the sink's \
         timeline {} overall, {} not counting the time hekate was down; torn last records at a \
         kill: file {} times, queue {} times; the dead hekate's listener lingered after it was \
         reaped in {} kills, up to {:.0} ms; the flood's {} connections reconnected {} times; \
         hekate's peak RSS (VmHWM, largest of its lives) {}.",
        kills.len(),
        secs(mean_down),
        thousands(lost.len()),
        thousands(accepted.len()),
        thousands(seen_in_file.len()),
        thousands(seen_in_queue.len()),
        thousands(got.duplicates.len() as u64),
        thousands(max_dups),
        thousands(max_queue_at_kill),
        if unexplained.is_empty() { "yes" } else { "no" },
        thousands(final_file.duplicates),
        thousands(max_file_dups),
        thousands(sent.sent),
        thousands(final_file.set.len()),
        thousands(got.set.len()),
        thousands(everywhere.nowhere.len()),
        nowhere_runs.len(),
        thousands(largest_run),
        thousands(in_file_not_sink),
        thousands(at_sink_not_file),
        secs(stall_all),
        secs(stall_up),
        torn_file,
        torn_queue,
        lingering.len(),
        max_linger * 1000.0,
        sent.connections.len(),
        sent.reconnects,
        mb(peak_rss_kb as f64 * 1024.0),
    );
    let mut findings = Vec::new();
    if !lingering.is_empty() {
        findings.push(format!(
            "after kill -9 the dead hekate's listening socket stayed in the kernel, still \
             completing TCP handshakes, for up to {:.0} ms after the process was reaped ({} of \
             {} kills; the kernel releases it when it tears down the process's io_uring, \
             asynchronously). A hekate started in that window exits 1 with \"hekate: TcpInput \
             'in': address 127.0.0.1:PORT is in use by another process\" (the probe of \
             engine/src/runtime/claim.rs binds with SO_REUSEADDR, without SO_REUSEPORT, which \
             the lingering SO_REUSEPORT listener refuses), and senders that connect meanwhile \
             write into a dead backlog. The harness waits for the port before each restart; \
             without the wait, kill 25 of an earlier full run hit it. Reproduce: `hekate run -c \
             CONFIG & sleep 0.5; kill -9 $!; wait; hekate run -c CONFIG` (refused in 5 of 20 \
             tries here)",
            max_linger * 1000.0,
            lingering.len(),
            kills.len(),
        ));
    }
    let expected_reconnects = sent.connections.len() as u64 * down.len() as u64;
    if sent.reconnects > expected_reconnects {
        findings.push(format!(
            "the flood's connections reconnected {} times for {} restarts of hekate ({} \
             expected): connections are accepted and then reset around a restart, and what the \
             sender wrote on them is lost (it counts here as in flight): the dead hekate's \
             listener lingers (above), and the kernel completes handshakes on it until it tears \
             down the process's io_uring",
            sent.reconnects,
            down.len(),
            expected_reconnects
        ));
    }
    Ok(Outcome {
        label: LABEL.into(),
        verdict: checks.verdict(),
        cells: [
            format!("{} of {}", thousands(lost.len()), thousands(accepted.len())),
            format!(
                "sink {} (max {} per kill), file {}",
                thousands(got.duplicates.len() as u64),
                thousands(max_dups),
                thousands(final_file.duplicates)
            ),
            format!("{} ({} with hekate up)", secs(stall_all), secs(stall_up)),
            mb(peak_rss_kb as f64 * 1024.0),
        ],
        figures,
        findings,
        commands: Vec::new(),
        data: json!({
            "seed": plan.seed,
            "kills": kills,
            "lost": lost.len(),
            "lost_from_file": lost_from_file.len(),
            "lost_from_queue": lost_from_queue.len(),
            "seen_in_file": seen_in_file.len(),
            "seen_in_queue": seen_in_queue.len(),
            "sink_duplicates": got.duplicates.len(),
            "sink_duplicates_per_lifetime": dups_per_life,
            "unexplained_duplicates": unexplained.len(),
            "file_duplicates": final_file.duplicates,
            "sent": sent.sent,
            "flood_reconnects": sent.reconnects,
            "in_file": final_file.set.len(),
            "at_sink": got.set.len(),
            "in_flight_never_arrived": everywhere.nowhere.len(),
            "in_file_not_sink": in_file_not_sink,
            "at_sink_not_file": at_sink_not_file,
            "longest_gap_s": stall_all,
            "longest_gap_at_ns": stall_all_at,
            "longest_gap_hekate_up_s": stall_up,
            "file_skipped_bytes": final_file.skipped_bytes,
            "peak_rss_kb": peak_rss_kb,
        }),
    })
}
