//! The `hekate` command: the daemon and Heka's tools as subcommands.

mod cat;
mod logging;
mod pid_file;
mod plugins;
mod queue;
mod run;
mod sbmgr;
mod show;
mod top;
mod trace;

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use hekate_model::matcher::MatcherSpec;

#[derive(Parser, Debug)]
#[command(
    name = "hekate",
    version,
    about = "A thread-per-core, Heka-compatible log and metrics pipeline"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the daemon with a configuration, or the embedded default configuration.
    Run {
        /// A TOML file, or a directory whose *.toml files are merged in alphabetical order.
        #[arg(short, long)]
        config: Option<PathBuf>,
        /// The least severe log lines written to stderr: error, warn, info, debug or trace.
        /// Overrides RUST_LOG and the config's `log_level`.
        #[arg(long, value_name = "LEVEL")]
        log_level: Option<hekate_config::LogLevel>,
        /// Print the effective configuration (after %ENV substitution and the directory merge)
        /// and exit, without starting anything.
        #[arg(long)]
        print_config: bool,
    },
    /// Check a configuration file or directory as `run` would start it (every plugin built,
    /// every file and address checked, nothing bound or written); list every problem with its
    /// file and line.
    Check {
        /// A TOML file, or a directory whose *.toml files are merged in alphabetical order.
        #[arg(short, long)]
        config: PathBuf,
    },
    /// Read Heka-framed protobuf streams and print the messages that match.
    Cat {
        /// A message matcher expression; every message when omitted.
        #[arg(short, long = "match", default_value = "TRUE")]
        matcher: String,
        /// How to print matching messages.
        #[arg(short, long, value_enum, default_value = "text")]
        format: cat::Format,
        /// Largest message accepted, in bytes.
        #[arg(long, default_value_t = 65536)]
        max_message_size: u32,
        /// Files to read, in order.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Load or unload a filter of a running SandboxManagerFilter (Heka's heka-sbmgr).
    Sbmgr {
        /// heka-sbmgr's TOML: `ip_address` and a `[signer]` (name, hmac_hash, hmac_key, version).
        #[arg(short, long)]
        config: PathBuf,
        /// What to do.
        #[arg(long, value_enum)]
        action: sbmgr::Action,
        /// The Lua script to load.
        #[arg(long)]
        script: Option<PathBuf>,
        /// The TOML section of the filter to load (`[Name]`, `type = "SandboxFilter"`, …).
        #[arg(long = "scriptconfig")]
        script_config: Option<PathBuf>,
        /// The name of the filter to unload (as in its `[Name]` section).
        #[arg(long = "filtername")]
        filter_name: Option<String>,
    },
    /// Ask a running hekate to reload: it reopens its output files (as after logrotate) and
    /// applies its configuration file as it is now, or refuses it and goes on unchanged (its log
    /// says which). Sends SIGHUP to the process `--pid`, or to the one holding `--pid-file`, or
    /// the `pid_file` of the configuration `-c` names.
    Reload {
        /// The process id of the running hekate.
        #[arg(short, long, conflicts_with_all = ["pid_file", "config"])]
        pid: Option<i32>,
        /// The `pid_file` the running hekate holds.
        #[arg(long, conflicts_with = "config")]
        pid_file: Option<PathBuf>,
        /// The running hekate's configuration, whose `pid_file` names it.
        #[arg(short, long)]
        config: Option<PathBuf>,
    },
    /// Check, show or repair a disk queue (`<base_dir>/output_queue/<plugin>`).
    Queue {
        #[command(subcommand)]
        command: queue::QueueCommand,
    },
    /// List the plugin types this build provides, or one type's options and sample config.
    Plugins {
        /// A plugin type (`TcpInput`); every type when omitted.
        type_name: Option<String>,
    },
    /// Show what the config's LogstreamerInputs find: every stream, its files in the order
    /// they are read, and where each stream's journal says reading resumes (Heka's
    /// heka-logstreamer).
    Logstreamer {
        /// A TOML file, or a directory whose *.toml files are merged in alphabetical order.
        #[arg(short, long)]
        config: PathBuf,
    },
    /// Feed sample records through an input's splitter and decoder and show, for each message,
    /// the decoded message and every filter's and output's matcher verdict with the first test
    /// that failed: why a message goes where.
    Trace {
        /// A TOML file, or a directory whose *.toml files are merged in alphabetical order.
        #[arg(short, long)]
        config: PathBuf,
        /// The input whose splitter and decoder to use (needed when the config has several).
        #[arg(long)]
        input: Option<String>,
        /// Files of raw input (as the input would read them); `-` for stdin.
        #[arg(required = true)]
        samples: Vec<PathBuf>,
    },
    /// Print a completion script for a shell (bash, zsh, fish, elvish or powershell).
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), or write `hekate.1` and a page per subcommand into a
    /// directory.
    Manpage {
        /// Write every page into this directory instead.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// A live view of a running hekate, read from its metrics endpoint (`http_address` in
    /// [hekate]): per core, input rate, ring fill and the output holding it back; per plugin,
    /// rates, drops, failures and queue depth.
    Top {
        /// The endpoint's address, as `http_address` says (`:9110` is 127.0.0.1:9110).
        #[arg(short, long, default_value = "127.0.0.1:9110")]
        address: String,
        /// Seconds between refreshes.
        #[arg(short, long, default_value_t = 1.0)]
        interval: f64,
        /// Print one frame (after two scrapes an interval apart) and exit.
        #[arg(long)]
        once: bool,
    },
    /// Print the version.
    Version,
}

/// `hekate reload`: SIGHUP to the running hekate named by a pid, a pid file or a config.
fn reload(pid: Option<i32>, pid_file: Option<PathBuf>, config: Option<PathBuf>) -> ExitCode {
    let pid_file = match (pid_file, config) {
        (Some(f), _) => Some(f),
        (None, Some(c)) => match hekate_config::Config::load(&c) {
            Ok(config) => match config.global.pid_file {
                Some(f) => Some(f),
                None => {
                    eprintln!(
                        "hekate: {} sets no pid_file in [hekate]; name the process with --pid",
                        c.display()
                    );
                    return ExitCode::FAILURE;
                }
            },
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::FAILURE;
            }
        },
        (None, None) => None,
    };
    let pid = match (pid, pid_file) {
        (Some(pid), _) => pid,
        (None, Some(f)) => match pid_file::running_pid(&f) {
            Ok(pid) => pid as i32,
            Err(e) => {
                eprintln!("hekate: {e}");
                return ExitCode::FAILURE;
            }
        },
        (None, None) => {
            eprintln!("hekate: name the running hekate with --pid, --pid-file or -c CONFIG");
            return ExitCode::FAILURE;
        }
    };
    // SAFETY: kill(2) with a signal number; no memory is passed.
    if unsafe { libc::kill(pid, libc::SIGHUP) } != 0 {
        eprintln!(
            "hekate: cannot signal process {pid}: {}",
            io::Error::last_os_error()
        );
        return ExitCode::FAILURE;
    }
    println!(
        "hekate: asked process {pid} to reload; its log says whether the configuration was applied or refused"
    );
    ExitCode::SUCCESS
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Run { .. }) {
        // `run` installs its log once the config says which level; the tools log at RUST_LOG's
        // level, or info.
        logging::init(None, hekate_config::LogLevel::Info);
    }
    match cli.command {
        Command::Run {
            config,
            log_level,
            print_config: false,
        } => run::run(config.as_deref(), log_level),
        Command::Run {
            config,
            print_config: true,
            ..
        } => print_config(config.as_deref()),
        Command::Check { config } => check(&config),
        Command::Cat {
            matcher,
            format,
            max_message_size,
            files,
        } => run_cat(&matcher, format, max_message_size, &files),
        Command::Sbmgr {
            config,
            action,
            script,
            script_config,
            filter_name,
        } => sbmgr::run(&sbmgr::Request {
            config,
            action,
            script,
            script_config,
            filter_name,
        }),
        Command::Queue { command } => queue::run(command),
        Command::Reload {
            pid,
            pid_file,
            config,
        } => reload(pid, pid_file, config),
        Command::Plugins { type_name } => plugins::show(type_name.as_deref()),
        Command::Logstreamer { config } => logstreamer(&config),
        Command::Trace {
            config,
            input,
            samples,
        } => trace::run(&config, input.as_deref(), &samples),
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cmd, "hekate", &mut io::stdout());
            ExitCode::SUCCESS
        }
        Command::Manpage { dir } => manpage(dir.as_deref()),
        Command::Top {
            address,
            interval,
            once,
        } => {
            if !(interval.is_finite() && interval > 0.0) {
                eprintln!("hekate top: --interval must be a positive number of seconds");
                return ExitCode::FAILURE;
            }
            top::run(&address, std::time::Duration::from_secs_f64(interval), once)
        }
        Command::Version => {
            println!("hekate {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
    }
}

fn check(path: &std::path::Path) -> ExitCode {
    // The same load and build as `run`, then what `run` checks before it starts: `check` refuses
    // exactly what `run` refuses at start, with the same messages, and starts nothing.
    let registry = hekate_plugins::registry();
    let problems = match run::load(Some(path), &registry) {
        Ok((config, pipeline)) => match pipeline.preflight() {
            Ok(()) => {
                println!(
                    "{}: configuration is valid ({} plugin sections)",
                    path.display(),
                    config
                        .plugins
                        .iter()
                        .filter(|p| !p.is_default_instance())
                        .count()
                );
                return ExitCode::SUCCESS;
            }
            Err(e) => {
                eprintln!("hekate: {e}");
                1
            }
        },
        Err(errors) => {
            eprintln!("{errors}");
            errors.len()
        }
    };
    eprintln!("{}: {problems} problem(s) found", path.display());
    ExitCode::FAILURE
}

/// What `hekate.1` says beyond the options clap knows: signals, exit status, files.
const MANPAGE_EXTRA: &str = r#".SH SIGNALS
.TP
\fBSIGINT\fR, \fBSIGTERM\fR
Stop the inputs, drain every ring and flush the outputs within the shutdown timeout (10 s,
\fBHEKATE_SHUTDOWN_TIMEOUT\fR in seconds); a second signal ends the wait.
.TP
\fBSIGHUP\fR
FileOutputs reopen their files (logrotate's \fBpostrotate\fR), and the configuration is read
again and applied without a restart, or refused whole (see \fBhekate reload\fR).
.TP
\fBSIGUSR1\fR
Print Heka's text report of every plugin on stdout.
.TP
\fBSIGUSR2\fR
Abort every Lua sandbox; each sends a \fBheka.sandbox\-terminated\fR message.
.SH EXIT STATUS
.TP
0
Stopped by a signal, everything delivered (a buffered output's backlog stays in its disk queue).
.TP
1
A configuration that does not build, or hekate stopped on its own and said why.
.TP
2
Messages that could not be delivered were lost at shutdown (counted on stderr).
.SH FILES
.TP
\fI/etc/hekate/hekate.toml\fR
The configuration the packaged service runs (\fBhekate check \-c\fR it before a restart).
.TP
\fIbase_dir\fR (\fI/var/cache/hekad\fR; the example configurations: \fI/var/lib/hekate\fR)
Disk queues (\fIoutput_queue/<output>\fR), LogstreamerInput journals, sandbox state.
.TP
\fI/usr/share/doc/hekate/examples/\fR
Example configurations: syslog aggregator, statsd to Graphite, edge to upstream with a disk
buffer, nginx access logs.
.SH SEE ALSO
\fBhekate\-run\fR(1), \fBhekate\-check\fR(1), \fBhekate\-cat\fR(1), \fBhekate\-queue\fR(1),
\fBhekate\-plugins\fR(1), \fBsystemd.service\fR(5)
"#;

fn manpage(dir: Option<&std::path::Path>) -> ExitCode {
    let cmd = <Cli as clap::CommandFactory>::command();
    let main_page = |out: &mut dyn Write| -> io::Result<()> {
        clap_mangen::Man::new(cmd.clone()).render(out)?;
        out.write_all(MANPAGE_EXTRA.as_bytes())
    };
    let result = match dir {
        Some(dir) => std::fs::create_dir_all(dir)
            .and_then(|()| clap_mangen::generate_to(cmd.clone(), dir))
            .and_then(|()| main_page(&mut std::fs::File::create(dir.join("hekate.1"))?)),
        None => main_page(&mut io::stdout()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hekate manpage: {e}");
            ExitCode::FAILURE
        }
    }
}

fn logstreamer(path: &std::path::Path) -> ExitCode {
    let registry = hekate_plugins::registry();
    let pipeline = match run::load(Some(path), &registry) {
        Ok((_, pipeline)) => pipeline,
        Err(errors) => {
            eprint!("{errors}");
            return ExitCode::FAILURE;
        }
    };
    let mut found = false;
    for p in &pipeline.plugins {
        if let hekate_engine::plugin::Built::Input(input) = &p.built
            && p.type_name == "LogstreamerInput"
            && let Some(text) = input.describe()
        {
            found = true;
            print!("{text}");
        }
    }
    if !found {
        eprintln!("{} has no LogstreamerInput", path.display());
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

fn print_config(path: Option<&std::path::Path>) -> ExitCode {
    match run::effective_config(path) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(errors) => {
            eprintln!("{errors}");
            ExitCode::FAILURE
        }
    }
}

fn run_cat(
    matcher: &str,
    format: cat::Format,
    max_message_size: u32,
    files: &[PathBuf],
) -> ExitCode {
    let spec = match MatcherSpec::parse(matcher) {
        Ok(spec) => spec,
        Err(e) => {
            eprintln!("hekate cat: invalid --match expression: {e}");
            return ExitCode::FAILURE;
        }
    };
    let stdout = io::stdout();
    let mut out = io::BufWriter::with_capacity(1 << 16, stdout.lock());
    let mut warn = io::stderr().lock();
    let result = cat::cat(files, &spec, format, max_message_size, &mut out, &mut warn)
        .and_then(|summary| out.flush().map(|()| summary));
    match result {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hekate cat: {e}");
            ExitCode::FAILURE
        }
    }
}
