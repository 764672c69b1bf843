//! Local file operations with the semantics of the Runtime contract.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use cmux_core::temp::{self, TempSweeper};
use cmux_core::{BoxRead, DirEntry, Error, FileKind, Metadata, RemotePath, Result};
use tokio::io::AsyncWriteExt;

use crate::HOST;

pub(crate) async fn read(local: &Path, path: &RemotePath) -> Result<Vec<u8>> {
    tokio::fs::read(local)
        .await
        .map_err(|e| Error::from_io(HOST, path, "reading", e))
}

pub(crate) async fn open_read(local: &Path, path: &RemotePath) -> Result<BoxRead> {
    let file = tokio::fs::File::open(local)
        .await
        .map_err(|e| Error::from_io(HOST, path, "opening", e))?;
    let meta = file
        .metadata()
        .await
        .map_err(|e| Error::from_io(HOST, path, "reading metadata of", e))?;
    if meta.is_dir() {
        return Err(Error::WrongKind {
            host: HOST.into(),
            path: path.clone(),
            message: "is a directory, not a file".into(),
        });
    }
    Ok(Box::pin(file))
}

fn kind_of(ft: std::fs::FileType) -> FileKind {
    if ft.is_symlink() {
        FileKind::Symlink
    } else if ft.is_dir() {
        FileKind::Dir
    } else if ft.is_file() {
        FileKind::File
    } else {
        FileKind::Other
    }
}

pub(crate) async fn stat(local: &Path, path: &RemotePath) -> Result<Metadata> {
    let meta = tokio::fs::metadata(local)
        .await
        .map_err(|e| Error::from_io(HOST, path, "reading metadata of", e))?;
    Ok(Metadata {
        kind: kind_of(meta.file_type()),
        len: meta.len(),
        mode: meta.mode() & 0o7777,
        modified: Some(meta.mtime()),
    })
}

pub(crate) async fn read_dir(local: &Path, path: &RemotePath) -> Result<Vec<DirEntry>> {
    let mut dir = tokio::fs::read_dir(local)
        .await
        .map_err(|e| Error::from_io(HOST, path, "listing", e))?;
    let mut entries = Vec::new();
    while let Some(entry) = dir
        .next_entry()
        .await
        .map_err(|e| Error::from_io(HOST, path, "listing", e))?
    {
        let meta = match entry.metadata().await {
            Ok(m) => m,
            // Removed between readdir and lstat: it is simply not there any more.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::from_io(HOST, path, "listing", e)),
        };
        entries.push(DirEntry {
            name: entry.file_name().to_string_lossy().into_owned(),
            kind: kind_of(meta.file_type()),
            len: meta.len(),
        });
    }
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(entries)
}

pub(crate) async fn remove(local: &Path, path: &RemotePath, recursive: bool) -> Result<()> {
    let meta = tokio::fs::symlink_metadata(local)
        .await
        .map_err(|e| Error::from_io(HOST, path, "removing", e))?;
    let result = if meta.is_dir() {
        if recursive {
            tokio::fs::remove_dir_all(local).await
        } else {
            tokio::fs::remove_dir(local).await
        }
    } else {
        tokio::fs::remove_file(local).await
    };
    result.map_err(|e| match e.raw_os_error() {
        Some(libc::ENOTEMPTY) => Error::WrongKind {
            host: HOST.into(),
            path: path.clone(),
            message: "directory is not empty (remove it recursively)".into(),
        },
        _ => Error::from_io(HOST, path, "removing", e),
    })
}

/// Follows symlinks from `local` to the file a write must replace (a dangling link's
/// target is created).
async fn write_target(local: &Path) -> std::io::Result<PathBuf> {
    let mut current = local.to_path_buf();
    for _ in 0..40 {
        match tokio::fs::symlink_metadata(&current).await {
            Ok(meta) if meta.file_type().is_symlink() => {
                let target = tokio::fs::read_link(&current).await?;
                current = match current.parent() {
                    Some(parent) if target.is_relative() => parent.join(target),
                    _ => target,
                };
            }
            Ok(_) => return Ok(current),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(current),
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other("too many levels of symbolic links"))
}

/// Refuses to replace `target` (the file a write of `path` would replace) unless we own
/// it and may write it: see the contract of `Runtime::write_file`.
fn check_replaceable(target: &Path, meta: &std::fs::Metadata, path: &RemotePath) -> Result<()> {
    let me = effective_uid();
    let mode = meta.mode() & 0o7777;
    let reason = if meta.uid() != me {
        format!(
            "belongs to another user (uid {}), not to you (uid {me})",
            meta.uid()
        )
    } else if mode & 0o200 == 0 {
        format!("is read-only (mode {mode:04o})")
    } else if !may_write(target) {
        // Owner bits allow it, but an ACL or a read-only mount does not.
        format!("is not writable for you (mode {mode:04o})")
    } else {
        return Ok(());
    };
    let path = match RemotePath::new(target.to_string_lossy()) {
        Ok(target) if target.as_str() != path.as_str() => target,
        _ => path.clone(),
    };
    Err(Error::NotWritable {
        host: HOST.into(),
        path,
        reason,
    })
}

#[allow(unsafe_code)]
fn effective_uid() -> u32 {
    // SAFETY: geteuid has no arguments and cannot fail.
    unsafe { libc::geteuid() }
}

/// `access(W_OK)` with the effective ids (`faccessat(AT_EACCESS)`).
#[allow(unsafe_code)]
fn may_write(path: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c_path) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: c_path is a valid NUL-terminated string that outlives the call.
    unsafe {
        libc::faccessat(
            libc::AT_FDCWD,
            c_path.as_ptr(),
            libc::W_OK,
            libc::AT_EACCESS,
        ) == 0
    }
}

/// Removes the stale cmux temporary files of `dir` (see [`cmux_core::temp`]). Best
/// effort: a failure here never fails the write.
async fn sweep_stale_temps(dir: &Path) {
    let Ok(mut entries) = tokio::fs::read_dir(dir).await else {
        return;
    };
    let now = temp::now_unix();
    while let Ok(Some(entry)) = entries.next_entry().await {
        let name = entry.file_name();
        if !name.to_str().is_some_and(temp::is_temp_name) {
            continue;
        }
        let Ok(meta) = entry.metadata().await else {
            continue;
        };
        if meta.is_file() && temp::is_stale(meta.mtime(), now) {
            tracing::debug!(file = %entry.path().display(), "removing a stale temporary file");
            let _ = tokio::fs::remove_file(entry.path()).await;
        }
    }
}

pub(crate) async fn write_atomic(
    local: &Path,
    path: &RemotePath,
    data: &[u8],
    sweeper: &TempSweeper,
) -> Result<()> {
    let io = |e| Error::from_io(HOST, path, "writing", e);
    let target = write_target(local).await.map_err(io)?;
    let existing_mode = match tokio::fs::metadata(&target).await {
        Ok(meta) if meta.is_dir() => {
            return Err(Error::WrongKind {
                host: HOST.into(),
                path: path.clone(),
                message: "is a directory, not a file".into(),
            })
        }
        Ok(meta) => {
            check_replaceable(&target, &meta, path)?;
            Some(meta.mode() & 0o7777)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(io(e)),
    };
    let (dir, name) = match (target.parent(), target.file_name()) {
        (Some(dir), Some(name)) => (dir.to_path_buf(), name.to_string_lossy().into_owned()),
        _ => return Err(Error::invalid(format!("{path}: not a file path"))),
    };
    if dir.to_str().is_some_and(|d| sweeper.due(d)) {
        sweep_stale_temps(&dir).await;
    }
    // A fresh random name; one that is taken (a leftover) is never touched: another
    // is drawn.
    let mut taken = None;
    let mut opened = None;
    for _ in 0..temp::TEMP_NAME_ATTEMPTS {
        let temp = dir.join(temp::temp_name(&name));
        match tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(existing_mode.unwrap_or(0o644))
            .open(&temp)
            .await
        {
            Ok(file) => {
                opened = Some((temp, file));
                break;
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => taken = Some(temp),
            Err(e) => return Err(io(e)),
        }
    }
    let Some((temp, file)) = opened else {
        let taken = taken.unwrap_or_default();
        return Err(temp::leftover_error(HOST, &taken.to_string_lossy()));
    };
    let result = async {
        let mut file = file;
        file.write_all(data).await?;
        file.flush().await?;
        if let Some(mode) = existing_mode {
            // `mode()` at creation is filtered by the umask; the old mode is restored
            // exactly.
            file.set_permissions(std::fs::Permissions::from_mode(mode))
                .await?;
        }
        drop(file);
        tokio::fs::rename(&temp, &target).await
    }
    .await;
    if let Err(e) = result {
        let _ = tokio::fs::remove_file(&temp).await;
        return Err(io(e));
    }
    Ok(())
}
