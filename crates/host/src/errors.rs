//! System errors as protocol errors.

use std::io;
use std::path::Path;

use cmux_protocol::{ErrorKind, WireError};

/// A protocol error for a failed system call on `path` while `doing` something.
pub(crate) fn io_error(doing: &str, path: &Path, err: &io::Error) -> WireError {
    let errno = err.raw_os_error();
    let kind = match errno {
        Some(libc::ENOENT) => ErrorKind::NotFound,
        Some(libc::EACCES) | Some(libc::EPERM) => ErrorKind::PermissionDenied,
        Some(libc::EEXIST) => ErrorKind::AlreadyExists,
        Some(libc::EISDIR) => ErrorKind::IsADirectory,
        Some(libc::ENOTDIR) => ErrorKind::NotADirectory,
        Some(libc::ENOSPC) | Some(libc::EDQUOT) => ErrorKind::NoSpace,
        Some(libc::EROFS) => ErrorKind::ReadOnly,
        _ => ErrorKind::Io,
    };
    WireError {
        kind,
        message: format!("{doing} {}: {}", path.display(), strip_os_suffix(err)),
        path: Some(path.to_string_lossy().into_owned()),
        errno,
    }
}

/// A protocol error of `kind` about `path`.
pub(crate) fn error(kind: ErrorKind, path: Option<&Path>, message: impl Into<String>) -> WireError {
    WireError {
        kind,
        message: message.into(),
        path: path.map(|p| p.to_string_lossy().into_owned()),
        errno: None,
    }
}

/// "No such file or directory (os error 2)" without the "(os error 2)".
fn strip_os_suffix(err: &io::Error) -> String {
    let text = err.to_string();
    match text.rfind(" (os error ") {
        Some(at) => text[..at].to_owned(),
        None => text,
    }
}
