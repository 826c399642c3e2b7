//! `hekate sbmgr`: load or unload a filter of a running hekate's SandboxManagerFilter (Heka's
//! `heka-sbmgr`). Sends one signed, Heka-framed `heka.control.sandbox` message over TCP.
//!
//! ```text
//! hekate sbmgr -c sbmgr.toml --action load --script counter.lua --scriptconfig counter.toml
//! hekate sbmgr -c sbmgr.toml --action unload --filtername Counter
//! ```
//!
//! `sbmgr.toml` is heka-sbmgr's configuration:
//!
//! ```toml
//! ip_address = "127.0.0.1:5565"
//!
//! [signer]
//! name = "ops"
//! hmac_hash = "md5"   # or "sha1"
//! hmac_key = "a shared secret"
//! version = 0
//! ```
//!
//! The receiving TcpInput trusts that key with `[TcpInput.signer.ops_0] hmac_key = "…"`, and the
//! manager sets `message_signer = "ops"`. `use_tls = true` is refused: TLS is not supported yet.

use std::io::Write as _;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use hekate_model::framing::{SigningKey, encode_record, hash_function_from_name};
use hekate_model::message::{Field, Message};
use serde::Deserialize;

/// What to ask the sandbox manager.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Action {
    /// Start a filter: `--script` and `--scriptconfig` are sent.
    Load,
    /// Stop a filter: `--filtername` is sent.
    Unload,
}

/// heka-sbmgr's configuration file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SbmgrConfig {
    /// Where the hekate TcpInput listens.
    ip_address: String,
    /// TLS is not supported yet; `true` is refused.
    #[serde(default)]
    use_tls: bool,
    /// The signer of the control message.
    signer: Option<SignerConfig>,
}

/// `[signer]`: Heka's message signing configuration.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SignerConfig {
    name: String,
    #[serde(default = "default_hash")]
    hmac_hash: String,
    hmac_key: String,
    #[serde(default)]
    version: u32,
}

fn default_hash() -> String {
    "md5".into()
}

/// What the command line asks for.
#[derive(Debug)]
pub struct Request {
    /// The configuration file.
    pub config: PathBuf,
    /// Load or unload.
    pub action: Action,
    /// The Lua script (load).
    pub script: Option<PathBuf>,
    /// The filter's TOML section (load).
    pub script_config: Option<PathBuf>,
    /// The filter's name (unload).
    pub filter_name: Option<String>,
}

/// Runs `hekate sbmgr`.
pub fn run(request: &Request) -> ExitCode {
    match send(request) {
        Ok(addr) => {
            println!(
                "hekate sbmgr: {} request sent to {addr}",
                match request.action {
                    Action::Load => "load",
                    Action::Unload => "unload",
                }
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("hekate sbmgr: {e}");
            ExitCode::FAILURE
        }
    }
}

fn read(path: &Path, what: &str) -> Result<String, String> {
    std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the {what} {}: {e}", path.display()))
}

/// The control message for `request`.
fn control_message(request: &Request) -> Result<Message, String> {
    let mut m = Message::new_now();
    m.r#type = Some("heka.control.sandbox".into());
    m.logger = Some("hekad".into());
    m.hostname = Some(hekate_config::os_hostname());
    match request.action {
        Action::Load => {
            let script = request
                .script
                .as_deref()
                .ok_or("--action load needs --script (the Lua file)")?;
            let config = request
                .script_config
                .as_deref()
                .ok_or("--action load needs --scriptconfig (the filter's TOML section)")?;
            m.payload = Some(read(script, "script")?);
            m.fields.push(
                Field::string("config", read(config, "script config")?).with_representation("toml"),
            );
        }
        Action::Unload => {
            let name = request
                .filter_name
                .as_deref()
                .ok_or("--action unload needs --filtername")?;
            m.fields.push(Field::string("name", name));
        }
    }
    m.fields.push(Field::string(
        "action",
        match request.action {
            Action::Load => "load",
            Action::Unload => "unload",
        },
    ));
    Ok(m)
}

fn send(request: &Request) -> Result<String, String> {
    let text = read(&request.config, "configuration")?;
    let config: SbmgrConfig = toml::from_str(&text)
        .map_err(|e| format!("{}: {}", request.config.display(), e.message()))?;
    if config.use_tls {
        return Err("use_tls = true is not supported yet".into());
    }
    let key = config.signer.as_ref().map(|s| {
        SigningKey::new(
            s.name.clone(),
            s.version,
            hash_function_from_name(&s.hmac_hash),
            s.hmac_key.as_bytes(),
        )
    });
    let msg = control_message(request)?;
    let mut record = Vec::new();
    encode_record(&msg.to_bytes(), key.as_ref(), &mut record).map_err(|e| e.to_string())?;
    let addr = config.ip_address.clone();
    let mut stream =
        TcpStream::connect(&addr).map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    let _ = stream.set_write_timeout(Some(Duration::from_secs(10)));
    stream
        .write_all(&record)
        .and_then(|()| stream.flush())
        .map_err(|e| format!("cannot send to {addr}: {e}"))?;
    Ok(addr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_and_unload_messages_carry_what_the_manager_reads() {
        let dir = std::env::temp_dir().join(format!("hekate-sbmgr-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("f.lua"), "function process_message() return 0 end").unwrap();
        std::fs::write(dir.join("f.toml"), "[F]\ntype = \"SandboxFilter\"\n").unwrap();
        let mut r = Request {
            config: dir.join("sbmgr.toml"),
            action: Action::Load,
            script: Some(dir.join("f.lua")),
            script_config: Some(dir.join("f.toml")),
            filter_name: None,
        };
        let m = control_message(&r).unwrap();
        assert_eq!(m.r#type.as_deref(), Some("heka.control.sandbox"));
        assert!(m.payload.as_deref().unwrap().contains("process_message"));
        let field = |m: &Message, n: &str| m.find_first_field(n).unwrap().value_string[0].clone();
        assert_eq!(field(&m, "action"), "load");
        assert!(field(&m, "config").starts_with("[F]"));
        r.action = Action::Unload;
        assert!(control_message(&r).is_err());
        r.filter_name = Some("F".into());
        let m = control_message(&r).unwrap();
        assert_eq!(
            (field(&m, "action"), field(&m, "name")),
            ("unload".into(), "F".into())
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}
