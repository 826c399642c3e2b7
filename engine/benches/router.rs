//! The router shard's synchronous hot path: view a ~300-byte message, evaluate ten matchers of
//! typical shapes, copy it into the batch of each destination that matched, push full batches.
//! This is the per-message work of an input task between reading and the next read.
//!
//! `cargo bench -p hekate-engine --bench router -- --warm-up-time 1 --measurement-time 3`
//! Throughput is in messages.

use std::hint::black_box;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hekate_engine::mesh::{Doorbell, LaneRx, Route, RouterShard, lane};
use hekate_engine::stats::ShardStats;
use hekate_model::matcher::MatcherSpec;
use hekate_model::message::{Field, Message, MessageView};

const MATCHERS: [&str; 10] = [
    "TRUE",
    "Type == 'nginx.access'",
    "Type == 'app.log' && Severity <= 3",
    "Logger == 'web-frontend' && Fields[status] >= 500",
    "Hostname =~ /^db-/",
    "Payload =~ /panic/",
    "Fields[path] =~ /^\\/api\\//",
    "Type != 'heka.counter-output' && Type != 'heka.all-report'",
    "Fields[bytes] > 100000",
    "EnvVersion == '0.8'",
];

fn messages() -> Vec<Vec<u8>> {
    (0..64)
        .map(|i| {
            let mut m = Message::new_now();
            m.r#type = Some(if i % 2 == 0 { "nginx.access" } else { "app.log" }.into());
            m.logger = Some("web-frontend".into());
            m.hostname = Some(format!("web-{:02}.example.com", i % 8));
            m.severity = Some(6);
            m.payload = Some(format!(
                "GET /api/v1/users/{i}/profile HTTP/1.1 200 1532 \"-\" \"Mozilla/5.0 (X11; Linux x86_64)\""
            ));
            m.add_field(Field::string("path", format!("/api/v1/users/{i}/profile")));
            m.add_field(Field::integer("status", if i % 16 == 0 { 503 } else { 200 }));
            m.add_field(Field::integer("bytes", 1532));
            m.to_bytes()
        })
        .collect()
}

fn route(c: &mut Criterion) {
    let msgs = messages();
    let space = Arc::new(Doorbell::new());
    let bell = Arc::new(Doorbell::new());
    let mut rxs: Vec<LaneRx> = Vec::new();
    let routes = MATCHERS
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let (tx, rx) = lane(1024, Arc::clone(&bell), Arc::clone(&space));
            rxs.push(rx);
            Route::new(i, MatcherSpec::parse(m).unwrap(), None, tx)
        })
        .collect();
    let stats = Rc::new(ShardStats::new(0, MATCHERS.len()));
    let router = RouterShard::new(routes, space, stats, 1000, 64, Arc::new(AtomicU64::new(0)));
    let ex = glommio::LocalExecutorBuilder::default()
        .io_memory(64 << 10)
        .make()
        .unwrap();
    let mut g = c.benchmark_group("router");
    g.throughput(Throughput::Elements(msgs.len() as u64));
    g.bench_function("view_and_route_10_matchers", |b| {
        b.iter(|| {
            for m in &msgs {
                let view = MessageView::new(black_box(m)).unwrap();
                router.route(&view, None, 0);
            }
            ex.run(router.flush(true));
            // Consume, as the destinations would.
            for rx in &mut rxs {
                while let Some(batch) = rx.try_pop() {
                    rx.done(batch);
                }
            }
        });
    });
    g.finish();
}

criterion_group!(benches, route);
criterion_main!(benches);
