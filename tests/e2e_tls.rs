//! TLS end to end: TcpInput and TcpOutput with `use_tls`, against a throwaway CA made for each
//! test (rcgen), with rustls clients and with two hekate processes talking to each other.

mod common;

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

/// PEM files of a throwaway CA, a server certificate for localhost and 127.0.0.1, a client
/// certificate signed by the CA, and a client certificate signed by another CA.
struct Pki {
    dir: PathBuf,
}

impl Pki {
    fn new(dir: &Path) -> Pki {
        let dir = dir.join("pki");
        std::fs::create_dir_all(&dir).unwrap();
        let (ca, ca_key) = new_ca("hekate e2e CA");
        let (rogue, rogue_key) = new_ca("someone else's CA");
        let mut files = vec![("ca.pem".to_string(), ca.pem())];
        for (name, san, purpose, issuer, issuer_key) in [
            (
                "server",
                "localhost",
                rcgen::ExtendedKeyUsagePurpose::ServerAuth,
                &ca,
                &ca_key,
            ),
            (
                "client",
                "client.local",
                rcgen::ExtendedKeyUsagePurpose::ClientAuth,
                &ca,
                &ca_key,
            ),
            (
                "rogue",
                "client.local",
                rcgen::ExtendedKeyUsagePurpose::ClientAuth,
                &rogue,
                &rogue_key,
            ),
        ] {
            let key = rcgen::KeyPair::generate().unwrap();
            let mut params =
                rcgen::CertificateParams::new(vec![san.to_string(), "127.0.0.1".to_string()])
                    .unwrap();
            params.extended_key_usages = vec![purpose];
            let cert = params.signed_by(&key, issuer, issuer_key).unwrap();
            files.push((format!("{name}.pem"), cert.pem()));
            files.push((format!("{name}-key.pem"), key.serialize_pem()));
        }
        for (name, text) in files {
            std::fs::write(dir.join(name), text).unwrap();
        }
        Pki { dir }
    }

    /// The path of one of the files, for a config.
    fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    /// A rustls client trusting the CA, with the certificate `name` (`client`, `rogue`) or none.
    fn client(&self, name: Option<&str>) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(self.path("ca.pem")).unwrap() {
            roots.add(cert.unwrap()).unwrap();
        }
        let builder = rustls::ClientConfig::builder().with_root_certificates(roots);
        Arc::new(match name {
            None => builder.with_no_client_auth(),
            Some(name) => {
                let certs = CertificateDer::pem_file_iter(self.path(&format!("{name}.pem")))
                    .unwrap()
                    .map(Result::unwrap)
                    .collect();
                let key =
                    PrivateKeyDer::from_pem_file(self.path(&format!("{name}-key.pem"))).unwrap();
                builder.with_client_auth_cert(certs, key).unwrap()
            }
        })
    }
}

fn new_ca(name: &str) -> (rcgen::Certificate, rcgen::KeyPair) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    (params.self_signed(&key).unwrap(), key)
}

/// Sends `bytes` over a TLS connection, closes it with a close_notify and waits until hekate
/// closes its end. `Err` when the server refused the connection.
fn send_tls(port: u16, config: Arc<rustls::ClientConfig>, bytes: &[u8]) -> std::io::Result<()> {
    let tcp = TcpStream::connect(("127.0.0.1", port))?;
    tcp.set_read_timeout(Some(Duration::from_secs(20)))?;
    let conn = rustls::ClientConnection::new(config, ServerName::try_from("localhost").unwrap())
        .map_err(std::io::Error::other)?;
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    tls.write_all(bytes)?;
    tls.conn.send_close_notify();
    tls.flush()?;
    let mut rest = Vec::new();
    match tls.read_to_end(&mut rest) {
        // hekate closes without a close_notify of its own once it has read everything
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(()),
        other => other.map(|_| ()),
    }
}

/// `[hekate]`, then `sections`, then a FileOutput of the test messages (`out.hekad`) and one
/// of the reports, made every second (`reports.hekad`).
fn config(dir: &Path, sections: &str) -> String {
    format!(
        r#"
[hekate]
base_dir = "{base}"
report_interval = 1

{sections}

[FileOutput]
message_matcher = "Logger == 'e2e'"
path = "out.hekad"
flush_interval = 50

[reports]
type = "FileOutput"
message_matcher = "Type == 'heka.all-report'"
path = "reports.hekad"
flush_interval = 50
"#,
        base = dir.join("base").display()
    )
}

/// A TcpInput on `port` with TLS and the server certificate, plus `extra` `[tls]` lines.
fn tls_input(pki: &Pki, port: u16, extra: &str) -> String {
    format!(
        r#"
[TlsInput]
type = "TcpInput"
address = "127.0.0.1:{port}"
use_tls = true

[TlsInput.tls]
cert_file = "{cert}"
key_file = "{key}"
{extra}
"#,
        cert = pki.path("server.pem"),
        key = pki.path("server-key.pem"),
    )
}

/// The messages written to `out.hekad` by conn number.
fn received(dir: &Path, conn: u32) -> Vec<u64> {
    read_stream(&dir.join("base").join("out.hekad"))
        .iter()
        .filter_map(conn_seq)
        .filter(|(c, _)| *c == conn)
        .map(|(_, s)| s)
        .collect()
}

/// Waits until the messages 0..n of connection `conn` are in `out.hekad`, and checks they are
/// there once each, in order when `ordered` (one connection into hekate).
fn wait_all(hekate: &Hekate, dir: &Path, conn: u32, n: u64, ordered: bool) {
    assert!(
        wait_for(Duration::from_secs(20), || received(dir, conn).len() as u64
            >= n),
        "{} of {n} messages of connection {conn} arrived:\n{}",
        received(dir, conn).len(),
        hekate.stderr()
    );
    let mut got = received(dir, conn);
    if !ordered {
        got.sort_unstable();
    }
    let first_wrong = got.iter().zip(0..n).position(|(g, want)| *g != want);
    assert!(
        got.len() as u64 == n && first_wrong.is_none(),
        "connection {conn}: {} messages, the first out of place at index {first_wrong:?}",
        got.len()
    );
}

/// TlsInput's `TlsHandshakeFailedCount` in the newest report in `reports.hekad`.
fn handshake_failures(dir: &Path) -> Option<i64> {
    let report: serde_json::Value = read_stream(&dir.join("base").join("reports.hekad"))
        .into_iter()
        .rev()
        .find(|m| m.r#type.as_deref() == Some("heka.all-report"))
        .and_then(|m| serde_json::from_str(m.payload.as_deref()?).ok())?;
    report["inputs"]
        .as_array()?
        .iter()
        .find(|p| p["Name"] == "TlsInput")?["TlsHandshakeFailedCount"]["value"]
        .as_i64()
}

/// Waits until the reports count at least `n` failed handshakes.
fn wait_failures(hekate: &Hekate, dir: &Path, n: i64) {
    assert!(
        wait_for(Duration::from_secs(10), || handshake_failures(dir)
            .is_some_and(|f| f >= n)),
        "TlsHandshakeFailedCount {:?}, expected at least {n}:\n{}",
        handshake_failures(dir),
        hekate.stderr()
    );
}

/// Messages sent by a rustls client to a TcpInput with TLS all arrive, in order.
#[test]
fn messages_over_tls_all_arrive_in_order() {
    let dir = temp_dir("tls-in");
    let pki = Pki::new(&dir);
    let port = free_tcp_port();
    let mut hekate = Hekate::start(&dir, &config(&dir, &tls_input(&pki, port, "")), &[port]);
    let client = pki.client(None);
    for conn in 0..3 {
        let bytes = framed((0..500).map(|seq| message("tls", conn, seq, 200)));
        send_tls(port, Arc::clone(&client), &bytes).unwrap();
    }
    for conn in 0..3 {
        wait_all(&hekate, &dir, conn, 500, true);
    }
    assert!(hekate.terminate().success(), "{}", hekate.stderr());
}

/// One hekate's TcpOutput sends over TLS, with a client certificate, to another hekate's
/// TcpInput that requires one: every message arrives once, across reconnections.
#[test]
fn a_tls_output_delivers_to_a_tls_input_with_client_certificates() {
    let dir = temp_dir("tls-a");
    let pki = Pki::new(&dir);
    let port_a = free_tcp_port();
    let receiver = config(
        &dir,
        &tls_input(
            &pki,
            port_a,
            &format!(
                "client_auth = \"RequireAndVerifyClientCert\"\nclient_cafile = \"{}\"",
                pki.path("ca.pem")
            ),
        ),
    );
    let mut a = Hekate::start(&dir, &receiver, &[port_a]);

    let dir_b = temp_dir("tls-b");
    let port_b = free_tcp_port();
    let sender = format!(
        r#"
[hekate]
base_dir = "{base}"
report_interval = 3600

[TcpInput]
address = "127.0.0.1:{port_b}"

[upstream]
type = "TcpOutput"
message_matcher = "Logger == 'e2e'"
address = "127.0.0.1:{port_a}"
use_tls = true
reconnect_after = 300

[upstream.tls]
root_cafile = "{ca}"
cert_file = "{cert}"
key_file = "{key}"
"#,
        base = dir_b.join("base").display(),
        ca = pki.path("ca.pem"),
        cert = pki.path("client.pem"),
        key = pki.path("client-key.pem"),
    );
    let mut b = Hekate::start(&dir_b, &sender, &[port_b]);
    send_tcp(
        port_b,
        &framed((0..2000).map(|seq| message("relay", 7, seq, 100))),
    );
    // each reconnection may land on another shard of the receiver: order holds per connection
    wait_all(&a, &dir, 7, 2000, false);
    // the closes for reconnect_after are clean: no reset, no failed send
    assert!(!a.stderr().contains("reading from"), "{}", a.stderr());
    assert!(!b.stderr().contains("failed"), "{}", b.stderr());
    assert!(b.terminate().success(), "{}", b.stderr());
    assert!(a.terminate().success(), "{}", a.stderr());
}

/// A TcpOutput refuses a server whose certificate does not carry its `server_name`: it logs
/// the failed handshake, retries, and sends nothing.
#[test]
fn a_tls_output_refuses_a_server_certificate_for_another_name() {
    let dir = temp_dir("tls-name-a");
    let pki = Pki::new(&dir);
    let port_a = free_tcp_port();
    let mut a = Hekate::start(&dir, &config(&dir, &tls_input(&pki, port_a, "")), &[port_a]);
    let dir_b = temp_dir("tls-name-b");
    let port_b = free_tcp_port();
    let sender = format!(
        r#"
[hekate]
base_dir = "{base}"
report_interval = 3600

[TcpInput]
address = "127.0.0.1:{port_b}"

[upstream]
type = "TcpOutput"
message_matcher = "Logger == 'e2e'"
address = "127.0.0.1:{port_a}"
use_tls = true

[upstream.tls]
root_cafile = "{ca}"
server_name = "elsewhere.example"
"#,
        base = dir_b.join("base").display(),
        ca = pki.path("ca.pem"),
    );
    let b = Hekate::start(&dir_b, &sender, &[port_b]);
    send_tcp(port_b, &framed((0..10).map(|seq| message("x", 1, seq, 50))));
    assert!(
        wait_for(Duration::from_secs(20), || b
            .stderr()
            .contains("TLS handshake failed")),
        "{}",
        b.stderr()
    );
    assert!(
        b.stderr()
            .contains("not valid for name \"elsewhere.example\""),
        "{}",
        b.stderr()
    );
    assert!(received(&dir, 1).is_empty());
    drop(b);
    assert!(a.terminate().success(), "{}", a.stderr());
}

/// A plain-text client of a TLS input is disconnected, logged with its address and counted;
/// nothing it sent is routed, and the input keeps serving TLS clients.
#[test]
fn a_plain_text_client_is_refused_counted_and_tls_clients_still_get_through() {
    let dir = temp_dir("tls-plain");
    let pki = Pki::new(&dir);
    let port = free_tcp_port();
    let mut hekate = Hekate::start(&dir, &config(&dir, &tls_input(&pki, port, "")), &[port]);

    let mut plain = TcpStream::connect(("127.0.0.1", port)).unwrap();
    plain
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let local = plain.local_addr().unwrap();
    let _ = plain.write_all(&framed((0..10).map(|seq| message("plain", 1, seq, 50))));
    let mut answer = Vec::new();
    let ended = plain.read_to_end(&mut answer);
    assert!(
        !matches!(&ended, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "hekate kept the plain-text connection open"
    );
    let refused = format!("TLS handshake with {local} failed");
    assert!(
        wait_for(Duration::from_secs(10), || hekate
            .stderr()
            .contains(&refused)),
        "{}",
        hekate.stderr()
    );
    // the plain-text client, and the probe that waited for the port
    wait_failures(&hekate, &dir, 2);

    let bytes = framed((0..100).map(|seq| message("tls", 2, seq, 50)));
    send_tls(port, pki.client(None), &bytes).unwrap();
    wait_all(&hekate, &dir, 2, 100, true);
    assert!(received(&dir, 1).is_empty());
    assert!(hekate.terminate().success(), "{}", hekate.stderr());
}

/// With `client_auth = "RequireAndVerifyClientCert"`, clients without a certificate or with one
/// from another CA are refused; a client whose certificate the CA signed gets through.
#[test]
fn required_client_certificates_are_verified_against_client_cafile() {
    let dir = temp_dir("tls-mtls");
    let pki = Pki::new(&dir);
    let port = free_tcp_port();
    let extra = format!(
        "client_auth = \"RequireAndVerifyClientCert\"\nclient_cafile = \"{}\"",
        pki.path("ca.pem")
    );
    let mut hekate = Hekate::start(&dir, &config(&dir, &tls_input(&pki, port, &extra)), &[port]);
    let bytes = |conn| framed((0..50).map(move |seq| message("mtls", conn, seq, 50)));
    let none = send_tls(port, pki.client(None), &bytes(1));
    assert!(none.is_err(), "a client without a certificate got through");
    let rogue = send_tls(port, pki.client(Some("rogue")), &bytes(2));
    assert!(rogue.is_err(), "a certificate from another CA got through");
    send_tls(port, pki.client(Some("client")), &bytes(3)).unwrap();
    wait_all(&hekate, &dir, 3, 50, true);
    assert!(received(&dir, 1).is_empty() && received(&dir, 2).is_empty());
    wait_failures(&hekate, &dir, 3);
    assert!(hekate.terminate().success(), "{}", hekate.stderr());
}

/// `hekate check` refuses a TLS input whose certificate file does not exist, at its line.
#[test]
fn check_refuses_a_missing_certificate_file_at_its_line() {
    let dir = temp_dir("tls-check");
    let pki = Pki::new(&dir);
    let path = dir.join("hekate.toml");
    std::fs::write(
        &path,
        format!(
            "[TlsInput]\ntype = \"TcpInput\"\naddress = \"127.0.0.1:5566\"\nuse_tls = true\n\n\
             [TlsInput.tls]\ncert_file = \"{missing}\"\nkey_file = \"{key}\"\n",
            missing = dir.join("no-such-cert.pem").display(),
            key = pki.path("server-key.pem"),
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_hekate"))
        .args(["check", "-c"])
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("hekate.toml:7:13: cannot read tls.cert_file"),
        "{stderr}"
    );
    assert!(stderr.contains("no-such-cert.pem"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}
