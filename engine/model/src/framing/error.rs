//! Why a record could not be written, or a signer not configured.

/// Why a record could not be written, or a signer not configured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FramingError {
    /// The message is longer than the configured limit.
    #[error("message of {len} bytes exceeds max_message_size {max}")]
    MessageTooLarge {
        /// Length of the message.
        len: usize,
        /// The limit.
        max: u32,
    },
    /// The header (usually because of a long signer name) does not fit its one-byte length.
    #[error("framing header of {len} bytes exceeds the 255-byte limit")]
    HeaderTooLarge {
        /// Length the header would have.
        len: usize,
    },
    /// A signer section name is not `<signer>_<version>`.
    #[error("signer section `{section}` is not named <signer>_<version>, e.g. `ops_0`")]
    BadSignerSection {
        /// The section name.
        section: String,
    },
}
