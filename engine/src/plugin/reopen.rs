//! SIGHUP, as log shippers take it after logrotate moved their files: every output that writes
//! files opens them again at their paths before its next write. The coordinator counts the
//! requests; an output compares the count with the one it last acted on (one atomic load per
//! write, no lock, no message to every shard).

use std::sync::atomic::{AtomicU64, Ordering};

static REQUESTS: AtomicU64 = AtomicU64::new(0);

/// Asks every file-writing output to reopen its files before its next write (SIGHUP).
pub fn request_reopen() {
    REQUESTS.fetch_add(1, Ordering::Release);
}

/// How many reopen requests there have been; an output reopens when this moved since it last
/// looked.
pub fn reopen_requests() -> u64 {
    REQUESTS.load(Ordering::Acquire)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_request_moves_the_count() {
        let before = reopen_requests();
        request_reopen();
        request_reopen();
        assert!(reopen_requests() >= before + 2);
    }
}
