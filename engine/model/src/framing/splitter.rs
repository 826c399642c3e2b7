//! The streaming record splitter (Heka's `HekaFramingSplitter`, reference §2.3).
//!
//! See the [module docs](super) for the buffer contract. The algorithm, per call:
//!
//! 1. Find the next `0x1E` with `memchr`; bytes before it are corrupt.
//! 2. Read the header length `H` and, once `3 + H` bytes are there, check the `0x1F` at `2 + H`
//!    and decode the header. `H = 0`, a missing `0x1F`, a header that is not valid protobuf, or a
//!    `message_length` over `max_message_size` make the `0x1E` corrupt too: skip it and go back to
//!    step 1 (resynchronisation).
//! 3. Once the whole message is there, verify its signature (when it has one and authentication
//!    is on) and hand out the record, borrowed from the caller's buffer.
//!
//! Consecutive corrupt bytes form one [`Region`], reported once with the record (or the end of the
//! stream) that closes it, however the stream was cut into reads: the same bytes give the same
//! records, regions and counters whatever the read sizes.
//!
//! Heka decodes the header only to authenticate when `H + 3 > 16`; hekate decodes any header that
//! is not the unsigned `08 <varint>` form (with or without hekate's checksum field, which the
//! splitter ignores: see [`frame_at`](super::frame_at)) and verifies every header that carries an `hmac`, so a
//! short bogus signature is rejected instead of passed. A record counts as signed by `name` only
//! after its HMAC verified: Heka also attributes an unsigned header's `hmac_signer` to the record,
//! hekate does not.

use std::fmt;
use std::sync::Arc;

use super::frame::{Candidate, RegionCause, classify};
use super::header::HeaderFields;
use super::record::{
    DEFAULT_MAX_MESSAGE_SIZE, HEADER_FRAMING_SIZE, RECORD_SEPARATOR, max_record_size,
};
use super::signer::{SignerKeys, VerifyError};

/// One complete record, borrowed from the buffer passed to [`HekaSplitter::split`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record<'a> {
    /// The encoded message (the bytes for [`MessageView::new`](crate::message::MessageView::new)).
    pub message: &'a [u8],
    /// The whole framed record, separator to last message byte, for passing it on unchanged.
    pub framed: &'a [u8],
    /// The signer whose HMAC verified; `None` for unsigned records and when authentication is
    /// skipped.
    pub signer: Option<&'a str>,
    /// Stream offset of the record's `0x1E`.
    pub offset: u64,
}

/// Why a well-framed record was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RejectReason {
    /// No trusted key for the header's signer name and key version.
    UnknownSigner,
    /// The HMAC does not match the message (or names an unknown hash function).
    BadSignature,
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RejectReason::UnknownSigner => "unknown signer",
            RejectReason::BadSignature => "signature does not match",
        })
    }
}

/// A record dropped because its signature did not verify.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rejected {
    /// Stream offset of the record's `0x1E`.
    pub offset: u64,
    /// Length of the framed record.
    pub len: usize,
    /// Why it was dropped.
    pub reason: RejectReason,
}

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "dropped the record of {} bytes at offset {}: {}",
            self.len, self.offset, self.reason
        )
    }
}

/// A run of skipped bytes: corrupt data, or a record cut short at the end of the stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    /// Stream offset of the first skipped byte.
    pub offset: u64,
    /// Number of bytes skipped.
    pub len: u64,
    /// What the first bytes were.
    pub cause: RegionCause,
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.cause == RegionCause::Truncated {
            write!(
                f,
                "skipped a truncated record of {} bytes at offset {}",
                self.len, self.offset
            )
        } else {
            write!(
                f,
                "skipped {} bytes of corrupt data at offset {} ({})",
                self.len, self.offset, self.cause
            )
        }
    }
}

/// What one [`HekaSplitter::split`] or [`HekaSplitter::finish`] call found after the skipped
/// bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SplitOutcome<'a> {
    /// A complete record that passed authentication.
    Record(Record<'a>),
    /// A complete record dropped for its signature (also counted).
    Rejected(Rejected),
    /// From `split`: no complete record in the unconsumed bytes; append the next read to them and
    /// call again.
    NeedData,
    /// From `finish`: the stream is done; `truncated` is the final record cut short, if any.
    End {
        /// The cut-off record at the end of the stream.
        truncated: Option<Region>,
    },
}

/// The result of one [`HekaSplitter::split`] or [`HekaSplitter::finish`] call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SplitResult<'a> {
    /// Bytes at the front of the buffer this call used up; drop them before the next call.
    pub consumed: usize,
    /// The corrupt region that ended where this call's outcome starts, if one did.
    pub skipped: Option<Region>,
    /// The record, rejection or end found.
    pub outcome: SplitOutcome<'a>,
}

/// What a splitter has seen so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SplitterCounters {
    /// Records handed out.
    pub records: u64,
    /// Bytes skipped: corrupt data and truncated records (not rejected records).
    pub skipped_bytes: u64,
    /// Corrupt regions reported (each counted when it ends).
    pub corrupt_regions: u64,
    /// Records cut short by the end of the stream.
    pub truncated: u64,
    /// Headers claiming a message over `max_message_size`.
    pub oversized: u64,
    /// Headers of length 0, without the unit separator, or not valid protobuf.
    pub bad_header: u64,
    /// Signed records whose HMAC did not match.
    pub signature_failures: u64,
    /// Signed records from a signer name and version with no trusted key.
    pub unknown_signer: u64,
}

/// Splits a Heka-framed byte stream into records; one per connection, file or datagram stream.
///
/// See the [module docs](super) for the buffer contract and an example loop.
#[derive(Clone, Debug)]
pub struct HekaSplitter {
    max_message_size: u32,
    signers: Option<Arc<SignerKeys>>,
    skip_authentication: bool,
    /// Stream offset of the first byte of the next buffer passed in.
    offset: u64,
    /// The corrupt region being skipped, not reported until something ends it.
    pending: Option<Region>,
    counters: SplitterCounters,
}

impl Default for HekaSplitter {
    /// A splitter with Heka's defaults: 64 KiB messages, authentication on, no trusted keys.
    fn default() -> Self {
        Self::new(DEFAULT_MAX_MESSAGE_SIZE)
    }
}

impl HekaSplitter {
    /// A splitter accepting messages up to `max_message_size` bytes, with authentication on and
    /// no trusted keys (so signed records are rejected until [`with_signers`](Self::with_signers)).
    pub fn new(max_message_size: u32) -> Self {
        HekaSplitter {
            max_message_size,
            signers: None,
            skip_authentication: false,
            offset: 0,
            pending: None,
            counters: SplitterCounters::default(),
        }
    }

    /// Trusts these keys for signed records (the input's `signer` sections).
    pub fn with_signers(mut self, signers: Arc<SignerKeys>) -> Self {
        self.signers = Some(signers);
        self
    }

    /// With `true`, passes signed records without checking them (and without a signer).
    pub fn with_skip_authentication(mut self, skip: bool) -> Self {
        self.skip_authentication = skip;
        self
    }

    /// The largest message accepted.
    pub fn max_message_size(&self) -> u32 {
        self.max_message_size
    }

    /// The largest record accepted: the read buffer must be able to hold this many bytes.
    pub fn max_record_size(&self) -> usize {
        max_record_size(self.max_message_size)
    }

    /// Stream offset of the first byte of the next buffer passed in (total bytes consumed).
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// What this splitter has seen so far.
    pub fn counters(&self) -> &SplitterCounters {
        &self.counters
    }

    /// Starts a new stream at offset 0, forgetting any unreported corrupt region; counters are
    /// kept.
    pub fn reset(&mut self) {
        self.offset = 0;
        self.pending = None;
    }

    /// Finds the next record in `buf`, the unconsumed bytes of the stream so far.
    ///
    /// Returns the record (or a rejected record) and the bytes used up to reach its end, or
    /// [`SplitOutcome::NeedData`] once no complete record is left; the bytes then left over are
    /// empty or the start of a record.
    #[inline]
    pub fn split<'a>(&mut self, buf: &'a [u8]) -> SplitResult<'a> {
        self.next(buf, false)
    }

    /// Like [`split`](Self::split), at the end of the stream: bytes that can no longer become a
    /// record are skipped and reported, and the last call returns [`SplitOutcome::End`], having
    /// consumed everything.
    pub fn finish<'a>(&mut self, buf: &'a [u8]) -> SplitResult<'a> {
        self.next(buf, true)
    }

    fn next<'a>(&mut self, buf: &'a [u8], eof: bool) -> SplitResult<'a> {
        let mut pos = 0;
        // At the end of the stream: where the first unfinished record of the current corrupt run
        // starts, and the region pending before it, so a cut-off tail is reported on its own.
        let mut cut: Option<(usize, Option<Region>)> = None;
        loop {
            let rs = match buf.get(pos) {
                Some(&RECORD_SEPARATOR) => pos,
                Some(_) => find_separator(buf, pos + 1),
                None => buf.len(),
            };
            if rs > pos {
                self.skip(pos, rs - pos, RegionCause::NoSeparator);
            }
            if rs == buf.len() {
                break;
            }
            match classify(&buf[rs..], self.max_message_size) {
                Candidate::Complete {
                    header_len,
                    message_len,
                    fields,
                    ..
                } => {
                    let start = rs + HEADER_FRAMING_SIZE + header_len;
                    let end = start + message_len;
                    let record = self.accept(&buf[rs..end], &buf[start..end], fields, rs);
                    let skipped = self.pending.take();
                    if skipped.is_some() {
                        self.counters.corrupt_regions += 1;
                    }
                    return self.consume(end, skipped, record);
                }
                Candidate::Incomplete if !eof => {
                    return self.consume(rs, None, SplitOutcome::NeedData);
                }
                Candidate::Incomplete => {
                    cut.get_or_insert((rs, self.pending));
                    self.skip(rs, 1, RegionCause::Truncated);
                }
                Candidate::Corrupt(cause) => {
                    match cause {
                        RegionCause::Oversized => self.counters.oversized += 1,
                        _ => self.counters.bad_header += 1,
                    }
                    self.skip(rs, 1, cause);
                }
            }
            pos = rs + 1;
        }
        if !eof {
            return self.consume(buf.len(), None, SplitOutcome::NeedData);
        }
        let (skipped, truncated) = match cut {
            Some((at, before)) => {
                let tail = Region {
                    offset: self.offset + at as u64,
                    len: (buf.len() - at) as u64,
                    cause: RegionCause::Truncated,
                };
                (before, Some(tail))
            }
            None => (self.pending, None),
        };
        self.pending = None;
        self.counters.corrupt_regions += u64::from(skipped.is_some());
        self.counters.truncated += u64::from(truncated.is_some());
        self.consume(buf.len(), skipped, SplitOutcome::End { truncated })
    }

    /// Authenticates a complete record and counts the result.
    #[inline(always)]
    fn accept<'a>(
        &mut self,
        framed: &'a [u8],
        message: &'a [u8],
        fields: Option<HeaderFields<'a>>,
        at: usize,
    ) -> SplitOutcome<'a> {
        let offset = self.offset + at as u64;
        let signer = match fields {
            Some(HeaderFields {
                hmac: Some(digest),
                signer,
                key_version,
                hash_function,
                ..
            }) if !self.skip_authentication => {
                let verified = match &self.signers {
                    Some(keys) => keys.verify(signer, key_version, hash_function, message, digest),
                    None => Err(VerifyError::UnknownSigner),
                };
                // A trusted name is a `str`, so a verified signer is valid UTF-8.
                match verified.map(|()| std::str::from_utf8(signer)) {
                    Ok(Ok(name)) => Some(name),
                    Err(VerifyError::Mismatch) => {
                        self.counters.signature_failures += 1;
                        return reject(offset, framed, RejectReason::BadSignature);
                    }
                    Ok(Err(_)) | Err(VerifyError::UnknownSigner) => {
                        self.counters.unknown_signer += 1;
                        return reject(offset, framed, RejectReason::UnknownSigner);
                    }
                }
            }
            _ => None,
        };
        self.counters.records += 1;
        SplitOutcome::Record(Record {
            message,
            framed,
            signer,
            offset,
        })
    }

    /// Adds `len` bytes at `at` in the current buffer to the pending corrupt region.
    fn skip(&mut self, at: usize, len: usize, cause: RegionCause) {
        self.counters.skipped_bytes += len as u64;
        match &mut self.pending {
            // Everything since the region started was skipped, so the new bytes are contiguous.
            Some(region) => region.len += len as u64,
            None => {
                self.pending = Some(Region {
                    offset: self.offset + at as u64,
                    len: len as u64,
                    cause,
                });
            }
        }
    }

    #[inline(always)]
    fn consume<'a>(
        &mut self,
        consumed: usize,
        skipped: Option<Region>,
        outcome: SplitOutcome<'a>,
    ) -> SplitResult<'a> {
        self.offset += consumed as u64;
        SplitResult {
            consumed,
            skipped,
            outcome,
        }
    }
}

fn reject(offset: u64, framed: &[u8], reason: RejectReason) -> SplitOutcome<'_> {
    SplitOutcome::Rejected(Rejected {
        offset,
        len: framed.len(),
        reason,
    })
}

/// Index of the next record separator at or after `from`, or `buf.len()`.
#[inline]
fn find_separator(buf: &[u8], from: usize) -> usize {
    memchr::memchr(RECORD_SEPARATOR, &buf[from..]).map_or(buf.len(), |i| from + i)
}
