//! hekate's data model, below every other crate of the workspace (it depends on none of them):
//!
//! - [`message`]: Heka's message schema, the owned [`message::Message`] and the zero-copy
//!   [`message::MessageView`] (headers located in place, fields indexed once for every matcher);
//! - [`framing`]: Heka's stream framing (record separator, header, HMAC signatures) and the
//!   splitter that finds records in a byte stream;
//! - [`matcher`]: Heka's message-matcher language, parsed once and compiled into a flat program;
//! - [`statsd`]: the statsd line protocol (`name:value|type[|@rate][|#tags]`), parsed in place;
//! - [`writer`]: writing messages straight into a reused buffer, for inputs that turn payloads
//!   into messages on the hot path;
//! - [`varint`]: protobuf varints (prost's), for every hand-written reader and writer above.
//!
//! The plugin API and the runtime live in `hekate-engine`, above this crate.

pub mod bytes;
pub mod framing;
pub mod matcher;
pub mod message;
pub mod statsd;
pub mod varint;
pub mod writer;
