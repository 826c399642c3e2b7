//! Heka's stream [`Header`](crate::message::Header), read and written by hand.
//!
//! The header sits on the hot path of every record, so it is neither built nor parsed through
//! prost: writing needs no owned strings and reading borrows the signer name and digest from the
//! record buffer. Fields are written in tag order (1, 3, 4, 5, 6), which is what Heka's gogoproto
//! marshaller emits, so signed headers are byte-identical to hekad's.
//!
//! hekate adds one field Heka does not know, [`checksum`](HeaderFields::checksum) (field 15,
//! fixed32, after every Heka field): the CRC-32C of the message, written on disk-queue records.
//! Heka's generated decoder keeps unknown fields aside (`XXX_unrecognized`) and reads on, and so
//! does [`parse`], so a checksummed record is still a valid Heka record.

/// Key of `message_length` (field 1, varint).
pub(crate) const KEY_MESSAGE_LENGTH: u8 = 0x08;
/// Key of `hmac_hash_function` (field 3, varint).
pub(crate) const KEY_HASH_FUNCTION: u8 = 0x18;
/// Key of `hmac_signer` (field 4, length-delimited).
pub(crate) const KEY_SIGNER: u8 = 0x22;
/// Key of `hmac_key_version` (field 5, varint).
pub(crate) const KEY_KEY_VERSION: u8 = 0x28;
/// Key of `hmac` (field 6, length-delimited).
pub(crate) const KEY_HMAC: u8 = 0x32;
/// Key of hekate's `checksum` (field 15, fixed32): `15 << 3 | 5`.
pub(crate) const KEY_CHECKSUM: u8 = 0x7D;
/// Field number of hekate's `checksum`.
pub(crate) const CHECKSUM_FIELD: u64 = 15;

const WT_VARINT: u64 = 0;
const WT_FIXED64: u64 = 1;
const WT_LEN: u64 = 2;
const WT_FIXED32: u64 = 5;

/// The fields of a decoded header, borrowed from the record.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct HeaderFields<'a> {
    /// Length of the message that follows; wider than `u32` so an overlong varint reads as
    /// oversized rather than wrapping.
    pub message_length: u64,
    /// Raw `HmacHashFunction` value (0 = MD5, the proto default).
    pub hash_function: i32,
    /// `hmac_signer` (empty when absent).
    pub signer: &'a [u8],
    /// `hmac_key_version` (0 when absent).
    pub key_version: u32,
    /// `hmac`, when present (even if empty).
    pub hmac: Option<&'a [u8]>,
    /// hekate's `checksum` (field 15, fixed32): CRC-32C of the message, when present.
    pub checksum: Option<u32>,
}

/// Reads a varint at `*pos`, advancing it; `None` when malformed.
#[inline(always)]
fn read_varint(buf: &[u8], pos: &mut usize) -> Option<u64> {
    crate::varint::read(buf, pos).ok()
}

/// The message length and checksum of an unsigned header — `08 <varint>`, optionally followed by
/// `7D <4-byte checksum>` — the forms almost every record carries; `None` for any other header,
/// which then takes the general path.
#[inline(always)]
pub(crate) fn plain_length(header: &[u8]) -> Option<(u64, Option<u32>)> {
    if header.first() != Some(&KEY_MESSAGE_LENGTH) {
        return None;
    }
    let mut pos = 1;
    let len = read_varint(header, &mut pos)?;
    match &header[pos..] {
        [] => Some((len, None)),
        [KEY_CHECKSUM, a, b, c, d] => Some((len, Some(u32::from_le_bytes([*a, *b, *c, *d])))),
        _ => None,
    }
}

/// Decodes a header with protobuf rules: fields in any order, the last occurrence wins, unknown
/// fields are skipped. Fails on a malformed entry, a known field with the wrong wire type, a group,
/// field number 0, or a missing `message_length` (a required field).
pub(crate) fn parse(header: &[u8]) -> Option<HeaderFields<'_>> {
    let mut fields = HeaderFields::default();
    let mut has_length = false;
    let mut pos = 0;
    while pos < header.len() {
        let key = read_varint(header, &mut pos)?;
        let (field, wire_type) = (key >> 3, key & 7);
        match (field, wire_type) {
            (0, _) => return None,
            (1, WT_VARINT) => {
                fields.message_length = read_varint(header, &mut pos)?;
                has_length = true;
            }
            // Go truncates these varints to 32 bits; so do we.
            (3, WT_VARINT) => fields.hash_function = read_varint(header, &mut pos)? as i32,
            (5, WT_VARINT) => fields.key_version = read_varint(header, &mut pos)? as u32,
            (4, WT_LEN) => fields.signer = read_len(header, &mut pos)?,
            (6, WT_LEN) => fields.hmac = Some(read_len(header, &mut pos)?),
            (CHECKSUM_FIELD, WT_FIXED32) => {
                let end = skip(header, pos, 4)?;
                let bytes = header[pos..end].try_into().ok()?;
                fields.checksum = Some(u32::from_le_bytes(bytes));
                pos = end;
            }
            (1 | 3..=6, _) => return None,
            (_, WT_VARINT) => {
                read_varint(header, &mut pos)?;
            }
            (_, WT_LEN) => {
                read_len(header, &mut pos)?;
            }
            (_, WT_FIXED64) => pos = skip(header, pos, 8)?,
            (_, WT_FIXED32) => pos = skip(header, pos, 4)?,
            _ => return None,
        }
    }
    has_length.then_some(fields)
}

#[inline]
fn skip(buf: &[u8], pos: usize, n: usize) -> Option<usize> {
    let end = pos.checked_add(n)?;
    (end <= buf.len()).then_some(end)
}

#[inline]
fn read_len<'a>(buf: &'a [u8], pos: &mut usize) -> Option<&'a [u8]> {
    let len = usize::try_from(read_varint(buf, pos)?).ok()?;
    let end = skip(buf, *pos, len)?;
    let bytes = &buf[*pos..end];
    *pos = end;
    Some(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{Header, HmacHashFunction};
    use prost::Message as _;

    #[test]
    fn parse_agrees_with_prost() {
        let header = Header {
            message_length: 300,
            hmac_hash_function: Some(HmacHashFunction::Sha1 as i32),
            hmac_signer: Some("ops".into()),
            hmac_key_version: Some(7),
            hmac: Some(vec![1, 2, 3]),
        };
        let bytes = header.encode_to_vec();
        let f = parse(&bytes).unwrap();
        assert_eq!(f.message_length, 300);
        assert_eq!(f.hash_function, 1);
        assert_eq!(f.signer, b"ops");
        assert_eq!(f.key_version, 7);
        assert_eq!(f.hmac, Some(&[1u8, 2, 3][..]));
        assert_eq!(plain_length(&bytes), None);

        let plain = Header {
            message_length: 5,
            ..Default::default()
        }
        .encode_to_vec();
        assert_eq!(plain_length(&plain), Some((5, None)));
        assert_eq!(parse(&plain).unwrap().hmac, None);
    }

    /// Heka's `Header` plus hekate's field, as a protobuf schema would declare it.
    #[derive(Clone, PartialEq, prost::Message)]
    struct ChecksummedHeader {
        #[prost(uint32, required, tag = "1")]
        message_length: u32,
        #[prost(fixed32, optional, tag = "15")]
        checksum: Option<u32>,
    }

    #[test]
    fn checksum_field_is_fixed32_number_15() {
        let bytes = ChecksummedHeader {
            message_length: 300,
            checksum: Some(0xDEAD_BEEF),
        }
        .encode_to_vec();
        assert_eq!(
            bytes,
            [0x08, 0xAC, 0x02, KEY_CHECKSUM, 0xEF, 0xBE, 0xAD, 0xDE]
        );
        assert_eq!(plain_length(&bytes), Some((300, Some(0xDEAD_BEEF))));
        let f = parse(&bytes).unwrap();
        assert_eq!((f.message_length, f.checksum), (300, Some(0xDEAD_BEEF)));
        // Heka's own schema ignores the field: the header still decodes, length intact.
        let heka = Header::decode(&bytes[..]).unwrap();
        assert_eq!(heka.message_length, 300);
        assert_eq!(heka.hmac, None);
        // Field 15 with another wire type is someone else's field: skipped, not a checksum.
        let f = parse(&[0x08, 0x01, 0x78, 0x05]).unwrap();
        assert_eq!(f.checksum, None);
        // A short checksum is malformed.
        assert_eq!(parse(&[0x08, 0x01, KEY_CHECKSUM, 1, 2, 3]), None);
        assert_eq!(plain_length(&[0x08, 0x01, KEY_CHECKSUM, 1, 2, 3]), None);
    }

    #[test]
    fn parse_rejects_malformed_headers() {
        assert_eq!(parse(&[]), None, "missing message_length");
        assert_eq!(parse(&[0x18, 0x01]), None, "missing message_length");
        assert_eq!(parse(&[0x0a, 0x00]), None, "message_length as bytes");
        assert_eq!(parse(&[0x08]), None, "truncated varint");
        assert_eq!(parse(&[0x08, 0x01, 0x32, 0x05, 0x00]), None, "short hmac");
        assert_eq!(parse(&[0x08, 0x01, 0x0b]), None, "group");
        assert_eq!(parse(&[0x00, 0x01]), None, "field 0");
        // Unknown fields of every wire type are skipped.
        let f = parse(&[
            0x08, 0x02, 0x10, 0x05, 0x39, 0, 0, 0, 0, 0, 0, 0, 0, 0x7d, 0, 0, 0, 0,
        ]);
        assert_eq!(f.map(|f| f.message_length), Some(2));
    }
}
