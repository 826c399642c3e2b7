//! The global section, `[hekate]` (or Heka's `[hekad]`): Heka's daemon options plus hekate's core
//! layout and queue tuning.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use toml::de::DeValue;

use crate::suggest::did_you_mean;
use crate::value::{Reader, describe, integer};

/// Which cores run worker shards.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum CoreLayout {
    /// Every core this process may run on (its CPU affinity mask) — `worker_cores = "auto"`.
    #[default]
    Auto,
    /// Exactly these core ids, each once — `worker_cores = [1, 2, 3]`.
    Cores(Vec<usize>),
}

/// Which core runs the coordinator (control plane: stats, sandbox lifecycle, dashboard).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CoordinatorCore {
    /// Chosen by the engine — `coordinator_core = "auto"`.
    #[default]
    Auto,
    /// This core id — `coordinator_core = 0`. It may also run a worker shard.
    Core(usize),
}

/// How much hekate logs (`log_level`): each level includes the ones above it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum LogLevel {
    /// Only what stops a plugin or the pipeline.
    Error,
    /// Also what goes wrong and is carried on from (a lost connection, a dropped record).
    Warn,
    /// Also what hekate does (start, plugins loaded, shutdown). The default.
    #[default]
    Info,
    /// Also details for finding a fault.
    Debug,
    /// Everything.
    Trace,
}

impl LogLevel {
    /// Every level, from the quietest.
    pub const ALL: [LogLevel; 5] = [
        LogLevel::Error,
        LogLevel::Warn,
        LogLevel::Info,
        LogLevel::Debug,
        LogLevel::Trace,
    ];

    /// The level's name as written in the config and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        }
    }
}

impl std::fmt::Display for LogLevel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for LogLevel {
    type Err = String;

    /// A level by name, in any case; the error names the levels there are.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase();
        LogLevel::ALL
            .into_iter()
            .find(|l| l.as_str() == lower)
            .ok_or_else(|| {
                format!(
                    "unknown log level {s:?}; the levels are error, warn, info, debug and trace{}",
                    did_you_mean(&lower, LogLevel::ALL.map(LogLevel::as_str))
                )
            })
    }
}

/// The typed global section, with Heka's defaults (`cmd/hekad/config.go`) and hekate's own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobalConfig {
    /// `maxprocs` (1): Heka's GOMAXPROCS. Accepted for compatibility; hekate sizes itself by
    /// [`GlobalConfig::worker_cores`].
    pub maxprocs: u32,
    /// `poolsize` (100): packs per recycle pool in Heka; bounds messages in flight.
    pub poolsize: u32,
    /// `plugin_chansize` (30): capacity of each plugin's input channel in Heka.
    pub plugin_chansize: u32,
    /// `max_message_loops` (4): how many times a message may be re-injected before it is dropped.
    pub max_message_loops: u32,
    /// `max_process_inject` (1): messages a sandbox filter may inject per `process_message` call.
    pub max_process_inject: u32,
    /// `max_process_duration` (100000 ns, written as an integer of nanoseconds): the per-call budget
    /// past which a back-pressured dynamic sandbox is considered to block the router.
    pub max_process_duration: Duration,
    /// `max_timer_inject` (10): messages a sandbox may inject per `timer_event` call.
    pub max_timer_inject: u32,
    /// `max_pack_idle` ("2m"): how long a message may sit unprocessed before diagnostics report it.
    pub max_pack_idle: Duration,
    /// `base_dir` ("/var/cache/hekad"): writable state (queues, journals, sandbox data).
    pub base_dir: PathBuf,
    /// `share_dir` ("/usr/share/heka"): read-only resources (Lua modules and filters, dashboard).
    pub share_dir: PathBuf,
    /// `sample_denominator` (1000): 1-in-N sampling for timing statistics.
    pub sample_denominator: u32,
    /// `pid_file` (none): file to write the process id to, locked while hekate runs; start is
    /// refused while another process holds the lock.
    pub pid_file: Option<PathBuf>,
    /// `hostname` (the OS host name): the Hostname stamped on messages hekate creates.
    pub hostname: String,
    /// `max_message_size` (65536): largest encoded message accepted, in bytes.
    pub max_message_size: u32,
    /// `log_flags` (3 = date and time): Go log flags; accepted for compatibility (hekate's log
    /// lines always carry the time).
    pub log_flags: i64,
    /// `log_level` ("info"): the least severe of hekate's own log lines that are written —
    /// "error", "warn", "info", "debug" or "trace". `RUST_LOG` and `hekate run --log-level`
    /// override it.
    pub log_level: LogLevel,
    /// `full_buffer_max_retries` (10): startup waits (≤ 1 s each) for a full disk buffer to drain
    /// below 90 %.
    pub full_buffer_max_retries: u32,
    /// `worker_cores` ("auto" or a list of core ids): the cores that run worker shards.
    pub worker_cores: CoreLayout,
    /// `coordinator_core` ("auto" or a core id): the core of the control plane.
    pub coordinator_core: CoordinatorCore,
    /// `io_memory` (bytes, or a size string such as "2MiB"): io_uring buffer memory per shard.
    /// `None` lets the engine derive it from RLIMIT_MEMLOCK and the shard count.
    pub io_memory: Option<u64>,
    /// `ring_capacity` (1024): batches each inter-core ring holds.
    pub ring_capacity: usize,
    /// `batch_size` (64): messages per batch on inter-core rings.
    pub batch_size: usize,
    /// `report_interval` (60 s; integer seconds or a duration string): how often shards send stats
    /// snapshots to the coordinator for reports.
    pub report_interval: Duration,
    /// `http_address` (off): where hekate serves `/metrics` (Prometheus text format) and
    /// `/health`. `":9110"` and `"localhost:9110"` mean the loopback address 127.0.0.1; any
    /// other host must be written out (`"0.0.0.0:9110"`), since the endpoint has no
    /// authentication.
    pub http_address: Option<SocketAddr>,
}

impl Default for GlobalConfig {
    fn default() -> Self {
        Self {
            maxprocs: 1,
            poolsize: 100,
            plugin_chansize: 30,
            max_message_loops: 4,
            max_process_inject: 1,
            max_process_duration: Duration::from_nanos(100_000),
            max_timer_inject: 10,
            max_pack_idle: Duration::from_secs(120),
            base_dir: PathBuf::from("/var/cache/hekad"),
            share_dir: PathBuf::from("/usr/share/heka"),
            sample_denominator: 1000,
            pid_file: None,
            hostname: os_hostname(),
            max_message_size: 65536,
            log_flags: 3,
            log_level: LogLevel::Info,
            full_buffer_max_retries: 10,
            worker_cores: CoreLayout::Auto,
            coordinator_core: CoordinatorCore::Auto,
            io_memory: None,
            ring_capacity: 1024,
            batch_size: 64,
            report_interval: Duration::from_secs(60),
            http_address: None,
        }
    }
}

/// Every key the global section accepts.
pub const GLOBAL_OPTIONS: &[&str] = &[
    "maxprocs",
    "poolsize",
    "plugin_chansize",
    "cpuprof",
    "memprof",
    "max_message_loops",
    "max_process_inject",
    "max_process_duration",
    "max_timer_inject",
    "max_pack_idle",
    "base_dir",
    "share_dir",
    "sample_denominator",
    "pid_file",
    "hostname",
    "max_message_size",
    "log_flags",
    "log_level",
    "full_buffer_max_retries",
    "worker_cores",
    "coordinator_core",
    "io_memory",
    "ring_capacity",
    "batch_size",
    "report_interval",
    "http_address",
];

/// The host name as the OS reports it (what Go's `os.Hostname()` returns on Linux).
pub fn os_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "localhost".to_string())
}

impl GlobalConfig {
    /// Applies the keys of one global section over the current values (a later file's keys win,
    /// key by key, as when Heka decodes every file into the same struct).
    pub(crate) fn apply(&mut self, r: &mut Reader<'_, '_>) {
        r.reject_unknown_keys(GLOBAL_OPTIONS);
        set(&mut self.maxprocs, r.u32("maxprocs"));
        set(&mut self.poolsize, positive(r, "poolsize", r_u32));
        set(&mut self.plugin_chansize, r.u32("plugin_chansize"));
        // cpuprof / memprof: Go profiler outputs; accepted and ignored (but must be strings).
        r.string("cpuprof");
        r.string("memprof");
        set(&mut self.max_message_loops, r.u32("max_message_loops"));
        set(&mut self.max_process_inject, r.u32("max_process_inject"));
        set(
            &mut self.max_process_duration,
            r.u64("max_process_duration").map(Duration::from_nanos),
        );
        set(&mut self.max_timer_inject, r.u32("max_timer_inject"));
        set(&mut self.max_pack_idle, r.duration("max_pack_idle"));
        set(&mut self.base_dir, r.string("base_dir").map(PathBuf::from));
        set(
            &mut self.share_dir,
            r.string("share_dir").map(PathBuf::from),
        );
        set(
            &mut self.sample_denominator,
            positive(r, "sample_denominator", r_u32),
        );
        if let Some(pid_file) = r.string("pid_file") {
            self.pid_file = (!pid_file.is_empty()).then(|| PathBuf::from(pid_file));
        }
        if let Some(hostname) = r.string("hostname") {
            self.hostname = if hostname.is_empty() {
                os_hostname()
            } else {
                hostname
            };
        }
        set(
            &mut self.max_message_size,
            positive(r, "max_message_size", r_u32),
        );
        set(
            &mut self.log_flags,
            r.int_in("log_flags", 0, i64::MAX, "a non-negative integer"),
        );
        if let Some(level) = r.string("log_level") {
            match level.parse() {
                Ok(level) => self.log_level = level,
                Err(e) => {
                    let span = r.get("log_level").map(|i| i.span()).unwrap_or_default();
                    let message = format!("`log_level` in section [{}]: {e}", r.section);
                    r.error(span, message);
                }
            }
        }
        set(
            &mut self.full_buffer_max_retries,
            r.u32("full_buffer_max_retries"),
        );
        if let Some(layout) = read_worker_cores(r) {
            self.worker_cores = layout;
        }
        if let Some(core) = read_coordinator_core(r) {
            self.coordinator_core = core;
        }
        if let Some(bytes) = r.size("io_memory") {
            if bytes == 0 {
                let span = r.get("io_memory").map(|i| i.span()).unwrap_or_default();
                let message = format!(
                    "`io_memory` in section [{}] must be more than 0 bytes; remove it to let hekate size it",
                    r.section
                );
                r.error(span, message);
            } else {
                self.io_memory = Some(bytes);
            }
        }
        set(
            &mut self.ring_capacity,
            positive(r, "ring_capacity", r_usize),
        );
        set(&mut self.batch_size, positive(r, "batch_size", r_usize));
        set(
            &mut self.report_interval,
            r.seconds_or_duration("report_interval"),
        );
        if self.report_interval.is_zero() && r.get("report_interval").is_some() {
            let span = r
                .get("report_interval")
                .map(|i| i.span())
                .unwrap_or_default();
            let message = format!(
                "`report_interval` in section [{}] must be longer than zero",
                r.section
            );
            r.error(span, message);
            self.report_interval = GlobalConfig::default().report_interval;
        }
        if let Some(address) = r.string("http_address") {
            match parse_http_address(&address) {
                Ok(at) => self.http_address = at,
                Err(why) => {
                    let span = r.get("http_address").map(|i| i.span()).unwrap_or_default();
                    let message = format!("`http_address` in section [{}]: {why}", r.section);
                    r.error(span, message);
                }
            }
        }
    }
}

/// `http_address`: "" turns the endpoint off; `:PORT` and `localhost:PORT` are the loopback
/// address; otherwise an IP address and a port.
fn parse_http_address(value: &str) -> Result<Option<SocketAddr>, String> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    let loopback = value
        .strip_prefix(':')
        .or_else(|| value.strip_prefix("localhost:"));
    let parsed = match loopback {
        Some(port) => port
            .parse::<u16>()
            .map(|port| SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port))
            .ok(),
        None => value.parse::<SocketAddr>().ok(),
    };
    parsed.map(Some).ok_or_else(|| {
        format!(
            "{value:?} is not an address and port; write \":9110\" (loopback) or an IP address and port such as \"127.0.0.1:9110\""
        )
    })
}

fn set<T>(field: &mut T, value: Option<T>) {
    if let Some(value) = value {
        *field = value;
    }
}

fn r_u32(r: &mut Reader<'_, '_>, key: &str) -> Option<u32> {
    r.u32(key)
}

fn r_usize(r: &mut Reader<'_, '_>, key: &str) -> Option<usize> {
    r.usize(key)
}

/// A count that makes no sense as zero.
fn positive<T: Default + PartialEq>(
    r: &mut Reader<'_, '_>,
    key: &str,
    read: fn(&mut Reader<'_, '_>, &str) -> Option<T>,
) -> Option<T> {
    let value = read(r, key)?;
    if value == T::default() {
        let span = r.get(key).map(|i| i.span()).unwrap_or_default();
        let message = format!(
            "`{key}` in section [{}] must be at least 1, not 0",
            r.section
        );
        r.error(span, message);
        return None;
    }
    Some(value)
}

fn read_worker_cores(r: &mut Reader<'_, '_>) -> Option<CoreLayout> {
    let item = r.get("worker_cores")?;
    let section = r.section.clone();
    match item.get_ref() {
        DeValue::String(s) if s == "auto" => Some(CoreLayout::Auto),
        DeValue::Array(elements) => {
            if elements.is_empty() {
                r.error(
                    item.span(),
                    format!(
                        "`worker_cores` in section [{section}] lists no cores; write \"auto\" or at least one core id"
                    ),
                );
                return None;
            }
            let mut cores = Vec::with_capacity(elements.len());
            let mut ok = true;
            for element in elements.iter() {
                match integer(element.get_ref()) {
                    Some(Ok(id)) if id >= 0 => {
                        let id = id as usize;
                        if cores.contains(&id) {
                            r.error(
                                element.span(),
                                format!("core {id} appears twice in `worker_cores` of section [{section}]"),
                            );
                            ok = false;
                        } else {
                            cores.push(id);
                        }
                    }
                    _ => {
                        r.error(
                            element.span(),
                            format!(
                                "core ids in `worker_cores` of section [{section}] must be non-negative integers, not {}",
                                describe(element.get_ref())
                            ),
                        );
                        ok = false;
                    }
                }
            }
            ok.then_some(CoreLayout::Cores(cores))
        }
        other => {
            r.error(
                item.span(),
                format!(
                    "`worker_cores` in section [{section}] must be \"auto\" or an array of core ids such as [1, 2, 3], not {}{}",
                    describe(other),
                    match other {
                        DeValue::String(s) => did_you_mean(s, ["auto"]),
                        _ => String::new(),
                    }
                ),
            );
            None
        }
    }
}

fn read_coordinator_core(r: &mut Reader<'_, '_>) -> Option<CoordinatorCore> {
    let item = r.get("coordinator_core")?;
    match (item.get_ref(), integer(item.get_ref())) {
        (DeValue::String(s), _) if s == "auto" => Some(CoordinatorCore::Auto),
        (_, Some(Ok(id))) if id >= 0 => Some(CoordinatorCore::Core(id as usize)),
        (other, _) => {
            let message = format!(
                "`coordinator_core` in section [{}] must be \"auto\" or a non-negative core id, not {}{}",
                r.section,
                describe(other),
                match other {
                    DeValue::String(s) => did_you_mean(s, ["auto"]),
                    _ => String::new(),
                }
            );
            r.error(item.span(), message);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_address_is_loopback_unless_a_host_is_written_out() {
        let at = |s: &str| parse_http_address(s).unwrap().map(|a| a.to_string());
        assert_eq!(at(""), None);
        assert_eq!(at(":9110").as_deref(), Some("127.0.0.1:9110"));
        assert_eq!(at("localhost:9110").as_deref(), Some("127.0.0.1:9110"));
        assert_eq!(at("0.0.0.0:9110").as_deref(), Some("0.0.0.0:9110"));
        assert_eq!(at("[::1]:9110").as_deref(), Some("[::1]:9110"));
        for bad in [
            "9110",
            "localhost",
            "example.org:9110",
            ":http",
            "127.0.0.1:99999",
        ] {
            let err = parse_http_address(bad).unwrap_err();
            assert!(err.contains("is not an address and port"), "{bad}: {err}");
        }
    }
}
