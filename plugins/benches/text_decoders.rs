//! The text decoders' per-record work: JsonDecoder on ~300-byte JSON lines as `hekate-flood
//! --format json` writes them (headers mapped, a timestamp parsed, the rest flattened into
//! fields), and PayloadRegexDecoder on an Apache access line with a Go-layout timestamp.
//!
//! `cargo bench -p hekate-plugins --bench text_decoders -- --warm-up-time 1 --measurement-time 3`
//! Throughput is in bytes of records.

use std::collections::HashMap;
use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hekate_config::Config;
use hekate_engine::plugin::{BuildContext, Built, DecodedMessages, Decoder, RecordSource};

fn decoder(section: &str) -> Box<dyn Decoder> {
    let config = Config::from_str(section, "bench.toml").expect("the config parses");
    let registry = hekate_plugins::registry();
    let built = HashMap::new();
    let ctx = BuildContext::new(&config.global, &built);
    let s = config.plugin("d").expect("the section");
    let t = registry.get(s.type_name()).expect("registered");
    match (t.build)(s, &ctx) {
        Ok(Built::Decoder(d)) => d.new_decoder(),
        _ => panic!("the decoder builds"),
    }
}

const SOURCE: RecordSource<'static> = RecordSource {
    input: "in",
    hostname: "127.0.0.1",
    message_bytes: false,
    msg_type: None,
    fields: &[],
};

fn json_lines() -> Vec<Vec<u8>> {
    (0..64)
        .map(|i| {
            format!(
                "{{\"@timestamp\":\"2026-11-24T21:33:12.{:03}Z\",\"host\":\"web-{:02}.example.com\",\"service\":\"checkout\",\"level\":{},\"conn\":1,\"seq\":{:>10},\"sent_ns\":{:>19},\"status\":{},\"method\":\"GET\",\"path\":\"/api/v1/users/{i}/profile\",\"duration_ms\":{:.1},\"remote_addr\":\"10.1.{}.{}\",\"message\":\"request served xxxxxxxxxxxxxxxxxxxx\"}}\n",
                i * 7 % 1000,
                i % 8,
                i % 8,
                i,
                1_795_555_992_000_000_000u64 + i as u64,
                if i % 16 == 0 { 503 } else { 200 },
                i as f64 * 1.7,
                i % 4,
                i,
            )
            .into_bytes()
        })
        .collect()
}

fn run(c: &mut Criterion, name: &str, mut d: Box<dyn Decoder>, records: &[Vec<u8>]) {
    let bytes: usize = records.iter().map(Vec::len).sum();
    let mut out = DecodedMessages::default();
    let mut g = c.benchmark_group("text_decoders");
    g.throughput(Throughput::Bytes(bytes as u64));
    g.bench_function(name, |b| {
        b.iter(|| {
            for r in records {
                out.clear();
                black_box(d.decode(black_box(r), &SOURCE, &mut out).unwrap());
            }
        })
    });
    g.finish();
}

fn json(c: &mut Criterion) {
    let d = decoder(
        r#"[d]
type = "JsonDecoder"
message_type = "app.json"
map_fields = true
Hostname = "host"
Logger = "service"
Severity = "level"
Payload = "message"
Timestamp = "@timestamp"
timestamp_format = "%Y-%m-%dT%H:%M:%SZ"
"#,
    );
    run(c, "json_mapped", d, &json_lines());
    let d = decoder("[d]\ntype = \"JsonDecoder\"\n");
    run(c, "json_fields_only", d, &json_lines());
}

fn regex(c: &mut Criterion) {
    let d = decoder(
        r#"[d]
type = "PayloadRegexDecoder"
match_regex = '^(?P<RemoteIP>\S+) \S+ \S+ \[(?P<Timestamp>[^\]]+)\] "(?P<Method>[A-Z]+) (?P<Url>[^\s]+)[^"]*" (?P<StatusCode>\d+) (?P<RequestSize>\d+)'
timestamp_layout = "02/Jan/2006:15:04:05 -0700"
[d.message_fields]
Type = "ApacheLogfile"
"Url|uri" = "%Url%"
Method = "%Method%"
"StatusCode||int" = "%StatusCode%"
"RequestSize|B|int" = "%RequestSize%"
"#,
    );
    let lines: Vec<Vec<u8>> = (0..64)
        .map(|i| {
            format!(
                "10.0.{}.{} - - [18/Apr/2013:14:00:{:02} -0700] \"GET /index/{i}.html HTTP/1.1\" 200 {}\n",
                i % 4,
                i,
                i % 60,
                500 + i
            )
            .into_bytes()
        })
        .collect();
    run(c, "payload_regex_apache", d, &lines);
}

criterion_group!(benches, json, regex);
criterion_main!(benches);
