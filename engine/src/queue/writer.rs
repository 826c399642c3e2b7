//! The append side: the segment being written, and the records not yet handed to the kernel.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use hekate_model::framing::encode_checksummed_record;

use super::checkpoint::sync_dir;
use super::segment::segment_path;
use super::{FsyncPolicy, QueueError};

/// Buffered bytes past which `append` writes them out without waiting for `flush`.
pub(crate) const FLUSH_THRESHOLD: usize = 64 * 1024;

/// The segment records are appended to.
#[derive(Debug)]
pub(crate) struct SegmentWriter {
    id: u64,
    path: PathBuf,
    file: File,
    /// Bytes in the file: handed to the kernel with write(2).
    written: u64,
    /// Encoded records not written yet.
    buf: Vec<u8>,
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
            buf: Vec::with_capacity(FLUSH_THRESHOLD),
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
            buf: Vec::with_capacity(FLUSH_THRESHOLD),
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
        self.written + self.buf.len() as u64
    }

    /// Bytes buffered, not yet written.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Bytes written to the file.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Hands the buffered records over (to the next segment, when this one cannot grow).
    pub fn take_buffered(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.buf)
    }

    /// Takes records another segment had buffered, ahead of anything buffered here.
    pub fn put_buffered(&mut self, mut records: Vec<u8>) {
        records.extend_from_slice(&self.buf);
        self.buf = records;
    }

    /// Encodes one record into the buffer; returns its length.
    pub fn push(&mut self, message: &[u8]) -> Result<u64, QueueError> {
        let before = self.buf.len();
        encode_checksummed_record(message, self.max_message_size, &mut self.buf).map_err(|_| {
            QueueError::MessageTooLarge {
                path: self.path.parent().unwrap_or(&self.path).to_path_buf(),
                len: message.len(),
                max: self.max_message_size,
            }
        })?;
        Ok((self.buf.len() - before) as u64)
    }

    /// Writes the buffered records to the file (one write(2) for all of them); with
    /// [`FsyncPolicy::Always`], fdatasyncs too. On failure the file is cut back to its last whole
    /// record and the records stay buffered, so a later flush can retry.
    pub fn flush(&mut self) -> Result<(), QueueError> {
        if !self.buf.is_empty() {
            if let Err(e) = self.file.write_all(&self.buf) {
                // A partial write would leave half a record: take it back.
                let _ = self.file.set_len(self.written);
                return Err(QueueError::io("write segment", &self.path, e));
            }
            self.written += self.buf.len() as u64;
            self.buf.clear();
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
