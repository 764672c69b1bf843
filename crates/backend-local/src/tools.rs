//! The native tool methods of the Runtime contract, run with cmux's engine on this
//! machine: a whole grep or glob in one step with no transfer and no total-size cap
//! (on a blocking thread, as the walk and the reads are synchronous), and an edit
//! that reads, replaces and writes atomically in one call.

use std::path::Path;

use cmux_core::engine::{
    apply_edit, EditReply, EditSpec, GlobReply, GlobRequest, GrepReply, GrepRequest,
};
use cmux_core::temp::TempSweeper;
use cmux_core::{Error, RemotePath, Result};

use crate::{files, HOST};

/// Runs `work` on tokio's blocking pool and maps the engine's error.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> cmux_core::engine::Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Error::backend(HOST, format!("search task failed: {e}")))?
        .map_err(|e| Error::from_engine(HOST, e))
}

/// grep over the local filesystem (`req.path` already made absolute).
pub(crate) async fn grep(req: GrepRequest) -> Result<GrepReply> {
    blocking(move || cmux_core::engine::grep_fs(&req)).await
}

/// glob over the local filesystem (`req.path` already made absolute).
pub(crate) async fn glob(req: GlobRequest) -> Result<GlobReply> {
    blocking(move || cmux_core::engine::glob_fs(&req)).await
}

/// Reads the file, applies the edit and writes it back atomically, or reports why
/// the edit does not apply (nothing written).
pub(crate) async fn edit(
    local: &Path,
    path: &RemotePath,
    spec: &EditSpec,
    sweeper: &TempSweeper,
) -> Result<EditReply> {
    let content = files::read(local, path).await?;
    let edited = match apply_edit(&content, spec) {
        Ok(edited) => edited,
        Err(failure) => return Ok(EditReply::Failed { failure }),
    };
    files::write_atomic(local, path, edited.content.as_bytes(), sweeper).await?;
    Ok(EditReply::Applied {
        replacements: edited.replacements,
        first_line: edited.first_line,
        bytes_written: edited.content.len() as u64,
    })
}
