//! Message sizes and the deterministic randomness behind the generated messages.
//!
//! A load is reproducible: the same seed, format and size distribution give byte-identical
//! messages (apart from the sequence numbers and send times patched in when they are sent).

use std::fmt;
use std::str::FromStr;

/// A small, fast, seedable generator (SplitMix64): good enough to vary message contents, and
/// deterministic so that two runs send the same bytes.
#[derive(Clone, Debug)]
pub struct Prng(u64);

impl Prng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Prng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        // Multiply-shift: unbiased enough for picking message contents.
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// A number in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    /// One element of `items`, chosen with the given weights.
    pub fn weighted<'a, T>(&mut self, items: &'a [(T, u32)]) -> &'a T {
        let total: u64 = items.iter().map(|(_, w)| u64::from(*w)).sum();
        let mut pick = self.below(total.max(1));
        for (item, w) in items {
            if pick < u64::from(*w) {
                return item;
            }
            pick -= u64::from(*w);
        }
        &items[items.len() - 1].0
    }

    /// One element of `items`, uniformly.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// How big the generated messages are: the encoded size of each message (the protobuf bytes of a
/// Heka message, or the line without its framing for text formats).
///
/// Written on the command line as
/// - `300`: every message 300 bytes;
/// - `200-400`: uniform between 200 and 400 bytes;
/// - `200:70,1000:25,8000:5`: 70 % of 200 bytes, 25 % of 1000, 5 % of 8000.
///
/// A size below the smallest message a format can produce gives that smallest message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SizeDist {
    /// Every message this size.
    Fixed(usize),
    /// Uniform between the bounds, inclusive.
    Uniform(usize, usize),
    /// Sizes with relative weights.
    Weighted(Vec<(usize, u32)>),
}

impl SizeDist {
    /// Draws one size.
    pub fn sample(&self, rng: &mut Prng) -> usize {
        match self {
            SizeDist::Fixed(n) => *n,
            SizeDist::Uniform(lo, hi) => rng.range(*lo as u64, *hi as u64) as usize,
            SizeDist::Weighted(items) => *rng.weighted(items),
        }
    }

    /// The mean size.
    pub fn mean(&self) -> f64 {
        match self {
            SizeDist::Fixed(n) => *n as f64,
            SizeDist::Uniform(lo, hi) => (*lo + *hi) as f64 / 2.0,
            SizeDist::Weighted(items) => {
                let total: f64 = items.iter().map(|(_, w)| f64::from(*w)).sum();
                items
                    .iter()
                    .map(|(s, w)| *s as f64 * f64::from(*w))
                    .sum::<f64>()
                    / total
            }
        }
    }

    /// The largest size drawn.
    pub fn max(&self) -> usize {
        match self {
            SizeDist::Fixed(n) => *n,
            SizeDist::Uniform(_, hi) => *hi,
            SizeDist::Weighted(items) => items.iter().map(|(s, _)| *s).max().unwrap_or(0),
        }
    }
}

/// A size distribution that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "bad size distribution `{0}`: expected a size (300), a range (200-400) or weighted sizes (200:70,1000:30)"
)]
pub struct BadSizeDist(String);

impl FromStr for SizeDist {
    type Err = BadSizeDist;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BadSizeDist(s.to_owned());
        let num = |t: &str| t.trim().parse::<usize>().map_err(|_| bad());
        let dist = if s.contains(':') {
            let mut items = Vec::new();
            for part in s.split(',') {
                let (size, weight) = part.split_once(':').ok_or_else(bad)?;
                let weight: u32 = weight.trim().parse().map_err(|_| bad())?;
                items.push((num(size)?, weight));
            }
            if items.iter().all(|(_, w)| *w == 0) {
                return Err(bad());
            }
            SizeDist::Weighted(items)
        } else if let Some((lo, hi)) = s.split_once('-') {
            let (lo, hi) = (num(lo)?, num(hi)?);
            if lo > hi {
                return Err(bad());
            }
            SizeDist::Uniform(lo, hi)
        } else {
            SizeDist::Fixed(num(s)?)
        };
        if dist.max() == 0 || dist.max() > 1 << 20 {
            return Err(bad());
        }
        Ok(dist)
    }
}

impl fmt::Display for SizeDist {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SizeDist::Fixed(n) => write!(f, "{n}"),
            SizeDist::Uniform(lo, hi) => write!(f, "{lo}-{hi}"),
            SizeDist::Weighted(items) => {
                for (i, (s, w)) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{s}:{w}")?;
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_every_form() {
        for s in ["300", "200-400", "200:70,1000:25,8000:5"] {
            assert_eq!(s.parse::<SizeDist>().unwrap().to_string(), s);
        }
        for bad in ["", "x", "400-200", "0", "200:0", "1:x", "99999999"] {
            assert!(bad.parse::<SizeDist>().is_err(), "{bad}");
        }
    }

    #[test]
    fn weighted_sizes_follow_their_weights() {
        let d: SizeDist = "100:3,900:1".parse().unwrap();
        let mut rng = Prng::new(7);
        let n = 40_000;
        let big = (0..n).filter(|_| d.sample(&mut rng) == 900).count();
        assert!((big as f64 / n as f64 - 0.25).abs() < 0.02, "{big}");
        assert_eq!(d.mean(), 300.0);
    }
}
