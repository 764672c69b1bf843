//! The one error type of the engine.
//!
//! The engine knows nothing of hosts: callers (cmux-core, the host helper) add the
//! host's name when they turn these into their own errors. Paths and patterns in
//! messages are shown through [`shown`], so a file name holding control characters
//! cannot drive a terminal.

/// Result alias of the engine.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything a search or an edit can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The pattern is not a valid regular expression.
    #[error(
        "invalid regular expression {pattern:?} (Rust regex syntax; escape literal \
         characters like ( [ . with \\, or search for the text as it is with fixed strings): \
         {message}"
    )]
    InvalidRegex {
        /// The pattern as given.
        pattern: String,
        /// What the regex parser said.
        message: String,
    },

    /// The glob is not a valid glob pattern.
    #[error("invalid glob pattern {pattern:?}: {message}; use e.g. `**/*.rs` or `src/*.toml`")]
    InvalidGlob {
        /// The glob as given.
        pattern: String,
        /// What the glob parser said.
        message: String,
    },

    /// The file type filter names no known type.
    #[error("unknown file type {name:?}: use one of {known}")]
    UnknownFileType {
        /// The type as given.
        name: String,
        /// The common type names, comma separated.
        known: String,
    },

    /// A path in a request is not absolute.
    #[error(
        "{} is not an absolute path: requests carry absolute POSIX paths",
        shown(path)
    )]
    RelativePath {
        /// The path as given.
        path: String,
    },

    /// The path does not exist.
    #[error("{}: no such file or directory", shown(path))]
    NotFound {
        /// The missing path.
        path: String,
    },

    /// The path may not be read or traversed.
    #[error("{}: permission denied (check the file's owner and mode)", shown(path))]
    PermissionDenied {
        /// The refused path.
        path: String,
    },

    /// A directory was needed (glob) and the path is something else.
    #[error(
        "{}: is a file, not a directory: give the directory to search as path",
        shown(path)
    )]
    NotADirectory {
        /// The path that is not a directory.
        path: String,
    },

    /// The path is neither a regular file nor a directory (a socket, a device...).
    #[error("{}: is not a regular file or directory", shown(path))]
    NotFileOrDir {
        /// The path of the wrong kind.
        path: String,
    },

    /// One file given to grep is too large to search in memory.
    #[error(
        "{} is {len} bytes, over grep's limit of {limit} bytes for one file: search it with \
         bash instead, e.g. `grep -n PATTERN FILE`",
        shown(path)
    )]
    FileTooLarge {
        /// The file.
        path: String,
        /// Its size in bytes.
        len: u64,
        /// The limit in bytes.
        limit: u64,
    },

    /// Any other failure of the filesystem.
    #[error("{}: {action}: {message}", shown(path))]
    Io {
        /// The path involved.
        path: String,
        /// What was being done ("reading", "listing").
        action: &'static str,
        /// What the system said.
        message: String,
    },
}

impl Error {
    /// The error for an I/O failure on `path`, mapped to the variant a caller can act on.
    pub fn from_io(path: &str, action: &'static str, e: &std::io::Error) -> Error {
        let path = path.to_owned();
        match e.kind() {
            std::io::ErrorKind::NotFound => Error::NotFound { path },
            std::io::ErrorKind::PermissionDenied => Error::PermissionDenied { path },
            _ => Error::Io {
                path,
                action,
                message: e.to_string(),
            },
        }
    }
}

/// `text` as shown in one line of a message: as is, or quoted and escaped when it holds
/// control characters (newlines, terminal escapes).
pub fn shown(text: &str) -> std::borrow::Cow<'_, str> {
    if text.chars().any(char::is_control) {
        format!("{text:?}").into()
    } else {
        text.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_escape_control_characters() {
        let e = Error::NotFound {
            path: "/a\u{1b}[2J\nb".into(),
        };
        assert_eq!(
            e.to_string(),
            "\"/a\\u{1b}[2J\\nb\": no such file or directory"
        );
        let e = Error::from_io(
            "/x",
            "reading",
            &std::io::Error::from(std::io::ErrorKind::PermissionDenied),
        );
        assert!(matches!(e, Error::PermissionDenied { .. }), "{e:?}");
    }
}
