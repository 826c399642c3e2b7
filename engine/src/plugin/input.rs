//! The input kind: an [`InputPlugin`] and what it gets from the runtime on each shard, its
//! [`InputContext`] — a way to register connections for a clean shutdown, to deliver messages it
//! builds itself, to ask for shutdown, and a [`RecordStream`] per connection that splits, decodes
//! and routes inline on the reading task (see [`stream`](super::stream)).

use std::cell::{Cell, RefCell};
use std::fmt;
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::rc::Rc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::control::ShardEvent;
use super::kinds::{LocalBoxFuture, PluginError};
use super::stream::{DecoderCache, RecordStream, StreamSpec};
use crate::mesh::{LocalEvent, LocalWait, RouterShard};
use crate::stats::{PluginCounters, ShardStats, add};
use hekate_model::message::{MessageView, ViewError};

/// Where an input runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputPlacement {
    /// On every worker shard (listeners bound with SO_REUSEPORT: the kernel spreads connections).
    EveryShard,
    /// On one shard only (a file stream, a periodic poller).
    OneShard,
}

/// An address an input listens on. Shards bind it with SO_REUSEPORT, which would also let another
/// process bind it; the runtime refuses to start when another process already holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ListenAddress {
    /// A TCP listener.
    Tcp(SocketAddr),
    /// A UDP socket.
    Udp(SocketAddr),
}

impl ListenAddress {
    /// The socket address, whatever the protocol.
    pub fn socket_addr(&self) -> SocketAddr {
        match *self {
            ListenAddress::Tcp(a) | ListenAddress::Udp(a) => a,
        }
    }
}

/// A configured input.
pub trait InputPlugin: Send + Sync + fmt::Debug {
    /// Where the input runs.
    fn placement(&self) -> InputPlacement {
        InputPlacement::EveryShard
    }

    /// The addresses the input listens on, so that the runtime can make sure, before any shard
    /// binds them, that no other process holds one. Empty for an input that does not listen.
    fn listen_addresses(&self) -> Vec<ListenAddress> {
        Vec::new()
    }

    /// What the input would read, for `hekate logstreamer` and the like: every source it finds
    /// now and in which order it reads them. `None` for inputs with nothing to tell.
    fn describe(&self) -> Option<String> {
        None
    }

    /// How the input turns bytes into messages, for `hekate trace`: its splitter and decoder,
    /// and the Type it gives messages built from payloads. `None` for inputs that build their
    /// messages otherwise.
    fn stream_spec(&self) -> Option<(&StreamSpec, Option<&'static str>)> {
        None
    }

    /// Opens the input on one shard (bind errors surface here, at start) and returns the future
    /// that serves it until [`InputContext::stopped`] fires.
    fn start(
        &self,
        ctx: InputContext,
    ) -> Result<LocalBoxFuture<'static, Result<(), PluginError>>, PluginError>;
}

/// Connections of one shard to shut down for reading when the inputs stop.
#[derive(Debug, Default)]
pub(crate) struct Connections {
    fds: RefCell<Vec<Option<RawFd>>>,
}

impl Connections {
    /// Half-closes every registered connection: pending reads return end-of-stream, so each
    /// connection task processes what it has read and ends on its own (no cancelled read, no
    /// lost bytes).
    pub(crate) fn shutdown_reads(&self) {
        for fd in self.fds.borrow().iter().flatten() {
            // SAFETY: the fd is registered only while its connection task holds it open.
            unsafe {
                libc::shutdown(*fd, libc::SHUT_RD);
            }
        }
    }
}

/// Keeps a connection registered for shutdown; unregisters on drop. Drop it before the socket.
#[derive(Debug)]
pub struct ConnectionGuard {
    conns: Rc<Connections>,
    slot: usize,
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.conns.fds.borrow_mut()[self.slot] = None;
        release_memory_soon();
    }
}

/// How long after the last of a run of connections closed the shard gives freed memory back.
const RELEASE_DELAY: Duration = Duration::from_secs(1);

thread_local! {
    /// When a connection of this shard last closed, while a release is scheduled.
    static RELEASE_AFTER: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// Gives the heap memory freed by closed connections back to the system, [`RELEASE_DELAY`]
/// after the last of a run of closes. A connection's allocations come from its shard thread's
/// malloc arena, which keeps freed pages resident: without this, 10,000 connections that
/// opened and closed left hundreds of MiB resident for good.
fn release_memory_soon() {
    let now = Instant::now();
    if RELEASE_AFTER.with(|r| r.replace(Some(now))).is_some() {
        return;
    }
    glommio::spawn_local(async {
        while let Some(last) = RELEASE_AFTER.with(Cell::get) {
            let due = last + RELEASE_DELAY;
            if Instant::now() >= due {
                break;
            }
            glommio::timer::sleep(due.saturating_duration_since(Instant::now())).await;
        }
        RELEASE_AFTER.with(|r| r.set(None));
        // SAFETY: malloc_trim only returns free memory of the allocator's arenas to the system.
        unsafe {
            libc::malloc_trim(0);
        }
    })
    .detach();
}

/// An input's view of the shard it runs on.
#[derive(Debug, Clone)]
pub struct InputContext {
    /// The input's section name.
    pub name: Rc<str>,
    /// The shard index.
    pub shard: usize,
    /// The shard's CPU core.
    pub core: usize,
    /// How many worker shards there are: an input on every shard that divides work among its
    /// instances (LogstreamerInput's streams) takes its share by `shard`.
    pub shards: usize,
    /// Heka's hostname.
    pub hostname: Rc<str>,
    /// Global `max_message_size`.
    pub max_message_size: u32,
    pub(crate) plugin: usize,
    pub(crate) router: Rc<RouterShard>,
    pub(crate) stats: Rc<ShardStats>,
    pub(crate) stop: LocalEvent,
    pub(crate) conns: Rc<Connections>,
    pub(crate) decoders: Rc<DecoderCache>,
    pub(crate) events: mpsc::Sender<ShardEvent>,
}

impl InputContext {
    /// Resolves when the input must stop (shutdown).
    pub fn stopped(&self) -> LocalWait {
        self.stop.wait()
    }

    /// Whether the input must stop.
    pub fn is_stopped(&self) -> bool {
        self.stop.is_set()
    }

    /// Sleeps for `duration` (a ticker's period), or until the input must stop; whether it
    /// must stop.
    pub async fn sleep_unless_stopped(&self, duration: std::time::Duration) -> bool {
        futures_lite::future::or(
            async {
                self.stopped().await;
                true
            },
            async {
                glommio::timer::sleep(duration).await;
                false
            },
        )
        .await
    }

    /// Registers a connection so that shutdown ends its reads cleanly.
    pub fn register_connection(&self, fd: RawFd) -> ConnectionGuard {
        let mut fds = self.conns.fds.borrow_mut();
        let slot = match fds.iter().position(Option::is_none) {
            Some(i) => {
                fds[i] = Some(fd);
                i
            }
            None => {
                fds.push(Some(fd));
                fds.len() - 1
            }
        };
        ConnectionGuard {
            conns: Rc::clone(&self.conns),
            slot,
        }
    }

    /// Routes a complete encoded message the input built itself (a Lua sandbox input), counted
    /// as received and delivered by this input. Never waits: call [`InputContext::flush`]
    /// afterwards.
    pub fn deliver(&self, encoded: &[u8]) -> Result<(), ViewError> {
        let c = self.counters();
        add(&c.received, 1);
        match MessageView::new(encoded) {
            Ok(view) => {
                self.router.route(&view, None, 0);
                add(&c.delivered, 1);
                Ok(())
            }
            Err(e) => {
                add(&c.dropped, 1);
                Err(e)
            }
        }
    }

    /// Pushes what [`InputContext::deliver`] routed into the lanes, waiting while they are full
    /// (back-pressure).
    pub async fn flush(&self) {
        self.router.flush(true).await;
    }

    /// Stops the pipeline: an input that may not exit (Heka's `can_exit = false`) has ended.
    pub fn request_shutdown(&self, reason: impl Into<String>) {
        let _ = self.events.send(ShardEvent::Shutdown {
            reason: reason.into(),
        });
    }

    /// This input's counters on this shard.
    pub fn counters(&self) -> &PluginCounters {
        &self.stats.plugins[self.plugin]
    }

    /// A record stream for one connection (or one datagram socket). `hostname` is the Hostname of
    /// messages built from payloads (the remote host, or `None` for Heka's hostname).
    pub fn stream(&self, spec: &StreamSpec, hostname: Option<&str>) -> RecordStream {
        RecordStream::new(
            spec,
            &self.decoders,
            Rc::clone(&self.name),
            hostname.map_or_else(|| Rc::clone(&self.hostname), Rc::from),
            Rc::clone(&self.router),
            Rc::clone(&self.stats),
            self.plugin,
        )
    }
}
