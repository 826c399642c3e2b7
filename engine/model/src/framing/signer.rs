//! HMAC signing and verification of framed records (reference §2.2).
//!
//! A signed record's header names a signer and a key version and carries
//! `HMAC_<hash>(key, message_bytes)`. The sending side holds one [`SigningKey`]; the receiving
//! splitter holds [`SignerKeys`], every key it trusts, looked up by signer name and version (Heka's
//! `"<signer>_<version>"` map key, e.g. the `[TcpInput.signer.ops_0]` section).
//!
//! Each key is turned into its keyed HMAC state once, when it is added, so signing or verifying a
//! record hashes only the message, not the key again.

use std::collections::HashMap;
use std::fmt;

use hmac::{Hmac, Mac};
use md5::Md5;
use sha1::Sha1;

use super::error::FramingError;
use crate::message::HmacHashFunction;

type HmacMd5 = Hmac<Md5>;
type HmacSha1 = Hmac<Sha1>;

/// The hash function a signer's `hmac_hash` option names: `"sha1"` (in any case) is SHA-1;
/// anything else, as in Heka, is MD5.
pub fn hash_function_from_name(name: &str) -> HmacHashFunction {
    if name.eq_ignore_ascii_case("sha1") {
        HmacHashFunction::Sha1
    } else {
        HmacHashFunction::Md5
    }
}

fn keyed_md5(key: &[u8]) -> HmacMd5 {
    <HmacMd5 as Mac>::new_from_slice(key).expect("HMAC accepts keys of any length")
}

fn keyed_sha1(key: &[u8]) -> HmacSha1 {
    <HmacSha1 as Mac>::new_from_slice(key).expect("HMAC accepts keys of any length")
}

#[derive(Clone)]
enum KeyedMac {
    Md5(HmacMd5),
    Sha1(HmacSha1),
}

/// The key a sender signs its records with: the signer's name, the key version, the hash function
/// and the secret.
///
/// The secret is kept only as keyed HMAC state and is never printed by `Debug`.
#[derive(Clone)]
pub struct SigningKey {
    name: String,
    version: u32,
    mac: KeyedMac,
}

impl SigningKey {
    /// A signing key for signer `name`, key `version`, hashing with `hash`.
    pub fn new(name: impl Into<String>, version: u32, hash: HmacHashFunction, key: &[u8]) -> Self {
        let mac = match hash {
            HmacHashFunction::Md5 => KeyedMac::Md5(keyed_md5(key)),
            HmacHashFunction::Sha1 => KeyedMac::Sha1(keyed_sha1(key)),
        };
        SigningKey {
            name: name.into(),
            version,
            mac,
        }
    }

    /// The signer name written into the header (`hmac_signer`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key version written into the header (`hmac_key_version`).
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The hash function written into the header (`hmac_hash_function`).
    pub fn hash_function(&self) -> HmacHashFunction {
        match self.mac {
            KeyedMac::Md5(_) => HmacHashFunction::Md5,
            KeyedMac::Sha1(_) => HmacHashFunction::Sha1,
        }
    }

    /// Length of the digest this key produces (16 for MD5, 20 for SHA-1).
    pub fn digest_len(&self) -> usize {
        match self.mac {
            KeyedMac::Md5(_) => 16,
            KeyedMac::Sha1(_) => 20,
        }
    }

    /// Appends `HMAC(key, message)` to `out`.
    pub fn sign_into(&self, message: &[u8], out: &mut Vec<u8>) {
        match &self.mac {
            KeyedMac::Md5(mac) => {
                let mut mac = mac.clone();
                mac.update(message);
                out.extend_from_slice(&mac.finalize().into_bytes());
            }
            KeyedMac::Sha1(mac) => {
                let mut mac = mac.clone();
                mac.update(message);
                out.extend_from_slice(&mac.finalize().into_bytes());
            }
        }
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("name", &self.name)
            .field("version", &self.version)
            .field("hash_function", &self.hash_function())
            .finish_non_exhaustive()
    }
}

/// One trusted key, keyed for both hash functions because the record's header picks the function.
#[derive(Clone)]
struct TrustedKey {
    version: u32,
    md5: HmacMd5,
    sha1: HmacSha1,
}

/// Why a signed record failed verification.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum VerifyError {
    /// No key for this signer name and version.
    UnknownSigner,
    /// The digest does not match, or the hash function is neither MD5 nor SHA-1.
    Mismatch,
}

/// The keys a receiving splitter trusts, by signer name and key version.
///
/// Heka keys its map by the string `"<signer>_<version>"`; hekate keeps name and version apart so
/// that a lookup allocates nothing, and accepts Heka's section names through
/// [`insert_section`](Self::insert_section).
#[derive(Clone, Default)]
pub struct SignerKeys {
    by_name: HashMap<Box<[u8]>, Vec<TrustedKey>>,
    len: usize,
}

impl SignerKeys {
    /// An empty key set: every signed record is then rejected as from an unknown signer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Trusts `key` for records signed by `name` with key `version`, replacing any earlier key for
    /// the same pair.
    pub fn insert(&mut self, name: &str, version: u32, key: &[u8]) {
        let trusted = TrustedKey {
            version,
            md5: keyed_md5(key),
            sha1: keyed_sha1(key),
        };
        let versions = self.by_name.entry(name.as_bytes().into()).or_default();
        match versions.iter_mut().find(|k| k.version == version) {
            Some(slot) => *slot = trusted,
            None => {
                versions.push(trusted);
                self.len += 1;
            }
        }
    }

    /// Trusts `key` under a Heka signer section name such as `ops_0` (signer `ops`, version 0).
    ///
    /// The version is the decimal number after the last `_`, written as Heka writes it (no sign, no
    /// leading zeros); any other name could never match a record in Heka, so it is refused here.
    pub fn insert_section(&mut self, section: &str, key: &[u8]) -> Result<(), FramingError> {
        let bad = || FramingError::BadSignerSection {
            section: section.to_owned(),
        };
        let (name, version) = section.rsplit_once('_').ok_or_else(bad)?;
        let version: u32 = version.parse().map_err(|_| bad())?;
        if version.to_string() != section[name.len() + 1..] {
            return Err(bad());
        }
        self.insert(name, version, key);
        Ok(())
    }

    /// Number of (signer, version) keys.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no key is trusted.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether a key is trusted for `name` and `version`.
    pub fn contains(&self, name: &str, version: u32) -> bool {
        self.find(name.as_bytes(), version).is_some()
    }

    fn find(&self, name: &[u8], version: u32) -> Option<&TrustedKey> {
        self.by_name
            .get(name)?
            .iter()
            .find(|k| k.version == version)
    }

    /// Checks `digest` against `HMAC_<hash_function>(key(signer, version), message)` in constant
    /// time.
    pub(crate) fn verify(
        &self,
        signer: &[u8],
        version: u32,
        hash_function: i32,
        message: &[u8],
        digest: &[u8],
    ) -> Result<(), VerifyError> {
        let key = self
            .find(signer, version)
            .ok_or(VerifyError::UnknownSigner)?;
        let ok = if hash_function == HmacHashFunction::Md5 as i32 {
            let mut mac = key.md5.clone();
            mac.update(message);
            mac.verify_slice(digest).is_ok()
        } else if hash_function == HmacHashFunction::Sha1 as i32 {
            let mut mac = key.sha1.clone();
            mac.update(message);
            mac.verify_slice(digest).is_ok()
        } else {
            false
        };
        if ok {
            Ok(())
        } else {
            Err(VerifyError::Mismatch)
        }
    }
}

impl fmt::Debug for SignerKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut list = f.debug_list();
        for (name, versions) in &self.by_name {
            for k in versions {
                list.entry(&format_args!(
                    "{}_{}",
                    String::from_utf8_lossy(name),
                    k.version
                ));
            }
        }
        list.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    // RFC 2202 test case 2.
    const KEY: &[u8] = b"Jefe";
    const DATA: &[u8] = b"what do ya want for nothing?";

    #[test]
    fn sign_matches_rfc_2202_vectors() {
        let mut out = Vec::new();
        SigningKey::new("a", 0, HmacHashFunction::Md5, KEY).sign_into(DATA, &mut out);
        assert_eq!(hex(&out), "750c783e6ab0b503eaa86e310a5db738");
        out.clear();
        SigningKey::new("a", 0, HmacHashFunction::Sha1, KEY).sign_into(DATA, &mut out);
        assert_eq!(hex(&out), "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79");
    }

    #[test]
    fn verify_looks_up_name_and_version() {
        let mut keys = SignerKeys::new();
        keys.insert_section("ops_1", KEY).unwrap();
        let mut md5 = Vec::new();
        SigningKey::new("ops", 1, HmacHashFunction::Md5, KEY).sign_into(DATA, &mut md5);
        assert_eq!(keys.verify(b"ops", 1, 0, DATA, &md5), Ok(()));
        assert_eq!(
            keys.verify(b"ops", 1, 1, DATA, &md5),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            keys.verify(b"ops", 1, 9, DATA, &md5),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            keys.verify(b"ops", 2, 0, DATA, &md5),
            Err(VerifyError::UnknownSigner)
        );
        assert_eq!(
            keys.verify(b"dev", 1, 0, DATA, &md5),
            Err(VerifyError::UnknownSigner)
        );
    }

    #[test]
    fn section_names_follow_heka() {
        let mut keys = SignerKeys::new();
        keys.insert_section("my_team_12", b"k").unwrap();
        assert!(keys.contains("my_team", 12));
        for bad in ["ops", "ops_", "ops_01", "ops_-1", "ops_x", "ops_+1"] {
            assert!(keys.insert_section(bad, b"k").is_err(), "{bad}");
        }
        keys.insert("my_team", 12, b"other");
        assert_eq!(keys.len(), 1);
        assert_eq!(format!("{keys:?}"), r#"[my_team_12]"#);
        assert_eq!(hash_function_from_name("SHA1"), HmacHashFunction::Sha1);
        assert_eq!(hash_function_from_name("sha256"), HmacHashFunction::Md5);
    }
}
