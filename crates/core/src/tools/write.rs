//! `write_file`: replaces or creates a whole file, atomically.

use serde::{Deserialize, Serialize};

use super::ToolContext;
use crate::error::{Error, Result};

/// Input of [`write_file`].
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct WriteFileInput {
    /// The file, relative to the workspace or absolute (`file_path` is accepted too,
    /// as models trained on other harnesses send it).
    #[serde(alias = "file_path")]
    pub path: String,
    /// The whole new content.
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

/// Writes `content` to `path` atomically (readers see the old or the new file), creating
/// missing parent directories. An existing file keeps its mode.
pub async fn write_file(ctx: &ToolContext, input: WriteFileInput) -> Result<WriteFileOutput> {
    let path = ctx.resolve(&input.path).await?;
    let data = input.content.as_bytes();
    // Try the write first: parents usually exist, and creating them costs a round trip.
    match ctx.runtime.write_file(&path, data).await {
        Ok(()) => {}
        Err(Error::NotFound { .. }) => {
            let parent = path.parent().ok_or_else(|| {
                Error::invalid(format!("{path}: not a file path: give a file name"))
            })?;
            ctx.runtime.create_dir_all(&parent).await?;
            ctx.runtime.write_file(&path, data).await?;
        }
        Err(e) => return Err(e),
    }
    Ok(WriteFileOutput {
        path: path.as_str().to_owned(),
        bytes_written: data.len() as u64,
    })
}
