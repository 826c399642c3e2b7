//! Matcher evaluation on the routing hot path: typical expressions against a `MessageView` of a
//! realistic ~300-byte access-log message, fast paths beside the regex they replace, and a
//! router-sized `MatcherSet`.
//!
//! `cargo bench -p hekate-engine --bench matcher -- --warm-up-time 1 --measurement-time 2`

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use hekate_model::matcher::{MatchBits, MatcherSet, MatcherSpec};
use hekate_model::message::{Field, Message, MessageAccess, MessageView};

/// An nginx access-log message of about 300 encoded bytes.
fn access_log() -> Vec<u8> {
    let mut m = Message {
        uuid: (1u8..=16).collect(),
        timestamp: 1_700_000_000_123_456_789,
        r#type: Some("nginx.access".into()),
        logger: Some("nginx".into()),
        severity: Some(6),
        payload: Some(
            "10.1.2.3 - - [14/Nov/2023:22:13:20 +0000] \"GET /api/v1/items?page=2 HTTP/1.1\" \
             200 5123 \"-\" \"Mozilla/5.0 (X11; Linux x86_64)\""
                .into(),
        ),
        env_version: Some("0.8".into()),
        pid: Some(4242),
        hostname: Some("web-02".into()),
        fields: Vec::new(),
    };
    m.add_field(Field::string("remote_addr", "10.1.2.3"));
    m.add_field(Field::string(
        "request",
        "GET /api/v1/items?page=2 HTTP/1.1",
    ));
    m.add_field(Field::integer("status", 200));
    m.add_field(Field::integer("body_bytes_sent", 5123));
    m.add_field(Field::double("request_time", 0.012));
    m.add_field(Field::string("host", "web-02"));
    m.to_bytes()
}

const EXPRESSIONS: &[(&str, &str)] = &[
    ("type_sev_miss", "Type == 'x' && Severity == 6"),
    ("type_sev_hit", "Type == 'nginx.access' && Severity == 6"),
    ("logger_prefix", "Logger =~ /^nginx/"),
    ("logger_prefix_regex", "Logger =~ /^(?:nginx)/"),
    ("type_suffix", "Type =~ /access$/"),
    ("payload_contains", "Payload =~ /error/"),
    ("payload_contains_regex", "Payload =~ /err(?:or)/"),
    ("payload_regex", "Payload =~ /HTTP\\/1\\.[01]\" 5\\d\\d/"),
    ("status_ge_500", "Fields[status] >= 500"),
    (
        "host_or",
        "Fields[host] == 'web-01' || Fields[host] == 'web-02'",
    ),
    (
        "mixed",
        "Type == 'nginx.access' && (Fields[status] >= 500 || Fields[request_time] > 0.5)",
    ),
    ("field_missing_nil", "Fields[upstream] == NIL"),
];

fn bench_expressions(c: &mut Criterion) {
    let bytes = access_log();
    println!("message: {} bytes", bytes.len());
    let view = MessageView::new(&bytes).expect("valid message");
    let owned = Message::decode_bytes(&bytes).expect("valid message");
    let mut group = c.benchmark_group("matcher/view");
    for &(name, expr) in EXPRESSIONS {
        let spec = MatcherSpec::parse(expr).expect("valid expression");
        group.bench_function(name, |b| {
            b.iter(|| black_box(&spec).matches(black_box(&view)))
        });
    }
    // Baseline: what reading `Fields[status]` alone costs, without any matcher around it.
    group.bench_function("baseline_field_value_status", |b| {
        b.iter(|| black_box(&view).field_value(black_box(b"status"), 0, 0))
    });
    group.finish();

    let mut group = c.benchmark_group("matcher/owned");
    for &(name, expr) in &EXPRESSIONS[..2] {
        let spec = MatcherSpec::parse(expr).expect("valid expression");
        group.bench_function(name, |b| {
            b.iter(|| black_box(&spec).matches(black_box(&owned)))
        });
    }
    group.finish();

    // The whole per-message cost when the view is built for routing alone.
    let spec = MatcherSpec::parse("Type == 'x' && Severity == 6").expect("valid expression");
    c.bench_function("matcher/new_view_and_match", |b| {
        b.iter(|| {
            let view = MessageView::new(black_box(&bytes)).expect("valid message");
            spec.matches(&view)
        })
    });
}

fn bench_set(c: &mut Criterion) {
    let bytes = access_log();
    let view = MessageView::new(&bytes).expect("valid message");
    let set: MatcherSet = EXPRESSIONS
        .iter()
        .map(|(_, e)| MatcherSpec::parse(e).expect("valid expression"))
        .collect();
    let mut out = MatchBits::default();
    c.bench_function("matcher/set_of_12", |b| {
        b.iter(|| {
            set.evaluate(black_box(&view), &mut out);
            out.count()
        })
    });
}

fn bench_compile(c: &mut Criterion) {
    c.bench_function("matcher/parse_mixed", |b| {
        b.iter(|| MatcherSpec::parse(black_box(EXPRESSIONS[10].1)))
    });
}

criterion_group!(benches, bench_expressions, bench_set, bench_compile);
criterion_main!(benches);
