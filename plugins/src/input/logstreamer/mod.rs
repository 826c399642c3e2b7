//! LogstreamerInput: tails log streams — a stream being one log spread over a sequence of
//! files that rotate — with Heka's discovery, ordering and journals.
//!
//! Every file under `log_directory` whose path matches `file_match` belongs to the stream its
//! `differentiator` names; a stream's files are read oldest first, in the order `priority` gives
//! (see [`discover`] for the exact rules, and `hekate logstreamer -c CONFIG` to see what a
//! config finds). Each record becomes a message with Type `logfile`, Logger = the stream's name
//! and Hostname = `hostname` (or the global one), handed to the decoder if there is one.
//!
//! **Where reading resumes.** Each stream keeps a journal in `journal_directory` (Heka's format;
//! see [`journal`]), so a Heka user's journals resume where hekad stopped. The journal moves only
//! to positions whose messages are acknowledged end to end: every output that took them has
//! written them (a FileOutput's flush, a buffered output's queue). So `kill -9` loses no line;
//! after a restart, at most what was in flight is read again. A stream without a journal starts
//! at its oldest file, or at the end of its newest with `initial_tail = true`.
//!
//! **Rotation.** The file being read is followed by its open descriptor, not its name:
//! - renamed and replaced (`create`): it is read to its end, then the file after it (the new
//!   one) once the old one has had nothing new for half a second (the application may write into
//!   it until it reopens its log), judged by its modification time too, so that a backlog of
//!   files rotated while hekate was down is read without a pause per file;
//! - truncated in place (`copytruncate`): reading restarts at 0 (counted in `Truncations`);
//! - deleted: read to its end through the open descriptor, then the next file;
//! - a file already read to its end never is again in this run, whatever name it has now.
//!
//! A partial last line waits for its newline; when the stream moves to the next file it is
//! delivered if the splitter's `deliver_incomplete_final` says so, else counted as skipped.
//!
//! **Noticing changes.** inotify watches every directory under `log_directory` ([`watch`]): a
//! write wakes the stream reading the file at once, a file created, renamed or deleted makes the
//! input rescan at once. Polling stays as the fallback: the directory is rescanned every
//! `rescan_interval` and a stream at the end of its file looks again every
//! `check_data_interval` (every 10 seconds at most often with inotify, as Filebeat's `max_backoff`). Without inotify (its limits
//! reached) the input says so and polls, as Heka does.
//!
//! **Placement.** The input runs on every worker shard; each stream is read by one shard (its
//! name hashed), its splitter and decoder inline on that shard. A stream reads in blocks of
//! 256 KiB through io_uring and yields between blocks, so one huge file does not starve the
//! other streams of its shard.
//!
//! ```toml
//! [nginx_access]
//! type = "LogstreamerInput"
//! log_directory = "/var/log/nginx"
//! file_match = 'access\.log\.?(?P<Seq>\d*)'
//! priority = ["^Seq"]
//! differentiator = ["nginx-access"]
//! # decoder = "nginx_access_decoder"
//! ```
//!
//! Options: `log_directory` ("/var/log"), `file_match` (required), `priority`, `differentiator`
//! (the section name), `translation`, `oldest_duration` ("720h"), `journal_directory`
//! (`<base_dir>/logstreamer`), `rescan_interval` ("1m"), `check_data_interval` ("250ms"),
//! `initial_tail` (false), `hostname`, plus the common input options (`splitter` defaults to
//! TokenSplitter, `decoder` to none).

pub mod discover;
pub mod journal;
mod watch;

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fs::File;
use std::hash::{Hash, Hasher};
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_lite::future;
use glommio::io::BufferedFile;
use hekate_config::{ConfigError, PluginSection, parse_duration};
use hekate_engine::mesh::Doorbell;
use hekate_engine::plugin::log::warn_limited;
use hekate_engine::plugin::{
    Acknowledgements, BuildContext, Built, FieldCollector, InputContext, InputPlacement,
    InputPlugin, LocalBoxFuture, PluginError, PluginType, RecordStream, ReportSink, StreamSpec,
    TaskGroup, options_of,
};
use schemars::JsonSchema;
use serde::Deserialize;

use discover::{Matcher, SortPattern, Translation};
use journal::{Journal, hash_at, locate};

/// The registry entry.
pub const TYPE: PluginType = PluginType {
    name: "LogstreamerInput",
    source: include_str!("mod.rs"),
    options: options_of::<Options>,
    default_matcher: None,
    build,
};

/// Bytes read from a file at a time: 128 KiB reads tail 3% faster than 64 KiB ones (fewer
/// io_uring round trips), and larger ones are no faster. The block is io_uring's buffer, split
/// in place ([`RecordStream::feed_bytes`]).
const READ_BLOCK: usize = 128 * 1024;
/// Files read to their end remembered per stream (never read again in this run).
const DONE_FILES: usize = 256;
/// How long a file must stay at its end, with a newer file waiting, before the stream moves on
/// to the newer one.
const ROTATE_GRACE: Duration = Duration::from_millis(500);
/// How long a stopping stream waits for its last messages to be acknowledged before it writes
/// its journal (what is not acknowledged by then is read again after the restart).
const SETTLE: Duration = Duration::from_secs(5);

fn default_log_directory() -> String {
    "/var/log".into()
}
fn default_oldest() -> String {
    "720h".into()
}
fn default_rescan() -> String {
    "1m".into()
}
fn default_check() -> String {
    "250ms".into()
}

/// LogstreamerInput's own options.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Options {
    /// The directory scanned (recursively) for the stream's files.
    #[serde(default = "default_log_directory")]
    log_directory: String,
    /// Regex matched against each file's path under `log_directory` (`$` appended if missing);
    /// named captures feed `priority` and `differentiator`.
    file_match: String,
    /// Capture names ordering a stream's files oldest first; `^Name` for descending.
    #[serde(default)]
    priority: Vec<String>,
    /// Literals and capture names making up a stream's name (default: the section name).
    #[serde(default)]
    differentiator: Vec<String>,
    /// Capture name → value → sort score; a one-entry map must be `missing`.
    #[serde(default)]
    translation: Translation,
    /// Files last modified longer ago than this are left out.
    #[serde(default = "default_oldest")]
    oldest_duration: String,
    /// Where the streams' journals are kept (default `<base_dir>/logstreamer`).
    #[serde(default)]
    journal_directory: Option<String>,
    /// How often `log_directory` is rescanned for new files and streams.
    #[serde(default = "default_rescan")]
    rescan_interval: String,
    /// How often a stream at the end of its file checks for more data.
    #[serde(default = "default_check")]
    check_data_interval: String,
    /// A stream without a journal starts at the end of its newest file.
    #[serde(default)]
    initial_tail: bool,
    /// Hostname of the messages (default: the global hostname).
    #[serde(default)]
    hostname: Option<String>,
}

/// A configured LogstreamerInput (also what `hekate logstreamer` describes).
#[derive(Debug, Clone)]
pub struct Logstreamer {
    name: String,
    matcher: Matcher,
    journal_dir: PathBuf,
    rescan: Duration,
    check: Duration,
    initial_tail: bool,
    hostname: String,
    spec: StreamSpec,
}

fn duration_option(
    section: &PluginSection,
    key: &str,
    text: &str,
) -> Result<Duration, ConfigError> {
    parse_duration(text).map_err(|e| {
        section.error_at_value(key, format!("`{key}`: {e} in section [{}]", section.name()))
    })
}

fn build(section: &PluginSection, ctx: &BuildContext<'_>) -> Result<Built, ConfigError> {
    Ok(Built::Input(Arc::new(Logstreamer::from_section(
        section, ctx,
    )?)))
}

impl Logstreamer {
    /// Builds the input from its section.
    pub fn from_section(
        section: &PluginSection,
        ctx: &BuildContext<'_>,
    ) -> Result<Logstreamer, ConfigError> {
        let opts: Options = section.options()?;
        let oldest = duration_option(section, "oldest_duration", &opts.oldest_duration)?;
        let rescan = duration_option(section, "rescan_interval", &opts.rescan_interval)?
            .max(Duration::from_millis(10));
        let check = duration_option(section, "check_data_interval", &opts.check_data_interval)?
            .max(Duration::from_millis(1));
        let differentiator = if opts.differentiator.is_empty() {
            vec![section.name().to_string()]
        } else {
            opts.differentiator
        };
        let matcher = SortPattern {
            log_directory: PathBuf::from(&opts.log_directory),
            file_match: opts.file_match,
            priority: opts.priority,
            differentiator,
            translation: opts.translation,
            oldest,
        }
        .compile()
        .map_err(|e| {
            section.error_at_key(e.0, format!("{} in section [{}]", e.1, section.name()))
        })?;
        let journal_dir = opts
            .journal_directory
            .map_or_else(|| ctx.global.base_dir.join("logstreamer"), PathBuf::from);
        let spec = ctx.stream_spec(section, "TokenSplitter", None)?;
        Ok(Logstreamer {
            name: section.name().to_string(),
            matcher,
            journal_dir,
            rescan,
            check,
            initial_tail: opts.initial_tail,
            hostname: opts.hostname.unwrap_or_else(|| ctx.global.hostname.clone()),
            spec,
        })
    }

    /// What `hekate logstreamer` prints: every stream found, its files in reading order, and
    /// where its journal says reading resumes.
    pub fn description(&self) -> String {
        use std::fmt::Write as _;
        let p = self.matcher.pattern();
        let mut out = String::new();
        let _ = writeln!(
            out,
            "LogstreamerInput '{}': files under {} matching '{}'",
            self.name,
            self.matcher.root().display(),
            p.file_match
        );
        let scan = self.matcher.scan();
        if scan.streams.is_empty() {
            let _ = writeln!(out, "  no stream found");
        }
        for (name, files) in &scan.streams {
            let _ = writeln!(
                out,
                "  stream '{name}': {} file{}, read in this order:",
                files.len(),
                if files.len() == 1 { "" } else { "s" }
            );
            for f in files {
                let _ = writeln!(out, "    {}", f.path.display());
            }
            let jpath = self.journal_dir.join(name);
            match Journal::load(&jpath) {
                Ok(Some(j)) => {
                    let paths: Vec<PathBuf> = files.iter().map(|f| f.path.clone()).collect();
                    match locate(&j, &paths) {
                        Some((file, seek)) => {
                            let _ = writeln!(
                                out,
                                "    journal {}: resumes in {} at byte {seek}",
                                jpath.display(),
                                file.display()
                            );
                        }
                        None => {
                            let _ = writeln!(
                                out,
                                "    journal {}: its position ({} at byte {}) is in none of these files; reading starts at the oldest",
                                jpath.display(),
                                j.file_name,
                                j.seek
                            );
                        }
                    }
                }
                Ok(None) => {
                    let _ = writeln!(
                        out,
                        "    no journal ({}): reading starts at the {}",
                        jpath.display(),
                        if self.initial_tail {
                            "end of the newest file"
                        } else {
                            "oldest file"
                        }
                    );
                }
                Err(e) => {
                    let _ = writeln!(out, "    journal {} is ignored: {e}", jpath.display());
                }
            }
        }
        for problem in &scan.problems {
            let _ = writeln!(out, "  left out: {problem}");
        }
        out
    }
}

/// The shard that reads a stream.
fn home_of(stream: &str, shards: usize) -> usize {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    stream.hash(&mut h);
    (h.finish() % shards.max(1) as u64) as usize
}

/// What one shard's instance shares with its stream tasks.
struct Instance {
    ctx: InputContext,
    input: Arc<Logstreamer>,
    /// This shard's streams by name.
    streams: RefCell<BTreeMap<String, Rc<StreamShared>>>,
    /// Which stream each listed file belongs to (to wake it when the file is written).
    by_path: RefCell<HashMap<PathBuf, Rc<StreamShared>>>,
    /// File events, when inotify is available.
    watcher: Option<watch::Watcher>,
    counts: RefCell<Counts>,
}

/// A stream's files and the way to wake its reader.
#[derive(Debug, Default)]
struct StreamShared {
    /// Its files, oldest first, as the last scan found them.
    files: RefCell<Vec<PathBuf>>,
    /// Bumped to wake the reader (a file of the stream was written).
    wakes: Cell<u64>,
    bell: Doorbell,
}

impl StreamShared {
    fn wake(&self) {
        self.wakes.set(self.wakes.get() + 1);
        self.bell.ring();
    }
}

/// How often a stream waiting for acknowledgements looks at them (to write its journal).
const ACK_POLL: Duration = Duration::from_millis(100);
/// How long a stream at the end of its file waits for more when inotify tells it of writes
/// (a fallback poll, for file systems that do not report every write).
const WATCHED_POLL: Duration = Duration::from_secs(10);

/// The time left at `now` until the next multiple of `period` since the process's first call:
/// idle streams sleep until such a tick rather than for `period`, so that a thousand of them
/// wake the shard once per period instead of a thousand times at scattered moments.
fn until_tick(period: Duration, now: Instant) -> Duration {
    static EPOCH: std::sync::LazyLock<Instant> = std::sync::LazyLock::new(Instant::now);
    let period_ns = period.as_nanos().max(1);
    let into = now.saturating_duration_since(*EPOCH).as_nanos() % period_ns;
    Duration::from_nanos((period_ns - into) as u64)
}

/// The input's own report fields on this shard (the report sums the shards).
#[derive(Debug, Default)]
struct Counts {
    /// Files found truncated under the reader (copytruncate).
    truncations: u64,
    /// Journal writes that failed.
    journal_errors: u64,
}

impl Instance {
    fn count(&self, f: impl FnOnce(&mut Counts)) {
        f(&mut self.counts.borrow_mut());
        self.publish();
    }

    fn publish(&self) {
        let c = self.counts.borrow();
        let mut fields = FieldCollector::default();
        fields.int("Streams", self.streams.borrow().len() as i64, "count");
        fields.int("Truncations", c.truncations as i64, "count");
        fields.int("JournalWriteFailures", c.journal_errors as i64, "count");
        self.ctx.counters().set_extra(fields.fields);
    }
}

impl InputPlugin for Logstreamer {
    fn stream_spec(&self) -> Option<(&StreamSpec, Option<&'static str>)> {
        Some((&self.spec, Some("logfile")))
    }

    fn placement(&self) -> InputPlacement {
        InputPlacement::EveryShard
    }

    fn describe(&self) -> Option<String> {
        Some(self.description())
    }

    fn start(
        &self,
        ctx: InputContext,
    ) -> Result<LocalBoxFuture<'static, Result<(), PluginError>>, PluginError> {
        std::fs::create_dir_all(&self.journal_dir).map_err(|e| {
            PluginError::io(
                format!(
                    "cannot create journal_directory {}",
                    self.journal_dir.display()
                ),
                e,
            )
        })?;
        let watcher = match watch::Watcher::start(&self.name) {
            Ok(w) => Some(w),
            Err(e) => {
                warn_limited!(
                    "Input '{}': no inotify ({e}); files are polled every check_data_interval and rescanned every rescan_interval",
                    ctx.name
                );
                None
            }
        };
        let inst = Rc::new(Instance {
            ctx,
            input: Arc::new(self.clone()),
            streams: RefCell::default(),
            by_path: RefCell::default(),
            watcher,
            counts: RefCell::default(),
        });
        Ok(Box::pin(async move {
            let tasks = TaskGroup::new();
            inst.rescan(&tasks);
            let mut next_scan = Instant::now() + inst.input.rescan;
            loop {
                let left = next_scan.saturating_duration_since(Instant::now());
                let woke = future::or(
                    async {
                        inst.ctx.stopped().await;
                        Wake::Stop
                    },
                    future::or(
                        async {
                            glommio::timer::sleep(left).await;
                            Wake::Rescan
                        },
                        async {
                            match &inst.watcher {
                                Some(w) => w.bell().wait(|| w.has_pending()).await,
                                None => future::pending::<()>().await,
                            }
                            Wake::Events
                        },
                    ),
                )
                .await;
                match woke {
                    Wake::Stop => break,
                    Wake::Rescan => {
                        inst.rescan(&tasks);
                        next_scan = Instant::now() + inst.input.rescan;
                    }
                    Wake::Events => {
                        let w = inst.watcher.as_ref().expect("events come from the watcher");
                        let events = w.drain();
                        if events.rescan {
                            inst.rescan(&tasks);
                        }
                        if events.rescan || events.everything {
                            for s in inst.streams.borrow().values() {
                                s.wake();
                            }
                        }
                        let by_path = inst.by_path.borrow();
                        for path in &events.modified {
                            if let Some(s) = by_path.get(path) {
                                s.wake();
                            }
                        }
                    }
                }
            }
            tasks.wait_idle().await;
            Ok(())
        }))
    }
}

/// What woke an instance's main task.
enum Wake {
    Stop,
    Rescan,
    Events,
}

impl Instance {
    /// Scans, updates the file lists of this shard's streams, starts new ones and watches
    /// every directory.
    fn rescan(self: &Rc<Self>, tasks: &TaskGroup) {
        let scan = self.input.matcher.scan();
        for problem in &scan.problems {
            warn_limited!("Input '{}': {problem}", self.ctx.name);
        }
        if let Some(w) = &self.watcher
            && let Err(e) = w.watch(scan.dirs.iter().map(PathBuf::as_path))
        {
            warn_limited!(
                "Input '{}': cannot watch a directory ({e}); its files are polled",
                self.ctx.name
            );
        }
        let mut streams = self.streams.borrow_mut();
        let mut by_path = self.by_path.borrow_mut();
        by_path.clear();
        for (name, files) in scan.streams {
            if home_of(&name, self.ctx.shards) != self.ctx.shard {
                continue;
            }
            let paths: Vec<PathBuf> = files.into_iter().map(|f| f.path).collect();
            let shared = match streams.get(&name) {
                Some(shared) => {
                    *shared.files.borrow_mut() = paths;
                    Rc::clone(shared)
                }
                None => {
                    let shared = Rc::new(StreamShared {
                        files: RefCell::new(paths),
                        ..StreamShared::default()
                    });
                    streams.insert(name.clone(), Rc::clone(&shared));
                    let me = Rc::clone(self);
                    let stream = Rc::clone(&shared);
                    tasks.spawn(async move { me.run_stream(name, stream).await });
                    shared
                }
            };
            for p in shared.files.borrow().iter() {
                by_path.insert(p.clone(), Rc::clone(&shared));
            }
        }
        drop((streams, by_path));
        self.publish();
    }

    /// Reads one stream until the input stops, then writes its journal.
    async fn run_stream(self: Rc<Self>, name: String, stream: Rc<StreamShared>) {
        let mut s = StreamReader::new(&self, name, Rc::clone(&stream));
        s.start();
        let poll = if self.watcher.is_some() {
            self.input.check.max(WATCHED_POLL)
        } else {
            self.input.check
        };
        while !self.ctx.is_stopped() {
            let wakes = stream.wakes.get();
            match s.step().await {
                Step::Read => glommio::yield_if_needed().await,
                idle @ (Step::Idle | Step::Wait(_)) => {
                    s.save_acknowledged(false);
                    // An idle stream keeps no read buffer (an input may have thousands).
                    s.records.release();
                    // Acknowledgements still coming in: look again soon for the journal.
                    let mut wait = if s.acks.outstanding() > 0 {
                        self.input.check.min(ACK_POLL)
                    } else {
                        until_tick(poll, Instant::now())
                    };
                    if let Step::Wait(at_most) = idle {
                        wait = wait.min(at_most);
                    }
                    let written = stream.bell.wait(|| stream.wakes.get() != wakes);
                    future::or(
                        self.ctx.stopped(),
                        future::or(written, glommio::timer::sleep(wait)),
                    )
                    .await;
                }
            }
        }
        // A partial record held at shutdown stays unread: the journal's position is before it.
        s.records.discard();
        if let Some(c) = s.acks.settle(&self.ctx, SETTLE).await {
            s.acked = Some(c);
        }
        s.save_acknowledged(true);
        if s.acks.outstanding() > 0 {
            warn_limited!(
                "Input '{}': stream '{}': not everything read was acknowledged within {} s; the rest will be read again after the restart",
                self.ctx.name,
                s.name,
                SETTLE.as_secs()
            );
        }
    }
}

/// A file being read: one descriptor, read through io_uring, and seen as a `std::fs::File`
/// for `fstat` and the journal's hash (a stream keeps one descriptor, so that an input with
/// thousands of streams stays within the descriptor limit).
#[derive(Debug)]
struct Reading {
    file: BufferedFile,
}

impl Reading {
    /// Runs `f` on the descriptor as a `File` without taking it over.
    fn with_std<R>(&self, f: impl FnOnce(&File) -> R) -> R {
        // SAFETY: the descriptor stays open while `self` lives; ManuallyDrop never closes it.
        let std = std::mem::ManuallyDrop::new(unsafe { File::from_raw_fd(self.file.as_raw_fd()) });
        f(&std)
    }
}

/// The file a stream reads.
struct Open {
    path: PathBuf,
    file: Rc<Reading>,
    id: (u64, u64),
    /// Offset of the next byte to read.
    offset: u64,
    /// The last bytes read (at most [`journal::HASHED`]), to find them again in a copy when
    /// the file is truncated under us.
    tail: Vec<u8>,
    /// Since when the file has been at its end with a newer file waiting.
    ended: Option<Instant>,
    /// The file's size when last looked at.
    size: u64,
}

impl Open {
    fn remember(&mut self, data: &[u8]) {
        let keep = journal::HASHED;
        if data.len() >= keep {
            self.tail.clear();
            self.tail.extend_from_slice(&data[data.len() - keep..]);
        } else {
            let drop = (self.tail.len() + data.len()).saturating_sub(keep);
            self.tail.drain(..drop);
            self.tail.extend_from_slice(data);
        }
    }
}

/// A position every message before which is acknowledged (or waiting to be).
#[derive(Debug, Clone)]
struct Cursor {
    path: PathBuf,
    file: Rc<Reading>,
    seek: u64,
}

enum Step {
    /// Read something, or moved on: go on.
    Read,
    /// Nothing to read now.
    Idle,
    /// Nothing to read now; look again within this time at the latest.
    Wait(Duration),
}

struct StreamReader {
    inst: Rc<Instance>,
    name: String,
    stream: Rc<StreamShared>,
    records: RecordStream,
    acks: Acknowledgements<Cursor>,
    /// The newest acknowledged position not yet in the journal.
    acked: Option<Cursor>,
    saved: Option<(PathBuf, u64)>,
    last_save: Instant,
    open: Option<Open>,
    done: VecDeque<(u64, u64)>,
    journal_path: PathBuf,
}

fn file_id(meta: &std::fs::Metadata) -> (u64, u64) {
    (meta.dev(), meta.ino())
}

impl StreamReader {
    fn new(inst: &Rc<Instance>, name: String, stream: Rc<StreamShared>) -> Self {
        let mut records = inst
            .ctx
            .stream(&inst.input.spec, Some(&inst.input.hostname));
        records.set_origin(&name, Some("logfile"));
        let journal_path = inst.input.journal_dir.join(&name);
        StreamReader {
            inst: Rc::clone(inst),
            name,
            stream,
            records,
            acks: Acknowledgements::new(),
            acked: None,
            saved: None,
            last_save: Instant::now(),
            open: None,
            done: VecDeque::new(),
            journal_path,
        }
    }

    fn warn(&self, what: std::fmt::Arguments<'_>) {
        warn_limited!(
            "Input '{}': stream '{}': {what}",
            self.inst.ctx.name,
            self.name
        );
    }

    /// Opens where the journal says, or where a stream without one starts.
    fn start(&mut self) {
        let files = self.stream.files.borrow().clone();
        let journal = match Journal::load(&self.journal_path) {
            Ok(j) => j,
            Err(e) => {
                self.warn(format_args!(
                    "the journal {} is ignored: {e}",
                    self.journal_path.display()
                ));
                None
            }
        };
        match journal {
            Some(j) => match locate(&j, &files) {
                Some((path, seek)) => {
                    self.saved = Some((path.clone(), seek));
                    self.open_at(&path, seek);
                }
                None => {
                    self.warn(format_args!(
                        "the journal's position ({} at byte {}) is in none of its files; reading from the oldest",
                        j.file_name, j.seek
                    ));
                    self.open_next();
                }
            },
            None if self.inst.input.initial_tail => {
                if let Some(newest) = files.last() {
                    let end = std::fs::metadata(newest).map_or(0, |m| m.len());
                    self.open_at(newest, end);
                }
            }
            None => {
                self.open_next();
            }
        }
    }

    /// Opens `path` at `offset`; false (said) when it cannot be opened.
    fn open_at(&mut self, path: &Path, offset: u64) -> bool {
        let opened = File::open(path).and_then(|f| {
            let meta = f.metadata()?;
            if !meta.is_file() {
                return Err(std::io::Error::other("not a regular file"));
            }
            Ok((f, meta))
        });
        match opened {
            Ok((f, meta)) => {
                let offset = offset.min(meta.len());
                let mut tail = vec![0u8; offset.min(journal::HASHED as u64) as usize];
                let start = offset - tail.len() as u64;
                if std::os::unix::fs::FileExt::read_exact_at(&f, &mut tail, start).is_err() {
                    tail.clear();
                }
                // SAFETY: the descriptor is ours, handed over to glommio, which closes it.
                let file = unsafe { BufferedFile::from_raw_fd(f.into_raw_fd()) };
                hekate_engine::plugin::log::tracing::debug!(
                    "Input '{}': stream '{}': reading {} from byte {offset}",
                    self.inst.ctx.name,
                    self.name,
                    path.display()
                );
                self.open = Some(Open {
                    path: path.to_path_buf(),
                    file: Rc::new(Reading { file }),
                    id: file_id(&meta),
                    offset,
                    tail,
                    ended: None,
                    size: meta.len(),
                });
                true
            }
            Err(e) => {
                self.warn(format_args!("cannot read {}: {e}", path.display()));
                false
            }
        }
    }

    /// The files that may be read after the current one, in order: those after it in the
    /// stream's order (from the oldest when the current one is no longer listed) not read to
    /// their end yet.
    fn next_files(&self) -> Vec<PathBuf> {
        let current = self.open.as_ref().map(|o| o.id);
        let files = self.stream.files.borrow();
        let ids: Vec<Option<(u64, u64)>> = files
            .iter()
            .map(|p| std::fs::metadata(p).ok().map(|m| file_id(&m)))
            .collect();
        let from = current
            .and_then(|c| ids.iter().position(|id| *id == Some(c)))
            .map_or(0, |i| i + 1);
        files[from..]
            .iter()
            .zip(&ids[from..])
            .filter(|(_, id)| id.is_some_and(|id| Some(id) != current && !self.done.contains(&id)))
            .map(|(p, _)| p.clone())
            .collect()
    }

    /// Opens the first of [`StreamReader::next_files`] that can be opened (one that cannot is
    /// said and passed over, and tried again next time).
    fn open_next(&mut self) -> bool {
        self.next_files().iter().any(|path| self.open_at(path, 0))
    }

    /// Scans for this stream's files now (a rotation is under way: the last periodic scan may
    /// predate it).
    fn refresh_files(&self) {
        let scan = self.inst.input.matcher.scan();
        if let Some(files) = scan.streams.get(&self.name) {
            *self.stream.files.borrow_mut() = files.iter().map(|f| f.path.clone()).collect();
        }
    }

    /// Reads one block, or handles the end of the file.
    async fn step(&mut self) -> Step {
        let Some(open) = &self.open else {
            return if self.open_next() {
                Step::Read
            } else {
                Step::Idle
            };
        };
        if open.size <= open.offset {
            // Read up to the size last seen: whether the file grew is one fstat, not a buffer
            // and a read (an idle stream of an input watching thousands wakes every few
            // seconds).
            return self.at_end().await;
        }
        // What is left to read, in blocks; at least a page (a file that grows is read on).
        let want = (open.size.saturating_sub(open.offset) as usize).clamp(4096, READ_BLOCK);
        match open.file.file.read_at(open.offset, want).await {
            Ok(data) if !data.is_empty() => {
                let n = data.len();
                self.open.as_mut().expect("open").remember(&data);
                // Split straight from io_uring's buffer: only a partial last record is copied.
                self.records.feed_bytes(&data).await;
                drop(data);
                let open = self.open.as_mut().expect("still open");
                open.offset += n as u64;
                let cursor = Cursor {
                    path: open.path.clone(),
                    file: Rc::clone(&open.file),
                    seek: open.offset - self.records.unconsumed() as u64,
                };
                self.acks.push(&self.inst.ctx, cursor);
                self.poll_acks();
                Step::Read
            }
            Ok(_) => self.at_end().await,
            Err(e) => {
                self.warn(format_args!("reading {}: {e}", open.path.display()));
                Step::Idle
            }
        }
    }

    /// At the end of the current file: truncated, rotated, or waiting for more.
    async fn at_end(&mut self) -> Step {
        let open = self.open.as_mut().expect("called with a file open");
        let meta = open.file.with_std(|f| f.metadata()).ok();
        let size = meta.as_ref().map_or(open.offset, |m| m.len());
        // How long the file has had nothing new (its modification time; a file rotated long
        // ago has been quiet for longer than this run).
        let quiet = meta
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.elapsed().ok())
            .unwrap_or_default();
        if size < open.offset {
            self.inst.count(|c| c.truncations += 1);
            return self.truncated();
        }
        open.size = size;
        if size > open.offset {
            open.ended = None;
            return Step::Read;
        }
        let id = open.id;
        if self.next_files().is_empty() {
            self.poll_acks();
            return Step::Idle;
        }
        // A newer file exists. The application may still write into this one until it reopens
        // its log (logrotate's `create` makes the new file before the postrotate signal): move
        // on only once this one has had nothing new for ROTATE_GRACE.
        let open = self.open.as_mut().expect("open");
        let ended = *open.ended.get_or_insert_with(Instant::now);
        let waited = ended.elapsed().max(quiet);
        if waited < ROTATE_GRACE {
            self.poll_acks();
            // Look again when the grace is over, not at the next poll (seconds away with
            // inotify: nothing writes to a rotated file to wake the stream).
            return Step::Wait(ROTATE_GRACE - waited);
        }
        // A newer file exists, so this one is complete: deliver (or count) a partial last
        // record as the splitter says, then go on.
        self.records.finish().await;
        let open = self.open.as_ref().expect("open");
        let cursor = Cursor {
            path: open.path.clone(),
            file: Rc::clone(&open.file),
            seek: open.offset,
        };
        self.acks.push(&self.inst.ctx, cursor);
        if !self.done.contains(&id) {
            if self.done.len() >= DONE_FILES {
                self.done.pop_front();
            }
            self.done.push_back(id);
        }
        self.open_next();
        Step::Read
    }

    /// The current file shrank below the position (copytruncate). If a copy of it is among
    /// the stream's files (the same bytes before the position), the rest of the copy is read
    /// and then the truncated file from its start — nothing read twice, nothing missed; else
    /// the file is read again from its start.
    fn truncated(&mut self) -> Step {
        let open = self.open.as_mut().expect("open");
        let path = open.path.clone();
        let (offset, id) = (open.offset, open.id);
        self.refresh_files();
        let open = self.open.as_ref().expect("open");
        let journal = Journal {
            seek: offset,
            file_name: String::new(),
            last_hash: journal::hash_of_tail(&open.tail),
        };
        let files: Vec<PathBuf> = self
            .stream
            .files
            .borrow()
            .iter()
            .filter(|p| std::fs::metadata(p).is_ok_and(|m| file_id(&m) != id))
            .cloned()
            .collect();
        if let Some((copy, seek)) = locate(&journal, &files)
            && self.open_at(&copy, seek)
        {
            self.warn(format_args!(
                "{} was truncated (copytruncate); reading the rest of its copy {} first",
                path.display(),
                copy.display()
            ));
            return Step::Read;
        }
        let open = self.open.as_mut().expect("open");
        open.offset = 0;
        open.tail.clear();
        self.records.discard();
        self.warn(format_args!(
            "{} was truncated (copytruncate?); reading it again from its start",
            path.display()
        ));
        Step::Read
    }

    fn poll_acks(&mut self) {
        if let Some(c) = self.acks.poll(&self.inst.ctx) {
            self.acked = Some(c);
        }
        if self.last_save.elapsed() >= self.inst.input.check {
            self.save_acknowledged(false);
        }
    }

    /// Writes the journal if the acknowledged position moved (`force`: whatever the time).
    fn save_acknowledged(&mut self, force: bool) {
        if let Some(c) = self.acks.poll(&self.inst.ctx) {
            self.acked = Some(c);
        }
        let Some(c) = self.acked.take() else {
            return;
        };
        if !force && self.saved.as_ref() == Some(&(c.path.clone(), c.seek)) {
            return;
        }
        let hash = match c.file.with_std(|f| hash_at(f, c.seek)) {
            Ok(Some(h)) => h,
            Ok(None) => {
                // The file shrank under us: nothing sensible to hash; the next position will do.
                return;
            }
            Err(e) => {
                self.warn(format_args!("hashing {}: {e}", c.path.display()));
                return;
            }
        };
        let j = Journal {
            seek: c.seek,
            file_name: c.path.to_string_lossy().into_owned(),
            last_hash: hash,
        };
        match j.save(&self.journal_path) {
            Ok(()) => {
                self.saved = Some((c.path, c.seek));
                self.last_save = Instant::now();
            }
            Err(e) => {
                self.inst.count(|c| c.journal_errors += 1);
                self.warn(format_args!(
                    "cannot write the journal {}: {e}",
                    self.journal_path.display()
                ));
                self.acked = Some(c);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_streams_wake_on_a_shared_tick() {
        let period = Duration::from_secs(10);
        // The ticks count from the first call.
        until_tick(period, Instant::now());
        let now = Instant::now();
        let first = now + until_tick(period, now);
        assert!(first > now && first <= now + period);
        // Streams going idle at any moment of the same period wake at the same instant; one
        // going idle after it wakes one period later.
        for later in [1, 20, 5_000] {
            let then = now + Duration::from_millis(later);
            let wake = then + until_tick(period, then);
            if then < first {
                assert_eq!(wake, first, "{later} ms later");
            } else {
                assert_eq!(wake, first + period, "{later} ms later");
            }
        }
        let at_tick = first + until_tick(period, first);
        assert_eq!(at_tick, first + period, "at a tick, the next one");
    }
}
