//! Building and reading the owned [`Message`].

use prost::Message as _;

use super::access::{FieldValue, MessageAccess};
use super::schema::{Field, Message, ValueType};
use crate::writer::{now_ns, random_uuid};

impl Message {
    /// A new message with a random v4 UUID and the current time; every other header unset.
    pub fn new_now() -> Self {
        Message {
            uuid: random_uuid().to_vec(),
            timestamp: now_ns(),
            ..Default::default()
        }
    }

    /// Decodes a message from its protobuf encoding.
    pub fn decode_bytes(bytes: &[u8]) -> Result<Self, prost::DecodeError> {
        Message::decode(bytes)
    }

    /// The protobuf encoding of this message.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.encode_to_vec()
    }

    /// Appends a field.
    pub fn add_field(&mut self, field: Field) -> &mut Self {
        self.fields.push(field);
        self
    }

    /// The first field named `name`.
    pub fn find_first_field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// Every field named `name`, in order.
    pub fn find_all_fields<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Field> + 'a {
        self.fields.iter().filter(move |f| f.name == name)
    }

    /// The first value of the first field named `name`.
    pub fn get_field_value(&self, name: &str) -> Option<FieldValue<'_>> {
        self.find_first_field(name).and_then(|f| f.value(0))
    }
}

impl Field {
    fn with_type(name: impl Into<String>, value_type: ValueType) -> Self {
        Field {
            name: name.into(),
            value_type: Some(value_type as i32),
            ..Default::default()
        }
    }

    /// A STRING field with one value.
    pub fn string(name: impl Into<String>, value: impl Into<String>) -> Self {
        let mut f = Self::with_type(name, ValueType::String);
        f.value_string.push(value.into());
        f
    }

    /// A BYTES field with one value.
    pub fn bytes(name: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        let mut f = Self::with_type(name, ValueType::Bytes);
        f.value_bytes.push(value.into());
        f
    }

    /// An INTEGER field with one value.
    pub fn integer(name: impl Into<String>, value: i64) -> Self {
        let mut f = Self::with_type(name, ValueType::Integer);
        f.value_integer.push(value);
        f
    }

    /// A DOUBLE field with one value.
    pub fn double(name: impl Into<String>, value: f64) -> Self {
        let mut f = Self::with_type(name, ValueType::Double);
        f.value_double.push(value);
        f
    }

    /// A BOOL field with one value.
    pub fn boolean(name: impl Into<String>, value: bool) -> Self {
        let mut f = Self::with_type(name, ValueType::Bool);
        f.value_bool.push(value);
        f
    }

    /// Sets the representation.
    pub fn with_representation(mut self, representation: impl Into<String>) -> Self {
        self.representation = Some(representation.into());
        self
    }

    /// The field's value type; an unknown enum value reads as STRING, as in Heka.
    pub fn kind(&self) -> ValueType {
        ValueType::try_from(self.value_type.unwrap_or(0)).unwrap_or(ValueType::String)
    }

    /// Number of values in the array that the value type selects.
    pub fn len(&self) -> usize {
        match self.kind() {
            ValueType::String => self.value_string.len(),
            ValueType::Bytes => self.value_bytes.len(),
            ValueType::Integer => self.value_integer.len(),
            ValueType::Double => self.value_double.len(),
            ValueType::Bool => self.value_bool.len(),
        }
    }

    /// True when the selected value array is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Value `ai` of the array that the value type selects.
    pub fn value(&self, ai: usize) -> Option<FieldValue<'_>> {
        match self.kind() {
            ValueType::String => self
                .value_string
                .get(ai)
                .map(|s| FieldValue::String(s.as_bytes())),
            ValueType::Bytes => self.value_bytes.get(ai).map(|b| FieldValue::Bytes(b)),
            ValueType::Integer => self.value_integer.get(ai).map(|&v| FieldValue::Integer(v)),
            ValueType::Double => self.value_double.get(ai).map(|&v| FieldValue::Double(v)),
            ValueType::Bool => self.value_bool.get(ai).map(|&v| FieldValue::Bool(v)),
        }
    }
}

fn opt_bytes(s: &Option<String>) -> &[u8] {
    s.as_deref().unwrap_or("").as_bytes()
}

impl MessageAccess for Message {
    fn uuid(&self) -> &[u8] {
        &self.uuid
    }
    fn timestamp(&self) -> i64 {
        self.timestamp
    }
    fn msg_type(&self) -> &[u8] {
        opt_bytes(&self.r#type)
    }
    fn logger(&self) -> &[u8] {
        opt_bytes(&self.logger)
    }
    fn severity(&self) -> i32 {
        self.severity.unwrap_or(7)
    }
    fn payload(&self) -> &[u8] {
        opt_bytes(&self.payload)
    }
    fn env_version(&self) -> &[u8] {
        opt_bytes(&self.env_version)
    }
    fn pid(&self) -> i32 {
        self.pid.unwrap_or(0)
    }
    fn hostname(&self) -> &[u8] {
        opt_bytes(&self.hostname)
    }
    fn field_value(&self, name: &[u8], fi: usize, ai: usize) -> Option<FieldValue<'_>> {
        self.fields
            .iter()
            .filter(|f| f.name.as_bytes() == name)
            .nth(fi)
            .and_then(|f| f.value(ai))
    }
}
