//! hekate's engine.
pub mod message;
