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

mod frame;
mod header;
mod signer;
mod splitter;

pub use frame::{Frame, FrameStatus, frame_at};
pub use signer::{SignerKeys, SigningKey, hash_function_from_name};
pub use splitter::{
    HekaSplitter, Record, Region, RegionCause, RejectReason, Rejected, SplitOutcome, SplitResult,
    SplitterCounters,
};

use crate::varint;
use header::{
    KEY_CHECKSUM, KEY_HASH_FUNCTION, KEY_HMAC, KEY_KEY_VERSION, KEY_MESSAGE_LENGTH, KEY_SIGNER,
};

/// Byte that starts every record (ASCII RS).
pub const RECORD_SEPARATOR: u8 = 0x1E;
/// Byte that ends every header (ASCII US).
pub const UNIT_SEPARATOR: u8 = 0x1F;
/// Bytes of framing around a header: separator, header length, unit separator.
pub const HEADER_FRAMING_SIZE: usize = 3;
/// Largest header, since its length is one byte.
pub const MAX_HEADER_SIZE: usize = 255;
/// Heka's default `max_message_size` (64 KiB).
pub const DEFAULT_MAX_MESSAGE_SIZE: u32 = 64 * 1024;
/// Number of hekate's header field holding the message's CRC-32C (fixed32); Heka's `Header` uses
/// 1 and 3–6 and ignores it.
pub const CHECKSUM_FIELD: u32 = header::CHECKSUM_FIELD as u32;

/// The checksum hekate writes in [`CHECKSUM_FIELD`]: CRC-32C (Castagnoli, as iSCSI and ext4 use)
/// of the message bytes.
#[inline]
pub fn checksum(message: &[u8]) -> u32 {
    crc32c::crc32c(message)
}

/// The largest record a stream with this `max_message_size` can hold: the buffer size a reader
/// needs.
pub const fn max_record_size(max_message_size: u32) -> usize {
    HEADER_FRAMING_SIZE + MAX_HEADER_SIZE + max_message_size as usize
}

/// Why a record could not be written, or a signer not configured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FramingError {
    /// The message is longer than the configured limit.
    #[error("message of {len} bytes exceeds max_message_size {max}")]
    MessageTooLarge {
        /// Length of the message.
        len: usize,
        /// The limit.
        max: u32,
    },
    /// The header (usually because of a long signer name) does not fit its one-byte length.
    #[error("framing header of {len} bytes exceeds the {MAX_HEADER_SIZE}-byte limit")]
    HeaderTooLarge {
        /// Length the header would have.
        len: usize,
    },
    /// A signer section name is not `<signer>_<version>`.
    #[error("signer section `{section}` is not named <signer>_<version>, e.g. `ops_0`")]
    BadSignerSection {
        /// The section name.
        section: String,
    },
}

/// Appends one record holding `message` to `out`, signed when `signer` is given, with Heka's
/// default limit of [`DEFAULT_MAX_MESSAGE_SIZE`].
///
/// See [`encode_record_with_limit`].
pub fn encode_record(
    message: &[u8],
    signer: Option<&SigningKey>,
    out: &mut Vec<u8>,
) -> Result<(), FramingError> {
    encode_record_with_limit(message, signer, DEFAULT_MAX_MESSAGE_SIZE, out)
}

/// Appends one record holding `message` to `out`, signed when `signer` is given.
///
/// `out` only grows (reserve once, reuse it across calls); nothing else is allocated. On error
/// `out` is left as it was. Fails when `message` is longer than `max_message_size` or the signed
/// header would be longer than 255 bytes.
pub fn encode_record_with_limit(
    message: &[u8],
    signer: Option<&SigningKey>,
    max_message_size: u32,
    out: &mut Vec<u8>,
) -> Result<(), FramingError> {
    let len = message.len();
    if len > max_message_size as usize {
        return Err(FramingError::MessageTooLarge {
            len,
            max: max_message_size,
        });
    }
    let len64 = len as u64;
    let Some(key) = signer else {
        // Fast path: `1E H 08 <varint len> 1F`, assembled on the stack and appended at once.
        // A u32 length takes at most 5 bytes: head[3..8], then the unit separator.
        let mut head = [0u8; 9];
        let n = 2 + varint::write(&mut head[3..8], len64);
        head[0] = RECORD_SEPARATOR;
        head[1] = (n - 1) as u8; // the header is head[2..=n]
        head[2] = KEY_MESSAGE_LENGTH;
        head[n + 1] = UNIT_SEPARATOR;
        out.reserve(n + 2 + len);
        out.extend_from_slice(&head[..n + 2]);
        out.extend_from_slice(message);
        return Ok(());
    };

    let name = key.name().as_bytes();
    let version = u64::from(key.version());
    let digest_len = key.digest_len();
    let header_len = 1
        + varint::encoded_len(len64)
        + 2 // hash function key and value (0 or 1)
        + 1
        + varint::encoded_len(name.len() as u64)
        + name.len()
        + 1
        + varint::encoded_len(version)
        + 2 // hmac key and length (16 or 20)
        + digest_len;
    if header_len > MAX_HEADER_SIZE {
        return Err(FramingError::HeaderTooLarge { len: header_len });
    }
    out.reserve(HEADER_FRAMING_SIZE + header_len + len);
    out.extend_from_slice(&[RECORD_SEPARATOR, header_len as u8, KEY_MESSAGE_LENGTH]);
    varint::put(out, len64);
    out.extend_from_slice(&[KEY_HASH_FUNCTION, key.hash_function() as u8, KEY_SIGNER]);
    varint::put(out, name.len() as u64);
    out.extend_from_slice(name);
    out.push(KEY_KEY_VERSION);
    varint::put(out, version);
    out.extend_from_slice(&[KEY_HMAC, digest_len as u8]);
    key.sign_into(message, out);
    out.push(UNIT_SEPARATOR);
    out.extend_from_slice(message);
    Ok(())
}

/// Appends one unsigned record holding `message` to `out`, its header carrying the message's
/// [`checksum`] in field [`CHECKSUM_FIELD`]: `1E H 08 <varint len> 7D <crc32c LE> 1F <message>`.
///
/// Like [`encode_record_with_limit`], `out` only grows and is left as it was on error (a message
/// longer than `max_message_size`).
pub fn encode_checksummed_record(
    message: &[u8],
    max_message_size: u32,
    out: &mut Vec<u8>,
) -> Result<(), FramingError> {
    let len = message.len();
    if len > max_message_size as usize {
        return Err(FramingError::MessageTooLarge {
            len,
            max: max_message_size,
        });
    }
    // `1E H 08 <up to 5 varint bytes> 7D <4 bytes> 1F`: at most 14 bytes.
    let mut head = [0u8; 14];
    head[0] = RECORD_SEPARATOR;
    head[2] = KEY_MESSAGE_LENGTH;
    let mut n = 3 + varint::write(&mut head[3..8], len as u64);
    head[n] = KEY_CHECKSUM;
    head[n + 1..n + 5].copy_from_slice(&checksum(message).to_le_bytes());
    n += 5;
    head[1] = (n - 2) as u8; // the header is head[2..n]
    head[n] = UNIT_SEPARATOR;
    out.reserve(n + 1 + len);
    out.extend_from_slice(&head[..=n]);
    out.extend_from_slice(message);
    Ok(())
}

/// Length of the record [`encode_checksummed_record`] writes for a message of `message_len` bytes.
pub const fn checksummed_record_len(message_len: usize) -> usize {
    HEADER_FRAMING_SIZE + 1 + varint::encoded_len(message_len as u64) + 5 + message_len
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{Header, HmacHashFunction};
    use prost::Message as _;

    #[test]
    fn unsigned_header_is_heka_layout() {
        for len in [0usize, 1, 127, 128, 300, 16_383, 16_384, 65_536] {
            let msg = vec![0xAB; len];
            let mut out = vec![0xEE];
            encode_record(&msg, None, &mut out).unwrap();
            let header = Header {
                message_length: len as u32,
                ..Default::default()
            }
            .encode_to_vec();
            let mut want = vec![0xEE, RECORD_SEPARATOR, header.len() as u8];
            want.extend_from_slice(&header);
            want.push(UNIT_SEPARATOR);
            want.extend_from_slice(&msg);
            assert_eq!(out, want, "len {len}");
        }
    }

    #[test]
    fn signed_header_matches_prost_encoding() {
        let key = SigningKey::new("ops", 300, HmacHashFunction::Sha1, b"secret");
        let msg = b"hello";
        let mut out = Vec::new();
        encode_record(msg, Some(&key), &mut out).unwrap();
        let mut digest = Vec::new();
        key.sign_into(msg, &mut digest);
        let header = Header {
            message_length: 5,
            hmac_hash_function: Some(HmacHashFunction::Sha1 as i32),
            hmac_signer: Some("ops".into()),
            hmac_key_version: Some(300),
            hmac: Some(digest),
        }
        .encode_to_vec();
        assert_eq!(out[1] as usize, header.len());
        assert_eq!(&out[2..2 + header.len()], &header[..]);
        assert_eq!(out.len(), HEADER_FRAMING_SIZE + header.len() + msg.len());
    }

    #[test]
    fn checksummed_record_layout() {
        for len in [0usize, 1, 127, 128, 300, 16_384, 65_536] {
            let msg: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
            let mut out = vec![0xEE];
            encode_checksummed_record(&msg, DEFAULT_MAX_MESSAGE_SIZE, &mut out).unwrap();
            let out = &out[1..];
            assert_eq!(out.len(), checksummed_record_len(len), "len {len}");
            let h = out[1] as usize;
            let mut want = vec![KEY_MESSAGE_LENGTH];
            varint::put(&mut want, len as u64);
            want.push(KEY_CHECKSUM);
            want.extend_from_slice(&crc32c::crc32c(&msg).to_le_bytes());
            assert_eq!(&out[2..2 + h], &want[..]);
            assert_eq!(out[2 + h], UNIT_SEPARATOR);
            assert_eq!(&out[3 + h..], &msg[..]);
            let FrameStatus::Complete(frame) = frame_at(out, DEFAULT_MAX_MESSAGE_SIZE) else {
                panic!("len {len}: not a record");
            };
            assert_eq!(frame.len(), out.len());
            assert_eq!(frame.checksum_matches(&msg), Some(true));
        }
        // The known CRC-32C check value.
        assert_eq!(checksum(b"123456789"), 0xE306_9283);
        let mut out = vec![1];
        let err = encode_checksummed_record(&[0; 11], 10, &mut out).unwrap_err();
        assert!(matches!(
            err,
            FramingError::MessageTooLarge { len: 11, max: 10 }
        ));
        assert_eq!(out, [1]);
    }

    #[test]
    fn limits_are_enforced_and_leave_out_untouched() {
        let mut out = vec![1, 2, 3];
        let err = encode_record_with_limit(&[0; 11], None, 10, &mut out).unwrap_err();
        assert_eq!(
            err.to_string(),
            "message of 11 bytes exceeds max_message_size 10"
        );
        encode_record_with_limit(&[0; 10], None, 10, &mut out).unwrap();

        let long = SigningKey::new("x".repeat(240), 0, HmacHashFunction::Md5, b"k");
        let mut out = vec![1, 2, 3];
        let err = encode_record(b"m", Some(&long), &mut out).unwrap_err();
        assert!(matches!(err, FramingError::HeaderTooLarge { len } if len > 255));
        assert_eq!(out, [1, 2, 3]);
        // The longest name that still fits: 255 = 2 + 2 + (1 + 2 + 228) + 2 + 2 + 16.
        let fits = SigningKey::new("x".repeat(228), 0, HmacHashFunction::Md5, b"k");
        encode_record(b"m", Some(&fits), &mut out).unwrap();
        assert_eq!(out[4], 255);
    }
}
