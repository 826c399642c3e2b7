//! The disk queue buffered outputs write through (`use_buffering`): Heka's on-disk format, with a
//! checksum per record so that damage is found, cut or skipped, and never replayed.
//!
//! # Layout (Heka's, reference §4.3)
//!
//! ```text
//! <base_dir>/output_queue/<plugin name, non-word characters → _>/   queue_dir()
//!     0.log 1.log …      segments: Heka-framed, unsigned records of the message bytes
//!     checkpoint.txt     "<segment> <offset>" (ASCII, no newline): the acknowledged position
//! ```
//!
//! Records are appended to the newest segment; past `max_file_size` a new segment `<N+1>.log` is
//! started. The reader replays from the checkpoint; acknowledging moves the checkpoint and deletes
//! the segments wholly before it. A queue hekate wrote reads with `hekate cat` and with Heka's own
//! queue reader, and hekate reads a queue Heka left behind (see below).
//!
//! # Integrity: the checksum field
//!
//! Each record's header carries hekate's field 15 (fixed32): the CRC-32C of the message
//! ([`hekate_model::framing::CHECKSUM_FIELD`]). Heka's decoder skips the unknown field; hekate's
//! reader accepts a record only when its framing is valid and its checksum matches. So:
//!
//! - a **torn tail** (a crash mid-write: a partial record, or one whose bytes never reached the
//!   disk) in the last segment is cut off at `open` — the file is truncated to its last whole
//!   record — and counted ([`QueueStats::torn_tail_bytes_cut`]);
//! - a **damaged region in the middle** of a segment is skipped while reading, up to the next
//!   record separator that starts a valid record, and counted
//!   ([`QueueStats::corrupt_records_skipped`], [`QueueStats::corrupt_bytes_skipped`]); the
//!   records after it are read;
//! - an **unusable checkpoint** (unreadable, not `"<id> <offset>"`, naming a segment newer than
//!   any) makes reading restart at the oldest segment: records may come twice, none is lost;
//!   a checkpoint naming a deleted segment resumes at the next one, and one past the end of its
//!   segment at that end. Each is counted ([`QueueStats::checkpoint_resets`]) and reported.
//!
//! Nothing of this fails `open` or `next`: the queue repairs, counts, and hands the events to the
//! caller as [`QueueError`] values from [`DiskQueue::take_warnings`], to log. Segments written by
//! Heka carry no checksums; a segment whose first record has none is read with framing checks
//! only, as Heka would, and hekate starts a new segment rather than append to it.
//!
//! # Durability: what survives what
//!
//! | event | survives |
//! |---|---|
//! | `append` returned | nothing yet: the record is in the queue's buffer (≤ 64 KiB) |
//! | `flush` returned | **kill -9** (the bytes are in the kernel, written with one write(2)) |
//! | `sync` or `close` returned | **power loss** (the segment is fdatasynced) |
//! | a rollover | power loss, once the sealed segment's fdatasync (on a thread of its own, so the shard does not wait for it) has finished |
//! | `ack` → checkpoint written | kill -9: written to a temporary file and renamed over `checkpoint.txt` (a crash leaves the old or the new one, whole) |
//! | `close` (or `ack` with [`FsyncPolicy::Always`]) | **power loss** for the checkpoint too: the temporary file and the directory are fsynced |
//!
//! "Acknowledged by hekate" (the point at which an input may move its own checkpoint) means
//! appended **and flushed**. With [`FsyncPolicy::Always`] every flush is also fdatasynced; with
//! [`FsyncPolicy::Never`] nothing is (tests, tmpfs). After a power loss under the default policy,
//! what was flushed but not synced may be missing or torn: `open` cuts the torn tail, and a
//! checkpoint that now points past the end of its segment resumes at that end. The checkpoint
//! written at an acknowledgement is not fsynced under the default policy (two fsyncs per
//! acknowledgement held a buffered TcpOutput to a quarter of its speed): after a power loss it
//! may be an older one, so records acknowledged since come again — duplicates, never a loss.
//!
//! # Cost and threading
//!
//! This is the storage layer, synchronous `std::fs`: each call may block on the disk. The runtime
//! calls it off the message hot path, or once per batch (append a batch, then one `flush`), never
//! per message on a shard's executor. `open` reads the pending part of the queue once,
//! sequentially, to count its records and find a torn tail: its cost grows with the backlog.
//! One process at a time: `open` takes an exclusive `flock` on the directory.
//!
//! ```
//! use hekate_engine::queue::{Appended, DiskQueue, QueueOptions, queue_dir};
//!
//! let base = std::env::temp_dir().join(format!("hekate-doc-queue-{}", std::process::id()));
//! let dir = queue_dir(&base, "TcpOutput:upstream");
//! assert!(dir.ends_with("output_queue/TcpOutput_upstream"));
//!
//! let mut queue = DiskQueue::open(&dir, QueueOptions::default()).unwrap();
//! assert_eq!(queue.append(b"encoded message").unwrap(), Appended::Queued);
//! queue.flush().unwrap();
//! let record = queue.next().unwrap().unwrap();
//! assert_eq!(record.message, b"encoded message");
//! let cursor = record.cursor;
//! queue.ack(cursor).unwrap();
//! queue.close().unwrap();
//! assert_eq!(std::fs::read_to_string(dir.join("checkpoint.txt")).unwrap(), cursor.to_string());
//! # std::fs::remove_dir_all(&base).unwrap();
//! ```

mod checkpoint;
mod error;
mod recovery;
mod repair;
mod segment;
mod writer;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Seek};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hekate_model::framing::{DEFAULT_MAX_MESSAGE_SIZE, checksummed_record_len, max_record_size};

pub use checkpoint::{CHECKPOINT_FILE, Cursor, ParseCursorError, StoredCheckpoint};
pub use error::QueueError;
pub use recovery::{
    CheckpointProblem, SegmentSummary, resolve_checkpoint, summarize as summarize_segment,
};
pub use repair::{QueueReport, RepairAction, inspect, repair};
pub use segment::{Checksums, Corruption, Damage, Scanned, SegmentScanner, Span, segment_path};

use writer::{FLUSH_THRESHOLD, SegmentWriter};

/// The folder under `base_dir` that holds one queue directory per buffered plugin (Heka's).
pub const QUEUE_ROOT: &str = "output_queue";
/// Default `max_file_size`: 512 MiB.
pub const DEFAULT_MAX_FILE_SIZE: u64 = 512 * 1024 * 1024;
/// At most this many warnings wait in [`DiskQueue::take_warnings`]; later ones are only counted.
const MAX_WARNINGS: usize = 100;

/// The queue directory of the plugin `plugin_name`:
/// `<base_dir>/output_queue/<plugin_name with every non-word character replaced by _>`, as Heka
/// names it (a word character is an ASCII letter, digit or `_`).
pub fn queue_dir(base_dir: &Path, plugin_name: &str) -> PathBuf {
    let name: String = plugin_name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    base_dir.join(QUEUE_ROOT).join(name)
}

/// When segment data is fsynced. The checkpoint is fsynced whenever it is written, except with
/// [`Never`](FsyncPolicy::Never).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// Never fsync anything: data survives a process kill but not a power loss.
    Never,
    /// fdatasync segments on [`DiskQueue::sync`], on rollover and on close; `flush` only writes
    /// to the kernel.
    #[default]
    OnSync,
    /// Also fdatasync after every flush: what `flush` returned survives a power loss.
    Always,
}

/// How a queue is sized and made durable (Heka's `[X.buffering]` section, plus the fsync policy).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueOptions {
    /// A segment is closed and a new one started when a record would take it past this size;
    /// 0 means the default, 512 MiB. Must hold the largest record.
    pub max_file_size: u64,
    /// Largest total size of the segment files; an append past it returns [`Appended::Full`].
    /// 0 means unlimited.
    pub max_buffer_size: u64,
    /// The checkpoint is written every this many acknowledgements (and on close); 0 means 1.
    pub cursor_update_count: u32,
    /// And at most once per this interval: acknowledgements in between move it in memory, and
    /// [`DiskQueue::checkpoint_if_due`] writes what is left once the interval has passed. Zero
    /// (the default) writes at every `cursor_update_count` acknowledgements.
    pub checkpoint_interval: Duration,
    /// When segment data is fsynced.
    pub fsync: FsyncPolicy,
    /// Largest message accepted (the pipeline's `max_message_size`); 0 means 64 KiB.
    pub max_message_size: u32,
}

impl Default for QueueOptions {
    fn default() -> Self {
        QueueOptions {
            max_file_size: DEFAULT_MAX_FILE_SIZE,
            max_buffer_size: 0,
            cursor_update_count: 1,
            checkpoint_interval: Duration::ZERO,
            fsync: FsyncPolicy::OnSync,
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
        }
    }
}

impl QueueOptions {
    /// Zeros replaced by their defaults, and checked, for the queue in `dir`.
    fn resolved(mut self, dir: &Path) -> Result<Self, QueueError> {
        if self.max_file_size == 0 {
            self.max_file_size = DEFAULT_MAX_FILE_SIZE;
        }
        if self.cursor_update_count == 0 {
            self.cursor_update_count = 1;
        }
        if self.max_message_size == 0 {
            self.max_message_size = DEFAULT_MAX_MESSAGE_SIZE;
        }
        let record = max_record_size(self.max_message_size) as u64;
        if self.max_file_size < record {
            return Err(QueueError::InvalidOptions {
                path: dir.to_path_buf(),
                reason: format!(
                    "max_file_size {} is smaller than the largest record ({record} bytes for \
                     max_message_size {})",
                    self.max_file_size, self.max_message_size
                ),
            });
        }
        Ok(self)
    }
}

/// What [`DiskQueue::append`] did.
#[must_use]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Appended {
    /// The record is queued (buffered; durable as described in the module docs).
    Queued,
    /// The queue is at `max_buffer_size`: nothing was written. The caller applies its
    /// `full_action` (block and retry after acknowledging, drop, or shut down).
    Full,
}

/// One record read from the queue, borrowed until the next call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record<'a> {
    /// The message bytes, as appended.
    pub message: &'a [u8],
    /// The position just past the record: pass it to [`DiskQueue::ack`] once delivered.
    pub cursor: Cursor,
}

/// What a queue has done and survived since it was opened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// Records appended.
    pub appended: u64,
    /// Records acknowledged.
    pub acked: u64,
    /// Appends refused because the queue was at `max_buffer_size`.
    pub full: u64,
    /// Bytes cut from the end of the last segment at open (a torn tail).
    pub torn_tail_bytes_cut: u64,
    /// Damaged regions skipped while reading; each holds at least one damaged record (adjacent
    /// damaged records form one region).
    pub corrupt_records_skipped: u64,
    /// Bytes in those regions.
    pub corrupt_bytes_skipped: u64,
    /// Times the checkpoint could not be used as stored (reset, moved to the next segment, or
    /// clamped to the end of its segment).
    pub checkpoint_resets: u64,
}

/// The read side: which segment, how far.
#[derive(Debug)]
struct Reader {
    segment: u64,
    /// Where the scanner starts when it is (re)opened.
    offset: u64,
    scanner: Option<SegmentScanner<File>>,
    /// Cursor of the last record read (where reading started, before any).
    last: Cursor,
}

/// A disk queue: append on one side, read and acknowledge on the other, in one owner.
///
/// See the [module docs](self) for the layout, the recovery rules and what survives a crash.
#[derive(Debug)]
pub struct DiskQueue {
    dir: PathBuf,
    options: QueueOptions,
    /// Holds the exclusive flock on the directory.
    _lock: File,
    /// Segments before the one being written: id → length.
    sealed: BTreeMap<u64, u64>,
    sealed_bytes: u64,
    writer: SegmentWriter,
    reader: Reader,
    /// The last acknowledged position.
    acked: Cursor,
    /// What `checkpoint.txt` holds.
    checkpoint: Cursor,
    acks_since_checkpoint: u32,
    /// Freeing space on a full file system: segments are deleted at once.
    freeing: bool,
    /// When the checkpoint was last written.
    checkpoint_written: Instant,
    /// Cursors of records read but not yet acknowledged, oldest first.
    in_flight: VecDeque<Cursor>,
    pending_records: u64,
    /// Records appended since the last successful flush.
    unwritten_records: u64,
    stats: QueueStats,
    warnings: Vec<QueueError>,
    closed: bool,
}

impl DiskQueue {
    /// Opens (creating if needed) the queue in `dir`: cuts the last segment's torn tail, resolves
    /// the checkpoint, counts the pending records, and positions the reader at the checkpoint.
    ///
    /// Fails when the directory cannot be created or written, another process has it open, the
    /// options are inconsistent, or a file cannot be read. Damage does not fail it: see
    /// [`take_warnings`](Self::take_warnings).
    pub fn open(dir: impl Into<PathBuf>, options: QueueOptions) -> Result<Self, QueueError> {
        let dir = dir.into();
        let options = options.resolved(&dir)?;
        let durable = options.fsync != FsyncPolicy::Never;
        fs::create_dir_all(&dir).map_err(|source| QueueError::CreateDir {
            path: dir.clone(),
            source,
        })?;
        let lock = lock_dir(&dir)?;
        probe_writable(&dir)?;
        let mut segments =
            segment::list(&dir).map_err(|e| QueueError::io("read queue directory", &dir, e))?;
        let mut stats = QueueStats::default();
        let mut warnings = Vec::new();

        let stored = checkpoint::read(&dir);
        let (start, problem) = resolve_checkpoint(&stored, &segments);
        if let Some(problem) = &problem {
            stats.checkpoint_resets += 1;
            warnings.push(problem.to_error(&dir, start));
        }

        // Count what is pending, and cut the last segment back to its last whole record.
        let last = segments.keys().next_back().copied();
        let mut pending_records = 0;
        let mut append_to_last = true;
        for (&id, len) in segments.range_mut(start.segment..) {
            let from = if id == start.segment { start.offset } else { 0 };
            let summary = recovery::summarize(&dir, id, from, from, options.max_message_size)?;
            pending_records += summary.records;
            if Some(id) != last {
                continue;
            }
            append_to_last = summary.checksums == Checksums::Required;
            if let Some(tail) = summary.torn_tail() {
                cut_tail(&summary.path, tail.offset, durable)?;
                *len = tail.offset;
                stats.torn_tail_bytes_cut += tail.len;
                warnings.push(QueueError::TornTailCut {
                    path: summary.path.clone(),
                    offset: tail.offset,
                    len: tail.len,
                    damage: tail.damage,
                });
            }
        }

        let (fsync, max) = (options.fsync, options.max_message_size);
        let writer = match last {
            Some(id) if append_to_last => {
                let len = segments.remove(&id).unwrap_or(0);
                SegmentWriter::open(&dir, id, len, fsync, max)?
            }
            // Never append to a segment Heka wrote (no checksums): start the next one.
            Some(id) => SegmentWriter::create(&dir, id + 1, fsync, max)?,
            None => SegmentWriter::create(&dir, 0, fsync, max)?,
        };

        let mut queue = DiskQueue {
            sealed_bytes: segments.values().sum(),
            sealed: segments,
            writer,
            reader: Reader {
                segment: start.segment,
                offset: start.offset,
                scanner: None,
                last: start,
            },
            acked: start,
            checkpoint: start,
            acks_since_checkpoint: 0,
            freeing: false,
            checkpoint_written: Instant::now(),
            in_flight: VecDeque::new(),
            pending_records,
            unwritten_records: 0,
            stats,
            warnings,
            closed: false,
            _lock: lock,
            dir,
            options,
        };
        // Replace a bad checkpoint now, so the reset is not repeated, and drop segments a
        // previous run acknowledged but did not delete.
        if problem.is_some() || queue.sealed.range(..start.segment).next().is_some() {
            queue.write_checkpoint()?;
        }
        Ok(queue)
    }

    /// Appends one message (at most `max_message_size` bytes) as a checksummed record.
    ///
    /// Returns [`Appended::Full`] without writing when the record would take the queue past
    /// `max_buffer_size`. The record is buffered; buffered records are written to the kernel when
    /// they pass 64 KiB, on [`flush`](Self::flush), and before reading reaches them. Starts a new
    /// segment first when the record would take the current one past `max_file_size`. An error
    /// means this message was not queued.
    pub fn append(&mut self, message: &[u8]) -> Result<Appended, QueueError> {
        let max = self.options.max_message_size;
        if message.len() > max as usize {
            return Err(QueueError::MessageTooLarge {
                path: self.dir.clone(),
                len: message.len(),
                max,
            });
        }
        let len = checksummed_record_len(message.len()) as u64;
        let limit = self.options.max_buffer_size;
        if limit > 0 && self.len_bytes() + len > limit {
            self.reclaim()?;
            if self.len_bytes() + len > limit {
                self.stats.full += 1;
                return Ok(Appended::Full);
            }
        }
        if self.writer.len() > 0 && self.writer.len() + len > self.options.max_file_size {
            self.roll()?;
        }
        if self.writer.buffered() + len as usize > FLUSH_THRESHOLD {
            self.flush()?;
        }
        self.writer.push(message)?;
        self.stats.appended += 1;
        self.pending_records += 1;
        self.unwritten_records += 1;
        Ok(Appended::Queued)
    }

    /// Writes buffered records to the kernel (one write(2)): after this they survive the
    /// process being killed. With [`FsyncPolicy::Always`] they are also fdatasynced.
    ///
    /// When the file system is full, it frees what acknowledged records hold first (segments
    /// the checkpoint has passed, and the current segment once everything written to it is
    /// acknowledged: its buffered records move to a new segment) and tries once more; the
    /// records stay buffered (at most 64 KiB) if that is not enough.
    pub fn flush(&mut self) -> Result<(), QueueError> {
        let flushed = match self.writer.flush() {
            Err(e) if e.is_storage_full() && self.free_space() => self.writer.flush(),
            other => other,
        };
        if flushed.is_ok() {
            self.unwritten_records = 0;
        }
        flushed
    }

    /// Records appended but not yet handed to the kernel: what is lost if the queue is closed
    /// while the file system is full.
    pub fn unwritten_records(&self) -> u64 {
        self.unwritten_records
    }

    /// Frees the space acknowledged records hold (the file system is full); whether anything
    /// was freed.
    fn free_space(&mut self) -> bool {
        let before = self.sealed_bytes + self.writer.written();
        let written_end = Cursor::new(self.writer.id(), self.writer.written());
        if self.acked == written_end && self.writer.written() > 0 {
            // Everything this segment holds on disk is acknowledged: seal it as it is and move
            // what is buffered to a new one, so that it can go.
            let records = self.writer.take_buffered();
            let rolled = self.writer.sync_data().and_then(|()| {
                SegmentWriter::create(
                    &self.dir,
                    self.writer.id() + 1,
                    self.options.fsync,
                    self.options.max_message_size,
                )
            });
            match rolled {
                Ok(mut next) => {
                    next.put_buffered(records);
                    let sealed = std::mem::replace(&mut self.writer, next);
                    self.sealed.insert(sealed.id(), sealed.written());
                    self.sealed_bytes += sealed.written();
                }
                Err(_) => self.writer.put_buffered(records),
            }
        }
        self.freeing = true;
        let written = self.write_checkpoint();
        self.freeing = false;
        if written.is_err() {
            return false;
        }
        self.sealed_bytes + self.writer.written() < before
    }

    /// Flushes and fdatasyncs the current segment (unless the policy is
    /// [`FsyncPolicy::Never`]): after this the records survive a power loss.
    pub fn sync(&mut self) -> Result<(), QueueError> {
        self.flush()?;
        self.writer.sync()
    }

    /// The next record after the last one read, or `None` when everything appended so far has
    /// been read (append more and call again). Damaged regions on the way are skipped, counted
    /// and reported in [`take_warnings`](Self::take_warnings).
    // Not an Iterator: the record borrows the queue's buffer until the next call.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<Record<'_>>, QueueError> {
        loop {
            let segment = self.reader.segment;
            let writing = segment == self.writer.id();
            if writing && self.writer.buffered() > 0 {
                self.writer.flush()?;
            }
            if writing {
                // Records this process wrote while the reader followed come from memory.
                let offset = self
                    .reader
                    .scanner
                    .as_ref()
                    .map_or(self.reader.offset, SegmentScanner::position);
                if let Some((range, end)) = self.writer.take_tail_record(offset) {
                    self.reader.scanner = None;
                    self.reader.offset = end;
                    let cursor = Cursor::new(segment, end);
                    self.reader.last = cursor;
                    self.in_flight.push_back(cursor);
                    return Ok(Some(Record {
                        message: self.writer.tail_message(range),
                        cursor,
                    }));
                }
            }
            if self.reader.scanner.is_none() {
                self.reader.scanner = Some(self.open_scanner(segment, self.reader.offset)?);
            }
            let scanner = self.reader.scanner.as_mut().expect("opened above");
            let scanned = scanner
                .next()
                .map_err(|e| QueueError::io("read segment", segment_path(&self.dir, segment), e))?;
            match scanned {
                Scanned::Record(span) => {
                    let cursor = Cursor::new(segment, span.end());
                    self.reader.last = cursor;
                    self.in_flight.push_back(cursor);
                    let scanner = self.reader.scanner.as_ref().expect("opened above");
                    return Ok(Some(Record {
                        message: scanner.message(&span),
                        cursor,
                    }));
                }
                Scanned::Corrupt(c) => {
                    self.stats.corrupt_records_skipped += 1;
                    self.stats.corrupt_bytes_skipped += c.len;
                    self.warn(QueueError::CorruptRegion {
                        path: segment_path(&self.dir, segment),
                        offset: c.offset,
                        len: c.len,
                        damage: c.damage,
                    });
                }
                Scanned::End if writing => {
                    let at = scanner.position();
                    self.writer.follow(at);
                    return Ok(None);
                }
                Scanned::End => {
                    // A sealed segment is read to its end: on to the next one that exists.
                    self.reader.segment = self.segment_after(segment);
                    self.reader.offset = 0;
                    self.reader.scanner = None;
                }
            }
        }
    }

    /// Acknowledges every record up to `cursor` (a cursor [`next`](Self::next) returned):
    /// they will not be replayed. The checkpoint is written every `cursor_update_count`
    /// acknowledgements; segments wholly before it are then deleted. A cursor at or before the
    /// last acknowledged one is ignored; one past the last record read is an error.
    pub fn ack(&mut self, cursor: Cursor) -> Result<(), QueueError> {
        if cursor <= self.acked {
            return Ok(());
        }
        if cursor > self.reader.last {
            return Err(QueueError::AckAhead {
                path: self.dir.clone(),
                cursor,
                read: self.reader.last,
            });
        }
        let mut acked = 0;
        while self.in_flight.front().is_some_and(|c| *c <= cursor) {
            self.in_flight.pop_front();
            acked += 1;
        }
        self.stats.acked += acked;
        self.pending_records = self.pending_records.saturating_sub(acked);
        self.acked = cursor;
        self.acks_since_checkpoint = self.acks_since_checkpoint.saturating_add(1);
        self.checkpoint_if_due()?;
        Ok(())
    }

    /// Writes the checkpoint if `cursor_update_count` acknowledgements have moved it and
    /// `checkpoint_interval` has passed since it was last written; whether it wrote it. Call it
    /// now and then (buffered outputs do every second), so that the acknowledgements of a quiet
    /// spell reach the disk.
    pub fn checkpoint_if_due(&mut self) -> Result<bool, QueueError> {
        if self.acked == self.checkpoint
            || self.acks_since_checkpoint < self.options.cursor_update_count
            || self.checkpoint_written.elapsed() < self.options.checkpoint_interval
        {
            return Ok(false);
        }
        self.write_checkpoint()?;
        Ok(true)
    }

    /// Flushes and syncs the segment and writes the checkpoint if it moved. Dropping the queue
    /// does the same, ignoring errors.
    pub fn close(mut self) -> Result<(), QueueError> {
        self.closed = true;
        self.shut()
    }

    /// The queue directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The options in force (zeros replaced by defaults).
    pub fn options(&self) -> &QueueOptions {
        &self.options
    }

    /// Bytes the queue takes on disk (every segment, buffered records included): what
    /// `max_buffer_size` limits.
    pub fn len_bytes(&self) -> u64 {
        self.sealed_bytes + self.writer.len()
    }

    /// Records appended (or found at open) and not yet acknowledged.
    pub fn pending_records(&self) -> u64 {
        self.pending_records
    }

    /// Number of segment files.
    pub fn segments(&self) -> usize {
        self.sealed.len() + 1
    }

    /// What `checkpoint.txt` holds (or where reading started, before any was written).
    pub fn checkpoint(&self) -> Cursor {
        self.checkpoint
    }

    /// The counters since open.
    pub fn stats(&self) -> QueueStats {
        self.stats
    }

    /// The recoveries since the last call (a torn tail cut, a checkpoint reset, a damaged region
    /// skipped), each an error value with one sentence naming the file, for the caller to log.
    /// At most 100 are kept between calls; [`stats`](Self::stats) counts all.
    pub fn take_warnings(&mut self) -> Vec<QueueError> {
        std::mem::take(&mut self.warnings)
    }

    fn warn(&mut self, warning: QueueError) {
        if self.warnings.len() < MAX_WARNINGS {
            self.warnings.push(warning);
        }
    }

    /// The length of segment `id`, if it exists.
    fn segment_len(&self, id: u64) -> Option<u64> {
        if id == self.writer.id() {
            Some(self.writer.len())
        } else {
            self.sealed.get(&id).copied()
        }
    }

    /// The first segment after `id` (the one being written, if none before it).
    fn segment_after(&self, id: u64) -> u64 {
        self.sealed
            .range(id + 1..)
            .next()
            .map_or(self.writer.id(), |(&next, _)| next)
    }

    fn open_scanner(&self, segment: u64, offset: u64) -> Result<SegmentScanner<File>, QueueError> {
        let path = segment_path(&self.dir, segment);
        let read = |e| QueueError::io("read segment", &path, e);
        let mut file = File::open(&path).map_err(read)?;
        let checksums =
            Checksums::detect_file(&file, self.options.max_message_size).map_err(read)?;
        file.seek(io::SeekFrom::Start(offset)).map_err(read)?;
        Ok(SegmentScanner::new(
            file,
            offset,
            checksums,
            self.options.max_message_size,
        ))
    }

    /// Seals the current segment and starts the next. The sealed segment is fdatasynced (unless
    /// the policy is [`FsyncPolicy::Never`]) by a thread of its own, so that the shard does not
    /// wait for up to `max_file_size` of dirty pages to reach the disk; a failure is logged.
    fn roll(&mut self) -> Result<(), QueueError> {
        self.writer.flush()?;
        let next = SegmentWriter::create(
            &self.dir,
            self.writer.id() + 1,
            self.options.fsync,
            self.options.max_message_size,
        )?;
        let sealed = std::mem::replace(&mut self.writer, next);
        self.sealed.insert(sealed.id(), sealed.len());
        self.sealed_bytes += sealed.len();
        if self.options.fsync != FsyncPolicy::Never {
            let path = segment_path(&self.dir, sealed.id());
            let file = sealed.into_file();
            in_background(move || {
                if let Err(e) = file.sync_data() {
                    tracing::error!(
                        "Disk queue: syncing the sealed segment {}: {e}",
                        path.display()
                    );
                }
            });
        }
        Ok(())
    }

    /// Frees what acknowledged records hold, when the queue is full: segments the lagging
    /// checkpoint still keeps, and the current segment itself once everything in it is
    /// acknowledged (it is sealed and a new one started, so it can go).
    fn reclaim(&mut self) -> Result<(), QueueError> {
        let everything_acked = self.acked == Cursor::new(self.writer.id(), self.writer.len());
        if everything_acked && self.writer.len() > 0 {
            self.roll()?;
        }
        if self.acked != self.checkpoint || everything_acked {
            self.write_checkpoint()?;
        }
        Ok(())
    }

    /// Writes the acknowledged position as the checkpoint — moved to the start of the next
    /// segment when it is the end of a sealed one — and deletes the segments before it.
    fn write_checkpoint(&mut self) -> Result<(), QueueError> {
        self.write_checkpoint_durably(self.options.fsync == FsyncPolicy::Always)
    }

    /// Writes the checkpoint; `durable`: fsynced with its directory (see the module docs).
    fn write_checkpoint_durably(&mut self, durable: bool) -> Result<(), QueueError> {
        let mut cp = self.acked;
        while cp.segment != self.writer.id()
            && self
                .segment_len(cp.segment)
                .is_none_or(|len| cp.offset >= len)
        {
            cp = Cursor::new(self.segment_after(cp.segment), 0);
        }
        let written = checkpoint::write(&self.dir, cp, durable)
            .map_err(|(path, e)| QueueError::io("write checkpoint", path, e));
        match written {
            Err(e) if e.is_storage_full() => {
                // No room for the new checkpoint: delete the segments it passes first (a crash
                // before it is written leaves the old one naming a missing segment, which
                // reading takes as the next one that is there), then write it.
                self.delete_before(cp.segment, true)?;
                checkpoint::write(&self.dir, cp, durable)
                    .map_err(|(path, e)| QueueError::io("write checkpoint", path, e))?;
            }
            other => other?,
        }
        self.checkpoint = cp;
        self.acked = cp;
        self.acks_since_checkpoint = 0;
        self.checkpoint_written = Instant::now();
        if self.reader.segment < cp.segment {
            // Only at open, when the checkpoint skipped empty segments the reader starts in.
            self.reader = Reader {
                segment: cp.segment,
                offset: cp.offset,
                scanner: None,
                last: cp,
            };
        }
        self.delete_before(cp.segment, self.freeing)
    }

    /// Deletes the sealed segments before `segment`.
    /// `now`: the space must be free when this returns (the file system is full). Otherwise a
    /// segment's name is removed here and its file released by a thread of its own: the
    /// kernel frees a 512 MiB file's pages when its last descriptor closes, which would hold
    /// the shard for tens of milliseconds.
    fn delete_before(&mut self, segment: u64, now: bool) -> Result<(), QueueError> {
        let done: Vec<(u64, u64)> = self
            .sealed
            .range(..segment)
            .map(|(&id, &len)| (id, len))
            .collect();
        for (id, len) in done {
            let path = segment_path(&self.dir, id);
            let held = if now { None } else { File::open(&path).ok() };
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(QueueError::io("delete segment", path, e)),
            }
            if let Some(file) = held {
                in_background(move || drop(file));
            }
            self.sealed.remove(&id);
            self.sealed_bytes -= len;
        }
        Ok(())
    }

    fn shut(&mut self) -> Result<(), QueueError> {
        self.sync()?;
        if self.acked != self.checkpoint || self.options.fsync == FsyncPolicy::OnSync {
            self.write_checkpoint_durably(self.options.fsync != FsyncPolicy::Never)?;
        }
        Ok(())
    }
}

impl Drop for DiskQueue {
    fn drop(&mut self) {
        if !self.closed {
            let _ = self.shut();
        }
    }
}

/// Runs `job` (slow file work the queue's owner need not wait for) on a thread of its own; on
/// this thread if none can be started.
fn in_background(job: impl FnOnce() + Send + 'static) {
    let job = std::sync::Mutex::new(Some(job));
    let job = std::sync::Arc::new(job);
    let theirs = std::sync::Arc::clone(&job);
    let started = std::thread::Builder::new()
        .name("hekate-queue-io".into())
        .spawn(move || {
            if let Some(job) = theirs.lock().ok().and_then(|mut j| j.take()) {
                job();
            }
        });
    if started.is_err()
        && let Some(job) = job.lock().ok().and_then(|mut j| j.take())
    {
        job();
    }
}

/// Takes an exclusive, non-blocking flock on the directory: one queue per directory at a time.
fn lock_dir(dir: &Path) -> Result<File, QueueError> {
    let file = File::open(dir).map_err(|e| QueueError::io("open queue directory", dir, e))?;
    // SAFETY: flock only reads the descriptor number, which `file` owns for the call's duration.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::WouldBlock {
            return Err(QueueError::Locked {
                path: dir.to_path_buf(),
            });
        }
        return Err(QueueError::io("lock queue directory", dir, e));
    }
    Ok(file)
}

/// Fails clearly at open, rather than at the first append, when files cannot be created in `dir`.
fn probe_writable(dir: &Path) -> Result<(), QueueError> {
    let probe = dir.join(".hekate-write-probe");
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&probe)
        .and_then(|_| fs::remove_file(&probe))
        .map_err(|source| QueueError::NotWritable {
            path: dir.to_path_buf(),
            source,
        })
}

/// Truncates a segment to `len` bytes (its last whole record).
fn cut_tail(path: &Path, len: u64, durable: bool) -> Result<(), QueueError> {
    let cut = |e| QueueError::io("cut the torn tail of", path, e);
    let file = OpenOptions::new().write(true).open(path).map_err(cut)?;
    file.set_len(len).map_err(cut)?;
    if durable {
        file.sync_all().map_err(cut)?;
    }
    Ok(())
}
