//! Atomic writes.
//!
//! 1. The target is resolved here, on the host: a symlink's target is read and, when
//!    relative, joined to the link's *real* directory (so `d/f` where `d -> deep/sub`
//!    and `f -> ../g` writes `deep/g`, as the kernel would resolve it).
//! 2. An existing target must be a regular file the user can write and owns, unless
//!    the request says `force` (replacing it would silently take another user's file
//!    or defeat a read-only mode). Its mode is kept; a new file gets 0644 minus umask.
//! 3. A temporary file `.<name>.cmux-tmp.<random>` is created beside the target with
//!    `O_EXCL|O_NOFOLLOW` and mode 0600, set to the final mode before any byte is
//!    written, filled, fsynced and renamed over the target. Any failure removes it.
//! 4. Temporary files a killed writer left are swept by the rule of
//!    `cmux_core::temp`: untouched for 10 minutes, at most one sweep per directory per
//!    10 minutes.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::mpsc::Receiver;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use cmux_protocol::{ErrorKind, WireError, WriteReply, WriteSpec};

use crate::errors::{error, io_error};
use crate::sys;

/// What the connection's reader passes to a write in progress.
#[derive(Debug)]
pub(crate) enum Chunk {
    /// More content.
    Data(Vec<u8>),
    /// The content is complete.
    End,
}

/// Marker between the target's name and the random suffix (the `cmux_core::temp` rule).
const TEMP_MARKER: &str = cmux_engine::temp_names::TEMP_MARKER;
/// Age after which a temporary file belongs to a dead writer.
const STALE_AGE: Duration = Duration::from_secs(600);

/// Runs a write whose content arrives on `chunks`.
pub(crate) fn write(
    spec: &WriteSpec,
    chunks: &Receiver<Chunk>,
    umask: u32,
) -> Result<WriteReply, WireError> {
    replace(Path::new(&spec.path), spec.force, umask, |file, target| {
        let mut len = 0u64;
        loop {
            match chunks.recv() {
                Ok(Chunk::Data(bytes)) => {
                    file.write_all(&bytes)
                        .map_err(|e| io_error("writing", target, &e))?;
                    len += bytes.len() as u64;
                }
                Ok(Chunk::End) => return Ok(len),
                Err(_) => {
                    return Err(error(
                        ErrorKind::InvalidInput,
                        Some(target),
                        "the write was abandoned before its content was complete; the file is unchanged",
                    ))
                }
            }
        }
    })
}

/// Replaces `path` with `bytes` (an edit's result), by the same rules as [`write()`].
pub(crate) fn write_bytes(
    path: &Path,
    force: bool,
    bytes: &[u8],
    umask: u32,
) -> Result<WriteReply, WireError> {
    replace(path, force, umask, |file, target| {
        file.write_all(bytes)
            .map_err(|e| io_error("writing", target, &e))?;
        Ok(bytes.len() as u64)
    })
}

/// The atomic replacement of `path`; `fill` writes the content into the temporary file
/// and returns its length.
fn replace(
    path: &Path,
    force: bool,
    umask: u32,
    fill: impl FnOnce(&mut fs::File, &Path) -> Result<u64, WireError>,
) -> Result<WriteReply, WireError> {
    let target = resolve_target(path)?;
    let mode = match fs::symlink_metadata(&target) {
        Ok(meta) => {
            if meta.is_dir() {
                return Err(error(
                    ErrorKind::IsADirectory,
                    Some(&target),
                    format!("{} is a directory, not a file", target.display()),
                ));
            }
            if !meta.is_file() {
                return Err(error(
                    ErrorKind::InvalidInput,
                    Some(&target),
                    format!(
                        "{} is not a regular file (a device, fifo or socket): it cannot be replaced",
                        target.display()
                    ),
                ));
            }
            if !force {
                check_writable(&target, &meta)?;
            }
            meta.mode() & 0o7777
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0o644 & !umask,
        Err(e) => return Err(io_error("checking", &target, &e)),
    };
    let dir = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("/"),
    };
    let name = target
        .file_name()
        .map(|n| n.to_os_string())
        .ok_or_else(|| {
            error(
                ErrorKind::InvalidInput,
                Some(&target),
                format!("{} names no file", target.display()),
            )
        })?;
    sweep_once(&dir);
    let (temp_path, mut file) = create_temp(&dir, &name, mode)?;
    let result = fill(&mut file, &target).and_then(|len| {
        file.sync_all()
            .map_err(|e| io_error("syncing", &target, &e))?;
        drop(file);
        fs::rename(&temp_path, &target).map_err(|e| io_error("replacing", &target, &e))?;
        Ok(len)
    });
    if result.is_err() {
        let _ = fs::remove_file(&temp_path);
    }
    let len = result?;
    Ok(WriteReply {
        path: target.to_string_lossy().into_owned(),
        mode,
        len,
    })
}

fn check_writable(target: &Path, meta: &fs::Metadata) -> Result<(), WireError> {
    // The order and words of cmux_core::Error::NotWritable's contract.
    let mode = meta.mode() & 0o7777;
    let me = sys::uid();
    let why = if meta.uid() != me {
        Some(format!(
            "belongs to another user (uid {}), not to you (uid {me})",
            meta.uid()
        ))
    } else if mode & 0o200 == 0 {
        Some(format!("is read-only (mode {mode:04o})"))
    } else if !sys::can_write(target) {
        Some(format!("is not writable for you (mode {mode:04o})"))
    } else {
        None
    };
    match why {
        None => Ok(()),
        Some(why) => Err(error(ErrorKind::NotWritable, Some(target), why)),
    }
}

/// The file a write of `path` must replace: symlinks followed, relative link targets
/// joined to the real directory of the link.
fn resolve_target(path: &Path) -> Result<PathBuf, WireError> {
    let mut current = path.to_path_buf();
    for _ in 0..40 {
        match fs::symlink_metadata(&current) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let link =
                    fs::read_link(&current).map_err(|e| io_error("reading link", &current, &e))?;
                current = if link.is_absolute() {
                    link
                } else {
                    let parent = current.parent().unwrap_or(Path::new("/"));
                    let real =
                        fs::canonicalize(parent).map_err(|e| io_error("resolving", parent, &e))?;
                    real.join(link)
                };
            }
            _ => return Ok(current),
        }
    }
    Err(error(
        ErrorKind::InvalidInput,
        Some(path),
        format!("{}: too many levels of symbolic links", path.display()),
    ))
}

fn create_temp(dir: &Path, name: &OsString, mode: u32) -> Result<(PathBuf, fs::File), WireError> {
    let mut last = None;
    for _ in 0..8 {
        // The target's name cut to 200 bytes: the temporary name must stay within the
        // usual 255-byte limit (the `cmux_core::temp` rule).
        let part = &name.as_bytes()[..name.len().min(200)];
        let mut temp_name = OsString::from(".");
        temp_name.push(std::ffi::OsStr::from_bytes(part));
        temp_name.push(TEMP_MARKER);
        temp_name.push(sys::hex(&sys::random_bytes::<8>()));
        let temp = dir.join(&temp_name);
        match fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&temp)
        {
            Ok(file) => {
                // The final mode before the first byte: never wider than it will be.
                if let Err(e) = file.set_permissions(fs::Permissions::from_mode(mode)) {
                    let _ = fs::remove_file(&temp);
                    return Err(io_error("setting the mode of", &temp, &e));
                }
                return Ok((temp, file));
            }
            // 64 random bits colliding means a leftover of our own: try another name.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(io_error("creating a temporary file in", dir, &e)),
        }
    }
    let e = last.unwrap_or_else(|| std::io::ErrorKind::AlreadyExists.into());
    Err(io_error("creating a temporary file in", dir, &e))
}

/// Removes stale temporary files in `dir`, at most once per directory per 10 minutes.
fn sweep_once(dir: &Path) {
    static SWEPT: OnceLock<Mutex<HashMap<PathBuf, Instant>>> = OnceLock::new();
    {
        let mut swept = SWEPT
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if swept.get(dir).is_some_and(|at| at.elapsed() < STALE_AGE) {
            return;
        }
        swept.retain(|_, at| at.elapsed() < STALE_AGE);
        swept.insert(dir.to_path_buf(), Instant::now());
    }
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let now = SystemTime::now();
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !name
            .to_str()
            .is_some_and(cmux_engine::temp_names::is_temp_name)
        {
            continue;
        }
        let Ok(meta) = entry.metadata() else {
            continue;
        };
        let stale = meta
            .modified()
            .ok()
            .and_then(|m| now.duration_since(m).ok())
            .is_some_and(|age| age > STALE_AGE);
        if meta.is_file() && stale {
            let _ = fs::remove_file(entry.path());
        }
    }
}
