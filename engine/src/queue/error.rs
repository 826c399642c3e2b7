//! What can go wrong with a disk queue, each in one sentence that names the file.
//!
//! Some variants are not failures of the call that reports them but things the queue recovered
//! from (a torn tail cut, a checkpoint reset, a corrupt region skipped): those come back from
//! [`DiskQueue::take_warnings`](super::DiskQueue::take_warnings) for the caller to log, and are
//! counted in [`QueueStats`](super::QueueStats).

use std::io;
use std::path::PathBuf;

use super::Cursor;
use super::segment::Damage;

/// A disk queue error, or a recovery the queue made and the caller should log.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The queue directory could not be created.
    #[error("cannot create queue directory {path}: {source}")]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The queue directory exists but files cannot be created in it.
    #[error("queue directory {path} is not writable: {source}")]
    NotWritable {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// Another process (or another queue in this one) has the directory open.
    #[error("queue directory {path} is in use by another process (it holds the lock on it)")]
    Locked {
        /// The directory.
        path: PathBuf,
    },
    /// An I/O operation on a queue file failed.
    #[error("cannot {action} {path}: {source}")]
    Io {
        /// What was being done, as a verb phrase ("write segment", "read checkpoint").
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The options cannot work together.
    #[error("invalid options for disk queue {path}: {reason}")]
    InvalidOptions {
        /// The queue directory.
        path: PathBuf,
        /// Which option and why.
        reason: String,
    },
    /// A message longer than `max_message_size` was appended.
    #[error("message of {len} bytes exceeds max_message_size {max} of disk queue {path}")]
    MessageTooLarge {
        /// The queue directory.
        path: PathBuf,
        /// Length of the message.
        len: usize,
        /// The limit.
        max: u32,
    },
    /// `ack` was given a cursor past the last record read.
    #[error("cannot acknowledge {cursor} in {path}: the last record read ends at {read}")]
    AckAhead {
        /// The queue directory.
        path: PathBuf,
        /// The cursor given.
        cursor: Cursor,
        /// The cursor of the last record read.
        read: Cursor,
    },
    /// Recovered: the checkpoint could not be read or parsed; reading restarts at the oldest
    /// segment (records may be delivered twice, none is lost).
    #[error(
        "checkpoint {path} is unusable ({reason}); replaying from the oldest segment, {resumed}"
    )]
    CheckpointReset {
        /// The checkpoint file.
        path: PathBuf,
        /// What was wrong with it.
        reason: String,
        /// Where reading resumes.
        resumed: Cursor,
    },
    /// Recovered: the checkpoint names a segment that no longer exists; reading resumes at the
    /// start of the next one.
    #[error("checkpoint {path} names segment {named}, which does not exist; resuming at {resumed}")]
    CheckpointSegmentMissing {
        /// The checkpoint file.
        path: PathBuf,
        /// The segment it names.
        named: u64,
        /// Where reading resumes.
        resumed: Cursor,
    },
    /// Recovered: the checkpoint points past the end of its segment (the segment lost data that
    /// had been acknowledged, e.g. in a power loss); reading resumes at the end of the segment.
    #[error(
        "checkpoint {path} points past the end of segment {segment} ({offset} > {len} bytes); \
         resuming at its end"
    )]
    CheckpointBeyondEnd {
        /// The checkpoint file.
        path: PathBuf,
        /// The segment.
        segment: u64,
        /// The offset the checkpoint names.
        offset: u64,
        /// The segment's length.
        len: u64,
    },
    /// Recovered: the last segment ended in a partial or damaged record (a crash while writing);
    /// the file was cut back to its last whole record.
    #[error("cut a torn tail of {len} bytes at offset {offset} of {path} ({damage})")]
    TornTailCut {
        /// The segment file.
        path: PathBuf,
        /// Where the cut was made: the end of the last whole record.
        offset: u64,
        /// Bytes removed.
        len: u64,
        /// What the first removed bytes were.
        damage: Damage,
    },
    /// Recovered: a damaged region in the middle of a segment was skipped while reading; the
    /// records after it were read.
    #[error("skipped {len} corrupt bytes at offset {offset} of {path} ({damage})")]
    CorruptRegion {
        /// The segment file.
        path: PathBuf,
        /// Offset of the first skipped byte.
        offset: u64,
        /// Bytes skipped.
        len: u64,
        /// What the first skipped bytes were.
        damage: Damage,
    },
}

impl QueueError {
    /// Whether the file system is full (ENOSPC or EDQUOT).
    pub fn is_storage_full(&self) -> bool {
        match self {
            QueueError::Io { source, .. } => {
                source.kind() == io::ErrorKind::StorageFull
                    || matches!(source.raw_os_error(), Some(libc::ENOSPC | libc::EDQUOT))
            }
            _ => false,
        }
    }

    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        QueueError::Io {
            action,
            path: path.into(),
            source,
        }
    }
}
