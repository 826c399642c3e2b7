//! ProcessDirectoryInput: runs every ProcessInput a directory describes, and follows the
//! directory while hekate runs, as Heka's does.
//!
//! Each job is a file `<process_dir>/<interval>/<anything>.toml` holding a `[ProcessInput]`
//! section with ProcessInput's options (`command` tables, `immediate_start`, `stdout`,
//! `stderr`, `timeout`); the directory's name is the job's `ticker_interval` in seconds (`0`:
//! run once and stream). Every `ticker_interval` seconds of its own the input looks at the
//! directory again: a new file starts its job, a changed file restarts it, a removed file stops
//! it (its running commands are killed). A job's messages are ProcessInput's, with Logger = the
//! job file's path. Files elsewhere in the tree, directories that are not a number, and files
//! that do not parse are skipped with a warning (once per version of the file) and counted
//! (`JobFileErrorCount`); the other jobs run on.
//!
//! Unlike Heka, a job file cannot name its own splitter or decoder: its records go through the
//! ProcessDirectoryInput's own (`splitter`, default TokenSplitter, and `decoder`), which every
//! job shares. The input runs on one worker shard; each job's commands are started off the shard
//! by the input's spawning thread.
//!
//! ```toml
//! [jobs]
//! type = "ProcessDirectoryInput"
//! process_dir = "/etc/hekate/processes"
//! ticker_interval = 60
//! ```
//!
//! With `/etc/hekate/processes/30/df.toml`:
//!
//! ```text
//! [ProcessInput]
//! [ProcessInput.command.0]
//! bin = "/bin/df"
//! args = ["-P"]
//! ```
//!
//! Options: `process_dir` ("processes", relative to `share_dir`), `ticker_interval` (300 s:
//! how often the directory is read again), plus the common input options.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use hekate_config::{ConfigError, PluginSection};
use hekate_engine::plugin::log::warn_limited;
use hekate_engine::plugin::{
    BuildContext, Built, FieldCollector, InputContext, InputPlacement, InputPlugin, LocalBoxFuture,
    PluginError, PluginType, ReportSink as _, StreamSpec, options_of,
};
use schemars::JsonSchema;
use serde::Deserialize;

use super::process::{Job, Options as JobOptions, Spawner, run_job, steps_of};

/// The registry entry.
pub const TYPE: PluginType = PluginType {
    name: "ProcessDirectoryInput",
    source: include_str!("process_directory.rs"),
    options: options_of::<Options>,
    default_matcher: None,
    build,
};

/// The most bytes of a job file read.
const MAX_JOB_FILE: u64 = 1 << 20;

fn default_process_dir() -> String {
    "processes".into()
}

/// ProcessDirectoryInput's own options (`ticker_interval` is a common input option).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Options {
    /// The directory of job files (`<interval>/<name>.toml`); a relative path is taken from
    /// `share_dir`.
    #[serde(default = "default_process_dir")]
    process_dir: String,
}

#[derive(Debug)]
struct ProcessDirectory {
    dir: PathBuf,
    rescan: Duration,
    spec: StreamSpec,
}

fn build(section: &PluginSection, ctx: &BuildContext<'_>) -> Result<Built, ConfigError> {
    let opts: Options = section.options()?;
    let rescan = crate::common::ticker_period(
        section,
        Duration::from_secs(300),
        "how often the directory is read",
    )?;
    let dir = PathBuf::from(&opts.process_dir);
    let dir = if dir.is_absolute() {
        dir
    } else {
        ctx.global.share_dir.join(dir)
    };
    let spec = ctx.stream_spec(section, "TokenSplitter", None)?;
    Ok(Built::Input(Arc::new(ProcessDirectory {
        dir,
        rescan,
        spec,
    })))
}

impl InputPlugin for ProcessDirectory {
    fn stream_spec(&self) -> Option<(&StreamSpec, Option<&'static str>)> {
        Some((&self.spec, Some("ProcessInput")))
    }

    fn placement(&self) -> InputPlacement {
        InputPlacement::OneShard
    }

    fn start(
        &self,
        ctx: InputContext,
    ) -> Result<LocalBoxFuture<'static, Result<(), PluginError>>, PluginError> {
        let spawner = Rc::new(Spawner::new(&ctx.name).map_err(|e| {
            PluginError::Other(format!("ProcessDirectoryInput cannot start a thread: {e}"))
        })?);
        let dir = self.dir.clone();
        let rescan = self.rescan;
        let spec = Rc::new(self.spec.clone());
        Ok(Box::pin(async move {
            let mut state = State {
                running: BTreeMap::new(),
                refused: BTreeMap::new(),
                errors: Rc::new(Cell::new(0)),
                bad_files: 0,
            };
            loop {
                state.rescan(&ctx, &dir, &spec, &spawner);
                let stopped = ctx.sleep_unless_stopped(rescan).await;
                if stopped {
                    break;
                }
            }
            // Each job ends on the stop by itself; wait for them (their children are killed).
            for (_, (_, task)) in std::mem::take(&mut state.running) {
                task.await;
            }
            Ok(())
        }))
    }
}

/// What the input runs and what it refused.
struct State {
    /// Job file → the job it describes and the task running it (dropping the task stops it).
    running: BTreeMap<PathBuf, (Job, glommio::Task<()>)>,
    /// Job files that could not be used → their contents then (warned about once per version).
    refused: BTreeMap<PathBuf, Vec<u8>>,
    /// ProcessErrorCount of every job.
    errors: Rc<Cell<u64>>,
    bad_files: u64,
}

impl State {
    /// Reads the directory: starts new jobs, restarts changed ones, stops removed ones.
    fn rescan(
        &mut self,
        ctx: &InputContext,
        dir: &Path,
        spec: &Rc<StreamSpec>,
        spawner: &Rc<Spawner>,
    ) {
        let mut found: BTreeMap<PathBuf, Job> = BTreeMap::new();
        let mut refused_now: BTreeMap<PathBuf, Vec<u8>> = BTreeMap::new();
        for (path, outcome) in job_files(dir) {
            match outcome {
                Ok(job) => {
                    found.insert(path, job);
                }
                Err((contents, why)) => {
                    if self.refused.get(&path) != Some(&contents) {
                        self.bad_files += 1;
                        warn_limited!(
                            "Input '{}': job file {} skipped: {why}",
                            ctx.name,
                            path.display()
                        );
                    }
                    refused_now.insert(path, contents);
                }
            }
        }
        self.refused = refused_now;
        // Stopped: removed, or changed (started again below).
        let gone: Vec<PathBuf> = self
            .running
            .iter()
            .filter(|(path, (job, _))| found.get(*path) != Some(job))
            .map(|(path, _)| path.clone())
            .collect();
        for path in gone {
            self.running.remove(&path);
            if !found.contains_key(&path) {
                tracing::info!("Input '{}': job {} removed", ctx.name, path.display());
            }
        }
        for (path, job) in found {
            if self.running.contains_key(&path) {
                continue;
            }
            tracing::info!("Input '{}': job {} started", ctx.name, path.display());
            let task = glommio::spawn_local(run_job(
                ctx.clone(),
                Rc::clone(spec),
                job.clone(),
                Rc::clone(spawner),
                Rc::clone(&self.errors),
            ));
            self.running.insert(path, (job, task));
        }
        let mut fields = FieldCollector::default();
        fields.int("JobCount", self.running.len() as i64, "count");
        fields.int("JobFileErrorCount", self.bad_files as i64, "count");
        fields.int("ProcessErrorCount", self.errors.get() as i64, "count");
        ctx.counters().set_extra(fields.fields);
    }
}

/// A job file's job, or its contents and why it cannot be used.
type JobFile = Result<Job, (Vec<u8>, String)>;

/// Every `*.toml` under `dir/<interval>/`, parsed into a job, or why not (with the file's
/// contents, so that a warning is given once per version of the file).
fn job_files(dir: &Path) -> Vec<(PathBuf, JobFile)> {
    let mut out = Vec::new();
    let Ok(intervals) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in intervals.flatten() {
        let path = entry.path();
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        let interval = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.parse::<u64>().ok());
        let Some(files) = is_dir.then(|| std::fs::read_dir(&path).ok()).flatten() else {
            if path.extension().is_some_and(|e| e == "toml") {
                out.push((
                    path,
                    Err((
                        Vec::new(),
                        "job files go in <process_dir>/<interval>/".into(),
                    )),
                ));
            }
            continue;
        };
        for file in files.flatten() {
            let file = file.path();
            if file.extension().is_none_or(|e| e != "toml") || !file.is_file() {
                continue;
            }
            let job = match interval {
                Some(seconds) => read_job(&file, Duration::from_secs(seconds)),
                None => Err((
                    Vec::new(),
                    format!(
                        "its directory {} is not a number of seconds",
                        path.display()
                    ),
                )),
            };
            out.push((file, job));
        }
    }
    out
}

/// One job file: its `[ProcessInput]` section with ProcessInput's options.
fn read_job(path: &Path, every: Duration) -> JobFile {
    use std::io::Read as _;
    let mut contents = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_JOB_FILE).read_to_end(&mut contents))
        .map_err(|e| (Vec::new(), e.to_string()))?;
    let fail = |why: String| (contents.clone(), why);
    let text = std::str::from_utf8(&contents).map_err(|_| fail("not UTF-8".into()))?;
    let mut table: toml::Table = text.parse().map_err(|e| fail(format!("{e}")))?;
    let Some(toml::Value::Table(mut section)) = table.remove("ProcessInput") else {
        return Err(fail("no [ProcessInput] section".into()));
    };
    // The directory sets the interval; the input sets the splitter and decoder.
    section.remove("ticker_interval");
    for key in ["splitter", "decoder"] {
        if section.contains_key(key) {
            return Err(fail(format!(
                "`{key}` is set on the ProcessDirectoryInput, for every job"
            )));
        }
    }
    let name = path.display().to_string();
    let opts =
        JobOptions::deserialize(toml::Value::Table(section)).map_err(|e| fail(e.to_string()))?;
    let steps = steps_of(&opts.command, &name).map_err(fail)?;
    Ok(Job::new(&name, steps, every, &opts))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::testing::build_doc_sample;

    #[test]
    fn doc_sample_builds() {
        build_doc_sample(include_str!("process_directory.rs"));
    }

    #[test]
    fn a_zero_rescan_interval_is_refused() {
        let e = crate::common::testing::build(
            "[p]\ntype = \"ProcessDirectoryInput\"\nticker_interval = 0\n",
        )
        .unwrap_err();
        assert!(e.contains("how often the directory is read"), "{e}");
    }

    #[test]
    fn job_files_are_read_from_interval_directories_only() {
        let dir = tempfile::tempdir().unwrap();
        let good = "[ProcessInput]\n[ProcessInput.command.0]\nbin = \"/bin/true\"\n";
        std::fs::create_dir_all(dir.path().join("30")).unwrap();
        std::fs::create_dir_all(dir.path().join("often")).unwrap();
        std::fs::write(dir.path().join("30/a.toml"), good).unwrap();
        std::fs::write(dir.path().join("30/notes.txt"), "ignored").unwrap();
        std::fs::write(
            dir.path().join("30/bad.toml"),
            "[ProcessInput]\nbogus = 1\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("30/decoder.toml"),
            "[ProcessInput]\ndecoder = \"X\"\n[ProcessInput.command.0]\nbin = \"/bin/true\"\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("often/b.toml"), good).unwrap();
        std::fs::write(dir.path().join("top.toml"), good).unwrap();
        let mut found: Vec<(String, Result<Job, String>)> = job_files(dir.path())
            .into_iter()
            .map(|(p, r)| {
                (
                    p.strip_prefix(dir.path()).unwrap().display().to_string(),
                    r.map_err(|(_, why)| why),
                )
            })
            .collect();
        found.sort_by(|a, b| a.0.cmp(&b.0));
        let names: Vec<&str> = found.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            names,
            [
                "30/a.toml",
                "30/bad.toml",
                "30/decoder.toml",
                "often/b.toml",
                "top.toml"
            ]
        );
        let a = found[0].1.as_ref().unwrap();
        assert_eq!(a.name, dir.path().join("30/a.toml").display().to_string());
        assert!(found[1].1.as_ref().unwrap_err().contains("bogus"));
        assert!(found[2].1.as_ref().unwrap_err().contains("for every job"));
        assert!(found[3].1.as_ref().unwrap_err().contains("not a number"));
        assert!(found[4].1.as_ref().unwrap_err().contains("<interval>"));
    }
}
