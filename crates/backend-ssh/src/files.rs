//! File operations over the SFTP session of the first master.
//!
//! Round trips (requests sent together by [`crate::pipeline`] count once): stat,
//! rename, mkdir = 1; read = 2 (open + stat, then every read + one finding the end of
//! file; the close is not awaited); list = 2 up to ~300 entries; write = 3 (lstat +
//! temp open, then writes + mode, then the rename once the writes succeeded);
//! open_read = 1 before the first read.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use cmux_core::temp;
use cmux_core::{
    BoxRead, DirEntry, Error, ExecRequest, FileKind, Metadata, RemotePath, Result, RuntimeExt,
};
use openssh_sftp_client::error::{Error as SftpError, SftpErrorKind};
use openssh_sftp_client::file::TokioCompatFile;
use openssh_sftp_client::fs::Fs;
use openssh_sftp_client::metadata::{MetaData, Permissions};

use crate::conn::{Conn, HostState};

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
        let state: &HostState = $state;
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
                        if crate::conn::liveness(&$conn.session).await
                            == crate::conn::Liveness::Dead
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
                    if crate::conn::liveness(&$conn.session).await == crate::conn::Liveness::Dead {
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
        SftpError::SftpError(kind, msg) => Fail::Op(Error::Io {
            host: host.to_owned(),
            context: format!("{what} {path}"),
            source: std::io::Error::other(format!("SFTP {kind:?}: {}", msg.get().0)),
        }),
        other => Fail::Transport(format!(
            "SFTP {what} {path} failed: {other}; the connection may have dropped, retry"
        )),
    }
}

/// `path` made absolute on the host (`~` and relative paths from the home, asked once
/// per connection).
async fn absolute(state: &HostState, conn: &Conn, path: &RemotePath) -> Result<String> {
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

pub(crate) async fn resolve(state: &HostState, path: &str) -> Result<RemotePath> {
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
pub(crate) async fn read(state: &HostState, path: &RemotePath) -> Result<Vec<u8>> {
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
        crate::pipeline::read_to_end(&file, expected)
            .await
            .map_err(|e| map(host, path, "reading", e))
    })
}

pub(crate) async fn stat(state: &HostState, path: &RemotePath) -> Result<Metadata> {
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
pub(crate) async fn read_dir(state: &HostState, path: &RemotePath) -> Result<Vec<DirEntry>> {
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
        let listed = crate::pipeline::read_dir_all(dir)
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

pub(crate) async fn create_dir_all(state: &HostState, path: &RemotePath) -> Result<()> {
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
    state: &Arc<HostState>,
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
        let rt = crate::SshRuntime {
            state: state.clone(),
        };
        rt.run_checked(
            &format!("rm -rf {path}"),
            ExecRequest::argv(["rm", "-rf", "--", abs.as_str()]),
        )
        .await?;
    }
    Ok(())
}

pub(crate) async fn rename(state: &HostState, from: &RemotePath, to: &RemotePath) -> Result<()> {
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

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Follows symlinks from `abs` to the file a write must replace, with the mode of an
/// existing target (a dangling link's target is created).
async fn write_target(
    fs: &mut Fs,
    host: &str,
    path: &RemotePath,
    abs: &str,
) -> Attempt<(String, Option<u32>)> {
    let mut current = abs.to_owned();
    for _ in 0..40 {
        match fs.symlink_metadata(&current).await {
            Ok(m) if m.file_type().is_some_and(|t| t.is_symlink()) => {
                let target = fs
                    .read_link(&current)
                    .await
                    .map_err(|e| map(host, path, "reading link", e))?;
                let target = target.to_string_lossy().into_owned();
                current = if target.starts_with('/') {
                    target
                } else {
                    let parent = Path::new(&current)
                        .parent()
                        .and_then(|p| p.to_str())
                        .unwrap_or("/")
                        .to_owned();
                    RemotePath::new(parent)?
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
            Ok(m) => return Ok((current, Some(mode_of(&m)))),
            Err(e) if is_kind(&e, SftpErrorKind::NoSuchFile) => return Ok((current, None)),
            Err(e) => return Err(map(host, path, "writing", e)),
        }
    }
    Err(Fail::Op(Error::invalid(format!(
        "{path}: too many levels of symbolic links"
    ))))
}

fn temp_beside(target: &str, path: &RemotePath) -> Attempt<String> {
    match target.rsplit_once('/') {
        Some((dir, name)) if !name.is_empty() => Ok(format!(
            "{dir}/{}",
            temp::temp_name(
                name,
                std::process::id(),
                TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
            )
        )),
        _ => Err(Fail::Op(Error::invalid(format!("{path}: not a file path")))),
    }
}

/// Removes the stale cmux temporary files of `dir` (the rule of `cmux_core::temp`:
/// left by a killed writer, untouched for 10 minutes), at most once per directory per
/// 10 minutes per runtime. Best effort: never fails the write. Runs beside the write
/// (its requests travel with the write's), so it adds no round trip to a write of
/// three unless stale files are found.
async fn sweep_stale_temps(state: &HostState, sftp: &openssh_sftp_client::Sftp, dir: &str) {
    if !state.sweeper.due(dir) {
        return;
    }
    let mut fs = sftp.fs();
    let Ok(handle) = fs.open_dir(if dir.is_empty() { "/" } else { dir }).await else {
        return;
    };
    let Ok(entries) = crate::pipeline::read_dir_all(handle).await else {
        return;
    };
    let now = temp::now_unix();
    let mut stale = Vec::new();
    for entry in entries {
        let name = entry.filename().to_string_lossy().into_owned();
        if !temp::is_temp_name(&name) {
            continue;
        }
        let meta = entry.metadata();
        let is_file = meta.file_type().is_some_and(|t| t.is_file());
        let modified = meta
            .modified()
            .map(|t| i64::try_from(t.as_duration().as_secs()).unwrap_or(i64::MAX));
        if is_file && modified.is_some_and(|m| temp::is_stale(m, now)) {
            stale.push(format!("{dir}/{name}"));
        }
    }
    let removals = stale
        .iter()
        .map(|file| {
            let mut fs = fs.clone();
            async move {
                tracing::debug!(file = %file, "removing a stale temporary file");
                let _ = fs.remove_file(file).await;
            }
        })
        .collect();
    crate::pipeline::join_all(removals).await;
}

/// Round trips: 3. (1) the lstat of the target and the creation of the temporary
/// file beside it; (2) the writes and the mode change; (3) the rename, sent only once
/// every write succeeded. A symlink costs more (it is resolved first).
///
/// When the host is far (see [`crate::exec_write`]), one command instead: 2 round
/// trips.
pub(crate) async fn write(state: &Arc<HostState>, path: &RemotePath, data: &[u8]) -> Result<()> {
    let host = state.host.as_str();
    with_sftp!(state.as_ref(), |conn, fs| {
        let abs = absolute(state, &conn, path).await?;
        let sftp = state.sftp(&conn).await?;
        let dir = abs.rsplit_once('/').map(|(d, _)| d).unwrap_or("/");
        if let Some(mode) = crate::exec_write::planned_mode(state, &abs) {
            let temp = temp_beside(&abs, path)?;
            if let Some(command) = crate::exec_write::command(&abs, &temp, mode, data) {
                let (_, written) = tokio::join!(
                    sweep_stale_temps(state, &sftp, dir),
                    crate::exec_write::run(state, &command)
                );
                if written {
                    return Ok(());
                }
                state.modes.forget(&abs);
            }
        }
        let (_, written) = tokio::join!(
            sweep_stale_temps(state, &sftp, dir),
            write_attempt(state, &sftp, fs, host, path, &abs, data)
        );
        written
    })
}

async fn write_attempt(
    state: &HostState,
    sftp: &Arc<openssh_sftp_client::Sftp>,
    mut fs: Fs,
    host: &str,
    path: &RemotePath,
    abs: &str,
    data: &[u8],
) -> Attempt<()> {
    let open_temp = |temp: String| {
        let sftp = sftp.clone();
        async move {
            sftp.options()
                .write(true)
                .create_new(true)
                .open(&temp)
                .await
        }
    };
    // The lstat of the target and the creation of the temp file beside it travel
    // together. A symlink (rare) is resolved first and the temp file made beside its
    // target instead.
    let temp = temp_beside(abs, path)?;
    let started = std::time::Instant::now();
    let (lstat, opened) = tokio::join!(fs.symlink_metadata(abs), open_temp(temp.clone()));
    state.note_rtt(started.elapsed());
    let (target, mode, temp, opened) = match lstat {
        Ok(m) if m.file_type().is_some_and(|t| t.is_symlink()) => {
            state.modes.note_not_a_file(abs);
            if let Ok(file) = opened {
                drop(file);
                let _ = fs.remove_file(&temp).await;
            }
            let (target, mode) = write_target(&mut fs, host, path, abs).await?;
            if let Some((dir, _)) = target.rsplit_once('/') {
                sweep_stale_temps(state, sftp, dir).await;
            }
            let temp = temp_beside(&target, path)?;
            let opened = open_temp(temp.clone()).await;
            (target, mode, temp, opened)
        }
        Ok(m) if m.file_type().is_some_and(|t| t.is_dir()) => {
            if opened.is_ok() {
                let _ = fs.remove_file(&temp).await;
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
            (abs.to_owned(), Some(mode_of(&m)), temp, opened)
        }
        Err(e) if is_kind(&e, SftpErrorKind::NoSuchFile) => (abs.to_owned(), None, temp, opened),
        Err(e) => {
            if opened.is_ok() {
                let _ = fs.remove_file(&temp).await;
            }
            return Err(map(host, path, "writing", e));
        }
    };
    let file = opened.map_err(|e| map(host, path, "writing", e))?;
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
        let (written, moded) = tokio::join!(crate::pipeline::write_all(&file, data), keep_mode);
        written?;
        moded?;
        // The close leaves now, ahead of the rename, without waiting for its answer
        // (on a local file system close cannot fail once the writes succeeded).
        drop(file);
        fs.rename(&temp, &target).await
    }
    .await;
    if let Err(e) = result {
        let _ = fs.remove_file(&temp).await;
        return Err(map(host, path, "writing", e));
    }
    Ok(())
}

/// Streams a file over SFTP (open and stat together: one round trip, then reads as
/// the caller consumes): no command on the host, so no login-shell startup.
pub(crate) async fn open_read(state: &HostState, path: &RemotePath) -> Result<BoxRead> {
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
        Ok(Box::pin(TokioCompatFile::new(file)) as BoxRead)
    })
}
