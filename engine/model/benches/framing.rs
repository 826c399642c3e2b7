//! Framing throughput: a 4 MiB stream of ~300-byte access-log messages, split into records and
//! read through a `MessageView` (the routing hot path), against prost's full decode, plus writing
//! records and verifying MD5 signatures.
//!
//! `cargo bench -p hekate-engine --bench framing -- --warm-up-time 1 --measurement-time 3`
//! Throughput is in messages; bytes per message are printed once, to convert to GB/s.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hekate_model::framing::{HekaSplitter, SignerKeys, SigningKey, SplitOutcome, encode_record};
use hekate_model::message::{Field, HmacHashFunction, Message, MessageAccess, MessageView};
use prost::Message as _;

const STREAM_SIZE: usize = 4 << 20;

/// xorshift64*: deterministic data without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

/// One access-log style message of about 300 encoded bytes.
fn message(rng: &mut Rng) -> Vec<u8> {
    let method = rng.pick(&["GET", "GET", "GET", "POST", "PUT", "DELETE"]);
    let path = format!(
        "/api/v1/{}/{}",
        rng.pick(&["orders", "users", "carts", "items"]),
        rng.below(1_000_000)
    );
    let status = *[200i64, 200, 200, 201, 304, 404, 500]
        .get(rng.below(7) as usize)
        .unwrap_or(&200);
    let bytes = rng.below(50_000) as i64;
    let payload = format!(
        "10.{}.{}.{} - - [12/Mar/2024:10:15:{:02} +0000] \"{method} {path} HTTP/1.1\" {status} \
         {bytes} \"-\" \"Mozilla/5.0 (X11; Linux x86_64)\"",
        rng.below(256),
        rng.below(256),
        rng.below(256),
        rng.below(60),
    );
    let mut msg = Message {
        uuid: rng.next().to_le_bytes().repeat(2),
        timestamp: 1_710_238_532_000_000_000 + rng.below(1_000_000_000) as i64,
        r#type: Some(
            rng.pick(&["nginx.access", "nginx.error", "app.request"])
                .into(),
        ),
        logger: Some(rng.pick(&["nginx", "payments-api", "frontend"]).into()),
        severity: Some(rng.below(8) as i32),
        pid: Some(1000 + rng.below(60_000) as i32),
        hostname: Some(format!("web-{:03}.dc1.example.com", rng.below(200))),
        payload: Some(payload),
        ..Default::default()
    };
    msg.add_field(Field::integer("status", status));
    msg.add_field(Field::integer("bytes", bytes).with_representation("B"));
    msg.add_field(
        Field::double("request_time", rng.below(5_000) as f64 / 1000.0).with_representation("s"),
    );
    msg.add_field(Field::string("method", method));
    if rng.below(2) == 0 {
        msg.add_field(Field::boolean("cached", rng.below(2) == 0));
    }
    if rng.below(2) == 0 {
        msg.add_field(Field::string("path", path));
    }
    msg.encode_to_vec()
}

/// The encoded messages, and a stream of them framed (signed with `key` when given) that fills
/// about `STREAM_SIZE` bytes.
fn corpus(key: Option<&SigningKey>) -> (Vec<Vec<u8>>, Vec<u8>) {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut messages = Vec::new();
    let mut stream = Vec::with_capacity(STREAM_SIZE + 1024);
    while stream.len() < STREAM_SIZE {
        let m = message(&mut rng);
        encode_record(&m, key, &mut stream).expect("bench messages fit");
        messages.push(m);
    }
    (messages, stream)
}

/// Splits the whole stream, handing each record's message to `f`; returns the record count.
#[inline(always)]
fn split_all(splitter: &mut HekaSplitter, stream: &[u8], mut f: impl FnMut(&[u8])) -> usize {
    splitter.reset();
    let mut buf = stream;
    let mut n = 0;
    loop {
        let step = splitter.split(buf);
        buf = &buf[step.consumed..];
        match step.outcome {
            SplitOutcome::Record(r) => {
                f(r.message);
                n += 1;
            }
            SplitOutcome::Rejected(_) => {}
            SplitOutcome::NeedData | SplitOutcome::End { .. } => return n,
        }
    }
}

fn framing(c: &mut Criterion) {
    let (messages, stream) = corpus(None);
    let count = messages.len();
    eprintln!(
        "framing bench: {count} records in {} bytes, {:.1} bytes per record",
        stream.len(),
        stream.len() as f64 / count as f64
    );

    let mut g = c.benchmark_group("framing");
    g.throughput(Throughput::Elements(count as u64));
    let mut splitter = HekaSplitter::default();

    g.bench_function("split", |b| {
        b.iter(|| {
            let mut sum = 0;
            let n = split_all(&mut splitter, black_box(&stream), |m| sum += m.len());
            assert_eq!(n, count);
            sum
        })
    });

    g.bench_function("split+view", |b| {
        b.iter(|| {
            let mut sev = 0i64;
            split_all(&mut splitter, black_box(&stream), |m| {
                let view = MessageView::new(m).expect("valid message");
                sev += i64::from(black_box(&view).severity());
            });
            sev
        })
    });

    g.bench_function("split+prost_decode", |b| {
        b.iter(|| {
            let mut sev = 0i64;
            split_all(&mut splitter, black_box(&stream), |m| {
                let msg = Message::decode(m).expect("valid message");
                sev += i64::from(black_box(&msg).severity());
            });
            sev
        })
    });

    let mut out = Vec::with_capacity(stream.len());
    g.bench_function("encode_unsigned", |b| {
        b.iter(|| {
            out.clear();
            for m in &messages {
                encode_record(black_box(m), None, &mut out).expect("fits");
            }
            out.len()
        })
    });

    let key = SigningKey::new("ops", 1, HmacHashFunction::Md5, b"bench secret");
    let (_, signed) = corpus(Some(&key));
    let signed_count = signed_records(&signed);
    let mut keys = SignerKeys::new();
    keys.insert("ops", 1, b"bench secret");
    let mut verifier = HekaSplitter::default().with_signers(keys.into());
    g.throughput(Throughput::Elements(signed_count as u64));
    g.bench_function("split+verify_md5", |b| {
        b.iter(|| {
            let n = split_all(&mut verifier, black_box(&signed), |m| {
                black_box(m);
            });
            assert_eq!(n, signed_count);
            n
        })
    });
    g.finish();
}

fn signed_records(stream: &[u8]) -> usize {
    let mut s = HekaSplitter::default().with_skip_authentication(true);
    split_all(&mut s, stream, |_| {})
}

criterion_group!(benches, framing);
criterion_main!(benches);
