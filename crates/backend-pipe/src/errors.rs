//! Protocol errors as cmux errors.

use cmux_core::{Error, RemotePath};
use cmux_protocol::{ErrorKind, WireError};

/// The cmux error for a failed request about `path` on `host`.
pub(crate) fn from_wire(host: &str, path: Option<&RemotePath>, err: WireError) -> Error {
    // The helper names the path it acted on (a symlink's target, say); fall back to
    // the caller's.
    let path = err
        .path
        .as_deref()
        .and_then(|p| RemotePath::new(p).ok())
        .or_else(|| path.cloned());
    let with_path = |make: fn(String, RemotePath) -> Error, err: WireError| match &path {
        Some(p) => make(host.to_owned(), p.clone()),
        None => Error::backend(host, err.message),
    };
    match err.kind {
        ErrorKind::NotFound => with_path(|host, path| Error::NotFound { host, path }, err),
        ErrorKind::PermissionDenied => {
            with_path(|host, path| Error::PermissionDenied { host, path }, err)
        }
        ErrorKind::AlreadyExists => {
            with_path(|host, path| Error::AlreadyExists { host, path }, err)
        }
        ErrorKind::IsADirectory => match path {
            Some(path) => Error::WrongKind {
                host: host.to_owned(),
                path,
                message: "is a directory, not a file".into(),
            },
            None => Error::backend(host, err.message),
        },
        ErrorKind::NotADirectory => match path {
            Some(path) => Error::WrongKind {
                host: host.to_owned(),
                path,
                message: "a component of the path is not a directory".into(),
            },
            None => Error::backend(host, err.message),
        },
        ErrorKind::DirectoryNotEmpty => match path {
            Some(path) => Error::WrongKind {
                host: host.to_owned(),
                path,
                message: "directory is not empty (remove it recursively)".into(),
            },
            None => Error::backend(host, err.message),
        },
        ErrorKind::WrongKind => match path {
            Some(path) => Error::WrongKind {
                host: host.to_owned(),
                path,
                message: err.message,
            },
            None => Error::backend(host, err.message),
        },
        // As the local backend reports them (cmux_core::Error::from_engine).
        ErrorKind::InvalidPattern => Error::invalid(err.message),
        ErrorKind::NotWritable => match path {
            Some(path) => Error::NotWritable {
                host: host.to_owned(),
                path,
                reason: err.message,
            },
            None => Error::backend(host, err.message),
        },
        ErrorKind::BadCwd | ErrorKind::InvalidInput => {
            Error::invalid(format!("{host}: {}", err.message))
        }
        ErrorKind::NoSpace => Error::backend(
            host,
            format!(
                "no space left on the host ({}): free some space or raise the quota",
                err.message
            ),
        ),
        ErrorKind::ReadOnly => Error::backend(
            host,
            format!("the filesystem is read-only ({})", err.message),
        ),
        _ => Error::backend(host, err.message),
    }
}
