//! LPeg decoders on real log lines: nginx combined access log, RFC 3164 syslog; and `re`. LPeg's
//! matching machine under the instruction limit (an exponential grammar terminates the sandbox
//! instead of stalling its thread).

mod common;

use std::time::{Duration, Instant};

use common::*;
use hekate_model::message::{FieldValue, Message, ValueType};
use hekate_sandbox::{ConfigValue, Outcome, PluginType, Sandbox};

fn decode(
    sb: &mut Sandbox,
    line: &str,
) -> (Result<Outcome, hekate_sandbox::Terminated>, Vec<Message>) {
    let (r, host) = process(sb, &payload_msg(line));
    (r, host.messages())
}

fn nginx() -> Sandbox {
    let mut cfg = config();
    cfg.config
        .insert("logger".into(), ConfigValue::from("nginx-access"));
    Sandbox::new(
        script("nginx_decoder.lua"),
        PluginType::Decoder,
        "NginxDecoder",
        cfg,
    )
    .unwrap()
}

#[test]
fn nginx_combined_lines() {
    let mut sb = nginx();
    let line = r#"93.184.216.34 - - [10/Oct/2023:13:55:36 +0200] "GET /index.html?q=1 HTTP/1.1" 200 2326 "https://example.com/start" "Mozilla/5.0 (X11; Linux x86_64; rv:109.0) Gecko/20100101 Firefox/118.0""#;
    let (r, msgs) = decode(&mut sb, line);
    assert_eq!(r, Ok(Outcome::Ok));
    let m = &msgs[0];
    assert_eq!(m.r#type.as_deref(), Some("nginx.access"));
    assert_eq!(m.logger.as_deref(), Some("nginx-access"));
    assert_eq!(
        m.timestamp, 1_696_938_936_000_000_000,
        "13:55:36 +0200 = 11:55:36Z"
    );
    assert_eq!(field_str(m, "remote_addr"), "93.184.216.34");
    assert_eq!(field_str(m, "remote_user"), "-");
    assert_eq!(field_str(m, "request"), "GET /index.html?q=1 HTTP/1.1");
    assert_eq!(field_str(m, "request_method"), "GET");
    assert_eq!(field_str(m, "request_url"), "/index.html?q=1");
    assert_eq!(field_str(m, "request_protocol"), "HTTP/1.1");
    assert_eq!(field(m, "status"), Some(FieldValue::Integer(200)));
    let bytes = field_of(m, "body_bytes_sent");
    assert_eq!(
        (bytes.kind(), bytes.value_integer.as_slice()),
        (ValueType::Integer, &[2326][..])
    );
    assert_eq!(bytes.representation.as_deref(), Some("B"));
    assert_eq!(field_str(m, "http_referer"), "https://example.com/start");
    assert_eq!(
        field_str(m, "http_user_agent"),
        "Mozilla/5.0 (X11; Linux x86_64; rv:109.0) Gecko/20100101 Firefox/118.0"
    );
    assert_eq!(m.fields.len(), 10);

    let more = [
        (
            r#"10.0.0.7 - alice [01/Jan/2024:00:00:00 +0000] "POST /api/v1/items HTTP/2.0" 201 0 "-" "curl/8.4.0""#,
            1_704_067_200,
            "POST",
            201,
        ),
        (
            r#"2001:db8::1 - - [29/Feb/2024:23:59:59 -0500] "HEAD / HTTP/1.0" 304 0 "-" "-""#,
            1_709_269_199,
            "HEAD",
            304,
        ),
    ];
    for (line, secs, method, status) in more {
        let (r, msgs) = decode(&mut sb, line);
        assert_eq!(r, Ok(Outcome::Ok), "{line}");
        assert_eq!(msgs[0].timestamp, secs * 1_000_000_000, "{line}");
        assert_eq!(field_str(&msgs[0], "request_method"), method);
        assert_eq!(field(&msgs[0], "status"), Some(FieldValue::Integer(status)));
    }

    let (r, msgs) = decode(&mut sb, "this is not an access log line");
    assert_eq!(
        r,
        Ok(Outcome::Failed {
            status: -1,
            message: Some("Failed to parse line".into())
        })
    );
    assert!(msgs.is_empty());
}

#[test]
fn syslog_rfc3164_lines() {
    let mut cfg = config();
    cfg.config.insert("year".into(), ConfigValue::Int(2023));
    let mut sb = Sandbox::new(
        script("syslog_decoder.lua"),
        PluginType::Decoder,
        "Syslog",
        cfg,
    )
    .unwrap();
    let cases = [
        (
            "<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8",
            (
                1_697_062_455i64,
                "mymachine",
                2,
                4,
                "su",
                None,
                "'su root' failed for lonvick on /dev/pts/8",
            ),
        ),
        (
            "<13>Feb  5 17:32:18 10.0.0.99 sshd[4721]: Accepted publickey for deploy from 10.0.0.1 port 50122 ssh2",
            (
                1_675_618_338,
                "10.0.0.99",
                5,
                1,
                "sshd",
                Some(4721),
                "Accepted publickey for deploy from 10.0.0.1 port 50122 ssh2",
            ),
        ),
        (
            "<165>Aug 24 05:34:00 web-01 CRON[12345]: (root) CMD (run-parts /etc/cron.hourly)",
            (
                1_692_855_240,
                "web-01",
                5,
                20,
                "CRON",
                Some(12345),
                "(root) CMD (run-parts /etc/cron.hourly)",
            ),
        ),
    ];
    for (line, (secs, host, sev, facility, prog, pid, msg)) in cases {
        let (r, msgs) = decode(&mut sb, line);
        assert_eq!(r, Ok(Outcome::Ok), "{line}");
        let m = &msgs[0];
        assert_eq!(m.r#type.as_deref(), Some("syslog"));
        assert_eq!(m.timestamp, secs * 1_000_000_000, "{line}");
        assert_eq!(m.hostname.as_deref(), Some(host));
        assert_eq!(m.severity, Some(sev));
        assert_eq!(m.pid, pid);
        assert_eq!(m.payload.as_deref(), Some(msg));
        assert_eq!(
            field(m, "syslogfacility"),
            Some(FieldValue::Integer(facility))
        );
        assert_eq!(field_str(m, "programname"), prog);
    }
    let (r, _) = decode(&mut sb, "Oct 11 22:14:15 no priority");
    assert_eq!(
        r,
        Ok(Outcome::Failed {
            status: -1,
            message: Some("not RFC 3164".into())
        })
    );
}

#[test]
fn re_module() {
    let sb = new(
        r#"local re = require "re"
local kv = re.compile([[ pairs <- {| pair (',' pair)* |} pair <- {| {:k: %w+ :} '=' {:v: %w* :} |} ]])
parsed = kv:match("a=1,b=two,c=")
found = re.find("hello world", "'wor'")
subst = re.gsub("a-b-c", "'-'", "+")
function process_message() return 0 end"#,
        PluginType::Filter,
    );
    assert!(sb.eval::<bool>("return #parsed == 3 and parsed[2].k == 'b' and parsed[2].v == 'two' and parsed[3].v == ''").unwrap());
    assert_eq!(sb.eval::<f64>("return found").unwrap(), 7.0);
    assert_eq!(sb.eval::<String>("return subst").unwrap(), "a+b+c");
    assert!(
        sb.eval::<bool>("return lpeg ~= nil and re ~= nil and type(lpeg.version()) == 'string'")
            .unwrap()
    );
}

#[test]
fn lpeg_errors_are_lua_errors() {
    let sb = new(
        r#"require "lpeg"
function process_message() return 0 end"#,
        PluginType::Filter,
    );
    let e: String = sb.eval("local ok, e = pcall(lpeg.P, {}) return e").unwrap();
    assert!(
        e.contains("grammar has no initial rule") || e.contains("rule"),
        "{e}"
    );
    let e: String = sb
        .eval("local ok, e = pcall(lpeg.match, 1, 'x') return tostring(e)")
        .unwrap();
    assert!(!e.is_empty());
}

/// A grammar of 40 nested ordered choices, each trying its inner rule twice (`r[i] <- x r[i-1]
/// '#' / x r[i-1] '$'`): on a line of a's the machine backtracks through 2^40 paths (stock LPeg:
/// 22 levels take 2 s on 1 KB, each level doubles). `x` (`'a' / 'bb'`: neither nullable nor of
/// a fixed length) keeps LPeg's compiler linear: its analyses (first sets, fixed lengths)
/// follow both alternatives of every rule they reach, so `r[i-1] '#' / r[i-1] '$'` would take as
/// long to compile as to match, and the compiler is not budgeted. `patt` is a global for the
/// script's `process_message`.
const NESTED_CHOICES: &str = r##"
local l = require "lpeg"
local g = { "r40", r0 = l.P"a"^0 }
local x = l.P"a" + "bb"
for i = 1, 40 do
    local inner = l.V("r" .. (i - 1))
    g["r" .. i] = x * inner * "#" + x * inner * "$"
end
patt = l.P(g)
"##;

fn a_line() -> String {
    "a".repeat(1000)
}

fn nested_choices(body: &str, cfg: hekate_sandbox::SandboxConfig) -> Sandbox {
    let code = format!(
        "{NESTED_CHOICES}function process_message()\n    local line = read_message(\"Payload\")\n{body}\n    return 0\nend"
    );
    try_new(&code, PluginType::Filter, cfg).unwrap()
}

#[test]
fn an_exponential_grammar_hits_the_instruction_limit() {
    let mut cfg = config();
    cfg.instruction_limit = 100_000;
    let mut sb = nested_choices("    if patt:match(line) then error('matched') end", cfg);
    let start = Instant::now();
    let reason = terminated(process(&mut sb, &payload_msg(&a_line())).0);
    assert_eq!(
        reason,
        "process_message() test.lua:12: instruction_limit exceeded"
    );
    // 100 000 steps take well under a millisecond; stock LPeg would run for days
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
    // the sandbox stays terminated
    assert_eq!(terminated(process(&mut sb, &sample()).0), reason);
}

#[test]
fn pcall_cannot_swallow_an_lpeg_matchs_limit() {
    let mut sb = nested_choices(
        r#"    local ok, err = pcall(lpeg.match, patt, line)
    inject_payload("txt", "caught", tostring(err))
    ok, err = pcall(function() return patt:match(line) end)
    inject_payload("txt", "caught", tostring(err))"#,
        config(),
    );
    let (r, host) = process(&mut sb, &payload_msg(&a_line()));
    let reason = terminated(r);
    assert!(reason.ends_with("instruction_limit exceeded"), "{reason}");
    assert!(
        host.messages().is_empty(),
        "the script ran on after the limit"
    );
}

#[test]
fn re_and_match_time_captures_are_budgeted_too() {
    for body in [
        // the same grammar written for re
        r#"    local re = require "re"
    local rules = {}
    for i = 40, 1, -1 do
        rules[#rules + 1] = ("r%d <- x r%d '#' / x r%d '$'"):format(i, i - 1, i - 1)
    end
    rules[#rules + 1] = "x <- 'a' / 'bb'"
    rules[#rules + 1] = "r0 <- 'a'*"
    re.match(line, table.concat(rules, "\n"))"#,
        // an lpeg.Cmt callback's instructions and the machine's steps share one budget
        r##"    local n = 0
    local cb = lpeg.Cmt(lpeg.P"a", function(s, i) for k = 1, 10 do n = n + k end return i end)
    local many = { "r20", r0 = cb^0 }
    local x = lpeg.P"a" + "bb"
    for i = 1, 20 do
        many["r" .. i] = x * lpeg.V("r" .. (i - 1)) * "#" + x * lpeg.V("r" .. (i - 1)) * "$"
    end
    lpeg.match(lpeg.P(many), line)"##,
    ] {
        let mut sb = nested_choices(body, config());
        let reason = terminated(process(&mut sb, &payload_msg(&a_line())).0);
        assert!(
            reason.ends_with("instruction_limit exceeded"),
            "{body}: {reason}"
        );
    }
}

#[test]
fn lpeg_steps_count_in_max_instructions() {
    // 'a'^0 'b' on 100 000 a's: one step per character the span consumes, then a failure
    let code = r#"
local l = require "lpeg"
local patt = l.P"a"^0 * "b"
s = string.rep("a", 100000)
function process_message()
    if patt:match(s) then error("matched") end
    return 0
end"#;
    let mut sb = try_new(code, PluginType::Filter, config()).unwrap();
    process_ok(&mut sb, &sample());
    let max = sb.stats().max_instructions;
    assert!((100_000..=102_000).contains(&max), "{max}");
}

#[test]
fn inputs_lpeg_matches_have_no_instruction_limit() {
    let code = r#"
local l = require "lpeg"
local patt = l.P"a"^0 * "b"
function process_message()
    local s = string.rep("a", 3000000)
    if patt:match(s) then error("matched") end
    return 0
end"#;
    let mut cfg = config();
    cfg.memory_limit = 0;
    let mut sb = try_new(code, PluginType::Input, cfg).unwrap();
    process_ok(&mut sb, &sample());
}
