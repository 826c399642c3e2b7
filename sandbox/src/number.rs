//! Heka's number formatting for everything a sandbox writes (`add_to_payload`, cbuf, cbufd), and
//! C's `%g` for the places that use it.

/// Appends `d` the way Heka's sandbox prints numbers (reference §5.7): `nan`, `inf`, `-inf`;
/// magnitudes up to `i32::MAX` in fixed point with at most 8 decimals, rounded (half to even on
/// an exact half), trailing zeros and a bare '.' dropped; larger magnitudes as `%0.17g`.
pub fn write_number(out: &mut Vec<u8>, d: f64) {
    if d.is_nan() {
        out.extend_from_slice(b"nan");
        return;
    }
    if d.is_infinite() {
        out.extend_from_slice(if d > 0.0 { b"inf" } else { b"-inf" });
        return;
    }
    const THRES_MAX: f64 = i32::MAX as f64;
    if !(-THRES_MAX..=THRES_MAX).contains(&d) {
        out.extend_from_slice(format_g(d, 17).as_bytes());
        return;
    }
    const PREC: usize = 8;
    const MAGNITUDE: f64 = 100_000_000.0;
    let neg = d < 0.0;
    let v = d.abs();
    let mut whole = v as i64; // |v| <= i32::MAX: exact truncation
    let tmp = (v - whole as f64) * MAGNITUDE;
    let mut frac = tmp as u64;
    let diff = tmp - frac as f64;
    if diff > 0.5 || (diff == 0.5 && frac & 1 == 1) {
        frac += 1;
    }
    if frac >= MAGNITUDE as u64 {
        frac = 0;
        whole += 1;
    }
    if neg {
        out.push(b'-');
    }
    let mut digits = itoa_buf(whole as u64);
    out.extend_from_slice(digits.as_slice());
    if frac != 0 {
        let mut count = PREC;
        while frac.is_multiple_of(10) {
            frac /= 10;
            count -= 1;
        }
        out.push(b'.');
        digits = itoa_buf(frac);
        for _ in digits.len..count {
            out.push(b'0');
        }
        out.extend_from_slice(digits.as_slice());
    }
}

/// Decimal digits of an unsigned integer, without allocating.
struct Digits {
    buf: [u8; 20],
    len: usize,
}

impl Digits {
    fn as_slice(&self) -> &[u8] {
        &self.buf[20 - self.len..]
    }
}

fn itoa_buf(mut n: u64) -> Digits {
    let mut d = Digits {
        buf: [0; 20],
        len: 0,
    };
    loop {
        d.len += 1;
        d.buf[20 - d.len] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return d;
        }
    }
}

/// Heka's number formatting as a `String`; see [`write_number`].
pub fn number_string(d: f64) -> String {
    let mut v = Vec::with_capacity(24);
    write_number(&mut v, d);
    // write_number only emits ASCII
    String::from_utf8(v).unwrap_or_default()
}

/// C's `printf("%.<precision>g", d)`: shortest of fixed and exponent form for `precision`
/// significant digits, trailing zeros removed; `nan`, `inf`, `-inf` for the special values.
pub fn format_g(d: f64, precision: usize) -> String {
    if d.is_nan() {
        return if d.is_sign_negative() { "-nan" } else { "nan" }.into();
    }
    if d.is_infinite() {
        return if d > 0.0 { "inf" } else { "-inf" }.into();
    }
    let p = precision.max(1);
    let sci = format!("{:.*e}", p - 1, d);
    let (mantissa, exp) = match sci.split_once('e') {
        Some((m, e)) => (m.to_owned(), e.parse::<i32>().unwrap_or(0)),
        None => (sci.clone(), 0),
    };
    if exp < -4 || exp >= p as i32 {
        let m = strip_zeros(&mantissa);
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{m}e{sign}{:02}", exp.unsigned_abs())
    } else {
        let decimals = (p as i32 - 1 - exp).max(0) as usize;
        strip_zeros(&format!("{d:.decimals$}")).to_owned()
    }
}

fn strip_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heka_number_format() {
        for (d, s) in [
            (1.0, "1"),
            (0.08, "0.08"),
            (-2.5, "-2.5"),
            (1.0 / 3.0, "0.33333333"),
            (2.0 / 3.0, "0.66666667"),
            (0.0, "0"),
            (-0.0, "0"),
            (100.0, "100"),
            (0.999999999, "1"),
            (1e-9, "0"),
            (123456.125, "123456.125"),
            (2147483647.0, "2147483647"),
            (2147483648.0, "2147483648"),
            (1e20, "1e+20"),
            (-3e15, "-3000000000000000"),
            (f64::NAN, "nan"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
            (0.001953125, "0.00195312"),
            (0.005859375, "0.00585938"),
        ] {
            assert_eq!(number_string(d), s, "{d}");
        }
    }

    #[test]
    fn percent_g() {
        assert_eq!(format_g(0.1, 17), "0.10000000000000001");
        assert_eq!(format_g(1e-5, 14), "1e-05");
        assert_eq!(format_g(123456789012.0, 14), "123456789012");
        assert_eq!(format_g(1.5, 14), "1.5");
        assert_eq!(format_g(1e15, 14), "1e+15");
        assert_eq!(format_g(0.0001, 14), "0.0001");
    }
}
