//! A borrowed, lazy view over an encoded Heka message.
//!
//! [`MessageView::new`] walks the top-level tags once, recording where each header lives and where
//! the fields start; nothing is copied or allocated. Fields are parsed only when asked for, so
//! routing a message that only passes through costs one scan of its headers.

use std::cell::{Cell, RefCell};

use super::access::{FieldValue, MessageAccess};
use super::schema::{Message, ValueType};
use crate::bytes::head8;
use crate::varint::VarintError;

/// Why a byte string is not a well-formed message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ViewError {
    /// The bytes end inside a tag, a varint or a length-delimited value.
    #[error("message truncated at byte {0}")]
    Truncated(usize),
    /// A varint longer than 10 bytes or above 2^64.
    #[error("malformed varint at byte {0}")]
    BadVarint(usize),
    /// A known tag with the wrong wire type, an unbalanced group, or tag 0.
    #[error("invalid wire type {wire_type} for tag {tag} at byte {at}")]
    BadWireType {
        /// The field number.
        tag: u64,
        /// The wire type found.
        wire_type: u8,
        /// Offset of the key.
        at: usize,
    },
    /// The message is longer than 4 GiB.
    #[error("message too long")]
    TooLong,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Span {
    start: u32,
    len: u32,
}

impl Span {
    #[inline]
    fn of<'a>(&self, buf: &'a [u8]) -> &'a [u8] {
        &buf[self.start as usize..(self.start + self.len) as usize]
    }
}

const WT_VARINT: u8 = 0;
const WT_FIXED64: u8 = 1;
const WT_LEN: u8 = 2;
const WT_START_GROUP: u8 = 3;
const WT_END_GROUP: u8 = 4;
const WT_FIXED32: u8 = 5;

#[inline(always)]
fn varint(buf: &[u8], pos: &mut usize) -> Result<u64, ViewError> {
    crate::varint::read(buf, pos).map_err(|e| match e {
        VarintError::Truncated => ViewError::Truncated(buf.len()),
        VarintError::Overflow => ViewError::BadVarint(*pos),
    })
}

/// One (tag, wire type, value) entry of a protobuf message.
#[derive(Clone, Copy)]
enum Value {
    Varint(u64),
    Fixed64(u64),
    Fixed32,
    Len(Span),
    /// A skipped group.
    Group,
}

#[inline(always)]
fn next_entry(buf: &[u8], pos: &mut usize) -> Result<(u64, Value), ViewError> {
    let at = *pos;
    // Fast path: a one-byte key (every tag of the schema) with a one-byte length.
    if let Some(&[key, len]) = buf.get(at..at + 2)
        && key & 7 == WT_LEN
        && (8..0x80).contains(&key)
        && len < 0x80
    {
        let start = at + 2;
        let end = start + usize::from(len);
        if end <= buf.len() {
            *pos = end;
            let span = Span {
                start: start as u32,
                len: u32::from(len),
            };
            return Ok((u64::from(key >> 3), Value::Len(span)));
        }
    }
    let key = match buf.get(at) {
        Some(&k) if k < 0x80 => {
            *pos = at + 1;
            u64::from(k)
        }
        _ => varint(buf, pos)?,
    };
    let tag = key >> 3;
    let wire_type = (key & 7) as u8;
    if tag == 0 {
        return Err(ViewError::BadWireType { tag, wire_type, at });
    }
    let value = match wire_type {
        WT_VARINT => Value::Varint(varint(buf, pos)?),
        WT_FIXED64 => {
            let bytes = buf.get(*pos..*pos + 8).ok_or(ViewError::Truncated(*pos))?;
            *pos += 8;
            Value::Fixed64(u64::from_le_bytes(bytes.try_into().expect("8 bytes")))
        }
        WT_LEN => {
            let len = varint(buf, pos)?;
            let end = (*pos as u64)
                .checked_add(len)
                .filter(|&e| e <= buf.len() as u64)
                .ok_or(ViewError::Truncated(buf.len()))?;
            let span = Span {
                start: *pos as u32,
                len: len as u32,
            };
            *pos = end as usize;
            Value::Len(span)
        }
        WT_FIXED32 => {
            if buf.len() < *pos + 4 {
                return Err(ViewError::Truncated(*pos));
            }
            *pos += 4;
            Value::Fixed32
        }
        WT_START_GROUP => {
            skip_group(buf, pos, tag, 1)?;
            Value::Group
        }
        _ => return Err(ViewError::BadWireType { tag, wire_type, at }),
    };
    Ok((tag, value))
}

/// The name and the raw value type of an encoded field, when the field is made only of the
/// entries encoders write (one-byte keys of tags 1–15; varint, 64-bit and length-delimited wire
/// types), all well formed. `None` for anything else, which the caller then reads with the
/// general parser, so the result never differs from it; this loop runs for every field the
/// router indexes.
#[inline]
fn skim_field(buf: &[u8]) -> Option<(Span, i32)> {
    let mut name = Span::default();
    let mut vt = 0i32;
    let mut pos = 0;
    while pos < buf.len() {
        let key = buf[pos];
        if !(8..0x80).contains(&key) {
            return None;
        }
        pos += 1;
        match key & 7 {
            WT_LEN => {
                let len = match buf.get(pos) {
                    Some(&l) if l < 0x80 => {
                        pos += 1;
                        usize::from(l)
                    }
                    _ => usize::try_from(varint(buf, &mut pos).ok()?).ok()?,
                };
                let end = pos.checked_add(len).filter(|&e| e <= buf.len())?;
                if key >> 3 == 1 {
                    name = Span {
                        start: pos as u32,
                        len: len as u32,
                    };
                }
                pos = end;
            }
            WT_VARINT => {
                if key >> 3 == 2 {
                    vt = varint(buf, &mut pos).ok()? as i32;
                } else {
                    varint(buf, &mut pos).ok()?;
                }
            }
            WT_FIXED64 => {
                pos = pos.checked_add(8).filter(|&e| e <= buf.len())?;
            }
            _ => return None,
        }
    }
    Some((name, vt))
}

/// Skips a (deprecated) group up to its matching end tag, as a full decode does for unknown
/// fields; nesting is limited like prost's recursion limit.
fn skip_group(buf: &[u8], pos: &mut usize, tag: u64, depth: u32) -> Result<(), ViewError> {
    const MAX_DEPTH: u32 = 100;
    loop {
        let at = *pos;
        let key = varint(buf, pos)?;
        let (inner, wire_type) = (key >> 3, (key & 7) as u8);
        match wire_type {
            WT_END_GROUP if inner == tag => return Ok(()),
            WT_START_GROUP if depth < MAX_DEPTH && inner != 0 => {
                skip_group(buf, pos, inner, depth + 1)?
            }
            WT_START_GROUP | WT_END_GROUP => {
                return Err(ViewError::BadWireType {
                    tag: inner,
                    wire_type,
                    at,
                });
            }
            _ => {
                *pos = at;
                next_entry(buf, pos)?;
            }
        }
    }
}

/// A borrowed view of an encoded [`Message`]; see the module docs.
#[derive(Clone, Copy, Debug)]
pub struct MessageView<'a> {
    buf: &'a [u8],
    at: ViewLayout,
    /// Every field, as the writer of these bytes recorded it
    /// ([`MessageView::with_written_fields`]); `None`: found by reading the fields.
    written: Option<&'a [WrittenField]>,
}

/// A field as a [`MessageWriter`](crate::writer::MessageWriter) wrote it: where its name and
/// its one value lie in the message, and the value's type. A message whose writer recorded its
/// fields is routed without parsing them ([`MessageView::with_written_fields`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WrittenField {
    /// The name's first eight bytes ([`head8`]): most names differ there.
    head: u64,
    name: Span,
    /// The value's bytes: text, a varint, eight bytes of a double, one byte of a bool.
    value: Span,
    value_type: ValueType,
}

impl WrittenField {
    /// The field whose name (`name`, at `name_at` from the message's first byte) was written
    /// with one value of `value_type` whose bytes are at `value_at`, `value_len` long.
    #[inline(always)]
    pub(crate) fn new(
        name: &[u8],
        name_at: usize,
        value_at: usize,
        value_len: usize,
        value_type: ValueType,
    ) -> Self {
        WrittenField {
            head: head8(name),
            name: Span {
                start: name_at as u32,
                len: name.len() as u32,
            },
            value: Span {
                start: value_at as u32,
                len: value_len as u32,
            },
            value_type,
        }
    }

    /// The value, read from `buf`, the message.
    #[inline]
    fn value<'a>(&self, buf: &'a [u8]) -> Option<FieldValue<'a>> {
        let v = self.value.of(buf);
        Some(match self.value_type {
            ValueType::String => FieldValue::String(v),
            ValueType::Bytes => FieldValue::Bytes(v),
            ValueType::Integer => FieldValue::Integer(varint(v, &mut 0).ok()? as i64),
            ValueType::Double => FieldValue::Double(f64::from_le_bytes(v.try_into().ok()?)),
            ValueType::Bool => FieldValue::Bool(*v.first()? != 0),
        })
    }
}

/// Whether the name at `stored` in `buf`, whose [`head8`] is `stored_head`, is `name`, whose
/// [`head8`] is `head`: the first eight bytes and the length decide most comparisons without
/// reading the name.
#[inline(always)]
fn same_name(buf: &[u8], stored: Span, stored_head: u64, name: &[u8], head: u64) -> bool {
    stored_head == head
        && stored.len as usize == name.len()
        && (name.len() <= 8 || stored.of(buf)[8..] == name[8..])
}

/// What [`MessageView::new`] found in a message, without the bytes: where each header lives, the
/// numeric headers, where the fields start. A copy of the message's bytes travels with its layout
/// (the runtime's batches do so), so that the consumer gets its view back without scanning the
/// message again ([`MessageView::with_layout`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ViewLayout {
    len: u32,
    uuid: Span,
    msg_type: Span,
    logger: Span,
    payload: Span,
    env_version: Span,
    hostname: Span,
    timestamp: i64,
    severity: i32,
    pid: i32,
    fields_start: u32,
    field_count: u32,
}

impl ViewLayout {
    /// The layout of an empty message (the defaults a scan of no bytes gives).
    #[inline]
    pub(crate) fn empty() -> Self {
        ViewLayout {
            len: 0,
            uuid: Span::default(),
            msg_type: Span::default(),
            logger: Span::default(),
            payload: Span::default(),
            env_version: Span::default(),
            hostname: Span::default(),
            timestamp: 0,
            severity: 7,
            pid: 0,
            fields_start: 0,
            field_count: 0,
        }
    }

    /// Records a length-delimited header entry (tags 1, 3, 4, 6, 7, 9) whose value starts at
    /// `start` (from the message's first byte) and is `len` bytes long: what the scan and the
    /// writer both record.
    #[inline(always)]
    pub(crate) fn header_bytes(&mut self, tag: u8, start: usize, len: usize) {
        let s = Span {
            start: start as u32,
            len: len as u32,
        };
        match tag {
            1 => self.uuid = s,
            3 => self.msg_type = s,
            4 => self.logger = s,
            6 => self.payload = s,
            7 => self.env_version = s,
            9 => self.hostname = s,
            _ => {}
        }
    }

    /// The layout of the same header entries written `by` bytes further into a message: the
    /// spans of present headers move (an absent one keeps the empty span at 0 a scan gives it).
    #[inline(always)]
    pub(crate) fn shifted(mut self, by: usize) -> Self {
        for s in [
            &mut self.uuid,
            &mut self.msg_type,
            &mut self.logger,
            &mut self.payload,
            &mut self.env_version,
            &mut self.hostname,
        ] {
            if s.start != 0 {
                s.start += by as u32;
            }
        }
        self
    }

    /// Records a varint header entry (tags 2, 5, 8), as a scan would read it.
    #[inline(always)]
    pub(crate) fn header_varint(&mut self, tag: u8, n: u64) {
        match tag {
            2 => self.timestamp = n as i64,
            5 => self.severity = n as i32,
            8 => self.pid = n as i32,
            _ => {}
        }
    }

    /// Records a field entry (tag 10) starting at `at`.
    #[inline(always)]
    pub(crate) fn field_at(&mut self, at: usize) {
        if self.field_count == 0 {
            self.fields_start = at as u32;
        }
        self.field_count += 1;
    }

    /// The layout of a message of `len` bytes; a message without fields has its fields start
    /// at its end, as a scan gives.
    #[inline(always)]
    pub(crate) fn finished(mut self, len: usize) -> Self {
        self.len = len as u32;
        if self.field_count == 0 {
            self.fields_start = len as u32;
        }
        self
    }
}

impl<'a> MessageView<'a> {
    /// Scans the top level of `buf`, an encoded message.
    ///
    /// Fails when the top level is malformed: a truncated entry, a bad varint, a group, or a known
    /// tag with the wrong wire type. A field's own contents are checked when it is read.
    pub fn new(buf: &'a [u8]) -> Result<Self, ViewError> {
        if buf.len() > u32::MAX as usize {
            return Err(ViewError::TooLong);
        }
        let mut v = ViewLayout {
            len: buf.len() as u32,
            fields_start: buf.len() as u32,
            ..ViewLayout::empty()
        };
        let mut pos = 0;
        while pos < buf.len() {
            let at = pos;
            // The headers and fields with the wire types every encoder writes, parsed without the
            // generic entry below (same checks, same errors): this loop runs for every message
            // routed and every message a plugin is handed. A known tag fits in a one-byte key.
            let key = buf[pos];
            match (key >> 3, key & 7) {
                (tag @ (1 | 3 | 4 | 6 | 7 | 9 | 10), WT_LEN) => {
                    pos += 1;
                    let len = varint(buf, &mut pos)?;
                    let end = (pos as u64)
                        .checked_add(len)
                        .filter(|&e| e <= buf.len() as u64)
                        .ok_or(ViewError::Truncated(buf.len()))?;
                    if tag == 10 {
                        v.field_at(at);
                    } else {
                        v.header_bytes(tag, pos, len as usize);
                    }
                    pos = end as usize;
                    continue;
                }
                (tag @ (2 | 5 | 8), WT_VARINT) => {
                    pos += 1;
                    let n = varint(buf, &mut pos)?;
                    v.header_varint(tag, n);
                    continue;
                }
                _ => {}
            }
            let (tag, value) = next_entry(buf, &mut pos)?;
            let wrong = |wire_type| ViewError::BadWireType { tag, wire_type, at };
            match (tag, value) {
                (1, Value::Len(s)) => v.uuid = s,
                (2, Value::Varint(n)) => v.timestamp = n as i64,
                (3, Value::Len(s)) => v.msg_type = s,
                (4, Value::Len(s)) => v.logger = s,
                (5, Value::Varint(n)) => v.severity = n as i32,
                (6, Value::Len(s)) => v.payload = s,
                (7, Value::Len(s)) => v.env_version = s,
                (8, Value::Varint(n)) => v.pid = n as i32,
                (9, Value::Len(s)) => v.hostname = s,
                (10, Value::Len(_)) => {
                    if v.field_count == 0 {
                        v.fields_start = at as u32;
                    }
                    v.field_count += 1;
                }
                (1..=10, Value::Varint(_)) => return Err(wrong(WT_VARINT)),
                (1..=10, Value::Len(_)) => return Err(wrong(WT_LEN)),
                (1..=10, Value::Fixed64(_)) => return Err(wrong(WT_FIXED64)),
                (1..=10, Value::Fixed32) => return Err(wrong(WT_FIXED32)),
                (1..=10, Value::Group) => return Err(wrong(WT_START_GROUP)),
                _ => {} // unknown tags are skipped, as protobuf requires
            }
        }
        Ok(MessageView {
            buf,
            at: v,
            written: None,
        })
    }

    /// The view of `buf` whose layout is `layout`, without scanning `buf` again. `layout` must
    /// come from a view of the same bytes; when `buf` is not even of the same length, the bytes
    /// are scanned afresh.
    #[inline]
    pub fn with_layout(buf: &'a [u8], layout: ViewLayout) -> Result<Self, ViewError> {
        if layout.len as usize == buf.len() {
            Ok(MessageView {
                buf,
                at: layout,
                written: None,
            })
        } else {
            Self::new(buf)
        }
    }

    /// This view, whose fields are `fields`: what the writer of these bytes recorded, every
    /// field in order ([`MessageWriter::recording`](crate::writer::MessageWriter::recording)).
    /// Lookups then read names and values where they lie, without parsing a field.
    #[inline]
    pub fn with_written_fields(self, fields: &'a [WrittenField]) -> Self {
        debug_assert_eq!(fields.len(), self.at.field_count as usize);
        MessageView {
            written: Some(fields),
            ..self
        }
    }

    /// This view's layout, for [`MessageView::with_layout`] over a copy of the same bytes.
    #[inline]
    pub fn layout(&self) -> ViewLayout {
        self.at
    }

    /// The encoded bytes this view reads.
    pub fn bytes(&self) -> &'a [u8] {
        self.buf
    }

    /// Number of dynamic fields.
    pub fn field_count(&self) -> usize {
        self.at.field_count as usize
    }

    /// The dynamic fields, in order.
    pub fn fields(&self) -> FieldViews<'a> {
        FieldViews {
            buf: self.buf,
            pos: self.at.fields_start as usize,
            remaining: self.at.field_count,
        }
    }

    /// Fully decodes the message into its owned form.
    pub fn to_owned_message(&self) -> Result<Message, prost::DecodeError> {
        Message::decode_bytes(self.buf)
    }
}

impl MessageAccess for MessageView<'_> {
    #[inline]
    fn uuid(&self) -> &[u8] {
        self.at.uuid.of(self.buf)
    }
    #[inline]
    fn timestamp(&self) -> i64 {
        self.at.timestamp
    }
    #[inline]
    fn msg_type(&self) -> &[u8] {
        self.at.msg_type.of(self.buf)
    }
    #[inline]
    fn logger(&self) -> &[u8] {
        self.at.logger.of(self.buf)
    }
    #[inline]
    fn severity(&self) -> i32 {
        self.at.severity
    }
    #[inline]
    fn payload(&self) -> &[u8] {
        self.at.payload.of(self.buf)
    }
    #[inline]
    fn env_version(&self) -> &[u8] {
        self.at.env_version.of(self.buf)
    }
    #[inline]
    fn pid(&self) -> i32 {
        self.at.pid
    }
    #[inline]
    fn hostname(&self) -> &[u8] {
        self.at.hostname.of(self.buf)
    }
    fn field_value(&self, name: &[u8], fi: usize, ai: usize) -> Option<FieldValue<'_>> {
        if let Some(written) = self.written {
            return written_value(self.buf, written, name, fi, ai);
        }
        let mut seen = 0;
        for f in self.fields() {
            let (field_name, vt) = f.name_and_type();
            if field_name == name {
                if seen == fi {
                    return f.value_of(vt, ai);
                }
                seen += 1;
            }
        }
        None
    }
}

/// Value `ai` of field `fi` named `name` among the `written` fields of `buf`: each holds one
/// value, so only `ai == 0` has one.
#[inline]
fn written_value<'a>(
    buf: &'a [u8],
    written: &[WrittenField],
    name: &[u8],
    fi: usize,
    ai: usize,
) -> Option<FieldValue<'a>> {
    let head = head8(name);
    let mut seen = 0;
    for f in written {
        if same_name(buf, f.name, f.head, name, head) {
            if seen == fi {
                return if ai == 0 { f.value(buf) } else { None };
            }
            seen += 1;
        }
    }
    None
}

/// Where each field of one message lives: its name, its value type and its bytes. Built by an
/// [`IndexedView`] on its first field lookup and reused by every later one, so that the many
/// matchers the router evaluates for one message scan its fields once instead of once per
/// `Fields[...]` test. The buffer is kept from message to message: indexing allocates nothing
/// once it has grown to the largest field count seen.
#[derive(Debug, Default)]
pub struct FieldIndex {
    fields: RefCell<Vec<IndexedField>>,
    built: Cell<bool>,
}

#[derive(Clone, Copy, Debug)]
struct IndexedField {
    /// The name's first eight bytes ([`head8`]): most names differ there.
    head: u64,
    /// The name, within the message's bytes (empty when absent or malformed).
    name: Span,
    /// The encoded field, within the message's bytes.
    field: Span,
    value_type: ValueType,
}

/// A [`MessageView`] whose field lookups go through a [`FieldIndex`]; reads exactly what the
/// view reads (the same field for the same name and index, the same value).
#[derive(Debug)]
pub struct IndexedView<'v, 'a> {
    view: &'v MessageView<'a>,
    // Borrowed mutably so that no other IndexedView uses the index meanwhile.
    index: &'v mut FieldIndex,
}

impl<'v, 'a> IndexedView<'v, 'a> {
    /// `view` with `index`, which forgets what it held for any earlier message.
    #[inline]
    pub fn new(view: &'v MessageView<'a>, index: &'v mut FieldIndex) -> Self {
        index.built.set(false);
        IndexedView { view, index }
    }

    /// The view.
    #[inline]
    pub fn view(&self) -> &MessageView<'a> {
        self.view
    }

    fn build(&self) {
        let buf = self.view.buf;
        let mut fields = self.index.fields.borrow_mut();
        fields.clear();
        let mut pos = self.view.at.fields_start as usize;
        let mut remaining = self.view.at.field_count;
        while remaining > 0 {
            // The top level was validated by MessageView::new, so entries parse.
            let Ok((tag, value)) = next_entry(buf, &mut pos) else {
                break;
            };
            let (10, Value::Len(span)) = (tag, value) else {
                continue;
            };
            remaining -= 1;
            let (name, value_type) = FieldView { buf: span.of(buf) }.name_and_type();
            let name = if name.is_empty() {
                Span::default()
            } else {
                // `name` lies within `buf`: it was sliced out of it.
                Span {
                    start: (name.as_ptr() as usize - buf.as_ptr() as usize) as u32,
                    len: name.len() as u32,
                }
            };
            fields.push(IndexedField {
                head: head8(name.of(buf)),
                name,
                field: span,
                value_type,
            });
        }
        self.index.built.set(true);
    }
}

impl MessageAccess for IndexedView<'_, '_> {
    #[inline]
    fn uuid(&self) -> &[u8] {
        self.view.uuid()
    }
    #[inline]
    fn timestamp(&self) -> i64 {
        self.view.timestamp()
    }
    #[inline]
    fn msg_type(&self) -> &[u8] {
        self.view.msg_type()
    }
    #[inline]
    fn logger(&self) -> &[u8] {
        self.view.logger()
    }
    #[inline]
    fn severity(&self) -> i32 {
        self.view.severity()
    }
    #[inline]
    fn payload(&self) -> &[u8] {
        self.view.payload()
    }
    #[inline]
    fn env_version(&self) -> &[u8] {
        self.view.env_version()
    }
    #[inline]
    fn pid(&self) -> i32 {
        self.view.pid()
    }
    #[inline]
    fn hostname(&self) -> &[u8] {
        self.view.hostname()
    }
    fn field_value(&self, name: &[u8], fi: usize, ai: usize) -> Option<FieldValue<'_>> {
        if let Some(written) = self.view.written {
            return written_value(self.view.buf, written, name, fi, ai);
        }
        if !self.index.built.get() {
            self.build();
        }
        let buf = self.view.buf;
        let fields = self.index.fields.borrow();
        let head = head8(name);
        let mut seen = 0;
        for f in fields.iter() {
            if same_name(buf, f.name, f.head, name, head) {
                if seen == fi {
                    return FieldView {
                        buf: f.field.of(buf),
                    }
                    .value_of(f.value_type, ai);
                }
                seen += 1;
            }
        }
        None
    }
}

/// Iterator over the [`FieldView`]s of a message.
#[derive(Clone, Debug)]
pub struct FieldViews<'a> {
    buf: &'a [u8],
    pos: usize,
    remaining: u32,
}

impl<'a> Iterator for FieldViews<'a> {
    type Item = FieldView<'a>;

    fn next(&mut self) -> Option<FieldView<'a>> {
        while self.remaining > 0 {
            // The top level was validated by MessageView::new, so entries parse.
            let (tag, value) = next_entry(self.buf, &mut self.pos).ok()?;
            if let (10, Value::Len(s)) = (tag, value) {
                self.remaining -= 1;
                return Some(FieldView {
                    buf: s.of(self.buf),
                });
            }
        }
        None
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining as usize, Some(self.remaining as usize))
    }
}

/// A borrowed view of one encoded [`Field`](super::Field).
///
/// A field whose own encoding is malformed has no name and no values.
#[derive(Clone, Copy, Debug)]
pub struct FieldView<'a> {
    buf: &'a [u8],
}

impl<'a> FieldView<'a> {
    /// Walks the entries of this field; stops (returning false) on malformed input.
    fn for_each(&self, mut f: impl FnMut(u64, Value) -> bool) -> bool {
        let mut pos = 0;
        while pos < self.buf.len() {
            match next_entry(self.buf, &mut pos) {
                Ok((tag, value)) => {
                    if !f(tag, value) {
                        return true;
                    }
                }
                Err(_) => return false,
            }
        }
        true
    }

    /// The encoded bytes of this field.
    pub fn bytes(&self) -> &'a [u8] {
        self.buf
    }

    /// The field's name (the last `name` entry wins, as in a full decode); `""` when absent, as
    /// the schema's default, or when the field is malformed.
    pub fn name(&self) -> &'a [u8] {
        let mut name: &[u8] = b"";
        let buf = self.buf;
        let ok = self.for_each(|tag, value| {
            if let (1, Value::Len(s)) = (tag, value) {
                name = s.of(buf);
            }
            true
        });
        if ok { name } else { b"" }
    }

    /// The field's value type; an unknown enum value reads as STRING.
    pub fn value_type(&self) -> ValueType {
        let mut vt = 0i32;
        self.for_each(|tag, value| {
            if let (2, Value::Varint(n)) = (tag, value) {
                vt = n as i32;
            }
            true
        });
        ValueType::try_from(vt).unwrap_or(ValueType::String)
    }

    /// The representation, `""` when absent.
    pub fn representation(&self) -> &'a [u8] {
        let mut repr: &[u8] = b"";
        let buf = self.buf;
        self.for_each(|tag, value| {
            if let (3, Value::Len(s)) = (tag, value) {
                repr = s.of(buf);
            }
            true
        });
        repr
    }

    /// Number of values in the array that the value type selects.
    pub fn len(&self) -> usize {
        let mut n = 0;
        let vt = self.value_type();
        self.values_of(vt, |_| {
            n += 1;
            true
        });
        n
    }

    /// True when the selected array is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Name and value type in one pass over the field (`""` and STRING when malformed).
    #[inline]
    fn name_and_type(&self) -> (&'a [u8], ValueType) {
        if let Some((name, vt)) = skim_field(self.buf) {
            return (
                name.of(self.buf),
                ValueType::try_from(vt).unwrap_or(ValueType::String),
            );
        }
        let mut name: &[u8] = b"";
        let mut vt = 0i32;
        let buf = self.buf;
        let ok = self.for_each(|tag, value| {
            match (tag, value) {
                (1, Value::Len(s)) => name = s.of(buf),
                (2, Value::Varint(n)) => vt = n as i32,
                _ => {}
            }
            true
        });
        if !ok {
            return (b"", ValueType::String);
        }
        (name, ValueType::try_from(vt).unwrap_or(ValueType::String))
    }

    /// Value `ai` of the array that the value type selects.
    pub fn value(&self, ai: usize) -> Option<FieldValue<'a>> {
        self.value_of(self.value_type(), ai)
    }

    fn value_of(&self, vt: ValueType, ai: usize) -> Option<FieldValue<'a>> {
        let mut i = 0;
        let mut found = None;
        self.values_of(vt, |v| {
            if i == ai {
                found = Some(v);
                return false;
            }
            i += 1;
            true
        });
        found
    }

    /// Every value of the selected array, in order.
    pub fn values(&self) -> Vec<FieldValue<'a>> {
        let mut out = Vec::new();
        self.values_of(self.value_type(), |v| {
            out.push(v);
            true
        });
        out
    }

    /// Calls `f` with each value of type `vt`, packed or not, until it returns false.
    fn values_of(&self, vt: ValueType, mut f: impl FnMut(FieldValue<'a>) -> bool) {
        let buf = self.buf;
        let tag_of = match vt {
            ValueType::String => 4,
            ValueType::Bytes => 5,
            ValueType::Integer => 6,
            ValueType::Double => 7,
            ValueType::Bool => 8,
        };
        self.for_each(|tag, value| {
            if tag != tag_of {
                return true;
            }
            match (vt, value) {
                (ValueType::String, Value::Len(s)) => f(FieldValue::String(s.of(buf))),
                (ValueType::Bytes, Value::Len(s)) => f(FieldValue::Bytes(s.of(buf))),
                (ValueType::Integer, Value::Varint(n)) => f(FieldValue::Integer(n as i64)),
                (ValueType::Bool, Value::Varint(n)) => f(FieldValue::Bool(n != 0)),
                (ValueType::Double, Value::Fixed64(n)) => f(FieldValue::Double(f64::from_bits(n))),
                (ValueType::Integer | ValueType::Bool, Value::Len(s)) => {
                    let packed = s.of(buf);
                    let mut p = 0;
                    while p < packed.len() {
                        let Ok(n) = varint(packed, &mut p) else {
                            return false;
                        };
                        let v = if vt == ValueType::Bool {
                            FieldValue::Bool(n != 0)
                        } else {
                            FieldValue::Integer(n as i64)
                        };
                        if !f(v) {
                            return false;
                        }
                    }
                    true
                }
                (ValueType::Double, Value::Len(s)) => {
                    for chunk in s.of(buf).chunks_exact(8) {
                        let n = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
                        if !f(FieldValue::Double(f64::from_bits(n))) {
                            return false;
                        }
                    }
                    true
                }
                _ => true,
            }
        });
    }
}
