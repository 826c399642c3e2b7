//! Facts about the machine and the tree a run measured, printed next to every table.

use std::fs;
use std::path::Path;
use std::process::Command;

use serde::{Deserialize, Serialize};

/// What the results depend on.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Machine {
    /// CPU model.
    pub cpu: String,
    /// CPUs this process may run on.
    pub cpus: usize,
    /// Kernel release.
    pub kernel: String,
    /// Total memory, GiB.
    pub memory_gib: f64,
    /// Whether the kernel says it runs under a hypervisor.
    pub virtualized: bool,
    /// `rustc --version`.
    pub rustc: String,
    /// Git commit (with `-dirty` when the tree has changes other than the harness's results).
    pub commit: String,
    /// Distribution.
    pub os: String,
}

fn command_output(program: &str, args: &[&str], dir: Option<&Path>) -> String {
    let mut cmd = Command::new(program);
    cmd.args(args);
    if let Some(d) = dir {
        cmd.current_dir(d);
    }
    cmd.output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

/// The number of CPUs this process may run on.
pub fn available_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

impl Machine {
    /// Looks everything up; `repo` is the workspace root (for the commit).
    pub fn probe(repo: &Path) -> Machine {
        let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, m)| m.split_whitespace().collect::<Vec<_>>().join(" "))
            .unwrap_or_else(|| "unknown CPU".into());
        let virtualized = cpuinfo
            .lines()
            .any(|l| l.starts_with("flags") && l.split_whitespace().any(|f| f == "hypervisor"));
        let memory_gib = fs::read_to_string("/proc/meminfo")
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|l| l.split_whitespace().next()?.parse::<f64>().ok())
            .map_or(0.0, |kib| kib / 1024.0 / 1024.0);
        let os = fs::read_to_string("/etc/os-release")
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("PRETTY_NAME="))
            .map(|v| v.trim_matches('"').to_owned())
            .unwrap_or_default();
        let mut commit = command_output("git", &["rev-parse", "--short=10", "HEAD"], Some(repo));
        if commit.is_empty() {
            commit = "unknown".into();
        } else if !command_output(
            "git",
            // the harness's own output does not make the measured code dirty
            &[
                "status",
                "--porcelain",
                "--untracked-files=no",
                "--",
                ".",
                ":(exclude)bench/RESULTS.md",
                ":(exclude)bench/results",
            ],
            Some(repo),
        )
        .is_empty()
        {
            commit.push_str("-dirty");
        }
        Machine {
            cpu,
            cpus: available_cpus(),
            kernel: command_output("uname", &["-r"], None),
            memory_gib,
            virtualized,
            rustc: command_output("rustc", &["--version"], None),
            commit,
            os,
        }
    }

    /// One line for the head of each table.
    pub fn summary(&self) -> String {
        format!(
            "{} × {}{}, Linux {}",
            self.cpus,
            self.cpu,
            if self.virtualized { " (VM)" } else { "" },
            self.kernel
        )
    }

    /// The `machine` block of RESULTS.md.
    pub fn render(&self, date: &str) -> String {
        format!(
            "<!-- bench:machine -->\n## machine\n\n\
             | fact | value |\n|---|---|\n\
             | CPU | {} × {} |\n| hypervisor | {} |\n| memory | {:.1} GiB |\n\
             | kernel | Linux {} |\n| OS | {} |\n| compiler | {} |\n| commit | `{}` |\n\
             | last run | {} |\n\n\
             Each table below says when it was produced and which cores every process was pinned to \
             (`taskset -c`); absolute figures on a shared VM move from run to run, ratios measured in \
             the same run and instruction counts do not.\n\
             <!-- /bench:machine -->\n",
            self.cpus,
            self.cpu,
            if self.virtualized { "yes" } else { "no" },
            self.memory_gib,
            self.kernel,
            self.os,
            self.rustc,
            self.commit,
            date
        )
    }
}
