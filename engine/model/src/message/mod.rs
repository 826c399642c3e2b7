//! The Heka message model.
//!
//! Two forms of one message:
//! - [`Message`] (with [`Field`]), the owned prost struct, for building and injecting messages;
//! - [`MessageView`], a borrowed lazy view over the encoded bytes that reads headers and fields
//!   for routing without allocating.
//!
//! Both implement [`MessageAccess`], the read interface the matcher and the plugins use.

mod access;
mod owned;
mod schema;
mod view;

pub use access::{
    FieldValue, MessageAccess, UUID_SIZE, UUID_STRING_LEN, format_uuid, parse_uuid, uuid_string,
};
pub use schema::{Field, Header, HmacHashFunction, Message, ValueType};
pub use view::{
    FieldIndex, FieldView, FieldViews, IndexedView, MessageView, ViewError, ViewLayout,
    WrittenField,
};
