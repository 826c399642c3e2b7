//! hekate's engine.
pub mod framing;
pub mod matcher;
pub mod message;
