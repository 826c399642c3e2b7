//! What both forms of a message share: [`MessageAccess`], the read interface the matcher and
//! the plugins use, the [`FieldValue`]s it reads, and UUIDs in their string form.

/// Length of a raw UUID.
pub const UUID_SIZE: usize = 16;

/// Length of the canonical UUID string (`8-4-4-4-12` hex digits).
pub const UUID_STRING_LEN: usize = 36;

/// One value of a field, borrowed from the message it was read from.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum FieldValue<'a> {
    /// A STRING value (raw bytes: the wire does not guarantee UTF-8).
    String(&'a [u8]),
    /// A BYTES value.
    Bytes(&'a [u8]),
    /// An INTEGER value.
    Integer(i64),
    /// A DOUBLE value.
    Double(f64),
    /// A BOOL value.
    Bool(bool),
}

/// Read access to a message's headers and fields, shared by the owned and the borrowed form.
///
/// Missing string headers read as empty, a missing severity as 7 (the schema default), a missing
/// pid or timestamp as 0.
pub trait MessageAccess {
    /// The raw UUID bytes (16 when well formed).
    fn uuid(&self) -> &[u8];
    /// Nanoseconds since the epoch.
    fn timestamp(&self) -> i64;
    /// The `Type` header.
    fn msg_type(&self) -> &[u8];
    /// The `Logger` header.
    fn logger(&self) -> &[u8];
    /// The `Severity` header (7 when absent).
    fn severity(&self) -> i32;
    /// The `Payload` header.
    fn payload(&self) -> &[u8];
    /// The `EnvVersion` header.
    fn env_version(&self) -> &[u8];
    /// The `Pid` header (0 when absent).
    fn pid(&self) -> i32;
    /// The `Hostname` header.
    fn hostname(&self) -> &[u8];
    /// Value `ai` of the `fi`-th field named `name` (both zero-based), read from the array that the
    /// field's value type selects. `None` when the field or the element does not exist.
    fn field_value(&self, name: &[u8], fi: usize, ai: usize) -> Option<FieldValue<'_>>;
}

/// Writes the canonical string form of a UUID (`%08x-%04x-%04x-%04x-%012x`) into `out`.
///
/// Returns `None` when `raw` is not 16 bytes long (Heka prints an empty string then).
pub fn format_uuid(raw: &[u8], out: &mut [u8; UUID_STRING_LEN]) -> Option<()> {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    if raw.len() != UUID_SIZE {
        return None;
    }
    let mut o = 0;
    for (i, b) in raw.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out[o] = b'-';
            o += 1;
        }
        out[o] = HEX[(b >> 4) as usize];
        out[o + 1] = HEX[(b & 0x0f) as usize];
        o += 2;
    }
    Some(())
}

/// The canonical string form of a UUID, or `""` when `raw` is not 16 bytes long.
pub fn uuid_string(raw: &[u8]) -> String {
    let mut buf = [0u8; UUID_STRING_LEN];
    match format_uuid(raw, &mut buf) {
        Some(()) => buf.iter().map(|&b| b as char).collect(),
        None => String::new(),
    }
}

/// Parses the canonical (or undashed) string form of a UUID into its 16 raw bytes.
pub fn parse_uuid(s: &str) -> Option<[u8; UUID_SIZE]> {
    uuid::Uuid::parse_str(s).ok().map(|u| *u.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_string_is_canonical() {
        let raw: Vec<u8> = (0u8..16).collect();
        assert_eq!(uuid_string(&raw), "00010203-0405-0607-0809-0a0b0c0d0e0f");
        assert_eq!(uuid_string(&raw[..15]), "");
        assert_eq!(parse_uuid(&uuid_string(&raw)).unwrap().to_vec(), raw);
    }
}
