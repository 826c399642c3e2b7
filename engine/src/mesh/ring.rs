//! One lane of the ring mesh: an rtrb SPSC ring of [`Batch`]es from a source shard's router to
//! one filter or output instance, plus a return lane that brings emptied batches back.
//!
//! Both ends count the messages they moved (single writer each, so plain stores), which gives the
//! `InChanLength` of reports, the coordinator's "is everything drained" test at shutdown, and the
//! count of what was left behind when an output could not drain in time.
//!
//! They also carry the lane's acknowledgement watermark: the consumer stores the number of the
//! last batch it has made durable ([`LaneRx::acknowledge`]), and an input that can replay asks
//! its router whether every lane has passed the batches its messages went into (see
//! [`RouterShard::ack_mark`](super::RouterShard::ack_mark)).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::batch::Batch;
use super::doorbell::Doorbell;

/// Message counters of one lane, shared by both ends and the coordinator.
#[derive(Debug, Default)]
pub struct LaneCounters {
    pushed: AtomicU64,
    done: AtomicU64,
    acked: AtomicU64,
    closed: AtomicBool,
}

impl LaneCounters {
    /// Messages pushed by the producer so far.
    pub fn pushed(&self) -> u64 {
        self.pushed.load(Ordering::Acquire)
    }

    /// Messages the consumer finished so far.
    pub fn done(&self) -> u64 {
        self.done.load(Ordering::Acquire)
    }

    /// The number of the last batch the consumer acknowledged: every batch up to it (and every
    /// message in it) is durable at the consumer — written and flushed by an output, appended
    /// to a buffered output's queue, processed by a filter — or was dropped and counted.
    pub fn acked(&self) -> u64 {
        self.acked.load(Ordering::Acquire)
    }

    /// Whether the router dropped the route (its plugin was unloaded or terminated): nothing
    /// routed to it will be acknowledged, nor waited for.
    pub fn closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Marks the route dropped (see [`LaneCounters::closed`]).
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
    }

    /// Messages in the lane or being processed.
    pub fn in_flight(&self) -> u64 {
        // Read `done` first: it never passes `pushed`, so the difference is never negative.
        let done = self.done();
        self.pushed().saturating_sub(done)
    }
}

#[inline]
fn bump(counter: &AtomicU64, n: u64) {
    // Each counter has exactly one writer: no read-modify-write needed.
    counter.store(counter.load(Ordering::Relaxed) + n, Ordering::Release);
}

/// The producing end, held by a source shard's router.
#[derive(Debug)]
pub struct LaneTx {
    tx: rtrb::Producer<Batch>,
    free: rtrb::Consumer<Batch>,
    counters: Arc<LaneCounters>,
    consumer_bell: Arc<Doorbell>,
    capacity: usize,
}

/// Emptied batches a lane keeps for its producer at most (see [`LaneRx::done`]).
const SPARE_BATCHES: usize = 32;

/// The consuming end, held by the filter or output runner.
#[derive(Debug)]
pub struct LaneRx {
    rx: rtrb::Consumer<Batch>,
    free: rtrb::Producer<Batch>,
    counters: Arc<LaneCounters>,
    producer_bell: Arc<Doorbell>,
    /// The number of the last batch marked done (processed, not yet acknowledged).
    last_done: u64,
}

/// A lane of `capacity` batches. `consumer_bell` is rung when a batch arrives, `producer_bell`
/// when one leaves (room for the producer).
pub fn lane(
    capacity: usize,
    consumer_bell: Arc<Doorbell>,
    producer_bell: Arc<Doorbell>,
) -> (LaneTx, LaneRx) {
    let (tx, rx) = rtrb::RingBuffer::new(capacity);
    let (free_tx, free_rx) = rtrb::RingBuffer::new(capacity + 2);
    let counters = Arc::new(LaneCounters::default());
    (
        LaneTx {
            tx,
            free: free_rx,
            counters: Arc::clone(&counters),
            consumer_bell,
            capacity,
        },
        LaneRx {
            rx,
            free: free_tx,
            counters,
            producer_bell,
            last_done: 0,
        },
    )
}

impl LaneTx {
    /// Pushes a batch, or gives it back when the lane is full.
    #[inline]
    pub fn try_push(&mut self, batch: Batch) -> Result<(), Batch> {
        let n = batch.len() as u64;
        match self.tx.push(batch) {
            Ok(()) => {
                bump(&self.counters.pushed, n);
                self.consumer_bell.ring();
                Ok(())
            }
            Err(rtrb::PushError::Full(batch)) => Err(batch),
        }
    }

    /// Whether a push would succeed now.
    #[inline]
    pub fn has_room(&self) -> bool {
        self.tx.slots() > 0
    }

    /// An emptied batch coming back from the consumer, if any.
    #[inline]
    pub fn recycled(&mut self) -> Option<Batch> {
        self.free.pop().ok()
    }

    /// The lane's counters.
    pub fn counters(&self) -> &Arc<LaneCounters> {
        &self.counters
    }

    /// Batches the lane holds at most.
    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

impl LaneRx {
    /// The next batch, if any.
    #[inline]
    pub fn try_pop(&mut self) -> Option<Batch> {
        self.rx.pop().ok()
    }

    /// Whether no batch is waiting.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.rx.is_empty()
    }

    /// Marks a popped batch as processed and returns it, emptied, to the producer.
    #[inline]
    pub fn done(&mut self, mut batch: Batch) {
        bump(&self.counters.done, batch.len() as u64);
        self.last_done = self.last_done.max(batch.seq());
        batch.clear();
        // At most SPARE_BATCHES emptied batches wait for the producer; more are freed. A burst
        // that filled the lane made the producer allocate up to its capacity (25 KiB a batch,
        // 1024 a lane by default), and keeping every one would hold that memory for good.
        // Otherwise the return lane holds every batch that can exist, so a push only fails if
        // the producer is gone; the batch is then simply freed.
        if self.free.buffer().capacity() - self.free.slots() < SPARE_BATCHES {
            let _ = self.free.push(batch);
        }
        self.producer_bell.ring();
    }

    /// Acknowledges every batch marked done so far: the consumer has made their messages
    /// durable (an output flushed, a filter processed them). One store, when it moved.
    #[inline]
    pub fn acknowledge(&mut self) {
        if self.counters.acked.load(Ordering::Relaxed) < self.last_done {
            self.counters.acked.store(self.last_done, Ordering::Release);
        }
    }

    /// The lane's counters.
    pub fn counters(&self) -> &Arc<LaneCounters> {
        &self.counters
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hekate_model::message::{MessageAccess, MessageView};

    #[test]
    fn batches_flow_and_come_back() {
        let (cb, pb) = (Arc::new(Doorbell::new()), Arc::new(Doorbell::new()));
        let (mut tx, mut rx) = lane(2, cb, pb);
        for i in 0..2u8 {
            let mut b = Batch::default();
            // an encoded message with Pid = i
            let msg = [8 << 3, i];
            b.push(&MessageView::new(&msg).unwrap(), 0);
            tx.try_push(b).unwrap();
        }
        assert!(!tx.has_room());
        assert!(tx.try_push(Batch::default()).is_err());
        assert_eq!(tx.counters().in_flight(), 2);
        let b = rx.try_pop().unwrap();
        assert_eq!(b.iter().next().unwrap().0.pid(), 0);
        rx.done(b);
        assert_eq!(tx.counters().in_flight(), 1);
        assert!(tx.recycled().unwrap().is_empty());
        assert!(tx.has_room());
    }
}
