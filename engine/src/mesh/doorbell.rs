//! Waking a parked task, across cores (`Doorbell`) or within one shard (`LocalEvent`).
//!
//! A ring consumer that finds its rings empty parks: it registers its waker and sleeps in the
//! executor (glommio blocks in `io_uring_enter`; a waker from another thread reaches it through
//! glommio's eventfd). The producer rings after each batch it pushes; ringing costs a fence and a
//! load when nobody is parked, so the hot path pays nothing per message and an idle process burns
//! no CPU.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering, fence};
use std::task::{Context, Poll, Waker};

/// A cross-thread wake-up point for tasks waiting for a condition another core makes true.
#[derive(Debug, Default)]
pub struct Doorbell {
    armed: AtomicBool,
    wakers: Mutex<Vec<Waker>>,
}

impl Doorbell {
    /// A doorbell nobody waits on yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Wakes every task parked on this doorbell. Call after making a waited-for condition true.
    #[inline]
    pub fn ring(&self) {
        // Pairs with the fence in `Wait::poll`: either the waiter sees our new state, or we see
        // its `armed` flag.
        fence(Ordering::SeqCst);
        if self.armed.load(Ordering::Relaxed) && self.armed.swap(false, Ordering::SeqCst) {
            let wakers = std::mem::take(&mut *self.lock());
            for w in wakers {
                w.wake();
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Waker>> {
        self.wakers.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Resolves once `ready()` returns true; `ready` is re-checked after each ring.
    pub fn wait<F: FnMut() -> bool>(&self, ready: F) -> Wait<'_, F> {
        Wait { bell: self, ready }
    }
}

/// The future of [`Doorbell::wait`].
#[derive(Debug)]
pub struct Wait<'a, F> {
    bell: &'a Doorbell,
    ready: F,
}

impl<F: FnMut() -> bool + Unpin> Future for Wait<'_, F> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if (self.ready)() {
            return Poll::Ready(());
        }
        {
            let mut wakers = self.bell.lock();
            if !wakers.iter().any(|w| w.will_wake(cx.waker())) {
                wakers.push(cx.waker().clone());
            }
            self.bell.armed.store(true, Ordering::SeqCst);
        }
        fence(Ordering::SeqCst);
        if (self.ready)() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

/// A one-shot event within one shard (stop signals): set once, every waiter wakes.
#[derive(Debug, Clone, Default)]
pub struct LocalEvent {
    inner: Rc<LocalEventInner>,
}

#[derive(Debug, Default)]
struct LocalEventInner {
    set: Cell<bool>,
    wakers: RefCell<Vec<Waker>>,
}

impl LocalEvent {
    /// An event not set yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the event and wakes every waiter.
    pub fn set(&self) {
        if !self.inner.set.replace(true) {
            for w in self.inner.wakers.take() {
                w.wake();
            }
        }
    }

    /// Whether the event is set.
    pub fn is_set(&self) -> bool {
        self.inner.set.get()
    }

    /// Resolves once the event is set.
    pub fn wait(&self) -> LocalWait {
        LocalWait {
            event: self.clone(),
        }
    }
}

/// The future of [`LocalEvent::wait`].
#[derive(Debug)]
pub struct LocalWait {
    event: LocalEvent,
}

impl Future for LocalWait {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let inner = &self.event.inner;
        if inner.set.get() {
            return Poll::Ready(());
        }
        let mut wakers = inner.wakers.borrow_mut();
        if !wakers.iter().any(|w| w.will_wake(cx.waker())) {
            wakers.push(cx.waker().clone());
        }
        Poll::Pending
    }
}

/// The tasks of one input (its connections): the input ends only once every one has ended, so
/// that shutdown waits for what they have read to be routed.
#[derive(Debug, Clone, Default)]
pub struct TaskGroup {
    inner: Rc<TaskGroupInner>,
}

#[derive(Debug, Default)]
struct TaskGroupInner {
    live: Cell<usize>,
    idle: RefCell<Vec<Waker>>,
}

impl TaskGroup {
    /// An empty group.
    pub fn new() -> Self {
        Self::default()
    }

    /// Spawns `fut` on this shard as a member of the group.
    pub fn spawn(&self, fut: impl Future<Output = ()> + 'static) {
        self.inner.live.set(self.inner.live.get() + 1);
        let inner = Rc::clone(&self.inner);
        glommio::spawn_local(async move {
            fut.await;
            inner.live.set(inner.live.get() - 1);
            if inner.live.get() == 0 {
                for w in inner.idle.take() {
                    w.wake();
                }
            }
        })
        .detach();
    }

    /// Members still running.
    pub fn len(&self) -> usize {
        self.inner.live.get()
    }

    /// Whether no member runs.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Resolves once no member runs.
    pub async fn wait_idle(&self) {
        std::future::poll_fn(|cx| {
            if self.inner.live.get() == 0 {
                return Poll::Ready(());
            }
            let mut idle = self.inner.idle.borrow_mut();
            if !idle.iter().any(|w| w.will_wake(cx.waker())) {
                idle.push(cx.waker().clone());
            }
            Poll::Pending
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicU64;

    #[test]
    fn a_ring_from_another_thread_wakes_the_waiter() {
        let bell = Arc::new(Doorbell::new());
        let value = Arc::new(AtomicU64::new(0));
        let (b, v) = (Arc::clone(&bell), Arc::clone(&value));
        let producer = std::thread::spawn(move || {
            for i in 1..=1000 {
                v.store(i, Ordering::Release);
                b.ring();
            }
        });
        let ex = glommio::LocalExecutorBuilder::default()
            .io_memory(64 << 10)
            .make()
            .unwrap();
        ex.run(async {
            bell.wait(|| value.load(Ordering::Acquire) == 1000).await;
        });
        producer.join().unwrap();
    }

    #[test]
    fn local_event_wakes_every_waiter() {
        let ex = glommio::LocalExecutorBuilder::default()
            .io_memory(64 << 10)
            .make()
            .unwrap();
        ex.run(async {
            let ev = LocalEvent::new();
            let tasks: Vec<_> = (0..3)
                .map(|_| glommio::spawn_local(ev.wait()).detach())
                .collect();
            glommio::yield_if_needed().await;
            ev.set();
            for t in tasks {
                t.await;
            }
            assert!(ev.is_set());
        });
    }
}
