//! What ended up where: the messages of the output file and of the sink's arrival logs as sets,
//! with duplicates, the sink's receive timeline, and what the flood sent that arrived nowhere.

use std::collections::BTreeMap;
use std::path::Path;

use super::durable::StreamReader;
use super::seqset::SeqSet;
use crate::arrivals::{self, Arrival};
use crate::flood::FloodReport;

/// Gaps in the receive timeline shorter than this are not kept.
const GAP_MIN_NS: u64 = 50_000_000;

/// The messages of a Heka stream file.
#[derive(Clone, Debug, Default)]
pub struct FileLedger {
    /// Distinct messages.
    pub set: SeqSet,
    /// Records whose message was in the file before.
    pub duplicates: u64,
    /// Whole records.
    pub records: u64,
    /// Bytes of whole records (for the mean record length).
    pub record_bytes: u64,
    /// Bytes skipped between records (damage).
    pub skipped_bytes: u64,
    /// Bytes after the last whole record.
    pub trailing_bytes: u64,
    /// The messages of the records ending past `after` (see [`read_file`]).
    pub after: SeqSet,
}

impl FileLedger {
    /// Mean framed record length.
    pub fn mean_record_len(&self) -> f64 {
        if self.records == 0 {
            0.0
        } else {
            self.record_bytes as f64 / self.records as f64
        }
    }
}

/// Reads the whole stream at `path`; records ending past byte `after` also go into
/// [`FileLedger::after`].
pub fn read_file(path: &Path, after: Option<u64>) -> Result<FileLedger, String> {
    let mut l = FileLedger::default();
    let mut r = StreamReader::new(path);
    let step = r
        .read_new(|conn, seq, end| {
            if !l.set.insert(conn, seq) {
                l.duplicates += 1;
            }
            if after.is_some_and(|a| end > a) {
                l.after.insert(conn, seq);
            }
        })
        .map_err(|e| format!("reading {}: {e}", path.display()))?;
    l.records = step.records;
    l.record_bytes = r.offset().saturating_sub(step.skipped_bytes);
    l.skipped_bytes = step.skipped_bytes;
    l.trailing_bytes = r.trailing_bytes();
    Ok(l)
}

/// A duplicate arrival at the sink.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Duplicate {
    /// Connection id.
    pub conn: u64,
    /// Sequence number.
    pub seq: u64,
    /// When it arrived again.
    pub at_ns: u64,
}

/// What the sink received, over one or more arrival logs (sink restarts), in order.
#[derive(Clone, Debug, Default)]
pub struct SinkLedger {
    /// Distinct messages.
    pub set: SeqSet,
    /// Arrivals of a message that had arrived before.
    pub duplicates: Vec<Duplicate>,
    /// Records without a stamp.
    pub foreign: u64,
    /// First and last arrival, ns since the epoch.
    pub first_ns: u64,
    /// Last arrival.
    pub last_ns: u64,
    /// Gaps of at least 50 ms between consecutive arrivals of stamped messages: (last before,
    /// first after).
    pub gaps: Vec<(u64, u64)>,
    /// The first arrival of the last message within `bounds` (see [`read_sink`]) to arrive.
    pub bound_reached_ns: Option<u64>,
    /// Messages within `bounds` that arrived.
    pub within_bounds: u64,
}

impl SinkLedger {
    /// The longest gap, leaving out the time inside the `excluded` intervals (ns); with its
    /// start.
    pub fn longest_gap(&self, excluded: &[(u64, u64)]) -> (f64, u64) {
        let mut best = (0u64, 0u64);
        for &(a, b) in &self.gaps {
            let overlap: u64 = excluded
                .iter()
                .map(|&(x, y)| b.min(y).saturating_sub(a.max(x)))
                .sum();
            let len = (b - a).saturating_sub(overlap);
            if len > best.0 {
                best = (len, a);
            }
        }
        (best.0 as f64 / 1e9, best.1)
    }
}

/// Reads the arrival logs of one or more sinks, in order. With `bounds` (highest sequence
/// number per connection), also when the last message within them first arrived.
pub fn read_sink(
    logs: &[&Path],
    bounds: Option<&BTreeMap<u64, u64>>,
) -> Result<SinkLedger, String> {
    let mut l = SinkLedger::default();
    let mut last_at = 0u64;
    for log in logs {
        arrivals::read(log, |a| {
            let at = match a {
                Arrival::Message { conn, seq, at_ns } => {
                    if l.set.insert(conn, seq) {
                        if bounds.is_some_and(|b| b.get(&conn).is_some_and(|&m| seq <= m)) {
                            l.within_bounds += 1;
                            l.bound_reached_ns = Some(l.bound_reached_ns.unwrap_or(0).max(at_ns));
                        }
                    } else {
                        l.duplicates.push(Duplicate { conn, seq, at_ns });
                    }
                    at_ns
                }
                // Not part of the timeline: a pipeline's own messages keep coming after the load.
                Arrival::Foreign { count, .. } => {
                    l.foreign += count;
                    return;
                }
            };
            if l.first_ns == 0 {
                l.first_ns = at;
            }
            if last_at > 0 && at >= last_at + GAP_MIN_NS {
                l.gaps.push((last_at, at));
            }
            last_at = last_at.max(at);
            l.last_ns = last_at;
        })
        .map_err(|e| format!("reading {}: {e}", log.display()))?;
    }
    Ok(l)
}

/// What the flood sent, against everything that arrived anywhere.
#[derive(Clone, Debug, Default)]
pub struct SentLedger {
    /// Messages sent.
    pub sent: u64,
    /// Sent, and found nowhere.
    pub nowhere: SeqSet,
    /// Found somewhere, but never sent (another connection, or a number past what was sent).
    pub unexpected: u64,
}

/// Compares what `flood` sent with the union of where messages arrived.
pub fn against_sent(flood: &FloodReport, arrived: &[&SeqSet]) -> SentLedger {
    let mut out = SentLedger {
        sent: flood.sent,
        ..SentLedger::default()
    };
    let sent: BTreeMap<u64, u64> = flood.sent_by_conn().into_iter().collect();
    for (&conn, &n) in &sent {
        for seq in 0..n {
            if !arrived.iter().any(|s| s.contains(conn, seq)) {
                out.nowhere.insert(conn, seq);
            }
        }
    }
    let mut all = SeqSet::new();
    for s in arrived {
        all.extend(s);
    }
    out.unexpected = all
        .iter()
        .filter(|(c, s)| sent.get(c).is_none_or(|&n| *s >= n))
        .count() as u64;
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arrivals::ArrivalLog;

    #[test]
    fn sink_ledger_counts_duplicates_gaps_and_the_bound() {
        let dir = std::env::temp_dir();
        let a = dir.join(format!("hekate-ledger-a-{}", std::process::id()));
        let b = dir.join(format!("hekate-ledger-b-{}", std::process::id()));
        let ms = 1_000_000;
        let mut log = ArrivalLog::create(&a).unwrap();
        log.record(1000 * ms, [(0, 0), (0, 1)].into_iter(), 0)
            .unwrap();
        log.record(1010 * ms, [(0, 2)].into_iter(), 1).unwrap();
        drop(log);
        let mut log = ArrivalLog::create(&b).unwrap();
        log.record(2000 * ms, [(0, 1), (0, 3)].into_iter(), 0)
            .unwrap();
        drop(log);
        let bounds = BTreeMap::from([(0, 2)]);
        let l = read_sink(&[&a, &b], Some(&bounds)).unwrap();
        assert_eq!(l.set.len(), 4);
        assert_eq!(
            l.duplicates,
            vec![Duplicate {
                conn: 0,
                seq: 1,
                at_ns: 2000 * ms
            }]
        );
        assert_eq!(l.foreign, 1);
        assert_eq!(l.gaps, vec![(1010 * ms, 2000 * ms)]);
        assert_eq!(l.bound_reached_ns, Some(1010 * ms));
        assert_eq!(l.within_bounds, 3);
        assert!((l.longest_gap(&[]).0 - 0.99).abs() < 1e-9);
        // The time the pipeline was down is left out.
        let (gap, _) = l.longest_gap(&[(1100 * ms, 1900 * ms)]);
        assert!((gap - 0.19).abs() < 1e-9, "{gap}");

        let flood = FloodReport {
            sent: 6,
            connections: vec![crate::flood::ConnSent {
                conn: 0,
                sent: 6,
                ..Default::default()
            }],
            ..Default::default()
        };
        let s = against_sent(&flood, &[&l.set]);
        assert_eq!(s.nowhere.iter().collect::<Vec<_>>(), vec![(0, 4), (0, 5)]);
        assert_eq!(s.unexpected, 0);
        let _ = std::fs::remove_file(&a);
        let _ = std::fs::remove_file(&b);
    }
}
