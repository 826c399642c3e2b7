//! `http`: `wrk` with keep-alive connections POSTing 1 KB JSON bodies (a Lua script sets the
//! method, header and body) → HttpListenInput → router → FileOutput to /dev/null
//! (`bench/configs/http.toml`); requests/s and latency percentiles as wrk measures them.
//! Delivery is checked by the output's count in hekate's SIGUSR1 report: every request answered
//! 200 must have been routed.
//!
//! The ceiling, in the same run: the same wrk load against a private nginx (one worker, pinned
//! to the same core as hekate) answering every request 200 with an empty body without doing
//! anything with it.

use std::path::Path;
use std::time::Duration;

use super::hekate::{self, HekateRun};
use super::peers;
use super::proc::Running;
use super::report::{Row, Section};
use super::{Bench, Workload, have, si};

/// The workload.
pub const WORKLOAD: Workload = Workload {
    id: "http",
    about: "wrk POST 1 KB JSON (keep-alive) → HttpListenInput → null, req/s and p99 vs nginx",
    in_quick: false,
    run,
};

const LABEL: &str = "hekate, HttpListenInput → /dev/null";
const NGINX: &str = "nginx 1 worker, `return 200` (ceiling; same run)";
const CONNECTIONS: u32 = 32;

/// What wrk printed.
#[derive(Debug, Default)]
struct WrkResult {
    requests: u64,
    per_second: f64,
    non_2xx: u64,
    errors: u64,
    p50: String,
    p99: String,
}

/// Reads wrk's `--latency` report.
fn parse_wrk(out: &str) -> Result<WrkResult, String> {
    let mut r = WrkResult::default();
    for line in out.lines().map(str::trim) {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["Requests/sec:", v] => r.per_second = v.parse().unwrap_or(0.0),
            [n, "requests", "in", ..] => r.requests = n.parse().unwrap_or(0),
            ["50%", v] => r.p50 = (*v).to_owned(),
            ["99%", v] => r.p99 = (*v).to_owned(),
            ["Non-2xx", "or", "3xx", "responses:", n] => r.non_2xx = n.parse().unwrap_or(0),
            ["Socket", "errors:", rest @ ..] => {
                r.errors = rest
                    .iter()
                    .filter_map(|w| w.trim_end_matches(',').parse::<u64>().ok())
                    .sum();
            }
            _ => {}
        }
    }
    if r.requests == 0 || r.per_second == 0.0 {
        return Err(format!("wrk reported no requests: {}", out.trim()));
    }
    Ok(r)
}

/// The Lua script that makes wrk POST a 1 KB JSON body.
fn write_script(dir: &Path) -> Result<String, String> {
    let mut body = String::from(r#"{"service":"checkout","level":"info","host":"web-17","msg":""#);
    while body.len() < 1024 - 2 {
        body.push('x');
    }
    body.push_str("\"}");
    let script = format!(
        "wrk.method = \"POST\"\nwrk.headers[\"Content-Type\"] = \"application/json\"\nwrk.body = '{body}'\n"
    );
    let path = dir.join("post.lua");
    std::fs::write(&path, script).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path.display().to_string())
}

/// Runs wrk against `port` and reads its report.
fn wrk(b: &Bench, name: &str, port: u16, script: &str) -> Result<(WrkResult, String), String> {
    let seconds = b.pick(5, 15);
    let launch = b.launch(name, "wrk").cores(&b.cores.generator).args([
        "-t1".to_owned(),
        format!("-c{CONNECTIONS}"),
        format!("-d{seconds}s"),
        "--latency".to_owned(),
        "-s".to_owned(),
        script.to_owned(),
        format!("http://127.0.0.1:{port}/ingest"),
    ]);
    let command = launch.command_line();
    let mut p = launch.spawn(&b.opts.run_dir)?;
    if p.wait(Duration::from_secs(seconds + 30)).is_none() {
        p.stop(Duration::from_secs(1));
        return Err("wrk did not finish".into());
    }
    Ok((parse_wrk(&p.stdout())?, command))
}

fn cells(r: &WrkResult, ratio: String, check: String) -> Vec<String> {
    vec![si(r.per_second), r.p50.clone(), r.p99.clone(), ratio, check]
}

/// A private nginx on `port`: one worker, pinned to the system-under-test core.
fn start_nginx(b: &Bench, port: u16) -> Result<(Running, String), String> {
    let dir = b.scratch("http-nginx");
    let conf = dir.join("nginx.conf");
    let text = format!(
        "worker_processes 1;\ndaemon off;\npid {pid};\nerror_log {err} warn;\n\
         events {{ worker_connections 1024; }}\n\
         http {{\n  access_log off;\n  client_body_buffer_size 64k;\n  keepalive_requests 1000000;\n\
         client_body_temp_path {tmp}/body;\n  proxy_temp_path {tmp}/proxy;\n  fastcgi_temp_path {tmp}/fastcgi;\n\
         uwsgi_temp_path {tmp}/uwsgi;\n  scgi_temp_path {tmp}/scgi;\n\
         server {{\n    listen 127.0.0.1:{port};\n    location / {{ return 200; }}\n  }}\n}}\n",
        pid = dir.join("nginx.pid").display(),
        err = dir.join("error.log").display(),
        tmp = dir.display(),
    );
    std::fs::write(&conf, text).map_err(|e| format!("{}: {e}", conf.display()))?;
    let launch = b
        .launch("http-nginx", "nginx")
        .cores(&b.cores.sut)
        .args(["-p".to_owned(), dir.display().to_string()])
        .args(["-c".to_owned(), conf.display().to_string()]);
    let command = launch.command_line();
    let mut p = launch.spawn(&b.opts.run_dir)?;
    peers::wait_tcp(&mut p, port, Duration::from_secs(10))?;
    Ok((p, command))
}

fn run(b: &mut Bench) -> Section {
    let mut s = Section::new(
        "http",
        "http: wrk POST 1 KB JSON → HttpListenInput → null",
        format!(
            "`wrk -t1 -c{CONNECTIONS} --latency` with keep-alive connections POSTing 1 KB JSON \
             bodies (a Lua script) → `HttpListenInput` (hyper on its pinned tokio thread, bodies \
             carried to the shard over the bridge's ring) → `FileOutput` to /dev/null \
             (`bench/configs/http.toml`). Latency is wrk's (from sending a request to its answer). \
             The ceiling is the same load against a private nginx with one worker on the same core, \
             answering `return 200` without looking at the body."
        ),
        &["req/s", "p50", "p99", "req/s vs nginx", "delivery"],
    );
    s.plot_unit = Some("requests/s".into());
    for tool in ["wrk", "nginx"] {
        if !have(tool) {
            let why = format!("{tool} is not installed (scripts/bench installs it)");
            s.rows.push(Row::not_run(NGINX, why.clone()));
            s.rows.push(Row::not_run(LABEL, why));
            return s;
        }
    }
    let dir = b.scratch("http");
    let script = match write_script(&dir) {
        Ok(p) => p,
        Err(e) => {
            s.rows.push(Row::failed(LABEL, e));
            return s;
        }
    };
    let cores = format!("wrk {} · server {}", b.cores.generator, b.cores.sut);

    // The ceiling.
    let port = b.free_port();
    let mut ceiling = None;
    match start_nginx(b, port) {
        Ok((mut nginx, start)) => {
            match wrk(b, "http-wrk-nginx", port, &script) {
                Ok((r, command)) => {
                    ceiling = Some(r.per_second);
                    let mut row = Row::ok(
                        NGINX,
                        cells(
                            &r,
                            "1.00×".into(),
                            format!("{} non-2xx, {} socket errors", r.non_2xx, r.errors),
                        ),
                    );
                    row.plot = Some(r.per_second);
                    row.reference = true;
                    s.rows.push(
                        row.commands(vec![start, command])
                            .cores(cores.clone())
                            .data(serde_json::json!({
                                "requests": r.requests, "per_second": r.per_second,
                                "p50": r.p50, "p99": r.p99, "non_2xx": r.non_2xx,
                            })),
                    );
                }
                Err(e) => s.rows.push(Row::failed(NGINX, e).cores(cores.clone())),
            }
            nginx.stop(Duration::from_secs(3));
        }
        Err(e) => s.rows.push(Row::failed(NGINX, e).cores(cores.clone())),
    }

    // hekate.
    if let Some(why) = b.hekate.unavailable() {
        s.rows.push(Row::not_run(LABEL, why.to_owned()));
        return s;
    }
    let port = b.free_port();
    let run = HekateRun::new("http", &b.cores.sut, port, &dir);
    let row = (|| -> Result<Row, String> {
        run.check(b)?;
        let launch = run.run_launch(b, "http-hekate");
        let start = launch.command_line();
        let mut hk = run.start_launch(b, launch, port, Duration::from_secs(20))?;
        let measured = wrk(b, "http-wrk-hekate", port, &script);
        let (r, command) = match measured {
            Ok(m) => m,
            Err(e) => {
                let e = hekate::explain(e, &hk);
                let _ = hekate::stop(&mut hk, Duration::from_secs(10));
                return Err(e);
            }
        };
        let answered = r.requests.saturating_sub(r.non_2xx);
        let delivered =
            hekate::await_report_count(&mut hk, "out", answered, Duration::from_secs(20));
        hekate::stop(&mut hk, Duration::from_secs(10))?;
        let delivered = delivered?;
        if delivered < answered {
            return Err(format!(
                "{answered} requests were answered 200 but only {delivered} messages reached the output"
            ));
        }
        let ratio = ceiling.map_or("—".into(), |c| format!("{:.2}×", r.per_second / c));
        let mut row = Row::ok(
            LABEL,
            cells(
                &r,
                ratio,
                format!(
                    "{delivered} routed ≥ {answered} answered 200; {} non-2xx, {} socket errors",
                    r.non_2xx, r.errors
                ),
            ),
        );
        row.plot = Some(r.per_second);
        Ok(row
            .commands(vec![start, command])
            .cores(cores.clone())
            .data(serde_json::json!({
                "requests": r.requests, "per_second": r.per_second, "p50": r.p50,
                "p99": r.p99, "non_2xx": r.non_2xx, "delivered": delivered,
            })))
    })();
    s.rows
        .push(row.unwrap_or_else(|e| Row::failed(LABEL, e).cores(cores.clone())));
    s.notes.push(format!(
        "hekate runs with `worker_cores = [{}]` (its HTTP thread pinned to the same core), nginx \
         with one worker pinned there; wrk on core {}.",
        b.cores.sut, b.cores.generator
    ));
    s
}

#[cfg(test)]
mod tests {
    use super::parse_wrk;

    #[test]
    fn wrk_reports_are_read() {
        let out = "Running 5s test @ http://127.0.0.1:1/ingest
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   610.12us  200.00us   5.00ms   90.00%
    Req/Sec    52.10k     1.20k   54.00k    80.00%
  Latency Distribution
     50%  580.00us
     75%  650.00us
     90%  720.00us
     99%    1.20ms
  259000 requests in 5.00s, 20.00MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 7
Requests/sec:  51800.25
Transfer/sec:      4.00MB
";
        let r = parse_wrk(out).unwrap();
        assert_eq!(r.requests, 259_000);
        assert_eq!(r.p50, "580.00us");
        assert_eq!(r.p99, "1.20ms");
        assert_eq!(r.non_2xx, 7);
        assert_eq!(r.errors, 3);
        assert!((r.per_second - 51800.25).abs() < 0.01);
    }
}
