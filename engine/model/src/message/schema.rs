//! Heka's protobuf schema (`message.proto`, proto2), as prost derives.
//!
//! Tags, types and defaults follow Heka exactly so that hekate reads and writes the same bytes as
//! hekad. No `protoc` is needed at build time.

/// The type of the values a [`Field`] carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum ValueType {
    /// `value_string`
    String = 0,
    /// `value_bytes`
    Bytes = 1,
    /// `value_integer`
    Integer = 2,
    /// `value_double`
    Double = 3,
    /// `value_bool`
    Bool = 4,
}

/// HMAC hash function named in a signed stream [`Header`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum HmacHashFunction {
    /// HMAC-MD5 (Heka's default).
    Md5 = 0,
    /// HMAC-SHA1.
    Sha1 = 1,
}

/// A dynamic field: a name and an array of one or more values of one type.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Field {
    /// Field name; several fields may share a name.
    #[prost(string, required, tag = "1")]
    pub name: String,
    /// Which value array is meaningful.
    #[prost(enumeration = "ValueType", optional, tag = "2", default = "String")]
    pub value_type: Option<i32>,
    /// Free-form unit or format hint ("B", "ns", "count", "json", ...).
    #[prost(string, optional, tag = "3")]
    pub representation: Option<String>,
    /// Values when `value_type` is STRING.
    #[prost(string, repeated, tag = "4")]
    pub value_string: Vec<String>,
    /// Values when `value_type` is BYTES.
    #[prost(bytes = "vec", repeated, tag = "5")]
    pub value_bytes: Vec<Vec<u8>>,
    /// Values when `value_type` is INTEGER.
    #[prost(int64, repeated, packed = "true", tag = "6")]
    pub value_integer: Vec<i64>,
    /// Values when `value_type` is DOUBLE.
    #[prost(double, repeated, packed = "true", tag = "7")]
    pub value_double: Vec<f64>,
    /// Values when `value_type` is BOOL.
    #[prost(bool, repeated, packed = "true", tag = "8")]
    pub value_bool: Vec<bool>,
}

/// A Heka message, the one model every record is turned into.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Message {
    /// 16 raw bytes (UUIDv4).
    #[prost(bytes = "vec", required, tag = "1")]
    pub uuid: Vec<u8>,
    /// Nanoseconds since the Unix epoch.
    #[prost(int64, required, tag = "2")]
    pub timestamp: i64,
    /// Message type.
    #[prost(string, optional, tag = "3")]
    pub r#type: Option<String>,
    /// Name of the source.
    #[prost(string, optional, tag = "4")]
    pub logger: Option<String>,
    /// Syslog-style severity 0..7; reads as 7 when absent.
    #[prost(int32, optional, tag = "5", default = "7")]
    pub severity: Option<i32>,
    /// Free-form payload.
    #[prost(string, optional, tag = "6")]
    pub payload: Option<String>,
    /// Envelope version.
    #[prost(string, optional, tag = "7")]
    pub env_version: Option<String>,
    /// Process id of the source.
    #[prost(int32, optional, tag = "8")]
    pub pid: Option<i32>,
    /// Host of the source.
    #[prost(string, optional, tag = "9")]
    pub hostname: Option<String>,
    /// Dynamic fields, in order; names may repeat.
    #[prost(message, repeated, tag = "10")]
    pub fields: Vec<Field>,
}

/// The header that precedes each message in a Heka stream.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Header {
    /// Length in bytes of the encoded message that follows.
    #[prost(uint32, required, tag = "1")]
    pub message_length: u32,
    /// Hash function of `hmac`.
    #[prost(enumeration = "HmacHashFunction", optional, tag = "3", default = "Md5")]
    pub hmac_hash_function: Option<i32>,
    /// Name of the signer.
    #[prost(string, optional, tag = "4")]
    pub hmac_signer: Option<String>,
    /// Version of the signer's key.
    #[prost(uint32, optional, tag = "5")]
    pub hmac_key_version: Option<u32>,
    /// HMAC of the encoded message bytes.
    #[prost(bytes = "vec", optional, tag = "6")]
    pub hmac: Option<Vec<u8>>,
}
