//! Scenario 3: the queue's disk full (a small tmpfs) while the upstream is down (see the
//! [module docs](super)).

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::json;

use super::durable::scan_queue;
use super::ledger::{against_sent, read_file, read_sink};
use super::rig::{
    QUEUE_OUTPUT, Rig, Sampler, await_queue_at_most, file_growth, log_lines, output_reports,
    proc_status_kb, sample_at, still_running, stop_flood, stop_hekate, stop_sink_when_quiet,
};
use super::seqset::SeqSet;
use super::{Checks, Outcome, Plan, mb, secs};
use crate::flood::now_ns;
use crate::harness::{Bench, thousands};

/// Row label.
pub const LABEL: &str = "queue disk full";

/// The file's rate while the queue's disk is full must be at least this share of the flood's.
const MIN_RATE_RATIO: f64 = 0.95;
/// The disk counts as full below this much free space.
const FULL_BELOW: u64 = 256 * 1024;

/// A tmpfs mounted for the scenario, unmounted when dropped.
#[derive(Debug)]
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Result<Tmpfs, String> {
        std::fs::create_dir_all(at).map_err(|e| format!("{}: {e}", at.display()))?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_owned());
        }
        Ok(Tmpfs(at.to_owned()))
    }

    /// Free bytes.
    fn free(&self) -> u64 {
        let Ok(path) = CString::new(self.0.as_os_str().as_bytes()) else {
            return 0;
        };
        // SAFETY: statvfs(3) with a NUL-terminated path and a zeroed struct to fill.
        unsafe {
            let mut st: libc::statvfs = std::mem::zeroed();
            if libc::statvfs(path.as_ptr(), &mut st) != 0 {
                return 0;
            }
            st.f_bavail as u64 * st.f_frsize as u64
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let ok = Command::new("umount")
            .arg(&self.0)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
}

pub fn run(b: &Bench, plan: &Plan) -> Outcome {
    let at = b.scratch("torture-disk-full").join("queue-disk");
    let disk = match Tmpfs::mount(&at, &plan.tmpfs_size) {
        Ok(d) => d,
        Err(e) => {
            return Outcome::not_run(
                LABEL,
                format!(
                    "cannot mount a {} tmpfs for the queue at {} (needs root): {e}",
                    plan.tmpfs_size,
                    at.display()
                ),
            );
        }
    };
    let mut rig = Rig::new(b, "torture-disk-full", Some(at.join("base")), plan.rate);
    let mut outcome = match disk_full(&mut rig, plan, &disk) {
        Ok(o) => o,
        Err(e) => Outcome::broken(LABEL, e, Vec::new()),
    };
    outcome.commands = rig.commands.clone();
    outcome.commands.insert(
        0,
        format!(
            "mount -t tmpfs -o size={} tmpfs {}",
            plan.tmpfs_size,
            at.display()
        ),
    );
    drop(disk);
    outcome
}

fn disk_full(rig: &mut Rig<'_>, plan: &Plan, disk: &Tmpfs) -> Result<Outcome, String> {
    rig.check()?;
    let mut checks = Checks::default();
    // The upstream is down from the start: no sink yet.
    let mut hk = rig.start_hekate()?;
    let sampler = Sampler::start(hk.pid(), &rig.out_file, &rig.queue_dir());
    let mut flood = rig.start_flood()?;
    let fill_start = Instant::now();
    let patience = Duration::from_secs(60);
    while disk.free() >= FULL_BELOW {
        if fill_start.elapsed() > patience {
            return Err(format!(
                "the queue did not fill its disk within {} s ({} free)",
                patience.as_secs(),
                mb(disk.free() as f64)
            ));
        }
        still_running(&mut hk, "while its queue filled the disk")?;
        thread::sleep(Duration::from_millis(50));
    }
    let full_ns = now_ns();
    let fill_s = fill_start.elapsed().as_secs_f64();
    thread::sleep(plan.full_hold);
    let alive = still_running(&mut hk, "while its queue's disk was full");
    if let Err(e) = &alive {
        checks.fail(e.clone());
    }

    // What the queue holds on its full disk must all arrive once the upstream is back.
    let queued = scan_queue(&rig.queue_dir()).map_err(|e| format!("reading the queue: {e}"))?;
    let mut in_queue = SeqSet::new();
    for r in &queued.records {
        if let Some((c, s)) = r.stamp {
            in_queue.insert(c, s);
        }
    }
    let t1 = now_ns();
    let (mut sink, log) = rig.start_sink()?;
    thread::sleep(plan.recovery);
    let stop_ns = now_ns();
    let sent = stop_flood(&mut flood);
    let drained = if alive.is_ok() {
        await_queue_at_most(&rig.report_file, stop_ns, 0, plan.drain, &mut hk)
    } else {
        None
    };
    checks.expect(drained.is_some(), || {
        format!(
            "the queue did not drain within {} s after the load stopped",
            plan.drain.as_secs()
        )
    });
    let hwm_kb = proc_status_kb(hk.pid(), "VmHWM").unwrap_or(0);
    stop_sink_when_quiet(
        &mut sink,
        &log,
        Duration::from_secs(1),
        Duration::from_secs(15),
    );
    if alive.is_ok()
        && let Err(e) = stop_hekate(&mut hk)
    {
        checks.fail(format!("at the end: {e}"));
    }
    let samples = sampler.finish();
    // What hekate said it kept at its stop, against what its queue holds on the disk.
    let mut on_disk_after = SeqSet::new();
    if let Ok(scan) = scan_queue(&rig.queue_dir()) {
        for r in &scan.records {
            if let Some((c, s)) = r.stamp {
                on_disk_after.insert(c, s);
            }
        }
    }
    let kept_said = kept_at_stop(&hk.stderr());
    let sent = sent?;
    checks.expect(sent.errors.is_empty(), || {
        format!("the flood failed: {}", sent.errors.join("; "))
    });

    // Messages written to the file once delivery had some time to resume must all arrive.
    let settle_ns = t1 + plan.recovery.as_nanos() as u64 / 2;
    let resumed_at = sample_at(&samples, settle_ns).map_or(u64::MAX, |s| s.file_bytes);
    let file = read_file(&rig.out_file, Some(resumed_at))?;
    let got = read_sink(&[&log], None)?;
    let file_missing = against_sent(&sent, &[&file.set]);
    let missing_at_sink = file.set.minus(&got.set);
    let queued_not_delivered = in_queue.minus(&got.set);
    let after_not_delivered = file.after.minus(&got.set);
    // Kept for after the restart: on disk, after the checkpoint, not delivered yet.
    let kept_on_disk = on_disk_after.minus(&got.set).len();
    let reports = output_reports(&rig.report_file, QUEUE_OUTPUT);
    let last = reports.last().cloned().unwrap_or_default();
    let field = |k: &str| last.get(k).copied().unwrap_or(0).max(0) as u64;
    let dropped = field("DroppedCount");
    let stderr = hk.stderr();
    let (not_queued_lines, first_not_queued) = log_lines(&stderr, "could not be queued");
    let (write_lines, first_write) = log_lines(&stderr, "writing its queue");
    let (nospace_lines, _) = log_lines(&stderr, "No space left");
    let (checkpoint_lines, first_checkpoint) = log_lines(&stderr, "cannot write checkpoint");
    let (closing_lines, first_closing) = log_lines(&stderr, "closing its queue");
    let rec_len = file.mean_record_len().max(1.0);
    let file_rate = file_growth(&samples, full_ns, t1) / rec_len;
    let ratio = file_rate / rig.rate;
    let rss_peak_kb = samples.iter().map(|s| s.rss_kb).max().unwrap_or(0);

    checks.expect(file_missing.nowhere.is_empty(), || {
        format!(
            "{} sent messages are missing from the file (on the normal disk): {}",
            thousands(file_missing.nowhere.len()),
            file_missing.nowhere.sample(4)
        )
    });
    checks.expect(ratio >= MIN_RATE_RATIO, || {
        format!(
            "the file took {file_rate:.0} msg/s while the queue's disk was full, {:.1}% of the \
             flood's {:.0} (< {:.0}%)",
            ratio * 100.0,
            rig.rate,
            MIN_RATE_RATIO * 100.0
        )
    });
    checks.expect(queued_not_delivered.is_empty(), || {
        format!(
            "{} of the {} records in the queue on the full disk never reached the sink: {}",
            thousands(queued_not_delivered.len()),
            thousands(in_queue.len()),
            queued_not_delivered.sample(4)
        )
    });
    checks.expect(missing_at_sink.len() <= dropped, || {
        format!(
            "{} messages in the file never reached the sink, but hekate counted only {} dropped \
             (DroppedCount of '{QUEUE_OUTPUT}'): {}",
            thousands(missing_at_sink.len()),
            thousands(dropped),
            missing_at_sink.sample(4)
        )
    });
    checks.expect(after_not_delivered.is_empty(), || {
        format!(
            "delivery did not recover: {} of the {} messages written after the upstream had been \
             back for {} never reached the sink: {}",
            thousands(after_not_delivered.len()),
            thousands(file.after.len()),
            secs(plan.recovery.as_secs_f64() / 2.0),
            after_not_delivered.sample(4)
        )
    });

    checks.expect(kept_said <= kept_on_disk, || {
        format!(
            "at its stop hekate said {} messages were kept in its queue, delivered after restart, \
             but its queue on disk holds {} undelivered ones ({} records after its checkpoint)",
            thousands(kept_said),
            thousands(kept_on_disk),
            thousands(on_disk_after.len())
        )
    });

    let mut findings = Vec::new();
    if !after_not_delivered.is_empty() && queued_not_delivered.is_empty() {
        let checkpoint = if checkpoint_lines > 0 {
            format!(
                "writing the checkpoint on the full disk failed ({checkpoint_lines} log lines, \
                 first: {})",
                first_checkpoint.as_deref().unwrap_or("—")
            )
        } else {
            "no checkpoint was written meanwhile (one is written every cursor_update_count \
             acknowledgements)"
                .to_owned()
        };
        findings.push(format!(
            "hekate does not recover from a full queue disk: once the upstream returned it \
             delivered the {} queued records, but acknowledged segments are deleted only after \
             a new checkpoint file is written (engine/src/queue/mod.rs, \
             DiskQueue::write_checkpoint; ENOSPC on append never reclaims), and {checkpoint}; \
             so nothing was freed, the disk stayed full, and every later message was dropped \
             ({} of {} written to the file after the upstream had been back for {} never \
             reached the sink)",
            thousands(in_queue.len()),
            thousands(after_not_delivered.len()),
            thousands(file.after.len()),
            secs(plan.recovery.as_secs_f64() / 2.0),
        ));
    }
    if kept_said > kept_on_disk {
        findings.push(format!(
            "at its stop hekate logged \"{} messages kept in …, delivered after restart\" but \
             its queue on disk holds {} undelivered messages (the {} records after its stale \
             checkpoint were all delivered already, and will come again after a restart): the \
             kept ones were records buffered in memory that closing the queue could not write \
             ({} line(s), first: {}); they are lost and not counted as dropped (DroppedCount {} \
             for {} messages missing at the sink)",
            thousands(kept_said),
            thousands(kept_on_disk),
            thousands(on_disk_after.len()),
            closing_lines,
            first_closing.as_deref().unwrap_or("—"),
            thousands(dropped),
            thousands(missing_at_sink.len()),
        ));
    }
    if dropped > 0 {
        findings.push(format!(
            "with its queue's disk full hekate keeps running and drops what it cannot queue, \
             counting it ({} dropped; {} log lines \"could not be queued\", first: {}; {} lines \
             \"writing its queue\", first: {})",
            thousands(dropped),
            not_queued_lines,
            first_not_queued.as_deref().unwrap_or("—"),
            write_lines,
            first_write.as_deref().unwrap_or("—"),
        ));
    }
    let figures = format!(
        "tmpfs {} for the queue, upstream down from the start, flood {} msg/s: the disk was full \
         after {}, held full {}; hekate kept running: {}; the file took {:.0} msg/s meanwhile \
         ({:.1}% of the flood), missing from the file {}; the queue held {} records on the full \
         disk, {} of them never delivered; {} messages never reached the sink, hekate counted \
         {} dropped ('{QUEUE_OUTPUT}' DroppedCount; QueueFullCount {}); log: {} \"could not be \
         queued\", {} \"writing its queue\", {} \"No space left\" lines; after the upstream \
         returned, {} of {} later messages were not delivered; at its stop hekate said {} \
         messages were kept, its queue on disk holds {} undelivered ({} after its checkpoint); \
         peak RSS {} sampled, VmHWM {}; flood \
         sent {}, sink got {} distinct.",
        mb(disk_size(disk) as f64),
        thousands(rig.rate as u64),
        secs(fill_s),
        secs(plan.full_hold.as_secs_f64()),
        if alive.is_ok() { "yes" } else { "no" },
        file_rate,
        ratio * 100.0,
        thousands(file_missing.nowhere.len()),
        thousands(in_queue.len()),
        thousands(queued_not_delivered.len()),
        thousands(missing_at_sink.len()),
        thousands(dropped),
        thousands(field("QueueFullCount")),
        not_queued_lines,
        write_lines,
        nospace_lines,
        thousands(after_not_delivered.len()),
        thousands(file.after.len()),
        thousands(kept_said),
        thousands(kept_on_disk),
        thousands(on_disk_after.len()),
        mb(rss_peak_kb as f64 * 1024.0),
        mb(hwm_kb as f64 * 1024.0),
        thousands(sent.sent),
        thousands(got.set.len()),
    );
    Ok(Outcome {
        label: LABEL.into(),
        verdict: checks.verdict(),
        cells: [
            format!(
                "{} of {} queued; {} not queued, {} counted dropped",
                thousands(queued_not_delivered.len()),
                thousands(in_queue.len()),
                thousands(missing_at_sink.len()),
                thousands(dropped)
            ),
            thousands(got.duplicates.len() as u64),
            "—".into(),
            mb(hwm_kb.max(rss_peak_kb) as f64 * 1024.0),
        ],
        figures,
        findings,
        commands: Vec::new(),
        data: json!({
            "tmpfs": plan.tmpfs_size,
            "rate": rig.rate,
            "fill_s": fill_s,
            "hekate_kept_running": alive.is_ok(),
            "file_rate_while_full": file_rate,
            "file_rate_ratio": ratio,
            "missing_from_file": file_missing.nowhere.len(),
            "queued_on_full_disk": in_queue.len(),
            "queued_not_delivered": queued_not_delivered.len(),
            "missing_at_sink": missing_at_sink.len(),
            "dropped_counted": dropped,
            "queue_full_count": field("QueueFullCount"),
            "log_could_not_be_queued": not_queued_lines,
            "log_writing_its_queue": write_lines,
            "log_no_space": nospace_lines,
            "after_recovery_not_delivered": after_not_delivered.len(),
            "after_recovery": file.after.len(),
            "log_cannot_write_checkpoint": checkpoint_lines,
            "kept_at_stop_said": kept_said,
            "kept_at_stop_on_disk_undelivered": kept_on_disk,
            "queue_records_after_checkpoint_at_stop": on_disk_after.len(),
            "rss_peak_sampled_kb": rss_peak_kb,
            "vm_hwm_kb": hwm_kb,
            "sent": sent.sent,
            "at_sink": got.set.len(),
            "sink_duplicates": got.duplicates.len(),
        }),
    })
}

/// N of hekate's last "N messages kept in …" line (0 without one).
fn kept_at_stop(stderr: &str) -> u64 {
    stderr
        .lines()
        .rev()
        .find_map(|l| {
            let (before, _) = l.split_once(" messages kept in ")?;
            before.rsplit(' ').next()?.parse().ok()
        })
        .unwrap_or(0)
}

/// Total size of the tmpfs.
fn disk_size(disk: &Tmpfs) -> u64 {
    let Ok(path) = CString::new(disk.0.as_os_str().as_bytes()) else {
        return 0;
    };
    // SAFETY: statvfs(3) with a NUL-terminated path and a zeroed struct to fill.
    unsafe {
        let mut st: libc::statvfs = std::mem::zeroed();
        if libc::statvfs(path.as_ptr(), &mut st) != 0 {
            return 0;
        }
        st.f_blocks as u64 * st.f_frsize as u64
    }
}
