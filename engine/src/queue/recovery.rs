//! What `open` (and `hekate queue`) learn from a queue directory before trusting it: where the
//! checkpoint really points, and what each segment holds — records, damage, a torn tail.

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use super::QueueError;
use super::checkpoint::{Cursor, StoredCheckpoint, checkpoint_path};
use super::segment::{Checksums, Corruption, Scanned, SegmentScanner, segment_path};

/// Why the stored checkpoint could not be used as it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckpointProblem {
    /// Unreadable, not a cursor, or naming a segment newer than every segment: reading restarts
    /// at the oldest segment.
    Unusable(String),
    /// Names a segment that is gone, older ones or newer ones exist: reading resumes at the
    /// start of the next one.
    SegmentMissing {
        /// The segment named.
        named: u64,
    },
    /// Points past the end of its segment: reading resumes at the end of it.
    BeyondEnd {
        /// The segment.
        segment: u64,
        /// The offset named.
        offset: u64,
        /// The segment's length.
        len: u64,
    },
}

impl CheckpointProblem {
    /// The problem as the error value a caller logs, for the queue in `dir`.
    pub fn to_error(&self, dir: &Path, resumed: Cursor) -> QueueError {
        let path = checkpoint_path(dir);
        match self {
            CheckpointProblem::Unusable(reason) => QueueError::CheckpointReset {
                path,
                reason: reason.clone(),
                resumed,
            },
            CheckpointProblem::SegmentMissing { named } => QueueError::CheckpointSegmentMissing {
                path,
                named: *named,
                resumed,
            },
            &CheckpointProblem::BeyondEnd {
                segment,
                offset,
                len,
            } => QueueError::CheckpointBeyondEnd {
                path,
                segment,
                offset,
                len,
            },
        }
    }
}

/// Where reading starts, given the stored checkpoint and the segments (id → length) present.
///
/// With no segments at all the answer is `0 0`. A missing checkpoint file means nothing was ever
/// acknowledged: the oldest segment, from its start, without a problem.
pub fn resolve_checkpoint(
    stored: &StoredCheckpoint,
    segments: &BTreeMap<u64, u64>,
) -> (Cursor, Option<CheckpointProblem>) {
    let oldest = Cursor::new(segments.keys().next().copied().unwrap_or(0), 0);
    match stored {
        StoredCheckpoint::Missing => (oldest, None),
        StoredCheckpoint::Unusable(reason) => {
            (oldest, Some(CheckpointProblem::Unusable(reason.clone())))
        }
        StoredCheckpoint::Cursor(c) => match segments.get(&c.segment) {
            Some(&len) if c.offset <= len => (*c, None),
            Some(&len) => (
                Cursor::new(c.segment, len),
                Some(CheckpointProblem::BeyondEnd {
                    segment: c.segment,
                    offset: c.offset,
                    len,
                }),
            ),
            None => match segments.range(c.segment..).next() {
                Some((&next, _)) => (
                    Cursor::new(next, 0),
                    Some(CheckpointProblem::SegmentMissing { named: c.segment }),
                ),
                // Ahead of everything: hekate never writes such a checkpoint (a segment is only
                // left behind once the next one exists), so it is damage. Replay rather than
                // drop what is there.
                None if !segments.is_empty() => (
                    oldest,
                    Some(CheckpointProblem::Unusable(format!(
                        "it names segment {}, newer than every segment",
                        c.segment
                    ))),
                ),
                None => (oldest, None),
            },
        },
    }
}

/// What one segment holds from a given offset on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentSummary {
    /// The segment id.
    pub id: u64,
    /// The segment file.
    pub path: PathBuf,
    /// The offset the scan started at.
    pub start: u64,
    /// The segment's length (where the scan ended).
    pub len: u64,
    /// Valid records from `start` on.
    pub records: u64,
    /// Those of them that start at or after the `pending_from` offset given.
    pub pending_records: u64,
    /// Bytes of those records, framing included.
    pub record_bytes: u64,
    /// Whether its records must carry checksums (hekate's) or may not (Heka's).
    pub checksums: Checksums,
    /// Every damaged run, in order; the last one may be a torn tail (`at_end`).
    pub corruptions: Vec<Corruption>,
}

impl SegmentSummary {
    /// The damaged run the segment ends with, if any.
    pub fn torn_tail(&self) -> Option<&Corruption> {
        self.corruptions.last().filter(|c| c.at_end)
    }

    /// Bytes in damaged runs.
    pub fn corrupt_bytes(&self) -> u64 {
        self.corruptions.iter().map(|c| c.len).sum()
    }
}

/// Reads segment `id` of `dir` from `start`, counting records (and separately those at or after
/// `pending_from`) and listing damage.
pub fn summarize(
    dir: &Path,
    id: u64,
    start: u64,
    pending_from: u64,
    max_message_size: u32,
) -> Result<SegmentSummary, QueueError> {
    let path = segment_path(dir, id);
    let read = |e| QueueError::io("read segment", &path, e);
    let mut file = File::open(&path).map_err(read)?;
    let checksums = Checksums::detect_file(&file, max_message_size).map_err(read)?;
    io::Seek::seek(&mut file, io::SeekFrom::Start(start)).map_err(read)?;
    let mut scanner = SegmentScanner::new(file, start, checksums, max_message_size);
    let mut summary = SegmentSummary {
        id,
        path: path.clone(),
        start,
        len: start,
        records: 0,
        pending_records: 0,
        record_bytes: 0,
        checksums,
        corruptions: Vec::new(),
    };
    loop {
        match scanner.next().map_err(read)? {
            Scanned::Record(span) => {
                summary.records += 1;
                summary.pending_records += u64::from(span.offset >= pending_from);
                summary.record_bytes += span.len;
            }
            Scanned::Corrupt(c) => summary.corruptions.push(c),
            Scanned::End => break,
        }
    }
    summary.len = scanner.position();
    Ok(summary)
}
