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
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct EditFileInput {
    /// The file, relative to the workspace or absolute (`file_path` is accepted too,
    /// as models trained on other harnesses send it).
    #[serde(alias = "file_path")]
    pub path: String,
    /// The exact text to replace (must occur once unless `replace_all`).
    pub old_string: String,
    /// The replacement.
    pub new_string: String,
    /// Replace every occurrence instead of requiring exactly one.
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
