//! The JSON bodies of frames.
//!
//! Paths are absolute POSIX paths in UTF-8 (the client resolves `~` and relative
//! paths with the home directory from [`Hello`]). Unknown fields are ignored, so a
//! newer client may add optional fields without a protocol bump.

use serde::{Deserialize, Serialize};

/// The helper's first frame.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// [`crate::PROTOCOL_VERSION`] of the helper.
    pub protocol: u32,
    /// The helper's package version.
    pub version: String,
    /// Identity of the exact helper build (a hash of its sources), so a client can tell
    /// an older or foreign binary at the expected path from the one it carries.
    pub build: String,
    /// The helper's process id on the host.
    pub pid: u32,
    /// The user id it runs as.
    pub uid: u32,
    /// The user's home directory (what `~` means).
    pub home: String,
    /// `std::env::consts::OS` of the helper (e.g. `linux`).
    pub os: String,
    /// `std::env::consts::ARCH` of the helper (e.g. `x86_64`).
    pub arch: String,
}

/// A request. The `op` field names it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Metadata of `path` ([`StatReply`]).
    Stat {
        /// The path.
        path: String,
        /// Describe a symlink itself instead of its target.
        #[serde(default)]
        no_follow: bool,
    },
    /// Entries of a directory, sorted by name ([`ReadDirReply`]).
    ReadDir {
        /// The directory.
        path: String,
    },
    /// Creates a directory and its missing parents ([`Done`]).
    MkdirAll {
        /// The directory.
        path: String,
    },
    /// Removes a file, a symlink, an empty directory, or with `recursive` a tree
    /// (symlinks inside are removed, never followed) ([`Done`]).
    Remove {
        /// The path.
        path: String,
        /// Remove a directory and everything in it.
        #[serde(default)]
        recursive: bool,
    },
    /// Renames `from` to `to`, replacing a file at `to` ([`Done`]).
    Rename {
        /// Current path.
        from: String,
        /// New path.
        to: String,
    },
    /// The canonical path with every symlink resolved ([`PathReply`]).
    Realpath {
        /// The path (must exist).
        path: String,
    },
    /// Reads a file: [`crate::FrameKind::Out`] frames, then [`ReadReply`].
    Read(ReadSpec),
    /// Replaces a file atomically with the request's data frames ([`WriteReply`]).
    Write(WriteSpec),
    /// Runs a command (see [`ExecSpec`] for the frames it produces).
    Exec(ExecSpec),
    /// What the helper knows about its environment ([`InfoReply`]).
    Info,
    /// A whole grep run where the files are, with cmux's engine
    /// ([`cmux_engine::GrepReply`]).
    Grep(cmux_engine::GrepRequest),
    /// A whole glob run where the files are ([`cmux_engine::GlobReply`]).
    Glob(cmux_engine::GlobRequest),
    /// Read, replace and write a file atomically in one step
    /// ([`cmux_engine::EditReply`]).
    Edit(EditRequest),
}

/// An edit of one file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EditRequest {
    /// The file (symlinks followed, as writes do).
    pub path: String,
    /// What to replace.
    pub spec: cmux_engine::EditSpec,
    /// Replace a file the user cannot write or does not own (see [`WriteSpec::force`]).
    #[serde(default)]
    pub force: bool,
}

/// A read of a file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadSpec {
    /// The file (symlinks followed).
    pub path: String,
    /// First byte to read.
    #[serde(default)]
    pub offset: u64,
    /// Bytes to read at most (default: to the end).
    #[serde(default)]
    pub len: Option<u64>,
    /// Bytes the helper may send before the client grants more with
    /// [`crate::FrameKind::Credit`] frames (default: no limit, for a reader that keeps
    /// everything anyway).
    #[serde(default)]
    pub window: Option<u64>,
    /// Read only a regular file of at most this many bytes (from `offset`, up to
    /// `len`); anything else is answered at once with a [`ReadReply`] whose `refused`
    /// is set and no data. The file is opened without blocking, so a fifo is refused
    /// rather than waited on. One request where a stat, then a read, took two.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub only_file_up_to: Option<u64>,
}

/// The end of a read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadReply {
    /// Size of the file when it was opened.
    pub size: u64,
    /// Bytes sent.
    pub sent: u64,
    /// Set when [`ReadSpec::only_file_up_to`] refused the read: what the path is (a
    /// `file` then means it is larger than the limit, by `size`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused: Option<WireKind>,
}

/// An atomic write. The content follows as [`crate::FrameKind::Data`] frames and a
/// [`crate::FrameKind::DataEnd`]. The helper resolves symlinks itself, creates a
/// temporary file beside the real target with its final mode before any byte is
/// written, fsyncs it and renames it over the target.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteSpec {
    /// The file to replace or create.
    pub path: String,
    /// Replace a file the user cannot write or does not own (otherwise refused with
    /// [`ErrorKind::NotWritable`]).
    #[serde(default)]
    pub force: bool,
}

/// The end of a write.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteReply {
    /// The file actually written (the target of a symlink).
    pub path: String,
    /// Its mode.
    pub mode: u32,
    /// Bytes written.
    pub len: u64,
}

/// What a command runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExecCommand {
    /// A script for `bash -c`.
    Script(String),
    /// A program and its arguments, no shell involved.
    Argv(Vec<String>),
}

/// A command. The helper answers [`crate::FrameKind::Started`], then
/// [`crate::FrameKind::Out`]/[`crate::FrameKind::ErrOut`] data and
/// [`crate::FrameKind::StreamEnd`] per stream, [`crate::FrameKind::Exit`] when the
/// process ended, and a [`Done`] reply once both streams ended (or the client released
/// the request). Stdin, when asked for, comes as [`crate::FrameKind::Data`] frames and
/// a [`crate::FrameKind::DataEnd`]; the helper acknowledges written bytes with
/// [`crate::FrameKind::StdinCredit`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecSpec {
    /// What to run.
    pub command: ExecCommand,
    /// Working directory (default: home). A missing one is [`ErrorKind::BadCwd`].
    #[serde(default)]
    pub cwd: Option<String>,
    /// Variables set for the command, over its base environment, in order. They
    /// travel inside the protocol, never on a command line.
    #[serde(default)]
    pub env: Vec<(String, String)>,
    /// True: stdin comes from the request's data frames; false: `/dev/null`.
    #[serde(default)]
    pub stdin: bool,
    /// Base environment: the user's login environment (captured once per helper
    /// start) when true, the helper's own otherwise.
    #[serde(default = "yes")]
    pub login_env: bool,
    /// Bytes per stream the helper may send before the client grants more.
    #[serde(default = "default_window")]
    pub window: u64,
}

fn yes() -> bool {
    true
}

/// Default window per output stream: 1 MiB.
pub const DEFAULT_WINDOW: u64 = 1 << 20;

fn default_window() -> u64 {
    DEFAULT_WINDOW
}

/// Bytes of stdin a client may send ahead of the helper's acknowledgements.
pub const STDIN_WINDOW: u64 = 1 << 20;

/// A command started.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Started {
    /// Its process id, which is also its process group.
    pub pid: u32,
}

/// How a command ended: exactly one of the fields is set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitInfo {
    /// Exit code, when it exited.
    #[serde(default)]
    pub code: Option<i32>,
    /// Signal number, when a signal killed it.
    #[serde(default)]
    pub signal: Option<i32>,
}

/// An empty successful reply.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Done {}

/// The kind of a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WireKind {
    /// Regular file.
    File,
    /// Directory.
    Dir,
    /// Symbolic link.
    Symlink,
    /// Anything else.
    Other,
}

/// Metadata of a path.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatReply {
    /// Its kind.
    pub kind: WireKind,
    /// Size in bytes.
    pub len: u64,
    /// Permission bits.
    pub mode: u32,
    /// Modification time, seconds since the epoch.
    pub modified: i64,
    /// Owner.
    pub uid: u32,
}

/// One directory entry (symlinks not followed).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireDirEntry {
    /// Its name.
    pub name: String,
    /// Its kind.
    pub kind: WireKind,
    /// Its size.
    pub len: u64,
}

/// Entries of a directory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadDirReply {
    /// Entries with UTF-8 names, sorted by name.
    pub entries: Vec<WireDirEntry>,
    /// Entries left out because their names are not UTF-8.
    #[serde(default)]
    pub non_utf8: u32,
}

/// A path.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathReply {
    /// The path.
    pub path: String,
}

/// What the helper knows about its environment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InfoReply {
    /// The login environment: `None` while it is being captured or when it was
    /// captured, else why it could not be (commands then get the helper's own).
    pub login_env_error: Option<String>,
    /// Variables in the login environment.
    pub login_env_vars: usize,
    /// The helper's executable on the host.
    pub exe: String,
    /// Commands and reads in flight.
    pub in_flight: usize,
}

/// Something the user should know about the connection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    /// What happened, in words for a person.
    pub message: String,
}

/// Why a request failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorKind {
    /// No such file or directory.
    NotFound,
    /// The user may not read, write or traverse the path.
    PermissionDenied,
    /// An existing file the user cannot write, or that another user owns: replacing
    /// it is refused unless the write asked for `force`. The message is the reason
    /// alone ("is read-only (mode 0444)"); `path` names the file.
    NotWritable,
    /// The path exists.
    AlreadyExists,
    /// A directory where a file was expected.
    IsADirectory,
    /// A file where a directory was expected (or a path through a file).
    NotADirectory,
    /// A directory to remove is not empty (and the removal was not recursive).
    DirectoryNotEmpty,
    /// The path is of the wrong kind for the request; the message says how (e.g. "is a
    /// file, not a directory: give the directory to search as path").
    WrongKind,
    /// A pattern (regular expression, glob, file type) is not valid; the message says
    /// why and how to write it.
    InvalidPattern,
    /// The host's disk (or the user's quota) is full.
    NoSpace,
    /// A read-only filesystem.
    ReadOnly,
    /// The working directory of a command does not exist or is not a directory.
    BadCwd,
    /// The request itself is wrong.
    InvalidInput,
    /// The helper cannot do this.
    Unsupported,
    /// Any other system error (`errno` says which).
    Io,
}

/// A failed request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireError {
    /// What kind of failure.
    pub kind: ErrorKind,
    /// What happened, for a person (the helper names the path).
    pub message: String,
    /// The path involved, when there is one.
    #[serde(default)]
    pub path: Option<String>,
    /// The system error number, when there is one.
    #[serde(default)]
    pub errno: Option<i32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_tagged_json() {
        let r = Request::Stat {
            path: "/a".into(),
            no_follow: false,
        };
        let json = serde_json::to_string(&r).expect("json");
        assert_eq!(json, r#"{"op":"stat","path":"/a","no_follow":false}"#);
        let back: Request = serde_json::from_str(r#"{"op":"stat","path":"/a"}"#).expect("parse");
        assert_eq!(back, r);
        let exec: Request = serde_json::from_str(
            r#"{"op":"exec","command":{"argv":["ls","-l"]},"env":[["A","1"]]}"#,
        )
        .expect("parse");
        match exec {
            Request::Exec(spec) => {
                assert!(spec.login_env && !spec.stdin);
                assert_eq!(spec.window, DEFAULT_WINDOW);
                assert_eq!(spec.env, vec![("A".to_owned(), "1".to_owned())]);
            }
            other => panic!("{other:?}"),
        }
        let info: Request = serde_json::from_str(r#"{"op":"info"}"#).expect("parse");
        assert_eq!(info, Request::Info);
    }
}
