//! Checking what arrived: loss, duplicates and reordering per connection, and latency.
//!
//! Each generator connection numbers its messages 0, 1, 2, … ([`crate::load`]). The
//! [`SeqChecker`] keeps one bitmap of seen sequence numbers per connection id, so it tells apart
//! - a **duplicate**: a sequence number seen before;
//! - a **late** (reordered) message: first seen after a higher one of its connection;
//! - a **gap**: a number below the highest seen that never arrived (counted at the end).
//!
//! Loss at the tail (the last messages never arrived) is invisible from the receiving side alone;
//! [`Delivery::compare`] adds it from what the generator says it sent.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Sequence numbers above this are not believed (and would make the bitmap huge).
pub const SEQ_LIMIT: u64 = 1 << 36;

/// What one observed message was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seen {
    /// First time, in order (above every number seen before).
    InOrder,
    /// First time, but after a higher number.
    Late,
    /// Seen before.
    Duplicate,
    /// Sequence number beyond [`SEQ_LIMIT`]; ignored.
    Bad,
}

#[derive(Clone, Debug, Default)]
struct ConnSeq {
    seen: Vec<u64>,
    /// One past the highest number seen.
    next: u64,
    received: u64,
    unique: u64,
    duplicates: u64,
    late: u64,
}

/// Per-connection sequence tracking.
#[derive(Clone, Debug, Default)]
pub struct SeqChecker {
    conns: BTreeMap<u64, ConnSeq>,
    bad: u64,
}

impl SeqChecker {
    /// An empty checker.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records message `seq` of connection `conn`.
    pub fn observe(&mut self, conn: u64, seq: u64) -> Seen {
        if seq >= SEQ_LIMIT {
            self.bad += 1;
            return Seen::Bad;
        }
        let c = self.conns.entry(conn).or_default();
        c.received += 1;
        let (word, bit) = ((seq / 64) as usize, 1u64 << (seq % 64));
        if word >= c.seen.len() {
            let want = (word + 1).max(c.seen.len() * 2);
            c.seen.resize(want, 0);
        }
        if c.seen[word] & bit != 0 {
            c.duplicates += 1;
            return Seen::Duplicate;
        }
        c.seen[word] |= bit;
        c.unique += 1;
        if seq + 1 >= c.next {
            c.next = seq + 1;
            Seen::InOrder
        } else {
            c.late += 1;
            Seen::Late
        }
    }

    /// What has been seen so far.
    pub fn summary(&self) -> CheckSummary {
        let connections: Vec<ConnCheck> = self
            .conns
            .iter()
            .map(|(&conn, c)| ConnCheck {
                conn,
                received: c.received,
                unique: c.unique,
                duplicates: c.duplicates,
                late: c.late,
                max_seq: c.next.checked_sub(1),
                gaps: c.next - c.unique,
            })
            .collect();
        let sum = |f: fn(&ConnCheck) -> u64| connections.iter().map(f).sum();
        CheckSummary {
            received: sum(|c| c.received),
            unique: sum(|c| c.unique),
            duplicates: sum(|c| c.duplicates),
            late: sum(|c| c.late),
            gaps: sum(|c| c.gaps),
            bad_seq: self.bad,
            connections,
        }
    }
}

/// One connection's sequence as received.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnCheck {
    /// Connection id.
    pub conn: u64,
    /// Messages received, duplicates included.
    pub received: u64,
    /// Distinct sequence numbers.
    pub unique: u64,
    /// Messages whose number was seen before.
    pub duplicates: u64,
    /// Messages that arrived after a higher number (reordered).
    pub late: u64,
    /// Highest number seen.
    pub max_seq: Option<u64>,
    /// Numbers below the highest that never arrived.
    pub gaps: u64,
}

/// Every connection's sequence as received, and the totals.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckSummary {
    /// Messages received, duplicates included.
    pub received: u64,
    /// Distinct (connection, sequence) pairs.
    pub unique: u64,
    /// Messages seen before.
    pub duplicates: u64,
    /// Messages that arrived after a higher number of their connection.
    pub late: u64,
    /// Numbers below a connection's highest that never arrived.
    pub gaps: u64,
    /// Messages with an unbelievable sequence number.
    pub bad_seq: u64,
    /// Per connection.
    pub connections: Vec<ConnCheck>,
}

/// Whether everything sent arrived exactly once: the verdict of a run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// Messages the generator sent.
    pub sent: u64,
    /// Distinct messages received.
    pub delivered: u64,
    /// Sent but never received (gaps and tail).
    pub lost: u64,
    /// Received more than once.
    pub duplicates: u64,
    /// Received out of order (reported, not a failure).
    pub reordered: u64,
    /// Received from connections the generator did not open, or numbered beyond what it sent
    /// (a lower bound).
    pub unexpected: u64,
}

impl Delivery {
    /// Compares what each connection sent (`(conn, count)`) with what arrived.
    pub fn compare(sent: &[(u64, u64)], got: &CheckSummary) -> Delivery {
        let by_conn: BTreeMap<u64, &ConnCheck> =
            got.connections.iter().map(|c| (c.conn, c)).collect();
        let mut d = Delivery {
            sent: sent.iter().map(|(_, n)| n).sum(),
            delivered: 0,
            lost: 0,
            duplicates: got.duplicates,
            reordered: got.late,
            unexpected: got.bad_seq,
        };
        for &(conn, n) in sent {
            let Some(c) = by_conn.get(&conn) else {
                d.lost += n;
                continue;
            };
            // Numbers at or above `n` were never sent: corrupted or foreign stamps. The summary
            // does not say how many arrived, only that at least one (the highest) did, and at
            // least as many as `unique` exceeds `n`.
            let beyond = match c.max_seq {
                Some(m) if m >= n => c.unique.saturating_sub(n).max(1),
                _ => 0,
            };
            let unique_in_range = c.unique - beyond;
            d.delivered += unique_in_range;
            d.lost += n - unique_in_range.min(n);
            d.unexpected += c.unique - unique_in_range;
        }
        for c in &got.connections {
            if !sent.iter().any(|(conn, _)| *conn == c.conn) {
                d.unexpected += c.unique;
            }
        }
        d
    }

    /// Whether the run delivered every message exactly once.
    pub fn ok(&self) -> bool {
        self.lost == 0
            && self.duplicates == 0
            && self.unexpected == 0
            && self.delivered == self.sent
    }

    /// One sentence saying what went wrong, or `None`.
    pub fn problem(&self) -> Option<String> {
        if self.ok() {
            return None;
        }
        let mut parts = Vec::new();
        if self.lost > 0 {
            parts.push(format!("{} of {} messages lost", self.lost, self.sent));
        }
        if self.duplicates > 0 {
            parts.push(format!("{} duplicates", self.duplicates));
        }
        if self.unexpected > 0 {
            parts.push(format!("{} unexpected messages", self.unexpected));
        }
        if parts.is_empty() {
            parts.push(format!("{} of {} delivered", self.delivered, self.sent));
        }
        Some(parts.join(", "))
    }
}

/// Latencies in nanoseconds, in an HDR histogram (1 ns to 1 hour, 3 significant digits).
#[derive(Debug, Clone)]
pub struct LatencyRecorder {
    hist: Histogram<u64>,
}

impl Default for LatencyRecorder {
    fn default() -> Self {
        LatencyRecorder {
            hist: Histogram::new_with_bounds(1, 3_600_000_000_000, 3)
                .expect("valid histogram bounds"),
        }
    }
}

impl LatencyRecorder {
    /// Records one latency (clamped to the histogram's range).
    pub fn record(&mut self, ns: u64) {
        self.hist.saturating_record(ns.max(1));
    }

    /// Adds another recorder's values.
    pub fn merge(&mut self, other: &LatencyRecorder) {
        // Same bounds on both sides, so this cannot fail.
        let _ = self.hist.add(&other.hist);
    }

    /// Percentiles in microseconds; `None` when nothing was recorded.
    pub fn summary(&self) -> Option<LatencySummary> {
        if self.hist.is_empty() {
            return None;
        }
        let us = |ns: u64| ns as f64 / 1000.0;
        Some(LatencySummary {
            count: self.hist.len(),
            min_us: us(self.hist.min()),
            p50_us: us(self.hist.value_at_quantile(0.50)),
            p90_us: us(self.hist.value_at_quantile(0.90)),
            p99_us: us(self.hist.value_at_quantile(0.99)),
            p999_us: us(self.hist.value_at_quantile(0.999)),
            max_us: us(self.hist.max()),
            mean_us: self.hist.mean() / 1000.0,
        })
    }
}

/// Latency percentiles, in microseconds.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    /// Values recorded.
    pub count: u64,
    /// Smallest.
    pub min_us: f64,
    /// Median.
    pub p50_us: f64,
    /// 90th percentile.
    pub p90_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// 99.9th percentile.
    pub p999_us: f64,
    /// Largest.
    pub max_us: f64,
    /// Mean.
    pub mean_us: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(order: &[(u64, u64)]) -> SeqChecker {
        let mut c = SeqChecker::new();
        for &(conn, seq) in order {
            c.observe(conn, seq);
        }
        c
    }

    #[test]
    fn in_order_stream_is_clean() {
        let c = feed(&(0..1000).map(|s| (7, s)).collect::<Vec<_>>());
        let s = c.summary();
        assert_eq!(
            (s.received, s.unique, s.duplicates, s.late, s.gaps),
            (1000, 1000, 0, 0, 0)
        );
        let d = Delivery::compare(&[(7, 1000)], &s);
        assert!(d.ok(), "{d:?}");
        assert_eq!(d.problem(), None);
    }

    #[test]
    fn classifies_each_message() {
        let mut c = SeqChecker::new();
        assert_eq!(c.observe(1, 0), Seen::InOrder);
        assert_eq!(c.observe(1, 2), Seen::InOrder); // 1 missing for now
        assert_eq!(c.observe(1, 1), Seen::Late);
        assert_eq!(c.observe(1, 1), Seen::Duplicate);
        assert_eq!(c.observe(1, 200), Seen::InOrder); // 3..=199 missing
        assert_eq!(c.observe(2, 0), Seen::InOrder); // connections are independent
        assert_eq!(c.observe(2, SEQ_LIMIT), Seen::Bad);
        let s = c.summary();
        assert_eq!(s.received, 6);
        assert_eq!(s.unique, 5);
        assert_eq!(s.duplicates, 1);
        assert_eq!(s.late, 1);
        assert_eq!(s.gaps, 197);
        assert_eq!(s.bad_seq, 1);
        assert_eq!(s.connections[0].max_seq, Some(200));
    }

    #[test]
    fn delivery_counts_tail_loss_and_strangers() {
        // Connection 0 sent 10, the last 3 never came; connection 1 sent 5, one came twice;
        // connection 9 was never opened by the generator.
        let mut order: Vec<(u64, u64)> = (0..7).map(|s| (0, s)).collect();
        order.extend((0..5).map(|s| (1, s)));
        order.push((1, 3));
        order.push((9, 0));
        let d = Delivery::compare(&[(0, 10), (1, 5), (2, 4)], &feed(&order).summary());
        assert_eq!(d.sent, 19);
        assert_eq!(d.delivered, 12);
        assert_eq!(d.lost, 3 + 4);
        assert_eq!(d.duplicates, 1);
        assert_eq!(d.unexpected, 1);
        assert!(!d.ok());
        assert_eq!(
            d.problem().unwrap(),
            "7 of 19 messages lost, 1 duplicates, 1 unexpected messages"
        );
    }

    #[test]
    fn reordering_alone_is_not_a_failure() {
        let d = Delivery::compare(
            &[(0, 4)],
            &feed(&[(0, 1), (0, 0), (0, 3), (0, 2)]).summary(),
        );
        assert!(d.ok());
        assert_eq!(d.reordered, 2);
    }

    #[test]
    fn numbers_beyond_what_was_sent_are_unexpected() {
        let d = Delivery::compare(&[(0, 2)], &feed(&[(0, 0), (0, 1), (0, 5)]).summary());
        assert_eq!((d.delivered, d.lost, d.unexpected), (2, 0, 1));
        assert!(!d.ok());
    }

    #[test]
    fn latency_percentiles() {
        let mut l = LatencyRecorder::default();
        assert!(l.summary().is_none());
        for us in 1..=1000u64 {
            l.record(us * 1000);
        }
        let s = l.summary().unwrap();
        assert_eq!(s.count, 1000);
        assert!((s.p50_us - 500.0).abs() < 1.0, "{s:?}");
        assert!((s.p99_us - 990.0).abs() < 1.0, "{s:?}");
        assert!((s.max_us - 1000.0).abs() < 1.0, "{s:?}");
    }
}
