//! Offline tools over a queue directory, for `hekate queue check|repair`: [`inspect`] reports
//! every segment and every damaged region without changing anything; [`repair`] removes the
//! damage, atomically, and says what it did.

use std::fmt;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::checkpoint::{self, Cursor, StoredCheckpoint, checkpoint_path, sync_dir};
use super::recovery::{CheckpointProblem, SegmentSummary, resolve_checkpoint, summarize};
use super::segment::{self, Checksums, Corruption, Damage, Scanned, SegmentScanner};
use super::{QueueError, cut_tail, lock_dir};

/// Everything [`inspect`] found in a queue directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueReport {
    /// The queue directory.
    pub dir: PathBuf,
    /// What `checkpoint.txt` holds.
    pub stored_checkpoint: StoredCheckpoint,
    /// Where reading would resume.
    pub checkpoint: Cursor,
    /// Why that differs from the stored checkpoint, if it does.
    pub checkpoint_problem: Option<CheckpointProblem>,
    /// Every segment, oldest first, scanned from its start; `pending_records` counts the records
    /// at or after the checkpoint.
    pub segments: Vec<SegmentSummary>,
}

impl QueueReport {
    /// True when no segment has damage and the checkpoint is usable as stored.
    pub fn is_healthy(&self) -> bool {
        self.checkpoint_problem.is_none() && self.segments.iter().all(|s| s.corruptions.is_empty())
    }

    /// Valid records in all segments.
    pub fn records(&self) -> u64 {
        self.segments.iter().map(|s| s.records).sum()
    }

    /// Records at or after the checkpoint.
    pub fn pending_records(&self) -> u64 {
        self.segments.iter().map(|s| s.pending_records).sum()
    }

    /// Bytes of all segments.
    pub fn bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.len).sum()
    }

    /// The checkpoint problem as the sentence `open` would log, if there is one.
    pub fn checkpoint_error(&self) -> Option<QueueError> {
        self.checkpoint_problem
            .as_ref()
            .map(|p| p.to_error(&self.dir, self.checkpoint))
    }
}

/// Reads every segment of the queue in `dir` and its checkpoint, changing nothing.
pub fn inspect(dir: &Path, max_message_size: u32) -> Result<QueueReport, QueueError> {
    let ids = segment::list(dir).map_err(|e| QueueError::io("read queue directory", dir, e))?;
    let stored = checkpoint::read(dir);
    let (checkpoint, checkpoint_problem) = resolve_checkpoint(&stored, &ids);
    let mut segments = Vec::with_capacity(ids.len());
    for &id in ids.keys() {
        let pending_from = match id.cmp(&checkpoint.segment) {
            std::cmp::Ordering::Less => u64::MAX,
            std::cmp::Ordering::Equal => checkpoint.offset,
            std::cmp::Ordering::Greater => 0,
        };
        segments.push(summarize(dir, id, 0, pending_from, max_message_size)?);
    }
    Ok(QueueReport {
        dir: dir.to_path_buf(),
        stored_checkpoint: stored,
        checkpoint,
        checkpoint_problem,
        segments,
    })
}

/// One thing [`repair`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RepairAction {
    /// The segment ended in a damaged run and was truncated before it.
    CutTail {
        /// The segment file.
        path: PathBuf,
        /// The new length: the end of the last whole record.
        offset: u64,
        /// Bytes removed.
        len: u64,
        /// What the removed bytes started with.
        damage: Damage,
    },
    /// The segment had damage before its end: it was rewritten with its valid records only.
    Rewrote {
        /// The segment file.
        path: PathBuf,
        /// The damaged runs removed (a torn tail included).
        removed: Vec<Corruption>,
        /// Valid records kept.
        kept: u64,
    },
    /// The checkpoint was unusable and now names where reading resumes.
    CheckpointReset {
        /// The checkpoint file.
        path: PathBuf,
        /// What was wrong.
        problem: CheckpointProblem,
        /// The checkpoint written.
        now: Cursor,
    },
    /// The checkpoint's segment was rewritten, so its offset moved with the records.
    CheckpointMoved {
        /// The checkpoint file.
        path: PathBuf,
        /// The old checkpoint.
        from: Cursor,
        /// The new one.
        to: Cursor,
    },
}

impl fmt::Display for RepairAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RepairAction::CutTail {
                path,
                offset,
                len,
                damage,
            } => write!(
                f,
                "cut a torn tail of {len} bytes at offset {offset} of {} ({damage})",
                path.display()
            ),
            RepairAction::Rewrote {
                path,
                removed,
                kept,
            } => write!(
                f,
                "rewrote {} without {} corrupt region(s) of {} bytes in all; {kept} records kept",
                path.display(),
                removed.len(),
                removed.iter().map(|c| c.len).sum::<u64>()
            ),
            RepairAction::CheckpointReset { path, problem, now } => {
                let why = match problem {
                    CheckpointProblem::Unusable(reason) => reason.clone(),
                    CheckpointProblem::SegmentMissing { named } => {
                        format!("it named missing segment {named}")
                    }
                    CheckpointProblem::BeyondEnd {
                        segment,
                        offset,
                        len,
                    } => {
                        format!("it pointed at {offset}, past the {len} bytes of segment {segment}")
                    }
                };
                write!(f, "reset checkpoint {} to `{now}` ({why})", path.display())
            }
            RepairAction::CheckpointMoved { path, from, to } => write!(
                f,
                "moved checkpoint {} from `{from}` to `{to}` with its rewritten segment",
                path.display()
            ),
        }
    }
}

/// Repairs the queue in `dir`, which must not be open elsewhere (the directory lock is taken):
/// cuts torn tails, rewrites segments with damage before their end without it (a new file
/// renamed over the old, then the directory synced), and resets an unusable checkpoint to where
/// `open` would resume. Returns what it did, nothing for a healthy queue.
pub fn repair(dir: &Path, max_message_size: u32) -> Result<Vec<RepairAction>, QueueError> {
    let _lock = lock_dir(dir)?;
    let report = inspect(dir, max_message_size)?;
    let mut actions = Vec::new();
    let mut checkpoint = report.checkpoint;
    for summary in &report.segments {
        match summary.corruptions.as_slice() {
            [] => {}
            [tail] if tail.at_end => {
                cut_tail(&summary.path, tail.offset, true)?;
                actions.push(RepairAction::CutTail {
                    path: summary.path.clone(),
                    offset: tail.offset,
                    len: tail.len,
                    damage: tail.damage,
                });
                if summary.id == checkpoint.segment && checkpoint.offset > tail.offset {
                    let to = Cursor::new(checkpoint.segment, tail.offset);
                    if report.checkpoint_problem.is_none() {
                        actions.push(RepairAction::CheckpointMoved {
                            path: checkpoint_path(dir),
                            from: checkpoint,
                            to,
                        });
                    }
                    checkpoint = to;
                }
            }
            removed => {
                let follows = (summary.id == checkpoint.segment).then_some(checkpoint.offset);
                let moved = rewrite(dir, summary, follows, max_message_size)?;
                actions.push(RepairAction::Rewrote {
                    path: summary.path.clone(),
                    removed: removed.to_vec(),
                    kept: summary.records,
                });
                if let Some(offset) = moved.filter(|&o| o != checkpoint.offset) {
                    let to = Cursor::new(checkpoint.segment, offset);
                    if report.checkpoint_problem.is_none() {
                        actions.push(RepairAction::CheckpointMoved {
                            path: checkpoint_path(dir),
                            from: checkpoint,
                            to,
                        });
                    }
                    checkpoint = to;
                }
            }
        }
    }
    let moved = checkpoint != report.checkpoint;
    if let Some(problem) = &report.checkpoint_problem {
        actions.push(RepairAction::CheckpointReset {
            path: checkpoint_path(dir),
            problem: problem.clone(),
            now: checkpoint,
        });
    }
    if moved || report.checkpoint_problem.is_some() {
        checkpoint::write(dir, checkpoint, true)
            .map_err(|(path, e)| QueueError::io("write checkpoint", path, e))?;
    }
    Ok(actions)
}

/// Rewrites a segment with only its valid records: `<id>.log.repair`, synced, renamed over
/// `<id>.log`, directory synced. Returns where `follow` (an offset in the old file) lands in the
/// new one: the start of the first record at or after it.
fn rewrite(
    dir: &Path,
    summary: &SegmentSummary,
    follow: Option<u64>,
    max_message_size: u32,
) -> Result<Option<u64>, QueueError> {
    let temp = dir.join(format!("{}.log.repair", summary.id));
    let write = |e| QueueError::io("write repaired segment", &temp, e);
    let read = |e| QueueError::io("read segment", &summary.path, e);
    let source = File::open(&summary.path).map_err(read)?;
    let checksums: Checksums = summary.checksums;
    let mut scanner = SegmentScanner::new(source, 0, checksums, max_message_size);
    let mut out = io::BufWriter::new(File::create(&temp).map_err(write)?);
    let mut written = 0u64;
    let mut followed = None;
    loop {
        match scanner.next().map_err(read)? {
            Scanned::Record(span) => {
                if follow.is_some_and(|f| span.offset >= f) && followed.is_none() {
                    followed = Some(written);
                }
                out.write_all(scanner.framed(&span)).map_err(write)?;
                written += span.len;
            }
            Scanned::Corrupt(_) => {}
            Scanned::End => break,
        }
    }
    let file = out.into_inner().map_err(|e| write(e.into_error()))?;
    file.sync_all().map_err(write)?;
    drop(file);
    fs::rename(&temp, &summary.path)
        .map_err(|e| QueueError::io("replace segment", &summary.path, e))?;
    sync_dir(dir).map_err(|e| QueueError::io("sync queue directory", dir, e))?;
    // A checkpoint past every record lands at the end.
    Ok(follow.map(|_| followed.unwrap_or(written)))
}
