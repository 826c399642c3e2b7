//! The bridge to a foreign runtime: how a plugin uses a well-kept client or server crate that
//! runs on tokio (HTTP with hyper; later databases and brokers) without ever blocking a shard.
//!
//! ```text
//!   shard (glommio, core c)                       bridge thread (tokio, pinned to core c)
//!   ───────────────────────                       ───────────────────────────────────────
//!   plugin task ◀── BridgeReceiver ◀── rtrb SPSC ring ◀── BridgeSender ◀── hyper tasks
//!        │              (awaits the `filled` doorbell)   (awaits `drained` when full)
//!        └──▶ BridgeSender ──▶ ring ──▶ BridgeReceiver ──▶ (the other way, for outputs)
//! ```
//!
//! - [`ForeignRuntime::start`] runs a current-thread tokio runtime (I/O and timers on) on a thread
//!   of its own, pinned to the plugin's core, and runs the plugin's future on it inside a
//!   `LocalSet` (its tasks may be `!Send`). It ends when the handle is dropped or
//!   [`ForeignRuntime::stop`] is called: the future is dropped, and with it every task and
//!   every [`BridgeSender`] it held, which tells the shard side that nothing more comes.
//! - [`channel`] is a bounded rtrb SPSC ring with two [`Doorbell`]s: the receiver parks on
//!   `filled` while the ring is empty, the sender parks on `drained` while it is full. A
//!   doorbell's future is runtime-agnostic (it only keeps wakers), so the same channel carries
//!   work either way: tokio → shard for inputs, shard → tokio for outputs.
//! - **Back-pressure, never unbounded buffering.** The ring holds at most `capacity` items. When
//!   it is full the sending tokio task waits ([`BridgeSender::send`]); [`BridgeSender::send_within`]
//!   gives up after a bound and hands the item back, so that a server can answer "busy" (HTTP
//!   503) instead of holding a client for ever. Memory on the tokio side is what its tasks hold
//!   while they wait: one item each, and the plugin limits how many tasks there are.
//! - The sender may be shared by the tasks of its runtime (its producer sits behind a mutex that
//!   only that one thread takes, so it is never contended); the ring stays single-producer.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::mesh::Doorbell;

/// What both ends of a [`channel`] share.
#[derive(Debug, Default)]
struct Bells {
    /// Rung after an item was pushed (or an end closed).
    filled: Doorbell,
    /// Rung after an item was popped (or an end closed).
    drained: Doorbell,
    /// One end is gone.
    closed: AtomicBool,
}

impl Bells {
    fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.filled.ring();
        self.drained.ring();
    }

    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }
}

/// A bounded single-producer single-consumer channel between a shard and a foreign runtime.
pub fn channel<T: Send>(capacity: usize) -> (BridgeSender<T>, BridgeReceiver<T>) {
    let (tx, rx) = rtrb::RingBuffer::new(capacity.max(1));
    let bells = Arc::new(Bells::default());
    (
        BridgeSender {
            tx: Mutex::new(tx),
            bells: Arc::clone(&bells),
        },
        BridgeReceiver { rx, bells },
    )
}

/// Why [`BridgeSender::send_within`] handed the item back.
#[derive(Debug, PartialEq, Eq)]
pub enum SendError<T> {
    /// The ring stayed full for the whole bound.
    Full(T),
    /// The receiver is gone (the plugin stopped).
    Closed(T),
}

/// The sending end of a [`channel`].
#[derive(Debug)]
pub struct BridgeSender<T> {
    tx: Mutex<rtrb::Producer<T>>,
    bells: Arc<Bells>,
}

impl<T> BridgeSender<T> {
    fn producer(&self) -> std::sync::MutexGuard<'_, rtrb::Producer<T>> {
        self.tx.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Pushes `item` if there is room; hands it back otherwise.
    pub fn try_send(&self, item: T) -> Result<(), SendError<T>> {
        if self.bells.is_closed() {
            return Err(SendError::Closed(item));
        }
        match self.producer().push(item) {
            Ok(()) => {
                self.bells.filled.ring();
                Ok(())
            }
            Err(rtrb::PushError::Full(item)) => Err(SendError::Full(item)),
        }
    }

    /// Pushes `item`, waiting while the ring is full. Hands it back if the receiver is gone.
    pub async fn send(&self, mut item: T) -> Result<(), T> {
        loop {
            match self.try_send(item) {
                Ok(()) => return Ok(()),
                Err(SendError::Closed(i)) => return Err(i),
                Err(SendError::Full(i)) => item = i,
            }
            let bells = &self.bells;
            let tx = &self.tx;
            bells
                .drained
                .wait(|| bells.is_closed() || tx.lock().map(|p| p.slots() > 0).unwrap_or(true))
                .await;
        }
    }

    /// [`BridgeSender::send`], giving up after `bound` (tokio's timer: call it on the foreign
    /// runtime).
    pub async fn send_within(&self, item: T, bound: Duration) -> Result<(), SendError<T>> {
        let item = match self.try_send(item) {
            Err(SendError::Full(item)) => item,
            done => return done,
        };
        let slot = Mutex::new(Some(item));
        let attempt = async {
            loop {
                let Some(item) = slot.lock().ok().and_then(|mut s| s.take()) else {
                    return Ok(());
                };
                match self.try_send(item) {
                    Ok(()) => return Ok(()),
                    Err(SendError::Closed(i)) => return Err(SendError::Closed(i)),
                    Err(SendError::Full(i)) => {
                        if let Ok(mut s) = slot.lock() {
                            *s = Some(i);
                        }
                    }
                }
                let bells = &self.bells;
                let tx = &self.tx;
                bells
                    .drained
                    .wait(|| bells.is_closed() || tx.lock().map(|p| p.slots() > 0).unwrap_or(true))
                    .await;
            }
        };
        match tokio::time::timeout(bound, attempt).await {
            Ok(result) => result,
            Err(_) => match slot.into_inner().ok().flatten() {
                Some(item) => Err(SendError::Full(item)),
                None => Ok(()),
            },
        }
    }

    /// Whether the receiver is gone.
    pub fn is_closed(&self) -> bool {
        self.bells.is_closed()
    }
}

impl<T> Drop for BridgeSender<T> {
    fn drop(&mut self) {
        self.bells.close();
    }
}

/// The receiving end of a [`channel`].
#[derive(Debug)]
pub struct BridgeReceiver<T> {
    rx: rtrb::Consumer<T>,
    bells: Arc<Bells>,
}

impl<T> BridgeReceiver<T> {
    /// Pops an item if one is there.
    pub fn try_recv(&mut self) -> Option<T> {
        let item = self.rx.pop().ok()?;
        self.bells.drained.ring();
        Some(item)
    }

    /// The next item, waiting while the ring is empty; `None` once the sender is gone and
    /// everything it sent has been taken.
    pub async fn recv(&mut self) -> Option<T> {
        loop {
            if let Some(item) = self.try_recv() {
                return Some(item);
            }
            if self.bells.is_closed() {
                // Pushed just before the close?
                return self.try_recv();
            }
            let bells = &self.bells;
            let rx = &self.rx;
            bells
                .filled
                .wait(|| bells.is_closed() || !rx.is_empty())
                .await;
        }
    }
}

impl<T> Drop for BridgeReceiver<T> {
    fn drop(&mut self) {
        self.bells.close();
    }
}

/// A tokio runtime on a thread of its own, pinned to a plugin's core. See the module docs.
#[derive(Debug)]
pub struct ForeignRuntime {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ForeignRuntime {
    /// Starts the thread `hekate-<name>` on `core` and runs `main()` there until it ends or
    /// the runtime is stopped. `main` is called on the new thread, so the future it returns
    /// may hold `!Send` state and spawn with `tokio::task::spawn_local`.
    pub fn start<F, Fut>(name: &str, core: usize, main: F) -> std::io::Result<ForeignRuntime>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(format!("hekate-{name}"))
            .spawn(move || {
                // Best effort: a core outside the process's mask leaves the thread unpinned.
                let _ = core_affinity::set_for_current(core_affinity::CoreId { id: core });
                let local = tokio::task::LocalSet::new();
                local.block_on(&runtime, async move {
                    tokio::select! {
                        _ = main() => {}
                        _ = stopped => {}
                    }
                });
                // Every task (and the senders they hold) goes with the LocalSet.
                drop(local);
                runtime.shutdown_timeout(Duration::from_millis(200));
            })?;
        Ok(ForeignRuntime {
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Asks the runtime to end: its future and tasks are dropped. Does not wait.
    pub fn stop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }

    /// Whether the thread has ended.
    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(|t| t.is_finished())
    }
}

impl Drop for ForeignRuntime {
    fn drop(&mut self) {
        self.stop();
        // Not joined: a shard never blocks on the foreign thread; it ends on its own.
        drop(self.thread.take());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    fn shard() -> glommio::LocalExecutor {
        glommio::LocalExecutorBuilder::default()
            .io_memory(64 << 10)
            .make()
            .unwrap()
    }

    #[test]
    fn items_cross_from_tokio_to_the_shard_in_order_through_a_small_ring() {
        let (tx, mut rx) = channel::<u64>(4);
        let mut rt = ForeignRuntime::start("bridge-test", 0, move || async move {
            for i in 0..10_000 {
                tx.send(i).await.unwrap();
            }
        })
        .unwrap();
        shard().run(async {
            let mut expect = 0;
            while let Some(i) = rx.recv().await {
                assert_eq!(i, expect);
                expect += 1;
            }
            assert_eq!(expect, 10_000);
        });
        rt.stop();
    }

    #[test]
    fn a_full_ring_makes_the_sender_give_up_after_its_bound() {
        let (tx, rx) = channel::<u64>(2);
        let outcome = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&outcome);
        let _rt = ForeignRuntime::start("bridge-full", 0, move || async move {
            for i in 0..3 {
                let r = tx.send_within(i, Duration::from_millis(50)).await;
                seen.lock().unwrap().push(r);
            }
        })
        .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while outcome.lock().unwrap().len() < 3 {
            assert!(std::time::Instant::now() < deadline);
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(
            *outcome.lock().unwrap(),
            vec![Ok(()), Ok(()), Err(SendError::Full(2))]
        );
        drop(rx);
    }

    #[test]
    fn stopping_the_runtime_ends_the_receiver() {
        let (tx, mut rx) = channel::<u64>(2);
        let started = Arc::new(AtomicUsize::new(0));
        let s = Arc::clone(&started);
        let mut rt = ForeignRuntime::start("bridge-stop", 0, move || async move {
            tx.send(7).await.unwrap();
            s.store(1, Ordering::Release);
            std::future::pending::<()>().await;
        })
        .unwrap();
        shard().run(async {
            assert_eq!(rx.recv().await, Some(7));
            rt.stop();
            assert_eq!(rx.recv().await, None);
        });
        assert_eq!(started.load(Ordering::Acquire), 1);
    }
}
