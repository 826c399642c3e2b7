//! `hekate top`: a live terminal view of a running hekate, read from its metrics endpoint
//! (`[hekate] http_address`).
//!
//! Every `--interval` it fetches `/metrics` and `/health` (hyper on a current-thread tokio
//! runtime) and redraws:
//!
//! - the health line (`ok`, or each problem `/health` names);
//! - per core: the messages its inputs read per second, what its router evaluates per second,
//!   the fill of the fullest lane its router feeds, the messages its router holds for a full
//!   lane, and which filter or output that fullest lane feeds — the one holding the core back;
//! - per plugin (inputs, filters, outputs, summed over the cores): messages received and
//!   delivered per second, dropped and failures (decode failures, rejected records) so far, and
//!   for filters and outputs the messages waiting for them.
//!
//! Rates are the difference between two scrapes; the first frame has none yet. `--once`
//! prints a single frame (after two scrapes an interval apart) without clearing the screen.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt as _, Empty};
use hyper::Request;
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;

/// How long one request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// One sample of the exposition: `name{labels} value`.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

impl Series {
    fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// The samples of a Prometheus text exposition (comments and malformed lines skipped).
pub fn parse(text: &str) -> Vec<Series> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(parse_line)
        .collect()
}

fn parse_line(line: &str) -> Option<Series> {
    let end = line.find(['{', ' '])?;
    let name = line[..end].to_string();
    let mut rest = &line[end..];
    let mut labels = Vec::new();
    if let Some(mut inner) = rest.strip_prefix('{') {
        loop {
            inner = inner.trim_start_matches([',', ' ']);
            if let Some(tail) = inner.strip_prefix('}') {
                rest = tail;
                break;
            }
            // name="value", the value with \\, \" and \n escaped.
            let (key, after) = inner.split_once("=\"")?;
            let mut value = String::new();
            let mut chars = after.char_indices();
            let close = loop {
                match chars.next()? {
                    (_, '\\') => match chars.next()?.1 {
                        'n' => value.push('\n'),
                        c => value.push(c),
                    },
                    (i, '"') => break i,
                    (_, c) => value.push(c),
                }
            };
            labels.push((key.trim().to_string(), value));
            inner = &after[close + 1..];
        }
    }
    Some(Series {
        name,
        labels,
        value: parse_value(rest)?,
    })
}

fn parse_value(rest: &str) -> Option<f64> {
    rest.split_whitespace().next()?.parse().ok()
}

/// One fetch of the endpoint.
#[derive(Debug, Clone)]
pub struct Scrape {
    pub at: Instant,
    pub series: Vec<Series>,
    /// (status, body) of `/health`.
    pub health: (u16, String),
}

impl Scrape {
    fn sum(&self, name: &str, keep: impl Fn(&Series) -> bool) -> f64 {
        self.series
            .iter()
            .filter(|s| s.name == name && keep(s))
            .map(|s| s.value)
            .sum::<f64>()
            // An empty sum is -0.
            + 0.0
    }
}

/// A plugin's identity in the plugin table.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct PluginKey {
    order: u8,
    name: String,
    type_name: String,
}

fn category_order(c: &str) -> u8 {
    match c {
        "input" => 0,
        "filter" => 1,
        _ => 2,
    }
}

/// A frame of the view from the newest scrape and the one before it (for rates).
pub fn render(address: &str, now: &Scrape, before: Option<&Scrape>) -> String {
    let mut out = String::new();
    let dt = before.map(|b| now.at.duration_since(b.at).as_secs_f64());
    let rate = |name: &str, keep: &dyn Fn(&Series) -> bool| -> String {
        match (before, dt) {
            (Some(b), Some(dt)) if dt > 0.0 => {
                let v = (now.sum(name, keep) - b.sum(name, keep)).max(0.0) / dt;
                format!("{v:.0}")
            }
            _ => "-".to_string(),
        }
    };
    let _ = writeln!(out, "hekate top — http://{address}");
    if now.health.0 == 200 {
        let _ = writeln!(out, "health: ok");
    } else {
        let _ = writeln!(out, "health: NOT OK ({})", now.health.0);
        for line in now.health.1.lines() {
            let _ = writeln!(out, "  ! {line}");
        }
    }
    let capacity = now.sum("hekate_lane_capacity_messages", |_| true).max(1.0);

    // Per core.
    let mut cores: Vec<String> = now
        .series
        .iter()
        .filter(|s| s.name == "hekate_core_messages_routed_total")
        .filter_map(|s| s.label("core").map(str::to_string))
        .collect();
    cores.sort_by_key(|c| c.parse::<usize>().unwrap_or(usize::MAX));
    cores.dedup();
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{:>5} {:>10} {:>10} {:>9} {:>9}  HELD BACK BY",
        "CORE", "INPUT/s", "ROUTED/s", "RING", "PENDING"
    );
    for core in &cores {
        let on_core = |s: &Series| s.label("core") == Some(core);
        let input = rate("hekate_plugin_messages_received_total", &|s| {
            on_core(s) && s.label("category") == Some("input")
        });
        let routed = rate("hekate_core_messages_routed_total", &on_core);
        let fill = now.sum("hekate_core_ring_fill_ratio", on_core) * 100.0;
        let pending = format!(
            "{:.0}",
            now.sum("hekate_core_router_pending_messages", on_core)
        );
        let fullest = now
            .series
            .iter()
            .filter(|s| s.name == "hekate_lane_messages" && s.label("from_core") == Some(core))
            .filter(|s| s.value > 0.0)
            .max_by(|a, b| a.value.total_cmp(&b.value));
        let culprit = match fullest {
            Some(s) => format!(
                "{} ({}) on core {}: {:.0}% of its lane",
                s.label("plugin").unwrap_or("?"),
                s.label("type").unwrap_or("?"),
                s.label("to_core").unwrap_or("?"),
                (s.value / capacity * 100.0).min(100.0)
            ),
            None => "-".to_string(),
        };
        let _ = writeln!(
            out,
            "{core:>5} {input:>10} {routed:>10} {:>8.1}% {pending:>9}  {culprit}",
            fill
        );
    }

    // Per plugin.
    let mut plugins: BTreeMap<PluginKey, String> = BTreeMap::new();
    for s in now
        .series
        .iter()
        .filter(|s| s.name == "hekate_plugin_messages_received_total")
    {
        let (Some(name), Some(t), Some(c)) =
            (s.label("plugin"), s.label("type"), s.label("category"))
        else {
            continue;
        };
        plugins.insert(
            PluginKey {
                order: category_order(c),
                name: name.to_string(),
                type_name: t.to_string(),
            },
            c.to_string(),
        );
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{:<24} {:<22} {:>10} {:>10} {:>10} {:>10} {:>9}",
        "PLUGIN", "TYPE", "RECV/s", "DELIV/s", "DROPPED", "FAILURES", "QUEUE"
    );
    for (key, category) in &plugins {
        let mine = |s: &Series| s.label("plugin") == Some(key.name.as_str());
        let received = rate("hekate_plugin_messages_received_total", &mine);
        let delivered = rate("hekate_plugin_messages_delivered_total", &mine);
        let dropped = format!(
            "{:.0}",
            now.sum("hekate_plugin_messages_dropped_total", mine)
        );
        let failures = format!(
            "{:.0}",
            now.sum("hekate_plugin_decode_failures_total", mine)
                + now.sum("hekate_plugin_records_rejected_total", mine)
        );
        let queue = if category == "input" {
            "-".to_string()
        } else {
            format!("{:.0}", now.sum("hekate_plugin_queue_messages", mine))
        };
        let _ = writeln!(
            out,
            "{:<24} {:<22} {received:>10} {delivered:>10} {dropped:>10} {failures:>10} {queue:>9}",
            truncate(&key.name, 24),
            truncate(&key.type_name, 22),
        );
    }
    out
}

fn truncate(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(width - 1).collect();
        t.push('…');
        t
    }
}

/// GET `path` from `address`: (status, body).
async fn get(address: &str, path: &str) -> Result<(u16, String), String> {
    let stream = tokio::net::TcpStream::connect(address)
        .await
        .map_err(|e| e.to_string())?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::task::spawn(connection);
    let request = Request::get(path)
        .header(hyper::header::HOST, address)
        .body(Empty::<Bytes>::new())
        .map_err(|e| e.to_string())?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

async fn scrape(address: &str) -> Result<Scrape, String> {
    let fetch = async {
        let (status, metrics) = get(address, "/metrics").await?;
        if status != 200 {
            return Err(format!("/metrics answered {status}"));
        }
        let health = get(address, "/health").await?;
        Ok(Scrape {
            at: Instant::now(),
            series: parse(&metrics),
            health,
        })
    };
    tokio::time::timeout(REQUEST_TIMEOUT, fetch)
        .await
        .map_err(|_| format!("no answer within {REQUEST_TIMEOUT:?}"))?
}

/// `http_address` as the config writes it: `:PORT` is the loopback address.
fn normalize(address: &str) -> String {
    match address.strip_prefix(':') {
        Some(port) => format!("127.0.0.1:{port}"),
        None => address.replace("localhost:", "127.0.0.1:"),
    }
}

/// Runs the view until interrupted (or once).
pub fn run(address: &str, interval: Duration, once: bool) -> ExitCode {
    let address = normalize(address);
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("hekate top: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut before: Option<Scrape> = None;
    let mut stdout = std::io::stdout();
    loop {
        match runtime.block_on(scrape(&address)) {
            Ok(now) => {
                if !once || before.is_some() {
                    let frame = render(&address, &now, before.as_ref());
                    let clear = if once { "" } else { "\x1b[H\x1b[2J" };
                    let _ = write!(stdout, "{clear}{frame}");
                    let _ = stdout.flush();
                    if once {
                        return ExitCode::SUCCESS;
                    }
                }
                before = Some(now);
            }
            Err(e) if once => {
                eprintln!("hekate top: cannot read http://{address}/metrics: {e}");
                return ExitCode::FAILURE;
            }
            Err(e) => {
                let _ = write!(
                    stdout,
                    "\x1b[H\x1b[2Jhekate top — http://{address}\ncannot read /metrics: {e}; retrying (is `http_address` set in [hekate]?)\n"
                );
                let _ = stdout.flush();
                before = None;
            }
        }
        std::thread::sleep(interval);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_lines_parse_with_escaped_labels() {
        let text = "# HELP x y\n# TYPE x counter\n\
                    hekate_plugin_messages_received_total{plugin=\"a \\\"b\\\"\",core=\"1\"} 42\n\
                    hekate_lane_capacity_messages 64\n\
                    broken{plugin=\n";
        let series = parse(text);
        assert_eq!(series.len(), 2, "{series:?}");
        assert_eq!(series[0].label("plugin"), Some("a \"b\""));
        assert_eq!(series[0].label("core"), Some("1"));
        assert_eq!(series[0].value, 42.0);
        assert_eq!(series[1].name, "hekate_lane_capacity_messages");
        assert!(series[1].labels.is_empty());
    }

    fn scrape(at: Instant, received: u64, lane: u64, health: (u16, &str)) -> Scrape {
        let text = format!(
            "hekate_core_messages_routed_total{{core=\"0\"}} {received}\n\
             hekate_core_ring_fill_ratio{{core=\"0\"}} 0.5\n\
             hekate_core_router_pending_messages{{core=\"0\"}} 3\n\
             hekate_lane_capacity_messages 256\n\
             hekate_lane_messages{{plugin=\"up\",type=\"TcpOutput\",from_core=\"0\",to_core=\"1\"}} {lane}\n\
             hekate_plugin_messages_received_total{{plugin=\"in\",type=\"TcpInput\",category=\"input\",core=\"0\"}} {received}\n\
             hekate_plugin_messages_received_total{{plugin=\"up\",type=\"TcpOutput\",category=\"output\",core=\"1\"}} 10\n\
             hekate_plugin_messages_dropped_total{{plugin=\"up\",type=\"TcpOutput\",category=\"output\",core=\"1\"}} 2\n\
             hekate_plugin_queue_messages{{plugin=\"up\",type=\"TcpOutput\",category=\"output\",core=\"1\"}} 128\n"
        );
        Scrape {
            at,
            series: parse(&text),
            health: (health.0, health.1.to_string()),
        }
    }

    #[test]
    fn a_frame_shows_rates_the_culprit_and_health() {
        let t0 = Instant::now();
        let first = scrape(t0, 100, 128, (200, "ok\n"));
        let second = scrape(
            t0 + Duration::from_secs(2),
            300,
            128,
            (503, "output 'up' stuck\n"),
        );
        let frame = render("127.0.0.1:9110", &second, Some(&first));
        assert!(
            frame.contains("health: NOT OK (503)\n  ! output 'up' stuck\n"),
            "{frame}"
        );
        let core = frame
            .lines()
            .find(|l| l.trim_start().starts_with("0 "))
            .unwrap();
        assert!(core.contains(" 100 "), "100 messages a second: {core}");
        assert!(core.contains("50.0%"), "{core}");
        assert!(
            core.contains("up (TcpOutput) on core 1: 50% of its lane"),
            "{core}"
        );
        let up = frame.lines().find(|l| l.starts_with("up ")).unwrap();
        assert!(up.ends_with(" 2          0       128"), "{up}");
        let first_frame = render("127.0.0.1:9110", &first, None);
        assert!(first_frame.contains("health: ok"));
        let input = first_frame.lines().find(|l| l.starts_with("in ")).unwrap();
        assert!(input.contains(" - "), "no rate yet: {input}");
    }
}
