//! The one error type of cmux-core and of every backend built on it.

use crate::path::RemotePath;

/// `text` with control characters other than newline and tab written as escapes
/// (`\u{1b}`, `\r`...), so host output and file names quoted in an error message can
/// never drive the user's terminal (clear the screen, rewrite earlier lines).
pub fn escape_controls(text: &str) -> std::borrow::Cow<'_, str> {
    if !text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() && c != '\n' && c != '\t' {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Result alias used across cmux.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything a [`Runtime`](crate::Runtime) operation or an agent tool can fail with.
///
/// Messages never carry raw control characters: text from the host (stderr, ssh's
/// diagnostics, file names) is shown through [`escape_controls`].
///
/// Variants are grouped by what a caller can do about them: retry later
/// ([`Error::Connection`]), fix credentials ([`Error::Authentication`]), fix the input
/// ([`Error::InvalidInput`]), and so on. Every message names the host or path involved
/// and, where there is one, the next step.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The path does not exist in the runtime.
    #[error("{host}: {path}: no such file or directory")]
    NotFound {
        /// Runtime the path was looked up in (`local`, `ssh:host`...).
        host: String,
        /// The missing path.
        path: RemotePath,
    },

    /// The runtime's user may not read, write or traverse the path.
    #[error("{host}: {path}: permission denied (check the file's owner and mode)")]
    PermissionDenied {
        /// Runtime the path lives in.
        host: String,
        /// The path that was refused.
        path: RemotePath,
    },

    /// A write would replace a file that is not the runtime user's to replace: the user
    /// may not write it (a read-only mode such as 0444), or another user owns it
    /// (replacing it would make it ours). Nothing was written. See
    /// [`Runtime::write_file`](crate::Runtime::write_file).
    #[error(
        "{host}: {path}: {}; not replaced (cmux replaces only files you own and may write: make it writable with `chmod u+w`, or remove it first)",
        escape_controls(reason)
    )]
    NotWritable {
        /// Runtime the path lives in.
        host: String,
        /// The file that was left alone (the symlink's target when written through one).
        path: RemotePath,
        /// Why, with the numbers: "is read-only (mode 0444)", "belongs to another user
        /// (uid 1001), not to you (uid 1000)".
        reason: String,
    },

    /// Something already exists where the operation wanted to create a new entry.
    #[error("{host}: {path}: already exists")]
    AlreadyExists {
        /// Runtime the path lives in.
        host: String,
        /// The path that exists.
        path: RemotePath,
    },

    /// A path that must be a directory is a file (or the reverse).
    #[error("{host}: {path}: {}", escape_controls(message))]
    WrongKind {
        /// Runtime the path lives in.
        host: String,
        /// The path of the wrong kind.
        path: RemotePath,
        /// What was expected, e.g. "is a directory, not a file".
        message: String,
    },

    /// The host could not be reached or the connection broke. ssh's own diagnostic is in
    /// `message`. Retrying later may succeed.
    #[error("{host}: connection failed: {}", escape_controls(message))]
    Connection {
        /// The host as the user named it.
        host: String,
        /// What ssh (or the transport) said, and the next step.
        message: String,
    },

    /// The host answered but refused our credentials.
    #[error("{host}: authentication failed: {}", escape_controls(message))]
    Authentication {
        /// The host as the user named it.
        host: String,
        /// What ssh said, and the next step.
        message: String,
    },

    /// The host's key is unknown or changed; nothing was sent to it.
    #[error("{host}: host key verification failed: {}", escape_controls(message))]
    HostKey {
        /// The host as the user named it.
        host: String,
        /// Fingerprint, known_hosts line to fix, and the next step.
        message: String,
    },

    /// An operation ran past its deadline and was stopped.
    #[error("{host}: {} timed out after {secs:.1}s", escape_controls(what))]
    TimedOut {
        /// Runtime the operation ran in.
        host: String,
        /// What timed out.
        what: String,
        /// The deadline that was exceeded, in seconds.
        secs: f64,
    },

    /// The caller cancelled the operation.
    #[error("{host}: {} was cancelled", escape_controls(what))]
    Cancelled {
        /// Runtime the operation ran in.
        host: String,
        /// What was cancelled.
        what: String,
    },

    /// The request itself is wrong (bad path, empty command, binary file given to a text
    /// tool...). `message` says how to fix it.
    #[error("{}", escape_controls(message))]
    InvalidInput {
        /// What is wrong and how to fix it.
        message: String,
    },

    /// A command the operation depends on failed on the host (git, mkdir...).
    #[error(
        "{host}: {} failed (exit {code}): {}",
        escape_controls(command),
        escape_controls(stderr)
    )]
    CommandFailed {
        /// Runtime the command ran in.
        host: String,
        /// Short description of the command.
        command: String,
        /// Its exit code (-1 when killed by a signal).
        code: i32,
        /// The end of what it printed on stderr.
        stderr: String,
    },

    /// An I/O error with no better classification.
    #[error("{host}: {}: {}", escape_controls(context), escape_controls(&source.to_string()))]
    Io {
        /// Runtime the operation ran in.
        host: String,
        /// What was being done, naming the path.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// A failure specific to one backend (the Coder CLI, a registry file...).
    #[error("{backend}: {}", escape_controls(message))]
    Backend {
        /// Which backend or component failed.
        backend: String,
        /// What happened and the next step.
        message: String,
    },
}

/// What an [`Error::Connection`] message says when the operation never reached the
/// host (see [`Error::nothing_ran`]).
pub const NOTHING_RAN: &str = "nothing ran on the host";

impl Error {
    /// Shorthand for [`Error::InvalidInput`].
    pub fn invalid(message: impl Into<String>) -> Self {
        Error::InvalidInput {
            message: message.into(),
        }
    }

    /// Shorthand for [`Error::Backend`].
    pub fn backend(backend: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Backend {
            backend: backend.into(),
            message: message.into(),
        }
    }

    /// Classifies a `std::io::Error` about `path` into the most precise variant.
    pub fn from_io(host: &str, path: &RemotePath, context: &str, err: std::io::Error) -> Self {
        use std::io::ErrorKind as K;
        match err.kind() {
            K::NotFound => Error::NotFound {
                host: host.to_owned(),
                path: path.clone(),
            },
            K::PermissionDenied => Error::PermissionDenied {
                host: host.to_owned(),
                path: path.clone(),
            },
            K::AlreadyExists => Error::AlreadyExists {
                host: host.to_owned(),
                path: path.clone(),
            },
            K::IsADirectory => Error::WrongKind {
                host: host.to_owned(),
                path: path.clone(),
                message: "is a directory, not a file".into(),
            },
            K::NotADirectory => Error::WrongKind {
                host: host.to_owned(),
                path: path.clone(),
                message: "a component of the path is not a directory".into(),
            },
            _ => Error::Io {
                host: host.to_owned(),
                context: format!("{context} {path}"),
                source: err,
            },
        }
    }

    /// The error for a failure of the tools' engine ([`crate::engine`]) on `host`.
    pub fn from_engine(host: &str, err: crate::engine::Error) -> Self {
        use crate::engine::Error as E;
        let at = |path: String| RemotePath::new(path);
        let wrong_kind = |path: String, message: &str| match at(path) {
            Ok(path) => Error::WrongKind {
                host: host.to_owned(),
                path,
                message: message.into(),
            },
            Err(e) => e,
        };
        match err {
            E::NotFound { path } => match at(path) {
                Ok(path) => Error::NotFound {
                    host: host.to_owned(),
                    path,
                },
                Err(e) => e,
            },
            E::PermissionDenied { path } => match at(path) {
                Ok(path) => Error::PermissionDenied {
                    host: host.to_owned(),
                    path,
                },
                Err(e) => e,
            },
            E::NotADirectory { path } => wrong_kind(
                path,
                "is a file, not a directory: give the directory to search as path",
            ),
            E::NotFileOrDir { path } => wrong_kind(path, "is not a regular file or directory"),
            e @ (E::InvalidRegex { .. } | E::InvalidGlob { .. } | E::UnknownFileType { .. }) => {
                Error::invalid(e.to_string())
            }
            e @ (E::FileTooLarge { .. } | E::RelativePath { .. }) => {
                Error::invalid(format!("{host}: {e}"))
            }
            e => Error::backend(host, e.to_string()),
        }
    }

    /// True for a connection failure that happened before anything reached the host
    /// (the connection could not be made): a command did not run, a file did not
    /// change. Backends say so with [`NOTHING_RAN`] in an [`Error::Connection`]'s
    /// message; any other connection failure may have come after the operation began.
    pub fn nothing_ran(&self) -> bool {
        matches!(self, Error::Connection { message, .. } if message.contains(NOTHING_RAN))
    }

    /// This error as the `std::io::Error` of a byte stream ([`crate::BoxRead`]) that
    /// broke: its `source()` is this error, so a caller walking the chain finds it
    /// (and, say, exits 255 for a connection error).
    pub fn into_io(self, kind: std::io::ErrorKind) -> std::io::Error {
        std::io::Error::new(kind, InStream(self))
    }

    /// True for failures of the transport (worth a retry once the host is back).
    pub fn is_connection(&self) -> bool {
        matches!(self, Error::Connection { .. })
    }

    /// The exit code the `cmux` CLI uses for this error: 255 for transport failures
    /// (as ssh does), 124 for timeouts (as timeout(1) does), 130 for cancellation, 1
    /// otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Connection { .. } | Error::Authentication { .. } | Error::HostKey { .. } => 255,
            Error::TimedOut { .. } => 124,
            Error::Cancelled { .. } => 130,
            _ => 1,
        }
    }
}

/// The payload of [`Error::into_io`]: shows the error, and is its source.
#[derive(Debug)]
struct InStream(Error);

impl std::fmt::Display for InStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for InStream {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_text_in_messages_is_escaped() {
        let e = Error::CommandFailed {
            host: "h".into(),
            command: "git \x1b]0;x\x07".into(),
            code: 1,
            stderr: "fatal: \x1b[2J bad\r\nnext\tline".into(),
        };
        let text = e.to_string();
        assert!(!text.contains('\x1b') && !text.contains('\r') && !text.contains('\x07'));
        assert!(text.contains("\\u{1b}[2J bad\\r\nnext\tline"), "{text}");
        assert_eq!(escape_controls("plain é\n"), "plain é\n");
    }
}
