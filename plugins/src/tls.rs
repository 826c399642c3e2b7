//! TLS for TcpInput and TcpOutput: Heka's `use_tls` and `[<section>.tls]` options.
//!
//! The options are turned into a rustls server (TcpInput) or client (TcpOutput) configuration
//! when the plugin is built, so `hekate check` reads the certificate, key and CA files and
//! refuses what rustls cannot do, at the offending line. rustls runs on the *ring* crypto
//! provider and speaks TLS 1.2 and 1.3 only, with ECDHE key exchange and AEAD ciphers; Heka's
//! Go options map onto it as each field's doc says. Where Go would quietly speak an older or
//! weaker protocol (`min_version = "TLS10"`) or skip a check the config seems to ask for
//! (`client_cafile` without a verifying `client_auth`), the config is refused with the reason.
//!
//! A connection's handshake runs on the task that serves it, under [`within`] a time limit, so
//! that a peer that connects and sends nothing cannot hold the task.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hekate_config::{ConfigError, PluginSection};
use hekate_engine::plugin::{OptionSpec, options_of};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::ring::cipher_suite as ring_suites;
use rustls::crypto::{
    CryptoProvider, WebPkiSupportedAlgorithms, verify_tls12_signature, verify_tls13_signature,
};
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{NoServerSessionStorage, WebPkiClientVerifier};
use rustls::{
    ClientConfig, DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig,
    SignatureScheme, SupportedCipherSuite, SupportedProtocolVersion,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How long a peer may take to complete the TLS handshake.
pub(crate) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

fn default_true() -> bool {
    true
}

fn oldest_version() -> TlsVersion {
    TlsVersion::Tls12
}

fn newest_version() -> TlsVersion {
    TlsVersion::Tls13
}

/// The `[<section>.tls]` subsection (Heka's `tls` options), used when `use_tls = true`. File
/// paths are used as written: a relative path is taken from hekate's working directory, as in
/// Heka.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TlsOptions {
    /// TcpOutput: the name the server's certificate must be valid for, also sent as SNI
    /// (default: the host part of `address`, a DNS name or an IP address). Ignored by TcpInput.
    #[serde(default)]
    pub(crate) server_name: Option<String>,
    /// PEM file with a certificate chain, leaf first: the server's certificate (TcpInput,
    /// required), or the client certificate TcpOutput presents when the server asks for one
    /// (optional, with `key_file`).
    #[serde(default)]
    pub(crate) cert_file: Option<String>,
    /// PEM file with the private key of `cert_file` (PKCS#8, PKCS#1 or SEC1).
    #[serde(default)]
    pub(crate) key_file: Option<String>,
    /// TcpInput: the certificate clients must show. "NoClientCert": none. "RequestClientCert":
    /// one is asked for, neither required nor checked. "RequireAnyClientCert": one is required,
    /// not checked. "VerifyClientCertIfGiven": one is not required, but checked against
    /// `client_cafile` when shown. "RequireAndVerifyClientCert": one is required and checked
    /// against `client_cafile`. Ignored by TcpOutput.
    #[serde(default)]
    pub(crate) client_auth: ClientAuth,
    /// TLS 1.2 cipher suites by Go name, e.g. "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256" (the
    /// "TLS_" prefix may be left out), most preferred first; empty for every suite rustls
    /// offers. rustls implements the ECDHE suites with AES-GCM or ChaCha20-Poly1305 only: listed
    /// suites it lacks (RC4, 3DES, CBC, RSA key exchange) are skipped, and a list without one it
    /// implements is refused. TLS 1.3 suites are always on, as in Go.
    #[serde(default)]
    pub(crate) ciphers: Vec<String>,
    /// TcpOutput: accept any server certificate, whoever signed it and whatever name it
    /// carries. DANGEROUS: anyone between hekate and the server can then read and change the
    /// stream; for tests only. Ignored by TcpInput.
    #[serde(default)]
    pub(crate) insecure_skip_verify: bool,
    /// TcpInput: pick the cipher suite by the server's preference (`ciphers`, else rustls's
    /// order, strongest first) rather than the client's. Ignored by TcpOutput.
    #[serde(default = "default_true")]
    pub(crate) prefer_server_ciphers: bool,
    /// Turn off session resumption (TLS 1.2 session IDs and tickets, TLS 1.3 tickets): every
    /// connection makes a full handshake.
    #[serde(default)]
    pub(crate) session_tickets_disabled: bool,
    /// Accepted for Heka configs and ignored: rustls makes its own ticket keys and rotates them
    /// every 6 hours, so tickets are not shared with other processes (a client holding one from
    /// elsewhere makes a full handshake).
    #[serde(default)]
    #[allow(dead_code, reason = "accepted for Heka configs and ignored")]
    pub(crate) session_ticket_key: Option<String>,
    /// Oldest TLS version to speak: "TLS12" or "TLS13". rustls speaks TLS 1.2 and 1.3 only, so
    /// "SSL30", "TLS10" and "TLS11" are refused.
    #[serde(default = "oldest_version")]
    pub(crate) min_version: TlsVersion,
    /// Newest TLS version to speak: "TLS13" or "TLS12" ("SSL30", "TLS10" and "TLS11" are
    /// refused).
    #[serde(default = "newest_version")]
    pub(crate) max_version: TlsVersion,
    /// TcpInput: PEM file with the CA certificates that sign client certificates, for
    /// `client_auth` "VerifyClientCertIfGiven" or "RequireAndVerifyClientCert" (refused with the
    /// other modes, which would not check it). Ignored by TcpOutput.
    #[serde(default)]
    pub(crate) client_cafile: Option<String>,
    /// TcpOutput: PEM file with the CA certificates the server's certificate must chain to
    /// (default: the system's CA certificates). Ignored by TcpInput.
    #[serde(default)]
    pub(crate) root_cafile: Option<String>,
}

impl TlsOptions {
    /// The files these options name (certificate, key, CA files), for a reload to see them
    /// change ([`BuildContext::reads_file`](hekate_engine::plugin::BuildContext::reads_file)).
    pub(crate) fn files(&self) -> impl Iterator<Item = &str> {
        [
            &self.cert_file,
            &self.key_file,
            &self.client_cafile,
            &self.root_cafile,
        ]
        .into_iter()
        .filter_map(|f| f.as_deref())
    }
}

impl Default for TlsOptions {
    /// The same defaults as an empty `[tls]` table.
    fn default() -> Self {
        Self {
            server_name: None,
            cert_file: None,
            key_file: None,
            client_auth: ClientAuth::default(),
            ciphers: Vec::new(),
            insecure_skip_verify: false,
            prefer_server_ciphers: true,
            session_tickets_disabled: false,
            session_ticket_key: None,
            min_version: oldest_version(),
            max_version: newest_version(),
            client_cafile: None,
            root_cafile: None,
        }
    }
}

/// Heka's (Go's) `client_auth` modes.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub(crate) enum ClientAuth {
    #[default]
    NoClientCert,
    RequestClientCert,
    RequireAnyClientCert,
    VerifyClientCertIfGiven,
    RequireAndVerifyClientCert,
}

/// Heka's version names, oldest first.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize, JsonSchema,
)]
pub(crate) enum TlsVersion {
    #[serde(rename = "SSL30")]
    Ssl30,
    #[serde(rename = "TLS10")]
    Tls10,
    #[serde(rename = "TLS11")]
    Tls11,
    #[serde(rename = "TLS12")]
    Tls12,
    #[serde(rename = "TLS13")]
    Tls13,
}

impl TlsVersion {
    fn name(self) -> &'static str {
        match self {
            TlsVersion::Ssl30 => "SSL30",
            TlsVersion::Tls10 => "TLS10",
            TlsVersion::Tls11 => "TLS11",
            TlsVersion::Tls12 => "TLS12",
            TlsVersion::Tls13 => "TLS13",
        }
    }
}

/// A plugin's options followed by the `tls.*` ones, for `hekate plugins` (the options struct
/// lists `tls` as one table).
pub(crate) fn with_tls_options(mut options: Vec<OptionSpec>) -> Vec<OptionSpec> {
    let at = options
        .iter()
        .position(|o| o.name == "tls")
        .map_or(options.len(), |i| i + 1);
    let tls = options_of::<TlsOptions>().into_iter().map(|mut o| {
        o.name = format!("tls.{}", o.name);
        o
    });
    options.splice(at..at, tls);
    options
}

/// Builds errors located in one section, at `tls.<key>`.
struct Located<'a> {
    section: &'a PluginSection,
    /// Whether the section has a `[tls]` table (errors about a missing option point at it).
    has_table: bool,
}

impl Located<'_> {
    /// An error at the value of `tls.<key>` (at `[tls]`, or `use_tls`, when unset).
    fn at(&self, key: &str, message: impl std::fmt::Display) -> ConfigError {
        let path = format!("tls.{key}");
        let message = format!("{message} in section [{}]", self.section.name());
        if self.section.value_span(&path).is_some() {
            self.section.error_at_value(&path, message)
        } else {
            self.missing(message)
        }
    }

    /// An error about an option that is not set.
    fn missing(&self, message: impl Into<String>) -> ConfigError {
        if self.has_table {
            self.section.error_at_key("tls", message)
        } else {
            self.section.error_at_key("use_tls", message)
        }
    }
}

/// What one entry of `ciphers` is to rustls.
#[derive(Debug, Clone, Copy)]
enum GoCipher {
    /// A TLS 1.2 suite rustls implements.
    Implemented(SupportedCipherSuite),
    /// A TLS 1.3 suite: always on.
    Tls13,
    /// A suite rustls does not implement (RC4, 3DES, CBC, RSA key exchange).
    Lacking,
}

/// The TLS 1.2 suites rustls implements, by Go name.
fn implemented_suites() -> [(&'static str, SupportedCipherSuite); 6] {
    [
        (
            "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
            ring_suites::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        ),
        (
            "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
            ring_suites::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        ),
        (
            "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
            ring_suites::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        ),
        (
            "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
            ring_suites::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        ),
        (
            "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
            ring_suites::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        ),
        (
            "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
            ring_suites::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
        ),
    ]
}

/// Go's suites that rustls does not implement.
const LACKING_SUITES: &[&str] = &[
    "TLS_RSA_WITH_RC4_128_SHA",
    "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
    "TLS_RSA_WITH_AES_128_CBC_SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA",
    "TLS_RSA_WITH_AES_128_CBC_SHA256",
    "TLS_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_RC4_128_SHA",
    "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
    "TLS_FALLBACK_SCSV",
];

/// Go's TLS 1.3 suites.
const TLS13_SUITES: &[&str] = &[
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
];

/// Looks a Go cipher suite name up (case-insensitive, "TLS_" optional, Go's short ChaCha20
/// names too); `None` when Go has no such suite.
fn go_cipher(name: &str) -> Option<GoCipher> {
    let mut name = name.trim().to_ascii_uppercase();
    if !name.starts_with("TLS_") {
        name.insert_str(0, "TLS_");
    }
    if name.ends_with("_CHACHA20_POLY1305") {
        name.push_str("_SHA256");
    }
    if let Some((_, suite)) = implemented_suites().into_iter().find(|(n, _)| *n == name) {
        return Some(GoCipher::Implemented(suite));
    }
    if TLS13_SUITES.contains(&name.as_str()) {
        return Some(GoCipher::Tls13);
    }
    LACKING_SUITES
        .contains(&name.as_str())
        .then_some(GoCipher::Lacking)
}

/// The crypto provider (ring, with the suites `ciphers` allows) and the protocol versions
/// `min_version` and `max_version` allow.
fn provider(
    at: &Located<'_>,
    tls: &TlsOptions,
) -> Result<(Arc<CryptoProvider>, Vec<&'static SupportedProtocolVersion>), ConfigError> {
    for (key, v) in [
        ("min_version", tls.min_version),
        ("max_version", tls.max_version),
    ] {
        if v < TlsVersion::Tls12 {
            return Err(at.at(
                key,
                format!(
                    "tls.{key} = \"{}\" is not supported: hekate's TLS (rustls) speaks TLS 1.2 and \
                     1.3 only, as the older versions are broken; use \"TLS12\" or \"TLS13\"",
                    v.name()
                ),
            ));
        }
    }
    let (min, max) = (tls.min_version, tls.max_version);
    if min > max {
        return Err(at.at(
            "min_version",
            format!(
                "tls.min_version = \"{}\" is newer than tls.max_version = \"{}\"",
                min.name(),
                max.name()
            ),
        ));
    }
    let mut versions = Vec::new();
    if min <= TlsVersion::Tls12 {
        versions.push(&rustls::version::TLS12);
    }
    if max >= TlsVersion::Tls13 {
        versions.push(&rustls::version::TLS13);
    }

    // rustls deprecates its ring provider for lacking post-quantum key exchange; the other
    // provider (aws-lc-rs) needs cmake and a C toolchain to build, so hekate stays on ring.
    #[allow(deprecated)]
    let mut provider = rustls::crypto::ring::default_provider();
    if !tls.ciphers.is_empty() {
        let mut tls12: Vec<SupportedCipherSuite> = Vec::new();
        for (i, name) in tls.ciphers.iter().enumerate() {
            match go_cipher(name) {
                None => {
                    let known: Vec<&str> = implemented_suites().iter().map(|(n, _)| *n).collect();
                    return Err(at.section.error_at_value(
                        &format!("tls.ciphers.{i}"),
                        format!(
                            "unknown cipher suite `{name}` in tls.ciphers in section [{}]; \
                             rustls implements {}",
                            at.section.name(),
                            known.join(", ")
                        ),
                    ));
                }
                Some(GoCipher::Implemented(suite)) => {
                    if !tls12.contains(&suite) {
                        tls12.push(suite);
                    }
                }
                Some(GoCipher::Tls13 | GoCipher::Lacking) => {}
            }
        }
        if tls12.is_empty() && versions.contains(&&rustls::version::TLS12) {
            return Err(at.at(
                "ciphers",
                "none of tls.ciphers is a TLS 1.2 suite rustls implements (ECDHE with AES-GCM \
                 or ChaCha20-Poly1305, e.g. \"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256\"); list one, \
                 or leave ciphers empty for rustls's own choice",
            ));
        }
        provider
            .cipher_suites
            .retain(|s| matches!(s, SupportedCipherSuite::Tls13(_)));
        provider.cipher_suites.extend(tls12);
    }
    Ok((Arc::new(provider), versions))
}

/// Reads a file named by `tls.<key>`.
fn read_file(at: &Located<'_>, key: &str, path: &str) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(path).map_err(|e| at.at(key, format!("cannot read tls.{key} `{path}`: {e}")))
}

/// Why PEM text could not be parsed, in words.
fn pem_problem(e: &pem::Error) -> String {
    match e {
        pem::Error::MissingSectionEnd { end_marker } => {
            format!("no `{}` line", String::from_utf8_lossy(end_marker))
        }
        pem::Error::IllegalSectionStart { line } => {
            format!("bad `{}` line", String::from_utf8_lossy(line))
        }
        pem::Error::Base64Decode(e) => format!("bad base64 ({e})"),
        other => other.to_string(),
    }
}

/// The certificates of the PEM file named by `tls.<key>`.
fn load_certs(
    at: &Located<'_>,
    key: &str,
    path: &str,
) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let text = read_file(at, key, path)?;
    let certs = CertificateDer::pem_slice_iter(&text)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            at.at(
                key,
                format!("tls.{key} `{path}` is not valid PEM: {}", pem_problem(&e)),
            )
        })?;
    if certs.is_empty() {
        return Err(at.at(
            key,
            format!("tls.{key} `{path}` holds no PEM certificate (-----BEGIN CERTIFICATE-----)"),
        ));
    }
    Ok(certs)
}

/// The private key of the PEM file named by `tls.<key>`.
fn load_key(
    at: &Located<'_>,
    key: &str,
    path: &str,
) -> Result<PrivateKeyDer<'static>, ConfigError> {
    let text = read_file(at, key, path)?;
    PrivateKeyDer::from_pem_slice(&text).map_err(|e| match e {
        pem::Error::NoItemsFound => at.at(
            key,
            format!(
                "tls.{key} `{path}` holds no PEM private key (PKCS#8 \"PRIVATE KEY\", PKCS#1 \
                 \"RSA PRIVATE KEY\" or SEC1 \"EC PRIVATE KEY\")"
            ),
        ),
        e => at.at(
            key,
            format!("tls.{key} `{path}` is not valid PEM: {}", pem_problem(&e)),
        ),
    })
}

/// The trust anchors of the PEM file named by `tls.<key>`.
fn load_roots(at: &Located<'_>, key: &str, path: &str) -> Result<RootCertStore, ConfigError> {
    let mut roots = RootCertStore::empty();
    for cert in load_certs(at, key, path)? {
        roots.add(cert).map_err(|e| {
            at.at(
                key,
                format!("tls.{key} `{path}` holds a certificate that cannot be a CA: {e}"),
            )
        })?;
    }
    Ok(roots)
}

/// The certificate chain and key of `cert_file` and `key_file`, both or neither.
#[allow(clippy::type_complexity)]
fn certificate(
    at: &Located<'_>,
    tls: &TlsOptions,
) -> Result<Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>, ConfigError> {
    match (&tls.cert_file, &tls.key_file) {
        (None, None) => Ok(None),
        (Some(_), None) => Err(at.at(
            "cert_file",
            "tls.cert_file needs tls.key_file, the certificate's private key",
        )),
        (None, Some(_)) => Err(at.at(
            "key_file",
            "tls.key_file needs tls.cert_file, the certificate of the key",
        )),
        (Some(cert), Some(key)) => Ok(Some((
            load_certs(at, "cert_file", cert)?,
            load_key(at, "key_file", key)?,
        ))),
    }
}

/// A rustls error about `cert_file` and `key_file`, located.
fn certificate_error(at: &Located<'_>, e: rustls::Error) -> ConfigError {
    match e {
        rustls::Error::InconsistentKeys(_) => at.at(
            "key_file",
            "the private key in tls.key_file does not belong to the certificate in tls.cert_file",
        ),
        e => at.at(
            "cert_file",
            format!("cannot use tls.cert_file with tls.key_file: {e}"),
        ),
    }
}

/// TcpInput's TLS: the server configuration `use_tls` and `tls` ask for, `None` for plain TCP.
pub(crate) fn server_config(
    section: &PluginSection,
    use_tls: bool,
    tls: Option<&TlsOptions>,
) -> Result<Option<Arc<ServerConfig>>, ConfigError> {
    if !enabled(section, use_tls, tls.is_some()) {
        return Ok(None);
    }
    let at = Located {
        section,
        has_table: tls.is_some(),
    };
    let defaults = TlsOptions::default();
    let tls = tls.unwrap_or(&defaults);
    let (provider, versions) = provider(&at, tls)?;
    let Some((certs, key)) = certificate(&at, tls)? else {
        return Err(at.missing(format!(
            "use_tls = true needs tls.cert_file and tls.key_file, the server's certificate and \
             private key (PEM), in section [{}]",
            section.name()
        )));
    };
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&versions)
        .map_err(|e| at.at("ciphers", format!("cannot set up TLS: {e}")))?;
    let verifying = matches!(
        tls.client_auth,
        ClientAuth::VerifyClientCertIfGiven | ClientAuth::RequireAndVerifyClientCert
    );
    let builder = match (&tls.client_cafile, verifying) {
        (Some(_), false) => {
            return Err(at.at(
                "client_cafile",
                format!(
                    "tls.client_cafile is set but client_auth = \"{:?}\" does not verify client \
                     certificates; set client_auth = \"RequireAndVerifyClientCert\" (or \
                     \"VerifyClientCertIfGiven\"), or remove client_cafile",
                    tls.client_auth
                ),
            ));
        }
        (None, true) => {
            return Err(at.at(
                "client_auth",
                format!(
                    "tls.client_auth = \"{:?}\" needs tls.client_cafile, the CA certificates \
                     (PEM) that sign client certificates",
                    tls.client_auth
                ),
            ));
        }
        (Some(cafile), true) => {
            let roots = load_roots(&at, "client_cafile", cafile)?;
            let mut verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider));
            if tls.client_auth == ClientAuth::VerifyClientCertIfGiven {
                verifier = verifier.allow_unauthenticated();
            }
            let verifier = verifier.build().map_err(|e| {
                at.at(
                    "client_cafile",
                    format!("cannot use tls.client_cafile: {e}"),
                )
            })?;
            builder.with_client_cert_verifier(verifier)
        }
        (None, false) => match tls.client_auth {
            ClientAuth::RequestClientCert | ClientAuth::RequireAnyClientCert => builder
                .with_client_cert_verifier(Arc::new(AnyClientCertificate {
                    mandatory: tls.client_auth == ClientAuth::RequireAnyClientCert,
                    algorithms: provider.signature_verification_algorithms,
                })),
            _ => builder.with_no_client_auth(),
        },
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| certificate_error(&at, e))?;
    config.ignore_client_order = tls.prefer_server_ciphers;
    if tls.session_tickets_disabled {
        config.session_storage = Arc::new(NoServerSessionStorage {});
        config.send_tls13_tickets = 0;
    } else {
        // Stateless tickets: a client resumes on whichever shard the kernel hands it to.
        config.ticketer = rustls::crypto::ring::Ticketer::new()
            .map_err(|e| at.missing(format!("cannot set up TLS session tickets: {e}")))?;
    }
    Ok(Some(Arc::new(config)))
}

/// TcpOutput's TLS: the client configuration and the server's name.
#[derive(Debug, Clone)]
pub(crate) struct ClientTls {
    /// The rustls configuration.
    pub(crate) config: Arc<ClientConfig>,
    /// The name the server's certificate must carry (and SNI).
    pub(crate) server_name: ServerName<'static>,
}

/// The host of a `host:port` address (`[v6]:port` too).
fn host_of(address: &str) -> &str {
    if let Some(rest) = address.strip_prefix('[') {
        return rest.split(']').next().unwrap_or("");
    }
    address.rsplit_once(':').map_or(address, |(host, _)| host)
}

/// TcpOutput's TLS: the client configuration `use_tls` and `tls` ask for, `None` for plain
/// TCP. `address` is the `address` option, whose host is the default server name.
pub(crate) fn client_config(
    section: &PluginSection,
    use_tls: bool,
    tls: Option<&TlsOptions>,
    address: &str,
) -> Result<Option<ClientTls>, ConfigError> {
    if !enabled(section, use_tls, tls.is_some()) {
        return Ok(None);
    }
    let at = Located {
        section,
        has_table: tls.is_some(),
    };
    let defaults = TlsOptions::default();
    let tls = tls.unwrap_or(&defaults);
    let server_name = match &tls.server_name {
        Some(name) => ServerName::try_from(name.clone()).map_err(|e| {
            at.at(
                "server_name",
                format!("tls.server_name `{name}` is not a DNS name or IP address: {e}"),
            )
        })?,
        None => {
            let host = host_of(address);
            ServerName::try_from(host.to_string()).map_err(|_| {
                section.error_at_value(
                    "address",
                    format!(
                        "the host `{host}` of address cannot name the TLS server in section \
                         [{}]; set tls.server_name to the name in the server's certificate",
                        section.name()
                    ),
                )
            })?
        }
    };
    let (provider, versions) = provider(&at, tls)?;
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&versions)
        .map_err(|e| at.at("ciphers", format!("cannot set up TLS: {e}")))?;
    let builder = if tls.insecure_skip_verify {
        tracing::warn!(
            "Output '{}': tls.insecure_skip_verify = true: the server's certificate is not \
             checked, so the connection can be read and changed by anyone on the path",
            section.name()
        );
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyServerCertificate {
                algorithms: provider.signature_verification_algorithms,
            }))
    } else {
        let roots = match &tls.root_cafile {
            Some(cafile) => load_roots(&at, "root_cafile", cafile)?,
            None => system_roots(&at)?,
        };
        builder.with_root_certificates(roots)
    };
    let mut config = match certificate(&at, tls)? {
        Some((certs, key)) => builder
            .with_client_auth_cert(certs, key)
            .map_err(|e| certificate_error(&at, e))?,
        None => builder.with_no_client_auth(),
    };
    if tls.session_tickets_disabled {
        config.resumption = rustls::client::Resumption::disabled();
    }
    Ok(Some(ClientTls {
        config: Arc::new(config),
        server_name,
    }))
}

/// The system's CA certificates (as Go uses when `root_cafile` is unset).
fn system_roots(at: &Located<'_>) -> Result<RootCertStore, ConfigError> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    roots.add_parsable_certificates(found.certs);
    if roots.is_empty() {
        let why = found
            .errors
            .first()
            .map(|e| format!(" ({e})"))
            .unwrap_or_default();
        return Err(at.missing(format!(
            "tls.root_cafile is not set and no CA certificate was found on this system{why}; \
             set tls.root_cafile to the CA certificates (PEM) that sign the server's \
             certificate, in section [{}]",
            at.section.name()
        )));
    }
    Ok(roots)
}

/// Whether TLS is on; `[tls]` without `use_tls` is ignored, as in Heka, but said.
fn enabled(section: &PluginSection, use_tls: bool, has_table: bool) -> bool {
    if !use_tls && has_table {
        tracing::warn!(
            "Plugin '{}': the [tls] options are ignored because use_tls is false; the \
             connections are plain TCP",
            section.name()
        );
    }
    use_tls
}

/// `insecure_skip_verify`: accepts any server certificate. The handshake signatures are still
/// checked (the server holds the key of the certificate it sent), but nothing says whose it is.
#[derive(Debug)]
struct AnyServerCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AnyServerCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// `client_auth` "RequestClientCert" and "RequireAnyClientCert": asks for a client certificate
/// and takes any (the client proves it holds the certificate's key, nothing more).
#[derive(Debug)]
struct AnyClientCertificate {
    mandatory: bool,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for AnyClientCertificate {
    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// Runs `fut` for at most `limit` (a handshake); `None` when the time ran out.
pub(crate) async fn within<T>(limit: Duration, fut: impl Future<Output = T>) -> Option<T> {
    futures_lite::future::or(async { Some(fut.await) }, async {
        glommio::timer::sleep(limit).await;
        None
    })
    .await
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::common::testing::build;

    /// A throwaway CA, a server certificate (localhost, 127.0.0.1) and a client certificate
    /// signed by it, and some broken files, as PEM files in a fresh directory.
    struct Pki {
        dir: PathBuf,
    }

    impl Pki {
        fn new() -> Pki {
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let dir = std::env::temp_dir().join(format!(
                "hekate-tls-unit-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::create_dir_all(&dir).unwrap();
            let ca_key = rcgen::KeyPair::generate().unwrap();
            let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
            ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
            ca.distinguished_name
                .push(rcgen::DnType::CommonName, "hekate unit test CA");
            let ca = ca.self_signed(&ca_key).unwrap();
            let mut files = vec![("ca.pem", ca.pem())];
            for (name, san) in [("server", "localhost"), ("client", "client")] {
                let key = rcgen::KeyPair::generate().unwrap();
                let params =
                    rcgen::CertificateParams::new(vec![san.to_string(), "127.0.0.1".into()])
                        .unwrap();
                let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
                files.push((format!("{name}.pem").leak(), cert.pem()));
                files.push((format!("{name}-key.pem").leak(), key.serialize_pem()));
            }
            files.push(("garbage.pem", "this is no PEM at all\n".into()));
            files.push((
                "broken.pem",
                "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n".into(),
            ));
            for (name, text) in files {
                std::fs::write(dir.join(name), text).unwrap();
            }
            Pki { dir }
        }

        fn path(&self, name: &str) -> String {
            self.dir.join(name).display().to_string()
        }

        /// A TcpInput with TLS and `tls` lines (paths `{name}` replaced by files here).
        fn input(&self, tls: &str) -> Result<(), String> {
            let config = format!(
                "[in]\ntype = \"TcpInput\"\naddress = \"127.0.0.1:0\"\nuse_tls = true\n\n[in.tls]\n{}",
                self.expand(tls)
            );
            build(&config).map(|_| ())
        }

        /// A TcpOutput with TLS and `tls` lines.
        fn output(&self, address: &str, tls: &str) -> Result<(), String> {
            let config = format!(
                "[in]\ntype = \"TcpInput\"\naddress = \"127.0.0.1:0\"\n\n[out]\ntype = \
                 \"TcpOutput\"\nmessage_matcher = \"TRUE\"\naddress = \"{address}\"\nuse_tls = \
                 true\n\n[out.tls]\n{}",
                self.expand(tls)
            );
            build(&config).map(|_| ())
        }

        fn expand(&self, text: &str) -> String {
            let mut out = text.to_string();
            for name in [
                "ca.pem",
                "server.pem",
                "server-key.pem",
                "client.pem",
                "client-key.pem",
                "garbage.pem",
                "broken.pem",
            ] {
                out = out.replace(&format!("{{{name}}}"), &self.path(name));
            }
            out
        }
    }

    impl Drop for Pki {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    const SERVER: &str = "cert_file = \"{server.pem}\"\nkey_file = \"{server-key.pem}\"\n";

    #[test]
    fn every_heka_option_parses_and_the_defaults_are_an_empty_table() {
        let all: TlsOptions = toml::from_str(
            r#"
server_name = "upstream"
cert_file = "c.pem"
key_file = "k.pem"
client_auth = "RequireAndVerifyClientCert"
ciphers = ["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"]
insecure_skip_verify = false
prefer_server_ciphers = false
session_tickets_disabled = true
session_ticket_key = "0123456789abcdef0123456789abcdef"
min_version = "TLS12"
max_version = "TLS13"
client_cafile = "ca.pem"
root_cafile = "roots.pem"
"#,
        )
        .unwrap();
        assert_eq!(all.client_auth, ClientAuth::RequireAndVerifyClientCert);
        assert_eq!(all.min_version, TlsVersion::Tls12);
        assert!(!all.prefer_server_ciphers && all.session_tickets_disabled);
        let empty: TlsOptions = toml::from_str("").unwrap();
        let default = TlsOptions::default();
        assert_eq!(empty.client_auth, default.client_auth);
        assert_eq!(empty.prefer_server_ciphers, default.prefer_server_ciphers);
        assert!(empty.prefer_server_ciphers);
        assert_eq!(
            (empty.min_version, empty.max_version),
            (default.min_version, default.max_version)
        );
        assert_eq!(empty.min_version, TlsVersion::Tls12);
    }

    #[test]
    fn unknown_options_and_values_are_refused_naming_the_known_ones() {
        let e = toml::from_str::<TlsOptions>("cert = \"x\"").unwrap_err();
        assert!(e.to_string().contains("cert_file"), "{e}");
        let e = toml::from_str::<TlsOptions>("client_auth = \"Always\"").unwrap_err();
        assert!(e.to_string().contains("RequireAndVerifyClientCert"), "{e}");
        let e = toml::from_str::<TlsOptions>("min_version = \"TLS14\"").unwrap_err();
        assert!(e.to_string().contains("TLS13"), "{e}");
    }

    #[test]
    fn go_cipher_names_map_to_rustls_suites() {
        for name in [
            "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
            "ECDHE_RSA_WITH_AES_128_GCM_SHA256",
            "tls_ecdhe_ecdsa_with_aes_256_gcm_sha384",
            "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305",
        ] {
            assert!(
                matches!(go_cipher(name), Some(GoCipher::Implemented(_))),
                "{name}"
            );
        }
        assert!(matches!(
            go_cipher("TLS_RSA_WITH_RC4_128_SHA"),
            Some(GoCipher::Lacking)
        ));
        assert!(matches!(
            go_cipher("TLS_AES_128_GCM_SHA256"),
            Some(GoCipher::Tls13)
        ));
        assert!(go_cipher("TLS_ROT13_WITH_HOPE").is_none());
    }

    #[test]
    fn a_server_with_every_option_builds() {
        let pki = Pki::new();
        pki.input(&format!(
            "{SERVER}client_auth = \"RequireAndVerifyClientCert\"\nclient_cafile = \"{{ca.pem}}\"\n\
             ciphers = [\"TLS_RSA_WITH_RC4_128_SHA\", \"ECDHE_ECDSA_WITH_AES_128_GCM_SHA256\", \
             \"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256\"]\nprefer_server_ciphers = true\n\
             session_tickets_disabled = true\nsession_ticket_key = \"k\"\nmin_version = \"TLS12\"\n\
             max_version = \"TLS13\"\nserver_name = \"ignored\"\ninsecure_skip_verify = false\n"
        ))
        .unwrap();
        for mode in ["NoClientCert", "RequestClientCert", "RequireAnyClientCert"] {
            pki.input(&format!("{SERVER}client_auth = \"{mode}\"\n"))
                .unwrap();
        }
        pki.input(&format!(
            "{SERVER}client_auth = \"VerifyClientCertIfGiven\"\nclient_cafile = \"{{ca.pem}}\"\n"
        ))
        .unwrap();
    }

    #[test]
    fn a_server_without_certificate_or_key_is_refused_at_use_tls() {
        let e = build("[in]\ntype = \"TcpInput\"\naddress = \"127.0.0.1:0\"\nuse_tls = true\n")
            .unwrap_err();
        assert!(e.contains("sample.toml:4:1"), "{e}");
        assert!(e.contains("tls.cert_file and tls.key_file"), "{e}");
        let pki = Pki::new();
        let e = pki.input("cert_file = \"{server.pem}\"\n").unwrap_err();
        assert!(
            e.contains("sample.toml:7:") && e.contains("needs tls.key_file"),
            "{e}"
        );
    }

    #[test]
    fn missing_unreadable_and_bad_pem_files_are_refused_where_they_are_named() {
        let pki = Pki::new();
        let e = pki
            .input("cert_file = \"/no/such/cert.pem\"\nkey_file = \"{server-key.pem}\"\n")
            .unwrap_err();
        assert!(
            e.contains("sample.toml:7:13")
                && e.contains("cannot read tls.cert_file `/no/such/cert.pem`"),
            "{e}"
        );
        let e = pki
            .input("cert_file = \"{garbage.pem}\"\nkey_file = \"{server-key.pem}\"\n")
            .unwrap_err();
        assert!(e.contains("holds no PEM certificate"), "{e}");
        let e = pki
            .input("cert_file = \"{broken.pem}\"\nkey_file = \"{server-key.pem}\"\n")
            .unwrap_err();
        assert!(e.contains("is not valid PEM"), "{e}");
        let e = pki
            .input("cert_file = \"{server.pem}\"\nkey_file = \"{server.pem}\"\n")
            .unwrap_err();
        assert!(
            e.contains("sample.toml:8:") && e.contains("holds no PEM private key"),
            "{e}"
        );
        let e = pki
            .input("cert_file = \"{server.pem}\"\nkey_file = \"{client-key.pem}\"\n")
            .unwrap_err();
        assert!(
            e.contains("sample.toml:8:") && e.contains("does not belong to the certificate"),
            "{e}"
        );
    }

    #[test]
    fn versions_rustls_cannot_speak_are_refused_with_the_reason() {
        let pki = Pki::new();
        for (line, want) in [
            ("min_version = \"TLS10\"", "TLS 1.2 and 1.3 only"),
            ("min_version = \"SSL30\"", "TLS 1.2 and 1.3 only"),
            ("max_version = \"TLS11\"", "TLS 1.2 and 1.3 only"),
            (
                "min_version = \"TLS13\"\nmax_version = \"TLS12\"",
                "is newer than tls.max_version",
            ),
        ] {
            let e = pki.input(&format!("{SERVER}{line}\n")).unwrap_err();
            assert!(
                e.contains("sample.toml:9:") && e.contains(want),
                "{line}: {e}"
            );
        }
        pki.input(&format!("{SERVER}min_version = \"TLS13\"\n"))
            .unwrap();
        pki.input(&format!("{SERVER}max_version = \"TLS12\"\n"))
            .unwrap();
    }

    #[test]
    fn cipher_lists_without_a_suite_rustls_implements_are_refused() {
        let pki = Pki::new();
        let e = pki
            .input(&format!(
                "{SERVER}ciphers = [\"TLS_RSA_WITH_RC4_128_SHA\", \"TLS_AES_128_GCM_SHA256\"]\n"
            ))
            .unwrap_err();
        assert!(e.contains("none of tls.ciphers"), "{e}");
        let e = pki
            .input(&format!(
                "{SERVER}ciphers = [\"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256\", \"NOPE\"]\n"
            ))
            .unwrap_err();
        assert!(
            e.contains("sample.toml:9:53") && e.contains("unknown cipher suite `NOPE`"),
            "{e}"
        );
        // TLS 1.3 only: the TLS 1.2 list does not matter.
        pki.input(&format!(
            "{SERVER}min_version = \"TLS13\"\nciphers = [\"TLS_RSA_WITH_RC4_128_SHA\"]\n"
        ))
        .unwrap();
    }

    #[test]
    fn client_auth_and_client_cafile_go_together() {
        let pki = Pki::new();
        let e = pki
            .input(&format!("{SERVER}client_cafile = \"{{ca.pem}}\"\n"))
            .unwrap_err();
        assert!(e.contains("does not verify client certificates"), "{e}");
        let e = pki
            .input(&format!(
                "{SERVER}client_auth = \"RequireAndVerifyClientCert\"\n"
            ))
            .unwrap_err();
        assert!(
            e.contains("sample.toml:9:") && e.contains("needs tls.client_cafile"),
            "{e}"
        );
        let e = pki
            .input(&format!(
                "{SERVER}client_auth = \"RequireAndVerifyClientCert\"\nclient_cafile = \"{{garbage.pem}}\"\n"
            ))
            .unwrap_err();
        assert!(e.contains("holds no PEM certificate"), "{e}");
    }

    #[test]
    fn tls_options_are_ignored_without_use_tls() {
        build(
            "[in]\ntype = \"TcpInput\"\naddress = \"127.0.0.1:0\"\n\n[in.tls]\ncert_file = \
             \"/no/such/file\"\n",
        )
        .unwrap();
    }

    #[test]
    fn a_client_builds_with_a_ca_file_a_certificate_or_no_verification() {
        let pki = Pki::new();
        pki.output("127.0.0.1:5566", "root_cafile = \"{ca.pem}\"\n")
            .unwrap();
        pki.output(
            "localhost:5566",
            "root_cafile = \"{ca.pem}\"\ncert_file = \"{client.pem}\"\nkey_file = \"{client-key.pem}\"\n\
             session_tickets_disabled = true\nmax_version = \"TLS12\"\n",
        )
        .unwrap();
        pki.output("127.0.0.1:5566", "insecure_skip_verify = true\n")
            .unwrap();
        let e = pki
            .output("127.0.0.1:5566", "root_cafile = \"/no/such/ca.pem\"\n")
            .unwrap_err();
        assert!(e.contains("cannot read tls.root_cafile"), "{e}");
        let e = pki
            .output(
                "127.0.0.1:5566",
                "root_cafile = \"{ca.pem}\"\ncert_file = \"{client.pem}\"\n",
            )
            .unwrap_err();
        assert!(e.contains("needs tls.key_file"), "{e}");
        let e = pki
            .output(
                "127.0.0.1:5566",
                "root_cafile = \"{ca.pem}\"\nserver_name = \"not a name\"\n",
            )
            .unwrap_err();
        assert!(e.contains("not a DNS name or IP address"), "{e}");
    }

    #[test]
    fn the_server_name_defaults_to_the_host_of_the_address() {
        assert_eq!(host_of("upstream.example.com:5566"), "upstream.example.com");
        assert_eq!(host_of("10.0.0.1:5566"), "10.0.0.1");
        assert_eq!(host_of("[::1]:5566"), "::1");
        assert_eq!(host_of(":5566"), "");
    }

    #[test]
    fn the_tls_options_are_listed_after_tls() {
        let options = with_tls_options(options_of::<crate::common::SignerConfig>());
        assert_eq!(options[0].name, "hmac_key");
        assert_eq!(options[1].name, "tls.server_name");
        let listed = crate::registry();
        let tcp = listed.options("TcpInput").unwrap();
        let at = tcp.iter().position(|o| o.name == "tls").unwrap();
        assert_eq!(tcp[at + 1].name, "tls.server_name");
        let auth = tcp.iter().find(|o| o.name == "tls.client_auth").unwrap();
        assert!(
            auth.kind.contains("\"RequireAndVerifyClientCert\""),
            "{auth:?}"
        );
        assert_eq!(auth.default.as_deref(), Some("\"NoClientCert\""));
        assert!(tcp.iter().all(|o| !o.doc.is_empty()));
    }
}
