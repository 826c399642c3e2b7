//! What a sandbox calls out to while it runs.
//!
//! The runtime passes a [`SandboxHost`] to every call ([`Sandbox::process_message`],
//! [`Sandbox::timer_event`]); the sandbox keeps it only for the duration of that call. Injected
//! messages are handed over one by one as complete Heka protobuf encodings (Uuid and Timestamp
//! filled in; in filters the `heka.sandbox.` Type prefix, Logger and Hostname applied), borrowed
//! from a buffer the sandbox reuses: the runtime copies them into its own message buffers and can
//! route them with a zero-copy `MessageView`, or reject them synchronously — an [`InjectError`]
//! becomes the Lua error of `inject_message`, as in Heka.
//!
//! [`Sandbox::process_message`]: crate::Sandbox::process_message
//! [`Sandbox::timer_event`]: crate::Sandbox::timer_event

use std::time::{SystemTime, UNIX_EPOCH};

use hekate_model::message::Message;

use crate::error::InjectError;

/// The runtime's side of a sandbox call.
pub trait SandboxHost {
    /// A message injected by `inject_message` or `inject_payload` (inputs, decoders, filters):
    /// its protobuf encoding, valid for the duration of this call.
    fn inject(&mut self, msg: &[u8]) -> Result<(), InjectError>;

    /// Encoders only: the encoded output of `inject_payload` (the payload bytes) or
    /// `inject_message` (the protobuf encoding of the message).
    fn output(&mut self, bytes: &[u8]) -> Result<(), InjectError> {
        let _ = bytes;
        Err(InjectError::Other(
            "this host does not accept encoder output".into(),
        ))
    }

    /// The current time in nanoseconds since the epoch, stamped on injected messages without a
    /// Timestamp.
    fn now_ns(&self) -> i64 {
        system_now_ns()
    }
}

/// The system clock in nanoseconds since the epoch (0 if the clock is before 1970).
pub fn system_now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// A host that collects everything it is given; for tests, tools and simple embeddings.
#[derive(Debug, Default, Clone)]
pub struct VecHost {
    /// Encodings of the injected messages, in order.
    pub injected: Vec<Vec<u8>>,
    /// Encoder output, in order.
    pub outputs: Vec<Vec<u8>>,
    /// A fixed clock; `None` reads the system clock.
    pub now: Option<i64>,
}

impl VecHost {
    /// An empty host with the system clock.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty host whose clock always reads `ns`.
    pub fn at(ns: i64) -> Self {
        VecHost {
            now: Some(ns),
            ..Self::default()
        }
    }

    /// The injected messages, decoded (an undecodable one is skipped).
    pub fn messages(&self) -> Vec<Message> {
        self.injected
            .iter()
            .filter_map(|b| Message::decode_bytes(b).ok())
            .collect()
    }

    /// Forgets everything collected so far.
    pub fn clear(&mut self) {
        self.injected.clear();
        self.outputs.clear();
    }
}

impl SandboxHost for VecHost {
    fn inject(&mut self, msg: &[u8]) -> Result<(), InjectError> {
        self.injected.push(msg.to_vec());
        Ok(())
    }

    fn output(&mut self, bytes: &[u8]) -> Result<(), InjectError> {
        self.outputs.push(bytes.to_vec());
        Ok(())
    }

    fn now_ns(&self) -> i64 {
        self.now.unwrap_or_else(system_now_ns)
    }
}
