//! What the bytes at one record separator are: a whole record, the start of one, or not a record.
//!
//! The streaming [`HekaSplitter`](super::HekaSplitter) and readers that keep their own buffer (the
//! disk queue's segment scanner) classify candidates the same way, here: header length, unit
//! separator, header protobuf, `max_message_size`, then whether the message is all there.
//! Neither signatures nor checksums are verified at this step; that is the caller's policy.

use std::fmt;

use super::header::{self, HeaderFields};
use super::record::{HEADER_FRAMING_SIZE, RECORD_SEPARATOR, UNIT_SEPARATOR};

/// What the bytes at a record separator turned out to be, with the decoded header when it was not
/// one of the plain forms (so the splitter can verify a signature without decoding twice).
pub(crate) enum Candidate<'a> {
    /// A whole record.
    Complete {
        header_len: usize,
        message_len: usize,
        checksum: Option<u32>,
        fields: Option<HeaderFields<'a>>,
    },
    /// Not enough bytes to decide.
    Incomplete,
    /// Not a record.
    Corrupt(RegionCause),
}

/// Classifies the bytes at a record separator (`b[0] == 0x1E`).
#[inline(always)]
pub(crate) fn classify(b: &[u8], max_message_size: u32) -> Candidate<'_> {
    let Some(&h) = b.get(1) else {
        return Candidate::Incomplete;
    };
    if h == 0 {
        return Candidate::Corrupt(RegionCause::EmptyHeader);
    }
    let header_end = 2 + h as usize;
    let Some(&us) = b.get(header_end) else {
        return Candidate::Incomplete;
    };
    if us != UNIT_SEPARATOR {
        return Candidate::Corrupt(RegionCause::MissingUnitSeparator);
    }
    let header = &b[2..header_end];
    let (length, checksum, fields) = match header::plain_length(header) {
        Some((length, checksum)) => (length, checksum, None),
        None => match header::parse(header) {
            Some(fields) => (fields.message_length, fields.checksum, Some(fields)),
            None => return Candidate::Corrupt(RegionCause::BadHeader),
        },
    };
    if length > u64::from(max_message_size) {
        return Candidate::Corrupt(RegionCause::Oversized);
    }
    // Fits in usize: at most u32::MAX.
    let message_len = length as usize;
    if b.len() - (header_end + 1) < message_len {
        return Candidate::Incomplete;
    }
    Candidate::Complete {
        header_len: h as usize,
        message_len,
        checksum,
        fields,
    }
}

/// The framing of one whole record found by [`frame_at`]: where its message is, and its checksum.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame {
    /// Length of the header protobuf (the byte after the record separator).
    pub header_len: usize,
    /// Length of the message.
    pub message_len: usize,
    /// hekate's checksum field (CRC-32C of the message), when the header carries one.
    pub checksum: Option<u32>,
}

impl Frame {
    /// Offset of the message from the record separator.
    pub fn message_start(&self) -> usize {
        HEADER_FRAMING_SIZE + self.header_len
    }

    /// Length of the whole framed record.
    pub fn len(&self) -> usize {
        self.message_start() + self.message_len
    }

    /// Always false: a record has at least its framing. (For clippy's `len_without_is_empty`.)
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The message of this record in `record` (the bytes `frame_at` was given).
    pub fn message<'a>(&self, record: &'a [u8]) -> &'a [u8] {
        &record[self.message_start()..self.len()]
    }

    /// Whether `message` matches the record's checksum; `None` when the record has none.
    pub fn checksum_matches(&self, message: &[u8]) -> Option<bool> {
        self.checksum.map(|sum| super::checksum(message) == sum)
    }
}

/// What [`frame_at`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameStatus {
    /// A whole record (signature and checksum not verified).
    Complete(Frame),
    /// The start of a record, or too few bytes to tell: more bytes are needed.
    Incomplete,
    /// Not a record: skip this byte and look for the next record separator.
    Corrupt(RegionCause),
}

/// Classifies the bytes at the start of `bytes` as the splitter does: a whole record, the start of
/// one, or not a record (including when `bytes` does not start with `0x1E`).
///
/// ```
/// use hekate_model::framing::{FrameStatus, encode_checksummed_record, frame_at};
///
/// let mut out = Vec::new();
/// encode_checksummed_record(b"hello", 1024, &mut out).unwrap();
/// let FrameStatus::Complete(frame) = frame_at(&out, 1024) else { panic!() };
/// assert_eq!(frame.len(), out.len());
/// assert_eq!(frame.message(&out), b"hello");
/// assert_eq!(frame.checksum_matches(b"hello"), Some(true));
/// assert_eq!(frame_at(&out[..4], 1024), FrameStatus::Incomplete);
/// ```
pub fn frame_at(bytes: &[u8], max_message_size: u32) -> FrameStatus {
    match bytes.first() {
        None => FrameStatus::Incomplete,
        Some(&RECORD_SEPARATOR) => match classify(bytes, max_message_size) {
            Candidate::Complete {
                header_len,
                message_len,
                checksum,
                ..
            } => FrameStatus::Complete(Frame {
                header_len,
                message_len,
                checksum,
            }),
            Candidate::Incomplete => FrameStatus::Incomplete,
            Candidate::Corrupt(cause) => FrameStatus::Corrupt(cause),
        },
        Some(_) => FrameStatus::Corrupt(RegionCause::NoSeparator),
    }
}

/// What the first bytes of a skipped region (`Region`) were.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegionCause {
    /// Bytes before any record separator.
    NoSeparator,
    /// A record separator followed by header length 0.
    EmptyHeader,
    /// A header not followed by the unit separator.
    MissingUnitSeparator,
    /// A header that is not a valid protobuf `Header`.
    BadHeader,
    /// A header claiming a message longer than `max_message_size`.
    Oversized,
    /// A record cut short by the end of the stream.
    Truncated,
}

impl fmt::Display for RegionCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RegionCause::NoSeparator => "no record separator",
            RegionCause::EmptyHeader => "header length 0",
            RegionCause::MissingUnitSeparator => "no unit separator after the header",
            RegionCause::BadHeader => "header is not valid protobuf",
            RegionCause::Oversized => "header claims a message over max_message_size",
            RegionCause::Truncated => "record cut short by the end of the stream",
        })
    }
}
