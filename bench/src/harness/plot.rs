//! Plots with gnuplot (Debian's `gnuplot-nox`, installed by `scripts/bench`): one horizontal bar
//! chart of throughput per workload, and one chart of latency percentiles across the page.
//!
//! Bars are horizontal so that long run labels stay readable; the value is printed at the end of
//! each bar; reference bars (baselines) are grey.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use super::Bench;
use super::report::{Row, Section, Status};
use crate::check::LatencySummary;

const BLUE: &str = "0x4472c4";
const GREY: &str = "0xa5a5a5";

/// Quotes a label for a gnuplot data block.
fn quoted(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "'"))
}

/// Image width: room for the labels plus a plot area of ~700 pixels.
fn width(chars: usize) -> usize {
    (chars * 7 + 760).clamp(1000, 1400)
}

/// Left margin (in character widths) for labels of `chars` characters.
fn margin(chars: usize) -> f64 {
    (chars as f64 * 0.95 + 2.0).clamp(12.0, 80.0)
}

/// Runs gnuplot on `script`.
fn gnuplot(script: &str) -> Result<(), String> {
    let mut child = Command::new("gnuplot")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("gnuplot not found ({e}); scripts/bench installs gnuplot-nox"))?;
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(script.as_bytes())
        .map_err(|e| format!("gnuplot: {e}"))?;
    let out = child
        .wait_with_output()
        .map_err(|e| format!("gnuplot: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "gnuplot failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// A horizontal bar chart: `(label, value, value text, reference)`, top to bottom.
pub fn bars(
    png: &Path,
    title: &str,
    unit: &str,
    rows: &[(String, f64, String, bool)],
) -> Result<(), String> {
    let n = rows.len();
    let max = rows.iter().map(|r| r.1).fold(0.0, f64::max).max(1e-9);
    let longest = rows.iter().map(|r| r.0.chars().count()).max().unwrap_or(10);
    let mut data = String::new();
    for (label, value, text, reference) in rows {
        data.push_str(&format!(
            "{} {value} {} {}\n",
            quoted(label),
            if *reference { GREY } else { BLUE },
            quoted(text)
        ));
    }
    let script = format!(
        "set terminal pngcairo size {w},{h} font 'sans,10'\n\
         set output {out}\n\
         set title {title}\n\
         set format x {fmt}\n\
         set xlabel {unit}\n\
         set style fill solid 0.9 noborder\n\
         set yrange [{n}-0.4:-0.6]\n\
         set xrange [0:{xmax}]\n\
         set ytics scale 0\n\
         set grid xtics lc rgb '#dddddd'\n\
         set border 3\n\
         set tics nomirror\n\
         set lmargin {lm}\n\
         unset key\n\
         $data << EOD\n{data}EOD\n\
         plot $data using 2:0:(0):2:($0-0.35):($0+0.35):3:ytic(1) with boxxyerror lc rgb variable, \\\n\
              $data using 2:0:(sprintf('  %s', stringcolumn(4))) with labels left\n",
        w = width(longest),
        h = 110 + 42 * n,
        out = quoted(&png.display().to_string()),
        title = quoted(title),
        fmt = if max >= 1000.0 { "'%.0s%c'" } else { "'%g'" },
        unit = quoted(unit),
        xmax = max * 1.3,
        lm = margin(longest),
    );
    gnuplot(&script)
}

/// Latency percentiles (p50, p99, p99.9) per run, log scale, top to bottom.
pub fn latency(png: &Path, rows: &[(String, LatencySummary)]) -> Result<(), String> {
    let n = rows.len();
    let lo = rows
        .iter()
        .map(|r| r.1.p50_us)
        .fold(f64::INFINITY, f64::min)
        .max(0.1);
    let xmin = 10f64.powf((lo / 2.0).log10().floor());
    let xmax = 10f64.powf(
        rows.iter()
            .map(|r| r.1.p999_us)
            .fold(1.0, f64::max)
            .log10()
            .ceil()
            + 0.3,
    );
    let longest = rows.iter().map(|r| r.0.chars().count()).max().unwrap_or(10);
    let mut data = String::new();
    for (label, l) in rows {
        data.push_str(&format!(
            "{} {} {} {}\n",
            quoted(label),
            l.p50_us.max(xmin),
            l.p99_us.max(xmin),
            l.p999_us.max(xmin)
        ));
    }
    let script = format!(
        "set terminal pngcairo size {w},{h} font 'sans,10'\n\
         set output {out}\n\
         set title 'Send-to-receive latency (log scale)'\n\
         set logscale x\n\
         set xtics ('1 µs' 1, '10 µs' 10, '100 µs' 100, '1 ms' 1000, '10 ms' 10000, '100 ms' 100000, '1 s' 1000000, '10 s' 10000000)\n\
         set style fill solid 0.9 noborder\n\
         set yrange [{n}-0.4:-0.6]\n\
         set xrange [{xmin}:{xmax}]\n\
         set ytics scale 0\n\
         set grid xtics mxtics lc rgb '#dddddd'\n\
         set border 3\n\
         set tics nomirror\n\
         set lmargin {lm}\n\
         set key outside top center horizontal\n\
         $data << EOD\n{data}EOD\n\
         plot $data using 2:0:({xmin}):2:($0-0.33):($0-0.11):ytic(1) with boxxyerror lc rgb '#9ecae1' title 'p50', \\\n\
              $data using 3:0:({xmin}):3:($0-0.11):($0+0.11) with boxxyerror lc rgb '#4292c6' title 'p99', \\\n\
              $data using 4:0:({xmin}):4:($0+0.11):($0+0.33) with boxxyerror lc rgb '#08519c' title 'p99.9'\n",
        w = width(longest),
        h = 140 + 48 * n,
        out = quoted(&png.display().to_string()),
        lm = margin(longest),
    );
    gnuplot(&script)
}

/// Draws the throughput chart of a section if it has values; returns the image paths relative
/// to `bench/` for the page, and notes a failure in the section.
pub fn draw_section(b: &Bench, s: &mut Section) -> Vec<String> {
    let Some(unit) = &s.plot_unit else {
        return Vec::new();
    };
    let rows: Vec<(String, f64, String, bool)> = s
        .rows
        .iter()
        .filter(|r| r.status.is_ok())
        .filter_map(|r: &Row| {
            let v = r.plot?;
            Some((r.label.clone(), v, format_value(v), r.reference))
        })
        .collect();
    if rows.is_empty() {
        return Vec::new();
    }
    let png = b.opts.results_dir().join(format!("{}.png", s.id));
    match bars(&png, &format!("{}: {}", s.id, unit), unit, &rows) {
        Ok(()) => vec![format!("results/{}.png", s.id)],
        Err(e) => {
            s.notes.push(format!("Plot not drawn: {e}."));
            Vec::new()
        }
    }
}

fn format_value(v: f64) -> String {
    if v >= 100.0 {
        super::si(v)
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// The `latency` block: a chart and a table of every ok row with latency in
/// `bench/results/*.json` (so runs of different workloads on the page appear together).
pub fn latency_block(b: &Bench) -> String {
    let mut rows: Vec<(String, String, LatencySummary, String)> = Vec::new();
    for id in super::BLOCK_ORDER {
        let path = b.opts.results_dir().join(format!("{id}.json"));
        let Ok(text) = fs::read_to_string(&path) else {
            continue;
        };
        let Ok(json) = serde_json::from_str::<serde_json::Value>(&text) else {
            continue;
        };
        let Ok(section) = serde_json::from_value::<Section>(json["section"].clone()) else {
            continue;
        };
        for r in section.rows {
            if let (Status::Ok, Some(l)) = (&r.status, r.latency) {
                rows.push((id.to_string(), r.label, l, section.run.date.clone()));
            }
        }
    }
    let mut s = String::from(
        "<!-- bench:latency -->\n## latency\n\n\
         Send-to-receive latency of every checked run on this page, from the HDR histogram of \
         `hekate-sink` (the generator stamps the send time into each message). Runs \"flat out\" \
         measure queueing in full socket buffers, not the pipeline; the runs at a set rate are the \
         ones to compare.\n\n",
    );
    if rows.is_empty() {
        s.push_str("No run with latency yet.\n<!-- /bench:latency -->\n");
        return s;
    }
    let png = b.opts.results_dir().join("latency.png");
    let chart: Vec<(String, LatencySummary)> = rows
        .iter()
        .map(|(id, label, l, _)| (format!("{id}: {label}"), *l))
        .collect();
    match latency(&png, &chart) {
        Ok(()) => s.push_str("![latency percentiles](results/latency.png)\n\n"),
        Err(e) => s.push_str(&format!("Plot not drawn: {e}.\n\n")),
    }
    s.push_str("| workload | run | p50 | p90 | p99 | p99.9 | max | measured |\n|---|---|---|---|---|---|---|---|\n");
    let us = |v: f64| {
        if v >= 10_000.0 {
            format!("{:.0} ms", v / 1000.0)
        } else if v >= 1000.0 {
            format!("{:.1} ms", v / 1000.0)
        } else {
            format!("{v:.0} µs")
        }
    };
    for (id, label, l, date) in &rows {
        s.push_str(&format!(
            "| {id} | {} | {} | {} | {} | {} | {} | {date} |\n",
            label.replace('|', "\\|"),
            us(l.p50_us),
            us(l.p90_us),
            us(l.p99_us),
            us(l.p999_us),
            us(l.max_us)
        ));
    }
    s.push_str("\nThe commands are in each workload's table.\n<!-- /bench:latency -->\n");
    s
}
