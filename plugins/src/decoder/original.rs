//! The message a text decoder starts from, as Heka hands a decoder its pack: for a payload
//! record, the message the input makes of it (a random Uuid, the time of decoding, the input's
//! Type, Logger and Hostname, the record as Payload without its line end, the input's fields);
//! for a record that is an encoded message (after HekaFramingSplitter, or inside a MultiDecoder
//! after another decoder), that message. Decoders then change headers and add fields, and write
//! the result once.

use std::borrow::Cow;

use hekate_engine::plugin::{DecodeError, RecordSource};
use hekate_model::message::{MessageAccess as _, MessageView};
use hekate_model::varint;
use hekate_model::writer::{MessageWriter, now_ns, random_uuid};

/// `record` without a trailing `\n` or `\r\n`.
pub(crate) fn without_line_end(record: &[u8]) -> &[u8] {
    let r = record.strip_suffix(b"\n").unwrap_or(record);
    r.strip_suffix(b"\r").unwrap_or(r)
}

/// A text as UTF-8: itself when valid, else with U+FFFD in place of each bad sequence.
pub(crate) fn text(bytes: &[u8]) -> Cow<'_, str> {
    match simdutf8::basic::from_utf8(bytes) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

/// Header values that replace the original's.
#[derive(Debug, Default)]
pub(crate) struct Headers<'h> {
    pub(crate) uuid: Option<[u8; 16]>,
    pub(crate) timestamp: Option<i64>,
    pub(crate) msg_type: Option<Cow<'h, str>>,
    pub(crate) logger: Option<Cow<'h, str>>,
    pub(crate) severity: Option<i32>,
    pub(crate) payload: Option<Cow<'h, str>>,
    pub(crate) env_version: Option<Cow<'h, str>>,
    pub(crate) pid: Option<i32>,
    pub(crate) hostname: Option<Cow<'h, str>>,
}

/// The message a record stands for.
#[derive(Debug)]
pub(crate) enum Original<'a> {
    /// A payload record and where it came from.
    Payload {
        payload: Cow<'a, str>,
        source: &'a RecordSource<'a>,
    },
    /// An encoded message.
    Message(MessageView<'a>),
}

impl<'a> Original<'a> {
    /// The message `record` stands for; a record announced as a message that is not one fails.
    pub(crate) fn of(
        record: &'a [u8],
        source: &'a RecordSource<'a>,
    ) -> Result<Original<'a>, DecodeError> {
        if source.message_bytes {
            MessageView::new(record)
                .map(Original::Message)
                .map_err(|e| DecodeError(format!("not a Heka message: {e}")))
        } else {
            Ok(Original::Payload {
                payload: text(without_line_end(record)),
                source,
            })
        }
    }

    /// The Payload, as text.
    pub(crate) fn payload(&self) -> Cow<'_, str> {
        match self {
            Original::Payload { payload, .. } => Cow::Borrowed(payload),
            Original::Message(v) => text(v.payload()),
        }
    }

    /// Writes the message with `headers` in place of the original's, and its fields; the
    /// caller appends more fields with the writer it gets.
    pub(crate) fn write<'b>(
        &self,
        headers: &Headers<'_>,
        buf: &'b mut Vec<u8>,
    ) -> MessageWriter<'b> {
        self.write_with(headers, buf, true)
    }

    /// As [`write`](Self::write), without the original's fields.
    pub(crate) fn write_headers<'b>(
        &self,
        headers: &Headers<'_>,
        buf: &'b mut Vec<u8>,
    ) -> MessageWriter<'b> {
        self.write_with(headers, buf, false)
    }

    fn write_with<'b>(
        &self,
        headers: &Headers<'_>,
        buf: &'b mut Vec<u8>,
        with_fields: bool,
    ) -> MessageWriter<'b> {
        let mut w = MessageWriter::new(buf);
        match self {
            Original::Payload { payload, source } => {
                w.uuid(&headers.uuid.unwrap_or_else(random_uuid));
                w.timestamp(headers.timestamp.unwrap_or_else(now_ns));
                match (&headers.msg_type, source.msg_type) {
                    (Some(t), _) => {
                        w.msg_type(t.as_bytes());
                    }
                    (None, Some(t)) => {
                        w.msg_type(t.as_bytes());
                    }
                    (None, None) => {}
                }
                w.logger(headers.logger.as_deref().unwrap_or(source.input).as_bytes());
                if let Some(s) = headers.severity {
                    w.severity(s);
                }
                w.payload(headers.payload.as_deref().unwrap_or(payload).as_bytes());
                if let Some(e) = &headers.env_version {
                    w.env_version(e.as_bytes());
                }
                if let Some(p) = headers.pid {
                    w.pid(p);
                }
                w.hostname(
                    headers
                        .hostname
                        .as_deref()
                        .unwrap_or(source.hostname)
                        .as_bytes(),
                );
                if with_fields {
                    w.raw(source.fields);
                }
            }
            Original::Message(v) => {
                match headers.uuid {
                    Some(u) => w.uuid(&u),
                    None if v.uuid().len() == 16 => w.uuid(v.uuid()),
                    None => w.uuid(&random_uuid()),
                };
                w.timestamp(headers.timestamp.unwrap_or_else(|| v.timestamp()));
                let bytes = |h: &Option<Cow<'_, str>>, o: &[u8]| -> Vec<u8> {
                    h.as_deref()
                        .map_or_else(|| o.to_vec(), |s| s.as_bytes().to_vec())
                };
                let msg_type = bytes(&headers.msg_type, v.msg_type());
                if !msg_type.is_empty() {
                    w.msg_type(&msg_type);
                }
                let logger = bytes(&headers.logger, v.logger());
                if !logger.is_empty() {
                    w.logger(&logger);
                }
                w.severity(headers.severity.unwrap_or_else(|| v.severity()));
                let payload = bytes(&headers.payload, v.payload());
                if !payload.is_empty() {
                    w.payload(&payload);
                }
                let env = bytes(&headers.env_version, v.env_version());
                if !env.is_empty() {
                    w.env_version(&env);
                }
                let pid = headers.pid.unwrap_or_else(|| v.pid());
                if pid != 0 || headers.pid.is_some() {
                    w.pid(pid);
                }
                let host = bytes(&headers.hostname, v.hostname());
                if !host.is_empty() {
                    w.hostname(&host);
                }
                let mut field = Vec::new();
                for f in v.fields().filter(|_| with_fields) {
                    field.clear();
                    field.push((10 << 3) | 2);
                    varint::put(&mut field, f.bytes().len() as u64);
                    field.extend_from_slice(f.bytes());
                    w.raw(&field);
                }
            }
        }
        w
    }
}

/// A field value of a template or a decoder.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value<'v> {
    String(&'v str),
    Bytes(&'v [u8]),
    Integer(i64),
    Double(f64),
    Bool(bool),
}

/// Appends one field (name, representation, one value) to an encoded message.
pub(crate) fn write_field(
    w: &mut MessageWriter<'_>,
    name: &str,
    representation: &str,
    value: &Value<'_>,
    scratch: &mut Vec<u8>,
) {
    // The body: name (1), value_type (2), representation (3), the value.
    scratch.clear();
    scratch.push(0x0a);
    varint::put(scratch, name.len() as u64);
    scratch.extend_from_slice(name.as_bytes());
    let value_type = match value {
        Value::String(_) => 0,
        Value::Bytes(_) => 1,
        Value::Integer(_) => 2,
        Value::Double(_) => 3,
        Value::Bool(_) => 4,
    };
    if value_type != 0 {
        scratch.extend_from_slice(&[0x10, value_type]);
    }
    if !representation.is_empty() {
        scratch.push(0x1a);
        varint::put(scratch, representation.len() as u64);
        scratch.extend_from_slice(representation.as_bytes());
    }
    match value {
        Value::String(s) => {
            scratch.push(0x22);
            varint::put(scratch, s.len() as u64);
            scratch.extend_from_slice(s.as_bytes());
        }
        Value::Bytes(b) => {
            scratch.push(0x2a);
            varint::put(scratch, b.len() as u64);
            scratch.extend_from_slice(b);
        }
        Value::Integer(i) => {
            let n = varint::encoded_len(*i as u64);
            scratch.push(0x32);
            varint::put(scratch, n as u64);
            varint::put(scratch, *i as u64);
        }
        Value::Double(d) => {
            scratch.extend_from_slice(&[0x3a, 8]);
            scratch.extend_from_slice(&d.to_le_bytes());
        }
        Value::Bool(b) => {
            scratch.extend_from_slice(&[0x42, 1, u8::from(*b)]);
        }
    }
    let mut head = [0u8; 11];
    head[0] = (10 << 3) | 2;
    let mut len = Vec::with_capacity(10);
    varint::put(&mut len, scratch.len() as u64);
    head[1..1 + len.len()].copy_from_slice(&len);
    w.raw(&head[..1 + len.len()]);
    w.raw(scratch);
}
