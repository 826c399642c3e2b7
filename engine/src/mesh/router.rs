//! The router shard: every worker's own copy of the compiled matchers of all filters and outputs.
//!
//! Inputs (and filters injecting) call [`RouterShard::route`] for each message, synchronously, on
//! the task that read it: the message is viewed in place, its fields are indexed on the first
//! `Fields[...]` test (once for all matchers), each matcher is evaluated once, and the message
//! bytes and view layout are copied into the pending batch of every destination that matched. A batch
//! full (by `batch_size` messages or 64 KiB) is queued; [`RouterShard::flush`] pushes queued
//! batches into the lanes and, when a lane is full, waits until its consumer makes room. Callers
//! flush before routing more, so a slow destination holds up the inputs of this shard instead of
//! growing a queue.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use super::batch::Batch;
use super::doorbell::Doorbell;
use super::ring::{LaneCounters, LaneTx};
use crate::stats::{ShardStats, add};
use hekate_config::FullAction;
use hekate_model::matcher::MatcherSpec;
use hekate_model::message::{FieldIndex, IndexedView, MessageView, ViewError};

/// A batch is handed on once it holds this many bytes, whatever `batch_size` says.
pub const BATCH_BYTES: usize = 64 * 1024;

/// One destination of a router shard: a filter or output instance, and the lane to it.
#[derive(Debug)]
pub struct Route {
    /// The plugin number (for counters).
    pub plugin: usize,
    /// The compiled `message_matcher`.
    pub matcher: MatcherSpec,
    /// `message_signer`: only records signed by this signer match.
    pub signer: Option<Box<str>>,
    /// The lane to the instance that serves this shard.
    pub lane: LaneTx,
    /// The lane feeds an output. An output's runner never waits for room in a lane, so a filter
    /// or output runner may wait for room in this one (see [`RouterShard::flush_runner`]).
    pub to_output: bool,
    /// What to do with a batch when the lane of this output is full (`full_action`):
    /// [`FullAction::Block`] keeps it (the inputs of the shard wait), [`FullAction::Drop`]
    /// drops it (counted), [`FullAction::Shutdown`] drops it and asks for shutdown. Filters
    /// always block.
    pub full_action: FullAction,
    /// The plugin's name, for what an overflow logs.
    pub name: Box<str>,
    /// Shutdown was asked for already (an overflow with [`FullAction::Shutdown`]).
    shutdown_asked: bool,
    filling: Batch,
    queued: VecDeque<Batch>,
    /// Batches sealed so far: the number of the last one.
    sealed: u64,
    /// The last batch sealed was dropped (`full_action`): an empty batch must follow it so that
    /// the consumer's acknowledgement passes its number.
    marker_due: bool,
    /// Being taken out without loss (see [`RouterShard::close_routes`]): it takes no new
    /// message, its batches still go into its lane, then it is removed and this is incremented.
    closing: Option<Arc<std::sync::atomic::AtomicUsize>>,
}

impl Route {
    /// A destination fed through `lane`, a filter's unless [`Route::feeding_output`] says so.
    pub fn new(plugin: usize, matcher: MatcherSpec, signer: Option<String>, lane: LaneTx) -> Self {
        Self {
            plugin,
            matcher,
            signer: signer.map(String::into_boxed_str),
            lane,
            to_output: false,
            full_action: FullAction::Block,
            name: Box::from(""),
            shutdown_asked: false,
            filling: Batch::default(),
            queued: VecDeque::new(),
            sealed: 0,
            marker_due: false,
            closing: None,
        }
    }

    /// Marks the destination as an output.
    pub fn feeding_output(mut self) -> Self {
        self.to_output = true;
        self
    }

    /// Sets what happens when the output's lane is full (see [`Route::full_action`]); `name`
    /// is the output's, for the log.
    pub fn on_full(mut self, name: &str, action: FullAction) -> Self {
        self.name = Box::from(name);
        self.full_action = action;
        self
    }

    /// Whether a batch this lane cannot take is dropped rather than kept.
    fn drops_when_full(&self) -> bool {
        self.to_output && self.full_action != FullAction::Block
    }

    /// Numbers the batch being filled and queues it, filling a fresh (recycled) one.
    #[inline]
    fn seal(&mut self, batch_size: usize) {
        let fresh = self
            .lane
            .recycled()
            .unwrap_or_else(|| Batch::with_capacity(batch_size, batch_size * 384));
        let mut full = std::mem::replace(&mut self.filling, fresh);
        self.sealed += 1;
        full.set_seq(self.sealed);
        self.queued.push_back(full);
    }

    /// The number of the last batch holding a message routed so far.
    fn last_batch(&self) -> u64 {
        self.sealed + u64::from(!self.filling.is_empty())
    }
}

/// Where a router shard's destinations stood when an input took the mark: for each lane, the
/// number of the last batch holding a message routed until then. Once every lane has
/// acknowledged its number, every message the input routed before the mark is durable at every
/// destination that took it. See [`RouterShard::ack_mark`].
#[derive(Debug, Default)]
pub struct AckMark {
    waits: Vec<(Arc<LaneCounters>, u64)>,
}

impl AckMark {
    /// Whether every destination has acknowledged what was routed before the mark (or was
    /// dropped from the pipeline).
    pub fn is_acked(&self) -> bool {
        self.waits
            .iter()
            .all(|(c, last)| c.acked() >= *last || c.closed())
    }
}

/// What the router tells its shard when an output's lane overflows and its `full_action` is
/// not `block`: the output's name, the action, and how many messages were dropped. The shard
/// logs it (rate-limited) and, for [`FullAction::Shutdown`], asks the coordinator to stop.
pub type OverflowHook = Box<dyn Fn(&str, FullAction, u64)>;

#[derive(Debug)]
struct RouterState {
    routes: Vec<Route>,
    /// Messages in `filling` and `queued` batches.
    pending: u64,
}

/// See the module docs.
pub struct RouterShard {
    state: RefCell<RouterState>,
    space: Arc<Doorbell>,
    stats: Rc<ShardStats>,
    sample_every: u32,
    batch_size: usize,
    published: Arc<AtomicU64>,
    /// A drain task runs (see [`RouterShard::flush_runner`]).
    draining: Cell<bool>,
    /// The fields of the message being routed, indexed once for all its matchers.
    index: RefCell<FieldIndex>,
    /// Told of overflows of outputs that do not block.
    overflow: RefCell<Option<OverflowHook>>,
}

impl std::fmt::Debug for RouterShard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouterShard")
            .field("state", &self.state)
            .field("batch_size", &self.batch_size)
            .finish_non_exhaustive()
    }
}

impl RouterShard {
    /// A router over `routes`. `space` is the doorbell every lane consumer of this shard rings
    /// when it frees a slot; `published` receives the pending message count for the coordinator.
    pub fn new(
        routes: Vec<Route>,
        space: Arc<Doorbell>,
        stats: Rc<ShardStats>,
        sample_every: u32,
        batch_size: usize,
        published: Arc<AtomicU64>,
    ) -> Self {
        Self {
            state: RefCell::new(RouterState { routes, pending: 0 }),
            space,
            stats,
            sample_every: sample_every.max(1),
            batch_size: batch_size.max(1),
            published,
            draining: Cell::new(false),
            index: RefCell::default(),
            overflow: RefCell::new(None),
        }
    }

    /// Sets who is told when an output whose `full_action` is not `block` overflows.
    pub fn set_overflow_hook(&self, hook: OverflowHook) {
        *self.overflow.borrow_mut() = Some(hook);
    }

    /// Routes one message, viewed over its encoded bytes. Never waits: call
    /// [`RouterShard::flush`] afterwards.
    #[inline]
    pub fn route(&self, view: &MessageView<'_>, signer: Option<&str>, loops: u8) {
        add(&self.stats.routed, 1);
        let mut st = self.state.borrow_mut();
        let st = &mut *st;
        let mut index = self.index.borrow_mut();
        let msg = IndexedView::new(view, &mut index);
        for r in st.routes.iter_mut() {
            if r.closing.is_some() {
                continue;
            }
            let counters = &self.stats.plugins[r.plugin];
            let matched = if counters.sample_match(self.sample_every) {
                let t = Instant::now();
                let m = r.matcher.matches(&msg);
                counters.record_match(t);
                m
            } else {
                r.matcher.matches(&msg)
            };
            if !matched {
                continue;
            }
            if let Some(want) = &r.signer
                && signer != Some(&**want)
            {
                // Matched but not signed by `message_signer`: refused, and counted so that an
                // unsigned control message is visible in the reports.
                add(&counters.rejected, 1);
                continue;
            }
            add(&counters.matched, 1);
            r.filling.push(view, loops);
            st.pending += 1;
            if r.filling.len() >= self.batch_size || r.filling.bytes() >= BATCH_BYTES {
                r.seal(self.batch_size);
            }
        }
    }

    /// Adds a destination (a filter loaded while the pipeline runs). Safe between any two calls:
    /// routing is synchronous, and a pending flush picks the new route up on its next pass.
    pub fn add_route(&self, route: Route) {
        self.state.borrow_mut().routes.push(route);
    }

    /// Removes every destination of `plugin` (unloaded or terminated) and returns how many
    /// messages its batches held that had not reached its lane; they are lost. Flushes waiting
    /// for room in its lanes are woken and go on without it.
    pub fn remove_routes(&self, plugin: usize) -> u64 {
        let mut dropped = 0u64;
        {
            let mut st = self.state.borrow_mut();
            st.routes.retain(|r| {
                if r.plugin != plugin {
                    return true;
                }
                dropped += r.filling.len() as u64;
                dropped += r.queued.iter().map(|b| b.len() as u64).sum::<u64>();
                r.lane.counters().close();
                false
            });
            st.pending -= dropped;
        }
        self.publish();
        self.space.ring();
        dropped
    }

    /// Takes every destination of `plugin` out **without loss** (a reload): from now on they take
    /// no message, the batches they hold still go into their lanes, and once a destination has
    /// none left it is removed and `done` incremented. With `then` (a changed plugin), `then`
    /// takes over at once, in the same step, so that every message goes to exactly one of them.
    /// Returns whether batches are left to push (someone must flush: see
    /// [`RouterShard::flush`]).
    pub fn close_routes(
        &self,
        plugin: usize,
        done: Arc<std::sync::atomic::AtomicUsize>,
        then: Option<Route>,
    ) -> bool {
        let left = {
            let mut st = self.state.borrow_mut();
            let mut found = false;
            for r in st.routes.iter_mut().filter(|r| r.plugin == plugin) {
                if !r.filling.is_empty() {
                    r.seal(self.batch_size);
                }
                r.closing = Some(Arc::clone(&done));
                found = true;
            }
            if !found {
                done.fetch_add(1, Ordering::AcqRel);
            }
            if let Some(route) = then {
                st.routes.push(route);
            }
            Self::reap(&mut st);
            st.routes.iter().any(|r| r.closing.is_some())
        };
        self.space.ring();
        left
    }

    /// Removes the closing routes whose batches are all in their lanes.
    fn reap(st: &mut RouterState) {
        st.routes.retain(|r| match &r.closing {
            Some(done) if r.queued.is_empty() && r.filling.is_empty() => {
                done.fetch_add(1, Ordering::AcqRel);
                false
            }
            _ => true,
        });
    }

    /// Views and routes an encoded message.
    pub fn route_bytes(
        &self,
        bytes: &[u8],
        signer: Option<&str>,
        loops: u8,
    ) -> Result<(), ViewError> {
        let view = MessageView::new(bytes)?;
        self.route(&view, signer, loops);
        Ok(())
    }

    /// Pushes queued batches into their lanes, waiting while a lane is full. With `partial`, the
    /// batches being filled are pushed too (end of a read: nothing waits for more traffic).
    pub async fn flush(&self, partial: bool) {
        self.flush_where(partial, |_| true).await;
    }

    /// The flush of a filter or output runner, after a batch, a timer event, a shutdown or a
    /// termination. Pushes every batch that fits; then, if the runner `injected` messages, waits
    /// while a batch for an output other than `except` is left (back-pressure on injections).
    ///
    /// It never waits for room in the lane of a filter. The router is shared by every task of
    /// its shard, so the batches it holds are mostly the inputs' messages, and a runner waiting
    /// here takes nothing from its own lanes: two filters whose lanes are full, each waiting for
    /// room in the other's (on one shard, or across two when each is the other's source), would
    /// wait for ever, and every input behind them. Waiting only for outputs cannot close such a
    /// cycle: an output's runner never waits for a lane, and nothing waits for an input.
    ///
    /// What is left (batches for full lanes of filters, or of outputs when nothing was injected)
    /// goes with the next flush of any task of this shard, and at the latest with a drain task
    /// that waits for room in their lanes.
    pub async fn flush_runner(router: &Rc<Self>, partial: bool, except: usize, injected: bool) {
        if injected {
            router
                .flush_where(partial, |r| r.to_output && r.plugin != except)
                .await;
        } else {
            router.flush_now(partial);
        }
        if router.congested() && !router.draining.replace(true) {
            let router = Rc::clone(router);
            glommio::spawn_local(async move {
                router.flush(false).await;
                router.draining.set(false);
            })
            .detach();
        }
    }

    /// Pushes what fits now, without waiting (the coordinator's injections; the rest goes with
    /// the next flush).
    pub fn flush_now(&self, partial: bool) {
        self.try_flush(partial, |_| true);
        self.publish();
    }

    async fn flush_where(&self, partial: bool, must: impl Fn(&Route) -> bool + Copy) {
        loop {
            let blocked = self.try_flush(partial, must);
            self.publish();
            if !blocked {
                break;
            }
            self.space.wait(|| self.can_progress(must)).await;
        }
    }

    /// Whether batches wait for room in a lane (the inputs of this shard should wait too).
    pub fn congested(&self) -> bool {
        self.state
            .borrow()
            .routes
            .iter()
            .any(|r| !r.queued.is_empty())
    }

    /// Pushes every queued batch that fits; true if a batch of a `must` route is left.
    fn try_flush(&self, partial: bool, must: impl Fn(&Route) -> bool) -> bool {
        let mut st = self.state.borrow_mut();
        let st = &mut *st;
        let mut blocked = false;
        let mut overflows: Vec<(usize, u64)> = Vec::new();
        for (i, r) in st.routes.iter_mut().enumerate() {
            if partial && !r.filling.is_empty() {
                r.seal(self.batch_size);
            }
            while let Some(b) = r.queued.pop_front() {
                let n = b.len() as u64;
                match r.lane.try_push(b) {
                    Ok(()) => {
                        st.pending -= n;
                        r.marker_due = false;
                    }
                    Err(b) if r.drops_when_full() => {
                        // This output does not hold up the others: what its lane cannot
                        // take is dropped, counted on its counters.
                        st.pending -= n;
                        r.marker_due = true;
                        add(&self.stats.plugins[r.plugin].dropped, n);
                        match overflows.last_mut() {
                            Some((last, m)) if *last == i => *m += n,
                            _ => overflows.push((i, n)),
                        }
                        drop(b);
                    }
                    Err(b) => {
                        r.queued.push_front(b);
                        blocked |= must(r);
                        break;
                    }
                }
            }
            if r.marker_due && r.queued.is_empty() && r.filling.is_empty() && r.lane.has_room() {
                // The last batch was dropped; an empty one behind it lets the consumer's
                // acknowledgement pass its number (inputs waiting on it go on).
                r.seal(self.batch_size);
                if let Some(b) = r.queued.pop_front()
                    && r.lane.try_push(b).is_ok()
                {
                    r.marker_due = false;
                }
            }
        }
        if !overflows.is_empty() {
            let hook = self.overflow.borrow();
            for (i, n) in overflows {
                let r = &mut st.routes[i];
                let action = r.full_action;
                if action == FullAction::Shutdown {
                    if r.shutdown_asked {
                        continue;
                    }
                    r.shutdown_asked = true;
                }
                if let Some(hook) = hook.as_ref() {
                    hook(&r.name, action, n);
                }
            }
        }
        // After the overflows: they name routes by index.
        if st.routes.iter().any(|r| r.closing.is_some()) {
            Self::reap(st);
        }
        blocked
    }

    fn can_progress(&self, must: impl Fn(&Route) -> bool) -> bool {
        let st = self.state.borrow();
        let mut waiting = st.routes.iter().filter(|r| must(r) && !r.queued.is_empty());
        let mut any = false;
        let room = waiting.any(|r| {
            any = true;
            r.lane.has_room()
        });
        room || !any
    }

    fn publish(&self) {
        let pending = self.state.borrow().pending;
        self.published.store(pending, Ordering::Release);
    }

    /// Takes an acknowledgement mark: where every destination of this shard stands now (see
    /// [`AckMark`]). An input that can replay takes one after routing up to a position of its
    /// stream, and moves its checkpoint to that position once [`AckMark::is_acked`] says so.
    /// Destinations that have acknowledged everything routed to them are left out, so a mark
    /// taken by an idle shard is empty.
    pub fn ack_mark(&self) -> AckMark {
        let st = self.state.borrow();
        let waits = st
            .routes
            .iter()
            .filter_map(|r| {
                let last = r.last_batch();
                let c = r.lane.counters();
                (c.acked() < last).then(|| (Arc::clone(c), last))
            })
            .collect();
        AckMark { waits }
    }

    /// Messages routed but not yet pushed into a lane.
    pub fn pending(&self) -> u64 {
        self.state.borrow().pending
    }

    /// The shard's counters.
    pub fn stats(&self) -> &Rc<ShardStats> {
        &self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesh::ring::lane;
    use hekate_model::message::Message;

    fn msg(t: &str) -> Vec<u8> {
        let mut m = Message::new_now();
        m.r#type = Some(t.into());
        m.to_bytes()
    }

    #[test]
    fn routes_by_matcher_and_signer_and_batches() {
        let space = Arc::new(Doorbell::new());
        let bell = Arc::new(Doorbell::new());
        let (tx_a, mut rx_a) = lane(4, Arc::clone(&bell), Arc::clone(&space));
        let (tx_b, mut rx_b) = lane(4, Arc::clone(&bell), Arc::clone(&space));
        let routes = vec![
            Route::new(0, MatcherSpec::parse("Type == 'a'").unwrap(), None, tx_a),
            Route::new(
                1,
                MatcherSpec::parse("TRUE").unwrap(),
                Some("ops".into()),
                tx_b,
            ),
        ];
        let stats = Rc::new(ShardStats::new(0, 2));
        let published = Arc::new(AtomicU64::new(0));
        let router = RouterShard::new(
            routes,
            space,
            Rc::clone(&stats),
            1,
            2,
            Arc::clone(&published),
        );
        for t in ["a", "b", "a", "a"] {
            router.route_bytes(&msg(t), None, 0).unwrap();
        }
        router.route_bytes(&msg("b"), Some("ops"), 1).unwrap();
        assert!(router.congested());
        assert_eq!(router.pending(), 4);
        let ex = glommio::LocalExecutorBuilder::default()
            .io_memory(64 << 10)
            .make()
            .unwrap();
        ex.run(router.flush(true));
        assert_eq!(published.load(Ordering::Acquire), 0);
        let a: Vec<usize> = std::iter::from_fn(|| rx_a.try_pop())
            .map(|b| b.len())
            .collect();
        assert_eq!(a, [2, 1]);
        let b = rx_b.try_pop().unwrap();
        assert_eq!(b.iter().next().unwrap().1, 1);
        assert_eq!(stats.plugins[0].matched.get(), 3);
        assert_eq!(stats.plugins[1].matched.get(), 1);
        assert_eq!(stats.plugins[1].rejected.get(), 4);
        assert_eq!(stats.routed.get(), 5);
    }

    #[test]
    fn routes_come_and_go_while_routing() {
        let space = Arc::new(Doorbell::new());
        let bell = Arc::new(Doorbell::new());
        let stats = Rc::new(ShardStats::new(0, 2));
        let router = RouterShard::new(
            Vec::new(),
            Arc::clone(&space),
            Rc::clone(&stats),
            1,
            4,
            Arc::new(AtomicU64::new(0)),
        );
        router.route_bytes(&msg("a"), None, 0).unwrap();
        let (tx, mut rx) = lane(4, Arc::clone(&bell), Arc::clone(&space));
        router.add_route(Route::new(
            1,
            MatcherSpec::parse("Type == 'a'").unwrap(),
            None,
            tx,
        ));
        for _ in 0..6 {
            router.route_bytes(&msg("a"), None, 0).unwrap();
        }
        assert_eq!(router.pending(), 6);
        router.flush_now(false);
        assert_eq!(rx.try_pop().unwrap().len(), 4);
        assert_eq!(router.remove_routes(1), 2);
        assert_eq!(router.pending(), 0);
        router.route_bytes(&msg("a"), None, 0).unwrap();
        assert_eq!(router.pending(), 0);
        assert_eq!(stats.plugins[1].matched.get(), 6);
    }

    /// A reload swaps a destination for its successor: what the old one holds still reaches its
    /// lane (nothing lost), every later message goes to the new one only (nothing twice).
    #[test]
    fn a_closing_route_hands_over_without_loss() {
        let space = Arc::new(Doorbell::new());
        let bell = Arc::new(Doorbell::new());
        let stats = Rc::new(ShardStats::new(0, 3));
        let (old_tx, mut old_rx) = lane(1, Arc::clone(&bell), Arc::clone(&space));
        let routes = vec![Route::new(
            1,
            MatcherSpec::parse("TRUE").unwrap(),
            None,
            old_tx,
        )];
        let router = RouterShard::new(
            routes,
            Arc::clone(&space),
            Rc::clone(&stats),
            1,
            2,
            Arc::new(AtomicU64::new(0)),
        );
        // Two batches sealed (the lane takes one) and one being filled.
        for _ in 0..5 {
            router.route_bytes(&msg("a"), None, 0).unwrap();
        }
        router.flush_now(false);
        let (new_tx, mut new_rx) = lane(4, Arc::clone(&bell), Arc::clone(&space));
        let new = Route::new(2, MatcherSpec::parse("TRUE").unwrap(), None, new_tx);
        let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        assert!(router.close_routes(1, Arc::clone(&done), Some(new)));
        router.route_bytes(&msg("a"), None, 0).unwrap();
        assert_eq!(done.load(Ordering::Acquire), 0, "batches are left");
        let mut old = 0;
        while done.load(Ordering::Acquire) == 0 {
            let b = old_rx.try_pop().expect("the old lane gets the rest");
            old += b.len();
            old_rx.done(b);
            router.flush_now(false);
        }
        while let Some(b) = old_rx.try_pop() {
            old += b.len();
        }
        assert_eq!(old, 5, "everything routed before the switch");
        router.flush_now(true);
        assert_eq!(new_rx.try_pop().unwrap().len(), 1, "everything after it");
        assert_eq!(router.pending(), 0);
        // Closing a plugin with no route here is done at once.
        let none = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        assert!(!router.close_routes(7, Arc::clone(&none), None));
        assert_eq!(none.load(Ordering::Acquire), 1);
    }

    /// A runner's flush waits for room in an output's lane (when it routed something), never in
    /// a filter's: what a full filter lane cannot take stays with the router until a drain task
    /// pushes it. Waiting there is how two filters sharing a router used to wedge each other.
    #[test]
    fn a_runner_waits_for_outputs_but_never_for_a_filter() {
        use std::time::Duration;

        let space = Arc::new(Doorbell::new());
        let bell = Arc::new(Doorbell::new());
        let (tx_f, mut rx_f) = lane(1, Arc::clone(&bell), Arc::clone(&space));
        let (tx_o, mut rx_o) = lane(1, Arc::clone(&bell), Arc::clone(&space));
        let routes = vec![
            Route::new(0, MatcherSpec::parse("TRUE").unwrap(), None, tx_f),
            Route::new(1, MatcherSpec::parse("TRUE").unwrap(), None, tx_o).feeding_output(),
        ];
        let stats = Rc::new(ShardStats::new(0, 2));
        let router = Rc::new(RouterShard::new(
            routes,
            Arc::clone(&space),
            stats,
            1,
            1,
            Arc::new(AtomicU64::new(0)),
        ));
        let within = |f, ms| {
            futures_lite::future::or(
                async move {
                    f.await;
                    true
                },
                async move {
                    glommio::timer::sleep(Duration::from_millis(ms)).await;
                    false
                },
            )
        };
        let settle = || glommio::timer::sleep(Duration::from_millis(20));
        let ex = glommio::LocalExecutorBuilder::default()
            .io_memory(64 << 10)
            .make()
            .unwrap();
        ex.run(async {
            // Two batches for each lane of one slot: the second of each waits.
            for _ in 0..2 {
                router.route_bytes(&msg("a"), None, 0).unwrap();
            }
            // The filter (plugin 9) routed nothing: no wait at all.
            let f = RouterShard::flush_runner(&router, true, 9, false);
            assert!(within(f, 1000).await);
            assert_eq!(router.pending(), 2);

            // The output's lane gets room: the drain task fills it.
            let b = rx_o.try_pop().unwrap();
            rx_o.done(b);
            settle().await;
            assert_eq!(router.pending(), 1);

            // A filter that routed something waits while a batch for an output is left...
            router.route_bytes(&msg("a"), None, 0).unwrap();
            let f = RouterShard::flush_runner(&router, true, 9, true);
            assert!(!within(f, 100).await);
            let b = rx_o.try_pop().unwrap();
            rx_o.done(b);
            let f = RouterShard::flush_runner(&router, true, 9, true);
            assert!(within(f, 1000).await);
            // ...but not for the filter's lane, full with two batches left behind it.
            assert!(!rx_f.is_empty() && router.pending() == 2);

            // Room in the filter's lane: the drain task pushes the rest.
            for _ in 0..2 {
                let b = rx_f.try_pop().unwrap();
                rx_f.done(b);
                settle().await;
            }
            assert_eq!(router.pending(), 0);
            assert!(!router.congested());
        });
    }

    type Told = Rc<RefCell<Vec<(String, FullAction, u64)>>>;

    /// The overflow hook of a test router: what it was told.
    fn told() -> (Told, OverflowHook) {
        let log = Rc::new(RefCell::new(Vec::new()));
        let l = Rc::clone(&log);
        let hook: OverflowHook =
            Box::new(move |name, action, n| l.borrow_mut().push((name.to_string(), action, n)));
        (log, hook)
    }

    /// An output with `full_action = "drop"` whose lane is full loses the batch (counted on its
    /// counters, told to the shard) while the output beside it gets everything, and nothing
    /// waits: the inputs of the shard go on reading.
    #[test]
    fn a_full_output_that_drops_holds_up_nobody() {
        let space = Arc::new(Doorbell::new());
        let bell = Arc::new(Doorbell::new());
        let (tx_dead, mut rx_dead) = lane(1, Arc::clone(&bell), Arc::clone(&space));
        let (tx_file, mut rx_file) = lane(8, Arc::clone(&bell), Arc::clone(&space));
        let routes = vec![
            Route::new(0, MatcherSpec::parse("TRUE").unwrap(), None, tx_dead)
                .feeding_output()
                .on_full("tcp", FullAction::Drop),
            Route::new(1, MatcherSpec::parse("TRUE").unwrap(), None, tx_file).feeding_output(),
        ];
        let stats = Rc::new(ShardStats::new(0, 2));
        let router = RouterShard::new(
            routes,
            space,
            Rc::clone(&stats),
            1,
            1,
            Arc::new(AtomicU64::new(0)),
        );
        let (log, hook) = told();
        router.set_overflow_hook(hook);
        for _ in 0..5 {
            router.route_bytes(&msg("a"), None, 0).unwrap();
        }
        router.flush_now(true);
        assert!(!router.congested());
        assert_eq!(router.pending(), 0);
        // One batch (of one message) fits in the dead output's lane; four were dropped.
        assert_eq!(stats.plugins[0].dropped.get(), 4);
        assert_eq!(stats.plugins[1].dropped.get(), 0);
        assert_eq!(std::iter::from_fn(|| rx_file.try_pop()).count(), 5);
        assert_eq!(std::iter::from_fn(|| rx_dead.try_pop()).count(), 1);
        assert_eq!(*log.borrow(), [("tcp".to_string(), FullAction::Drop, 4)]);
        // An awaited flush does not wait either.
        let ex = glommio::LocalExecutorBuilder::default()
            .io_memory(64 << 10)
            .make()
            .unwrap();
        ex.run(async {
            for _ in 0..3 {
                router.route_bytes(&msg("a"), None, 0).unwrap();
            }
            router.flush(true).await;
        });
        // The lane had room for one again (popped above).
        assert_eq!(stats.plugins[0].dropped.get(), 6);
    }

    /// `full_action = "shutdown"`: the shard is asked once to stop hekate; meanwhile what does
    /// not fit is dropped and counted. A filter's full lane still keeps its batches.
    #[test]
    fn a_full_output_that_shuts_down_asks_once_and_drops_meanwhile() {
        let space = Arc::new(Doorbell::new());
        let bell = Arc::new(Doorbell::new());
        let (tx_out, _rx_out) = lane(1, Arc::clone(&bell), Arc::clone(&space));
        let (tx_filter, _rx_filter) = lane(1, Arc::clone(&bell), Arc::clone(&space));
        let routes = vec![
            Route::new(0, MatcherSpec::parse("TRUE").unwrap(), None, tx_out)
                .feeding_output()
                .on_full("upstream", FullAction::Shutdown),
            // A filter: `on_full` does not apply.
            Route::new(1, MatcherSpec::parse("TRUE").unwrap(), None, tx_filter)
                .on_full("counter", FullAction::Drop),
        ];
        let stats = Rc::new(ShardStats::new(0, 2));
        let router = RouterShard::new(
            routes,
            space,
            Rc::clone(&stats),
            1,
            1,
            Arc::new(AtomicU64::new(0)),
        );
        let (log, hook) = told();
        router.set_overflow_hook(hook);
        for _ in 0..3 {
            router.route_bytes(&msg("a"), None, 0).unwrap();
            router.flush_now(true);
        }
        assert_eq!(stats.plugins[0].dropped.get(), 2);
        assert_eq!(
            *log.borrow(),
            [("upstream".to_string(), FullAction::Shutdown, 1)]
        );
        // The filter's two batches that did not fit wait with the router.
        assert_eq!(stats.plugins[1].dropped.get(), 0);
        assert_eq!(router.pending(), 2);
        assert!(router.congested());
    }

    /// Pops every batch of a lane, marks it done and acknowledges it (a consumer that made it
    /// durable); returns the messages it held.
    fn consume(rx: &mut crate::mesh::LaneRx) -> usize {
        let mut n = 0;
        while let Some(b) = rx.try_pop() {
            n += b.len();
            rx.done(b);
        }
        rx.acknowledge();
        n
    }

    /// A mark is acknowledged once every destination that has batches up to it acknowledged
    /// them — not when one of them did, nor when a consumer processed without acknowledging.
    #[test]
    fn a_mark_waits_for_every_destination() {
        let space = Arc::new(Doorbell::new());
        let bell = Arc::new(Doorbell::new());
        let (tx_a, mut rx_a) = lane(8, Arc::clone(&bell), Arc::clone(&space));
        let (tx_b, mut rx_b) = lane(8, Arc::clone(&bell), Arc::clone(&space));
        let routes = vec![
            Route::new(0, MatcherSpec::parse("TRUE").unwrap(), None, tx_a).feeding_output(),
            Route::new(1, MatcherSpec::parse("Type == 'b'").unwrap(), None, tx_b).feeding_output(),
        ];
        let stats = Rc::new(ShardStats::new(0, 2));
        let router = RouterShard::new(routes, space, stats, 1, 2, Arc::new(AtomicU64::new(0)));
        assert!(
            router.ack_mark().is_acked(),
            "nothing routed: nothing to wait for"
        );

        for t in ["a", "b", "a"] {
            router.route_bytes(&msg(t), None, 0).unwrap();
        }
        let mark = router.ack_mark();
        assert!(!mark.is_acked());
        router.flush_now(true);
        assert_eq!(consume(&mut rx_a), 3);
        assert!(!mark.is_acked(), "b has not acknowledged its message");
        let b = rx_b.try_pop().unwrap();
        rx_b.done(b);
        assert!(!mark.is_acked(), "done is not durable: only acknowledge is");
        rx_b.acknowledge();
        assert!(mark.is_acked());

        // Messages routed after a mark do not hold it up; a later mark waits for them.
        router.route_bytes(&msg("a"), None, 0).unwrap();
        let later = router.ack_mark();
        assert!(mark.is_acked() && !later.is_acked());
        // Still being filled: the mark counts the batch that will carry it.
        router.flush_now(true);
        assert_eq!(consume(&mut rx_a), 1);
        assert!(later.is_acked());
        // A destination that has acknowledged everything is left out of the next mark.
        assert!(router.ack_mark().is_acked());
    }

    /// A batch dropped by `full_action = "drop"` never reaches its consumer: an empty batch
    /// follows it once there is room, so the acknowledgement passes its number and the input
    /// goes on. A dropped route (its plugin terminated) is not waited for.
    #[test]
    fn dropped_batches_and_routes_do_not_hold_a_mark_for_ever() {
        let space = Arc::new(Doorbell::new());
        let bell = Arc::new(Doorbell::new());
        let (tx_dead, mut rx_dead) = lane(1, Arc::clone(&bell), Arc::clone(&space));
        let (tx_gone, _rx_gone) = lane(8, Arc::clone(&bell), Arc::clone(&space));
        let routes = vec![
            Route::new(0, MatcherSpec::parse("TRUE").unwrap(), None, tx_dead)
                .feeding_output()
                .on_full("tcp", FullAction::Drop),
            Route::new(1, MatcherSpec::parse("TRUE").unwrap(), None, tx_gone),
        ];
        let stats = Rc::new(ShardStats::new(0, 2));
        let router = RouterShard::new(
            routes,
            space,
            Rc::clone(&stats),
            1,
            1,
            Arc::new(AtomicU64::new(0)),
        );
        for _ in 0..3 {
            router.route_bytes(&msg("a"), None, 0).unwrap();
        }
        router.flush_now(true);
        assert_eq!(stats.plugins[0].dropped.get(), 2);
        let mark = router.ack_mark();
        assert_eq!(router.remove_routes(1), 0);
        assert_eq!(consume(&mut rx_dead), 1);
        assert!(
            !mark.is_acked(),
            "batches 2 and 3 were dropped, nothing passed them yet"
        );
        // The next flush finds room and sends the empty batch.
        router.flush_now(false);
        assert_eq!(consume(&mut rx_dead), 0);
        assert!(mark.is_acked());
        // Only once: an acknowledged lane gets no more empty batches.
        router.flush_now(false);
        assert!(rx_dead.try_pop().is_none());
    }
}
