//! FileOutput: appends encoded messages to a file. With the default ProtobufEncoder and framing,
//! the file is a Heka stream that `hekate cat` reads.
//!
//! One instance runs on every worker shard and all of them append to the same file: each
//! flush is one `write(2)` of whole records on a file opened with `O_APPEND`, so records from
//! different shards never interleave. The write runs on the shard's blocking-call thread
//! (glommio's `spawn_blocking`), so a disk that stalls (dirty-page throttling, a slow device)
//! holds up this output only, never the inputs and other plugins of the shard. A relative
//! `path` is taken under `base_dir`.
//!
//! Log rotation by rename or delete is followed: at most once a second, before a write, the
//! output checks that `path` still names the file it has open (device and inode); when the file
//! was moved or deleted, it opens a new one at `path` (`ReopenCount` in reports); SIGHUP (as
//! logrotate's `postrotate kill -HUP`) makes it reopen `path` before its next write, at once. At start, a
//! framed file whose last record was cut short by a crash in the middle of a write has that
//! record cut off before anything is appended (`TornTailBytesCut`), so the records written after
//! a crash read back.
//!
//! ```toml
//! [FileOutput]
//! message_matcher = "TRUE"
//! path = "received.hekad"
//! perm = "644"
//! folder_perm = "700"
//! flush_interval = 1000
//! flush_count = 1
//! flush_operator = "AND"
//! encoder = "ProtobufEncoder"
//! use_framing = true
//! ```
//!
//! Options: `path` (required), `perm` ("644", octal), `folder_perm` ("700", octal, for
//! directories it creates), `flush_interval` (1000 ms; 0 turns the interval off), `flush_count`
//! (1), `flush_operator` ("AND": write when both the count and the interval are reached; "OR":
//! when either is), `rotation_interval` (hours: 0, the default, never rotates; 1, 4, 12 or 24
//! start a new file at every multiple of that many hours since the epoch, UTC, as hekad does;
//! `path` is then a strftime pattern formatted, in local time, with the interval's start, e.g.
//! `"logs/%Y-%m-%d/%H.hekad"`; records buffered across a boundary go to the new file), `encoder`
//! (ProtobufEncoder), `use_framing` (true with ProtobufEncoder). Flush rules are checked after
//! every batch of messages; whatever they say, the buffer is written once it holds 1 MiB, so
//! memory stays bounded. While a write is pending the output takes no message (back-pressure).

mod tail;

use std::fs::{DirBuilder, File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hekate_config::{ConfigError, PluginSection};
use hekate_engine::plugin::{
    BuildContext, Built, Delivery, LocalBoxFuture, Output, OutputError, OutputPlugin, Placement,
    PluginContext, PluginError, PluginType, ProcessError, ReportSink, options_of, reopen_requests,
};
use schemars::JsonSchema;
use serde::Deserialize;

use super::{EncodedWriter, Encoding};

/// The registry entry.
pub const TYPE: PluginType = PluginType {
    name: "FileOutput",
    source: include_str!("mod.rs"),
    options: options_of::<Options>,
    default_matcher: None,
    build,
};

/// The buffer is written once it holds this much, whatever the flush rules say.
const BUFFER_LIMIT: usize = 1024 * 1024;

fn default_perm() -> String {
    "644".into()
}
fn default_folder_perm() -> String {
    "700".into()
}
fn default_flush_interval() -> u64 {
    1000
}
fn default_flush_count() -> u64 {
    1
}
fn default_operator() -> String {
    "AND".into()
}

/// FileOutput's own options.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Options {
    /// The file to append to.
    path: String,
    /// File permissions (octal string).
    #[serde(default = "default_perm")]
    perm: String,
    /// Permissions of created directories (octal string).
    #[serde(default = "default_folder_perm")]
    folder_perm: String,
    /// Milliseconds between writes; 0 turns the interval off.
    #[serde(default = "default_flush_interval")]
    flush_interval: u64,
    /// Messages per write.
    #[serde(default = "default_flush_count")]
    flush_count: u64,
    /// "AND" or "OR" of the two rules.
    #[serde(default = "default_operator")]
    flush_operator: String,
    /// Hours between file rotations (0: never).
    #[serde(default)]
    rotation_interval: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operator {
    And,
    Or,
}

/// `rotation_interval`: a new file every `hours`, named by `pattern`.
#[derive(Debug, Clone)]
struct Rotation {
    hours: u32,
    /// The strftime pattern of the path (under `base_dir` when relative).
    pattern: String,
    base_dir: PathBuf,
}

impl Rotation {
    /// The start (seconds since the epoch) of the interval holding `now_secs`: intervals are
    /// whole multiples of `hours` since the epoch, as Go's `Time.Truncate` makes them.
    fn interval_start(&self, now_secs: i64) -> i64 {
        let len = i64::from(self.hours) * 3600;
        now_secs - now_secs.rem_euclid(len)
    }

    /// The file of the interval starting at `start`.
    fn path(&self, start: i64) -> PathBuf {
        use chrono::TimeZone as _;
        let name = match chrono::Local.timestamp_opt(start, 0).earliest() {
            Some(t) => t.format(&self.pattern).to_string(),
            None => self.pattern.clone(),
        };
        let path = PathBuf::from(name);
        if path.is_relative() {
            self.base_dir.join(path)
        } else {
            path
        }
    }
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Opens `path` for appending, creating it (and its directories) when missing.
fn open_append(path: &std::path::Path, perm: u32, folder_perm: u32) -> Result<File, PluginError> {
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        DirBuilder::new()
            .recursive(true)
            .mode(folder_perm)
            .create(dir)
            .map_err(|e| {
                PluginError::io(format!("cannot create directory {}", dir.display()), e)
            })?;
    }
    OpenOptions::new()
        .append(true)
        .create(true)
        .mode(perm)
        .open(path)
        .map_err(|e| PluginError::io(format!("cannot open {}", path.display()), e))
}

/// How often the file's path is checked for a move or delete (log rotation by rename).
const PATH_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// Whether `path` no longer names the file open as `file` (moved, deleted, replaced).
fn path_moved(path: &Path, file: &File) -> bool {
    match (std::fs::metadata(path), file.metadata()) {
        (Ok(named), Ok(open)) => named.dev() != open.dev() || named.ino() != open.ino(),
        (Err(_), _) => true,
        (Ok(_), Err(_)) => false,
    }
}

#[derive(Debug)]
struct FileOutputPlugin {
    path: PathBuf,
    rotation: Option<Rotation>,
    perm: u32,
    folder_perm: u32,
    interval: Option<Duration>,
    count: u64,
    operator: Operator,
    encoding: Encoding,
    /// Set by the first instance, which checks the file's tail before anyone appends.
    tail_checked: Mutex<bool>,
}

fn octal(section: &PluginSection, key: &str, value: &str) -> Result<u32, ConfigError> {
    u32::from_str_radix(value, 8).ok().filter(|v| *v <= 0o7777).ok_or_else(|| {
        section.error_at_value(
            key,
            format!("`{key}` of section [{}] must be octal permissions such as \"644\", not {value:?}", section.name()),
        )
    })
}

fn build(section: &PluginSection, ctx: &BuildContext<'_>) -> Result<Built, ConfigError> {
    let opts: Options = section.options()?;
    let operator = match opts.flush_operator.to_ascii_uppercase().as_str() {
        "AND" => Operator::And,
        "OR" => Operator::Or,
        _ => {
            return Err(section.error_at_value(
                "flush_operator",
                format!(
                    "`flush_operator` of section [{}] must be \"AND\" or \"OR\"",
                    section.name()
                ),
            ));
        }
    };
    let rotation = match opts.rotation_interval {
        0 => None,
        hours @ (1 | 4 | 12 | 24) => {
            use chrono::format::{Item, StrftimeItems};
            if StrftimeItems::new(&opts.path).any(|i| matches!(i, Item::Error)) {
                return Err(section.error_at_value(
                    "path",
                    format!(
                        "`path` of section [{}] is not a valid strftime pattern: {:?}",
                        section.name(),
                        opts.path
                    ),
                ));
            }
            Some(Rotation {
                hours,
                pattern: opts.path.clone(),
                base_dir: ctx.global.base_dir.clone(),
            })
        }
        other => {
            return Err(section.error_at_value(
                "rotation_interval",
                format!(
                    "`rotation_interval` of section [{}] must be 0, 1, 4, 12 or 24 (hours), not {other}",
                    section.name()
                ),
            ));
        }
    };
    let mut path = PathBuf::from(&opts.path);
    if path.is_relative() {
        path = ctx.global.base_dir.join(path);
    }
    Ok(Built::Output(Arc::new(FileOutputPlugin {
        path,
        rotation,
        perm: octal(section, "perm", &opts.perm)?,
        folder_perm: octal(section, "folder_perm", &opts.folder_perm)?,
        interval: (opts.flush_interval > 0).then(|| Duration::from_millis(opts.flush_interval)),
        count: opts.flush_count.max(1),
        operator,
        encoding: Encoding::from_section(section, ctx, Some("ProtobufEncoder"))?,
        tail_checked: Mutex::new(false),
    })))
}

impl OutputPlugin for FileOutputPlugin {
    fn placement(&self) -> Placement {
        Placement::PerShard
    }

    fn new_output(&self, ctx: &PluginContext) -> Result<Box<dyn Output>, PluginError> {
        let (path, interval_start) = match &self.rotation {
            Some(r) => {
                let start = r.interval_start(now_secs());
                (r.path(start), start)
            }
            None => (self.path.clone(), 0),
        };
        let file = open_append(&path, self.perm, self.folder_perm)?;
        let mut torn_tail_cut = 0;
        {
            // The first instance checks; the others wait for it, so nobody appends after a
            // torn record.
            let mut checked = self.tail_checked.lock().unwrap_or_else(|e| e.into_inner());
            if !*checked && self.encoding.framed() {
                let check = tail::cut_torn_tail(&path, &file, self.encoding.max_message_size())
                    .map_err(|e| {
                        PluginError::io(format!("cannot check the end of {}", path.display()), e)
                    })?;
                if check.cut > 0 {
                    tracing::warn!(
                        "Output '{}': {} ended in a record cut short ({} bytes, a crash during a write); cut it before appending",
                        ctx.name,
                        path.display(),
                        check.cut
                    );
                }
                torn_tail_cut = check.cut;
            }
            *checked = true;
        }
        Ok(Box::new(FileOutput {
            name: ctx.name.clone(),
            torn_tail_cut,
            reopened: 0,
            last_path_check: Instant::now(),
            reopen_seen: reopen_requests(),
            file: Arc::new(file),
            path,
            rotation: self.rotation.clone(),
            interval_start,
            perm: self.perm,
            folder_perm: self.folder_perm,
            writer: self.encoding.writer(),
            buf: Vec::with_capacity(BUFFER_LIMIT + 64 * 1024),
            pending: 0,
            written: 0,
            total_written: 0,
            last_flush: Instant::now(),
            interval: self.interval,
            count: self.count,
            operator: self.operator,
        }))
    }
}

struct FileOutput {
    name: String,
    /// Bytes of a torn final record cut at start (by this instance).
    torn_tail_cut: u64,
    /// Times the file was reopened because its path was moved or deleted.
    reopened: u64,
    last_path_check: Instant,
    /// The SIGHUP count this output last reopened for.
    reopen_seen: u64,
    file: Arc<File>,
    path: PathBuf,
    rotation: Option<Rotation>,
    /// The start of the rotation interval `file` belongs to.
    interval_start: i64,
    perm: u32,
    folder_perm: u32,
    writer: EncodedWriter,
    buf: Vec<u8>,
    /// Messages in `buf`.
    pending: u64,
    /// Messages written since the last `take_written`.
    written: u64,
    total_written: u64,
    last_flush: Instant,
    interval: Option<Duration>,
    count: u64,
    operator: Operator,
}

/// Writes all of `buf` (one `write(2)` unless the kernel takes less); on failure, how many
/// bytes were written before it.
fn write_records(mut file: &File, buf: &[u8]) -> Result<(), (usize, std::io::Error)> {
    let mut done = 0;
    while done < buf.len() {
        match file.write(&buf[done..]) {
            Ok(0) => {
                return Err((
                    done,
                    std::io::Error::new(std::io::ErrorKind::WriteZero, "wrote 0 bytes"),
                ));
            }
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err((done, e)),
        }
    }
    Ok(())
}

impl Output for FileOutput {
    #[inline]
    fn process(&mut self, msg: &Delivery<'_>) -> Result<(), ProcessError> {
        if self.writer.write(msg, &mut self.buf)? {
            self.pending += 1;
        }
        Ok(())
    }

    fn must_flush(&self) -> bool {
        self.buf.len() >= BUFFER_LIMIT
    }

    fn should_flush(&self, now: Instant) -> bool {
        if self.pending == 0 {
            return false;
        }
        let counted = self.pending >= self.count;
        let timed = self
            .interval
            .map(|i| now.duration_since(self.last_flush) >= i);
        match self.operator {
            Operator::And => counted && timed.unwrap_or(true),
            Operator::Or => counted || timed.unwrap_or(false),
        }
    }

    fn flush_deadline(&self) -> Option<Instant> {
        let interval = self.interval?;
        let waiting = match self.operator {
            Operator::And => self.pending >= self.count,
            Operator::Or => self.pending > 0,
        };
        waiting.then(|| self.last_flush + interval)
    }

    fn flush(&mut self) -> LocalBoxFuture<'_, Result<(), OutputError>> {
        Box::pin(async move {
            if self.buf.is_empty() {
                self.last_flush = Instant::now();
                return Ok(());
            }
            if let Some(r) = &self.rotation {
                let start = r.interval_start(now_secs());
                if start != self.interval_start {
                    let path = r.path(start);
                    let file = open_append(&path, self.perm, self.folder_perm)
                        .map_err(|e| OutputError::retry(e.to_string()))?;
                    self.file = Arc::new(file);
                    self.path = path;
                    self.interval_start = start;
                }
            }
            let file = Arc::clone(&self.file);
            let buf = std::mem::take(&mut self.buf);
            // Log rotation by rename or delete: once a second, before writing, the path is
            // checked to still name the open file; if not, a new file is opened there.
            // SIGHUP (`kill -HUP` in logrotate's postrotate) reopens at once, whatever the path
            // names.
            let requests = reopen_requests();
            let forced = requests != self.reopen_seen;
            self.reopen_seen = requests;
            let check_path = (self.rotation.is_none()
                && (forced || self.last_path_check.elapsed() >= PATH_CHECK_INTERVAL))
                .then(|| (self.path.clone(), self.perm, self.folder_perm));
            if check_path.is_some() {
                self.last_path_check = Instant::now();
            }
            // The buffer travels to the blocking thread and back, so it is reused.
            let (mut buf, result, reopened) = glommio::executor()
                .spawn_blocking(move || {
                    let mut file = file;
                    let mut reopened = None;
                    if let Some((path, perm, folder_perm)) = check_path
                        && (forced || path_moved(&path, &file))
                    {
                        match open_append(&path, perm, folder_perm) {
                            Ok(f) => {
                                file = Arc::new(f);
                                reopened = Some(Ok(Arc::clone(&file)));
                            }
                            Err(e) => reopened = Some(Err(e)),
                        }
                    }
                    let r = write_records(&file, &buf);
                    (buf, r, reopened)
                })
                .await;
            match reopened {
                Some(Ok(file)) => {
                    self.file = file;
                    self.reopened += 1;
                    if forced {
                        tracing::info!(
                            "Output '{}': reopened {} on SIGHUP",
                            self.name,
                            self.path.display()
                        );
                    } else {
                        tracing::info!(
                            "Output '{}': {} was moved or deleted; writing to a new file there",
                            self.name,
                            self.path.display()
                        );
                    }
                }
                Some(Err(e)) => tracing::error!(
                    "Output '{}': {} was moved or deleted and cannot be opened again ({e}); still writing to the old file",
                    self.name,
                    self.path.display()
                ),
                None => {}
            }
            self.last_flush = Instant::now();
            let result = match result {
                Ok(()) => {
                    buf.clear();
                    self.written += self.pending;
                    self.total_written += self.pending;
                    self.pending = 0;
                    Ok(())
                }
                Err((done, e)) => {
                    // what was written is gone from the buffer; the rest is retried
                    buf.drain(..done);
                    Err(OutputError::retry(format!(
                        "writing to {} failed: {e}",
                        self.path.display()
                    )))
                }
            };
            self.buf = buf;
            result
        })
    }

    fn buffered(&self) -> u64 {
        self.pending
    }

    fn take_written(&mut self) -> u64 {
        std::mem::take(&mut self.written)
    }

    fn report(&self, sink: &mut dyn ReportSink) {
        sink.int("WrittenCount", self.total_written as i64, "count");
        sink.int("ReopenCount", self.reopened as i64, "count");
        sink.int("TornTailBytesCut", self.torn_tail_cut as i64, "B");
        self.writer.report(sink);
    }
}

#[cfg(test)]
mod tests {
    use crate::common::testing::{build, build_doc_sample};

    #[test]
    fn doc_sample_builds() {
        build_doc_sample(include_str!("mod.rs"));
    }

    #[test]
    fn bad_options_are_refused() {
        let base = "[i]\ntype = \"TcpInput\"\naddress = \":1\"\n[f]\ntype = \"FileOutput\"\nmessage_matcher = \"TRUE\"\npath = \"x\"\n";
        let e = build(&format!("{base}perm = \"9x\"\n")).unwrap_err();
        assert!(e.contains("octal"), "{e}");
        let e = build(&format!("{base}flush_operator = \"XOR\"\n")).unwrap_err();
        assert!(e.contains("AND"), "{e}");
        let e = build(&format!("{base}rotation_interval = 2\n")).unwrap_err();
        assert!(e.contains("must be 0, 1, 4, 12 or 24"), "{e}");
        let bad = base.replace("path = \"x\"", "path = \"x-%Q\"");
        let e = build(&format!("{bad}rotation_interval = 4\n")).unwrap_err();
        assert!(e.contains("strftime"), "{e}");
        assert!(build(&format!("{base}rotation_interval = 24\n")).is_ok());
    }

    fn rotation(hours: u32, pattern: &str) -> super::Rotation {
        super::Rotation {
            hours,
            pattern: pattern.into(),
            base_dir: "/base".into(),
        }
    }

    #[test]
    fn intervals_are_multiples_of_the_rotation_since_the_epoch() {
        // 2026-11-29 13:47:05 UTC
        let t = 1_795_960_025;
        assert_eq!(rotation(1, "x").interval_start(t), t - (47 * 60 + 5));
        // 4-hour intervals start at 12:00 on that day
        assert_eq!(rotation(4, "x").interval_start(t), t - (3600 + 47 * 60 + 5));
        assert_eq!(
            rotation(24, "x").interval_start(t),
            t - (13 * 3600 + 47 * 60 + 5)
        );
        // an interval's start is its own start; the next second too
        let r = rotation(12, "x");
        let s = r.interval_start(t);
        assert_eq!(r.interval_start(s), s);
        assert_eq!(r.interval_start(s + 12 * 3600 - 1), s);
        assert_eq!(r.interval_start(s + 12 * 3600), s + 12 * 3600);
    }

    #[test]
    fn rotated_paths_format_the_interval_start() {
        use chrono::TimeZone as _;
        let r = rotation(1, "logs/%Y-%m-%d/%H.hekad");
        let start = r.interval_start(1_795_960_025);
        let local = chrono::Local.timestamp_opt(start, 0).unwrap();
        let want = format!("/base/logs/{}.hekad", local.format("%Y-%m-%d/%H"));
        assert_eq!(r.path(start), std::path::PathBuf::from(want));
        // absolute patterns stay absolute; the next interval is another file
        let r = rotation(1, "/var/log/x-%H%M.hekad");
        assert_ne!(r.path(start), r.path(start + 3600));
        assert!(r.path(start).starts_with("/var/log"));
    }
}
