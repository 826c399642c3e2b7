//! End-to-end acknowledgements, as an input that can replay sees them.
//!
//! An input that can read its data again after a crash (a file it tails and journals, a broker
//! that redelivers, a disk queue) must move its checkpoint only to positions whose messages
//! are safe at every destination that took them. The runtime tracks that without touching
//! messages: each router lane numbers its batches, and each consumer publishes the number of the
//! last batch it has made durable (an output once its flush wrote everything it was given, a
//! buffered output once its disk queue holds it, a filter once it processed it). An
//! [`AckMark`](crate::mesh::AckMark) records, for each lane of the input's shard, the number of
//! the last batch holding a message routed so far; once every lane has passed its number, every
//! message routed before the mark is durable.
//!
//! The input keeps its marks here, each with the cursor (file offset, broker delivery tag…)
//! reached when it took it:
//!
//! ```ignore
//! stream.feed(n).await;                  // split, decode, route, flush
//! acks.push(&ctx, Offset(pos));          // everything up to `pos` is routed
//! if let Some(Offset(p)) = acks.poll(&ctx) {
//!     journal.write(p);                  // everything up to `p` is durable downstream
//! }
//! ```
//!
//! What it costs: one batch number per sealed batch and one atomic store per acknowledged batch
//! on the consumer side, paid by every pipeline; one scan of the shard's lanes per mark, paid by
//! inputs that take marks (once per read, not per message).
//!
//! What "durable" means here is what survives `kill -9` of hekate: data written to a file or a
//! queue segment is in the kernel. Whether it survives a power loss is the output's fsync
//! policy (see the disk queue's `FsyncPolicy`). A TcpOutput without buffering counts a message
//! durable once the socket took it: the Heka protocol has no acknowledgement from the upstream;
//! with `use_buffering` (the default) it is durable once in the queue, and leaves the queue once
//! the upstream confirmed it (see [`Output::unconfirmed`](super::Output::unconfirmed)). A message a destination
//! dropped by its `full_action` or could not encode counts as handled: it was counted, and
//! waiting for it would stop the input for good.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::InputContext;
use crate::mesh::AckMark;

/// Marks kept at most; a push beyond replaces the newest one (a later mark covers an earlier
/// one), so memory stays bounded whatever the input's read rate.
const MAX_MARKS: usize = 1024;

/// An input's outstanding acknowledgement marks, oldest first, with their cursors. See the
/// module docs.
#[derive(Debug)]
pub struct Acknowledgements<C> {
    marks: VecDeque<(AckMark, C)>,
}

impl<C> Default for Acknowledgements<C> {
    fn default() -> Self {
        Self {
            marks: VecDeque::new(),
        }
    }
}

impl<C> Acknowledgements<C> {
    /// No outstanding mark.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that everything the input routed so far reached `cursor` (call it after
    /// routing, typically after [`RecordStream::feed`](super::RecordStream::feed)).
    pub fn push(&mut self, ctx: &InputContext, cursor: C) {
        let mark = ctx.router.ack_mark();
        if self.marks.len() >= MAX_MARKS {
            self.marks.pop_back();
        }
        self.marks.push_back((mark, cursor));
    }

    /// The newest cursor whose messages are all durable downstream, if one became so since the
    /// last call; the marks up to it are forgotten. Pushes the shard's partly filled batches
    /// along while marks wait on them, so an idle input's last messages are acknowledged too.
    pub fn poll(&mut self, ctx: &InputContext) -> Option<C> {
        let mut newest = None;
        while let Some((mark, _)) = self.marks.front() {
            if !mark.is_acked() {
                break;
            }
            newest = self.marks.pop_front().map(|(_, c)| c);
        }
        if !self.marks.is_empty() {
            ctx.router.flush_now(true);
        }
        newest
    }

    /// Waits until every mark is acknowledged or `timeout` passed (an input ending, before its
    /// last checkpoint); returns the newest acknowledged cursor, as [`Acknowledgements::poll`].
    pub async fn settle(&mut self, ctx: &InputContext, timeout: Duration) -> Option<C> {
        let until = Instant::now() + timeout;
        let mut newest = self.poll(ctx);
        while !self.marks.is_empty() && Instant::now() < until {
            glommio::timer::sleep(Duration::from_millis(5)).await;
            if let Some(c) = self.poll(ctx) {
                newest = Some(c);
            }
        }
        newest
    }

    /// Marks not yet acknowledged.
    pub fn outstanding(&self) -> usize {
        self.marks.len()
    }
}
