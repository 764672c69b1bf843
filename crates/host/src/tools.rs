//! The agent tools' heavy parts, run where the files are with cmux's engine (the same
//! code the local backend runs): a whole grep or glob in one request with no transfer
//! and no total-size cap, and an edit as one read-replace-write.

use std::path::Path;

use cmux_engine::{apply_edit, EditReply, GlobReply, GlobRequest, GrepReply, GrepRequest};
use cmux_protocol::{EditRequest, ErrorKind, WireError};

use crate::errors::io_error;
use crate::write;

/// The protocol error for an engine error.
fn from_engine(err: cmux_engine::Error) -> WireError {
    use cmux_engine::Error as E;
    let message = err.to_string();
    let (kind, path) = match &err {
        E::NotFound { path } => (ErrorKind::NotFound, Some(path.clone())),
        E::PermissionDenied { path } => (ErrorKind::PermissionDenied, Some(path.clone())),
        E::NotADirectory { path } | E::NotFileOrDir { path } => {
            (ErrorKind::WrongKind, Some(path.clone()))
        }
        E::InvalidRegex { .. } | E::InvalidGlob { .. } | E::UnknownFileType { .. } => {
            (ErrorKind::InvalidPattern, None)
        }
        E::FileTooLarge { path, .. } => (ErrorKind::InvalidInput, Some(path.clone())),
        E::RelativePath { .. } => (ErrorKind::InvalidInput, None),
        _ => (ErrorKind::Io, None),
    };
    // A wrong kind's message is the part after the path, as the client shows it.
    let message = match (&kind, &path) {
        (ErrorKind::WrongKind, Some(p)) => message
            .strip_prefix(&format!("{}: ", cmux_engine::shown(p)))
            .map(str::to_owned)
            .unwrap_or(message),
        _ => message,
    };
    WireError {
        kind,
        message,
        path,
        errno: None,
    }
}

pub(crate) fn grep(req: &GrepRequest) -> Result<GrepReply, WireError> {
    cmux_engine::grep_fs(req).map_err(from_engine)
}

pub(crate) fn glob(req: &GlobRequest) -> Result<GlobReply, WireError> {
    cmux_engine::glob_fs(req).map_err(from_engine)
}

pub(crate) fn edit(req: &EditRequest, umask: u32) -> Result<EditReply, WireError> {
    let path = Path::new(&req.path);
    let content = std::fs::read(path).map_err(|e| io_error("reading", path, &e))?;
    let edited = match apply_edit(&content, &req.spec) {
        Ok(edited) => edited,
        Err(failure) => return Ok(EditReply::Failed { failure }),
    };
    write::write_bytes(path, req.force, edited.content.as_bytes(), umask)?;
    Ok(EditReply::Applied {
        replacements: edited.replacements,
        first_line: edited.first_line,
        bytes_written: edited.content.len() as u64,
    })
}
