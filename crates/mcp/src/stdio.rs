//! Takes the process's stdin and stdout for the protocol alone.
//!
//! An MCP client reads every byte of our stdout as JSON-RPC. A stray `println!`, a
//! library's message, or a child process that inherits fd 1 (an ssh master, a helper
//! script) would corrupt the stream, and a child inheriting fd 0 could swallow
//! requests. So the protocol moves to private duplicates of fds 0 and 1, fd 1 is
//! pointed at stderr (where anything stray is harmless and visible in the client's
//! logs) and fd 0 at `/dev/null`.

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use cmux_core::{Error, Result};

/// The protocol's reader (the original stdin) and writer (the original stdout).
pub(crate) fn take_protocol_streams() -> Result<(tokio::fs::File, tokio::fs::File)> {
    let fail = |what: &str, e: std::io::Error| {
        Error::backend(
            "mcp",
            format!("cannot set up stdio for the MCP server ({what}): {e}"),
        )
    };
    // Duplicates are close-on-exec, so no child process inherits the protocol streams.
    let input: OwnedFd = std::io::stdin()
        .as_fd()
        .try_clone_to_owned()
        .map_err(|e| fail("duplicating stdin", e))?;
    let output: OwnedFd = std::io::stdout()
        .as_fd()
        .try_clone_to_owned()
        .map_err(|e| fail("duplicating stdout", e))?;
    let null = File::open("/dev/null").map_err(|e| fail("opening /dev/null", e))?;
    redirect(std::io::stderr().as_fd().as_raw_fd(), 1)
        .map_err(|e| fail("redirecting stdout", e))?;
    redirect(null.as_raw_fd(), 0).map_err(|e| fail("redirecting stdin", e))?;
    Ok((
        tokio::fs::File::from_std(File::from(input)),
        tokio::fs::File::from_std(File::from(output)),
    ))
}

/// `dup2(from, to)`: std has no safe equivalent for replacing a standard descriptor.
#[allow(unsafe_code)]
fn redirect(from: i32, to: i32) -> std::io::Result<()> {
    // SAFETY: dup2 only manipulates the descriptor table; `from` is a descriptor we
    // hold open for the duration of the call, and `to` (0 or 1) is replaced
    // atomically. Rust's own handles to fds 0 and 1 keep working on the new target.
    let rc = unsafe { libc::dup2(from, to) };
    if rc < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    }
}
