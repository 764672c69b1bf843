//! File operations over the SFTP session of the first master.
//!
//! Round trips (requests sent together by [`super::pipeline`] count once): stat,
//! rename, mkdir = 1; read = 2 (open + stat, then every read + one finding the end of
//! file; the close is not awaited); list = 2 up to ~300 entries; write = 3 (lstat +
//! temp open, then writes + mode, then the rename once the writes succeeded);
//! open_read = 1 before the first read.

use std::path::Path;
use std::sync::Arc;

use cmux_core::temp;
use cmux_core::{BoxRead, DirEntry, Error, ExecRequest, FileKind, Metadata, RemotePath, Result};
use openssh_sftp_client::error::{Error as SftpError, SftpErrorKind};
use openssh_sftp_client::file::TokioCompatFile;
use openssh_sftp_client::fs::Fs;
use openssh_sftp_client::metadata::{MetaData, Permissions};

use super::Fallback;
use crate::pool::Conn;

/// Why one attempt of an operation failed.
enum Fail {
    /// The SFTP channel or the connection broke: retried once on a new master.
    Transport(String),
    /// The operation's own failure, for the caller.
    Op(Error),
}

type Attempt<T> = std::result::Result<T, Fail>;

impl From<Error> for Fail {
    fn from(e: Error) -> Self {
        Fail::Op(e)
    }
}

/// Runs `$body` with `$fs` (an SFTP `Fs`) and `$conn`, retrying once on a new master
/// when the transport broke and the master is found dead.
macro_rules! with_sftp {
    ($state:expr, |$conn:ident, $fs:ident| $body:expr) => {{
        let state: &Fallback = $state;
        let mut retried = false;
        loop {
            let $conn: Arc<Conn> = state.primary().await?;
            let attempt = async {
                // A failed SFTP start on a dead master is a transport failure: the
                // master is replaced and the operation retried once. On a live one,
                // `sftp()` already retried what was worth retrying (refusals).
                let sftp = match state.sftp(&$conn).await {
                    Ok(sftp) => sftp,
                    Err(e) => {
                        if crate::master::liveness(&$conn.session).await
                            == crate::master::Liveness::Dead
                        {
                            let message = match e {
                                Error::Connection { message, .. } => message,
                                other => other.to_string(),
                            };
                            return Err(Fail::Transport(message));
                        }
                        return Err(Fail::Op(e));
                    }
                };
                #[allow(unused_mut)]
                let mut $fs: Fs = sftp.fs();
                $body
            };
            let result: Attempt<_> = attempt.await;
            match result {
                Ok(v) => break Ok(v),
                Err(Fail::Op(e)) => break Err(e),
                Err(Fail::Transport(message)) => {
                    if crate::master::liveness(&$conn.session).await
                        == crate::master::Liveness::Dead
                    {
                        state.mark_dead(&$conn);
                        if !retried {
                            retried = true;
                            continue;
                        }
                    } else {
                        // The master lives but its SFTP channel broke: start a new one.
                        state.reset_sftp(&$conn);
                        if !retried {
                            retried = true;
                            continue;
                        }
                    }
                    break Err(Error::Connection {
                        host: state.host.clone(),
                        message,
                    });
                }
            }
        }
    }};
}

fn is_kind(e: &SftpError, kind: SftpErrorKind) -> bool {
    matches!(e, SftpError::SftpError(k, _) if std::mem::discriminant(k) == std::mem::discriminant(&kind))
}

/// Maps an SFTP failure about `path` to cmux's error.
fn map(host: &str, path: &RemotePath, what: &str, e: SftpError) -> Fail {
    match e {
        SftpError::SftpError(SftpErrorKind::NoSuchFile, _) => Fail::Op(Error::NotFound {
            host: host.to_owned(),
            path: path.clone(),
        }),
        SftpError::SftpError(SftpErrorKind::PermDenied, _) => Fail::Op(Error::PermissionDenied {
            host: host.to_owned(),
            path: path.clone(),
        }),
        // No `source` chained: the CLI prints a chain, and it would say this twice.
        SftpError::SftpError(kind, msg) => Fail::Op(Error::Backend {
            backend: host.to_owned(),
            message: format!(
                "{what} {path}: the SFTP server answered {kind:?} ({:?})",
                msg.get().0
            ),
        }),
        other => Fail::Transport(format!(
            "SFTP {what} {path} failed: {other}; the connection may have dropped, retry"
        )),
    }
}

/// `path` made absolute on the host (`~` and relative paths from the home, asked once
/// per connection).
async fn absolute(state: &Fallback, conn: &Conn, path: &RemotePath) -> Result<String> {
    let s = path.as_str();
    if path.is_absolute() {
        return Ok(path.normalize().as_str().to_owned());
    }
    if s.starts_with('~') && !path.is_home_relative() {
        return Err(Error::invalid(format!(
            "{path}: `~user` paths are not supported; use an absolute path"
        )));
    }
    let home = RemotePath::new(state.home(conn).await?.to_owned())?;
    let rest = s.strip_prefix('~').unwrap_or(s).trim_start_matches('/');
    Ok(home.join(rest)?.normalize().as_str().to_owned())
}

fn kind_of(meta: &MetaData) -> FileKind {
    match meta.file_type() {
        Some(t) if t.is_symlink() => FileKind::Symlink,
        Some(t) if t.is_dir() => FileKind::Dir,
        Some(t) if t.is_file() => FileKind::File,
        Some(_) => FileKind::Other,
        None => FileKind::Other,
    }
}

pub(crate) fn mode_of(meta: &MetaData) -> u32 {
    meta.permissions()
        .map(|p| p.as_raw().bits() & 0o7777)
        .unwrap_or(0)
}

pub(crate) async fn resolve(state: &Fallback, path: &str) -> Result<RemotePath> {
    let path = RemotePath::new(path)?;
    if path.is_absolute() {
        return Ok(path.normalize());
    }
    let conn = state.primary().await?;
    RemotePath::new(absolute(state, &conn, &path).await?)
}

/// Round trips: 2. The open and a stat of the path go together (the stat gives the
/// size, so every read can be sent at once, and tells a directory apart); then the
/// reads, with one past the end that must find the end of file. The close is sent
/// without waiting for its answer.
pub(crate) async fn read(state: &Fallback, path: &RemotePath) -> Result<Vec<u8>> {
    let host = state.host.as_str();
    with_sftp!(state, |conn, fs| {
        let abs = absolute(state, &conn, path).await?;
        let sftp = state.sftp(&conn).await?;
        let started = std::time::Instant::now();
        let (meta, opened) = tokio::join!(fs.metadata(&abs), sftp.open(&abs));
        state.note_rtt(started.elapsed());
        let is_dir = matches!(&meta, Ok(m) if m.file_type().is_some_and(|t| t.is_dir()));
        if is_dir {
            // sftp-server opens a directory fine and fails the read: say what it is.
            return Err(Fail::Op(Error::WrongKind {
                host: host.to_owned(),
                path: path.clone(),
                message: "is a directory, not a file".into(),
            }));
        }
        let file = opened.map_err(|e| map(host, path, "reading", e))?;
        if let Ok(m) = &meta {
            if m.file_type().is_some_and(|t| t.is_file()) {
                state.modes.note(&abs, mode_of(m), false);
            }
        }
        let expected = meta.ok().and_then(|m| m.len());
        super::pipeline::read_to_end(&file, expected)
            .await
            .map_err(|e| map(host, path, "reading", e))
    })
}

pub(crate) async fn stat(state: &Fallback, path: &RemotePath) -> Result<Metadata> {
    let host = state.host.as_str();
    with_sftp!(state, |conn, fs| {
        let abs = absolute(state, &conn, path).await?;
        let started = std::time::Instant::now();
        let meta = fs.metadata(&abs).await;
        state.note_rtt(started.elapsed());
        let meta = meta.map_err(|e| map(host, path, "reading metadata of", e))?;
        if meta.file_type().is_some_and(|t| t.is_file()) {
            state.modes.note(&abs, mode_of(&meta), false);
        }
        Ok(Metadata {
            kind: kind_of(&meta),
            len: meta.len().unwrap_or(0),
            mode: mode_of(&meta),
            modified: meta
                .modified()
                .map(|t| i64::try_from(t.as_duration().as_secs()).unwrap_or(i64::MAX)),
        })
    })
}

/// Round trips: 2 up to ~300 entries (opendir, then readdir requests sent together).
pub(crate) async fn read_dir(state: &Fallback, path: &RemotePath) -> Result<Vec<DirEntry>> {
    let host = state.host.as_str();
    with_sftp!(state, |conn, fs| {
        let abs = absolute(state, &conn, path).await?;
        let dir = match fs.open_dir(&abs).await {
            Ok(dir) => dir,
            // sftp-server reports ENOTDIR as "no such file": look before saying so.
            Err(e)
                if is_kind(&e, SftpErrorKind::Failure)
                    || is_kind(&e, SftpErrorKind::NoSuchFile) =>
            {
                return Err(match fs.metadata(&abs).await {
                    Ok(m) if !m.file_type().is_some_and(|t| t.is_dir()) => {
                        Fail::Op(Error::WrongKind {
                            host: host.to_owned(),
                            path: path.clone(),
                            message: "is not a directory".into(),
                        })
                    }
                    _ => map(host, path, "listing", e),
                });
            }
            Err(e) => return Err(map(host, path, "listing", e)),
        };
        let listed = super::pipeline::read_dir_all(dir)
            .await
            .map_err(|e| map(host, path, "listing", e))?;
        let mut entries = Vec::with_capacity(listed.len());
        for entry in listed {
            let name = entry.filename().to_string_lossy().into_owned();
            if name == "." || name == ".." {
                continue;
            }
            let meta = entry.metadata();
            entries.push(DirEntry {
                name,
                kind: kind_of(&meta),
                len: meta.len().unwrap_or(0),
            });
        }
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(entries)
    })
}

pub(crate) async fn create_dir_all(state: &Fallback, path: &RemotePath) -> Result<()> {
    let host = state.host.as_str();
    with_sftp!(state, |conn, fs| {
        let abs = absolute(state, &conn, path).await?;
        // Optimistic: one round trip when only the last component is missing.
        let mut missing: Vec<String> = Vec::new();
        let mut current = abs.clone();
        loop {
            match fs.create_dir(&current).await {
                Ok(()) => break,
                Err(e) => match fs.metadata(&current).await {
                    Ok(m) if m.file_type().is_some_and(|t| t.is_dir()) => break,
                    Ok(_) => {
                        return Err(Fail::Op(Error::AlreadyExists {
                            host: host.to_owned(),
                            path: RemotePath::new(current.clone())?,
                        }))
                    }
                    Err(stat_err) if is_kind(&stat_err, SftpErrorKind::NoSuchFile) => {
                        match Path::new(&current).parent().and_then(|p| p.to_str()) {
                            Some(parent) if parent != current && !parent.is_empty() => {
                                missing.push(current.clone());
                                current = parent.to_owned();
                            }
                            _ => return Err(map(host, path, "creating directory", e)),
                        }
                    }
                    Err(_) => return Err(map(host, path, "creating directory", e)),
                },
            }
        }
        while let Some(dir) = missing.pop() {
            if let Err(e) = fs.create_dir(&dir).await {
                // Another writer may have made it meanwhile.
                match fs.metadata(&dir).await {
                    Ok(m) if m.file_type().is_some_and(|t| t.is_dir()) => {}
                    _ => return Err(map(host, path, "creating directory", e)),
                }
            }
        }
        Ok(())
    })
}

pub(crate) async fn remove(
    state: &Arc<Fallback>,
    path: &RemotePath,
    recursive: bool,
) -> Result<()> {
    let host = state.host.as_str();
    let abs_dir: Option<String> = with_sftp!(state.as_ref(), |conn, fs| {
        let abs = absolute(state, &conn, path).await?;
        let meta = fs
            .symlink_metadata(&abs)
            .await
            .map_err(|e| map(host, path, "removing", e))?;
        if !meta.file_type().is_some_and(|t| t.is_dir()) {
            fs.remove_file(&abs)
                .await
                .map_err(|e| map(host, path, "removing", e))?;
            return Ok(None);
        }
        if recursive {
            return Ok(Some(abs));
        }
        match fs.remove_dir(&abs).await {
            Ok(()) => Ok(None),
            Err(e) if is_kind(&e, SftpErrorKind::Failure) => Err(Fail::Op(Error::WrongKind {
                host: host.to_owned(),
                path: path.clone(),
                message: "directory is not empty (remove it recursively)".into(),
            })),
            Err(e) => Err(map(host, path, "removing", e)),
        }
    })?;
    if let Some(abs) = abs_dir {
        // A tree: one `rm -rf` on the host instead of a round trip per entry.
        let out = super::exec::spawn(state, ExecRequest::argv(["rm", "-rf", "--", abs.as_str()]))
            .await?
            .output(1 << 16)
            .await?;
        if !out.status.success() {
            return Err(Error::CommandFailed {
                host: state.host.clone(),
                command: format!("rm -rf {path}"),
                code: out.status.shell_code(),
                stderr: cmux_core::runtime::tail(&out.stderr_lossy(), 2000),
            });
        }
    }
    Ok(())
}

pub(crate) async fn rename(state: &Fallback, from: &RemotePath, to: &RemotePath) -> Result<()> {
    let host = state.host.as_str();
    with_sftp!(state, |conn, fs| {
        let a = absolute(state, &conn, from).await?;
        let b = absolute(state, &conn, to).await?;
        fs.rename(&a, &b).await.map_err(|e| match e {
            SftpError::SftpError(SftpErrorKind::NoSuchFile, _) => map(host, from, "renaming", e),
            e => map(host, to, "renaming to", e),
        })
    })
}

/// What a symlink chain ends at: the file a write must replace.
struct Target {
    /// Its absolute path, symlinks resolved.
    path: String,
    /// Its metadata when it exists (a dangling link's target is created).
    meta: Option<MetaData>,
}

/// Follows symlinks from `abs` (an lstat found a link there) to the file a write must
/// replace. Each link's target is resolved against the link's real directory (SFTP
/// realpath of its parent): `d -> deep/sub` with `deep/sub/f -> ../g` makes `d/f`
/// mean `deep/g`, not `g` beside `d`.
async fn write_target(fs: &mut Fs, host: &str, path: &RemotePath, abs: &str) -> Attempt<Target> {
    let mut current = abs.to_owned();
    for _ in 0..40 {
        match fs.symlink_metadata(&current).await {
            Ok(m) if m.file_type().is_some_and(|t| t.is_symlink()) => {
                let (mut a, mut b) = (fs.clone(), fs.clone());
                let (link, parent) =
                    tokio::join!(a.read_link(&current), b.canonicalize(parent_of(&current)));
                let target = link.map_err(|e| map(host, path, "reading link", e))?;
                let target = target.to_string_lossy().into_owned();
                current = if target.starts_with('/') {
                    RemotePath::new(target)?.normalize().as_str().to_owned()
                } else {
                    let parent = parent.map_err(|e| map(host, path, "resolving the link of", e))?;
                    RemotePath::new(parent.to_string_lossy().into_owned())?
                        .join(&target)?
                        .normalize()
                        .as_str()
                        .to_owned()
                };
            }
            Ok(m) if m.file_type().is_some_and(|t| t.is_dir()) => {
                return Err(Fail::Op(Error::WrongKind {
                    host: host.to_owned(),
                    path: path.clone(),
                    message: "is a directory, not a file".into(),
                }))
            }
            Ok(m) => {
                return Ok(Target {
                    path: current,
                    meta: Some(m),
                })
            }
            Err(e) if is_kind(&e, SftpErrorKind::NoSuchFile) => {
                return Ok(Target {
                    path: current,
                    meta: None,
                })
            }
            Err(e) => return Err(map(host, path, "writing", e)),
        }
    }
    Err(Fail::Op(Error::invalid(format!(
        "{path}: too many levels of symbolic links"
    ))))
}

/// The directory part of an absolute path (`/` for `/x`).
fn parent_of(abs: &str) -> &str {
    match abs.rsplit_once('/') {
        Some(("", _)) | None => "/",
        Some((dir, _)) => dir,
    }
}

/// The name part of an absolute path.
fn name_of<'a>(abs: &'a str, path: &RemotePath) -> Attempt<&'a str> {
    match abs.rsplit_once('/') {
        Some((_, name)) if !name.is_empty() => Ok(name),
        _ => Err(Fail::Op(Error::invalid(format!("{path}: not a file path")))),
    }
}

/// The temporary file of one write: inside a private directory (mode 0700) made
/// beside the target, so no other user of the host can open it, whatever mode the
/// server gives new files, while the content is written (see `write`).
struct Staging {
    /// The private directory (a [`temp::temp_name`] beside the target).
    dir: String,
    /// The temporary file inside it.
    file_path: String,
    /// The open temporary file.
    file: openssh_sftp_client::file::File,
    /// The owner of the private directory: the remote user (for the ownership check).
    uid: Option<u32>,
}

/// Name of the temporary file inside its private directory.
const STAGED_FILE: &str = "content";

/// Makes a [`Staging`] beside `target` in one round trip (mkdir with mode 0700, the
/// exclusive open inside it and an lstat of the directory travel together). A taken
/// name (a leftover) is never touched: another is drawn, up to
/// [`temp::TEMP_NAME_ATTEMPTS`] times.
async fn stage(
    state: &Fallback,
    sftp: &openssh_sftp_client::Sftp,
    fs: &Fs,
    path: &RemotePath,
    target: &str,
) -> Attempt<Staging> {
    let host = state.host.as_str();
    let (dir, name) = (parent_of(target), name_of(target, path)?);
    let dir = if dir == "/" { "" } else { dir };
    let mut last_taken = String::new();
    for _ in 0..temp::TEMP_NAME_ATTEMPTS {
        let private = format!("{dir}/{}", temp::temp_name(name));
        let file_path = format!("{private}/{STAGED_FILE}");
        let mkdir = async {
            let mut fs = fs.clone();
            let mut builder = fs.dir_builder();
            builder.permissions(Permissions::from(0o700));
            builder.create(&private).await
        };
        let open = async {
            sftp.options()
                .write(true)
                .create_new(true)
                .open(&file_path)
                .await
        };
        let mut lstat_fs = fs.clone();
        let (made, opened, meta) = tokio::join!(mkdir, open, lstat_fs.symlink_metadata(&private));
        match (made, opened) {
            (Ok(()), Ok(file)) => {
                let uid = meta.ok().and_then(|m| m.uid());
                return Ok(Staging {
                    dir: private,
                    file_path,
                    file,
                    uid,
                });
            }
            (Ok(()), Err(e)) => {
                let _ = fs.clone().remove_dir(&private).await;
                return Err(map_write(state, fs, path, dir, 0, e).await);
            }
            (Err(e), opened) => {
                if opened.is_ok() {
                    // Our file in a directory that was already there: not ours to keep.
                    let _ = fs.clone().remove_file(&file_path).await;
                }
                if meta.is_ok() {
                    tracing::debug!(host, dir = private, "temporary name taken; drawing another");
                    last_taken = private;
                    continue;
                }
                return Err(map_write(state, fs, path, dir, 0, e).await);
            }
        }
    }
    Err(Fail::Op(temp::leftover_error(host, &last_taken)))
}

impl Staging {
    /// Removes the temporary file and its directory (requests sent together).
    async fn discard(self, fs: &Fs) {
        drop(self.file);
        let (mut a, mut b) = (fs.clone(), fs.clone());
        let _ = tokio::join!(a.remove_file(&self.file_path), b.remove_dir(&self.dir));
    }
}

/// Removes the stale cmux temporary files of `dir` (the rule of `cmux_core::temp`:
/// left by a killed writer, untouched for 10 minutes), at most once per directory per
/// 10 minutes per runtime. A private staging directory is stale when its content is.
/// Best effort: never fails the write. Runs beside the write (its requests travel
/// with the write's), so it adds no round trip to a write of three unless stale files
/// are found.
async fn sweep_stale_temps(state: &Fallback, sftp: &openssh_sftp_client::Sftp, dir: &str) {
    if !state.sweeper.due(dir) {
        return;
    }
    let mut fs = sftp.fs();
    let Ok(handle) = fs.open_dir(if dir.is_empty() { "/" } else { dir }).await else {
        return;
    };
    let Ok(entries) = super::pipeline::read_dir_all(handle).await else {
        return;
    };
    let now = temp::now_unix();
    let stale_at = |meta: &MetaData| {
        meta.modified()
            .map(|t| i64::try_from(t.as_duration().as_secs()).unwrap_or(i64::MAX))
            .is_some_and(|m| temp::is_stale(m, now))
    };
    let mut stale_files = Vec::new();
    let mut stale_dirs = Vec::new();
    for entry in entries {
        let name = entry.filename().to_string_lossy().into_owned();
        if !temp::is_temp_name(&name) {
            continue;
        }
        let meta = entry.metadata();
        let kind = meta.file_type();
        if kind.is_some_and(|t| t.is_file()) && stale_at(&meta) {
            stale_files.push(format!("{dir}/{name}"));
        } else if kind.is_some_and(|t| t.is_dir()) {
            stale_dirs.push(format!("{dir}/{name}"));
        }
    }
    // A staging directory: stale when its temporary file is (a live writer keeps
    // touching it), or when it is empty and old.
    let checks = stale_dirs
        .iter()
        .map(|d| {
            let mut fs = fs.clone();
            async move {
                let inner = format!("{d}/{STAGED_FILE}");
                match fs.symlink_metadata(&inner).await {
                    Ok(m) if stale_at(&m) => Some((Some(inner), d.clone())),
                    Ok(_) => None,
                    Err(_) => match fs.symlink_metadata(d).await {
                        Ok(m) if stale_at(&m) => Some((None, d.clone())),
                        _ => None,
                    },
                }
            }
        })
        .collect();
    let stale_dirs: Vec<(Option<String>, String)> = super::pipeline::join_all(checks)
        .await
        .into_iter()
        .flatten()
        .collect();
    let removals = stale_files
        .iter()
        .map(|file| (Some(file.clone()), None))
        .chain(stale_dirs.into_iter().map(|(f, d)| (f, Some(d))))
        .map(|(file, dir)| {
            let mut fs = fs.clone();
            async move {
                tracing::debug!(file = ?file, dir = ?dir, "removing a stale temporary file");
                if let Some(file) = file {
                    let _ = fs.remove_file(&file).await;
                }
                if let Some(dir) = dir {
                    let _ = fs.remove_dir(&dir).await;
                }
            }
        })
        .collect();
    super::pipeline::join_all(removals).await;
}

/// Round trips: 3. (1) the lstat of the target, and the private staging directory
/// with the temporary file in it ([`stage`]); (2) the writes and the mode change;
/// (3) the rename, sent only once every write succeeded, with the removal of the
/// staging directory. A symlink costs more (it is resolved first).
///
/// The content is never readable by another user of the host, even for an instant:
/// the temporary file is created inside a directory of mode 0700, and gets the
/// target's mode before it is renamed out of it.
///
/// When the host is far (see [`super::exec_write`]), one command instead: 2 round
/// trips.
pub(crate) async fn write(state: &Arc<Fallback>, path: &RemotePath, data: &[u8]) -> Result<()> {
    with_sftp!(state.as_ref(), |conn, fs| {
        let abs = absolute(state, &conn, path).await?;
        let sftp = state.sftp(&conn).await?;
        let dir = parent_of(&abs).to_owned();
        if let Some(mode) = super::exec_write::planned_mode(state, &abs) {
            let name = name_of(&abs, path)?;
            let temp = format!("{dir}/{}", temp::temp_name(name));
            if let Some(command) = super::exec_write::command(&abs, &temp, mode, data) {
                let (_, written) = tokio::join!(
                    sweep_stale_temps(state, &sftp, &dir),
                    super::exec_write::run(state, &command)
                );
                if written {
                    return Ok(());
                }
                state.modes.forget(&abs);
            }
        }
        let (_, written) = tokio::join!(
            sweep_stale_temps(state, &sftp, &dir),
            write_attempt(state, &conn, &sftp, fs, path, &abs, data)
        );
        written
    })
}

/// Refuses to replace `meta`'s file unless the remote user owns it and its owner may
/// write it (the contract of `Runtime::write_file`: a rename needs only the
/// directory's permission, so it would quietly replace a read-only file, or take
/// another user's). `me`: the remote uid, when known.
fn check_replaceable(host: &str, target: &str, meta: &MetaData, me: Option<u32>) -> Attempt<()> {
    let mode = mode_of(meta);
    let reason = match (meta.uid(), me) {
        (Some(owner), Some(me)) if owner != me => {
            format!("belongs to another user (uid {owner}), not to you (uid {me})")
        }
        _ if mode & 0o200 == 0 => format!("is read-only (mode {mode:04o})"),
        _ => return Ok(()),
    };
    Err(Fail::Op(Error::NotWritable {
        host: host.to_owned(),
        path: RemotePath::new(target)?,
        reason,
    }))
}

async fn write_attempt(
    state: &Fallback,
    conn: &Conn,
    sftp: &Arc<openssh_sftp_client::Sftp>,
    mut fs: Fs,
    path: &RemotePath,
    abs: &str,
    data: &[u8],
) -> Attempt<()> {
    let host = state.host.as_str();
    // The lstat of the target and the staging beside it travel together. A symlink
    // (rare) is resolved first and the staging made beside its target instead.
    let started = std::time::Instant::now();
    let mut lstat_fs = fs.clone();
    let (lstat, staged) = tokio::join!(
        lstat_fs.symlink_metadata(abs),
        stage(state, sftp, &fs, path, abs)
    );
    state.note_rtt(started.elapsed());
    let (target, meta, staged) = match lstat {
        Ok(m) if m.file_type().is_some_and(|t| t.is_symlink()) => {
            state.modes.note_not_a_file(abs);
            if let Ok(staged) = staged {
                staged.discard(&fs).await;
            }
            let target = write_target(&mut fs, host, path, abs).await?;
            let target_dir = parent_of(&target.path).to_owned();
            sweep_stale_temps(state, sftp, &target_dir).await;
            let staged = stage(state, sftp, &fs, path, &target.path).await;
            (target.path, target.meta, staged)
        }
        Ok(m) if m.file_type().is_some_and(|t| t.is_dir()) => {
            if let Ok(staged) = staged {
                staged.discard(&fs).await;
            }
            return Err(Fail::Op(Error::WrongKind {
                host: host.to_owned(),
                path: path.clone(),
                message: "is a directory, not a file".into(),
            }));
        }
        Ok(m) => {
            if m.file_type().is_some_and(|t| t.is_file()) {
                state.modes.note(abs, mode_of(&m), true);
            }
            (abs.to_owned(), Some(m), staged)
        }
        Err(e) if is_kind(&e, SftpErrorKind::NoSuchFile) => (abs.to_owned(), None, staged),
        Err(e) => {
            if let Ok(staged) = staged {
                staged.discard(&fs).await;
            }
            return Err(map(host, path, "writing", e));
        }
    };
    if let Ok(Staging { uid: Some(uid), .. }) = &staged {
        let _ = conn.uid.set(*uid);
    }
    // The target is checked before the staging's own failure is reported: writing
    // `/proc/version` is refused for what it is, not for the directory around it.
    if let Some(meta) = &meta {
        let refused = if !meta.file_type().is_some_and(|t| t.is_file()) {
            Err(Fail::Op(Error::WrongKind {
                host: host.to_owned(),
                path: path.clone(),
                message: "is not a regular file (a device, fifo or socket): cmux writes regular files only"
                    .into(),
            }))
        } else {
            check_replaceable(host, &target, meta, conn.uid.get().copied())
        };
        if let Err(refused) = refused {
            if let Ok(staged) = staged {
                staged.discard(&fs).await;
            }
            return Err(refused);
        }
    }
    let staged = staged?;
    let mode = meta.as_ref().map(mode_of);
    let file = staged.file.clone();
    let result: std::result::Result<(), SftpError> = async {
        // The writes and the mode change travel together; the rename is sent only
        // once every one of them succeeded (the server would run a rename queued
        // behind a failed write, and tear the target).
        let keep_mode = async {
            match mode {
                Some(mode) => {
                    let mut f = file.clone();
                    f.set_permissions(Permissions::from(mode as u16)).await
                }
                None => Ok(()),
            }
        };
        let (written, moded) = tokio::join!(super::pipeline::write_all(&file, data), keep_mode);
        written?;
        moded?;
        Ok(())
    }
    .await;
    drop(file);
    let staged_dir = staged.dir.clone();
    let staged_file = staged.file_path.clone();
    if let Err(e) = result {
        // Looked at before the discard frees the space the write took.
        let failed = map_write(state, &fs, path, parent_of(&target), data.len(), e).await;
        staged.discard(&fs).await;
        return Err(failed);
    }
    // The close leaves now, ahead of the rename, without waiting for its answer (on a
    // local file system close cannot fail once the writes succeeded); the staging
    // directory's removal follows the rename in the same round trip.
    drop(staged.file);
    let (mut a, mut b) = (fs.clone(), fs.clone());
    let (renamed, _) = tokio::join!(a.rename(&staged_file, &target), b.remove_dir(&staged_dir));
    if let Err(e) = renamed {
        let (mut a, mut b) = (fs.clone(), fs.clone());
        let _ = a.remove_file(&staged_file).await;
        let _ = b.remove_dir(&staged_dir).await;
        return Err(map_write(state, &fs, path, parent_of(&target), 0, e).await);
    }
    Ok(())
}

/// Maps a failed write request: a bare `SSH_FX_FAILURE` is checked against the free
/// space of `dir` (`statvfs@openssh.com`), since sftp-server reports a full disk that
/// way (`needed`: the bytes the write needed, 0 when unknown).
async fn map_write(
    state: &Fallback,
    fs: &Fs,
    path: &RemotePath,
    dir: &str,
    needed: usize,
    e: SftpError,
) -> Fail {
    let host = state.host.as_str();
    if is_kind(&e, SftpErrorKind::Failure) {
        if let Ok(v) = fs
            .clone()
            .statvfs(if dir.is_empty() { "/" } else { dir })
            .await
        {
            let free = v.bavail.saturating_mul(v.frsize.max(1));
            if v.bavail == 0 || free < needed as u64 || (v.favail == 0 && v.files > 0) {
                return Fail::Op(Error::Backend {
                    backend: host.to_owned(),
                    message: format!(
                        "{path}: no space left on the host ({} of {dir:?}: {free} bytes free{}); nothing was \
                         replaced: free some space on the host and retry",
                        "the file system",
                        if v.favail == 0 && v.files > 0 { ", no free inodes" } else { "" }
                    ),
                });
            }
        }
    }
    map(host, path, "writing", e)
}

/// Streams a file over SFTP (open and stat together: one round trip, then reads as
/// the caller consumes): no command on the host, so no login-shell startup.
pub(crate) async fn open_read(state: &Fallback, path: &RemotePath) -> Result<BoxRead> {
    let host = state.host.as_str();
    with_sftp!(state, |conn, fs| {
        let abs = absolute(state, &conn, path).await?;
        let sftp = state.sftp(&conn).await?;
        let (meta, opened) = tokio::join!(fs.metadata(&abs), sftp.open(&abs));
        if matches!(&meta, Ok(m) if m.file_type().is_some_and(|t| t.is_dir())) {
            return Err(Fail::Op(Error::WrongKind {
                host: host.to_owned(),
                path: path.clone(),
                message: "is a directory, not a file".into(),
            }));
        }
        let file = opened.map_err(|e| map(host, path, "opening", e))?;
        Ok(Box::pin(Stream {
            inner: Box::pin(TokioCompatFile::new(file)),
            host: host.to_owned(),
            path: path.clone(),
        }) as BoxRead)
    })
}

/// A streamed SFTP read whose transport failures (the connection or the SFTP channel
/// broke mid-stream) carry an [`Error::Connection`] as their source, so a caller sees a
/// connection error (the CLI's exit 255), not the client library's "Background task
/// failed".
struct Stream<R> {
    inner: R,
    host: String,
    path: RemotePath,
}

impl<R: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for Stream<R> {
    // `R` is a pinned box: the SFTP file is not `Unpin`.
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let poll = std::pin::Pin::new(&mut self.inner).poll_read(cx, buf);
        match poll {
            std::task::Poll::Ready(Err(e)) => {
                let said_by_server = e
                    .get_ref()
                    .and_then(|inner| inner.downcast_ref::<SftpError>())
                    .is_some_and(|sftp| matches!(sftp, SftpError::SftpError(..)));
                if said_by_server {
                    return std::task::Poll::Ready(Err(e));
                }
                let broken = Error::Connection {
                    host: self.host.clone(),
                    // Not the SFTP library's words ("Background task failed"): they
                    // say nothing to a user.
                    message: format!(
                        "the connection broke while reading {}; retry once the host is reachable",
                        self.path
                    ),
                };
                std::task::Poll::Ready(Err(broken.into_io(std::io::ErrorKind::ConnectionAborted)))
            }
            other => other,
        }
    }
}
