//! A headless Chromium driven through ChromeDriver's WebDriver HTTP API (W3C), with nothing but
//! std and serde_json: start a session, load a page, run a script in it, take a screenshot.
//! `scripts/setup` installs Debian's `chromium` and `chromium-driver`. Runs as root too
//! (`--no-sandbox`).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

/// A Chromium session; the browser and its driver stop when it is dropped.
pub struct Chromium {
    driver: Child,
    port: u16,
    session: String,
}

impl Chromium {
    /// Starts ChromeDriver and a headless Chromium of `width`×`height` pixels.
    pub fn start(width: u32, height: u32) -> Chromium {
        let port = super::free_tcp_port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver is installed (scripts/setup installs chromium-driver)");
        let mut c = Chromium {
            driver,
            port,
            session: String::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        // A connection accepted while ChromeDriver starts may never be answered: ask again.
        while !c
            .call_within("GET", "/status", None, Duration::from_millis(500))
            .is_ok_and(|v| v["value"]["ready"] == true)
        {
            assert!(Instant::now() < deadline, "chromedriver does not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        let binary = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .expect("chromium is installed (scripts/setup installs it)");
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": binary,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu",
                    "--disable-dev-shm-usage", format!("--window-size={width},{height}"),
                ],
            },
        }}});
        let v = c
            .call("POST", "/session", Some(caps))
            .expect("a Chromium session starts");
        c.session = v["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {v}"))
            .to_string();
        c
    }

    /// Loads `url` (returns once the page's load event fired).
    pub fn goto(&self, url: &str) {
        self.command("POST", "url", json!({ "url": url }));
    }

    /// Runs `script` (a function body) in the page and returns what it returns.
    pub fn eval(&self, script: &str) -> Value {
        self.command(
            "POST",
            "execute/sync",
            json!({ "script": script, "args": [] }),
        )
    }

    /// Saves a PNG of the viewport at `path`.
    pub fn screenshot(&self, path: &Path) {
        let v = self.command("GET", "screenshot", Value::Null);
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().expect("a base64 screenshot"))
            .expect("base64");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(path, png).unwrap();
    }

    fn command(&self, method: &str, what: &str, body: Value) -> Value {
        let path = format!("/session/{}/{what}", self.session);
        let body = (method == "POST").then_some(body);
        let v = self
            .call(method, &path, body)
            .unwrap_or_else(|e| panic!("WebDriver {what}: {e}"));
        if v["value"].get("error").is_some() {
            panic!("WebDriver {what}: {}", v["value"]);
        }
        v["value"].clone()
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        self.call_within(method, path, body, Duration::from_secs(30))
    }

    fn call_within(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        timeout: Duration,
    ) -> Result<Value, String> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(timeout)).unwrap();
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .map_err(|e| e.to_string())?;
        // ChromeDriver keeps the connection open after its answer: read what Content-Length says.
        let mut raw = Vec::new();
        let mut chunk = [0u8; 16 * 1024];
        let body = loop {
            let n = s.read(&mut chunk).map_err(|e| e.to_string())?;
            if n == 0 {
                return Err("the connection closed before the answer ended".into());
            }
            raw.extend_from_slice(&chunk[..n]);
            let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
                continue;
            };
            let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .ok_or("no Content-Length")?;
            if raw.len() >= end + 4 + length {
                break String::from_utf8_lossy(&raw[end + 4..end + 4 + length]).into_owned();
            }
        };
        serde_json::from_str(&body).map_err(|e| format!("{e}: {body}"))
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self.call("DELETE", &format!("/session/{}", self.session), None);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
