//! Heka-compatible TOML configuration for hekate.
