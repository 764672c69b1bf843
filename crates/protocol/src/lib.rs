//! # cmux-protocol
//!
//! The wire protocol between cmux and `cmux-host`, the helper that runs on a host as the
//! user and serves every operation of a workspace over one byte stream (an SSH channel,
//! `docker exec -i`, `sudo -u`, any pipe). The full description, with the reasons behind
//! each choice, is `docs/PROTOCOL.md`; this crate is its only implementation of the
//! encoding, used by both ends.
//!
//! - [`frame`]: a 9-byte header (length, kind, request id) and a body. Nothing a command
//!   prints can be taken for a frame: command output only ever travels *inside* the body
//!   of an [`FrameKind::Out`]/[`FrameKind::ErrOut`] frame whose length the helper wrote.
//! - [`message`]: the JSON bodies of requests, replies, errors and statuses.
//!
//! Both ends check [`PROTOCOL_VERSION`] in the helper's first frame
//! ([`FrameKind::Hello`]); a mismatch is refused, never guessed around.

#![deny(missing_docs)]

pub mod frame;
pub mod message;

pub use frame::{Frame, FrameKind, FrameReader, Header, HEADER_LEN, MAX_BODY};
pub use message::*;

/// Version of the protocol described by this crate. Bumped on any incompatible change;
/// the helper's build hash (in [`message::Hello`]) pins the exact binary.
pub const PROTOCOL_VERSION: u32 = 1;

/// Errors of encoding and decoding frames.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// A frame header announced a body larger than [`MAX_BODY`]: the stream is not
    /// speaking this protocol (a shell printed something) or is corrupt.
    #[error("frame of {len} bytes is over the limit of {MAX_BODY} bytes: the stream is not the cmux helper protocol")]
    TooLarge {
        /// The announced length.
        len: u32,
    },
    /// A frame kind this version does not know.
    #[error("unknown frame kind {0}: the peer speaks another protocol version")]
    UnknownKind(u8),
    /// A JSON body did not parse as the expected message.
    #[error("malformed {what} message: {source}")]
    Json {
        /// Which message was expected.
        what: &'static str,
        /// The parser's complaint.
        #[source]
        source: serde_json::Error,
    },
    /// A body had the wrong size for its kind.
    #[error("malformed {what} frame: {len} bytes")]
    BadLength {
        /// Which frame kind.
        what: &'static str,
        /// The body's length.
        len: usize,
    },
}
