//! Small byte-string helpers for hot paths.

/// The first eight bytes of `b` as a little-endian word, zero-padded when `b` is shorter: the
/// same value a copy into a zeroed `[u8; 8]` gives, read with at most three loads and no call
/// to `memcpy` (whose byte stores then stall the word load that follows them).
#[inline]
pub fn head8(b: &[u8]) -> u64 {
    let n = b.len();
    if n >= 8 {
        u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
    } else if n >= 4 {
        // Two overlapping reads: the bytes they share agree, so OR-ing them is exact.
        let lo = u64::from(u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
        let hi = u64::from(u32::from_le_bytes([b[n - 4], b[n - 3], b[n - 2], b[n - 1]]));
        lo | hi << ((n - 4) * 8)
    } else if n > 0 {
        u64::from(b[0]) | u64::from(b[n / 2]) << (n / 2 * 8) | u64::from(b[n - 1]) << ((n - 1) * 8)
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::head8;

    #[test]
    fn head8_is_the_zero_padded_prefix() {
        let text = b"abcdefghijk\x00\xff\x80";
        for start in 0..text.len() {
            for end in start..=text.len() {
                let b = &text[start..end];
                let mut want = [0u8; 8];
                let n = b.len().min(8);
                want[..n].copy_from_slice(&b[..n]);
                assert_eq!(head8(b), u64::from_le_bytes(want), "{b:?}");
            }
        }
    }
}
