//! A batch of encoded messages: the unit that travels on a ring.
//!
//! One contiguous byte buffer plus one small entry per message; the router copies each matched
//! message into the batch of its destination (one `memcpy`), the consumer views the messages in
//! place. Batches are recycled through the ring's return lane, so steady traffic allocates
//! nothing.

/// Encoded messages with their loop counts.
#[derive(Debug, Default)]
pub struct Batch {
    data: Vec<u8>,
    entries: Vec<Entry>,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    end: u32,
    loops: u8,
}

impl Batch {
    /// An empty batch with room for `messages` messages of `bytes` bytes in total.
    pub fn with_capacity(messages: usize, bytes: usize) -> Self {
        Batch {
            data: Vec::with_capacity(bytes),
            entries: Vec::with_capacity(messages),
        }
    }

    /// Appends one message.
    #[inline]
    pub fn push(&mut self, msg: &[u8], loops: u8) {
        self.data.extend_from_slice(msg);
        self.entries.push(Entry {
            end: self.data.len() as u32,
            loops,
        });
    }

    /// Number of messages.
    #[inline]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the batch holds no message.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Bytes of message data.
    #[inline]
    pub fn bytes(&self) -> usize {
        self.data.len()
    }

    /// Empties the batch, keeping its memory.
    pub fn clear(&mut self) {
        self.data.clear();
        self.entries.clear();
    }

    /// The messages and their loop counts, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], u8)> + '_ {
        let mut start = 0usize;
        self.entries.iter().map(move |e| {
            let end = e.end as usize;
            let msg = &self.data[start..end];
            start = end;
            (msg, e.loops)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_messages_and_loops_in_order() {
        let mut b = Batch::with_capacity(4, 64);
        b.push(b"one", 0);
        b.push(b"", 1);
        b.push(b"three", 2);
        let got: Vec<_> = b.iter().collect();
        assert_eq!(got, [(&b"one"[..], 0), (&b""[..], 1), (&b"three"[..], 2)]);
        assert_eq!((b.len(), b.bytes()), (3, 8));
        b.clear();
        assert!(b.is_empty());
    }
}
