//! Progress of long workspace operations (sync, worktree, init hook), reported to
//! whoever drives them: the CLI prints to stderr, the MCP server or a library may do
//! otherwise.

/// Which stream of the init hook a line came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HookStream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// One thing worth telling the user while a workspace operation runs.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub enum ProgressEvent<'a> {
    /// A step starts ("creating worktree ...").
    Step(&'a str),
    /// Something the user should know that does not stop the operation.
    Warning(&'a str),
    /// How far a transfer has got (the push of a project's commits to a host): one
    /// event per update of git's progress, so a front end can draw a bar.
    Transfer {
        /// What is transferred ("push to host").
        what: &'a str,
        /// The phase, as git names it: `Counting objects`, `Writing objects`...
        phase: &'a str,
        /// Objects done in this phase.
        done: u64,
        /// Objects in this phase, when known.
        total: Option<u64>,
        /// Bytes sent so far, when known.
        bytes: Option<u64>,
        /// The phase is complete.
        finished: bool,
    },
    /// One line printed by the init hook (without its newline).
    HookLine {
        /// The stream it came from.
        stream: HookStream,
        /// The line, invalid UTF-8 replaced.
        line: &'a str,
    },
}

/// Receives [`ProgressEvent`]s. Any `Fn(ProgressEvent)` closure is one.
pub trait Progress: Send + Sync {
    /// Called for every event, in order.
    fn event(&self, event: ProgressEvent<'_>);
}

impl<F: Fn(ProgressEvent<'_>) + Send + Sync> Progress for F {
    fn event(&self, event: ProgressEvent<'_>) {
        self(event)
    }
}

/// Discards every event.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn event(&self, _event: ProgressEvent<'_>) {}
}
