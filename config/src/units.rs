//! Parsers for the unit-carrying strings of Heka configs: Go durations (`"250ms"`, `"1h30m"`) and
//! byte sizes (`"2MiB"`).

use std::time::Duration;

/// Parses a duration in Go's `time.ParseDuration` syntax, as Heka configs write them.
///
/// A sequence of decimal numbers, each with an optional fraction and a unit: `ns`, `us` (or `µs`),
/// `ms`, `s`, `m`, `h` — e.g. `"2m"`, `"250ms"`, `"1h30m"`, `"1.5s"`. `"0"` needs no unit.
/// Negative durations are refused: no Heka option means anything by them.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let s = text.strip_prefix('+').unwrap_or(text);
    if s.starts_with('-') {
        return Err(format!("duration \"{text}\" is negative"));
    }
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        return Err("duration is empty; write e.g. \"250ms\", \"30s\" or \"2m\"".into());
    }
    let invalid = || {
        format!("\"{text}\" is not a duration; write e.g. \"250ms\", \"30s\", \"2m\" or \"1h30m\"")
    };
    let mut rest = s;
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let int_len = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let (int_part, after) = rest.split_at(int_len);
        let (frac_part, after) = match after.strip_prefix('.') {
            Some(frac) => {
                let len = frac
                    .find(|c: char| !c.is_ascii_digit())
                    .unwrap_or(frac.len());
                frac.split_at(len)
            }
            None => ("", after),
        };
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(invalid());
        }
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        let nanos_per_unit: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "" => {
                return Err(format!(
                    "duration \"{text}\" is missing a unit (ns, us, ms, s, m, h)"
                ));
            }
            _ => {
                return Err(format!(
                    "duration \"{text}\" has unknown unit `{unit}` (use ns, us, ms, s, m or h)"
                ));
            }
        };
        let whole: u128 = if int_part.is_empty() {
            0
        } else {
            int_part.parse().map_err(|_| invalid())?
        };
        total = total
            .checked_add(whole.checked_mul(nanos_per_unit).ok_or_else(invalid)?)
            .ok_or_else(invalid)?;
        // Fractions beyond nanosecond precision are dropped, as Go does.
        let frac_digits = &frac_part[..frac_part.len().min(18)];
        if !frac_digits.is_empty() {
            let frac: u128 = frac_digits.parse().map_err(|_| invalid())?;
            total += frac * nanos_per_unit / 10u128.pow(frac_digits.len() as u32);
        }
        rest = after;
    }
    let secs = u64::try_from(total / 1_000_000_000).map_err(|_| invalid())?;
    Ok(Duration::new(secs, (total % 1_000_000_000) as u32))
}

/// Parses a byte size: a plain number of bytes, or a number with a unit.
///
/// Units (case-insensitive, optional space before them): `B`; binary `KiB`, `MiB`, `GiB`, `TiB`
/// and their one-letter forms `K`, `M`, `G`, `T`; decimal `KB`, `MB`, `GB`, `TB`.
/// Fractions are allowed (`"1.5MiB"`); the result is rounded down to whole bytes.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let invalid =
        || format!("\"{text}\" is not a byte size; write e.g. 65536, \"512KiB\" or \"2MiB\"");
    let s = text.trim();
    let num_len = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(num_len);
    if number.is_empty() {
        return Err(invalid());
    }
    let multiplier: u64 = match unit.trim_start().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "t" | "tib" => 1 << 40,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        _ => return Err(invalid()),
    };
    if let Ok(whole) = number.parse::<u64>() {
        return whole.checked_mul(multiplier).ok_or_else(invalid);
    }
    let value: f64 = number.parse().map_err(|_| invalid())?;
    let bytes = value * multiplier as f64;
    if !bytes.is_finite() || bytes >= u64::MAX as f64 {
        return Err(invalid());
    }
    Ok(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("720h"), Ok(Duration::from_secs(720 * 3600)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration(".5ms"), Ok(Duration::from_micros(500)));
        assert_eq!(parse_duration("10µs"), Ok(Duration::from_micros(10)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("7ns"), Ok(Duration::from_nanos(7)));
    }

    #[test]
    fn bad_durations() {
        for bad in ["", "abc", "5", "-1s", "1d", "s", "1.s.", "1x5s"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("65536"), Ok(65536));
        assert_eq!(parse_size("2MiB"), Ok(2 << 20));
        assert_eq!(parse_size("2 mib"), Ok(2 << 20));
        assert_eq!(parse_size("512K"), Ok(512 << 10));
        assert_eq!(parse_size("1GB"), Ok(1_000_000_000));
        assert_eq!(parse_size("1.5KiB"), Ok(1536));
        for bad in ["", "MiB", "2 parsecs", "-1", "1.2.3K"] {
            assert!(parse_size(bad).is_err(), "{bad:?} accepted");
        }
    }
}
