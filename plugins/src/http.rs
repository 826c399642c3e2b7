//! What HttpListenInput and HttpInput share: Heka's `headers` option (a table of header names to
//! a value or a list of values), query-string decoding and Basic credentials.

use std::collections::BTreeMap;

use base64::Engine as _;
use hekate_config::{ConfigError, PluginSection};
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use schemars::JsonSchema;
use serde::Deserialize;

/// One header's value(s): `Name = "v"` or `Name = ["v1", "v2"]` (Go's `http.Header`).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub(crate) enum HeaderValues {
    /// One value.
    One(String),
    /// Several values, sent as several header lines.
    Many(Vec<String>),
}

/// Turns a `headers` table into a header map, refusing names or values HTTP does not allow.
pub(crate) fn header_map(
    section: &PluginSection,
    key: &str,
    headers: &BTreeMap<String, HeaderValues>,
) -> Result<HeaderMap, ConfigError> {
    let mut map = HeaderMap::new();
    for (name, values) in headers {
        let header = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
            section.error_at_key(
                key,
                format!(
                    "`{key}`: \"{name}\" is not a valid HTTP header name (section [{}])",
                    section.name()
                ),
            )
        })?;
        let values = match values {
            HeaderValues::One(v) => std::slice::from_ref(v),
            HeaderValues::Many(v) => v.as_slice(),
        };
        for v in values {
            let value = HeaderValue::from_str(v).map_err(|_| {
                section.error_at_key(
                    key,
                    format!(
                        "`{key}`: the value of \"{name}\" is not a valid HTTP header value (section [{}])",
                        section.name()
                    ),
                )
            })?;
            map.append(header.clone(), value);
        }
    }
    Ok(map)
}

/// The `Authorization` value of Basic credentials.
pub(crate) fn basic_authorization(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

/// The pairs of a query string, decoded as Go's `url.ParseQuery` does (`+` is a space, `%XX`
/// a byte; a malformed escape is kept as written).
pub(crate) fn query_pairs(query: &str) -> impl Iterator<Item = (String, String)> + '_ {
    query.split('&').filter(|p| !p.is_empty()).map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (unescape(k), unescape(v))
    })
}

fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_strings_decode_as_in_go() {
        let pairs: Vec<_> = query_pairs("a=1&b=hello+world&c=%41%42&d&e=%zz&f=50%").collect();
        let want = [
            ("a", "1"),
            ("b", "hello world"),
            ("c", "AB"),
            ("d", ""),
            ("e", "%zz"),
            ("f", "50%"),
        ];
        assert_eq!(pairs.len(), want.len());
        for ((k, v), (wk, wv)) in pairs.iter().zip(want) {
            assert_eq!((k.as_str(), v.as_str()), (wk, wv));
        }
    }

    #[test]
    fn basic_credentials_are_base64() {
        assert_eq!(basic_authorization("u", "p"), "Basic dTpw");
    }
}
