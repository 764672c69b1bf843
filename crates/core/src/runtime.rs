//! The [`Runtime`] trait: one place where commands run and files live.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::engine::{EditReply, EditSpec, GlobReply, GlobRequest, GrepReply, GrepRequest};
use crate::error::{Error, Result};
use crate::exec::{BoxRead, ExecRequest, Output, Process};
use crate::path::RemotePath;

/// The kind of a directory entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link (only from [`Runtime::read_dir`], which does not follow links).
    Symlink,
    /// A socket, fifo or device.
    Other,
}

/// [`Runtime::read_file_up_to`] as a stat, then a read (two round trips): its default,
/// for a backend that can do better only in some modes (an SSH host without the
/// helper).
pub async fn read_file_up_to_by_stat<R: Runtime + ?Sized>(
    runtime: &R,
    path: &RemotePath,
    max_len: u64,
) -> Result<SmallFile> {
    let meta = runtime.stat(path).await?;
    if meta.kind != FileKind::File {
        return Ok(SmallFile::NotAFile(meta.kind));
    }
    if meta.len > max_len {
        return Ok(SmallFile::TooLarge(meta.len));
    }
    let data = runtime.read_file(path).await?;
    // It may have grown since the stat.
    if data.len() as u64 > max_len {
        return Ok(SmallFile::TooLarge(data.len() as u64));
    }
    Ok(SmallFile::Read(data))
}

/// What [`Runtime::read_file_up_to`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SmallFile {
    /// The whole content of a regular file within the limit.
    Read(Vec<u8>),
    /// A regular file over the limit: its length in bytes.
    TooLarge(u64),
    /// Not a regular file: what it is (a directory, or a socket, fifo or device).
    NotAFile(FileKind),
}

impl fmt::Display for FileKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FileKind::File => "file",
            FileKind::Dir => "dir",
            FileKind::Symlink => "symlink",
            FileKind::Other => "other",
        })
    }
}

/// What [`Runtime::stat`] reports (symlinks followed).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    /// File, directory or other.
    pub kind: FileKind,
    /// Size in bytes.
    pub len: u64,
    /// Permission bits (`0o7777` mask).
    pub mode: u32,
    /// Modification time, seconds since the Unix epoch, when known.
    pub modified: Option<i64>,
}

/// One entry of [`Runtime::read_dir`] (symlinks not followed).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirEntry {
    /// The entry's name (no directory part).
    pub name: String,
    /// Its kind; `Symlink` for links.
    pub kind: FileKind,
    /// Its size in bytes (of the link itself for a symlink).
    pub len: u64,
}

/// One place where commands run and files live: this machine, an SSH host, a Coder
/// workspace, or a third party's Docker container or cloud VM.
///
/// Paths are POSIX paths inside the runtime. Relative paths are relative to the runtime
/// user's home directory, and `~` / `~/x` name that home, on every backend.
///
/// Implementations must be safe to share: many agent tools call one runtime at once.
/// The conformance suite (feature `testkit`) is the contract.
///
/// # Native tool methods
///
/// [`Runtime::grep`], [`Runtime::glob`] and [`Runtime::edit`] are optional: their
/// default implementations return `Ok(None)`, "not supported here", and the agent
/// tools then take the generic path, built on the required methods (grep: one `find`
/// and one `tar` stream, matched locally, at most 64 MiB of content per call; glob:
/// one `find`; edit: a read and a write). A backend that can run code where the files
/// are overrides them to answer in one step with no transfer cap, typically by calling
/// [`cmux_engine::grep_fs`](crate::engine::grep_fs), [`glob_fs`](crate::engine::glob_fs)
/// and [`apply_edit`](crate::engine::apply_edit) there, so the results are the same
/// as the generic path's (the conformance suite checks both). Return `Ok(None)` from
/// any of them to fall back for one call (say, a host where your agent is missing).
#[async_trait]
pub trait Runtime: Send + Sync + fmt::Debug {
    /// Short label naming where this runtime is, used in every error message: `local`,
    /// the ssh host as the user wrote it, `coder.<name>`.
    fn host(&self) -> &str;

    /// Backend kind, exported to init hooks as `CMUX_RUNTIME`: `local`, `ssh`, `coder`...
    fn kind(&self) -> &str;

    /// Connects or starts whatever the backend needs. Idempotent and cheap when ready.
    async fn ensure_ready(&self) -> Result<()>;

    /// Starts a command. See [`ExecRequest`] for what is honoured.
    async fn exec(&self, req: ExecRequest) -> Result<Process>;

    /// Reads a whole file.
    async fn read_file(&self, path: &RemotePath) -> Result<Vec<u8>>;

    /// Reads `path` whole if it is a regular file of at most `max_len` bytes (symlinks
    /// followed); otherwise says what it is instead, reading nothing. The `read_file`
    /// tool's call. The default stats, then reads: two round trips. A backend that can
    /// check and read in one step overrides it (the host helper does, in one request).
    async fn read_file_up_to(&self, path: &RemotePath, max_len: u64) -> Result<SmallFile> {
        read_file_up_to_by_stat(self, path, max_len).await
    }

    /// Opens a file for streaming reads (for files too large to hold in memory). The
    /// default implementation streams `cat` through [`Runtime::exec`].
    async fn open_read(&self, path: &RemotePath) -> Result<BoxRead> {
        let meta = self.stat(path).await?;
        if meta.kind == FileKind::Dir {
            return Err(Error::WrongKind {
                host: self.host().to_owned(),
                path: path.clone(),
                message: "is a directory, not a file".into(),
            });
        }
        let mut process = self
            .exec(ExecRequest::argv(["cat", "--", path.as_str()]))
            .await?;
        let out = process
            .stdout
            .take()
            .ok_or_else(|| Error::backend(self.host(), "cat started without a stdout pipe"))?;
        // The process is reaped when the stream ends: its exit status adds nothing to
        // the stat above.
        tokio::spawn(async move {
            let _ = process.wait().await;
        });
        Ok(out)
    }

    /// Replaces a file's content atomically: readers see the old or the new content,
    /// never a mix. An existing file keeps its mode; writing through a symlink updates
    /// the link's target. New files get mode 0644 (subject to umask).
    ///
    /// An existing file (the link's target, through a symlink) is replaced only when the
    /// runtime's user owns it and may write it: its owner write bit is set and
    /// `access(W_OK)` allows it. Otherwise the result is [`Error::NotWritable`] and
    /// nothing changes. Why: the atomic rename needs only the directory's permission,
    /// so it would quietly replace a 0444 file, or a file of another user (who would
    /// lose it: the new file is ours). A caller that means it (`cmux write --force`)
    /// removes the file first, then writes a new one.
    ///
    /// A writer killed mid-write leaves the target intact and a temporary file beside
    /// it; backends remove such left-overs by the rule of [`crate::temp`] (older than
    /// 10 minutes, swept before a later write into the same directory).
    async fn write_file(&self, path: &RemotePath, data: &[u8]) -> Result<()>;

    /// Metadata of a path, following symlinks.
    async fn stat(&self, path: &RemotePath) -> Result<Metadata>;

    /// Entries of a directory, sorted by name, without `.` and `..`.
    async fn read_dir(&self, path: &RemotePath) -> Result<Vec<DirEntry>>;

    /// Creates a directory and its missing parents; fine when it exists.
    async fn create_dir_all(&self, path: &RemotePath) -> Result<()>;

    /// Removes a file, a symlink, or (with `recursive`) a directory tree; an empty
    /// directory without `recursive`.
    async fn remove(&self, path: &RemotePath, recursive: bool) -> Result<()>;

    /// Renames `from` to `to`, replacing a file at `to`.
    async fn rename(&self, from: &RemotePath, to: &RemotePath) -> Result<()>;

    /// Expands `~` and makes `path` absolute (relative paths are relative to the home
    /// directory). Does not require the path to exist.
    async fn resolve_path(&self, path: &str) -> Result<RemotePath>;

    /// Runs a whole grep where the files are, or returns `Ok(None)` (the default) to let
    /// the grep tool take the generic path. `req.path` is absolute. An implementation
    /// returns what [`cmux_engine::grep_fs`](crate::engine::grep_fs) returns for the
    /// same tree, and maps a missing path to [`Error::NotFound`], an unreadable one to
    /// [`Error::PermissionDenied`], an invalid pattern to [`Error::InvalidInput`]
    /// ([`Error::from_engine`] does all of that).
    async fn grep(&self, req: &GrepRequest) -> Result<Option<GrepReply>> {
        let _ = req;
        Ok(None)
    }

    /// Runs a whole glob where the files are, or returns `Ok(None)` (the default) for
    /// the generic path. `req.path` is absolute. Same contract as [`Runtime::grep`], with
    /// [`cmux_engine::glob_fs`](crate::engine::glob_fs) as the reference.
    async fn glob(&self, req: &GlobRequest) -> Result<Option<GlobReply>> {
        let _ = req;
        Ok(None)
    }

    /// Applies an edit where the file is, in one step: read, replace with
    /// [`cmux_engine::apply_edit`](crate::engine::apply_edit), write as
    /// [`Runtime::write_file`] does (atomic, mode kept, through symlinks). Returns
    /// `EditReply::Failed` without writing when the edit does not apply, and
    /// [`Error::NotFound`] for a missing file. The default, `Ok(None)`, lets the edit
    /// tool read and write through this runtime instead.
    async fn edit(&self, path: &RemotePath, spec: &EditSpec) -> Result<Option<EditReply>> {
        let _ = (path, spec);
        Ok(None)
    }
}

/// Helpers every runtime gets for free.
#[async_trait]
pub trait RuntimeExt: Runtime {
    /// Runs a command to completion, keeping at most `cap` bytes of each stream.
    async fn output(&self, req: ExecRequest, cap: usize) -> Result<Output> {
        self.exec(req).await?.output(cap).await
    }

    /// Runs a command that must succeed; returns its stdout, or
    /// [`Error::CommandFailed`] naming `what` with the end of its stderr.
    async fn run_checked(&self, what: &str, req: ExecRequest) -> Result<String> {
        let out = self.output(req, 8 << 20).await?;
        match out.status {
            crate::ExitStatus::Exited(0) => Ok(out.stdout_lossy()),
            crate::ExitStatus::TimedOut => Err(Error::TimedOut {
                host: self.host().to_owned(),
                what: what.to_owned(),
                secs: 0.0,
            }),
            status => Err(Error::CommandFailed {
                host: self.host().to_owned(),
                command: what.to_owned(),
                code: status.shell_code(),
                stderr: tail(&out.stderr_lossy(), 2000),
            }),
        }
    }

    /// True when the path exists (following symlinks).
    async fn exists(&self, path: &RemotePath) -> Result<bool> {
        match self.stat(path).await {
            Ok(_) => Ok(true),
            Err(Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// [`Runtime::write_file`], creating missing parent directories. The write is
    /// tried first: parents usually exist, and creating them costs a round trip.
    async fn write_file_creating_dirs(&self, path: &RemotePath, data: &[u8]) -> Result<()> {
        match self.write_file(path, data).await {
            Err(Error::NotFound { .. }) => {
                let parent = path.parent().ok_or_else(|| {
                    Error::invalid(format!("{path}: not a file path: give a file name"))
                })?;
                self.create_dir_all(&parent).await?;
                self.write_file(path, data).await
            }
            other => other,
        }
    }
}

impl<T: Runtime + ?Sized> RuntimeExt for T {}

/// A shared runtime, as the CLI and tools hold it.
pub type SharedRuntime = Arc<dyn Runtime>;

/// The last `max` characters of `text`, trimmed, for error messages.
pub fn tail(text: &str, max: usize) -> String {
    let text = text.trim();
    let count = text.chars().count();
    if count <= max {
        return text.to_owned();
    }
    let skip = count - max;
    format!("…{}", text.chars().skip(skip).collect::<String>())
}
