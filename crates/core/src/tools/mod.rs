//! Agent tools (bash, read, write, edit, list, glob, grep, and the background jobs'
//! job_output, job_kill and jobs), built only on the
//! [`crate::Runtime`] trait so they behave identically on every backend.
//!
//! Every tool takes a [`ToolContext`] (a runtime and the workspace directory inside it)
//! and a typed input that deserializes from JSON with the field names an MCP client
//! sends, and returns a typed result that serializes for `--json` and renders for a
//! model with `to_text()`. Failures are [`crate::Error`]s whose messages name
//! the path and say what to do next.
//!
//! Each tool is defined once, as a [`Tool`] (name, description, effect, input with its
//! derived JSON schema, handler, output rendering), and registered once, in [`TOOLS`].
//! The MCP server lists and dispatches from that list; [`call`] runs any of them from
//! JSON; the typed functions ([`bash`], [`read_file`]...) serve library callers.
//!
//! Paths given to tools: relative paths are resolved against the workspace directory,
//! absolute paths are used as given, `~` and `~/x` name the runtime user's home.
//!
//! Round trips (each costs ~1-3 ms over SSH): `bash` 1, `read_file` 2 (stat, read),
//! `write_file` 1 (2 when parent directories must be created), `edit_file` 2 (read,
//! write), `list_dir` 1, `glob` 1, `grep` 2 (list, fetch) whatever the number of files
//! (one more for either when a git-ignored directory is searched on purpose); `bash`
//! in the background 1 (2 with a `cwd`), `job_output`, `job_kill` and `jobs` 1.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};
use crate::jobs::JobSession;
use crate::path::RemotePath;
use crate::runtime::Runtime;

mod bash;
mod cut;
mod edit;
mod files;
mod generic;
mod glob;
mod grep;
mod image;
mod job_kill;
mod job_output;
mod jobs;
mod list;
mod read;
mod schema;
mod tar;
mod text;
mod tool;
mod write;

pub use crate::engine::OutputMode;
pub use bash::{
    bash, bash_background, bash_cancellable, BashBackground, BashInput, BashOutput, BashResult,
    BashTool, BASH_DEFAULT_TIMEOUT_SECS, BASH_HEAD_CHARS, BASH_TAIL_CHARS,
};
pub use edit::{edit_file, EditFileInput, EditFileOutput, EditFileTool};
pub use glob::{glob, GlobInput, GlobOutput, GlobTool, GLOB_MAX_RESULTS};
pub use grep::{grep, GrepCount, GrepInput, GrepMatch, GrepOutput, GrepTool, GREP_MAX_MATCHES};
pub use job_kill::{job_kill, JobKillInput, JobKillOutput, JobKillTool};
pub use job_output::{
    job_output, JobOutput, JobOutputInput, JobOutputTool, JOB_HEAD_BYTES, JOB_TAIL_BYTES,
};
pub use jobs::{JobsInput, JobsOutput, JobsTool};
pub use list::{list_dir, ListDirEntry, ListDirInput, ListDirOutput, ListDirTool};
pub use read::{
    read_file, ReadFileInput, ReadFileOutput, ReadFileTool, ReadImage, ReadText,
    READ_MAX_FILE_BYTES, READ_MAX_IMAGE_BYTES,
};
pub use schema::input_schema;
pub use tool::{AnyTool, CallFuture, Content, Effect, Tool, ToolOutput, ToolResult};
pub use write::{write_file, WriteFileInput, WriteFileOutput, WriteFileTool};

/// Where tools run: a runtime and the workspace directory inside it.
#[derive(Clone, Debug)]
pub struct ToolContext {
    /// The runtime every operation goes through.
    pub runtime: Arc<dyn Runtime>,
    /// The workspace directory (absolute); relative tool paths resolve against it.
    pub root: RemotePath,
    /// Where background jobs started through this context are recorded, so they end
    /// with the session (see [`ToolContext::with_job_session`]).
    job_session: Option<Arc<JobSession>>,
}

impl ToolContext {
    /// A context for the workspace at `root` (an absolute path inside `runtime`).
    pub fn new(runtime: Arc<dyn Runtime>, root: RemotePath) -> Self {
        ToolContext {
            runtime,
            root,
            job_session: None,
        }
    }

    /// Records the background jobs `bash` starts through this context in `session`,
    /// whose owner kills them when the session ends (`cmux mcp` does). Without one,
    /// jobs run until they end or are killed.
    pub fn with_job_session(mut self, session: Arc<JobSession>) -> Self {
        self.job_session = Some(session);
        self
    }

    /// The session background jobs are recorded in, if any.
    pub fn job_session(&self) -> Option<&Arc<JobSession>> {
        self.job_session.as_ref()
    }

    /// The runtime's label, for error messages.
    pub fn host(&self) -> &str {
        self.runtime.host()
    }

    /// Resolves a path given to a tool: `~` forms through the runtime, absolute paths
    /// as given, anything else against the workspace directory. `.` and `..` are
    /// normalised lexically so results read cleanly.
    pub async fn resolve(&self, path: &str) -> Result<RemotePath> {
        if path.is_empty() {
            return Err(Error::invalid(
                "path is empty: give a file path, relative to the workspace or absolute",
            ));
        }
        if path.starts_with('~') {
            return self.runtime.resolve_path(path).await;
        }
        let joined = self.root.join(path)?;
        if joined.is_absolute() {
            Ok(joined.normalize())
        } else {
            // A root given as `~/ws` or relative: the runtime makes it absolute.
            self.runtime.resolve_path(joined.as_str()).await
        }
    }

    /// Resolves an optional directory argument, defaulting to the workspace.
    pub(crate) async fn resolve_dir(&self, path: Option<&str>) -> Result<RemotePath> {
        match path {
            None | Some("") => self.resolve(".").await,
            Some(p) => self.resolve(p).await,
        }
    }
}

/// Every tool, in the order an MCP server lists them. Adding a tool is one line here
/// (plus its own module, where its [`Tool`] impl defines everything about it).
pub static TOOLS: &[&dyn AnyTool] = &[
    &BashTool,
    &ReadFileTool,
    &WriteFileTool,
    &EditFileTool,
    &ListDirTool,
    &GlobTool,
    &GrepTool,
    &JobOutputTool,
    &JobKillTool,
    &JobsTool,
];

/// The tool called `name`.
pub fn find(name: &str) -> Option<&'static dyn AnyTool> {
    TOOLS.iter().copied().find(|t| t.name() == name)
}

/// The names of [`TOOLS`], comma-separated, for messages.
pub fn names() -> String {
    TOOLS
        .iter()
        .map(|t| t.name())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Runs the tool `name` with JSON `input` (what an MCP `tools/call` carries).
pub async fn call(ctx: &ToolContext, name: &str, input: serde_json::Value) -> Result<ToolOutput> {
    call_cancellable(ctx, name, input, CancellationToken::new()).await
}

/// [`call`], stopped when `cancel` is cancelled (a running command is killed).
pub async fn call_cancellable(
    ctx: &ToolContext,
    name: &str,
    input: serde_json::Value,
    cancel: CancellationToken,
) -> Result<ToolOutput> {
    let tool = find(name)
        .ok_or_else(|| Error::invalid(format!("unknown tool {name:?}: use one of {}", names())))?;
    tool.call(ctx, input, cancel).await
}

/// A tool call as data: the tool's name and its JSON input. Serializes as
/// `{"tool": "bash", "input": {"command": "ls"}}`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
pub struct ToolCall {
    /// The tool's name (see [`TOOLS`]).
    pub tool: String,
    /// Its arguments, as the tool's input schema describes them.
    pub input: serde_json::Value,
}

impl ToolCall {
    /// A call of the tool `T` with a typed input.
    pub fn of<T: Tool>(input: &T::Input) -> Result<Self>
    where
        T::Input: Serialize,
    {
        let input = serde_json::to_value(input)
            .map_err(|e| Error::invalid(format!("cannot encode the input of {}: {e}", T::NAME)))?;
        Ok(ToolCall {
            tool: T::NAME.to_owned(),
            input,
        })
    }

    /// Runs this call.
    pub async fn run(self, ctx: &ToolContext) -> Result<ToolOutput> {
        call(ctx, &self.tool, self.input).await
    }
}
