//! The ring mesh: what moving messages between shards costs, per message, as batches.
//!
//! - `same_thread/*`: fill a batch of ~300-byte messages (bytes and view layout), push it
//!   through a lane, pop it, view every message, return the batch — the whole per-message cost of a lane hop without
//!   cross-core traffic, at batch sizes 1 (the baseline: one message per ring slot), 16 and 64.
//! - `cross_thread/batch_64`: the same with producer and consumer on two threads (two cores on
//!   a 2-core host), the consumer spinning on an empty lane as a busy shard would.
//!
//! `cargo bench -p hekate-engine --bench ring -- --warm-up-time 1 --measurement-time 3`
//! Throughput is in messages.

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hekate_engine::mesh::{Batch, Doorbell, lane};
use hekate_model::message::{Field, Message, MessageAccess, MessageView};

const MESSAGES: usize = 64 * 1024;

fn message() -> Vec<u8> {
    let mut m = Message::new_now();
    m.r#type = Some("nginx.access".into());
    m.logger = Some("web-frontend".into());
    m.hostname = Some("web-01.example.com".into());
    m.payload = Some(
        "GET /api/v1/users/12345/profile HTTP/1.1 200 1532 \"-\" \"Mozilla/5.0 (X11; Linux x86_64)\""
            .into(),
    );
    m.add_field(Field::string("path", "/api/v1/users/12345/profile"));
    m.add_field(Field::integer("status", 200));
    m.add_field(Field::integer("bytes", 1532));
    m.to_bytes()
}

fn same_thread(c: &mut Criterion) {
    let bytes = message();
    let msg = MessageView::new(&bytes).unwrap();
    let mut g = c.benchmark_group("same_thread");
    g.throughput(Throughput::Elements(MESSAGES as u64));
    for batch_size in [1usize, 16, 64] {
        g.bench_function(format!("batch_{batch_size}"), |b| {
            let (cb, pb) = (Arc::new(Doorbell::new()), Arc::new(Doorbell::new()));
            let (mut tx, mut rx) = lane(1024, cb, pb);
            b.iter(|| {
                let mut seen = 0usize;
                for _ in 0..MESSAGES / batch_size {
                    let mut batch = tx
                        .recycled()
                        .unwrap_or_else(|| Batch::with_capacity(batch_size, batch_size * 320));
                    for _ in 0..batch_size {
                        batch.push(&msg, 0);
                    }
                    tx.try_push(batch).expect("the consumer keeps up");
                    let batch = rx.try_pop().expect("a batch");
                    for (view, _) in batch.iter() {
                        seen += view.msg_type().len();
                    }
                    rx.done(batch);
                }
                black_box(seen)
            });
        });
    }
    g.finish();
}

fn cross_thread(c: &mut Criterion) {
    let bytes = message();
    let mut g = c.benchmark_group("cross_thread");
    g.throughput(Throughput::Elements(MESSAGES as u64));
    g.bench_function("batch_64", |b| {
        b.iter_custom(|iters| {
            let (cb, pb) = (Arc::new(Doorbell::new()), Arc::new(Doorbell::new()));
            let (mut tx, mut rx) = lane(1024, cb, pb);
            let total = iters as usize * MESSAGES;
            let done = Arc::new(AtomicBool::new(false));
            let d = Arc::clone(&done);
            let consumer = std::thread::spawn(move || {
                let mut seen = 0usize;
                while seen < total {
                    match rx.try_pop() {
                        Some(batch) => {
                            for (view, _) in batch.iter() {
                                black_box(view.severity());
                                seen += 1;
                            }
                            rx.done(batch);
                        }
                        None => std::hint::spin_loop(),
                    }
                }
                d.store(true, Ordering::Release);
            });
            let msg = MessageView::new(&bytes).unwrap();
            let start = std::time::Instant::now();
            let mut sent = 0;
            while sent < total {
                let mut batch = tx
                    .recycled()
                    .unwrap_or_else(|| Batch::with_capacity(64, 64 * 320));
                for _ in 0..64 {
                    batch.push(&msg, 0);
                }
                let mut batch = Some(batch);
                while let Some(b) = batch.take() {
                    if let Err(b) = tx.try_push(b) {
                        std::hint::spin_loop();
                        batch = Some(b);
                    }
                }
                sent += 64;
            }
            consumer.join().unwrap();
            assert!(done.load(Ordering::Acquire));
            start.elapsed()
        });
    });
    g.finish();
}

criterion_group!(benches, same_thread, cross_thread);
criterion_main!(benches);
