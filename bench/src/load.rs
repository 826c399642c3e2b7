//! What the generator sends: message formats, and the ring of pre-encoded messages.
//!
//! Encoding a message per send would make the generator the bottleneck, so each connection
//! builds a [`Ring`] once: a few thousand complete records (framing included) laid end to end in
//! one buffer, with varied realistic contents and sizes drawn from a [`SizeDist`]. Sending is
//! then "stamp a run of consecutive records, write them with one syscall": [`Ring::prepare`]
//! patches each record's sequence number and send time **in place, at fixed offsets**, and hands
//! back the byte range to write.
//!
//! Patching in place needs numbers of a fixed width:
//! - Heka protobuf: `seq` and `sent_ns` are INTEGER fields whose varints are padded to a fixed
//!   length (protobuf decoders accept non-minimal varints; prost and hekate's lazy view both do).
//!   The message `Timestamp` header is stamped with the send time too. Signed records get their
//!   HMAC recomputed after stamping.
//! - Text formats: `conn=3 seq=000000000123 sent_ns=1732484000123456789`, zero-padded; in JSON the
//!   numbers are right-aligned with spaces (`"seq":         123`), since JSON forbids leading zeros.
//!
//! Every message carries a connection id (`conn`) fixed when the ring is built, so a receiver can
//! check each connection's sequence on its own.

use std::fmt;
use std::ops::Range;
use std::str::FromStr;

use hekate_model::framing::{FramingError, SigningKey, encode_record};

use crate::sizes::{Prng, SizeDist};

/// The message formats the generator speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Heka-framed protobuf messages (TcpInput/UdpInput with the HekaFramingSplitter).
    Heka,
    /// BSD syslog lines (RFC 3164).
    Syslog3164,
    /// IETF syslog lines (RFC 5424).
    Syslog5424,
    /// statsd counters (`name:1|c`).
    Statsd,
    /// One JSON object per line.
    Json,
    /// nginx access lines (the `combined` format plus the request time), with the sequence
    /// number in the request path (`GET /seq/<n>`), for the Lua decoder of the `sandbox`
    /// workload.
    Nginx,
}

impl Format {
    /// Every format, in the order the CLI lists them.
    pub const ALL: [Format; 6] = [
        Format::Heka,
        Format::Syslog3164,
        Format::Syslog5424,
        Format::Statsd,
        Format::Json,
        Format::Nginx,
    ];

    /// The CLI name.
    pub fn name(self) -> &'static str {
        match self {
            Format::Heka => "heka",
            Format::Syslog3164 => "syslog3164",
            Format::Syslog5424 => "syslog5424",
            Format::Statsd => "statsd",
            Format::Json => "json",
            Format::Nginx => "nginx",
        }
    }

    /// Whether messages are text lines (everything but Heka protobuf).
    pub fn is_text(self) -> bool {
        self != Format::Heka
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Format::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| {
                format!("unknown format `{s}` (heka, syslog3164, syslog5424, statsd, json, nginx)")
            })
    }
}

/// How text lines are delimited in a stream.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Framing {
    /// Each line ends with `\n`.
    #[default]
    Newline,
    /// RFC 6587 octet counting: `<length> <line>`, no terminator.
    OctetCounted,
}

impl Framing {
    /// The CLI name.
    pub fn name(self) -> &'static str {
        match self {
            Framing::Newline => "newline",
            Framing::OctetCounted => "octet",
        }
    }
}

impl FromStr for Framing {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "newline" => Ok(Framing::Newline),
            "octet" => Ok(Framing::OctetCounted),
            _ => Err(format!("unknown framing `{s}` (newline, octet)")),
        }
    }
}

/// Everything that decides the bytes of a load, apart from the connection id.
#[derive(Clone, Debug)]
pub struct LoadSpec {
    /// Message format.
    pub format: Format,
    /// Line framing (text formats only).
    pub framing: Framing,
    /// Encoded message sizes.
    pub sizes: SizeDist,
    /// Signs Heka records with this key.
    pub signer: Option<SigningKey>,
    /// Seed of the contents; each connection mixes in its id.
    pub seed: u64,
    /// statsd only: append DogStatsD tags carrying `conn`, `seq` and `sent_ns`. Off by default,
    /// because aggregators fold tags into the metric name.
    pub statsd_tags: bool,
}

impl Default for LoadSpec {
    fn default() -> Self {
        LoadSpec {
            format: Format::Heka,
            framing: Framing::Newline,
            sizes: SizeDist::Fixed(300),
            signer: None,
            seed: 1,
            statsd_tags: false,
        }
    }
}

/// Width of the padded `seq` varint: sequence numbers up to 2^42.
pub const SEQ_VARINT_WIDTH: usize = 6;
/// Width of the padded `sent_ns` / Timestamp varint: any positive i64.
pub const TIME_VARINT_WIDTH: usize = 9;
/// Digits of a decimal `seq`.
pub const SEQ_DIGITS: usize = 12;
/// Digits of a decimal `sent_ns` (nanoseconds since 1970 have 19 digits until 2286).
pub const TIME_DIGITS: usize = 19;
/// The largest sequence number a stamp can hold.
pub const MAX_SEQ: u64 = (1 << (7 * SEQ_VARINT_WIDTH)) - 1;

/// How the numbers of a record are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum NumberStyle {
    /// Padded varints.
    Varint,
    /// Zero-padded decimal.
    ZeroPadded,
    /// Decimal right-aligned with spaces (JSON).
    SpacePadded,
    /// Nothing to stamp (statsd without tags).
    None,
}

/// Where one record sits in the ring and where its numbers go.
#[derive(Clone, Copy, Debug)]
struct Slot {
    start: u32,
    end: u32,
    seq_at: u32,
    /// `sent_ns` and, for Heka, the Timestamp header; `u32::MAX` when unused.
    time_at: [u32; 2],
    /// Signed Heka records: start of the message bytes and of the HMAC digest.
    signature: Option<(u32, u32)>,
}

/// Pre-encoded records for one connection, stamped and written in runs.
#[derive(Debug)]
pub struct Ring {
    bytes: Vec<u8>,
    slots: Vec<Slot>,
    style: NumberStyle,
    signer: Option<SigningKey>,
    conn: u32,
    /// Bytes of message data per record (without framing), for throughput accounting.
    message_bytes: Vec<u32>,
    scratch: Vec<u8>,
}

/// Why a ring could not be built.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A message does not fit Heka framing.
    #[error("cannot frame a generated message: {0}")]
    Framing(#[from] FramingError),
}

/// The fewest records a ring holds, so that contents and sizes vary.
pub const MIN_RING_RECORDS: usize = 2048;

impl Ring {
    /// Builds the ring of connection `conn`: at least [`MIN_RING_RECORDS`] records and at least
    /// `min_bytes` bytes (make it twice the write batch).
    pub fn build(spec: &LoadSpec, conn: u32, min_bytes: usize) -> Result<Ring, LoadError> {
        let mut rng =
            Prng::new(spec.seed ^ (u64::from(conn) + 1).wrapping_mul(0x2545_F491_4F6C_DD1D));
        let style = match spec.format {
            Format::Heka => NumberStyle::Varint,
            Format::Json => NumberStyle::SpacePadded,
            Format::Statsd if !spec.statsd_tags => NumberStyle::None,
            _ => NumberStyle::ZeroPadded,
        };
        let mut ring = Ring {
            bytes: Vec::with_capacity(min_bytes + spec.sizes.max() * 2),
            slots: Vec::new(),
            style,
            signer: spec.signer.clone(),
            conn,
            message_bytes: Vec::new(),
            scratch: Vec::new(),
        };
        let contents = Contents::new();
        let mut msg = Vec::new();
        let mut line = Vec::new();
        while ring.slots.len() < MIN_RING_RECORDS || ring.bytes.len() < min_bytes {
            let size = spec.sizes.sample(&mut rng);
            let pick = contents.pick(&mut rng);
            let start = ring.bytes.len();
            match spec.format {
                Format::Heka => {
                    let offsets = heka::encode_sized(&pick, conn, size, &mut msg);
                    encode_record(&msg, spec.signer.as_ref(), &mut ring.bytes)?;
                    let msg_start = ring.bytes.len() - msg.len();
                    let signature = spec.signer.as_ref().map(|key| {
                        let digest_at = msg_start - 1 - key.digest_len();
                        (msg_start as u32, digest_at as u32)
                    });
                    ring.slots.push(Slot {
                        start: start as u32,
                        end: ring.bytes.len() as u32,
                        seq_at: (msg_start + offsets.seq) as u32,
                        time_at: [
                            (msg_start + offsets.sent_ns) as u32,
                            (msg_start + offsets.timestamp) as u32,
                        ],
                        signature,
                    });
                    ring.message_bytes.push(msg.len() as u32);
                }
                format => {
                    let offsets =
                        text::encode_sized(format, spec.statsd_tags, &pick, conn, size, &mut line);
                    let prefix = match spec.framing {
                        Framing::Newline => 0,
                        Framing::OctetCounted => {
                            let head = format!("{} ", line.len());
                            ring.bytes.extend_from_slice(head.as_bytes());
                            head.len()
                        }
                    };
                    let at = |o: Option<usize>| o.map_or(u32::MAX, |o| (start + prefix + o) as u32);
                    ring.bytes.extend_from_slice(&line);
                    if spec.framing == Framing::Newline {
                        ring.bytes.push(b'\n');
                    }
                    ring.slots.push(Slot {
                        start: start as u32,
                        end: ring.bytes.len() as u32,
                        seq_at: at(offsets.seq),
                        time_at: [at(offsets.sent_ns), u32::MAX],
                        signature: None,
                    });
                    ring.message_bytes.push(line.len() as u32);
                }
            }
        }
        Ok(ring)
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether the ring is empty (never, once built).
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The connection id baked into every record.
    pub fn conn(&self) -> u32 {
        self.conn
    }

    /// All records end to end.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Record `i` as it goes on the wire (framing included).
    pub fn record(&self, i: usize) -> &[u8] {
        let s = &self.slots[i];
        &self.bytes[s.start as usize..s.end as usize]
    }

    /// Bytes of message data in record `i` (no framing).
    pub fn message_len(&self, i: usize) -> usize {
        self.message_bytes[i] as usize
    }

    /// Mean record size on the wire.
    pub fn mean_record_len(&self) -> f64 {
        self.bytes.len() as f64 / self.slots.len() as f64
    }

    /// Stamps record `i` with `seq` and `sent_ns`, re-signing it when signed.
    pub fn stamp(&mut self, i: usize, seq: u64, sent_ns: u64) {
        let slot = self.slots[i];
        let bytes = &mut self.bytes;
        match self.style {
            NumberStyle::None => return,
            NumberStyle::Varint => {
                put_padded_varint_at(bytes, slot.seq_at as usize, seq, SEQ_VARINT_WIDTH);
                for at in slot.time_at {
                    put_padded_varint_at(bytes, at as usize, sent_ns, TIME_VARINT_WIDTH);
                }
            }
            NumberStyle::ZeroPadded | NumberStyle::SpacePadded => {
                let pad = if self.style == NumberStyle::ZeroPadded {
                    b'0'
                } else {
                    b' '
                };
                put_decimal_at(bytes, slot.seq_at as usize, seq, SEQ_DIGITS, pad);
                put_decimal_at(bytes, slot.time_at[0] as usize, sent_ns, TIME_DIGITS, pad);
            }
        }
        if let (Some((msg_start, digest_at)), Some(key)) = (slot.signature, &self.signer) {
            self.scratch.clear();
            key.sign_into(
                &bytes[msg_start as usize..slot.end as usize],
                &mut self.scratch,
            );
            let at = digest_at as usize;
            bytes[at..at + self.scratch.len()].copy_from_slice(&self.scratch);
        }
    }

    /// Stamps the run of records starting at `first` — as many as fit in `max_bytes` (at least
    /// one), at most `max_records`, never past the end of the ring — with consecutive sequence
    /// numbers from `seq` and the send time `sent_ns`.
    ///
    /// Returns the number of records and their byte range in [`bytes`](Self::bytes), ready for one
    /// write.
    pub fn prepare(
        &mut self,
        first: usize,
        max_bytes: usize,
        max_records: u64,
        seq: u64,
        sent_ns: u64,
    ) -> (usize, Range<usize>) {
        let start = self.slots[first].start as usize;
        let mut n = 0;
        let mut end = start;
        for i in first..self.slots.len() {
            let slot_end = self.slots[i].end as usize;
            if n > 0 && (slot_end - start > max_bytes || n as u64 >= max_records) {
                break;
            }
            self.stamp(i, seq + n as u64, sent_ns);
            end = slot_end;
            n += 1;
        }
        (n, start..end)
    }

    /// Message bytes (without framing) of records `first..first + n`.
    pub fn message_bytes_of(&self, first: usize, n: usize) -> u64 {
        self.message_bytes[first..first + n]
            .iter()
            .map(|&b| u64::from(b))
            .sum()
    }
}

/// Writes `v` as a varint of exactly `width` bytes at `at` (non-minimal when `v` is small).
fn put_padded_varint_at(buf: &mut [u8], at: usize, v: u64, width: usize) {
    hekate_model::varint::write_padded(&mut buf[at..], v, width);
}

/// Writes `v` in decimal, right-aligned in `width` bytes padded with `pad`, at `at`.
fn put_decimal_at(buf: &mut [u8], at: usize, mut v: u64, width: usize, pad: u8) {
    let field = &mut buf[at..at + width];
    for i in (0..width).rev() {
        if v == 0 && i < width - 1 {
            field[i] = pad;
        } else {
            field[i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    }
}

/// The pools realistic message contents are drawn from.
struct Contents {
    words: &'static [&'static str],
}

/// One message's worth of realistic values.
#[derive(Clone, Debug)]
pub(crate) struct Pick {
    pub(crate) uuid: [u8; 16],
    pub(crate) msg_type: &'static str,
    pub(crate) logger: &'static str,
    pub(crate) severity: u8,
    pub(crate) hostname: &'static str,
    pub(crate) pid: u32,
    pub(crate) remote_addr: String,
    pub(crate) method: &'static str,
    pub(crate) path: String,
    pub(crate) status: u16,
    pub(crate) bytes_sent: u32,
    pub(crate) request_time: f64,
    pub(crate) user_agent: &'static str,
    pub(crate) region: &'static str,
    pub(crate) detail: &'static str,
    /// Text to pad messages to size with.
    pub(crate) filler: String,
}

impl Pick {
    /// An nginx-style access line: the payload of Heka messages and the text of syslog lines.
    pub(crate) fn access_line(&self) -> String {
        format!(
            "{} - - [24/Nov/2026:21:33:12 +0000] \"{} {} HTTP/1.1\" {} {} \"-\" \"{}\" {:.3} {}",
            self.remote_addr,
            self.method,
            self.path,
            self.status,
            self.bytes_sent,
            self.user_agent,
            self.request_time,
            self.detail
        )
    }
}

impl Contents {
    fn new() -> Self {
        Contents {
            words: &[
                "lorem",
                "ipsum",
                "dolor",
                "sit",
                "amet",
                "consectetur",
                "adipiscing",
                "elit",
                "sed",
                "do",
                "eiusmod",
                "tempor",
                "incididunt",
                "ut",
                "labore",
                "et",
                "dolore",
                "magna",
                "aliqua",
                "request",
                "upstream",
                "cache",
                "shard",
                "worker",
                "queue",
            ],
        }
    }

    fn pick(&self, rng: &mut Prng) -> Pick {
        // From the seeded generator, not hekate's, so that a load is reproducible.
        let mut random = [0u8; 16];
        random[..8].copy_from_slice(&rng.next_u64().to_le_bytes());
        random[8..].copy_from_slice(&rng.next_u64().to_le_bytes());
        let uuid = uuid::Builder::from_random_bytes(random)
            .into_uuid()
            .into_bytes();
        let msg_type = *rng.weighted(&[
            ("nginx.access", 50),
            ("app.log", 30),
            ("syslog", 10),
            ("audit", 10),
        ]);
        let logger = *rng.weighted(&[
            ("nginx", 40),
            ("api", 25),
            ("worker", 15),
            ("auth", 10),
            ("db", 10),
        ]);
        let severity = *rng.weighted(&[(6u8, 70), (7, 10), (4, 10), (3, 7), (2, 3)]);
        let hostname = *rng.pick(&[
            "web-01.prod",
            "web-02.prod",
            "web-03.prod",
            "api-01.prod",
            "api-02.staging",
            "db-01.staging",
        ]);
        let status = *rng.weighted(&[
            (200u16, 80),
            (204, 3),
            (301, 3),
            (304, 4),
            (404, 5),
            (499, 1),
            (500, 2),
            (502, 1),
            (503, 1),
        ]);
        let method = *rng.weighted(&[("GET", 75), ("POST", 15), ("PUT", 5), ("DELETE", 5)]);
        let path = match rng.below(4) {
            0 => format!("/api/v1/items/{}", rng.below(100_000)),
            1 => format!("/api/v1/users/{}/orders", rng.below(10_000)),
            2 => format!("/static/js/app.{:08x}.js", rng.next_u64() as u32),
            _ => format!("/search?q={}&page={}", rng.pick(self.words), rng.below(20)),
        };
        let user_agent = *rng.weighted(&[
            (
                "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0",
                60,
            ),
            (
                "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_1) AppleWebKit/605.1.15 Safari/605.1",
                25,
            ),
            ("curl/8.4.0", 10),
            ("Googlebot/2.1 (+http://www.google.com/bot.html)", 5),
        ]);
        let region = *rng.pick(&["eu-west-1", "us-east-1", "us-west-2", "ap-south-1"]);
        let detail = *rng.weighted(&[
            ("ok", 90),
            ("upstream timeout", 4),
            ("connection refused", 3),
            ("cache miss", 3),
        ]);
        let request_time = match rng.below(100) {
            0..=2 => 1.0 + rng.below(4000) as f64 / 1000.0,
            _ => rng.below(300) as f64 / 1000.0,
        };
        let mut filler = String::new();
        while filler.len() < 64 {
            filler.push(' ');
            let word: &&str = rng.pick(self.words);
            filler.push_str(word);
        }
        Pick {
            uuid,
            msg_type,
            logger,
            severity,
            hostname,
            pid: rng.range(100, 32_000) as u32,
            remote_addr: format!(
                "{}.{}.{}.{}",
                rng.range(1, 223),
                rng.below(256),
                rng.below(256),
                rng.range(1, 254)
            ),
            method,
            path,
            status,
            bytes_sent: rng.range(200, 60_000) as u32,
            request_time,
            user_agent,
            region,
            detail,
            filler,
        }
    }
}

/// Appends `len` bytes of filler text, cycling through `filler`.
pub(crate) fn push_filler(out: &mut Vec<u8>, filler: &str, len: usize) {
    let f = filler.as_bytes();
    let mut left = len;
    while left > 0 {
        let n = left.min(f.len());
        out.extend_from_slice(&f[..n]);
        left -= n;
    }
}

/// Sizes a message to `target` bytes by its variable part: `encode(n)` builds the message with
/// `n` bytes in that part and returns its length. Returns the part length used.
pub(crate) fn size_to(target: usize, mut encode: impl FnMut(usize) -> usize) -> usize {
    let mut n = 0;
    for _ in 0..6 {
        let len = encode(n);
        if len == target {
            return n;
        }
        if len < target {
            n += target - len;
        } else {
            let over = len - target;
            if n == 0 {
                return 0;
            }
            n = n.saturating_sub(over);
        }
    }
    encode(n);
    n
}

pub(crate) mod heka {
    //! Hand-written protobuf encoding of a Heka message with patchable numbers.

    use hekate_model::varint;

    use super::{Pick, SEQ_VARINT_WIDTH, TIME_VARINT_WIDTH, push_filler, size_to};

    /// Offsets of the stamped numbers inside the encoded message.
    #[derive(Clone, Copy, Debug)]
    pub(crate) struct Offsets {
        pub(crate) timestamp: usize,
        pub(crate) seq: usize,
        pub(crate) sent_ns: usize,
    }

    fn put_len(out: &mut Vec<u8>, key: u8, bytes: &[u8]) {
        out.push(key);
        varint::put(out, bytes.len() as u64);
        out.extend_from_slice(bytes);
    }

    /// Message tags (wire type included).
    const UUID: u8 = 0x0a;
    const TIMESTAMP: u8 = 0x10;
    const TYPE: u8 = 0x1a;
    const LOGGER: u8 = 0x22;
    const SEVERITY: u8 = 0x28;
    const PAYLOAD: u8 = 0x32;
    const ENV_VERSION: u8 = 0x3a;
    const PID: u8 = 0x40;
    const HOSTNAME: u8 = 0x4a;
    const FIELDS: u8 = 0x52;
    /// Field tags.
    const F_NAME: u8 = 0x0a;
    const F_VALUE_TYPE: u8 = 0x10;
    const F_REPRESENTATION: u8 = 0x1a;
    const F_STRING: u8 = 0x22;
    const F_INTEGER: u8 = 0x32;
    const F_DOUBLE: u8 = 0x3a;

    /// A field's encoding, and where its (first) integer value starts within it.
    fn field(name: &str, representation: Option<&str>, value: FieldValue<'_>) -> (Vec<u8>, usize) {
        let mut f = Vec::with_capacity(32 + name.len());
        put_len(&mut f, F_NAME, name.as_bytes());
        let value_type = match value {
            FieldValue::String(_) => 0,
            FieldValue::Integer(_) | FieldValue::Padded(..) => 2,
            FieldValue::Double(_) => 3,
        };
        if value_type != 0 {
            f.extend_from_slice(&[F_VALUE_TYPE, value_type]);
        }
        if let Some(r) = representation {
            put_len(&mut f, F_REPRESENTATION, r.as_bytes());
        }
        let mut at = 0;
        match value {
            FieldValue::String(s) => put_len(&mut f, F_STRING, s.as_bytes()),
            FieldValue::Integer(v) => {
                let mut packed = Vec::new();
                varint::put(&mut packed, v as u64);
                put_len(&mut f, F_INTEGER, &packed);
            }
            FieldValue::Padded(v, width) => {
                f.extend_from_slice(&[F_INTEGER, width as u8]);
                at = f.len();
                f.resize(at + width, 0);
                super::put_padded_varint_at(&mut f, at, v, width);
            }
            FieldValue::Double(v) => {
                f.extend_from_slice(&[F_DOUBLE, 8]);
                f.extend_from_slice(&v.to_le_bytes());
            }
        }
        (f, at)
    }

    enum FieldValue<'a> {
        String(&'a str),
        Integer(i64),
        Padded(u64, usize),
        Double(f64),
    }

    /// Appends `field` to `out` as a Fields entry; returns the offset of its integer value.
    fn push_field(out: &mut Vec<u8>, (bytes, at): (Vec<u8>, usize)) -> usize {
        out.push(FIELDS);
        varint::put(out, bytes.len() as u64);
        let start = out.len();
        out.extend_from_slice(&bytes);
        start + at
    }

    /// Encodes a message from `pick` whose payload is the access line cut or padded to
    /// `payload_len` bytes, into `out` (cleared first).
    pub(crate) fn encode(pick: &Pick, conn: u32, payload_len: usize, out: &mut Vec<u8>) -> Offsets {
        out.clear();
        put_len(out, UUID, &pick.uuid);
        out.push(TIMESTAMP);
        let timestamp = out.len();
        out.resize(timestamp + TIME_VARINT_WIDTH, 0);
        super::put_padded_varint_at(out, timestamp, 0, TIME_VARINT_WIDTH);
        put_len(out, TYPE, pick.msg_type.as_bytes());
        put_len(out, LOGGER, pick.logger.as_bytes());
        out.push(SEVERITY);
        varint::put(out, u64::from(pick.severity));
        let line = pick.access_line();
        let mut payload = Vec::with_capacity(payload_len);
        payload.extend_from_slice(&line.as_bytes()[..payload_len.min(line.len())]);
        push_filler(
            &mut payload,
            &pick.filler,
            payload_len.saturating_sub(line.len()),
        );
        put_len(out, PAYLOAD, &payload);
        put_len(out, ENV_VERSION, b"0.8");
        out.push(PID);
        varint::put(out, u64::from(pick.pid));
        put_len(out, HOSTNAME, pick.hostname.as_bytes());
        push_field(
            out,
            field("conn", None, FieldValue::Integer(i64::from(conn))),
        );
        let seq = push_field(
            out,
            field("seq", None, FieldValue::Padded(0, SEQ_VARINT_WIDTH)),
        );
        let sent_ns = push_field(
            out,
            field(
                "sent_ns",
                Some("ns"),
                FieldValue::Padded(0, TIME_VARINT_WIDTH),
            ),
        );
        push_field(
            out,
            field("remote_addr", None, FieldValue::String(&pick.remote_addr)),
        );
        push_field(out, field("method", None, FieldValue::String(pick.method)));
        push_field(
            out,
            field("status", None, FieldValue::Integer(i64::from(pick.status))),
        );
        push_field(
            out,
            field(
                "request_time",
                Some("s"),
                FieldValue::Double(pick.request_time),
            ),
        );
        push_field(out, field("region", None, FieldValue::String(pick.region)));
        Offsets {
            timestamp,
            seq,
            sent_ns,
        }
    }

    /// Encodes a message of `target` bytes (or the smallest possible) into `out`.
    pub(crate) fn encode_sized(
        pick: &Pick,
        conn: u32,
        target: usize,
        out: &mut Vec<u8>,
    ) -> Offsets {
        let n = size_to(target, |n| {
            encode(pick, conn, n, out);
            out.len()
        });
        encode(pick, conn, n, out)
    }
}

pub(crate) mod text {
    //! Text lines: syslog, statsd, JSON, nginx access lines.

    use std::fmt::Write as _;

    use super::{Format, Pick, SEQ_DIGITS, TIME_DIGITS, push_filler, size_to};

    /// Offsets of the stamped numbers inside the line.
    #[derive(Clone, Copy, Debug, Default)]
    pub(crate) struct Offsets {
        pub(crate) seq: Option<usize>,
        pub(crate) sent_ns: Option<usize>,
    }

    /// Writes ` conn=C seq=<digits> sent_ns=<digits>` (zero-padded), or with `tags` the
    /// DogStatsD form `|#conn:C,seq:<digits>,sent_ns:<digits>`, and returns the offsets.
    fn stamps(out: &mut Vec<u8>, conn: u32, tags: bool) -> Offsets {
        let (lead, sep, between) = if tags {
            ("|#", ':', ',')
        } else {
            (" ", '=', ' ')
        };
        let _ = write!(Line(out), "{lead}conn{sep}{conn}{between}seq{sep}");
        let seq = out.len();
        out.resize(seq + SEQ_DIGITS, b'0');
        let _ = write!(Line(out), "{between}sent_ns{sep}");
        let sent_ns = out.len();
        out.resize(sent_ns + TIME_DIGITS, b'0');
        Offsets {
            seq: Some(seq),
            sent_ns: Some(sent_ns),
        }
    }

    const PRI_FACILITY_LOCAL0: u8 = 16;

    /// The message text: the access line cut or padded to `len` bytes.
    fn push_body(out: &mut Vec<u8>, pick: &Pick, len: usize) {
        let line = pick.access_line();
        out.extend_from_slice(&line.as_bytes()[..len.min(line.len())]);
        push_filler(out, &pick.filler, len.saturating_sub(line.len()));
    }

    /// Encodes a line whose variable part (the message text; for JSON the `message` member) is
    /// `body_len` bytes into `out` (cleared first).
    pub(crate) fn encode(
        format: Format,
        statsd_tags: bool,
        pick: &Pick,
        conn: u32,
        body_len: usize,
        out: &mut Vec<u8>,
    ) -> Offsets {
        out.clear();
        let pri = PRI_FACILITY_LOCAL0 * 8 + pick.severity;
        match format {
            Format::Syslog3164 => {
                let _ = write!(
                    Line(out),
                    "<{pri}>Nov 24 21:33:12 {} {}[{}]: ",
                    pick.hostname.split('.').next().unwrap_or("host"),
                    pick.logger,
                    pick.pid,
                );
                push_body(out, pick, body_len);
                stamps(out, conn, false)
            }
            Format::Syslog5424 => {
                let sd = if pick.pid % 3 == 0 {
                    format!("[origin ip=\"{}\"]", pick.remote_addr)
                } else {
                    "-".to_owned()
                };
                let _ = write!(
                    Line(out),
                    "<{pri}>1 2026-11-24T21:33:12.{:06}Z {} {} {} access {sd} ",
                    pick.pid * 31 % 1_000_000,
                    pick.hostname,
                    pick.logger,
                    pick.pid,
                );
                push_body(out, pick, body_len);
                stamps(out, conn, false)
            }
            Format::Statsd => {
                let metric = match pick.status {
                    200..=299 => "ok",
                    300..=399 => "redirect",
                    400..=499 => "client_error",
                    _ => "server_error",
                };
                let _ = write!(Line(out), "bench.c{conn}.{}.{metric}:1|c", pick.logger);
                if statsd_tags {
                    stamps(out, conn, true)
                } else {
                    Offsets::default()
                }
            }
            Format::Json => {
                let _ = write!(
                    Line(out),
                    "{{\"@timestamp\":\"2026-11-24T21:33:12.{:03}Z\",\"host\":\"{}\",\"service\":\"{}\",\
                     \"level\":{},\"conn\":{conn},\"seq\":",
                    pick.pid % 1000,
                    pick.hostname,
                    pick.logger,
                    pick.severity
                );
                let seq = out.len();
                out.resize(seq + SEQ_DIGITS, b' ');
                out.extend_from_slice(b",\"sent_ns\":");
                let sent_ns = out.len();
                out.resize(sent_ns + TIME_DIGITS, b' ');
                let _ = write!(
                    Line(out),
                    ",\"status\":{},\"method\":\"{}\",\"path\":\"{}\",\"duration_ms\":{:.1},\
                     \"remote_addr\":\"{}\",\"message\":\"{}",
                    pick.status,
                    pick.method,
                    pick.path,
                    pick.request_time * 1000.0,
                    pick.remote_addr,
                    pick.detail
                );
                push_filler(out, &pick.filler, body_len);
                out.extend_from_slice(b"\"}");
                Offsets {
                    seq: Some(seq),
                    sent_ns: Some(sent_ns),
                }
            }
            Format::Nginx => {
                // `<addr> - - [time] "GET /seq/<n> HTTP/1.1" <status> <bytes> "-" "<agent>"
                // <request time> conn=C sent_ns=<t> <detail and filler>`: the decoder keeps
                // the path, and ignores everything after the request time.
                let _ = write!(
                    Line(out),
                    "{} - - [24/Nov/2026:21:33:12 +0000] \"{} /seq/",
                    pick.remote_addr,
                    pick.method
                );
                let seq = out.len();
                out.resize(seq + SEQ_DIGITS, b'0');
                let _ = write!(
                    Line(out),
                    " HTTP/1.1\" {} {} \"-\" \"{}\" {:.3} conn={conn} sent_ns=",
                    pick.status,
                    pick.bytes_sent,
                    pick.user_agent,
                    pick.request_time
                );
                let sent_ns = out.len();
                out.resize(sent_ns + TIME_DIGITS, b'0');
                out.push(b' ');
                let detail = pick.detail.as_bytes();
                out.extend_from_slice(&detail[..body_len.min(detail.len())]);
                push_filler(out, &pick.filler, body_len.saturating_sub(detail.len()));
                Offsets {
                    seq: Some(seq),
                    sent_ns: Some(sent_ns),
                }
            }
            Format::Heka => unreachable!("Heka messages are not text"),
        }
    }

    /// Encodes a line of `target` bytes (or the smallest possible) into `out`. statsd lines are
    /// never padded.
    pub(crate) fn encode_sized(
        format: Format,
        statsd_tags: bool,
        pick: &Pick,
        conn: u32,
        target: usize,
        out: &mut Vec<u8>,
    ) -> Offsets {
        if format == Format::Statsd {
            return encode(format, statsd_tags, pick, conn, 0, out);
        }
        let n = size_to(target, |n| {
            encode(format, statsd_tags, pick, conn, n, out);
            out.len()
        });
        encode(format, statsd_tags, pick, conn, n, out)
    }

    /// `fmt::Write` into a byte vector.
    struct Line<'a>(&'a mut Vec<u8>);

    impl std::fmt::Write for Line<'_> {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            self.0.extend_from_slice(s.as_bytes());
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use hekate_model::framing::{HekaSplitter, SignerKeys, SplitOutcome};
    use hekate_model::message::{HmacHashFunction, Message, MessageAccess, MessageView};

    use super::*;
    use crate::parse::{LineFraming, LineStep, TextStamps, heka_stamp};

    #[test]
    fn padded_varints_and_decimals() {
        let mut b = [0u8; 9];
        put_padded_varint_at(&mut b, 0, 300, 6);
        assert_eq!(&b[..6], &[0xAC, 0x82, 0x80, 0x80, 0x80, 0x00]);
        put_decimal_at(&mut b, 0, 42, 5, b'0');
        assert_eq!(&b[..5], b"00042");
        put_decimal_at(&mut b, 0, 0, 5, b' ');
        assert_eq!(&b[..5], b"    0");
    }

    fn spec(format: Format, sizes: &str) -> LoadSpec {
        LoadSpec {
            format,
            sizes: sizes.parse().unwrap(),
            ..LoadSpec::default()
        }
    }

    /// Splits a ring's bytes back into Heka records.
    fn heka_messages(bytes: &[u8], splitter: &mut HekaSplitter) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut pos = 0;
        loop {
            let step = splitter.split(&bytes[pos..]);
            pos += step.consumed;
            assert!(step.skipped.is_none(), "{:?}", step.skipped);
            match step.outcome {
                SplitOutcome::Record(r) => out.push(r.message.to_vec()),
                SplitOutcome::NeedData => break,
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(pos, bytes.len());
        out
    }

    #[test]
    fn heka_records_decode_with_prost_and_the_lazy_view() {
        let mut ring = Ring::build(&spec(Format::Heka, "300"), 5, 0).unwrap();
        assert_eq!(ring.len(), MIN_RING_RECORDS);
        for i in 0..ring.len() {
            ring.stamp(
                i,
                1_000_000 + i as u64,
                1_732_484_000_123_456_789 + i as u64,
            );
        }
        let messages = heka_messages(ring.bytes(), &mut HekaSplitter::default());
        assert_eq!(messages.len(), ring.len());
        for (i, bytes) in messages.iter().enumerate() {
            assert_eq!(bytes.len(), 300, "every message has the asked size");
            assert_eq!(ring.message_len(i), 300);
            let owned = Message::decode_bytes(bytes).unwrap();
            let sent = 1_732_484_000_123_456_789 + i as i64;
            assert_eq!(owned.timestamp, sent);
            assert_eq!(owned.uuid.len(), 16);
            assert!(!owned.msg_type().is_empty() && !owned.payload().is_empty());
            let int = |name: &str| match owned.get_field_value(name) {
                Some(hekate_model::message::FieldValue::Integer(v)) => v,
                other => panic!("{name}: {other:?}"),
            };
            assert_eq!(int("conn"), 5);
            assert_eq!(int("seq"), 1_000_000 + i as i64);
            assert_eq!(int("sent_ns"), sent);
            assert!(int("status") >= 200);
            // The lazy view reads the padded varints the same way.
            let view = MessageView::new(bytes).unwrap();
            assert_eq!(view.timestamp(), sent);
            let stamp = heka_stamp(bytes).unwrap();
            assert_eq!(
                (stamp.conn, stamp.seq, stamp.sent_ns),
                (5, 1_000_000 + i as u64, sent as u64)
            );
        }
    }

    #[test]
    fn heka_sizes_follow_the_distribution_and_small_sizes_give_the_smallest_message() {
        let ring = Ring::build(&spec(Format::Heka, "280:1,2000:1"), 0, 0).unwrap();
        let sizes: std::collections::BTreeSet<usize> =
            (0..ring.len()).map(|i| ring.message_len(i)).collect();
        assert_eq!(sizes.into_iter().collect::<Vec<_>>(), [280, 2000]);
        let tiny = Ring::build(&spec(Format::Heka, "10"), 0, 0).unwrap();
        let min = (0..tiny.len()).map(|i| tiny.message_len(i)).min().unwrap();
        assert!(min > 200 && min < 280, "{min}");
    }

    #[test]
    fn signed_records_verify_after_stamping() {
        let mut load = spec(Format::Heka, "400");
        load.signer = Some(SigningKey::new(
            "bench",
            2,
            HmacHashFunction::Sha1,
            b"secret",
        ));
        let mut ring = Ring::build(&load, 1, 0).unwrap();
        let (n, range) = ring.prepare(0, 1 << 20, 100, 0, 42);
        assert_eq!(n, 100);
        let mut keys = SignerKeys::new();
        keys.insert("bench", 2, b"secret");
        let mut splitter = HekaSplitter::default().with_signers(Arc::new(keys));
        let bytes = ring.bytes()[range].to_vec();
        let messages = heka_messages(&bytes, &mut splitter);
        assert_eq!(messages.len(), 100);
        assert_eq!(splitter.counters().signature_failures, 0);
        assert_eq!(heka_stamp(&messages[99]).unwrap().seq, 99);
    }

    #[test]
    fn prepare_writes_whole_records_within_the_batch() {
        let mut ring = Ring::build(&spec(Format::Heka, "300"), 0, 0).unwrap();
        let (n, range) = ring.prepare(10, 4096, u64::MAX, 7, 1);
        assert_eq!(
            range.start,
            ring.bytes().len() / ring.len() * 10,
            "records are equal-sized"
        );
        assert!(range.len() <= 4096 && n == range.len() / (range.len() / n));
        let (n2, _) = ring.prepare(10, 1 << 30, 3, 7, 1);
        assert_eq!(n2, 3);
        // A run never wraps: it stops at the end of the ring.
        let last = ring.len() - 2;
        let (n3, r3) = ring.prepare(last, 1 << 30, 100, 0, 1);
        assert_eq!((n3, r3.end), (2, ring.bytes().len()));
    }

    fn lines_of(ring: &Ring, framing: LineFraming) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut buf = ring.bytes();
        while let LineStep::Record(line, used) = framing.next(buf) {
            out.push(line.to_vec());
            buf = &buf[used..];
        }
        assert!(buf.is_empty());
        out
    }

    #[test]
    fn text_lines_carry_their_stamps() {
        let t = TextStamps::default();
        for format in [Format::Syslog3164, Format::Syslog5424, Format::Json] {
            for framing in [Framing::Newline, Framing::OctetCounted] {
                let mut load = spec(format, "400");
                load.framing = framing;
                let mut ring = Ring::build(&load, 3, 0).unwrap();
                for i in 0..ring.len() {
                    ring.stamp(i, i as u64, 1_732_484_000_000_000_000 + i as u64);
                }
                let lf = match framing {
                    Framing::Newline => LineFraming::Newline,
                    Framing::OctetCounted => LineFraming::OctetCounted,
                };
                let lines = lines_of(&ring, lf);
                assert_eq!(lines.len(), ring.len(), "{format} {framing:?}");
                for (i, line) in lines.iter().enumerate() {
                    assert_eq!(line.len(), 400, "{}", String::from_utf8_lossy(line));
                    let s = t.find(line).unwrap();
                    assert_eq!((s.conn, s.seq), (3, i as u64));
                    assert_eq!(s.sent_ns, 1_732_484_000_000_000_000 + i as u64);
                    if format == Format::Json {
                        let v: serde_json::Value = serde_json::from_slice(line).unwrap();
                        assert_eq!(v["seq"], i as u64);
                    }
                }
                let first = String::from_utf8_lossy(&lines[0]).into_owned();
                match format {
                    Format::Syslog3164 => assert!(first.starts_with('<') && first.contains("]: ")),
                    Format::Syslog5424 => assert!(first.contains(">1 2026-11-24T")),
                    _ => {}
                }
            }
        }
    }

    #[test]
    fn nginx_lines_carry_the_sequence_in_the_path() {
        let mut ring = Ring::build(&spec(Format::Nginx, "300"), 1, 0).unwrap();
        for i in 0..ring.len() {
            ring.stamp(i, i as u64, 1_732_484_000_000_000_000);
        }
        let lines = lines_of(&ring, LineFraming::Newline);
        for (i, line) in lines.iter().enumerate().take(50) {
            let line = String::from_utf8_lossy(line);
            assert_eq!(line.len(), 300, "{line}");
            assert!(
                line.contains(" - - [24/Nov/2026:21:33:12 +0000] \""),
                "{line}"
            );
            assert!(
                line.contains(&format!(" /seq/{i:012} HTTP/1.1\" ")),
                "{line}"
            );
            assert!(
                line.contains(" conn=1 sent_ns=1732484000000000000 "),
                "{line}"
            );
        }
    }

    #[test]
    fn statsd_lines_are_counters_with_optional_tags() {
        let ring = Ring::build(&spec(Format::Statsd, "300"), 2, 0).unwrap();
        let lines = lines_of(&ring, LineFraming::Newline);
        assert!(
            lines
                .iter()
                .all(|l| l.ends_with(b":1|c") && l.starts_with(b"bench.c2."))
        );
        let mut load = spec(Format::Statsd, "300");
        load.statsd_tags = true;
        let mut ring = Ring::build(&load, 2, 0).unwrap();
        ring.stamp(0, 77, 1_732_484_000_000_000_000);
        let line = &lines_of(&ring, LineFraming::Newline)[0];
        let s = TextStamps::default().find(line).unwrap();
        assert_eq!((s.conn, s.seq), (2, 77));
    }

    #[test]
    fn rings_are_reproducible_and_differ_per_connection() {
        let a = Ring::build(&LoadSpec::default(), 0, 0).unwrap();
        let b = Ring::build(&LoadSpec::default(), 0, 0).unwrap();
        let c = Ring::build(&LoadSpec::default(), 1, 0).unwrap();
        assert_eq!(a.bytes(), b.bytes());
        assert_ne!(a.bytes(), c.bytes());
        let big = Ring::build(&LoadSpec::default(), 0, 4 << 20).unwrap();
        assert!(big.bytes().len() >= 4 << 20);
    }
}
