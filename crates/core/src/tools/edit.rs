//! `edit_file`: replaces an exact string in a file, keeping its line endings.
//!
//! The replacement is the engine's ([`crate::engine::apply_edit`]). Where the backend
//! edits where the file is ([`Runtime::edit`](crate::Runtime::edit)) that is one step;
//! elsewhere one read and one write (no stat, no extra round trip). Every check happens
//! on the content in memory, and nothing is written when a check fails.

use serde::{Deserialize, Serialize};

use super::text::{display_name, plural};
use super::ToolContext;
use crate::engine::{apply_edit, EditFailure, EditReply, EditSpec};
use crate::error::{Error, Result};
use crate::path::RemotePath;

/// Input of [`edit_file`].
#[derive(Clone, Debug, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EditFileInput {
    /// The file to edit, relative to the workspace or absolute (`file_path` is
    /// accepted too).
    #[serde(alias = "file_path")]
    pub path: String,
    /// The exact text to replace, including whitespace and indentation. It must occur
    /// exactly once unless `replace_all` is true: include surrounding lines to make it
    /// unique.
    pub old_string: String,
    /// The text to put in its place (may be empty to delete).
    pub new_string: String,
    /// Replace every occurrence of `old_string` instead of requiring exactly one
    /// (default false).
    #[serde(default)]
    pub replace_all: bool,
}

/// Result of [`edit_file`].
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct EditFileOutput {
    /// The resolved path.
    pub path: String,
    /// How many occurrences were replaced.
    pub replacements: usize,
    /// 1-based line of the first replacement in the new file.
    pub first_line: usize,
    /// Size of the new file in bytes.
    pub bytes_written: u64,
}

impl EditFileOutput {
    /// What a model sees.
    pub fn to_text(&self) -> String {
        format!(
            "Replaced {} in {} (first at line {})",
            plural(self.replacements, "occurrence", "occurrences"),
            display_name(&self.path),
            self.first_line
        )
    }
}

/// Replaces `old_string` with `new_string` in the file at `path`: exactly one
/// occurrence, or all with `replace_all`. Keeps CRLF line endings. Writes atomically;
/// writes nothing when the edit cannot be applied.
pub async fn edit_file(ctx: &ToolContext, input: EditFileInput) -> Result<EditFileOutput> {
    let path = ctx.resolve(&input.path).await?;
    let spec = EditSpec {
        old_string: input.old_string,
        new_string: input.new_string,
        replace_all: input.replace_all,
    };
    // Before any round trip: what can be refused without the file.
    spec.validate()
        .map_err(|failure| failure_error(ctx, &path, &failure))?;
    let reply = match ctx.runtime.edit(&path, &spec).await {
        Ok(Some(reply)) => reply,
        Ok(None) => edit_generic(ctx, &path, &spec).await?,
        Err(e) => return Err(missing_file(e)),
    };
    match reply {
        EditReply::Applied {
            replacements,
            first_line,
            bytes_written,
        } => Ok(EditFileOutput {
            path: path.as_str().to_owned(),
            replacements,
            first_line,
            bytes_written,
        }),
        EditReply::Failed { failure } => Err(failure_error(ctx, &path, &failure)),
    }
}

/// The edit through the runtime's read and write.
async fn edit_generic(ctx: &ToolContext, path: &RemotePath, spec: &EditSpec) -> Result<EditReply> {
    let bytes = ctx.runtime.read_file(path).await.map_err(missing_file)?;
    let edited = match apply_edit(&bytes, spec) {
        Ok(edited) => edited,
        Err(failure) => return Ok(EditReply::Failed { failure }),
    };
    ctx.runtime
        .write_file(path, edited.content.as_bytes())
        .await?;
    Ok(EditReply::Applied {
        replacements: edited.replacements,
        first_line: edited.first_line,
        bytes_written: edited.content.len() as u64,
    })
}

/// A missing file, said with the way to create one.
fn missing_file(e: Error) -> Error {
    match e {
        Error::NotFound { host, path } => Error::invalid(format!(
            "{host}: {path}: no such file: check the path, or create the file with write_file"
        )),
        e => e,
    }
}

/// The error for an edit that does not apply.
fn failure_error(ctx: &ToolContext, path: &RemotePath, failure: &EditFailure) -> Error {
    let message = failure.message(path.as_str());
    match failure {
        EditFailure::NotText => Error::invalid(format!("{}: {message}", ctx.host())),
        _ => Error::invalid(message),
    }
}

/// The `edit_file` tool: see [`EditFileTool::DESCRIPTION`](super::Tool::DESCRIPTION).
#[derive(Clone, Copy, Debug, Default)]
pub struct EditFileTool;

#[async_trait::async_trait]
impl super::Tool for EditFileTool {
    const NAME: &'static str = "edit_file";
    const DESCRIPTION: &'static str = "Replace an exact piece of text in a file. \
        `old_string` must match the file exactly, whitespace and indentation included, and \
        occur exactly once (include surrounding lines to make it unique), unless \
        `replace_all` is true. When it does not match, nothing is written: read the file \
        again and retry with its exact text. Line endings follow the file (a CRLF file \
        stays CRLF). The file is rewritten atomically and keeps its permissions. Relative \
        paths resolve against the workspace. To create a file or replace all of it, use \
        write_file.";
    // A second run could apply a replace_all twice, or report a confusing mismatch.
    const EFFECT: super::Effect = super::Effect::NotIdempotent {
        if_interrupted: "the edit may or may not have been applied: read the file before \
                         retrying",
    };
    type Input = EditFileInput;
    type Output = EditFileOutput;

    async fn run(
        &self,
        ctx: &ToolContext,
        input: EditFileInput,
        _cancel: tokio_util::sync::CancellationToken,
    ) -> Result<EditFileOutput> {
        edit_file(ctx, input).await
    }
}

impl super::ToolResult for EditFileOutput {
    fn text(&self) -> String {
        self.to_text()
    }
}
