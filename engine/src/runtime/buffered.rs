//! A buffered output (`use_buffering`): its lanes feed a [`DiskQueue`], and the output is fed
//! from the queue, as in Heka.
//!
//! Two loops run on the instance's shard, in one task, sharing the queue (never borrowed across
//! an await):
//!
//! - **intake** pops batches from the lanes and appends every message to the queue, then
//!   flushes it (what an input handed over survives kill -9). It never waits for the output, so
//!   the lanes keep draining while the upstream is dead. When the queue is at
//!   `max_buffer_size` it applies `full_action`: `block` stops taking from the lanes until
//!   the queue has room (the router, then the inputs, wait), `drop` drops and counts, `shutdown`
//!   asks the coordinator to stop hekate and drops meanwhile.
//! - **delivery** reads records from the queue (the backlog of an earlier run first: it is first
//!   in the queue), hands them to the output, flushes by the output's rules, and acknowledges
//!   the cursor of the last record that left the output: written, and confirmed by the
//!   destination where the output waits for that (a TcpOutput: acknowledged by the peer's TCP
//!   on a connection that stayed up; see [`Output::unconfirmed`]), or dropped and counted.
//!
//! The queue's checkpoint moves at most every [`CHECKPOINT_INTERVAL`] (see there).
//!
//! At shutdown, once intake has drained the lanes, delivery makes a last, bounded flush; what is
//! left stays in the queue directory and is delivered after restart — it is not lost.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures_lite::future;

use super::runner::{
    FinishGuard, Inbound, LiveGuard, REPORT_REFRESH, RunnerCtx, flush_output, with_refresh,
};
use crate::mesh::Doorbell;
use crate::plugin::{Delivery, FieldCollector, Output, ReportSink, ShardEvent};
use crate::queue::{Appended, Cursor, DiskQueue};
use crate::stats::{ReportField, add};
use hekate_config::FullAction;
use hekate_model::message::MessageView;

/// Records handed to the output between two looks at the clock and the flush rules.
const READ_BATCH: usize = 256;
/// The queue's checkpoint is written at most this often (and every second after a quiet spell,
/// by the reporter): a checkpoint per acknowledgement (create, write, rename) cost a buffered
/// TcpOutput 8% of its core. After a kill -9, records acknowledged within the interval before
/// it are sent again (duplicates, never a loss).
pub(crate) const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(50);
/// How long the last flush at shutdown may take (a dead upstream would take for ever).
const FINAL_FLUSH: Duration = Duration::from_secs(2);

/// What the two loops share.
struct Shared {
    queue: RefCell<DiskQueue>,
    /// Rung by intake after appending and when it ends (delivery waits on it).
    data: Doorbell,
    appends: Cell<u64>,
    /// Rung by delivery after acknowledging (a blocked intake waits on it).
    room: Doorbell,
    acks: Cell<u64>,
    intake_done: Cell<bool>,
    /// Delivery has ended (the reporter stops).
    delivery_done: Cell<bool>,
    /// The output's own report fields, as delivery last collected them (delivery may wait
    /// long in a flush; the reporter publishes them with the queue's every second).
    out_fields: RefCell<Vec<ReportField>>,
}

/// Drives a buffered output until the outputs stop: see the module docs.
pub(crate) async fn run_buffered_output(
    mut out: Box<dyn Output>,
    mut inbound: Inbound,
    ctx: RunnerCtx,
    queue: DiskQueue,
    full_action: FullAction,
) {
    let _finished = FinishGuard(Arc::clone(&ctx.lifecycle));
    let _live = LiveGuard(Arc::clone(&ctx.live));
    let shared = Shared {
        queue: RefCell::new(queue),
        data: Doorbell::new(),
        appends: Cell::new(0),
        room: Doorbell::new(),
        acks: Cell::new(0),
        intake_done: Cell::new(false),
        delivery_done: Cell::new(false),
        out_fields: RefCell::new(Vec::new()),
    };
    collect_output_fields(&*out, &shared);
    publish_report(&ctx, &shared);
    let delivery = async {
        deliver(&mut *out, &ctx, &shared).await;
        shared.delivery_done.set(true);
        shared.data.ring();
    };
    future::zip(
        future::zip(intake(&mut inbound, &ctx, &shared, full_action), delivery),
        reporter(&ctx, &shared),
    )
    .await;
    out.close().await;
    collect_output_fields(&*out, &shared);
    publish_report(&ctx, &shared);
    let queue = shared.queue.into_inner();
    let mut kept = queue.pending_records();
    let unwritten = queue.unwritten_records();
    let dir = queue.dir().display().to_string();
    if let Err(e) = queue.close() {
        tracing::error!("Output '{}': closing its queue: {e}", ctx.name);
        if unwritten > 0 {
            // They never reached the disk (it is full): lost, not kept.
            add(&ctx.counters().dropped, unwritten);
            kept = kept.saturating_sub(unwritten);
            let _ = ctx.events.send(ShardEvent::Lost {
                reason: format!(
                    "output '{}' could not write {unwritten} messages to its queue {dir} (no space left); they were lost",
                    ctx.name
                ),
            });
        }
    }
    if kept > 0 {
        tracing::warn!(
            "Output '{}': {kept} messages kept in {dir}, delivered after restart (or a reload that brings the output back)",
            ctx.name
        );
    }
    ctx.held.store(0, Ordering::Release);
}

/// Takes every batch from the lanes into the queue until the outputs stop and the lanes are
/// drained.
async fn intake(inbound: &mut Inbound, ctx: &RunnerCtx, shared: &Shared, full_action: FullAction) {
    let mut shutdown_asked = false;
    loop {
        while let Some((lane, batch)) = inbound.pop() {
            ctx.held.store(batch.len() as u64, Ordering::Release);
            let c = ctx.counters();
            for (view, _loops) in batch.iter() {
                add(&c.received, 1);
                loop {
                    let appended = shared.queue.borrow_mut().append(view.bytes());
                    match appended {
                        Ok(Appended::Queued) => {
                            shared.appends.set(shared.appends.get() + 1);
                        }
                        Ok(Appended::Full) if full_action == FullAction::Block => {
                            // Make what is queued readable, then wait for delivery to make room.
                            flush_queue(ctx, shared);
                            let acks = shared.acks.get();
                            shared.room.wait(|| shared.acks.get() != acks).await;
                            continue;
                        }
                        Ok(Appended::Full) => {
                            add(&c.dropped, 1);
                            if full_action == FullAction::Shutdown {
                                if !std::mem::replace(&mut shutdown_asked, true) {
                                    let _ = ctx.events.send(ShardEvent::Shutdown {
                                        reason: format!(
                                            "Output '{}': its queue {} is full (max_buffer_size) \
                                             and its full_action is \"shutdown\"",
                                            ctx.name,
                                            shared.queue.borrow().dir().display()
                                        ),
                                    });
                                }
                            } else {
                                crate::plugin::log::warn_limited!(
                                    "Output '{}': its queue is full (max_buffer_size, full_action = \"drop\"); a message was dropped",
                                    ctx.name
                                );
                            }
                        }
                        Err(e) => {
                            add(&c.dropped, 1);
                            crate::plugin::log::warn_limited!(
                                "Output '{}': a message could not be queued: {e}",
                                ctx.name
                            );
                        }
                    }
                    break;
                }
            }
            // What the input handed over is in the kernel before its batch counts as done, and
            // is acknowledged only once written.
            let written = flush_queue(ctx, shared);
            inbound.done(lane, batch);
            if written {
                inbound.acknowledge();
            }
            ctx.held.store(0, Ordering::Release);
        }
        if (ctx.stop.is_set() || inbound.retired()) && inbound.is_empty() {
            break;
        }
        inbound.wait(None, &ctx.stop).await;
    }
    shared.intake_done.set(true);
    shared.data.ring();
}

/// Writes what was appended to the queue; false when it could not (it stays buffered).
fn flush_queue(ctx: &RunnerCtx, shared: &Shared) -> bool {
    let written = match shared.queue.borrow_mut().flush() {
        Ok(()) => true,
        Err(e) => {
            crate::plugin::log::warn_limited!("Output '{}': writing its queue: {e}", ctx.name);
            false
        }
    };
    shared.data.ring();
    written
}

/// The records handed to the output that have not left it yet, oldest first, each with its
/// queue cursor and whether the output kept it (one it refused, or encoded to nothing, leaves
/// at once). Records leave an output in the order they came, so the queue is acknowledged up to
/// the last one that left: written (and confirmed, where the output waits for that) or dropped
/// and counted.
#[derive(Default)]
struct Handed {
    records: VecDeque<(Cursor, bool)>,
    kept: u64,
}

impl Handed {
    fn push(&mut self, cursor: Cursor, kept: bool) {
        self.records.push_back((cursor, kept));
        self.kept += u64::from(kept);
    }

    fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Forgets what left the output, which holds `held` records now; the cursor of the last
    /// record that left, if any did.
    fn release(&mut self, held: u64) -> Option<Cursor> {
        let mut leaving = self.kept.saturating_sub(held);
        let mut last = None;
        while let Some(&(cursor, kept)) = self.records.front() {
            if kept {
                if leaving == 0 {
                    break;
                }
                leaving -= 1;
                self.kept -= 1;
            }
            last = Some(cursor);
            self.records.pop_front();
        }
        last
    }
}

/// Records the output holds: not yet written, or written and not yet confirmed.
fn held(out: &dyn Output) -> u64 {
    out.buffered() + out.unconfirmed()
}

/// Hands the queue's records to the output, flushing by its rules and acknowledging what left
/// it, until intake has ended.
async fn deliver(out: &mut dyn Output, ctx: &RunnerCtx, shared: &Shared) {
    let mut handed = Handed::default();
    let mut refreshed = Instant::now();
    let mut stale = false;
    // Once intake has ended: when delivery gives up and leaves the rest queued.
    let mut ending_by: Option<Instant> = None;
    loop {
        let mut read = 0;
        {
            let mut queue = shared.queue.borrow_mut();
            // What the output holds, before each record and after it.
            let mut holding = held(out);
            while read < READ_BATCH && !out.must_flush() {
                let record = match queue.next() {
                    Ok(Some(r)) => r,
                    Ok(None) => break,
                    Err(e) => {
                        crate::plugin::log::warn_limited!(
                            "Output '{}': reading its queue: {e}",
                            ctx.name
                        );
                        break;
                    }
                };
                read += 1;
                let c = ctx.counters();
                match MessageView::new(record.message) {
                    Ok(view) => {
                        if let Err(e) = out.process(&Delivery { view, loops: 0 }) {
                            add(&c.dropped, 1);
                            crate::plugin::log::warn_limited!("Output '{}': {e}", ctx.name);
                        }
                    }
                    Err(e) => {
                        add(&c.dropped, 1);
                        crate::plugin::log::warn_limited!(
                            "Output '{}': a queued message is malformed: {e}",
                            ctx.name
                        );
                    }
                }
                let now_held = held(out);
                handed.push(record.cursor, now_held > holding);
                holding = now_held;
            }
            for w in queue.take_warnings() {
                tracing::warn!("Output '{}': {w}", ctx.name);
            }
        }
        if read > 0 {
            stale = true;
        }
        let ending = shared.intake_done.get();
        if ending && ending_by.is_none() {
            ending_by = Some(Instant::now() + FINAL_FLUSH);
        }
        let now = Instant::now();
        let flush_now = out.must_flush()
            || (out.should_flush(now) && (read < READ_BATCH || out.buffered() == 0));
        if (flush_now || ending) && !handed.is_empty() {
            let flushed = match ending_by {
                // Shutting down: bounded tries; what is not flushed by then stays queued.
                Some(by) => {
                    let attempt = async { out.flush().await.is_ok() };
                    let timeout = async {
                        glommio::timer::sleep(by.saturating_duration_since(Instant::now())).await;
                        false
                    };
                    future::or(attempt, timeout).await
                }
                None => flush_until(out, ctx, shared).await,
            };
            if let Some(cursor) = handed.release(held(out)) {
                if let Err(e) = shared.queue.borrow_mut().ack(cursor) {
                    tracing::error!("Output '{}': acknowledging its queue: {e}", ctx.name);
                }
                shared.acks.set(shared.acks.get() + 1);
                shared.room.ring();
            }
            add(&ctx.counters().delivered, out.take_written());
            stale = true;
            if !flushed || ending_by.is_some_and(|by| Instant::now() >= by) {
                break;
            }
        }
        if read > 0 {
            // A backlog drains in a tight loop: let the other tasks of this core (the inputs,
            // the outputs beside this one) run between batches.
            glommio::yield_if_needed().await;
            continue;
        }
        if ending {
            // What the output wrote gets until `ending_by` to be confirmed; what is not stays
            // queued, and is sent again after restart.
            match (out.flush_deadline(), ending_by) {
                (Some(d), Some(by)) if !handed.is_empty() => {
                    glommio::timer::sleep(d.min(by).saturating_duration_since(Instant::now()))
                        .await;
                    continue;
                }
                _ => break,
            }
        }
        if stale && refreshed.elapsed() >= REPORT_REFRESH {
            collect_output_fields(out, shared);
            refreshed = Instant::now();
            stale = false;
        }
        let deadline = out
            .flush_deadline()
            .filter(|d| *d > Instant::now() && !handed.is_empty());
        let appends = shared.appends.get();
        let arrival = shared
            .data
            .wait(|| shared.appends.get() != appends || shared.intake_done.get());
        let timer = async {
            match with_refresh(deadline, refreshed, stale) {
                Some(d) => glommio::timer::sleep(d.saturating_duration_since(Instant::now())).await,
                None => future::pending::<()>().await,
            }
        };
        future::or(arrival, timer).await;
    }
}

/// Flushes the output, retrying while it keeps its messages; gives up (false) only when intake
/// has ended and the flush has not succeeded within [`FINAL_FLUSH`] of that (shutdown with a
/// dead upstream).
async fn flush_until(out: &mut dyn Output, ctx: &RunnerCtx, shared: &Shared) -> bool {
    let ending = async {
        shared.data.wait(|| shared.intake_done.get()).await;
        glommio::timer::sleep(FINAL_FLUSH).await;
        false
    };
    future::or(
        async {
            flush_output(out, ctx).await;
            true
        },
        ending,
    )
    .await
}

/// Keeps the output's own report fields for the reporter.
fn collect_output_fields(out: &dyn Output, shared: &Shared) {
    let mut sink = FieldCollector::default();
    out.report(&mut sink);
    *shared.out_fields.borrow_mut() = sink.fields;
}

/// Publishes the report fields every second until delivery ends.
async fn reporter(ctx: &RunnerCtx, shared: &Shared) {
    while !shared.delivery_done.get() {
        let tick = glommio::timer::sleep(REPORT_REFRESH);
        let done = shared.data.wait(|| shared.delivery_done.get());
        future::or(tick, done).await;
        if let Ok(mut queue) = shared.queue.try_borrow_mut()
            && let Err(e) = queue.checkpoint_if_due()
        {
            tracing::error!("Output '{}': writing its queue's checkpoint: {e}", ctx.name);
        }
        publish_report(ctx, shared);
    }
}

/// The output's report fields, and its queue's.
fn publish_report(ctx: &RunnerCtx, shared: &Shared) {
    let mut sink = FieldCollector {
        fields: shared.out_fields.borrow().clone(),
    };
    if let Ok(queue) = shared.queue.try_borrow() {
        let s = queue.stats();
        sink.int("QueueBytes", queue.len_bytes() as i64, "B");
        sink.int("QueueRecords", queue.pending_records() as i64, "count");
        sink.int("QueueFullCount", s.full as i64, "count");
        sink.int("QueueTornTailBytesCut", s.torn_tail_bytes_cut as i64, "B");
        sink.int(
            "QueueCorruptRecordsSkipped",
            s.corrupt_records_skipped as i64,
            "count",
        );
        sink.int(
            "QueueCorruptBytesSkipped",
            s.corrupt_bytes_skipped as i64,
            "B",
        );
        sink.int("QueueCheckpointResets", s.checkpoint_resets as i64, "count");
    }
    ctx.counters().set_extra(sink.fields);
}
