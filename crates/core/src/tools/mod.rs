//! Agent tools (bash, read, write, edit, list, glob, grep), built only on the
//! [`Runtime`](crate::Runtime) trait so they behave identically on every backend.
//!
//! Every tool takes a [`ToolContext`] (a runtime and the workspace directory inside it)
//! and a typed input that deserializes from JSON with the field names an MCP client
//! sends, and returns a typed result that serializes for `--json` and renders for a
//! model with `to_text()`. Failures are [`Error`](crate::Error)s whose messages name
//! the path and say what to do next.
//!
//! Paths given to tools: relative paths are resolved against the workspace directory,
//! absolute paths are used as given, `~` and `~/x` name the runtime user's home.
//!
//! Round trips (each costs ~1-3 ms over SSH): `bash` 1, `read_file` 2 (stat, read),
//! `write_file` 1 (2 when parent directories must be created), `edit_file` 2 (read,
//! write), `list_dir` 1, `glob` 1, `grep` 2 (list, fetch) whatever the number of files
//! (one more for either when a git-ignored directory is searched on purpose).

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::path::RemotePath;
use crate::runtime::Runtime;

mod bash;
mod edit;
mod files;
mod generic;
mod glob;
mod grep;
mod list;
mod read;
mod tar;
mod text;
mod write;

pub use crate::engine::OutputMode;
pub use bash::{bash, bash_cancellable, BashInput, BashOutput, BASH_DEFAULT_TIMEOUT_SECS};
pub use edit::{edit_file, EditFileInput, EditFileOutput};
pub use glob::{glob, GlobInput, GlobOutput, GLOB_MAX_RESULTS};
pub use grep::{grep, GrepCount, GrepInput, GrepMatch, GrepOutput, GREP_MAX_MATCHES};
pub use list::{list_dir, ListDirEntry, ListDirInput, ListDirOutput};
pub use read::{read_file, ReadFileInput, ReadFileOutput, READ_MAX_FILE_BYTES};
pub use write::{write_file, WriteFileInput, WriteFileOutput};

/// Where tools run: a runtime and the workspace directory inside it.
#[derive(Clone, Debug)]
pub struct ToolContext {
    /// The runtime every operation goes through.
    pub runtime: Arc<dyn Runtime>,
    /// The workspace directory (absolute); relative tool paths resolve against it.
    pub root: RemotePath,
}

impl ToolContext {
    /// A context for the workspace at `root` (an absolute path inside `runtime`).
    pub fn new(runtime: Arc<dyn Runtime>, root: RemotePath) -> Self {
        ToolContext { runtime, root }
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

/// Any tool's input, tagged by the tool's name: what an MCP `tools/call` carries.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(tag = "tool", content = "input", rename_all = "snake_case")]
pub enum ToolCall {
    /// [`bash`].
    Bash(BashInput),
    /// [`read_file`].
    ReadFile(ReadFileInput),
    /// [`write_file`].
    WriteFile(WriteFileInput),
    /// [`edit_file`].
    EditFile(EditFileInput),
    /// [`list_dir`].
    ListDir(ListDirInput),
    /// [`glob()`].
    Glob(GlobInput),
    /// [`grep()`].
    Grep(GrepInput),
}

/// Any tool's result.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "tool", content = "output", rename_all = "snake_case")]
pub enum ToolOutput {
    /// From [`bash`].
    Bash(BashOutput),
    /// From [`read_file`].
    ReadFile(ReadFileOutput),
    /// From [`write_file`].
    WriteFile(WriteFileOutput),
    /// From [`edit_file`].
    EditFile(EditFileOutput),
    /// From [`list_dir`].
    ListDir(ListDirOutput),
    /// From [`glob()`].
    Glob(GlobOutput),
    /// From [`grep()`].
    Grep(GrepOutput),
}

impl ToolOutput {
    /// What a model sees.
    pub fn to_text(&self) -> String {
        match self {
            ToolOutput::Bash(o) => o.to_text(),
            ToolOutput::ReadFile(o) => o.to_text(),
            ToolOutput::WriteFile(o) => o.to_text(),
            ToolOutput::EditFile(o) => o.to_text(),
            ToolOutput::ListDir(o) => o.to_text(),
            ToolOutput::Glob(o) => o.to_text(),
            ToolOutput::Grep(o) => o.to_text(),
        }
    }
}

/// The tool names [`call`] accepts, as an MCP server lists them.
pub const TOOL_NAMES: &[&str] = &[
    "bash",
    "read_file",
    "write_file",
    "edit_file",
    "list_dir",
    "glob",
    "grep",
];

/// Runs the tool `name` with JSON `input` (what an MCP `tools/call` carries).
pub async fn call(ctx: &ToolContext, name: &str, input: serde_json::Value) -> Result<ToolOutput> {
    fn parse<T: serde::de::DeserializeOwned>(name: &str, input: serde_json::Value) -> Result<T> {
        serde_json::from_value(input)
            .map_err(|e| Error::invalid(format!("invalid input for tool {name}: {e}")))
    }
    Ok(match name {
        "bash" => ToolOutput::Bash(bash(ctx, parse(name, input)?).await?),
        "read_file" => ToolOutput::ReadFile(read_file(ctx, parse(name, input)?).await?),
        "write_file" => ToolOutput::WriteFile(write_file(ctx, parse(name, input)?).await?),
        "edit_file" => ToolOutput::EditFile(edit_file(ctx, parse(name, input)?).await?),
        "list_dir" => ToolOutput::ListDir(list_dir(ctx, parse(name, input)?).await?),
        "glob" => ToolOutput::Glob(glob(ctx, parse(name, input)?).await?),
        "grep" => ToolOutput::Grep(grep(ctx, parse(name, input)?).await?),
        other => {
            return Err(Error::invalid(format!(
                "unknown tool {other:?}: use one of {}",
                TOOL_NAMES.join(", ")
            )))
        }
    })
}

impl ToolCall {
    /// Runs this call.
    pub async fn run(self, ctx: &ToolContext) -> Result<ToolOutput> {
        Ok(match self {
            ToolCall::Bash(i) => ToolOutput::Bash(bash(ctx, i).await?),
            ToolCall::ReadFile(i) => ToolOutput::ReadFile(read_file(ctx, i).await?),
            ToolCall::WriteFile(i) => ToolOutput::WriteFile(write_file(ctx, i).await?),
            ToolCall::EditFile(i) => ToolOutput::EditFile(edit_file(ctx, i).await?),
            ToolCall::ListDir(i) => ToolOutput::ListDir(list_dir(ctx, i).await?),
            ToolCall::Glob(i) => ToolOutput::Glob(glob(ctx, i).await?),
            ToolCall::Grep(i) => ToolOutput::Grep(grep(ctx, i).await?),
        })
    }
}
