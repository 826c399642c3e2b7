//! Results: one [`Section`] per workload, rendered into `bench/RESULTS.md` between markers, and
//! saved as `bench/results/<id>.json`.
//!
//! RESULTS.md is shared: the harness rewrites only the blocks between `<!-- bench:ID -->` and
//! `<!-- /bench:ID -->` of the workloads it ran, and keeps everything else — the blocks of
//! workloads not run this time and any text written by hand outside the markers (such as
//! micro-bench notes under their own headings).

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::check::LatencySummary;

/// How a row came out.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", content = "reason", rename_all = "snake_case")]
pub enum Status {
    /// Ran and checked (or, where said so, ran unchecked).
    Ok,
    /// Ran and failed: lost or duplicated messages, a crash, a timeout. No figures are shown.
    Failed(String),
    /// Could not run here (yet): the reason says why.
    NotRun(String),
}

impl Status {
    /// Whether the row's figures stand.
    pub fn is_ok(&self) -> bool {
        matches!(self, Status::Ok)
    }
}

/// One measured configuration.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Row {
    /// What ran, e.g. `tcp → router → TcpOutput → sink`.
    pub label: String,
    /// How it came out.
    #[serde(flatten)]
    pub status: Status,
    /// One cell per column of the section (figures), shown only when the row is ok.
    pub cells: Vec<String>,
    /// Which cores each process had.
    pub cores: String,
    /// The exact commands that produced the figures.
    pub commands: Vec<String>,
    /// The value drawn in the section's throughput plot.
    pub plot: Option<f64>,
    /// Whether the plot value is a reference (a baseline or a peer) rather than hekate: drawn
    /// grey.
    #[serde(default)]
    pub reference: bool,
    /// Latency percentiles, drawn in the latency plot.
    pub latency: Option<LatencySummary>,
    /// Everything measured, for the JSON file.
    pub data: serde_json::Value,
}

impl Row {
    /// An ok row.
    pub fn ok(label: impl Into<String>, cells: Vec<String>) -> Self {
        Row {
            label: label.into(),
            status: Status::Ok,
            cells,
            cores: String::new(),
            commands: Vec::new(),
            plot: None,
            reference: false,
            latency: None,
            data: serde_json::Value::Null,
        }
    }

    /// A failed row.
    pub fn failed(label: impl Into<String>, reason: impl Into<String>) -> Self {
        Row {
            status: Status::Failed(reason.into()),
            ..Row::ok(label, Vec::new())
        }
    }

    /// A row that could not run.
    pub fn not_run(label: impl Into<String>, reason: impl Into<String>) -> Self {
        Row {
            status: Status::NotRun(reason.into()),
            ..Row::ok(label, Vec::new())
        }
    }

    /// Sets the commands.
    pub fn commands(mut self, commands: Vec<String>) -> Self {
        self.commands = commands;
        self
    }

    /// Sets the cores description.
    pub fn cores(mut self, cores: impl Into<String>) -> Self {
        self.cores = cores.into();
        self
    }

    /// Sets the measured data.
    pub fn data(mut self, data: serde_json::Value) -> Self {
        self.data = data;
        self
    }
}

/// The results of one workload.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Section {
    /// Workload id (`route`, `scale`, …): the marker and the JSON file name.
    pub id: String,
    /// Heading.
    pub title: String,
    /// What the workload measures and how (markdown).
    pub intro: String,
    /// Figure columns, after the label and the result.
    pub columns: Vec<String>,
    /// Measured configurations.
    pub rows: Vec<Row>,
    /// Remarks under the table (markdown).
    pub notes: Vec<String>,
    /// Axis label of the throughput plot, when the section has one.
    pub plot_unit: Option<String>,
    /// Plot files (relative to `bench/`), drawn after the run.
    #[serde(default)]
    pub plots: Vec<String>,
    /// When and where it ran: filled in by the harness.
    #[serde(default)]
    pub run: RunInfo,
}

/// When, where and how a section was produced.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RunInfo {
    /// UTC date and time.
    pub date: String,
    /// Git commit of the tree measured.
    pub commit: String,
    /// One-line machine summary.
    pub machine: String,
    /// The command that produced the section.
    pub command: String,
    /// Whether it was a `--quick` run.
    pub quick: bool,
    /// Seconds the workload took.
    pub seconds: f64,
}

impl Section {
    /// An empty section.
    pub fn new(id: &str, title: &str, intro: impl Into<String>, columns: &[&str]) -> Self {
        Section {
            id: id.into(),
            title: title.into(),
            intro: intro.into(),
            columns: columns.iter().map(|c| c.to_string()).collect(),
            rows: Vec::new(),
            notes: Vec::new(),
            plot_unit: None,
            plots: Vec::new(),
            run: RunInfo::default(),
        }
    }

    /// Whether any row failed.
    pub fn failed(&self) -> bool {
        self.rows
            .iter()
            .any(|r| matches!(r.status, Status::Failed(_)))
    }

    /// The block for RESULTS.md, markers included.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "<!-- bench:{} -->", self.id);
        let _ = writeln!(s, "## {}\n", self.title);
        if !self.intro.is_empty() {
            let _ = writeln!(s, "{}\n", self.intro.trim());
        }
        let r = &self.run;
        let _ = writeln!(
            s,
            "_{}{} · commit `{}` · {} · `{}` · {:.0} s_\n",
            r.date,
            if r.quick { " · **quick run**" } else { "" },
            r.commit,
            r.machine,
            r.command,
            r.seconds
        );
        // Rows run by the same commands share one listing.
        let first_with: Vec<Option<usize>> = self
            .rows
            .iter()
            .map(|r| {
                (!r.commands.is_empty())
                    .then(|| self.rows.iter().position(|o| o.commands == r.commands))
                    .flatten()
            })
            .collect();
        if !self.rows.is_empty() {
            let mut head = vec!["run".to_owned(), "result".to_owned()];
            head.extend(self.columns.iter().cloned());
            head.push("cores".into());
            head.push("cmd".into());
            let _ = writeln!(s, "| {} |", head.join(" | "));
            let _ = writeln!(s, "|{}", "---|".repeat(head.len()));
            for (i, row) in self.rows.iter().enumerate() {
                let result = match &row.status {
                    Status::Ok => "ok".to_owned(),
                    Status::Failed(why) => format!("**FAILED**: {}", cell(why)),
                    Status::NotRun(why) => format!("not run: {}", cell(why)),
                };
                let mut cells = vec![cell(&row.label), result];
                for c in 0..self.columns.len() {
                    let v = match row.status {
                        Status::Ok => row.cells.get(c).map(|v| cell(v)).unwrap_or_default(),
                        _ => "—".into(),
                    };
                    cells.push(v);
                }
                cells.push(cell(&row.cores));
                cells.push(match first_with[i] {
                    None => String::new(),
                    Some(j) => format!("[{}](#{}-cmd-{})", j + 1, self.id, j + 1),
                });
                let _ = writeln!(s, "| {} |", cells.join(" | "));
            }
            s.push('\n');
        }
        for note in &self.notes {
            let _ = writeln!(s, "- {}", note.trim());
        }
        if !self.notes.is_empty() {
            s.push('\n');
        }
        for plot in &self.plots {
            let _ = writeln!(s, "![{} plot]({plot})\n", self.id);
        }
        let with_commands: Vec<_> = self
            .rows
            .iter()
            .enumerate()
            .filter(|(i, _)| first_with[*i] == Some(*i))
            .collect();
        if !with_commands.is_empty() {
            let _ = writeln!(s, "Commands (in start order):\n");
            for (i, row) in with_commands {
                let _ = writeln!(
                    s,
                    "<a id=\"{}-cmd-{}\"></a>**[{}] {}**\n```sh\n{}\n```",
                    self.id,
                    i + 1,
                    i + 1,
                    row.label,
                    row.commands.join("\n")
                );
            }
            s.push('\n');
        }
        let _ = writeln!(s, "<!-- /bench:{} -->", self.id);
        s
    }
}

/// Escapes a table cell.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// The start and end markers of a block.
fn markers(id: &str) -> (String, String) {
    (
        format!("<!-- bench:{id} -->"),
        format!("<!-- /bench:{id} -->"),
    )
}

/// The ids of the blocks in `doc`, in order.
pub fn block_ids(doc: &str) -> Vec<String> {
    doc.lines()
        .filter_map(|l| l.trim().strip_prefix("<!-- bench:"))
        .filter_map(|l| l.strip_suffix(" -->"))
        .map(str::to_owned)
        .collect()
}

/// Puts `block` (rendered with its markers) for `id` into `doc`: in place of the old block of
/// that id, or else after the block of the nearest id before it in `order`, or else at the end.
/// Text outside the markers is kept as it is.
pub fn merge_block(doc: &str, id: &str, block: &str, order: &[&str]) -> String {
    let (start, end) = markers(id);
    let block = block.trim_end_matches('\n');
    if let (Some(a), Some(b)) = (doc.find(&start), doc.find(&end)) {
        if a < b {
            return format!("{}{}{}", &doc[..a], block, &doc[b + end.len()..]);
        }
    }
    let pos = order.iter().position(|o| *o == id).unwrap_or(order.len());
    for earlier in order[..pos].iter().rev() {
        let (_, end) = markers(earlier);
        if let Some(b) = doc.find(&end) {
            let at = b + end.len();
            return format!("{}\n\n{}{}", &doc[..at], block, &doc[at..]);
        }
    }
    // Before the first block that should come after it, or at the end.
    for later in order.get(pos + 1..).unwrap_or(&[]) {
        let (start, _) = markers(later);
        if let Some(a) = doc.find(&start) {
            return format!("{}{}\n\n{}", &doc[..a], block, &doc[a..]);
        }
    }
    let mut out = doc.trim_end().to_owned();
    out.push_str("\n\n");
    out.push_str(block);
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(id: &str) -> Section {
        let mut s = Section::new(id, id, "What it measures.", &["msg/s"]);
        s.rows.push(
            Row::ok("fast", vec!["1,000".into()])
                .commands(vec!["hekate-flood --count 1".into()])
                .cores("flood 0"),
        );
        s.rows.push(Row::failed("lossy", "3 of 10 messages lost"));
        s.rows
            .push(Row::not_run("later", "hekate run not available"));
        s
    }

    #[test]
    fn a_failed_row_shows_no_figures() {
        let text = section("route").render();
        assert!(
            text.contains("| fast | ok | 1,000 | flood 0 | [1](#route-cmd-1) |"),
            "{text}"
        );
        assert!(
            text.contains("| lossy | **FAILED**: 3 of 10 messages lost | — |  |  |"),
            "{text}"
        );
        assert!(
            text.contains("| later | not run: hekate run not available | — |"),
            "{text}"
        );
        assert!(text.contains("```sh\nhekate-flood --count 1\n```"));
        assert!(text.starts_with("<!-- bench:route -->\n## route\n"));
        assert!(text.trim_end().ends_with("<!-- /bench:route -->"));
    }

    #[test]
    fn sections_survive_their_json() {
        let mut s = section("route");
        s.rows[0].latency = Some(LatencySummary {
            count: 1,
            min_us: 1.0,
            p50_us: 2.0,
            p90_us: 3.0,
            p99_us: 4.0,
            p999_us: 5.0,
            max_us: 6.0,
            mean_us: 2.5,
        });
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["rows"][1]["status"], "failed");
        assert_eq!(json["rows"][1]["reason"], "3 of 10 messages lost");
        let back: Section = serde_json::from_value(json).unwrap();
        assert_eq!(back.rows[0].status, Status::Ok);
        assert_eq!(
            back.rows[2].status,
            Status::NotRun("hekate run not available".into())
        );
        assert_eq!(back.rows[0].latency.unwrap().p99_us, 4.0);
    }

    #[test]
    fn merging_keeps_foreign_text_and_orders_new_blocks() {
        let order = ["machine", "baseline", "route", "scale", "micro"];
        let doc = "# Results\n\nintro by hand\n\n## micro-benches: framing\nhand-written figures\n";
        let doc = merge_block(doc, "route", &section("route").render(), &order);
        let machine = "<!-- bench:machine -->\nM1\n<!-- /bench:machine -->";
        let doc = merge_block(&doc, "machine", machine, &order);
        let doc = merge_block(&doc, "scale", &section("scale").render(), &order);
        assert_eq!(block_ids(&doc), ["machine", "route", "scale"]);
        assert!(doc.contains("intro by hand"));
        assert!(doc.contains("hand-written figures"));
        // Replacing a block rewrites it in place.
        let again = merge_block(
            &doc,
            "route",
            "<!-- bench:route -->\nNEW\n<!-- /bench:route -->",
            &order,
        );
        assert!(again.contains("NEW"));
        assert_eq!(
            again.matches("| fast | ok |").count(),
            1,
            "only scale's row is left"
        );
        assert_eq!(block_ids(&again), block_ids(&doc));
    }
}
