//! # cmux-backend-local
//!
//! [`LocalRuntime`] runs commands and file operations on this machine. It is the
//! embedded default of the `cmux` CLI and the reference implementation of the
//! [`cmux_core::Runtime`] contract: it passes the whole conformance suite.
//!
//! grep, glob and edit run natively with cmux's engine (one call, no transfer, no
//! total-size cap), with the same results as the generic path other backends take.
//!
//! Commands run as `bash -c` in their own process group, so a timeout or a cancel kills
//! the command and every background child it started. Writes are atomic: a temporary
//! file beside the target (named `.<name>.cmux-tmp.<pid>.<n>`), then `rename(2)`.
//! Temporary files left by a killed writer are removed by the rule of
//! [`cmux_core::temp`]: a write into a directory first removes the cmux temporary files
//! there untouched for more than 10 minutes (each directory swept at most once every
//! 10 minutes per runtime).
//!
//! ## Commands never outlive their owner
//!
//! When the process that holds the runtime dies, even by SIGKILL (an MCP client
//! crashing, the OOM killer), the commands still running are killed with their whole
//! process group, background children included. One watchdog process per runtime (a
//! small `bash`, started with the first command) holds a pipe that only this process
//! can write to; when the pipe closes it sends SIGTERM to the groups of the commands
//! that are still running (git cleans up its lock files on TERM) and SIGKILL to those
//! still there half a second later. Dropping the runtime (its last clone, and every
//! [`Process`] it started) does the same. Covered: every command from its
//! registration right after spawn until its `bash` is reaped. Not covered: children
//! left running in the background by a command that has already exited (their group
//! is unregistered once its leader is reaped, because its number may then be reused),
//! and a command spawned in the instant before its owner died. Details in the
//! `watchdog` module.

#![deny(missing_docs)]

mod files;
mod process;
mod tools;
mod watchdog;
pub mod workspace;

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
pub use workspace::LocalSource;

use cmux_core::engine::{EditReply, EditSpec, GlobReply, GlobRequest, GrepReply, GrepRequest};
use cmux_core::{
    BoxRead, DirEntry, Error, ExecRequest, Metadata, Process, RemotePath, Result, Runtime,
};

/// This machine as a cmux runtime.
#[derive(Debug, Clone)]
pub struct LocalRuntime {
    home: RemotePath,
    sweeper: Arc<cmux_core::temp::TempSweeper>,
    /// Started with the first command; shared by every clone of this runtime.
    watchdog: Arc<OnceLock<Option<Arc<watchdog::Watchdog>>>>,
}

impl LocalRuntime {
    /// A runtime whose home (for `~` and relative paths) is the user's home from the
    /// passwd database (`getpwuid_r`, as OpenSSH's client finds it), not `$HOME`:
    /// this crate reads no environment variable. A front end that honours `$HOME`
    /// (the cmux CLI does) passes it to [`LocalRuntime::with_home`].
    pub fn new() -> Result<Self> {
        let home = cmux_core::local_user::home_dir().ok_or_else(|| {
            Error::invalid(
                "the passwd database has no absolute home directory for this user: \
                 give one with LocalRuntime::with_home (the cmux CLI uses $HOME)",
            )
        })?;
        let home = home.into_os_string().into_string().map_err(|home| {
            Error::invalid(format!(
                "the home directory {home:?} is not UTF-8: give another with \
                 LocalRuntime::with_home"
            ))
        })?;
        Self::with_home(home)
    }

    /// A runtime whose home (for `~` and relative paths) is `home`, which must be
    /// absolute.
    pub fn with_home(home: impl Into<String>) -> Result<Self> {
        let home = RemotePath::new(home)?;
        if !home.is_absolute() {
            return Err(Error::invalid(format!(
                "home directory {home} is not absolute"
            )));
        }
        Ok(LocalRuntime {
            home,
            sweeper: Arc::default(),
            watchdog: Arc::default(),
        })
    }

    fn local(&self, path: &RemotePath) -> PathBuf {
        PathBuf::from(self.absolute(path).as_str())
    }

    fn absolute(&self, path: &RemotePath) -> RemotePath {
        let s = path.as_str();
        let joined = if s == "~" {
            Ok(self.home.clone())
        } else if let Some(rest) = s.strip_prefix("~/") {
            self.home.join(rest)
        } else {
            self.home.join(s)
        };
        // `join` only fails on an empty or NUL-holding child, which `path` cannot be.
        joined.unwrap_or_else(|_| path.clone())
    }
}

/// Label used in error messages for this machine.
const HOST: &str = "local";

#[async_trait]
impl Runtime for LocalRuntime {
    fn host(&self) -> &str {
        HOST
    }

    fn kind(&self) -> &str {
        "local"
    }

    async fn ensure_ready(&self) -> Result<()> {
        Ok(())
    }

    async fn exec(&self, req: ExecRequest) -> Result<Process> {
        let watchdog = self
            .watchdog
            .get_or_init(|| watchdog::Watchdog::start().map(Arc::new))
            .clone();
        process::spawn(&self.home, req, watchdog)
    }

    async fn read_file(&self, path: &RemotePath) -> Result<Vec<u8>> {
        files::read(&self.local(path), path).await
    }

    async fn open_read(&self, path: &RemotePath) -> Result<BoxRead> {
        files::open_read(&self.local(path), path).await
    }

    async fn write_file(&self, path: &RemotePath, data: &[u8]) -> Result<()> {
        files::write_atomic(&self.local(path), path, data, &self.sweeper).await
    }

    async fn stat(&self, path: &RemotePath) -> Result<Metadata> {
        files::stat(&self.local(path), path).await
    }

    async fn read_dir(&self, path: &RemotePath) -> Result<Vec<DirEntry>> {
        files::read_dir(&self.local(path), path).await
    }

    async fn create_dir_all(&self, path: &RemotePath) -> Result<()> {
        let local = self.local(path);
        tokio::fs::create_dir_all(&local)
            .await
            .map_err(|e| Error::from_io(HOST, path, "creating directory", e))
    }

    async fn remove(&self, path: &RemotePath, recursive: bool) -> Result<()> {
        files::remove(&self.local(path), path, recursive).await
    }

    async fn rename(&self, from: &RemotePath, to: &RemotePath) -> Result<()> {
        tokio::fs::rename(self.local(from), self.local(to))
            .await
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => Error::from_io(HOST, from, "renaming", e),
                _ => Error::from_io(HOST, to, "renaming to", e),
            })
    }

    async fn resolve_path(&self, path: &str) -> Result<RemotePath> {
        let path = RemotePath::new(path)?;
        if path.as_str().starts_with('~') && !path.is_home_relative() {
            return Err(Error::invalid(format!(
                "{path}: `~user` paths are not supported; use an absolute path"
            )));
        }
        Ok(self.absolute(&path).normalize())
    }

    async fn grep(&self, req: &GrepRequest) -> Result<Option<GrepReply>> {
        let mut req = req.clone();
        req.path = self
            .absolute(&RemotePath::new(req.path)?)
            .as_str()
            .to_owned();
        tools::grep(req).await.map(Some)
    }

    async fn glob(&self, req: &GlobRequest) -> Result<Option<GlobReply>> {
        let mut req = req.clone();
        req.path = self
            .absolute(&RemotePath::new(req.path)?)
            .as_str()
            .to_owned();
        tools::glob(req).await.map(Some)
    }

    async fn edit(&self, path: &RemotePath, spec: &EditSpec) -> Result<Option<EditReply>> {
        tools::edit(&self.local(path), path, spec, &self.sweeper)
            .await
            .map(Some)
    }
}
