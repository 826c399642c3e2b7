//! Protobuf base-128 varints: the one codec of the workspace.
//!
//! Encoding and decoding are prost's (`prost::encoding`), so a varint hekate reads or writes by
//! hand (the lazy view, the framing header, the message writer, the sandbox's raw tables) follows
//! the same rules as the messages prost decodes: at most 10 bytes, no value above `u64::MAX`,
//! non-minimal encodings accepted. This module only adapts prost's `Buf` interface to the
//! `(buffer, position)` cursors the hand-written parsers use, and names the two ways a varint
//! can be malformed.

use prost::encoding::encode_varint;

/// The largest number of bytes a varint takes.
pub const MAX_LEN: usize = 10;

/// Why a varint could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VarintError {
    /// The bytes end before the varint does.
    #[error("varint truncated")]
    Truncated,
    /// Longer than 10 bytes, or a value above `u64::MAX`.
    #[error("varint longer than 10 bytes or above 2^64")]
    Overflow,
}

/// Number of bytes the encoding of `v` takes (1 to 10).
#[inline]
pub const fn encoded_len(v: u64) -> usize {
    prost::encoding::encoded_len_varint(v)
}

/// Appends the encoding of `v` to `out`.
#[inline(always)]
pub fn put(out: &mut Vec<u8>, v: u64) {
    // Written here rather than by prost's `encode_varint`, which is not inlined and pushes byte by
    // byte: the message writer's hot path. The tests hold it to prost's encoding.
    if v < 0x80 {
        out.push(v as u8);
    } else if v < 0x4000 {
        out.extend_from_slice(&[v as u8 | 0x80, (v >> 7) as u8]);
    } else {
        // Timestamps: nine bytes, assembled on the stack and appended at once.
        let mut buf = [0u8; MAX_LEN];
        let mut v = v;
        let mut i = 0;
        while v >= 0x80 {
            buf[i] = v as u8 | 0x80;
            v >>= 7;
            i += 1;
        }
        buf[i] = v as u8;
        out.extend_from_slice(&buf[..=i]);
    }
}

/// Writes the encoding of `v` at the start of `out` and returns how many bytes it took.
///
/// # Panics
/// When `out` is shorter than [`encoded_len`]`(v)`.
#[inline]
pub fn write(out: &mut [u8], v: u64) -> usize {
    let room = out.len();
    let mut rest = out;
    encode_varint(v, &mut rest);
    room - rest.len()
}

/// Writes `v` as a varint of exactly `width` bytes at the start of `out`, padding small values
/// with continuation bytes (a non-minimal encoding, which every protobuf decoder accepts). Load
/// generators use it to patch numbers into pre-encoded messages in place.
///
/// # Panics
/// When `width` is 0 or above [`MAX_LEN`], or `out` is shorter than `width`. Bits of `v` that do
/// not fit in `7 * width` bits are dropped.
pub fn write_padded(out: &mut [u8], mut v: u64, width: usize) {
    assert!((1..=MAX_LEN).contains(&width), "varint width {width}");
    let (last, head) = out[..width].split_last_mut().expect("width >= 1");
    for b in head {
        *b = (v as u8 & 0x7f) | 0x80;
        v >>= 7;
    }
    *last = v as u8 & 0x7f;
}

/// Reads the varint at `buf[*pos..]` and advances `*pos` past it; `*pos` is left alone on error.
#[inline(always)]
pub fn read(buf: &[u8], pos: &mut usize) -> Result<u64, VarintError> {
    // A plain loop, inlined at every call: on the message view's hot path it costs fewer
    // instructions than prost's `decode_varint` through `Buf` (`scripts/bench cost`, see
    // bench/RESULTS.md). The tests below hold it to prost's results and errors.
    let start = *pos;
    let mut result = 0u64;
    for i in 0..MAX_LEN {
        let Some(&b) = buf.get(start + i) else {
            return Err(VarintError::Truncated);
        };
        if i == MAX_LEN - 1 {
            // The tenth byte holds bit 63 only.
            if b > 1 {
                return Err(VarintError::Overflow);
            }
            *pos = start + MAX_LEN;
            return Ok(result | (u64::from(b) << 63));
        }
        result |= u64::from(b & 0x7f) << (7 * i);
        if b < 0x80 {
            *pos = start + i + 1;
            return Ok(result);
        }
    }
    unreachable!("the tenth byte returns")
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLES: [u64; 12] = [
        0,
        1,
        127,
        128,
        300,
        16_383,
        16_384,
        (1 << 21) - 1,
        1 << 21,
        u32::MAX as u64,
        i64::MAX as u64,
        u64::MAX,
    ];

    #[test]
    fn round_trip_with_the_encoded_length() {
        for v in SAMPLES {
            let mut out = vec![0xAA];
            put(&mut out, v);
            assert_eq!(out.len() - 1, encoded_len(v), "{v}");
            let mut pos = 1;
            assert_eq!(read(&out, &mut pos), Ok(v), "{v}");
            assert_eq!(pos, out.len(), "{v}");

            let mut fixed = [0u8; MAX_LEN];
            assert_eq!(write(&mut fixed, v), encoded_len(v), "{v}");
            assert_eq!(&fixed[..encoded_len(v)], &out[1..], "{v}");
        }
    }

    #[test]
    fn known_encodings() {
        let enc = |v| {
            let mut out = Vec::new();
            put(&mut out, v);
            out
        };
        assert_eq!(enc(0), [0x00]);
        assert_eq!(enc(150), [0x96, 0x01]);
        assert_eq!(enc(300), [0xAC, 0x02]);
        assert_eq!(
            enc(u64::MAX),
            [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]
        );
        // A negative int32/int64 is sign-extended to 10 bytes, as protobuf requires.
        assert_eq!(enc(-1i64 as u64).len(), 10);
    }

    #[test]
    fn reads_a_varint_in_the_middle_of_a_buffer() {
        let buf = [0x08, 0xAC, 0x02, 0x10];
        let mut pos = 1;
        assert_eq!(read(&buf, &mut pos), Ok(300));
        assert_eq!(pos, 3);
        assert_eq!(read(&buf, &mut pos), Ok(0x10));
        assert_eq!(pos, 4);
        assert_eq!(read(&buf, &mut pos), Err(VarintError::Truncated));
        assert_eq!(pos, 4);
    }

    #[test]
    fn truncated_and_overlong_varints_are_refused() {
        let mut pos = 0;
        assert_eq!(read(&[], &mut pos), Err(VarintError::Truncated));
        assert_eq!(read(&[0x80], &mut pos), Err(VarintError::Truncated));
        assert_eq!(read(&[0xFF; 9], &mut pos), Err(VarintError::Truncated));
        assert_eq!(read(&[0x80; 10], &mut pos), Err(VarintError::Overflow));
        assert_eq!(read(&[0x80; 11], &mut pos), Err(VarintError::Overflow));
        // Ten bytes whose last one carries bits above 2^64.
        let mut above = [0xFF; 10];
        above[9] = 0x02;
        assert_eq!(read(&above, &mut pos), Err(VarintError::Overflow));
        assert_eq!(pos, 0, "a failed read does not move the cursor");
        // The same, followed by more bytes: still refused, not read as a shorter value.
        assert_eq!(
            read(&[&above[..], &[0x00; 4]].concat(), &mut pos),
            Err(VarintError::Overflow)
        );
    }

    #[test]
    fn padded_varints_read_back_as_their_value() {
        for (v, width) in [
            (0u64, 1),
            (0, 6),
            (300, 6),
            ((1 << 42) - 1, 6),
            (i64::MAX as u64, 9),
        ] {
            let mut b = [0u8; MAX_LEN + 1];
            write_padded(&mut b, v, width);
            let mut pos = 0;
            assert_eq!(read(&b, &mut pos), Ok(v), "{v} in {width}");
            assert_eq!(pos, width, "{v} in {width}");
        }
        let mut b = [0u8; 6];
        write_padded(&mut b, 300, 6);
        assert_eq!(b, [0xAC, 0x82, 0x80, 0x80, 0x80, 0x00]);
    }

    #[test]
    fn reads_agree_with_prost_message_decoding() {
        use prost::Message as _;
        // A one-field message (`uint64 x = 1`) decodes exactly when its varint does.
        #[derive(Clone, PartialEq, prost::Message)]
        struct One {
            #[prost(uint64, tag = "1")]
            x: u64,
        }
        let mut cases: Vec<Vec<u8>> = SAMPLES
            .iter()
            .map(|&v| {
                let mut b = Vec::new();
                put(&mut b, v);
                b
            })
            .collect();
        cases.extend([vec![0x80], vec![0x80; 10], vec![0xFF; 10], vec![0x81, 0x00]]);
        for varint in cases {
            let msg = [&[0x08][..], &varint].concat();
            // The message is one field only when the varint is the whole rest of it.
            let mut pos = 0;
            let ours = read(&varint, &mut pos).ok().filter(|_| pos == varint.len());
            let prost = One::decode(&msg[..]).ok().map(|m| m.x);
            assert_eq!(ours, prost, "{varint:02x?}");
        }
    }

    proptest::proptest! {
        /// On any bytes, a read gives prost's value and length, or fails where prost fails.
        #[test]
        fn reads_agree_with_prost_on_any_bytes(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..12)) {
            let mut pos = 0;
            let ours = read(&bytes, &mut pos).map(|v| (v, pos));
            let mut rest = &bytes[..];
            let theirs = prost::encoding::decode_varint(&mut rest).map(|v| (v, bytes.len() - rest.len()));
            proptest::prop_assert_eq!(ours.ok(), theirs.ok());
        }
    }
}
