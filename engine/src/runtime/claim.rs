//! One owner per listen address.
//!
//! Inputs bind their listeners on every worker shard with SO_REUSEPORT, so that the kernel spreads
//! connections and datagrams over the cores. The same option lets another process that sets it —
//! a second hekate on the same configuration — bind the same address without an error, and the
//! kernel then splits the traffic between the two processes. So before any shard binds, every
//! listen address is probed with a plain socket (TCP: SO_REUSEADDR, so that connections of an
//! earlier run still in TIME_WAIT do not count, but no SO_REUSEPORT; UDP: no reuse option), which
//! the kernel refuses to bind while anyone else listens on the address; the probe never listens
//! (a client connecting during the start would be accepted by it, then reset) and is closed
//! again before the shards bind. A refused probe is tried again for up to a second: after
//! `kill -9` the kernel keeps the dead process's listener for a few milliseconds while it tears
//! down its io_uring, and a restart right away must not be refused for it. Two inputs of one configuration on the same address are
//! refused too: they would split the traffic the same way.
//!
//! A process that binds between the probe and the shards is not seen; a `pid_file` closes that
//! gap for two hekates on the same configuration.

use std::collections::HashMap;
use std::io;

use socket2::{Domain, Protocol, Socket, Type};

use super::{Pipeline, StartError};
use crate::plugin::{Built, ListenAddress};

/// Refuses to start when another process holds a listen address of an input, or when two
/// inputs listen on the same address. Errors other than "in use" are left to the shards' own
/// binds, which report them with the input's name.
pub(crate) fn claim_listen_addresses(pipeline: &Pipeline) -> Result<(), StartError> {
    let mut owners: HashMap<ListenAddress, &str> = HashMap::new();
    for info in &pipeline.plugins {
        let Built::Input(input) = &info.built else {
            continue;
        };
        for address in input.listen_addresses() {
            let at = address.socket_addr();
            // Port 0 asks the kernel for any free port: nothing to claim.
            if at.port() == 0 {
                continue;
            }
            let who = format!("{} '{}'", info.type_name, info.name);
            if let Some(first) = owners.insert(address, &info.name) {
                return Err(StartError::AddressInUse(format!(
                    "{who}: address {at} is also the address of input '{first}'"
                )));
            }
            match probe_patiently(address) {
                Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
                    return Err(StartError::AddressInUse(format!(
                        "{who}: address {at} is in use by another process"
                    )));
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// How long a refused probe is tried again (a listener of a process just killed lingers).
const PATIENCE: std::time::Duration = std::time::Duration::from_secs(1);

/// [`probe`], tried again while it is refused, for up to [`PATIENCE`].
pub(crate) fn probe_patiently(address: ListenAddress) -> io::Result<()> {
    let until = std::time::Instant::now() + PATIENCE;
    loop {
        match probe(address) {
            Err(e) if e.kind() == io::ErrorKind::AddrInUse && std::time::Instant::now() < until => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            done => return done,
        }
    }
}

/// Binds `address` with a socket that shares it with nobody, and closes it.
fn probe(address: ListenAddress) -> io::Result<()> {
    let at = address.socket_addr();
    let domain = Domain::for_address(at);
    match address {
        ListenAddress::Tcp(_) => {
            let socket = Socket::new(domain, Type::STREAM, Some(Protocol::TCP))?;
            socket.set_reuse_address(true)?;
            socket.bind(&at.into())
        }
        ListenAddress::Udp(_) => {
            let socket = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
            socket.bind(&at.into())
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::{SocketAddr, TcpListener, UdpSocket};

    use super::*;

    fn reuseport_tcp(at: SocketAddr) -> Socket {
        let s = Socket::new(Domain::for_address(at), Type::STREAM, Some(Protocol::TCP)).unwrap();
        s.set_reuse_port(true).unwrap();
        s.bind(&at.into()).unwrap();
        s.listen(16).unwrap();
        s
    }

    #[test]
    fn a_free_address_passes_and_is_free_again_after_the_probe() {
        let at = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        probe(ListenAddress::Tcp(at)).unwrap();
        // The shards' SO_REUSEPORT binds still succeed, on every shard.
        let _a = reuseport_tcp(at);
        let _b = reuseport_tcp(at);

        let at = UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        probe(ListenAddress::Udp(at)).unwrap();
        UdpSocket::bind(at).unwrap();
    }

    /// A listener that goes away within the patience (the dead process's, torn down after
    /// `kill -9`) does not refuse the start; one that stays does, after the patience.
    #[test]
    fn a_listener_that_goes_away_soon_is_waited_for() {
        let plain = TcpListener::bind("127.0.0.1:0").unwrap();
        let at = plain.local_addr().unwrap();
        let closer = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(200));
            drop(plain);
        });
        probe_patiently(ListenAddress::Tcp(at)).unwrap();
        closer.join().unwrap();

        let stays = TcpListener::bind("127.0.0.1:0").unwrap();
        let started = std::time::Instant::now();
        let e = probe_patiently(ListenAddress::Tcp(stays.local_addr().unwrap())).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AddrInUse);
        assert!(started.elapsed() >= PATIENCE);
    }

    #[test]
    fn an_address_held_with_or_without_reuseport_is_in_use() {
        let plain = TcpListener::bind("127.0.0.1:0").unwrap();
        let at = plain.local_addr().unwrap();
        let e = probe(ListenAddress::Tcp(at)).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AddrInUse);
        drop(plain);

        let shared = reuseport_tcp(at);
        let e = probe(ListenAddress::Tcp(at)).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AddrInUse);
        drop(shared);

        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let e = probe(ListenAddress::Udp(udp.local_addr().unwrap())).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AddrInUse);
    }
}
