//! `hekate queue check|show|repair DIR`: look into a disk queue
//! (`<base_dir>/output_queue/<plugin>`), print what it still holds, and repair it.
//!
//! `check` and `show` change nothing (and work while hekate has the queue open); `repair` takes
//! the queue's lock, so it refuses to run beside a hekate that uses it.

use std::fs::File;
use std::io::{self, Seek, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;
use hekate_engine::queue::{
    self, Checksums, Cursor, QueueError, QueueReport, Scanned, SegmentScanner, StoredCheckpoint,
    segment_path,
};
use hekate_model::matcher::MatcherSpec;

use crate::cat::{self, Format, Summary};

/// What to do with the queue.
#[derive(Subcommand, Debug)]
pub enum QueueCommand {
    /// Report segments, records, the records pending after the checkpoint and every corrupt
    /// region (offset and length), changing nothing; exit 1 if anything is corrupt.
    Check {
        /// The queue directory (`<base_dir>/output_queue/<plugin>`).
        dir: PathBuf,
        /// Largest message accepted, in bytes.
        #[arg(long, default_value_t = 65536)]
        max_message_size: u32,
    },
    /// Print the checkpoint and the pending records after it, like `hekate cat`.
    Show {
        /// The queue directory (`<base_dir>/output_queue/<plugin>`).
        dir: PathBuf,
        /// A message matcher expression; every message when omitted.
        #[arg(short, long = "match", default_value = "TRUE")]
        matcher: String,
        /// How to print matching messages.
        #[arg(short, long, value_enum, default_value = "text")]
        format: Format,
        /// Largest message accepted, in bytes.
        #[arg(long, default_value_t = 65536)]
        max_message_size: u32,
    },
    /// Cut torn tails, rewrite segments without their corrupt regions (a new file renamed over
    /// the old), reset an unusable checkpoint, and say what was done.
    Repair {
        /// The queue directory (`<base_dir>/output_queue/<plugin>`).
        dir: PathBuf,
        /// Largest message accepted, in bytes.
        #[arg(long, default_value_t = 65536)]
        max_message_size: u32,
    },
}

/// Runs one `hekate queue` command.
pub fn run(command: QueueCommand) -> ExitCode {
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let mut warn = io::stderr().lock();
    let result = match command {
        QueueCommand::Check {
            dir,
            max_message_size,
        } => check(&dir, max_message_size, &mut out),
        QueueCommand::Show {
            dir,
            matcher,
            format,
            max_message_size,
        } => match MatcherSpec::parse(&matcher) {
            Ok(spec) => show(&dir, &spec, format, max_message_size, &mut out, &mut warn),
            Err(e) => {
                eprintln!("hekate queue show: invalid --match expression: {e}");
                return ExitCode::FAILURE;
            }
        },
        QueueCommand::Repair {
            dir,
            max_message_size,
        } => repair(&dir, max_message_size, &mut out),
    };
    let result = result.and_then(|code| {
        out.flush()?;
        Ok(code)
    });
    match result {
        Ok(code) => code,
        Err(Failure::Io(e)) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hekate queue: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Why a command stopped.
#[derive(Debug)]
enum Failure {
    Queue(QueueError),
    Io(io::Error),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Queue(e) => e.fmt(f),
            Failure::Io(e) => e.fmt(f),
        }
    }
}

impl From<QueueError> for Failure {
    fn from(e: QueueError) -> Self {
        Failure::Queue(e)
    }
}

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Self {
        Failure::Io(e)
    }
}

/// Refuses a path that is not a directory, before the library reports a confusing listing error.
fn existing_dir(dir: &Path) -> Result<(), Failure> {
    if dir.is_dir() {
        Ok(())
    } else {
        Err(Failure::Io(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{} is not a queue directory", dir.display()),
        )))
    }
}

fn check(dir: &Path, max_message_size: u32, out: &mut impl Write) -> Result<ExitCode, Failure> {
    existing_dir(dir)?;
    let report = queue::inspect(dir, max_message_size)?;
    write_report(&report, out)?;
    let regions: usize = report.segments.iter().map(|s| s.corruptions.len()).sum();
    let bytes: u64 = report.segments.iter().map(|s| s.corrupt_bytes()).sum();
    if report.is_healthy() {
        writeln!(out, "status: healthy")?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut problems = Vec::new();
    if regions > 0 {
        problems.push(format!("{regions} corrupt region(s), {bytes} bytes"));
    }
    if report.checkpoint_problem.is_some() {
        problems.push("an unusable checkpoint".to_string());
    }
    writeln!(
        out,
        "status: corrupt ({}); `hekate queue repair {}` removes the damage",
        problems.join(", "),
        dir.display()
    )?;
    Ok(ExitCode::FAILURE)
}

/// The report `check` prints, and `repair` after repairing.
fn write_report(report: &QueueReport, out: &mut impl Write) -> io::Result<()> {
    writeln!(out, "queue: {}", report.dir.display())?;
    match (&report.stored_checkpoint, report.checkpoint_error()) {
        (_, Some(e)) => writeln!(out, "checkpoint problem: {e}")?,
        (StoredCheckpoint::Missing, None) => writeln!(
            out,
            "checkpoint: none (nothing acknowledged); reading starts at {}",
            report.checkpoint
        )?,
        (_, None) => writeln!(out, "checkpoint: {}", report.checkpoint)?,
    }
    for s in &report.segments {
        let heka = match s.checksums {
            Checksums::Required => "",
            Checksums::Optional => " (written by Heka: no checksums)",
        };
        writeln!(
            out,
            "segment {}.log: {} bytes, {} records, {} pending{heka}",
            s.id, s.len, s.records, s.pending_records
        )?;
        for c in &s.corruptions {
            let tail = if c.at_end { ", torn tail" } else { "" };
            writeln!(
                out,
                "  corrupt: {}.log offset {}, {} bytes ({}{tail})",
                s.id, c.offset, c.len, c.damage
            )?;
        }
    }
    writeln!(
        out,
        "total: {} segments, {} bytes, {} records, {} pending",
        report.segments.len(),
        report.bytes(),
        report.records(),
        report.pending_records()
    )
}

fn show(
    dir: &Path,
    spec: &MatcherSpec,
    format: Format,
    max_message_size: u32,
    out: &mut impl Write,
    warn: &mut impl Write,
) -> Result<ExitCode, Failure> {
    existing_dir(dir)?;
    let report = queue::inspect(dir, max_message_size)?;
    let start = report.checkpoint;
    let line = match report.checkpoint_error() {
        Some(e) => format!("checkpoint problem: {e}"),
        None => format!("checkpoint: {start}"),
    };
    // The checkpoint heads the text output; it would break JSON lines or a bare count.
    if format == Format::Text {
        writeln!(out, "{line}\n")?;
    } else {
        writeln!(warn, "{line}")?;
    }
    let mut summary = Summary::default();
    for segment in report.segments.iter().filter(|s| s.id >= start.segment) {
        let offset = if segment.id == start.segment {
            start.offset
        } else {
            0
        };
        print_segment(
            dir,
            segment.id,
            offset,
            segment.checksums,
            max_message_size,
            (spec, format),
            &mut summary,
            out,
            warn,
        )?;
    }
    if format == Format::Count {
        writeln!(out, "{}", summary.matched)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints the records of one segment from `offset` on; corrupt regions are warnings.
#[allow(clippy::too_many_arguments)]
fn print_segment(
    dir: &Path,
    id: u64,
    offset: u64,
    checksums: Checksums,
    max_message_size: u32,
    (spec, format): (&MatcherSpec, Format),
    summary: &mut Summary,
    out: &mut impl Write,
    warn: &mut impl Write,
) -> Result<(), Failure> {
    let path = segment_path(dir, id);
    let read = |e| QueueError::Io {
        action: "read segment",
        path: path.clone(),
        source: e,
    };
    let mut file = File::open(&path).map_err(read)?;
    file.seek(io::SeekFrom::Start(offset)).map_err(read)?;
    let mut scanner = SegmentScanner::new(file, offset, checksums, max_message_size);
    loop {
        match scanner.next().map_err(read)? {
            Scanned::Record(span) => {
                let cursor = Cursor::new(id, span.end());
                cat::print_message(
                    scanner.message(&span),
                    spec,
                    format,
                    summary,
                    out,
                    warn,
                    format_args!("{}: skipped the record ending at {cursor}", path.display()),
                )?;
            }
            Scanned::Corrupt(c) => {
                summary.regions += 1;
                writeln!(
                    warn,
                    "warning: {}: skipped {} corrupt bytes at offset {} ({})",
                    path.display(),
                    c.len,
                    c.offset,
                    c.damage
                )?;
            }
            Scanned::End => return Ok(()),
        }
    }
}

fn repair(dir: &Path, max_message_size: u32, out: &mut impl Write) -> Result<ExitCode, Failure> {
    existing_dir(dir)?;
    let actions = queue::repair(dir, max_message_size)?;
    if actions.is_empty() {
        writeln!(out, "nothing to repair: {} is healthy", dir.display())?;
        return Ok(ExitCode::SUCCESS);
    }
    for action in &actions {
        writeln!(out, "{action}")?;
    }
    let report = queue::inspect(dir, max_message_size)?;
    writeln!(out)?;
    write_report(&report, out)?;
    if report.is_healthy() {
        writeln!(out, "status: healthy")?;
        Ok(ExitCode::SUCCESS)
    } else {
        // Only if the disk changed under us.
        writeln!(out, "status: still corrupt")?;
        Ok(ExitCode::FAILURE)
    }
}
