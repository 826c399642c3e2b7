//! The foreign-runtime bridge: what carrying one item from a tokio thread to a glommio shard
//! costs, through a [`bridge::channel`] of 64 slots, with the tokio side awaiting room when the
//! ring is full and the shard parking on its doorbell when it is empty (as HttpListenInput
//! uses it). Both threads are left unpinned; on a 2-core host they share or split the cores as
//! the scheduler decides.
//!
//! `cargo bench -p hekate-engine --bench bridge -- --warm-up-time 1 --measurement-time 3`
//! Throughput is in items (one item = one request body handle).

use std::hint::black_box;
use std::sync::mpsc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hekate_engine::plugin::bridge::{self, ForeignRuntime};

const ITEMS: u64 = 100_000;

fn tokio_to_shard(c: &mut Criterion) {
    let mut g = c.benchmark_group("bridge");
    g.throughput(Throughput::Elements(ITEMS));
    let shard = glommio::LocalExecutorBuilder::default()
        .io_memory(64 << 10)
        .make()
        .unwrap();
    // One tokio runtime for the whole bench; each iteration asks it for ITEMS items.
    let (orders, take_orders) = mpsc::channel::<bridge::BridgeSender<Vec<u8>>>();
    let _rt = ForeignRuntime::start("bridge-bench", 0, move || async move {
        while let Ok(tx) = take_orders.recv() {
            for i in 0..ITEMS {
                let _ = tx.send(vec![i as u8; 16]).await;
            }
        }
    })
    .unwrap();
    g.bench_function("channel_64/16_byte_items", |b| {
        b.iter(|| {
            let (tx, mut rx) = bridge::channel::<Vec<u8>>(64);
            orders.send(tx).unwrap();
            shard.run(async {
                let mut n = 0u64;
                while let Some(item) = rx.recv().await {
                    n += black_box(item.len()) as u64;
                }
                assert_eq!(n, ITEMS * 16);
            });
        })
    });
    g.finish();
}

criterion_group!(benches, tokio_to_shard);
criterion_main!(benches);
