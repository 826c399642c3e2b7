//! Sandbox hot paths: a trivial filter per message (read from a zero-copy view), and an LPeg
//! nginx access-log decoder per line.
//!
//! Each is measured twice: wall time (criterion's default) and the calling thread's CPU time
//! (`*_cpu`), which is what "per core" means and stays meaningful on a shared, loaded machine.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Bencher, Criterion, Throughput, criterion_group, criterion_main};
use hekate_model::message::{Field, Message, MessageView};
use hekate_sandbox::{
    InjectError, Outcome, PluginType, Sandbox, SandboxConfig, SandboxHost, ScriptSource,
};

/// Counts injected messages without keeping them.
struct CountingHost(u64);

impl SandboxHost for CountingHost {
    fn inject(&mut self, msg: &[u8]) -> Result<(), InjectError> {
        black_box(msg);
        self.0 += 1;
        Ok(())
    }
    fn now_ns(&self) -> i64 {
        1_700_000_000_000_000_000
    }
}

fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Runs one process_message per iteration, timing wall clock or thread CPU time.
fn run(b: &mut Bencher<'_>, sb: &mut Sandbox, view: &MessageView<'_>, cpu: bool) {
    let mut host = CountingHost(0);
    if cpu {
        b.iter_custom(|iters| {
            let start = thread_cpu_time();
            for _ in 0..iters {
                let r = sb.process_message(black_box(view), &mut host);
                debug_assert_eq!(r, Ok(Outcome::Ok));
                let _ = black_box(r);
            }
            thread_cpu_time() - start
        });
    } else {
        b.iter(|| {
            let r = sb.process_message(black_box(view), &mut host);
            debug_assert_eq!(r, Ok(Outcome::Ok));
            black_box(r)
        });
    }
}

fn trivial_filter(c: &mut Criterion) {
    let code = r#"
count = 0
function process_message()
    local t = read_message("Type")
    count = count + 1
    return 0
end
"#;
    let mut sb = Sandbox::new(
        ScriptSource::source("counter.lua", code),
        PluginType::Filter,
        "Counter",
        SandboxConfig::default(),
    )
    .expect("sandbox");
    let mut m = Message::new_now();
    m.r#type = Some("nginx.access".into());
    m.logger = Some("TcpInput".into());
    m.hostname = Some("web-01".into());
    m.payload = Some("GET /index.html 200".into());
    m.fields.push(Field::integer("status", 200));
    m.fields.push(Field::string("method", "GET"));
    let bytes = m.to_bytes();
    let view = MessageView::new(&bytes).expect("view");
    let mut g = c.benchmark_group("sandbox");
    g.throughput(Throughput::Elements(1));
    g.bench_function("trivial_filter_per_message", |b| {
        run(b, &mut sb, &view, false)
    });
    g.bench_function("trivial_filter_per_message_cpu", |b| {
        run(b, &mut sb, &view, true)
    });
    g.finish();
}

const NGINX_DECODER: &str = include_str!("../tests/lua/nginx_decoder.lua");

fn nginx_decoder(c: &mut Criterion) {
    let cfg = SandboxConfig {
        module_directory: concat!(env!("CARGO_MANIFEST_DIR"), "/tests/lua/modules").into(),
        ..SandboxConfig::default()
    };
    let mut sb = Sandbox::new(
        ScriptSource::source("nginx_decoder.lua", NGINX_DECODER),
        PluginType::Decoder,
        "NginxDecoder",
        cfg,
    )
    .expect("sandbox");
    let line = r#"192.168.1.10 - frank [10/Oct/2023:13:55:36 +0000] "GET /apache_pb.gif?x=1 HTTP/1.1" 200 2326 "http://www.example.com/start.html" "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/118.0 Safari/537.36""#;
    let mut m = Message::new_now();
    m.r#type = Some("nginx".into());
    m.payload = Some(line.into());
    let bytes = m.to_bytes();
    let view = MessageView::new(&bytes).expect("view");
    let mut g = c.benchmark_group("sandbox");
    g.throughput(Throughput::Elements(1));
    g.bench_function("lpeg_nginx_decoder_per_line", |b| {
        run(b, &mut sb, &view, false)
    });
    g.bench_function("lpeg_nginx_decoder_per_line_cpu", |b| {
        run(b, &mut sb, &view, true)
    });
    g.finish();
}

criterion_group!(benches, trivial_filter, nginx_decoder);
criterion_main!(benches);
