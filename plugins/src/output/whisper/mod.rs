//! WhisperOutput: writes the Graphite plaintext payload of stat messages (StatAccumInput's
//! `heka.statmetric`) into whisper files, one per stat, as Heka's WhisperOutput does — files
//! that Graphite's own tools (`whisper-fetch`, `whisper-info`, graphite-web) read.
//!
//! A stat `a.b.c` goes to `<base_path>/a/b/c.wsp`; a missing file is created with
//! `default_archive_info` and `default_agg_method` (x-files factor 0.1, as Heka), its folders
//! with `folder_perm`. Each `name value timestamp` line is one update, written with whisper's
//! own rules (`format.rs`): the highest-precision archive that covers the timestamp, rolled up
//! into the lower ones. A malformed line, a name that is no path (`a..b`, `/`, `..`), or a
//! timestamp outside the file's retention is skipped, warned about (rate-limited) and counted
//! in the report (`MalformedLines`, `BadNames`, `OutOfRange`); a file that cannot be written in
//! `WriteErrors`.
//!
//! One instance runs on its home shard (one writer per file); the file I/O runs on the shard's
//! blocking-call thread, never on the reactor. At most 1,024 files are kept open.
//!
//! ```toml
//! [whisper]
//! type = "WhisperOutput"
//! message_matcher = "Type == 'heka.statmetric'"
//! base_path = "whisper"
//! default_agg_method = 1
//! default_archive_info = [ [0, 60, 1440], [0, 900, 8], [0, 3600, 168], [0, 43200, 1456] ]
//! folder_perm = "700"
//! ```
//!
//! Options: `base_path` ("whisper", under `base_dir` when relative), `default_agg_method` (1 =
//! average, 2 = sum, 3 = last, 4 = max, 5 = min), `default_archive_info` (`[offset, seconds per
//! point, points]` triples, highest precision first; the offset is computed and its value
//! ignored, as in Heka; default: a minute for a day, 15 minutes for 2 hours, an hour for a
//! week, 12 hours for 2 years), `folder_perm` ("700", octal), plus the common output options.

mod format;

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::DirBuilderExt as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use hekate_config::{ConfigError, PluginSection};
use hekate_engine::plugin::log::warn_limited;
use hekate_engine::plugin::{
    BuildContext, Built, Delivery, LocalBoxFuture, Output, OutputError, OutputPlugin, Placement,
    PluginContext, PluginError, PluginType, ProcessError, ReportSink, options_of,
};
use hekate_model::message::MessageAccess as _;
use schemars::JsonSchema;
use serde::Deserialize;

use format::{Aggregation, Archive, Header, UpdateError};

/// The registry entry.
pub const TYPE: PluginType = PluginType {
    name: "WhisperOutput",
    source: include_str!("mod.rs"),
    options: options_of::<Options>,
    default_matcher: None,
    build,
};

/// Updates buffered before a write, even inside a batch.
const BUFFER_LIMIT: usize = 64 * 1024;
/// Files kept open between writes.
const OPEN_FILES: usize = 1024;
/// Heka's x-files factor for new files.
const X_FILES_FACTOR: f32 = 0.1;

fn default_base_path() -> String {
    "whisper".into()
}
fn default_agg() -> u32 {
    1
}
fn default_archives() -> Vec<Vec<u32>> {
    vec![
        vec![0, 60, 1440],
        vec![0, 900, 8],
        vec![0, 3600, 168],
        vec![0, 43200, 1456],
    ]
}
fn default_folder_perm() -> String {
    "700".into()
}

/// WhisperOutput's own options.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Options {
    /// Where the whisper tree goes (under `base_dir` when relative).
    #[serde(default = "default_base_path")]
    base_path: String,
    /// Roll-up of new files: 1 average, 2 sum, 3 last, 4 max, 5 min.
    #[serde(default = "default_agg")]
    default_agg_method: u32,
    /// Archives of new files: `[offset, seconds per point, points]`, highest precision first.
    #[serde(default = "default_archives")]
    default_archive_info: Vec<Vec<u32>>,
    /// Permissions of created folders (octal).
    #[serde(default = "default_folder_perm")]
    folder_perm: String,
}

#[derive(Debug)]
struct Settings {
    base: PathBuf,
    aggregation: Aggregation,
    archives: Vec<Archive>,
    folder_perm: u32,
}

#[derive(Debug)]
struct WhisperOutputPlugin {
    settings: Arc<Settings>,
}

fn build(section: &PluginSection, ctx: &BuildContext<'_>) -> Result<Built, ConfigError> {
    let opts: Options = section.options()?;
    let aggregation = Aggregation::from_code(opts.default_agg_method).ok_or_else(|| {
        section.error_at_value(
            "default_agg_method",
            format!(
                "`default_agg_method` of section [{}] must be 1 (average), 2 (sum), 3 (last), 4 (max) or 5 (min)",
                section.name()
            ),
        )
    })?;
    if opts.default_archive_info.iter().any(|a| a.len() != 3) {
        return Err(section.error_at_value(
            "default_archive_info",
            format!(
                "all default archive info settings must have 3 values (section [{}])",
                section.name()
            ),
        ));
    }
    let archives: Vec<Archive> = opts
        .default_archive_info
        .iter()
        .map(|a| Archive {
            seconds_per_point: a[1],
            points: a[2],
        })
        .collect();
    format::validate(&archives).map_err(|e| {
        section.error_at_value(
            "default_archive_info",
            format!(
                "`default_archive_info` of section [{}]: {e}",
                section.name()
            ),
        )
    })?;
    let folder_perm = u32::from_str_radix(&opts.folder_perm, 8)
        .ok()
        .filter(|v| *v <= 0o7777)
        .ok_or_else(|| {
            section.error_at_value(
                "folder_perm",
                format!(
                    "`folder_perm` of section [{}] must be octal permissions such as \"700\", not {:?}",
                    section.name(),
                    opts.folder_perm
                ),
            )
        })?;
    let mut base = PathBuf::from(&opts.base_path);
    if base.is_relative() {
        base = ctx.global.base_dir.join(base);
    }
    Ok(Built::Output(Arc::new(WhisperOutputPlugin {
        settings: Arc::new(Settings {
            base,
            aggregation,
            archives,
            folder_perm,
        }),
    })))
}

impl OutputPlugin for WhisperOutputPlugin {
    fn placement(&self) -> Placement {
        Placement::Single
    }

    fn new_output(&self, ctx: &PluginContext) -> Result<Box<dyn Output>, PluginError> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(self.settings.folder_perm)
            .create(&self.settings.base)
            .map_err(|e| {
                PluginError::io(
                    format!(
                        "WhisperOutput '{}' cannot create {}",
                        ctx.name,
                        self.settings.base.display()
                    ),
                    e,
                )
            })?;
        Ok(Box::new(WhisperOutput {
            name: ctx.name.clone(),
            settings: Arc::clone(&self.settings),
            pending: Vec::new(),
            messages: 0,
            written: 0,
            files: Some(Files::default()),
            counts: Counts::default(),
        }))
    }
}

/// One update to make.
struct Point {
    name: String,
    timestamp: u32,
    value: f64,
}

/// Open files with their headers.
#[derive(Default)]
struct Files(HashMap<String, (File, Header)>);

#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    updates: u64,
    malformed: u64,
    bad_names: u64,
    out_of_range: u64,
    write_errors: u64,
}

struct WhisperOutput {
    name: String,
    settings: Arc<Settings>,
    pending: Vec<Point>,
    messages: u64,
    written: u64,
    /// With the output, or on the blocking thread during a flush.
    files: Option<Files>,
    counts: Counts,
}

/// The file path of a stat, or `None` when the name is no relative path of folders and a file.
fn stat_path(base: &std::path::Path, name: &str) -> Option<PathBuf> {
    let mut path = base.to_path_buf();
    let mut parts = name.split('.').peekable();
    while let Some(part) = parts.next() {
        if part.is_empty() || part.contains(['/', '\0']) {
            return None;
        }
        if parts.peek().is_none() {
            path.push(format!("{part}.wsp"));
        } else {
            path.push(part);
        }
    }
    Some(path)
}

impl Files {
    /// The open file of `name`, created when missing.
    fn open(&mut self, settings: &Settings, name: &str) -> Result<&(File, Header), String> {
        if !self.0.contains_key(name) {
            let path = stat_path(&settings.base, name).ok_or("not a path")?;
            let file = match std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
            {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    if let Some(dir) = path.parent() {
                        std::fs::DirBuilder::new()
                            .recursive(true)
                            .mode(settings.folder_perm)
                            .create(dir)
                            .map_err(|e| format!("creating {}: {e}", dir.display()))?;
                    }
                    match format::create(
                        &path,
                        &settings.archives,
                        settings.aggregation,
                        X_FILES_FACTOR,
                    ) {
                        Ok(f) => f,
                        // Created meanwhile by someone else.
                        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                            std::fs::OpenOptions::new()
                                .read(true)
                                .write(true)
                                .open(&path)
                                .map_err(|e| format!("opening {}: {e}", path.display()))?
                        }
                        Err(e) => return Err(format!("creating {}: {e}", path.display())),
                    }
                }
                Err(e) => return Err(format!("opening {}: {e}", path.display())),
            };
            let header = format::read_header(&file)
                .map_err(|e| format!("reading {}: {e}", path.display()))?;
            if self.0.len() >= OPEN_FILES {
                self.0.clear();
            }
            self.0.insert(name.to_string(), (file, header));
        }
        Ok(&self.0[name])
    }

    /// Makes the updates; counts what could not be made.
    fn write(&mut self, settings: &Settings, points: &[Point], counts: &mut Counts, log: &str) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        for p in points {
            let (file, header) = match self.open(settings, &p.name) {
                Ok(f) => f,
                Err(e) if e == "not a path" => {
                    counts.bad_names += 1;
                    warn_limited!("Output '{log}': stat name {:?} is not a path", p.name);
                    continue;
                }
                Err(e) => {
                    counts.write_errors += 1;
                    warn_limited!("Output '{log}': {e}");
                    continue;
                }
            };
            match format::update(file, header, p.timestamp, p.value, now) {
                Ok(()) => counts.updates += 1,
                Err(UpdateError::NotCovered) => {
                    counts.out_of_range += 1;
                    warn_limited!(
                        "Output '{log}': {} at {} is outside the retention of its file",
                        p.name,
                        p.timestamp
                    );
                }
                Err(UpdateError::Io(e)) => {
                    counts.write_errors += 1;
                    warn_limited!("Output '{log}': writing {}: {e}", p.name);
                    self.0.remove(&p.name);
                }
            }
        }
    }
}

impl Output for WhisperOutput {
    fn process(&mut self, msg: &Delivery<'_>) -> Result<(), ProcessError> {
        let payload = String::from_utf8_lossy(msg.view.payload());
        for line in payload.trim_matches([' ', '\n']).split('\n') {
            let mut f = line.split_whitespace();
            let (Some(name), Some(value), Some(ts), None) =
                (f.next(), f.next(), f.next(), f.next())
            else {
                self.counts.malformed += 1;
                warn_limited!(
                    "Output '{}': malformed statmetric line: '{line}'",
                    self.name
                );
                continue;
            };
            match (ts.parse::<u32>(), value.parse::<f64>()) {
                (Ok(timestamp), Ok(value)) => self.pending.push(Point {
                    name: name.to_string(),
                    timestamp,
                    value,
                }),
                _ => {
                    self.counts.malformed += 1;
                    warn_limited!(
                        "Output '{}': malformed statmetric line: '{line}'",
                        self.name
                    );
                }
            }
        }
        self.messages += 1;
        Ok(())
    }

    fn must_flush(&self) -> bool {
        self.pending.len() >= BUFFER_LIMIT
    }

    fn should_flush(&self, _now: Instant) -> bool {
        self.messages > 0
    }

    fn flush(&mut self) -> LocalBoxFuture<'_, Result<(), OutputError>> {
        Box::pin(async move {
            let points = std::mem::take(&mut self.pending);
            let mut files = self.files.take().unwrap_or_default();
            let settings = Arc::clone(&self.settings);
            let mut counts = self.counts;
            let name = self.name.clone();
            let done = glommio::executor()
                .spawn_blocking(move || {
                    files.write(&settings, &points, &mut counts, &name);
                    (files, counts, points)
                })
                .await;
            let (files, counts, mut points) = done;
            self.files = Some(files);
            self.counts = counts;
            points.clear();
            self.pending = points;
            self.written += std::mem::take(&mut self.messages);
            Ok(())
        })
    }

    fn buffered(&self) -> u64 {
        self.messages
    }

    fn take_written(&mut self) -> u64 {
        std::mem::take(&mut self.written)
    }

    fn report(&self, sink: &mut dyn ReportSink) {
        sink.int("Updates", self.counts.updates as i64, "count");
        sink.int("MalformedLines", self.counts.malformed as i64, "count");
        sink.int("BadNames", self.counts.bad_names as i64, "count");
        sink.int("OutOfRange", self.counts.out_of_range as i64, "count");
        sink.int("WriteErrors", self.counts.write_errors as i64, "count");
    }
}

#[cfg(test)]
mod tests {
    use super::stat_path;
    use crate::common::testing::{build, build_doc_sample};
    use std::path::Path;

    #[test]
    fn doc_sample_builds() {
        build_doc_sample(include_str!("mod.rs"));
    }

    #[test]
    fn names_are_paths_under_the_base() {
        let b = Path::new("/w");
        assert_eq!(stat_path(b, "a.b.c"), Some("/w/a/b/c.wsp".into()));
        assert_eq!(stat_path(b, "x"), Some("/w/x.wsp".into()));
        for bad in ["a..b", ".a", "a.", "a/b", "..", ""] {
            assert_eq!(stat_path(b, bad), None, "{bad}");
        }
    }

    #[test]
    fn bad_options_are_refused() {
        let base = "[i]\ntype = \"TcpInput\"\naddress = \":1\"\n[w]\ntype = \"WhisperOutput\"\nmessage_matcher = \"TRUE\"\n";
        assert!(build(base).is_ok());
        let e = build(&format!("{base}default_agg_method = 0\n")).unwrap_err();
        assert!(e.contains("default_agg_method"), "{e}");
        let e = build(&format!("{base}default_archive_info = [[0, 60]]\n")).unwrap_err();
        assert!(e.contains("3 values"), "{e}");
        let e = build(&format!(
            "{base}default_archive_info = [[0, 60, 10], [0, 90, 100]]\n"
        ))
        .unwrap_err();
        assert!(e.contains("does not divide"), "{e}");
        let e = build(&format!("{base}folder_perm = \"rwx\"\n")).unwrap_err();
        assert!(e.contains("octal"), "{e}");
    }
}
