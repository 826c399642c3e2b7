//! The tasks that drive filter and output instances: pop batches from the instance's lanes
//! (one per source shard), call the plugin once per message, route what filters inject, flush
//! outputs, fire timers, and park on the doorbell when every lane is empty.

use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use futures_lite::future;

use crate::mesh::{Batch, Doorbell, LaneRx, LocalEvent, RouterShard};
use crate::plugin::{
    Delivery, FieldCollector, Filter, Inject, Output, ProcessError, ShardEvent, Termination,
};
use crate::stats::{PluginCounters, ShardStats, add};
use hekate_model::matcher::MatcherSpec;
use hekate_model::message::{Field, Message, MessageView};

/// The lanes feeding one instance, and the doorbell their producers ring.
#[derive(Debug)]
pub(crate) struct Inbound {
    lanes: Vec<LaneRx>,
    bell: Arc<Doorbell>,
    next: usize,
    lifecycle: Arc<Lifecycle>,
}

impl Inbound {
    pub(crate) fn new(lanes: Vec<LaneRx>, bell: Arc<Doorbell>, lifecycle: Arc<Lifecycle>) -> Self {
        Self {
            lanes,
            bell,
            next: 0,
            lifecycle,
        }
    }

    /// Whether the coordinator retired the instance: no router sends to it any more.
    pub(super) fn retired(&self) -> bool {
        self.lifecycle.retire.load(Ordering::Acquire)
    }

    /// Takes every message still in the lanes and counts it as dropped (a terminated plugin).
    fn discard(&mut self, ctx: &RunnerCtx) {
        while let Some((lane, batch)) = self.pop() {
            add(&ctx.counters().dropped, batch.len() as u64);
            self.done(lane, batch);
        }
        // Dropped and counted: inputs waiting on these batches go on.
        self.acknowledge();
        ctx.held.store(0, Ordering::Release);
    }

    /// The next batch, taking lanes in turn so that no source shard starves another.
    pub(super) fn pop(&mut self) -> Option<(usize, Batch)> {
        let n = self.lanes.len();
        for i in 0..n {
            let lane = (self.next + i) % n;
            if let Some(b) = self.lanes[lane].try_pop() {
                self.next = (lane + 1) % n;
                return Some((lane, b));
            }
        }
        None
    }

    pub(super) fn done(&mut self, lane: usize, batch: Batch) {
        self.lanes[lane].done(batch);
    }

    /// Acknowledges every batch marked done: their messages are durable here (see
    /// [`LaneCounters::acked`](crate::mesh::LaneCounters::acked)).
    pub(super) fn acknowledge(&mut self) {
        for l in &mut self.lanes {
            l.acknowledge();
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.lanes.iter().all(LaneRx::is_empty)
    }

    /// Parks until a batch arrives, `deadline` passes or `stop` is set.
    pub(super) async fn wait(&self, deadline: Option<Instant>, stop: &LocalEvent) {
        let arrival = self.bell.wait(|| !self.is_empty() || self.retired());
        let timer = async {
            match deadline {
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    glommio::timer::sleep(left).await;
                }
                None => future::pending::<()>().await,
            }
        };
        future::or(future::or(arrival, timer), stop.wait()).await;
    }
}

/// The coordinator's hold on one filter or output instance.
#[derive(Debug, Default)]
pub(crate) struct Lifecycle {
    /// Set by the coordinator once no router shard sends to the instance any more: it finishes
    /// what its lanes hold and ends.
    pub(crate) retire: AtomicBool,
    /// Set by the runner when it has ended.
    pub(crate) finished: AtomicBool,
}

/// What every runner needs besides its plugin and lanes.
#[derive(Debug, Clone)]
pub(crate) struct RunnerCtx {
    pub(crate) name: Rc<str>,
    pub(crate) plugin: usize,
    pub(crate) stats: Rc<ShardStats>,
    pub(crate) sample_every: u32,
    pub(crate) router: Rc<RouterShard>,
    pub(crate) stop: LocalEvent,
    /// Messages the instance holds (popped but not finished, or buffered by an output).
    pub(crate) held: Arc<AtomicU64>,
    /// Decremented when the runner ends.
    pub(crate) live: Arc<AtomicUsize>,
    pub(crate) max_loops: u32,
    /// The instance's own matcher, to refuse injections that would come back to it.
    pub(crate) matcher: MatcherSpec,
    /// Retirement by the coordinator, and telling it the runner ended.
    pub(crate) lifecycle: Arc<Lifecycle>,
    /// Terminations go to the coordinator.
    pub(crate) events: mpsc::Sender<ShardEvent>,
}

impl RunnerCtx {
    pub(super) fn counters(&self) -> &PluginCounters {
        &self.stats.plugins[self.plugin]
    }

    /// Messages routed on this shard so far. Compared across a stretch of the runner without an
    /// await, it tells whether the runner routed anything itself.
    fn routed(&self) -> u64 {
        self.stats.routed.get()
    }

    /// Pushes what the shard's router holds; waits for room in outputs' lanes only if the runner
    /// routed messages since `routed` was [`RunnerCtx::routed`] (see
    /// [`RouterShard::flush_runner`]: a runner never waits for a filter's lane).
    async fn flush(&self, routed: u64) {
        let injected = self.routed() != routed;
        RouterShard::flush_runner(&self.router, true, self.plugin, injected).await;
    }

    /// The plugin stopped for good: announce it with a `heka.sandbox-terminated` message routed
    /// on this shard, and ask the coordinator to take it out of every router.
    fn terminated(&self, t: Termination) {
        tracing::error!("Plugin '{}' terminated: {}", self.name, t.reason);
        let mut m = Message::new_now();
        m.r#type = Some("heka.sandbox-terminated".into());
        m.logger = Some("hekad".into());
        m.payload = Some(t.reason.clone());
        m.fields.push(Field::string("plugin", &*self.name));
        let _ = self.router.route_bytes(&m.to_bytes(), None, 0);
        let _ = self.events.send(ShardEvent::Terminated {
            plugin: self.plugin,
            reason: t.reason,
            can_exit: t.can_exit,
        });
    }
}

/// Marks a runner as ended for the coordinator, also when its future is dropped.
pub(super) struct FinishGuard(pub(super) Arc<Lifecycle>);

impl Drop for FinishGuard {
    fn drop(&mut self) {
        self.0.finished.store(true, Ordering::Release);
    }
}

/// Decrements a live count when dropped (also when a runner's future is dropped).
pub(super) struct LiveGuard(pub(super) Arc<AtomicUsize>);

impl Drop for LiveGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

pub(super) const REPORT_REFRESH: Duration = Duration::from_secs(1);

/// The deadline of a runner's wait: `deadline`, or sooner when the plugin's report fields
/// changed since they were last published at `refreshed` (`stale`), so that an idle plugin's
/// report does not keep the numbers of its last busy second.
pub(super) fn with_refresh(
    deadline: Option<Instant>,
    refreshed: Instant,
    stale: bool,
) -> Option<Instant> {
    if !stale {
        return deadline;
    }
    let due = refreshed + REPORT_REFRESH;
    Some(deadline.map_or(due, |d| d.min(due)))
}

/// How long an ending output waits for its destination to confirm what it wrote.
const CONFIRM_WAIT: Duration = Duration::from_secs(2);

/// Drives an output until the outputs stop and its lanes are drained.
pub(crate) async fn run_output(mut out: Box<dyn Output>, mut inbound: Inbound, ctx: RunnerCtx) {
    let _finished = FinishGuard(Arc::clone(&ctx.lifecycle));
    let _live = LiveGuard(Arc::clone(&ctx.live));
    let mut refreshed = Instant::now();
    let mut stale = false;
    let mut terminated = false;
    loop {
        if terminated {
            inbound.discard(&ctx);
            if (ctx.stop.is_set() || inbound.retired()) && inbound.is_empty() {
                refresh_output_report(&*out, &ctx);
                ctx.held.store(0, Ordering::Release);
                return;
            }
            inbound.wait(None, &ctx.stop).await;
            continue;
        }
        while let Some((lane, batch)) = inbound.pop() {
            ctx.held
                .store(batch.len() as u64 + out.buffered(), Ordering::Release);
            let c = ctx.counters();
            for (view, loops) in batch.iter() {
                add(&c.received, 1);
                if terminated {
                    add(&c.dropped, 1);
                    continue;
                }
                let d = Delivery { view, loops };
                let sampled = c.sample_process(ctx.sample_every).then(Instant::now);
                if let Err(e) = out.process(&d) {
                    add(&c.dropped, 1);
                    match out.termination() {
                        Some(t) => {
                            ctx.terminated(t);
                            terminated = true;
                        }
                        None => crate::plugin::log::warn_limited!("Output '{}': {e}", ctx.name),
                    }
                }
                if let Some(t) = sampled {
                    c.record_process(t);
                }
                if !terminated && out.must_flush() {
                    flush_output(&mut *out, &ctx).await;
                }
            }
            inbound.done(lane, batch);
            if terminated {
                // It routed its termination message.
                RouterShard::flush_runner(&ctx.router, true, ctx.plugin, true).await;
                break;
            }
            if out.should_flush(Instant::now()) {
                flush_output(&mut *out, &ctx).await;
            }
            if out.buffered() == 0 {
                // Everything handed over so far is written (or was dropped and counted).
                inbound.acknowledge();
            }
            add(&ctx.counters().delivered, out.take_written());
            ctx.held.store(out.buffered(), Ordering::Release);
            stale = true;
        }
        if terminated {
            continue;
        }
        if stale && refreshed.elapsed() >= REPORT_REFRESH {
            refresh_output_report(&*out, &ctx);
            refreshed = Instant::now();
            stale = false;
        }
        let mut deadline = out.flush_deadline();
        if deadline.is_some_and(|d| d <= Instant::now()) {
            if out.should_flush(Instant::now()) {
                flush_output(&mut *out, &ctx).await;
                if out.buffered() == 0 {
                    inbound.acknowledge();
                }
                add(&ctx.counters().delivered, out.take_written());
                ctx.held.store(out.buffered(), Ordering::Release);
                continue;
            }
            // A deadline in the past that does not make the output flush would spin.
            deadline = None;
        }
        if (ctx.stop.is_set() || inbound.retired()) && inbound.is_empty() {
            break;
        }
        inbound
            .wait(with_refresh(deadline, refreshed, stale), &ctx.stop)
            .await;
    }
    while out.buffered() > 0 {
        flush_output(&mut *out, &ctx).await;
        add(&ctx.counters().delivered, out.take_written());
        ctx.held.store(out.buffered(), Ordering::Release);
    }
    inbound.acknowledge();
    // What waits for the destination's confirmation gets a bounded moment to be confirmed (or
    // sent again, when the connection it went out on failed).
    let settle = async {
        while out.unconfirmed() > 0 {
            if let Some(d) = out.flush_deadline() {
                glommio::timer::sleep(d.saturating_duration_since(Instant::now())).await;
            }
            flush_output(&mut *out, &ctx).await;
            add(&ctx.counters().delivered, out.take_written());
        }
    };
    future::or(settle, glommio::timer::sleep(CONFIRM_WAIT)).await;
    add(&ctx.counters().delivered, out.take_written());
    out.close().await;
    refresh_output_report(&*out, &ctx);
    ctx.held.store(0, Ordering::Release);
}

/// Flushes, retrying after a pause while the output keeps its messages (back-pressure).
pub(super) async fn flush_output(out: &mut dyn Output, ctx: &RunnerCtx) {
    // The health check (`/health`) sees how long a flush has been under way; cleared however
    // the flush ends, its future dropped included.
    struct Flushing<'a>(&'a PluginCounters);
    impl Drop for Flushing<'_> {
        fn drop(&mut self) {
            self.0.flushing_since.set(None);
        }
    }
    let counters = ctx.counters();
    counters.flushing_since.set(Some(Instant::now()));
    let _flushing = Flushing(counters);
    let mut pause = Duration::from_millis(100);
    loop {
        match out.flush().await {
            Ok(()) => return,
            Err(e) if e.dropped > 0 => {
                add(&ctx.counters().dropped, e.dropped);
                crate::plugin::log::warn_limited!(
                    "Output '{}': {e}; {} messages were dropped",
                    ctx.name,
                    e.dropped
                );
                return;
            }
            Err(e) => {
                crate::plugin::log::warn_limited!("Output '{}': {e}; retrying", ctx.name);
                glommio::timer::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(5));
            }
        }
    }
}

fn refresh_output_report(out: &dyn Output, ctx: &RunnerCtx) {
    let mut sink = FieldCollector::default();
    out.report(&mut sink);
    ctx.counters().set_extra(sink.fields);
}

/// Collects a filter's injected messages, refusing those that loop too often or would come back
/// to the filter itself.
struct Injector {
    buf: Vec<u8>,
    ends: Vec<(usize, u8)>,
    parent_loops: u8,
    max_loops: u32,
    matcher: MatcherSpec,
    name: Rc<str>,
    /// Refusals since the runner last looked (each one logged here).
    refused: u64,
}

impl Injector {
    fn push(&mut self, bytes: &[u8]) -> Result<(), ProcessError> {
        let result = self.check(bytes);
        if let Err(e) = &result {
            self.refused += 1;
            crate::plugin::log::warn_limited!("Filter '{}': {e}", self.name);
        }
        result
    }

    fn check(&mut self, bytes: &[u8]) -> Result<(), ProcessError> {
        let loops = u32::from(self.parent_loops) + 1;
        if loops > self.max_loops {
            return Err(ProcessError(format!(
                "an injected message was dropped: it has been injected {loops} times, more than max_message_loops {}",
                self.max_loops
            )));
        }
        let view = MessageView::new(bytes)
            .map_err(|e| ProcessError(format!("an injected message is malformed: {e}")))?;
        if self.matcher.matches(&view) {
            return Err(ProcessError(format!(
                "filter '{}' attempted to inject a message to itself (circular reference: its message_matcher selects the message)",
                self.name
            )));
        }
        self.buf.extend_from_slice(bytes);
        self.ends.push((self.buf.len(), loops.min(255) as u8));
        Ok(())
    }

    fn clear(&mut self) {
        self.buf.clear();
        self.ends.clear();
    }
}

impl Inject for Injector {
    fn inject(&mut self, msg: &Message) -> Result<(), ProcessError> {
        use prost::Message as _;
        let bytes = msg.encode_to_vec();
        self.push(&bytes)
    }

    fn inject_encoded(&mut self, bytes: &[u8]) -> Result<(), ProcessError> {
        self.push(bytes)
    }
}

/// Routes what the filter injected (synchronously; the caller flushes).
fn route_injected(inj: &mut Injector, ctx: &RunnerCtx) {
    let mut start = 0;
    for &(end, loops) in &inj.ends {
        // Checked by `Injector::push`, so this view cannot fail.
        if ctx
            .router
            .route_bytes(&inj.buf[start..end], None, loops)
            .is_ok()
        {
            add(&ctx.counters().injected, 1);
        }
        start = end;
    }
    inj.clear();
}

/// Counts the injections refused during the last call; `true` if there were any (the error a
/// filter returned for them is then not a failure of the message it processed).
fn take_refused(inj: &mut Injector, ctx: &RunnerCtx) -> bool {
    let n = std::mem::take(&mut inj.refused);
    add(&ctx.stats.inject_refused, n);
    n > 0
}

/// Drives a filter until the filters stop and its lanes are drained.
pub(crate) async fn run_filter(mut filter: Box<dyn Filter>, mut inbound: Inbound, ctx: RunnerCtx) {
    let _finished = FinishGuard(Arc::clone(&ctx.lifecycle));
    let _live = LiveGuard(Arc::clone(&ctx.live));
    let mut inj = Injector {
        buf: Vec::new(),
        ends: Vec::new(),
        parent_loops: 0,
        max_loops: ctx.max_loops,
        matcher: ctx.matcher.clone(),
        name: Rc::clone(&ctx.name),
        refused: 0,
    };
    let ticker = filter.ticker_interval().filter(|d| !d.is_zero());
    let mut next_tick = ticker.map(|d| Instant::now() + d);
    let mut refreshed = Instant::now();
    let mut stale = false;
    let mut terminated = false;
    loop {
        if terminated {
            // Taken out of routing by the coordinator; until every router shard has let go,
            // what still arrives is counted as dropped.
            inbound.discard(&ctx);
            if (ctx.stop.is_set() || inbound.retired()) && inbound.is_empty() {
                let mut sink = FieldCollector::default();
                filter.report(&mut sink);
                ctx.counters().set_extra(sink.fields);
                return;
            }
            inbound.wait(None, &ctx.stop).await;
            continue;
        }
        while let Some((lane, batch)) = inbound.pop() {
            ctx.held.store(batch.len() as u64, Ordering::Release);
            let routed = ctx.routed();
            let c = ctx.counters();
            for (view, loops) in batch.iter() {
                add(&c.received, 1);
                if terminated {
                    add(&c.dropped, 1);
                    continue;
                }
                inj.parent_loops = loops;
                let sampled = c.sample_process(ctx.sample_every).then(Instant::now);
                let result = filter.process(&Delivery { view, loops }, &mut inj);
                let refused = take_refused(&mut inj, &ctx);
                match result {
                    Ok(()) => add(&c.delivered, 1),
                    Err(e) => match filter.termination() {
                        Some(t) => {
                            add(&c.dropped, 1);
                            route_injected(&mut inj, &ctx);
                            ctx.terminated(t);
                            terminated = true;
                        }
                        None if refused => add(&c.delivered, 1),
                        None => {
                            add(&c.dropped, 1);
                            crate::plugin::log::warn_limited!("Filter '{}': {e}", ctx.name);
                        }
                    },
                }
                if let Some(t) = sampled {
                    c.record_process(t);
                }
                route_injected(&mut inj, &ctx);
            }
            // Injected messages are in their lanes, or counted as pending by the router, before
            // the batch counts as done, so the coordinator never sees an empty pipeline while a
            // message is still on its way.
            ctx.flush(routed).await;
            inbound.done(lane, batch);
            // A filter keeps nothing that could be lost for an input to replay: what it
            // processed is acknowledged (what it injects is a new message).
            inbound.acknowledge();
            ctx.held.store(0, Ordering::Release);
            stale = true;
            if terminated {
                break;
            }
        }
        if terminated {
            continue;
        }
        if let (Some(t), Some(every)) = (next_tick, ticker)
            && Instant::now() >= t
        {
            inj.parent_loops = 0;
            let routed = ctx.routed();
            let result = filter.timer_event(hekate_model::writer::now_ns(), &mut inj);
            if let Err(e) = result {
                let refused = take_refused(&mut inj, &ctx);
                if let Some(t) = filter.termination() {
                    route_injected(&mut inj, &ctx);
                    ctx.terminated(t);
                    terminated = true;
                } else if !refused {
                    crate::plugin::log::warn_limited!("Filter '{}': timer_event: {e}", ctx.name);
                }
            }
            route_injected(&mut inj, &ctx);
            ctx.flush(routed).await;
            stale = true;
            next_tick = Some(t + every)
                .filter(|n| *n > Instant::now())
                .or(Some(Instant::now() + every));
            continue;
        }
        if stale && refreshed.elapsed() >= REPORT_REFRESH {
            let mut sink = FieldCollector::default();
            filter.report(&mut sink);
            ctx.counters().set_extra(sink.fields);
            refreshed = Instant::now();
            stale = false;
        }
        if (ctx.stop.is_set() || inbound.retired()) && inbound.is_empty() {
            break;
        }
        inbound
            .wait(with_refresh(next_tick, refreshed, stale), &ctx.stop)
            .await;
    }
    inj.parent_loops = 0;
    let routed = ctx.routed();
    filter.shutdown(&mut inj);
    take_refused(&mut inj, &ctx);
    route_injected(&mut inj, &ctx);
    ctx.flush(routed).await;
    let mut sink = FieldCollector::default();
    filter.report(&mut sink);
    ctx.counters().set_extra(sink.fields);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn injector(matcher: &str, max_loops: u32) -> Injector {
        Injector {
            buf: Vec::new(),
            ends: Vec::new(),
            parent_loops: 0,
            max_loops,
            matcher: MatcherSpec::parse(matcher).unwrap(),
            name: Rc::from("f"),
            refused: 0,
        }
    }

    fn typed(t: &str) -> Message {
        let mut m = Message::new_now();
        m.r#type = Some(t.into());
        m
    }

    #[test]
    fn injections_carry_their_loop_count() {
        let mut inj = injector("Type == 'in'", 4);
        inj.parent_loops = 2;
        inj.inject(&typed("out")).unwrap();
        assert_eq!(inj.ends, [(inj.buf.len(), 3)]);
    }

    #[test]
    fn too_many_loops_are_refused() {
        let mut inj = injector("Type == 'in'", 4);
        inj.parent_loops = 4;
        let e = inj.inject(&typed("out")).unwrap_err();
        assert!(e.0.contains("max_message_loops 4"), "{e}");
        assert!(inj.ends.is_empty());
    }

    #[test]
    fn a_message_coming_back_to_the_filter_is_refused() {
        let mut inj = injector("Type == 'loop'", 4);
        let e = inj.inject(&typed("loop")).unwrap_err();
        assert!(e.0.contains("circular reference"), "{e}");
        assert!(inj.inject_encoded(&[0xff]).is_err());
        inj.inject(&typed("elsewhere")).unwrap();
        assert_eq!(inj.ends.len(), 1);
        assert_eq!(inj.refused, 2);
    }
}
