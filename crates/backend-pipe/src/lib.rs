//! # cmux-backend-pipe
//!
//! The client of `cmux-host`, the helper that serves a workspace's operations on its
//! host over the cmux protocol (`docs/PROTOCOL.md`), and [`PipeRuntime`], the backend
//! that reaches a helper through any local command's stdio.
//!
//! - [`HelperConnection`]: one helper over any byte stream (an SSH channel, a child
//!   process's pipes). Requests are pipelined: each operation is one round trip, and
//!   many run at once over the one stream. The SSH backend carries it over one channel
//!   of its ControlMaster.
//! - [`PipeRuntime`]: `docker exec -i box cmux-host`, `kubectl exec -i pod -- cmux-host`,
//!   `sudo -u sandbox cmux-host`: environments without SSH become backends.
//! - [`PipeSource`]: its workspaces are existing directories, used in place.
//!
//! ## Decisions
//!
//! - **Status is typed.** A command's start, streams and exit are separate frames; its
//!   output travels only inside data frames whose length the helper wrote, so nothing
//!   a command prints can be taken for a status or a process id.
//! - **Flow control per stream.** The helper sends at most a window (1 MiB per command
//!   stream, 2 MiB for a streamed read) before the client grants more as it consumes,
//!   so a reader that stops reading stops its own command, never the connection.
//! - **Lifetime.** Dropping a `Process` releases its request: the helper kills what is
//!   left of its process group. Closing the connection (the process exits, is killed,
//!   or the channel drops) closes the helper's stdin, and the helper kills every process
//!   group it started.
//! - **Retries.** None here: an operation in flight when the connection drops fails with
//!   [`cmux_core::Error::Connection`] (it may have run); the runtime reconnects for the
//!   next operation.
//! - **Paths.** `~` and relative paths are resolved against the home directory the
//!   helper announced in its hello, with no round trip.

#![deny(missing_docs)]

mod connection;
mod errors;
mod pipe;
mod process;
mod session;
mod source;
mod streams;

pub use connection::{Handshake, HelperConnection};
pub use pipe::{PipeOptions, PipeRuntime};
pub use source::PipeSource;
