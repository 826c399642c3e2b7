//! Segment files: their names, and the scanner that reads records out of one and says exactly
//! which bytes are damaged.
//!
//! A segment is `<id>.log`, a concatenation of Heka-framed unsigned records. Records hekate writes
//! carry a checksum ([`CHECKSUM_FIELD`](hekate_model::framing::CHECKSUM_FIELD)); a record is
//! accepted only when its framing is valid **and** its checksum matches. Anything else — a torn
//! write, a flipped bit, bytes from elsewhere — is a damaged byte: the scanner skips it and looks
//! for the next record separator that starts a valid record, so one bad record costs only its own
//! bytes. Consecutive damaged bytes are reported once, as one [`Corruption`].
//!
//! A segment Heka wrote has no checksums. The first record of a segment decides: if it is a valid
//! record without a checksum, the segment is read with [`Checksums::Optional`] (framing checks
//! only, as Heka does); otherwise every record must carry a matching checksum
//! ([`Checksums::Required`]). hekate never appends to a Heka segment.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read};
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use hekate_model::framing::{
    FrameStatus, RECORD_SEPARATOR, RegionCause, frame_at, max_record_size,
};

/// Bytes read from a segment at a time.
const READ_SIZE: usize = 256 * 1024;

/// The path of segment `id` in the queue directory `dir`: `<dir>/<id>.log`.
pub fn segment_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id}.log"))
}

/// The segment id of a file name, if it is one (`<unsigned decimal>.log`).
pub(crate) fn segment_id(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".log")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The segments in `dir`, by id, with their lengths. Other files are ignored.
pub(crate) fn list(dir: &Path) -> io::Result<BTreeMap<u64, u64>> {
    let mut segments = BTreeMap::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let Some(id) = entry.file_name().to_str().and_then(segment_id) else {
            continue;
        };
        let meta = entry.metadata()?;
        if meta.is_file() {
            segments.insert(id, meta.len());
        }
    }
    Ok(segments)
}

/// Whether the records of a segment must carry a checksum.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Checksums {
    /// Every record must carry a checksum that matches (segments hekate writes).
    Required,
    /// Records without a checksum are accepted on their framing alone; records with one must
    /// match (segments Heka wrote).
    Optional,
}

impl Checksums {
    /// Decides from the first bytes of a segment: [`Optional`](Self::Optional) when they are a
    /// valid record without a checksum, [`Required`](Self::Required) otherwise.
    pub fn detect(head: &[u8], max_message_size: u32) -> Self {
        match frame_at(head, max_message_size) {
            FrameStatus::Complete(frame) if frame.checksum.is_none() => Checksums::Optional,
            _ => Checksums::Required,
        }
    }

    /// [`detect`](Self::detect) on the first record of `file` (read without moving its cursor).
    pub fn detect_file(file: &File, max_message_size: u32) -> io::Result<Self> {
        let mut head = vec![0; max_record_size(max_message_size)];
        let mut filled = 0;
        while filled < head.len() {
            match file.read_at(&mut head[filled..], filled as u64) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(Self::detect(&head[..filled], max_message_size))
    }
}

/// What the first bytes of a damaged region were.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Damage {
    /// Bytes where a record separator should be.
    NoSeparator,
    /// A record separator whose framing is broken (header length 0, no unit separator, a header
    /// that is not protobuf, a length over `max_message_size`).
    Frame(RegionCause),
    /// A well-framed record whose message does not match its checksum.
    ChecksumMismatch,
    /// A well-framed record without a checksum in a segment whose records carry one.
    MissingChecksum,
    /// A record cut short by the end of the segment.
    Truncated,
}

impl fmt::Display for Damage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Damage::NoSeparator => f.write_str("no record separator"),
            Damage::Frame(cause) => cause.fmt(f),
            Damage::ChecksumMismatch => f.write_str("checksum mismatch"),
            Damage::MissingChecksum => f.write_str("record without a checksum"),
            Damage::Truncated => f.write_str("record cut short"),
        }
    }
}

/// A run of damaged bytes in a segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Corruption {
    /// Offset of the first damaged byte.
    pub offset: u64,
    /// Number of damaged bytes.
    pub len: u64,
    /// What the first damaged bytes were.
    pub damage: Damage,
    /// True when the run reaches the end of the data read so far (no valid record after it): in
    /// the last segment, a torn tail.
    pub at_end: bool,
}

impl Corruption {
    /// Offset just past the damaged bytes.
    pub fn end(&self) -> u64 {
        self.offset + self.len
    }
}

/// One valid record found by [`SegmentScanner::next`]; its bytes are
/// [`SegmentScanner::message`] and [`SegmentScanner::framed`], until the next call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Span {
    /// Offset of the record's separator in the segment.
    pub offset: u64,
    /// Length of the framed record.
    pub len: u64,
    /// Whether the record carried a checksum (it matched).
    pub checksummed: bool,
    framed: Range<usize>,
    message_start: usize,
}

impl Span {
    /// Offset just past the record: its cursor.
    pub fn end(&self) -> u64 {
        self.offset + self.len
    }
}

/// What [`SegmentScanner::next`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scanned {
    /// A valid record.
    Record(Span),
    /// Damaged bytes, ended by the record the next call returns, or by the end of the data.
    Corrupt(Corruption),
    /// Nothing more for now. For the segment being written, a later call may find records
    /// appended since.
    End,
}

/// Reads the records of one segment from any reader, in order, skipping and reporting damage.
///
/// Every byte from the start offset on is either in a record or in a [`Corruption`], whatever the
/// read sizes. Memory is one read buffer plus at most one record.
#[derive(Debug)]
pub struct SegmentScanner<R> {
    reader: R,
    buf: Vec<u8>,
    /// Index in `buf` of the next byte to look at.
    start: usize,
    /// Segment offset of `buf[0]`.
    base: u64,
    read_size: usize,
    checksums: Checksums,
    max_message_size: u32,
    /// The damaged run being skipped, reported when something ends it.
    pending: Option<Corruption>,
}

impl<R: Read> SegmentScanner<R> {
    /// A scanner over `reader`, whose next byte is at `offset` in the segment.
    pub fn new(reader: R, offset: u64, checksums: Checksums, max_message_size: u32) -> Self {
        SegmentScanner {
            reader,
            buf: Vec::new(),
            start: 0,
            base: offset,
            read_size: READ_SIZE,
            checksums,
            max_message_size,
            pending: None,
        }
    }

    /// Reads this many bytes at a time (at least 1) instead of 256 KiB; for tests and fuzzing.
    pub fn with_read_size(mut self, read_size: usize) -> Self {
        self.read_size = read_size.max(1);
        self
    }

    /// Segment offset of the next byte to be looked at.
    pub fn position(&self) -> u64 {
        self.base + self.start as u64
    }

    /// The message of the record `span` (from the last call to [`next`](Self::next)).
    pub fn message(&self, span: &Span) -> &[u8] {
        &self.buf[span.message_start..span.framed.end]
    }

    /// The whole framed record `span` (from the last call to [`next`](Self::next)).
    pub fn framed(&self, span: &Span) -> &[u8] {
        &self.buf[span.framed.clone()]
    }

    /// The next valid record, damaged run, or the end of the data read so far.
    // Not an Iterator: `End` is not the end for a segment still being written.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> io::Result<Scanned> {
        // Once a read returned nothing, this call does not ask again: what is left is final.
        let mut at_eof = false;
        loop {
            if self.start == self.buf.len() {
                if at_eof || !self.fill()? {
                    return Ok(self.end());
                }
                continue;
            }
            let b = &self.buf[self.start..];
            let verdict = match frame_at(b, self.max_message_size) {
                FrameStatus::Complete(frame) => {
                    let message = frame.message(b);
                    match (frame.checksum_matches(message), self.checksums) {
                        (Some(true), _) => Ok((frame, true)),
                        (None, Checksums::Optional) => Ok((frame, false)),
                        (Some(false), _) => Err((1, Damage::ChecksumMismatch)),
                        (None, Checksums::Required) => Err((1, Damage::MissingChecksum)),
                    }
                }
                FrameStatus::Corrupt(RegionCause::NoSeparator) => {
                    let run = memchr::memchr(RECORD_SEPARATOR, &b[1..]).map_or(b.len(), |i| i + 1);
                    Err((run, Damage::NoSeparator))
                }
                FrameStatus::Corrupt(cause) => Err((1, Damage::Frame(cause))),
                FrameStatus::Incomplete => {
                    if !at_eof {
                        if self.fill()? {
                            continue;
                        }
                        at_eof = true;
                    }
                    // Nothing more will come in this call: it cannot become a record.
                    Err((1, Damage::Truncated))
                }
            };
            match verdict {
                Ok((frame, checksummed)) => {
                    if let Some(mut run) = self.pending.take() {
                        run.at_end = false;
                        return Ok(Scanned::Corrupt(run));
                    }
                    let span = Span {
                        offset: self.position(),
                        len: frame.len() as u64,
                        checksummed,
                        framed: self.start..self.start + frame.len(),
                        message_start: self.start + frame.message_start(),
                    };
                    self.start += frame.len();
                    return Ok(Scanned::Record(span));
                }
                Err((len, damage)) => self.skip(len, damage),
            }
        }
    }

    /// Reports the pending damaged run at the end of the data, or the end.
    fn end(&mut self) -> Scanned {
        match self.pending.take() {
            Some(mut run) => {
                run.at_end = true;
                Scanned::Corrupt(run)
            }
            None => Scanned::End,
        }
    }

    /// Adds `len` bytes at the current position to the pending damaged run.
    fn skip(&mut self, len: usize, damage: Damage) {
        let offset = self.position();
        match &mut self.pending {
            // Nothing was handed out since the run started, so the bytes are contiguous.
            Some(run) => run.len += len as u64,
            None => {
                self.pending = Some(Corruption {
                    offset,
                    len: len as u64,
                    damage,
                    at_end: false,
                });
            }
        }
        self.start += len;
    }

    /// Drops the bytes already looked at and reads more; false at the end of the reader.
    fn fill(&mut self) -> io::Result<bool> {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.base += self.start as u64;
            self.start = 0;
        }
        let filled = self.buf.len();
        self.buf.resize(filled + self.read_size, 0);
        let n = loop {
            match self.reader.read(&mut self.buf[filled..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.buf.truncate(filled);
                    return Err(e);
                }
            }
        };
        self.buf.truncate(filled + n);
        Ok(n > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hekate_model::framing::{encode_checksummed_record, encode_record};
    use proptest::prelude::*;

    /// Everything the scanner reports, owned.
    #[derive(Debug, PartialEq)]
    enum Item {
        Record(u64, Vec<u8>),
        Corrupt(Corruption),
    }

    fn scan(bytes: &[u8], checksums: Checksums, read_size: usize) -> Vec<Item> {
        let mut s = SegmentScanner::new(bytes, 0, checksums, 1024).with_read_size(read_size);
        let mut items = Vec::new();
        loop {
            match s.next().unwrap() {
                Scanned::Record(span) => {
                    assert_eq!(s.framed(&span).len() as u64, span.len);
                    items.push(Item::Record(span.offset, s.message(&span).to_vec()));
                }
                Scanned::Corrupt(c) => items.push(Item::Corrupt(c)),
                Scanned::End => return items,
            }
        }
    }

    fn checksummed(messages: &[&[u8]]) -> (Vec<u8>, Vec<u64>) {
        let mut out = Vec::new();
        let mut offsets = Vec::new();
        for m in messages {
            offsets.push(out.len() as u64);
            encode_checksummed_record(m, 1024, &mut out).unwrap();
        }
        (out, offsets)
    }

    #[test]
    fn segment_names() {
        assert_eq!(segment_id("0.log"), Some(0));
        assert_eq!(segment_id("42.log"), Some(42));
        for bad in [
            "log",
            ".log",
            "a.log",
            "1.log.tmp",
            "-1.log",
            "1.txt",
            "checkpoint.txt",
        ] {
            assert_eq!(segment_id(bad), None, "{bad}");
        }
        assert_eq!(segment_path(Path::new("/q"), 7), Path::new("/q/7.log"));
    }

    #[test]
    fn a_bad_checksum_costs_one_record_and_is_reported_once() {
        let (mut bytes, at) = checksummed(&[b"one", b"two", b"three"]);
        bytes[at[1] as usize + 12] ^= 1; // inside "two"
        for read_size in [1, 3, 7, 1000] {
            let items = scan(&bytes, Checksums::Required, read_size);
            assert_eq!(
                items,
                [
                    Item::Record(at[0], b"one".to_vec()),
                    Item::Corrupt(Corruption {
                        offset: at[1],
                        len: at[2] - at[1],
                        damage: Damage::ChecksumMismatch,
                        at_end: false,
                    }),
                    Item::Record(at[2], b"three".to_vec()),
                ],
                "read size {read_size}"
            );
        }
    }

    #[test]
    fn a_cut_record_at_the_end_is_a_torn_tail() {
        let (bytes, at) = checksummed(&[b"one", b"two"]);
        let cut = &bytes[..bytes.len() - 2];
        let items = scan(cut, Checksums::Required, 5);
        assert_eq!(
            items,
            [
                Item::Record(at[0], b"one".to_vec()),
                Item::Corrupt(Corruption {
                    offset: at[1],
                    len: cut.len() as u64 - at[1],
                    damage: Damage::Truncated,
                    at_end: true,
                }),
            ]
        );
    }

    #[test]
    fn a_header_claiming_too_much_does_not_hide_the_records_after_it() {
        // A damaged length claims 1000 bytes; the records inside that span are still found.
        let (mut bytes, at) = checksummed(&[b"one", b"two", b"three"]);
        bytes[1] = 8; // header `08 E8 07 7D c c c c`
        bytes[3] = 0xE8;
        bytes.insert(4, 0x07);
        let items = scan(&bytes, Checksums::Required, 4);
        assert_eq!(items.len(), 3, "{items:?}");
        assert!(matches!(
            items[0],
            Item::Corrupt(Corruption { offset: 0, .. })
        ));
        assert_eq!(items[1], Item::Record(at[1] + 1, b"two".to_vec()));
        assert_eq!(items[2], Item::Record(at[2] + 1, b"three".to_vec()));
    }

    #[test]
    fn heka_segments_without_checksums_are_detected_and_read() {
        let mut heka = Vec::new();
        for m in [&b"a"[..], b"bc"] {
            encode_record(m, None, &mut heka).unwrap();
        }
        assert_eq!(Checksums::detect(&heka, 1024), Checksums::Optional);
        assert_eq!(scan(&heka, Checksums::Optional, 2).len(), 2);
        // In a hekate segment, a record without a checksum is damage.
        let (ours, _) = checksummed(&[b"x"]);
        assert_eq!(Checksums::detect(&ours, 1024), Checksums::Required);
        assert_eq!(Checksums::detect(&[], 1024), Checksums::Required);
        let mut mixed = ours.clone();
        mixed.extend_from_slice(&heka);
        let items = scan(&mixed, Checksums::Required, 1000);
        assert!(matches!(
            items[1],
            Item::Corrupt(Corruption {
                damage: Damage::MissingChecksum,
                at_end: true,
                ..
            })
        ));
    }

    #[test]
    fn scanning_resumes_after_the_end_when_more_is_appended() {
        let (bytes, at) = checksummed(&[b"one", b"two"]);
        let file = crate::queue::tests::temp_dir("scanner-append").join("0.log");
        fs::write(&file, &bytes[..at[1] as usize]).unwrap();
        let mut s = SegmentScanner::new(File::open(&file).unwrap(), 0, Checksums::Required, 1024);
        assert!(matches!(s.next().unwrap(), Scanned::Record(_)));
        assert_eq!(s.next().unwrap(), Scanned::End);
        fs::write(&file, &bytes).unwrap();
        match s.next().unwrap() {
            Scanned::Record(span) => assert_eq!(s.message(&span), b"two"),
            other => panic!("{other:?}"),
        }
        assert_eq!(s.position(), bytes.len() as u64);
    }

    proptest! {
        /// The fuzz target's property (`fuzz/fuzz_targets/queue_segment.rs`) on bytes mixed from
        /// real records and noise: everything tiles the input, every record is a valid one, and
        /// the read size does not change the answer.
        #[test]
        fn any_bytes_scan_the_same_in_any_read_size(
            pieces in prop::collection::vec(
                prop_oneof![
                    2 => prop::collection::vec(
                        prop_oneof![4 => any::<u8>(), 1 => Just(0x1E), 1 => Just(0x1F), 1 => Just(0x7D)],
                        0..60,
                    ),
                    2 => prop::collection::vec(any::<u8>(), 0..200).prop_map(|m| {
                        let mut out = Vec::new();
                        encode_checksummed_record(&m, 1024, &mut out).unwrap();
                        out
                    }),
                    1 => prop::collection::vec(any::<u8>(), 0..50).prop_map(|m| {
                        let mut out = Vec::new();
                        encode_record(&m, None, &mut out).unwrap();
                        out
                    }),
                ],
                0..12,
            ),
            read_size in 1usize..64,
            heka in any::<bool>(),
        ) {
            let bytes = pieces.concat();
            let checksums = if heka { Checksums::Optional } else { Checksums::Required };
            let whole = scan(&bytes, checksums, bytes.len().max(1));
            let mut at = 0;
            for item in &whole {
                let (offset, len) = match item {
                    Item::Record(offset, message) => {
                        let framed = &bytes[*offset as usize..];
                        let FrameStatus::Complete(frame) = frame_at(framed, 1024) else {
                            panic!("not a record");
                        };
                        prop_assert_eq!(frame.message(framed), &message[..]);
                        let matches = frame.checksum_matches(message);
                        prop_assert!(matches == Some(true) || (heka && matches.is_none()));
                        (*offset, frame.len() as u64)
                    }
                    Item::Corrupt(c) => (c.offset, c.len),
                };
                prop_assert_eq!(offset, at);
                at += len;
            }
            prop_assert_eq!(at, bytes.len() as u64);
            prop_assert_eq!(scan(&bytes, checksums, read_size), whole);
        }
    }
}
