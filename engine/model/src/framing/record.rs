//! A record: Heka's stream framing around one message — separators, header sizes and limits —
//! and writing a message as one record, signed or not.

use super::error::FramingError;
use super::header::{
    self, KEY_CHECKSUM, KEY_HASH_FUNCTION, KEY_HMAC, KEY_KEY_VERSION, KEY_MESSAGE_LENGTH,
    KEY_SIGNER,
};
use super::signer::SigningKey;
use crate::varint;

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
    use super::super::frame::{FrameStatus, frame_at};
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
