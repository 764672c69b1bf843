//! [`JobSession`]: the jobs one session (an MCP connection) started, so they end with it.

use std::sync::Mutex;

use super::JobId;

/// The jobs started through one session, e.g. one `cmux mcp` connection: when the
/// session ends normally, its owner ends them with
/// [`Jobs::kill_session`](super::Jobs::kill_session). Jobs started elsewhere (the CLI,
/// another session) are not its business.
///
/// Attach one to a [`ToolContext`](crate::tools::ToolContext) with
/// [`with_job_session`](crate::tools::ToolContext::with_job_session): the `bash` tool
/// records every job it starts in the background there.
#[derive(Debug, Default)]
pub struct JobSession {
    started: Mutex<Vec<JobId>>,
}

impl JobSession {
    /// An empty session.
    pub fn new() -> JobSession {
        JobSession::default()
    }

    /// Records a job this session started.
    pub fn record(&self, id: JobId) {
        self.started
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(id);
    }

    /// The jobs this session started, oldest first.
    pub fn started(&self) -> Vec<JobId> {
        self.started
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}
