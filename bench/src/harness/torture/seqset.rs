//! Sets of messages, each message named by its stamp (connection id, sequence number): one
//! bitmap per connection, as [`crate::check::SeqChecker`] keeps, but with set operations.

use std::collections::BTreeMap;

use crate::check::SEQ_LIMIT;

/// A set of (connection, sequence number) pairs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SeqSet {
    conns: BTreeMap<u64, Vec<u64>>,
    len: u64,
}

impl SeqSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a message; false when it was there already (or its number is unbelievable).
    pub fn insert(&mut self, conn: u64, seq: u64) -> bool {
        if seq >= SEQ_LIMIT {
            return false;
        }
        let words = self.conns.entry(conn).or_default();
        let (word, bit) = ((seq / 64) as usize, 1u64 << (seq % 64));
        if word >= words.len() {
            let want = (word + 1).max(words.len() * 2);
            words.resize(want, 0);
        }
        if words[word] & bit != 0 {
            return false;
        }
        words[word] |= bit;
        self.len += 1;
        true
    }

    /// Whether the message is in the set.
    pub fn contains(&self, conn: u64, seq: u64) -> bool {
        let Some(words) = self.conns.get(&conn) else {
            return false;
        };
        words
            .get((seq / 64) as usize)
            .is_some_and(|w| w & (1u64 << (seq % 64)) != 0)
    }

    /// Number of messages.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Every message, by connection, then sequence number.
    pub fn iter(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.conns.iter().flat_map(|(&conn, words)| {
            words.iter().enumerate().flat_map(move |(i, &w)| {
                (0..64)
                    .filter(move |b| w & (1u64 << b) != 0)
                    .map(move |b| (conn, i as u64 * 64 + b))
            })
        })
    }

    /// Adds every message of `other`.
    pub fn extend(&mut self, other: &SeqSet) {
        for (conn, seq) in other.iter() {
            self.insert(conn, seq);
        }
    }

    /// The messages of this set that are not in `other`.
    pub fn minus(&self, other: &SeqSet) -> SeqSet {
        let mut out = SeqSet::new();
        for (conn, seq) in self.iter() {
            if !other.contains(conn, seq) {
                out.insert(conn, seq);
            }
        }
        out
    }

    /// The messages in both sets.
    pub fn intersection(&self, other: &SeqSet) -> SeqSet {
        let mut out = SeqSet::new();
        for (conn, seq) in self.iter() {
            if other.contains(conn, seq) {
                out.insert(conn, seq);
            }
        }
        out
    }

    /// The highest sequence number of each connection.
    pub fn max_by_conn(&self) -> BTreeMap<u64, u64> {
        let mut out = BTreeMap::new();
        for (conn, seq) in self.iter() {
            out.insert(conn, seq);
        }
        out
    }

    /// The runs of consecutive sequence numbers, per connection: `(conn, first, last)`.
    pub fn runs(&self) -> Vec<(u64, u64, u64)> {
        let mut out: Vec<(u64, u64, u64)> = Vec::new();
        for (conn, seq) in self.iter() {
            match out.last_mut() {
                Some((c, _, last)) if *c == conn && *last + 1 == seq => *last = seq,
                _ => out.push((conn, seq, seq)),
            }
        }
        out
    }

    /// Up to `n` members, written `conn/seq`, for a report.
    pub fn sample(&self, n: usize) -> String {
        let mut parts: Vec<String> = self
            .runs()
            .iter()
            .take(n)
            .map(|&(c, a, b)| {
                if a == b {
                    format!("{c}/{a}")
                } else {
                    format!("{c}/{a}–{b}")
                }
            })
            .collect();
        if self.runs().len() > n {
            parts.push("…".into());
        }
        parts.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_operations() {
        let mut a = SeqSet::new();
        for s in [0, 1, 2, 3, 64, 65, 200] {
            assert!(a.insert(0, s));
        }
        assert!(!a.insert(0, 3));
        a.insert(7, 5);
        assert_eq!(a.len(), 8);
        let mut b = SeqSet::new();
        for s in [1, 2, 65] {
            b.insert(0, s);
        }
        let d = a.minus(&b);
        assert_eq!(
            d.iter().collect::<Vec<_>>(),
            vec![(0, 0), (0, 3), (0, 64), (0, 200), (7, 5)]
        );
        assert_eq!(a.intersection(&b), b);
        assert_eq!(
            a.runs(),
            vec![(0, 0, 3), (0, 64, 65), (0, 200, 200), (7, 5, 5)]
        );
        assert_eq!(a.sample(2), "0/0–3, 0/64–65, …");
        assert_eq!(a.max_by_conn().get(&0), Some(&200));
        let mut c = b.clone();
        c.extend(&a);
        assert_eq!(c, a);
        assert!(!a.contains(9, 0) && !a.contains(0, 1 << 20));
    }
}
