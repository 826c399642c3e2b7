//! DashboardOutput through the real binary: Heka's files (`data/heka_report.json`,
//! `data/sandboxes.json`, a SandboxFilter's `cbuf` output as `data/<Filter>.<name>.cbuf`,
//! `data/heka_sandbox_termination.tsv`) appear in `working_directory` and are served at `address`
//! and under `/dashboard/` of `http_address`; in headless Chromium (without `http_address`) the
//! page lists every plugin of the config with its per-core figures, graphs the circular buffer
//! with the very points the filter produced, and redraws it when the filter counts more. The
//! screenshot is kept in `target/test-artifacts/dashboard.png`.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::webdriver::Chromium;
use common::*;
use hekate_model::message::{Field, Message};

/// Requests per second over five seconds and the worst latency of each second.
const FILTER: &str = r#"
require "circular_buffer"

requests = circular_buffer.new(5, 2, 1)
requests:set_header(1, "Requests", "count", "sum")
requests:set_header(2, "Latency", "ms", "max")

function process_message()
    local ts = read_message("Timestamp")
    requests:add(ts, 1, 1)
    requests:set(ts, 2, read_message("Fields[latency]"))
    return 0
end

function timer_event(ns)
    inject_payload("cbuf", "Requests", requests)
end
"#;

/// What the filter's buffer holds once every request is counted: second `i` of five had
/// `i + 1` requests, the worst of them `10 × (i + 1)` ms.
const REQUESTS: [f64; 5] = [1.0, 2.0, 3.0, 4.0, 5.0];
const LATENCY: [f64; 5] = [10.0, 20.0, 30.0, 40.0, 50.0];

/// The sections of the config.
const SECTIONS: [&str; 4] = ["requests", "Stats", "Dashboard", "discard"];

struct Running {
    hekate: Hekate,
    dir: PathBuf,
    /// The TcpInput's port.
    input: u16,
    /// The first second of the buffer.
    first: i64,
    dashboard: u16,
    http: u16,
}

/// A filter that fails on its first message, and is terminated.
const BROKEN: &str = r#"
[Broken]
type = "SandboxFilter"
filename = "broken.lua"
message_matcher = "Type == 'request'"
"#;

/// A request at `second` that took `latency` ms.
fn request(second: i64, latency: f64) -> Message {
    let mut m = Message::new_now();
    m.r#type = Some("request".into());
    m.timestamp = second * 1_000_000_000 + 250_000_000;
    m.add_field(Field::double("latency", latency));
    m
}

/// Starts hekate with a SandboxFilter publishing a circular buffer, a DashboardOutput and the
/// `extra` sections (and the metrics endpoint when `http_address`), and sends the requests the
/// filter counts.
fn start(name: &str, extra: &str, http_address: bool) -> Running {
    let dir = temp_dir(name);
    let share = dir.join("share");
    std::fs::create_dir_all(&share).unwrap();
    std::fs::write(share.join("requests.lua"), FILTER).unwrap();
    std::fs::write(
        share.join("broken.lua"),
        "function process_message() error('broken on purpose') end\nfunction timer_event() end\n",
    )
    .unwrap();
    let (port, dashboard, http) = (free_tcp_port(), free_tcp_port(), free_tcp_port());
    let config = format!(
        r#"
[hekate]
base_dir = "{base}"
share_dir = "{share}"
{http_line}

[requests]
type = "TcpInput"
address = "127.0.0.1:{port}"

[Stats]
type = "SandboxFilter"
filename = "requests.lua"
message_matcher = "Type == 'request'"
ticker_interval = 1

[Dashboard]
type = "DashboardOutput"
address = "127.0.0.1:{dashboard}"
ticker_interval = 1
headers = {{ X-Dashboard = "hekate" }}

[discard]
type = "LogOutput"
message_matcher = "Type == 'nothing'"
encoder = "PayloadEncoder"

[PayloadEncoder]
{extra}"#,
        base = dir.join("base").display(),
        share = share.display(),
        http_line = if http_address {
            format!("http_address = \"127.0.0.1:{http}\"")
        } else {
            String::new()
        },
    );
    let ports = if http_address {
        vec![port, dashboard, http]
    } else {
        vec![port, dashboard]
    };
    let hekate = Hekate::start(&dir, &config, &ports);
    // Five whole seconds that ended a minute ago.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let first = now - 60;
    let mut msgs = Vec::new();
    for (i, _) in REQUESTS.iter().enumerate() {
        for _ in 0..=i {
            msgs.push(request(first + i as i64, LATENCY[i]));
        }
    }
    send_tcp(port, &framed(msgs));
    Running {
        hekate,
        dir: dir.clone(),
        input: port,
        first,
        dashboard,
        http,
    }
}

/// GET `path`: (status, headers, body).
fn get(port: u16, path: &str) -> (u16, String, String) {
    http_get(port, path)
}

/// The columns of a cbuf text (`nan` as NaN).
fn cbuf_columns(text: &str) -> Vec<Vec<f64>> {
    let mut columns: Vec<Vec<f64>> = Vec::new();
    for row in text.lines().skip(1) {
        for (i, v) in row.split('\t').enumerate() {
            if columns.len() <= i {
                columns.push(Vec::new());
            }
            columns[i].push(v.parse().unwrap_or(f64::NAN));
        }
    }
    columns
}

/// A JSON array of numbers (`null` as NaN, which equals nothing).
fn numbers(v: &serde_json::Value) -> Vec<f64> {
    v.as_array()
        .map(|a| a.iter().map(|x| x.as_f64().unwrap_or(f64::NAN)).collect())
        .unwrap_or_default()
}

fn data(dir: &Path) -> PathBuf {
    dir.join("base").join("dashboard").join("data")
}

/// The cbuf file, once it holds every request.
fn wait_for_cbuf(r: &Running) -> String {
    let path = data(&r.dir).join("Stats.Requests.cbuf");
    let mut text = String::new();
    let done = wait_for(Duration::from_secs(10), || {
        text = std::fs::read_to_string(&path).unwrap_or_default();
        cbuf_columns(&text) == [REQUESTS.to_vec(), LATENCY.to_vec()]
    });
    assert!(
        done,
        "the filter's cbuf is not in the working directory: {text:?}\n{}",
        r.hekate.stderr()
    );
    text
}

#[test]
fn hekas_files_appear_in_the_working_directory_and_are_served() {
    let mut r = start("dash-files", BROKEN, true);
    let cbuf = wait_for_cbuf(&r);
    let header: serde_json::Value = serde_json::from_str(cbuf.lines().next().unwrap()).unwrap();
    assert_eq!(header["column_info"][0]["name"], "Requests");
    assert_eq!(header["seconds_per_row"], 1);

    // heka_report.json is the heka.all-report payload; sandboxes.json lists the output.
    let report_path = data(&r.dir).join("heka_report.json");
    let sandboxes_path = data(&r.dir).join("sandboxes.json");
    let listed = wait_for(Duration::from_secs(10), || {
        std::fs::read_to_string(&sandboxes_path)
            .is_ok_and(|s| s.contains("\"Filename\":\"data/Stats.Requests.cbuf\""))
    });
    assert!(listed, "{:?}", std::fs::read_to_string(&sandboxes_path));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report_path).unwrap()).unwrap();
    let names = |category: &str| -> Vec<String> {
        report[category]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["Name"].as_str().unwrap().to_string())
            .collect()
    };
    assert!(names("filters").contains(&"Stats".to_string()), "{report}");
    assert!(
        names("outputs").contains(&"Dashboard".to_string()),
        "{report}"
    );
    assert!(
        names("inputs").contains(&"requests".to_string()),
        "{report}"
    );
    let sandboxes: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&sandboxes_path).unwrap()).unwrap();
    assert_eq!(
        sandboxes,
        serde_json::json!({"sandboxes": [{"Name": "Stats", "Outputs": [
            {"Name": "Requests", "Filename": "data/Stats.Requests.cbuf"}
        ]}]})
    );

    // The same files over HTTP, with the configured header; the page and its health figures.
    let (status, head, body) = get(r.dashboard, "/data/Stats.Requests.cbuf");
    assert_eq!(status, 200);
    assert!(head.contains("x-dashboard: hekate"), "{head}");
    assert_eq!(cbuf_columns(&body), [REQUESTS.to_vec(), LATENCY.to_vec()]);
    let (status, _, body) = get(r.dashboard, "/data/heka_report.json");
    assert_eq!(status, 200);
    assert!(body.contains("\"Stats\""), "{body}");
    let (status, _, page) = get(r.dashboard, "/");
    assert_eq!(status, 200);
    assert!(page.contains("dashboard.js"), "{page}");
    let (status, _, health) = get(r.dashboard, "/data/hekate_health.json");
    assert_eq!(status, 200);
    let health: serde_json::Value = serde_json::from_str(&health).unwrap();
    for name in SECTIONS {
        assert!(
            health["plugins"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["name"] == name),
            "{name} missing: {health}"
        );
    }
    assert_eq!(get(r.dashboard, "/data/../hekate.toml").0, 404);

    // A terminated sandbox is a line of heka_sandbox_termination.tsv.
    let tsv_path = data(&r.dir).join("heka_sandbox_termination.tsv");
    let mut tsv = String::new();
    let terminated = wait_for(Duration::from_secs(10), || {
        tsv = std::fs::read_to_string(&tsv_path).unwrap_or_default();
        !tsv.is_empty()
    });
    assert!(terminated, "{}", r.hekate.stderr());
    let fields: Vec<&str> = tsv.lines().next().unwrap().split('\t').collect();
    assert!(fields[0].parse::<i64>().unwrap() > 1_700_000_000, "{tsv}");
    assert_eq!(fields[1], "Broken", "{tsv}");
    assert!(fields[2].contains("broken on purpose"), "{tsv}");

    // Under /dashboard/ of http_address too, beside /metrics.
    let (status, head, _) = get(r.http, "/dashboard");
    assert_eq!(status, 301);
    assert!(head.contains("location: /dashboard/"), "{head}");
    let (status, _, body) = get(r.http, "/dashboard/data/Stats.Requests.cbuf");
    assert_eq!(status, 200);
    assert_eq!(cbuf_columns(&body), [REQUESTS.to_vec(), LATENCY.to_vec()]);
    assert_eq!(get(r.http, "/metrics").0, 200);

    assert!(r.hekate.terminate().success(), "{}", r.hekate.stderr());
}

#[test]
fn the_page_in_headless_chromium_lists_every_plugin_and_graphs_the_filters_buffer() {
    let mut r = start("dash-chromium", "", false);
    wait_for_cbuf(&r);
    let browser = Chromium::start(1280, 1100);
    browser.goto(&format!("http://127.0.0.1:{}/", r.dashboard));
    let look = || {
        browser.eval(
            "const d = window.hekateDashboard || {};
             const box = document.querySelector('.graph[data-file=\"Stats.Requests.cbuf\"]');
             return {
               rows: Array.from(document.querySelectorAll('#plugins [data-plugin]'))
                 .map(tr => tr.dataset.plugin),
               stats: Array.from(document.querySelectorAll('#plugins tr[data-plugin=Stats]'))
                 .map(tr => Number(tr.cells[4].textContent || 0)).reduce((a, b) => a + b, 0),
               points: box ? JSON.parse(box.dataset.points) : null,
               canvas: box ? box.querySelectorAll('canvas').length : 0,
               times: d.graphs && d.graphs['Stats.Requests.cbuf']
                 ? d.graphs['Stats.Requests.cbuf'].times : null,
               updated: d.updated || 0,
             };",
        )
    };
    let mut seen = serde_json::Value::Null;
    let shown = wait_for(Duration::from_secs(10), || {
        seen = look();
        let rows: Vec<&str> = seen["rows"]
            .as_array()
            .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
            .unwrap_or_default();
        SECTIONS.iter().all(|s| rows.contains(s))
            && numbers(&seen["points"]["Requests"]) == REQUESTS
            && seen["canvas"].as_u64().unwrap_or(0) > 0
            && seen["stats"] == 15
    });
    assert!(
        shown,
        "the page does not show every plugin and the buffer: {}\n{}",
        serde_json::to_string_pretty(&seen).unwrap(),
        r.hekate.stderr()
    );
    assert_eq!(numbers(&seen["points"]["Latency"]), LATENCY);
    // Row i of the buffer is second i.
    let times: Vec<i64> = seen["times"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_i64().unwrap())
        .collect();
    assert_eq!(times, (r.first..r.first + 5).collect::<Vec<_>>());

    // Live: three more requests in the last second reach the open page.
    send_tcp(r.input, &framed((0..3).map(|_| request(r.first + 4, 5.0))));
    let refreshed = wait_for(Duration::from_secs(10), || {
        seen = look();
        numbers(&seen["points"]["Requests"]) == [1.0, 2.0, 3.0, 4.0, 8.0]
    });
    let shot = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts/dashboard.png");
    browser.screenshot(&shot);
    assert!(
        refreshed,
        "the page does not refresh the graph: {}\n{}",
        serde_json::to_string_pretty(&seen).unwrap(),
        r.hekate.stderr()
    );
    assert_eq!(numbers(&seen["points"]["Latency"]), LATENCY);
    assert!(std::fs::metadata(&shot).unwrap().len() > 10_000);
    drop(browser);
    assert!(r.hekate.terminate().success(), "{}", r.hekate.stderr());
}
