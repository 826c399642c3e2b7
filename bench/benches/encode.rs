//! Encoding a realistic Heka message: the owned `Message::to_bytes` (prost), Heka framing of the
//! encoded bytes (unsigned and signed), and the load generator's per-message cost (stamping a run
//! of pre-encoded records), which must stay far below what a pipeline spends per message.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hekate_bench::load::{LoadSpec, Ring};
use hekate_model::framing::{SigningKey, encode_record};
use hekate_model::message::{Field, HmacHashFunction, Message};

/// A ~300-byte message shaped like the `route` load: an nginx access line as payload, the usual
/// headers, and nine fields.
fn realistic() -> Message {
    let mut m = Message::new_now();
    m.r#type = Some("nginx.access".into());
    m.logger = Some("nginx".into());
    m.severity = Some(6);
    m.payload = Some(
        "203.0.113.7 - - [24/Nov/2026:21:33:12 +0000] \"GET /api/v1/items/4242 HTTP/1.1\" 200"
            .into(),
    );
    m.env_version = Some("0.8".into());
    m.pid = Some(12345);
    m.hostname = Some("web-03.prod".into());
    m.add_field(Field::integer("conn", 1))
        .add_field(Field::integer("seq", 123_456))
        .add_field(Field::integer("sent_ns", 1_732_484_000_123_456_789).with_representation("ns"))
        .add_field(Field::string("remote_addr", "203.0.113.7"))
        .add_field(Field::string("method", "GET"))
        .add_field(Field::integer("status", 200))
        .add_field(Field::double("request_time", 0.042).with_representation("s"))
        .add_field(Field::string("region", "eu-west-1"))
        .add_field(Field::boolean("cached", false));
    m
}

fn encode(c: &mut Criterion) {
    let msg = realistic();
    let bytes = msg.to_bytes();
    let mut g = c.benchmark_group("encode");
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    g.bench_function(format!("Message::to_bytes ({} B)", bytes.len()), |b| {
        b.iter(|| black_box(&msg).to_bytes())
    });
    let mut out = Vec::with_capacity(1 << 20);
    g.bench_function("to_bytes + encode_record", |b| {
        b.iter(|| {
            out.clear();
            let bytes = black_box(&msg).to_bytes();
            encode_record(&bytes, None, &mut out).unwrap();
            black_box(out.len())
        })
    });
    g.bench_function("encode_record, unsigned", |b| {
        b.iter(|| {
            out.clear();
            encode_record(black_box(&bytes), None, &mut out).unwrap();
            black_box(out.len())
        })
    });
    let key = SigningKey::new("bench", 1, HmacHashFunction::Md5, b"secret");
    g.bench_function("encode_record, signed (HMAC-MD5)", |b| {
        b.iter(|| {
            out.clear();
            encode_record(black_box(&bytes), Some(&key), &mut out).unwrap();
            black_box(out.len())
        })
    });
    g.finish();

    // The generator: stamp sequence numbers and send times into a 256 KiB run of pre-encoded
    // 300-byte records, ready for one write.
    let mut ring = Ring::build(&LoadSpec::default(), 0, 1 << 20).unwrap();
    let (n, _) = ring.prepare(0, 256 * 1024, u64::MAX, 0, 1);
    let mut g = c.benchmark_group("generator");
    g.throughput(Throughput::Elements(n as u64));
    let mut seq = 0;
    g.bench_function("stamp a 256 KiB run of 300 B records", |b| {
        b.iter(|| {
            let (n, range) = ring.prepare(
                0,
                256 * 1024,
                u64::MAX,
                seq,
                1_732_484_000_000_000_000 + seq,
            );
            seq += n as u64;
            black_box(range)
        })
    });
    g.finish();
}

criterion_group!(benches, encode);
criterion_main!(benches);
