//! `write_file`: replaces or creates a whole file, atomically.

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::tool::{Effect, Tool, ToolResult};
use super::ToolContext;
use crate::error::Result;
use crate::runtime::RuntimeExt;

/// The `write_file` tool: see [`WriteFileTool::DESCRIPTION`](Tool::DESCRIPTION).
#[derive(Clone, Copy, Debug, Default)]
pub struct WriteFileTool;

#[async_trait]
impl Tool for WriteFileTool {
    const NAME: &'static str = "write_file";
    const DESCRIPTION: &'static str = "Create a file or replace its whole content. The \
        write is atomic (a reader sees the old or the new file, never a mix), an existing \
        file keeps its permissions, a symlink is written through to its target, and \
        missing parent directories are created. Relative paths resolve against the \
        workspace. To change part of an existing file, prefer edit_file: it sends only the \
        change and checks that the text to replace is still there.";
    // Writing the same content twice leaves the same file.
    const EFFECT: Effect = Effect::Idempotent;
    type Input = WriteFileInput;
    type Output = WriteFileOutput;

    async fn run(
        &self,
        ctx: &ToolContext,
        input: WriteFileInput,
        _cancel: CancellationToken,
    ) -> Result<WriteFileOutput> {
        write_file(ctx, input).await
    }
}

/// Input of [`write_file`].
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WriteFileInput {
    /// The file to create or replace, relative to the workspace or absolute
    /// (`file_path` is accepted too). Missing parent directories are created.
    #[serde(alias = "file_path")]
    pub path: String,
    /// The complete new content of the file.
    pub content: String,
}

/// Result of [`write_file`].
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct WriteFileOutput {
    /// The resolved path.
    pub path: String,
    /// Bytes written.
    pub bytes_written: u64,
}

impl WriteFileOutput {
    /// What a model sees.
    pub fn to_text(&self) -> String {
        format!(
            "Wrote {} bytes to {}",
            self.bytes_written,
            super::text::display_name(&self.path)
        )
    }
}

impl ToolResult for WriteFileOutput {
    fn text(&self) -> String {
        self.to_text()
    }
}

/// Writes `content` to `path` atomically (readers see the old or the new file), creating
/// missing parent directories. An existing file keeps its mode.
pub async fn write_file(ctx: &ToolContext, input: WriteFileInput) -> Result<WriteFileOutput> {
    let path = ctx.resolve(&input.path).await?;
    let data = input.content.as_bytes();
    ctx.runtime.write_file_creating_dirs(&path, data).await?;
    Ok(WriteFileOutput {
        path: path.as_str().to_owned(),
        bytes_written: data.len() as u64,
    })
}
