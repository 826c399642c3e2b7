//! The append side: the segment being written, and the records not yet handed to the kernel.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::ops::Range;
use std::path::{Path, PathBuf};

use hekate_model::framing::encode_checksummed_record;

use super::checkpoint::sync_dir;
use super::segment::segment_path;
use super::{FsyncPolicy, QueueError};

/// Buffered bytes past which `append` writes them out without waiting for `flush`.
pub(crate) const FLUSH_THRESHOLD: usize = 64 * 1024;
/// The most the [`Tail`] keeps of what was written and not yet read.
const TAIL_MAX: usize = 8 << 20;

/// Where one record's message lies in a buffer of encoded records, and where the record ends.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RecordSpan {
    message_start: u32,
    message_len: u32,
    end: u32,
}

impl RecordSpan {
    fn shifted(self, by: u32) -> Self {
        RecordSpan {
            message_start: self.message_start + by,
            message_len: self.message_len,
            end: self.end + by,
        }
    }
}

/// Records buffered and not yet written, moved to another segment as a whole.
#[derive(Debug, Default)]
pub(crate) struct Buffered {
    bytes: Vec<u8>,
    spans: Vec<RecordSpan>,
}

/// The records most recently written to the segment, kept in memory while the reader follows
/// the writer closely, so that it takes them from here: no read(2) and no second checksum for
/// what this process wrote a moment ago. Off until the reader has caught up with the writer
/// ([`SegmentWriter::follow`]); dropped when the reader falls more than [`TAIL_MAX`] behind.
#[derive(Debug, Default)]
struct Tail {
    on: bool,
    /// Segment offset of `bytes[0]`; `start + bytes.len()` is what the file holds.
    start: u64,
    bytes: Vec<u8>,
    spans: Vec<RecordSpan>,
    /// The next record to hand out.
    next: usize,
}

impl Tail {
    /// Segment offset of the next record to hand out.
    fn next_offset(&self) -> u64 {
        self.start
            + match self.next {
                0 => 0,
                n => u64::from(self.spans[n - 1].end),
            }
    }

    fn consumed(&self) -> bool {
        self.next == self.spans.len()
    }

    fn off(&mut self) {
        *self = Tail::default();
    }
}

/// The segment records are appended to.
#[derive(Debug)]
pub(crate) struct SegmentWriter {
    id: u64,
    path: PathBuf,
    file: File,
    /// Bytes in the file: handed to the kernel with write(2).
    written: u64,
    /// Encoded records not written yet.
    buf: Buffered,
    tail: Tail,
    fsync: FsyncPolicy,
    max_message_size: u32,
}

impl SegmentWriter {
    /// Appends to the existing segment `id` of `len` bytes (its torn tail already cut).
    pub fn open(
        dir: &Path,
        id: u64,
        len: u64,
        fsync: FsyncPolicy,
        max_message_size: u32,
    ) -> Result<Self, QueueError> {
        let path = segment_path(dir, id);
        let file = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(|e| QueueError::io("open segment", &path, e))?;
        Ok(SegmentWriter {
            id,
            path,
            file,
            written: len,
            buf: Buffered {
                bytes: Vec::with_capacity(FLUSH_THRESHOLD),
                spans: Vec::new(),
            },
            tail: Tail::default(),
            fsync,
            max_message_size,
        })
    }

    /// Creates the empty segment `id` (failing if it exists) and, unless the policy is
    /// [`FsyncPolicy::Never`], makes its directory entry durable.
    pub fn create(
        dir: &Path,
        id: u64,
        fsync: FsyncPolicy,
        max_message_size: u32,
    ) -> Result<Self, QueueError> {
        let path = segment_path(dir, id);
        let file = OpenOptions::new()
            .append(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| QueueError::io("create segment", &path, e))?;
        if fsync != FsyncPolicy::Never {
            sync_dir(dir).map_err(|e| QueueError::io("sync queue directory", dir, e))?;
        }
        Ok(SegmentWriter {
            id,
            path,
            file,
            written: 0,
            buf: Buffered {
                bytes: Vec::with_capacity(FLUSH_THRESHOLD),
                spans: Vec::new(),
            },
            tail: Tail::default(),
            fsync,
            max_message_size,
        })
    }

    /// The segment's id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The segment's length, buffered records included.
    pub fn len(&self) -> u64 {
        self.written + self.buf.bytes.len() as u64
    }

    /// Bytes buffered, not yet written.
    pub fn buffered(&self) -> usize {
        self.buf.bytes.len()
    }

    /// Bytes written to the file.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// The segment's file, for a last fdatasync (everything buffered must have been flushed).
    pub fn into_file(self) -> File {
        debug_assert!(self.buf.bytes.is_empty());
        self.file
    }

    /// Hands the buffered records over (to the next segment, when this one cannot grow).
    pub fn take_buffered(&mut self) -> Buffered {
        std::mem::take(&mut self.buf)
    }

    /// Takes records another segment had buffered, ahead of anything buffered here.
    pub fn put_buffered(&mut self, mut records: Buffered) {
        let by = records.bytes.len() as u32;
        records.bytes.extend_from_slice(&self.buf.bytes);
        records
            .spans
            .extend(self.buf.spans.iter().map(|s| s.shifted(by)));
        self.buf = records;
    }

    /// Encodes one record into the buffer; returns its length.
    pub fn push(&mut self, message: &[u8]) -> Result<u64, QueueError> {
        let bytes = &mut self.buf.bytes;
        let before = bytes.len();
        encode_checksummed_record(message, self.max_message_size, bytes).map_err(|_| {
            QueueError::MessageTooLarge {
                path: self.path.parent().unwrap_or(&self.path).to_path_buf(),
                len: message.len(),
                max: self.max_message_size,
            }
        })?;
        // The message is the record's last bytes; the buffer stays below 4 GiB (it is written
        // out past 64 KiB, and a record is at most max_message_size plus its header).
        let end = bytes.len();
        self.buf.spans.push(RecordSpan {
            message_start: (end - message.len()) as u32,
            message_len: message.len() as u32,
            end: end as u32,
        });
        Ok((end - before) as u64)
    }

    /// The reader has read everything up to `offset` from the file, which is all the file holds:
    /// from now on the records written after it are kept in the tail for it.
    pub fn follow(&mut self, offset: u64) {
        if offset != self.written {
            return;
        }
        if !(self.tail.on && self.tail.next_offset() == offset) {
            self.tail.off();
            self.tail.on = true;
            self.tail.start = offset;
        }
    }

    /// The next record from the tail if the reader is at `offset` and the tail holds it: where
    /// its message lies ([`tail_message`](Self::tail_message)), and the segment offset just past
    /// the record.
    pub fn take_tail_record(&mut self, offset: u64) -> Option<(Range<usize>, u64)> {
        let tail = &mut self.tail;
        if !tail.on || tail.consumed() || tail.next_offset() != offset {
            return None;
        }
        let span = tail.spans[tail.next];
        tail.next += 1;
        let start = span.message_start as usize;
        Some((
            start..start + span.message_len as usize,
            tail.start + u64::from(span.end),
        ))
    }

    /// A message [`take_tail_record`](Self::take_tail_record) handed out.
    pub fn tail_message(&self, range: Range<usize>) -> &[u8] {
        &self.tail.bytes[range]
    }

    /// What was just written goes to the tail, if it is on.
    fn keep_written(&mut self) {
        let tail = &mut self.tail;
        if tail.on && tail.consumed() {
            // Everything kept was read: the written buffer becomes the tail, no copy.
            tail.start += tail.bytes.len() as u64;
            tail.bytes.clear();
            tail.spans.clear();
            tail.next = 0;
            std::mem::swap(&mut tail.bytes, &mut self.buf.bytes);
            std::mem::swap(&mut tail.spans, &mut self.buf.spans);
        } else if tail.on && tail.bytes.len() + self.buf.bytes.len() <= TAIL_MAX {
            let by = tail.bytes.len() as u32;
            tail.bytes.extend_from_slice(&self.buf.bytes);
            tail.spans
                .extend(self.buf.spans.iter().map(|s| s.shifted(by)));
        } else {
            // The reader is far behind: it reads from the file until it catches up again.
            tail.off();
        }
        self.buf.bytes.clear();
        self.buf.spans.clear();
    }

    /// Writes the buffered records to the file (one write(2) for all of them); with
    /// [`FsyncPolicy::Always`], fdatasyncs too. On failure the file is cut back to its last whole
    /// record and the records stay buffered, so a later flush can retry.
    pub fn flush(&mut self) -> Result<(), QueueError> {
        if !self.buf.bytes.is_empty() {
            if let Err(e) = self.file.write_all(&self.buf.bytes) {
                // A partial write would leave half a record: take it back.
                let _ = self.file.set_len(self.written);
                return Err(QueueError::io("write segment", &self.path, e));
            }
            self.written += self.buf.bytes.len() as u64;
            self.keep_written();
            if self.fsync == FsyncPolicy::Always {
                self.sync_data()?;
            }
        }
        Ok(())
    }

    /// Flushes, then fdatasyncs the segment unless the policy is [`FsyncPolicy::Never`].
    pub fn sync(&mut self) -> Result<(), QueueError> {
        self.flush()?;
        if self.fsync != FsyncPolicy::Never {
            self.sync_data()?;
        }
        Ok(())
    }

    pub(crate) fn sync_data(&self) -> Result<(), QueueError> {
        self.file
            .sync_data()
            .map_err(|e| QueueError::io("sync segment", &self.path, e))
    }
}
