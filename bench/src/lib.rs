//! hekate-bench: the load generator, the checking sink and the benchmark harness.
//!
//! A benchmark run is three processes on pinned cores, all on 127.0.0.1:
//!
//! ```text
//!  hekate-flood ──TCP/UDP──▶ system under test ──TCP/file──▶ hekate-sink
//!  (pre-encoded ring,         (hekate run -c …, or a peer:     (checks conn/seq of every message,
//!   stamps seq + send time)    syslog-ng, rsyslog, statsd…)      HDR latency from the send time)
//! ```
//!
//! - [`load`]: message formats (Heka protobuf, syslog RFC 3164/5424, statsd, JSON lines) and the
//!   [`Ring`](load::Ring) of pre-encoded records each connection sends from, stamping sequence
//!   numbers and send times in place.
//! - [`flood`]: the sending side — N connections, flat out or at a rate, a count or a duration.
//! - [`sink`] with [`parse`] and [`check`]: the receiving side — framing, stamps, loss,
//!   duplicates, reordering, latency; [`arrivals`]: its log of which message arrived when.
//! - [`harness`]: `hekate-bench`, which runs the workloads of `BENCHMARKS.md` (one module per
//!   workload), takes the loopback baseline in the same run, and writes `bench/RESULTS.md`,
//!   `bench/results/*.json` and the plots.
//!
//! A run that lost or duplicated a message is a failed run: the harness reports the failure,
//! never a throughput.

pub mod arrivals;
pub mod check;
pub mod flood;
pub mod harness;
pub mod load;
pub mod parse;
pub mod sink;
pub mod sizes;
