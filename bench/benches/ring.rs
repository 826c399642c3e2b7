//! Moving work between cores through an rtrb SPSC ring: the baseline the runtime's batch rings
//! are measured against. A producer thread sends N items while this thread consumes them:
//! one at a time, in chunks of 256, and as batches of 256 message handles recycled through a
//! return ring (the pattern of a shard handing batches to a single-instance plugin).

use std::hint::black_box;
use std::thread;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rtrb::RingBuffer;

const ITEMS: u64 = 1 << 20;
const CHUNK: usize = 256;

/// Sends `ITEMS` u64 one at a time; returns the time to receive them all.
fn one_at_a_time() -> Duration {
    let (mut tx, mut rx) = RingBuffer::<u64>::new(4096);
    let start = Instant::now();
    let producer = thread::spawn(move || {
        for i in 0..ITEMS {
            while tx.push(i).is_err() {
                std::hint::spin_loop();
            }
        }
    });
    let mut sum = 0u64;
    let mut got = 0;
    while got < ITEMS {
        match rx.pop() {
            Ok(v) => {
                sum = sum.wrapping_add(v);
                got += 1;
            }
            Err(_) => std::hint::spin_loop(),
        }
    }
    let elapsed = start.elapsed();
    producer.join().unwrap();
    black_box(sum);
    elapsed
}

/// Sends `ITEMS` u64 in chunks of `CHUNK`.
fn chunked() -> Duration {
    let (mut tx, mut rx) = RingBuffer::<u64>::new(4096);
    let start = Instant::now();
    let producer = thread::spawn(move || {
        let chunk: Vec<u64> = (0..CHUNK as u64).collect();
        let mut sent = 0;
        while sent < ITEMS {
            if tx.push_entire_slice(&chunk).is_ok() {
                sent += CHUNK as u64;
            } else {
                std::hint::spin_loop();
            }
        }
    });
    let mut buf = vec![0u64; CHUNK];
    let mut got = 0;
    let mut sum = 0u64;
    while got < ITEMS {
        let (done, _) = rx.pop_partial_slice(&mut buf);
        if done.is_empty() {
            std::hint::spin_loop();
            continue;
        }
        sum = done.iter().fold(sum, |s, v| s.wrapping_add(*v));
        got += done.len() as u64;
    }
    let elapsed = start.elapsed();
    producer.join().unwrap();
    black_box(sum);
    elapsed
}

/// A batch of message handles (offsets and lengths into a read buffer), allocated once and
/// recycled.
type Batch = Box<[(u32, u32); CHUNK]>;

/// Sends `ITEMS` handles as full batches; the consumer returns empty batches on a second ring.
fn batches() -> Duration {
    let (mut full_tx, mut full_rx) = RingBuffer::<Batch>::new(64);
    let (mut empty_tx, mut empty_rx) = RingBuffer::<Batch>::new(64);
    for _ in 0..32 {
        empty_tx.push(Box::new([(0, 0); CHUNK])).unwrap();
    }
    let start = Instant::now();
    let producer = thread::spawn(move || {
        let mut sent = 0;
        while sent < ITEMS {
            let Ok(mut batch) = empty_rx.pop() else {
                std::hint::spin_loop();
                continue;
            };
            for (i, slot) in batch.iter_mut().enumerate() {
                *slot = ((sent + i as u64) as u32, 300);
            }
            loop {
                match full_tx.push(batch) {
                    Ok(()) => break,
                    Err(rtrb::PushError::Full(b)) => {
                        batch = b;
                        std::hint::spin_loop();
                    }
                }
            }
            sent += CHUNK as u64;
        }
    });
    let mut got = 0;
    let mut bytes = 0u64;
    while got < ITEMS {
        let Ok(batch) = full_rx.pop() else {
            std::hint::spin_loop();
            continue;
        };
        bytes += batch.iter().map(|(_, len)| u64::from(*len)).sum::<u64>();
        got += CHUNK as u64;
        let mut batch = batch;
        while let Err(rtrb::PushError::Full(b)) = empty_tx.push(batch) {
            batch = b;
            std::hint::spin_loop();
        }
    }
    let elapsed = start.elapsed();
    producer.join().unwrap();
    black_box(bytes);
    elapsed
}

fn ring(c: &mut Criterion) {
    let mut g = c.benchmark_group("rtrb");
    g.throughput(Throughput::Elements(ITEMS));
    g.sample_size(10);
    g.bench_function("u64 one at a time", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| one_at_a_time()).sum())
    });
    g.bench_function("u64 in chunks of 256", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| chunked()).sum())
    });
    g.bench_function("batches of 256 handles, recycled", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| batches()).sum())
    });
    g.finish();
}

criterion_group!(benches, ring);
criterion_main!(benches);
