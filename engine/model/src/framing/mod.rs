//! Heka stream framing: how records are laid out in a byte stream, written and split back out.
//!
//! Every Heka TCP connection, UDP datagram, framed file (`hekate cat`) and disk queue is a
//! concatenation of records (reference §2.1):
//!
//! ```text
//! offset 0          0x1E  record separator
//! offset 1          H     length of the header, 1..=255
//! offset 2..2+H           Header protobuf: message_length, and for signed records
//!                         hmac_hash_function, hmac_signer, hmac_key_version, hmac
//! offset 2+H        0x1F  unit separator
//! offset 3+H..            the encoded Message, exactly message_length bytes
//! ```
//!
//! An unsigned record of a 300-byte message therefore starts `1E 03 08 AC 02 1F`.
//!
//! # The checksum field (hekate's addition)
//!
//! Records that hekate writes to a disk queue carry one more header field, number
//! [`CHECKSUM_FIELD`] (15), wire type fixed32: the CRC-32C (Castagnoli, [`checksum`]) of the
//! message bytes, little-endian. The header of such a 300-byte record is `08 AC 02 7D c0 c1 c2 c3`
//! (`1E 08 … 1F`). Heka's `Header` uses fields 1 and 3–6; its decoder keeps unknown fields aside and
//! reads on, so Heka (and `hekate cat`, and [`HekaSplitter`]) read such records as plain unsigned
//! ones and ignore the checksum. Readers that want it use [`frame_at`] and
//! [`Frame::checksum_matches`].
//!
//! - [`encode_record`] appends one record to a reused buffer; unsigned headers (`08 <varint>`) and
//!   signed ones are written by hand, byte-identical to hekad's, without building a prost struct.
//!   [`encode_checksummed_record`] writes the checksummed form.
//! - [`HekaSplitter`] finds records in bytes as they arrive, resynchronising after garbage and
//!   verifying signatures against [`SignerKeys`] (reference §2.2, §2.3).
//! - [`SigningKey`] signs records on the sending side.
//!
//! # Splitting: who owns the buffer
//!
//! The caller owns the read buffer; the splitter owns only its counters, the stream offset and the
//! corrupt region it is in the middle of. Each [`HekaSplitter::split`] call looks at the unconsumed
//! bytes, returns at most one record **borrowed from them** (no copy) and says how many bytes it
//! used up. The caller drops exactly those bytes before the next call (advance a cursor, and compact
//! once per read). When the outcome is [`SplitOutcome::NeedData`], what is left is empty or the
//! beginning of one record: keep it, append the next read, call again. A record never needs more
//! than [`HekaSplitter::max_record_size`] bytes of buffer. At the end of the stream call
//! [`HekaSplitter::finish`] the same way, so that a cut-off final record is reported.
//!
//! ```
//! use hekate_model::framing::{HekaSplitter, SplitOutcome, encode_record};
//!
//! let mut stream = b"junk".to_vec();
//! for msg in [&b"first"[..], b"second"] {
//!     encode_record(msg, None, &mut stream).unwrap();
//! }
//! stream.extend_from_slice(&[0x1E, 0x02, 0x08]); // a record cut short
//!
//! let mut splitter = HekaSplitter::default();
//! let mut buf = Vec::new();
//! let mut messages = Vec::new();
//! let mut warnings = Vec::new();
//! for read in stream.chunks(5) {
//!     buf.extend_from_slice(read);
//!     let mut pos = 0;
//!     loop {
//!         let step = splitter.split(&buf[pos..]);
//!         pos += step.consumed;
//!         if let Some(region) = step.skipped {
//!             warnings.push(region.to_string());
//!         }
//!         match step.outcome {
//!             SplitOutcome::Record(record) => messages.push(record.message.to_vec()),
//!             SplitOutcome::Rejected(_) => {} // counted in splitter.counters()
//!             SplitOutcome::NeedData | SplitOutcome::End { .. } => break,
//!         }
//!     }
//!     buf.drain(..pos); // keep the start of a partial record for the next read
//! }
//! let step = splitter.finish(&buf);
//! assert!(step.skipped.is_none());
//! if let SplitOutcome::End { truncated: Some(region) } = step.outcome {
//!     warnings.push(region.to_string());
//! }
//!
//! assert_eq!(messages, [&b"first"[..], b"second"]);
//! assert_eq!(warnings, [
//!     "skipped 4 bytes of corrupt data at offset 0 (no record separator)",
//!     "skipped a truncated record of 3 bytes at offset 25",
//! ]);
//! assert_eq!(splitter.counters().records, 2);
//! ```

mod error;
mod frame;
mod header;
mod record;
mod signer;
mod splitter;

pub use error::FramingError;
pub use frame::{Frame, FrameStatus, RegionCause, frame_at};
pub use record::{
    CHECKSUM_FIELD, DEFAULT_MAX_MESSAGE_SIZE, HEADER_FRAMING_SIZE, MAX_HEADER_SIZE,
    RECORD_SEPARATOR, UNIT_SEPARATOR, checksum, checksummed_record_len, encode_checksummed_record,
    encode_record, encode_record_with_limit, max_record_size,
};
pub use signer::{SignerKeys, SigningKey, hash_function_from_name};
pub use splitter::{
    HekaSplitter, Record, Region, RejectReason, Rejected, SplitOutcome, SplitResult,
    SplitterCounters,
};
