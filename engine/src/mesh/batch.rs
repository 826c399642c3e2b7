//! A batch of encoded messages: the unit that travels on a ring.
//!
//! One contiguous byte buffer plus one entry per message; the router copies each matched message
//! into the batch of its destination (one `memcpy`) together with the layout its view found, so
//! the consumer views the messages in place without scanning them again. Batches are recycled
//! through the ring's return lane, so steady traffic allocates nothing.

use hekate_model::message::{MessageView, ViewLayout};

/// Encoded messages with their layouts and loop counts.
#[derive(Debug, Default)]
pub struct Batch {
    data: Vec<u8>,
    entries: Vec<Entry>,
    /// The batch's number on its lane (1, 2, …, set by the router when it seals the batch):
    /// what the consumer acknowledges (see [`LaneCounters::acked`](super::LaneCounters::acked)).
    seq: u64,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    layout: ViewLayout,
    end: u32,
    loops: u8,
}

impl Batch {
    /// An empty batch with room for `messages` messages of `bytes` bytes in total.
    pub fn with_capacity(messages: usize, bytes: usize) -> Self {
        Batch {
            data: Vec::with_capacity(bytes),
            entries: Vec::with_capacity(messages),
            seq: 0,
        }
    }

    /// Appends a copy of the message `view` reads.
    #[inline]
    pub fn push(&mut self, view: &MessageView<'_>, loops: u8) {
        self.data.extend_from_slice(view.bytes());
        self.entries.push(Entry {
            layout: view.layout(),
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

    /// The batch's number on its lane.
    #[inline]
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Numbers the batch (the router, when it seals it).
    #[inline]
    pub fn set_seq(&mut self, seq: u64) {
        self.seq = seq;
    }

    /// Empties the batch, keeping its memory.
    pub fn clear(&mut self) {
        self.data.clear();
        self.entries.clear();
    }

    /// The messages, viewed again, and their loop counts, in order.
    pub fn iter(&self) -> impl Iterator<Item = (MessageView<'_>, u8)> + '_ {
        let mut start = 0usize;
        self.entries.iter().map(move |e| {
            let end = e.end as usize;
            let msg = &self.data[start..end];
            start = end;
            // The layout was taken from a view of these very bytes, so this cannot fail; were
            // the lengths to differ, `with_layout` would scan the bytes (and they parsed before).
            let view = MessageView::with_layout(msg, e.layout)
                .unwrap_or_else(|_| unreachable!("a batch holds only messages that were viewed"));
            (view, e.loops)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use hekate_model::message::{Field, FieldValue, Message, MessageAccess};

    fn encoded(ty: &str, payload: &str, fields: usize) -> Vec<u8> {
        let mut m = Message {
            r#type: Some(ty.to_owned()),
            timestamp: 1_700_000_000_000_000_000 + fields as i64,
            payload: Some(payload.to_owned()),
            ..Message::default()
        };
        for i in 0..fields {
            m.fields.push(Field::string(format!("f{i}"), "v"));
        }
        m.to_bytes()
    }

    #[test]
    fn keeps_messages_layouts_and_loops_in_order() {
        let msgs = [
            encoded("one", "first", 0),
            encoded("", "", 0),
            encoded("three", "third", 3),
        ];
        let mut b = Batch::with_capacity(4, 64);
        for (i, m) in msgs.iter().enumerate() {
            b.push(&MessageView::new(m).unwrap(), i as u8);
        }
        let got: Vec<_> = b.iter().collect();
        assert_eq!(got.len(), 3);
        for (i, ((view, loops), m)) in got.iter().zip(&msgs).enumerate() {
            let fresh = MessageView::new(m).unwrap();
            assert_eq!(view.bytes(), &m[..]);
            assert_eq!(view.layout(), fresh.layout());
            assert_eq!(view.msg_type(), fresh.msg_type());
            assert_eq!(view.payload(), fresh.payload());
            assert_eq!(view.timestamp(), fresh.timestamp());
            assert_eq!(view.field_count(), fresh.field_count());
            assert_eq!(*loops, i as u8);
        }
        assert_eq!(
            got[2].0.field_value(b"f2", 0, 0),
            Some(FieldValue::String(b"v"))
        );
        let total: usize = msgs.iter().map(Vec::len).sum();
        assert_eq!((b.len(), b.bytes()), (3, total));
        b.clear();
        assert!(b.is_empty());
    }
}
