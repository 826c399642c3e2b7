//! Writing Heka messages straight into a reused buffer, without building a prost struct: for
//! inputs that turn payloads into messages on the hot path.

use std::cell::RefCell;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::message::UUID_SIZE;
use crate::varint;

/// Nanoseconds since the Unix epoch.
pub fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

thread_local! {
    /// Seeded once per thread from the operating system (one `getrandom` call), then drawn from
    /// without a syscall. fastrand's own thread-local generator is seeded from the clock and the
    /// thread id only, which two processes can share.
    static UUID_RNG: RefCell<fastrand::Rng> = RefCell::new(fastrand::Rng::with_seed(os_seed()));
}

fn os_seed() -> u64 {
    let bytes = uuid::Uuid::new_v4().into_bytes();
    u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes"))
}

/// A random version-4 UUID, without a syscall: every UUID hekate makes comes from here. Its
/// uniqueness, not its secrecy, is what Heka needs.
pub fn random_uuid() -> [u8; UUID_SIZE] {
    let mut bytes = [0u8; UUID_SIZE];
    UUID_RNG.with_borrow_mut(|rng| rng.fill(&mut bytes));
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .into_bytes()
}

/// Appends the fields of one encoded Heka message to a buffer, in any order the caller likes
/// (tags may come in any order on the wire). Strings are written as given: callers pass UTF-8.
#[derive(Debug)]
pub struct MessageWriter<'a> {
    out: &'a mut Vec<u8>,
}

impl<'a> MessageWriter<'a> {
    /// Writes into `out` (appending).
    pub fn new(out: &'a mut Vec<u8>) -> Self {
        Self { out }
    }

    fn bytes(&mut self, tag: u8, v: &[u8]) -> &mut Self {
        self.out.push((tag << 3) | 2);
        varint::put(self.out, v.len() as u64);
        self.out.extend_from_slice(v);
        self
    }

    fn varint(&mut self, tag: u8, v: u64) -> &mut Self {
        self.out.push(tag << 3);
        varint::put(self.out, v);
        self
    }

    /// `uuid` (tag 1).
    pub fn uuid(&mut self, raw: &[u8]) -> &mut Self {
        self.bytes(1, raw)
    }
    /// `timestamp` (tag 2).
    pub fn timestamp(&mut self, ns: i64) -> &mut Self {
        self.varint(2, ns as u64)
    }
    /// `type` (tag 3).
    pub fn msg_type(&mut self, v: &[u8]) -> &mut Self {
        self.bytes(3, v)
    }
    /// `logger` (tag 4).
    pub fn logger(&mut self, v: &[u8]) -> &mut Self {
        self.bytes(4, v)
    }
    /// `severity` (tag 5).
    pub fn severity(&mut self, v: i32) -> &mut Self {
        self.varint(5, v as i64 as u64)
    }
    /// `payload` (tag 6).
    pub fn payload(&mut self, v: &[u8]) -> &mut Self {
        self.bytes(6, v)
    }
    /// `env_version` (tag 7).
    pub fn env_version(&mut self, v: &[u8]) -> &mut Self {
        self.bytes(7, v)
    }
    /// `pid` (tag 8).
    pub fn pid(&mut self, v: i32) -> &mut Self {
        self.varint(8, v as i64 as u64)
    }
    /// `hostname` (tag 9).
    pub fn hostname(&mut self, v: &[u8]) -> &mut Self {
        self.bytes(9, v)
    }

    /// Appends bytes that are already encoded message fields (e.g. fields written once by
    /// another writer and added to many messages).
    pub fn raw(&mut self, encoded: &[u8]) -> &mut Self {
        self.out.extend_from_slice(encoded);
        self
    }

    /// A one-value field of the given wire layout (tag 10).
    fn field(&mut self, name: &[u8], value_type: u8, value: impl Fn(&mut Vec<u8>)) -> &mut Self {
        self.field_with(name, value_type, b"", value)
    }

    fn field_with(
        &mut self,
        name: &[u8],
        value_type: u8,
        representation: &[u8],
        value: impl Fn(&mut Vec<u8>),
    ) -> &mut Self {
        let mut body = Vec::new();
        body.push(0x0a);
        varint::put(&mut body, name.len() as u64);
        body.extend_from_slice(name);
        if value_type != 0 {
            body.push(0x10);
            body.push(value_type);
        }
        if !representation.is_empty() {
            body.push(0x1a);
            varint::put(&mut body, representation.len() as u64);
            body.extend_from_slice(representation);
        }
        value(&mut body);
        self.bytes(10, &body)
    }

    /// A STRING field with one value.
    pub fn field_string(&mut self, name: &str, v: &str) -> &mut Self {
        self.field(name.as_bytes(), 0, |b| {
            b.push(0x22);
            varint::put(b, v.len() as u64);
            b.extend_from_slice(v.as_bytes());
        })
    }

    /// An INTEGER field with one value.
    pub fn field_int(&mut self, name: &str, v: i64) -> &mut Self {
        self.field(name.as_bytes(), 2, |b| {
            b.push(0x32);
            varint::put(b, varint::encoded_len(v as u64) as u64);
            varint::put(b, v as u64);
        })
    }

    /// An INTEGER field with one value and a representation (a unit such as "B").
    pub fn field_int_as(&mut self, name: &str, v: i64, representation: &str) -> &mut Self {
        self.field_with(name.as_bytes(), 2, representation.as_bytes(), |b| {
            b.push(0x32);
            varint::put(b, varint::encoded_len(v as u64) as u64);
            varint::put(b, v as u64);
        })
    }

    /// A BOOL field with one value.
    pub fn field_bool(&mut self, name: &str, v: bool) -> &mut Self {
        self.field(name.as_bytes(), 4, |b| {
            b.extend_from_slice(&[0x42, 1, u8::from(v)]);
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{FieldValue, Message, MessageAccess, MessageView, uuid_string};

    #[test]
    fn written_messages_decode_with_prost_and_the_view() {
        let uuid = random_uuid();
        let mut buf = vec![];
        MessageWriter::new(&mut buf)
            .uuid(&uuid)
            .timestamp(1_700_000_000_000_000_000)
            .msg_type(b"t")
            .logger(b"in")
            .severity(3)
            .payload(b"hello")
            .pid(-5)
            .hostname(b"h")
            .field_string("s", "v")
            .field_int("i", -300)
            .field_int_as("bytes", 4096, "B")
            .field_bool("b", true);
        let msg = Message::decode_bytes(&buf).unwrap();
        assert_eq!(msg.payload.as_deref(), Some("hello"));
        assert_eq!(msg.pid, Some(-5));
        assert_eq!(uuid_string(&msg.uuid).as_bytes()[14], b'4');
        let view = MessageView::new(&buf).unwrap();
        assert_eq!(
            view.field_value(b"i", 0, 0),
            Some(FieldValue::Integer(-300))
        );
        assert_eq!(view.field_value(b"b", 0, 0), Some(FieldValue::Bool(true)));
        assert_eq!(view.field_value(b"s", 0, 0), Some(FieldValue::String(b"v")));
        let bytes = msg.fields.iter().find(|f| f.name == "bytes").unwrap();
        assert_eq!(bytes.representation.as_deref(), Some("B"));
        assert_eq!(bytes.value_integer, [4096]);
    }

    #[test]
    fn random_uuids_are_version_4_and_distinct_across_threads() {
        let mine: Vec<_> = (0..1000).map(|_| random_uuid()).collect();
        let theirs: Vec<_> = std::thread::spawn(|| (0..1000).map(|_| random_uuid()).collect())
            .join()
            .unwrap();
        let mut all: Vec<[u8; UUID_SIZE]> = mine.iter().chain(&theirs).copied().collect();
        for u in &all {
            let parsed = uuid::Uuid::from_bytes(*u);
            assert_eq!(parsed.get_version(), Some(uuid::Version::Random));
            assert_eq!(parsed.get_variant(), uuid::Variant::RFC4122);
        }
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), 2000, "every UUID is unique");
    }
}
