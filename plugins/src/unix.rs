//! Unix domain sockets for TcpInput (`net = "unix"`) and UdpInput (`net = "unixgram"`): the
//! socket file's life and permissions, and handing accepted connections to the other shards.
//!
//! A path can be bound once, so a unix listener cannot be shared by the shards with SO_REUSEPORT
//! as TCP and UDP listeners are. For a stream socket the first shard binds it and accepts every
//! connection; it keeps one and hands the next ones round robin to the other shards, each over
//! its own bounded cross-core channel ([`Handoff`]), where the connection is bound to that
//! shard's reactor and read there like a TCP connection. A shard whose channel is full gets
//! nothing more until it has taken what it was given; the first shard then serves the connection
//! itself. A datagram socket (`unixgram`, such as `/dev/log`) has no connections to spread: it is
//! read by one shard.
//!
//! Before binding, a socket file left at the path by a process that is gone (nothing accepts on
//! it) is removed; one that something still listens on is refused, as a TCP address another
//! process holds is; a path that is not a socket is never touched. The socket file is removed
//! when the input stops.

use std::io;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use glommio::channels::shared_channel::{self, SharedReceiver, SharedSender};
use glommio::net::AcceptedUnixStream;
use hekate_config::{ConfigError, PluginSection};

/// How many accepted connections may wait for a shard before it is passed over.
const HANDOFF_DEPTH: usize = 64;

/// Reads `unix_socket_perm` (an octal mode such as "0660"), located in the config on error.
pub(crate) fn parse_perm(
    section: &PluginSection,
    value: Option<&str>,
) -> Result<Option<u32>, ConfigError> {
    let Some(text) = value else {
        return Ok(None);
    };
    match u32::from_str_radix(text.trim_start_matches("0o"), 8) {
        Ok(mode) if mode <= 0o777 => Ok(Some(mode)),
        _ => Err(section.error_at_value(
            "unix_socket_perm",
            format!(
                "`unix_socket_perm` = \"{text}\" is not an octal file mode such as \"0660\" (section [{}])",
                section.name()
            ),
        )),
    }
}

/// Reads the socket path of a unix listener's `address`, located in the config on error.
pub(crate) fn unix_path(section: &PluginSection, address: &str) -> Result<PathBuf, ConfigError> {
    // sun_path holds 108 bytes with the terminating NUL.
    if address.is_empty() || address.len() > 107 || address.contains('\0') {
        return Err(section.error_at_value(
            "address",
            format!(
                "`address` = \"{address}\" is not a unix socket path (1 to 107 bytes) in section [{}]",
                section.name()
            ),
        ));
    }
    Ok(PathBuf::from(address))
}

/// The kind of socket at a path, for [`prepare`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Stream,
    Datagram,
}

/// Makes `path` ready to bind: removes a stale socket file, refuses a live one or a file that is
/// not a socket.
pub(crate) fn prepare(path: &Path, kind: Kind) -> Result<(), String> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    if !meta.file_type().is_socket() {
        return Err(format!(
            "{} exists and is not a socket; it is left alone",
            path.display()
        ));
    }
    let live = match kind {
        Kind::Stream => std::os::unix::net::UnixStream::connect(path).is_ok(),
        Kind::Datagram => std::os::unix::net::UnixDatagram::unbound()
            .and_then(|s| s.connect(path))
            .is_ok(),
    };
    if live {
        return Err(format!("{} is in use by another process", path.display()));
    }
    std::fs::remove_file(path).map_err(|e| {
        format!(
            "{} is a stale socket file that cannot be removed: {e}",
            path.display()
        )
    })
}

/// Binds a socket at `path` with `bind` and gives the file `mode`. With a mode, the socket is
/// bound under a temporary name beside `path`, given its mode, and renamed into place, so that
/// no client ever finds it with the umask's mode.
pub(crate) fn bind_with_mode<T>(
    path: &Path,
    mode: Option<u32>,
    bind: impl FnOnce(&Path) -> io::Result<T>,
) -> Result<T, String> {
    let Some(mode) = mode else {
        return bind(path).map_err(|e| format!("{}: {e}", path.display()));
    };
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{}.tmp", std::process::id()));
    let temp = path.with_file_name(name);
    let _ = std::fs::remove_file(&temp);
    let socket = bind(&temp).map_err(|e| format!("{}: {e}", temp.display()))?;
    let placed = std::fs::set_permissions(&temp, std::fs::Permissions::from_mode(mode))
        .map_err(|e| format!("cannot set the mode of {} to {mode:o}: {e}", temp.display()))
        .and_then(|()| {
            std::fs::rename(&temp, path)
                .map_err(|e| format!("cannot move {} to {}: {e}", temp.display(), path.display()))
        });
    if let Err(e) = placed {
        let _ = std::fs::remove_file(&temp);
        return Err(e);
    }
    Ok(socket)
}

/// Removes the socket file when dropped (the input stopped).
pub(crate) struct SocketFile(pub(crate) PathBuf);

impl Drop for SocketFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The channels that carry accepted connections from the listening shard to the others, made by
/// the first shard that starts and taken apart by each shard.
#[derive(Default)]
pub(crate) struct Handoff {
    parts: Mutex<Option<Parts>>,
}

struct Parts {
    senders: Option<Vec<SharedSender<AcceptedUnixStream>>>,
    receivers: Vec<Option<SharedReceiver<AcceptedUnixStream>>>,
}

impl std::fmt::Debug for Handoff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Handoff")
    }
}

/// One shard's side of the [`Handoff`].
pub(crate) enum Side {
    /// Shard 0: binds the listener and sends to shards 1.. (index i − 1).
    Listen(Vec<SharedSender<AcceptedUnixStream>>),
    /// Another shard: receives what shard 0 hands it.
    Receive(SharedReceiver<AcceptedUnixStream>),
}

impl Handoff {
    /// Takes this shard's side (`shards` worker shards in all).
    pub(crate) fn side(&self, shard: usize, shards: usize) -> Option<Side> {
        let mut parts = self.parts.lock().unwrap_or_else(|p| p.into_inner());
        let parts = parts.get_or_insert_with(|| {
            let (senders, receivers) = (1..shards.max(1))
                .map(|_| shared_channel::new_bounded(HANDOFF_DEPTH))
                .map(|(s, r)| (s, Some(r)))
                .unzip();
            Parts {
                senders: Some(senders),
                receivers,
            }
        });
        if shard == 0 {
            parts.senders.take().map(Side::Listen)
        } else {
            parts
                .receivers
                .get_mut(shard - 1)
                .and_then(Option::take)
                .map(Side::Receive)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stale_socket_is_removed_a_live_one_and_a_plain_file_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sock");
        // Nothing there: ready.
        prepare(&path, Kind::Stream).unwrap();
        // Live listener: refused.
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let e = prepare(&path, Kind::Stream).unwrap_err();
        assert!(e.contains("in use by another process"), "{e}");
        // Its process gone (the listener closed, the file left behind): removed.
        drop(listener);
        assert!(path.exists());
        prepare(&path, Kind::Stream).unwrap();
        assert!(!path.exists());
        // A datagram socket that is bound is live; once closed, stale.
        let dgram = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
        let e = prepare(&path, Kind::Datagram).unwrap_err();
        assert!(e.contains("in use"), "{e}");
        drop(dgram);
        prepare(&path, Kind::Datagram).unwrap();
        // A regular file is never removed.
        std::fs::write(&path, b"keep me").unwrap();
        let e = prepare(&path, Kind::Stream).unwrap_err();
        assert!(e.contains("not a socket"), "{e}");
        assert_eq!(std::fs::read(&path).unwrap(), b"keep me");
    }

    #[test]
    fn every_shard_gets_its_side_once() {
        let h = Handoff::default();
        assert!(matches!(h.side(0, 3), Some(Side::Listen(s)) if s.len() == 2));
        assert!(matches!(h.side(1, 3), Some(Side::Receive(_))));
        assert!(matches!(h.side(2, 3), Some(Side::Receive(_))));
        assert!(h.side(0, 3).is_none());
        assert!(h.side(1, 3).is_none());
    }
}
