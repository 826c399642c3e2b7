//! Listening sockets handed from an input a reload stops to the input that replaces it on the
//! same address, so that a reload that changes an input (its decoder, its TLS, its limits) but
//! not its address refuses no connection and loses no datagram.
//!
//! Before it stops inputs, the reload says which addresses their successors will listen on
//! (`expect`). An input that ends on one of them does not close its socket: it leaves a
//! duplicate of it here, by address and shard ([`park`]); a TCP input parks its [`Acceptor`],
//! with the accept it has in flight, on its shard ([`Acceptor::park`]). The successor, started
//! on the same shard, takes it ([`Acceptor::bind`], [`udp_socket`], [`adopt`]) instead of
//! binding a new one.
//! Meanwhile the kernel keeps queueing: connections wait in the listener's backlog, datagrams in
//! the socket's receive buffer, and the successor takes them as they would have been taken
//! without the reload. Once the successors started, the reload drops what nobody took
//! (`finish`, and `release_local` on every shard): a successor placed on fewer shards than
//! its predecessor, or of another kind (a connection waiting in such a backlog is reset, as at
//! any close of a listener).
//!
//! Connections the old input had accepted are not handed over: they end as at shutdown (what
//! they sent is read and routed, then they close), and their senders reconnect to the new one.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd};
use std::rc::Rc;
use std::sync::{Mutex, MutexGuard};

use super::LocalBoxFuture;

use super::ListenAddress;

#[derive(Default)]
struct Parked {
    expected: HashSet<ListenAddress>,
    sockets: HashMap<(ListenAddress, usize), OwnedFd>,
}

static PARKED: Mutex<Option<Parked>> = Mutex::new(None);

fn parked() -> MutexGuard<'static, Option<Parked>> {
    PARKED.lock().unwrap_or_else(|e| e.into_inner())
}

/// The reload is about to stop inputs whose successors listen on `addresses`.
pub(crate) fn expect(addresses: impl IntoIterator<Item = ListenAddress>) {
    let mut p = parked();
    p.get_or_insert_with(Parked::default)
        .expected
        .extend(addresses);
}

/// The successors started: sockets nobody took are closed, nothing more is expected.
pub(crate) fn finish() {
    let left = parked().take();
    if let Some(left) = left
        && !left.sockets.is_empty()
    {
        tracing::info!(
            "Reload: {} listening socket(s) of stopped inputs had no successor on their shard and were closed",
            left.sockets.len()
        );
    }
}

/// An input ends with its socket for `address` on `shard`: when a successor will listen on the
/// same address, a duplicate of the socket waits for it here (the caller closes its own).
pub fn park(address: ListenAddress, shard: usize, socket: &impl AsRawFd) {
    let mut p = parked();
    let Some(p) = p.as_mut().filter(|p| p.expected.contains(&address)) else {
        return;
    };
    // SAFETY: `socket` is open for the duration of this call, which only duplicates it.
    let fd = unsafe { BorrowedFd::borrow_raw(socket.as_raw_fd()) };
    match fd.try_clone_to_owned() {
        Ok(dup) => {
            p.sockets.insert((address, shard), dup);
        }
        Err(e) => tracing::warn!(
            "Reload: the socket on {} cannot be kept for the new input ({e}); it binds its own",
            address.socket_addr()
        ),
    }
}

/// The socket a stopped input left for `address` on `shard`, if any.
pub fn adopt(address: ListenAddress, shard: usize) -> Option<OwnedFd> {
    parked().as_mut()?.sockets.remove(&(address, shard))
}

thread_local! {
    /// Acceptors parked on this shard, by address, with the accept they have in flight.
    static ACCEPTORS: RefCell<HashMap<SocketAddr, Acceptor>> = RefCell::new(HashMap::new());
}

/// A TCP listener of one shard whose accept is cancel-safe: an accept interrupted (by a stop)
/// stays in flight and is finished by the next call, or by the successor the acceptor is
/// parked for. (Dropping an io_uring accept that the kernel completed meanwhile would lose
/// the connection it took.)
pub struct Acceptor {
    address: SocketAddr,
    listener: Rc<glommio::net::TcpListener>,
    pending: Option<LocalBoxFuture<'static, glommio::Result<glommio::net::TcpStream, ()>>>,
}

impl std::fmt::Debug for Acceptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Acceptor")
            .field("address", &self.address)
            .field("accepting", &self.pending.is_some())
            .finish()
    }
}

impl Acceptor {
    /// The acceptor for `address` on `shard`: the one a stopped input of this shard parked, a
    /// socket another kind of input handed over, or a new listener (SO_REUSEPORT, so that
    /// every shard binds it).
    pub fn bind(address: SocketAddr, shard: usize) -> std::io::Result<Acceptor> {
        if let Some(a) = ACCEPTORS.with(|m| m.borrow_mut().remove(&address)) {
            return Ok(a);
        }
        let listener = match adopt(ListenAddress::Tcp(address), shard) {
            // SAFETY: the descriptor is a listening TCP socket owned by nothing else.
            Some(fd) => unsafe { glommio::net::TcpListener::from_raw_fd(fd.into_raw_fd()) },
            None => glommio::net::TcpListener::bind(address)?,
        };
        Ok(Acceptor {
            address,
            listener: Rc::new(listener),
            pending: None,
        })
    }

    /// The next connection. Cancel-safe: see [`Acceptor`].
    pub async fn accept(&mut self) -> glommio::Result<glommio::net::TcpStream, ()> {
        let listener = &self.listener;
        let pending = self.pending.get_or_insert_with(|| {
            let l = Rc::clone(listener);
            Box::pin(async move { l.accept().await })
        });
        let accepted = pending.await;
        self.pending = None;
        accepted
    }

    /// The input ends: when a successor will listen on the same address, the acceptor (and its
    /// accept in flight) waits for it on this shard; otherwise it closes.
    pub fn park(self) {
        if parked()
            .as_ref()
            .is_some_and(|p| p.expected.contains(&ListenAddress::Tcp(self.address)))
        {
            ACCEPTORS.with(|m| m.borrow_mut().insert(self.address, self));
        }
    }
}

/// Drops the acceptors parked on this shard that no successor took (after a reload started its
/// inputs).
pub(crate) fn release_local() {
    let left = ACCEPTORS.with(|m| std::mem::take(&mut *m.borrow_mut()));
    if !left.is_empty() {
        tracing::info!(
            "Reload: {} listener(s) of stopped inputs had no successor on their shard and were closed",
            left.len()
        );
    }
}

/// A UDP socket on `address` for `shard`: the one a stopped input handed over (with the
/// datagrams waiting in it), or a new one.
pub fn udp_socket(address: SocketAddr, shard: usize) -> std::io::Result<glommio::net::UdpSocket> {
    match adopt(ListenAddress::Udp(address), shard) {
        // SAFETY: the descriptor is a bound UDP socket (a UdpSocket's, duplicated) and is owned
        // by nothing else.
        Some(fd) => Ok(unsafe { glommio::net::UdpSocket::from_raw_fd(fd.into_raw_fd()) }),
        None => glommio::net::UdpSocket::bind(address).map_err(std::io::Error::from),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // One test: the registry is process-wide.
    #[test]
    fn a_socket_waits_for_its_successor_only_when_one_is_expected() {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let at = std_listener.local_addr().unwrap();
        let address = ListenAddress::Tcp(at);
        park(address, 0, &std_listener);
        assert!(adopt(address, 0).is_none(), "nothing was expected");

        expect([address]);
        park(address, 0, &std_listener);
        drop(std_listener);
        assert!(adopt(address, 1).is_none(), "another shard's");
        let fd = adopt(address, 0).expect("parked");
        // The listener lives on in the duplicate: a client connects and is accepted.
        let listener = std::net::TcpListener::from(fd);
        let client = std::net::TcpStream::connect(at).unwrap();
        let (conn, _) = listener.accept().unwrap();
        assert_eq!(conn.peer_addr().unwrap(), client.local_addr().unwrap());

        park(address, 1, &listener);
        finish();
        assert!(adopt(address, 1).is_none(), "finish drops what nobody took");
    }
}
