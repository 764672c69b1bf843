//! File operations other than writes (see `write`).

use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

use cmux_protocol::{
    Done, ErrorKind, FrameKind, PathReply, ReadDirReply, ReadReply, ReadSpec, StatReply,
    WireDirEntry, WireError, WireKind,
};

use crate::errors::{error, io_error};
use crate::outbox::Outbox;
use crate::window::Window;

/// Bytes per data frame.
pub(crate) const CHUNK: usize = 64 * 1024;

fn kind_of(ft: fs::FileType) -> WireKind {
    if ft.is_symlink() {
        WireKind::Symlink
    } else if ft.is_dir() {
        WireKind::Dir
    } else if ft.is_file() {
        WireKind::File
    } else {
        WireKind::Other
    }
}

pub(crate) fn stat(path: &Path, no_follow: bool) -> Result<StatReply, WireError> {
    let meta = if no_follow {
        fs::symlink_metadata(path)
    } else {
        fs::metadata(path)
    }
    .map_err(|e| io_error("stat", path, &e))?;
    Ok(StatReply {
        kind: kind_of(meta.file_type()),
        len: meta.len(),
        mode: meta.mode() & 0o7777,
        modified: meta.mtime(),
        uid: meta.uid(),
    })
}

pub(crate) fn read_dir(path: &Path) -> Result<ReadDirReply, WireError> {
    let dir = fs::read_dir(path).map_err(|e| io_error("listing", path, &e))?;
    let mut entries = Vec::new();
    let mut non_utf8 = 0;
    for entry in dir {
        let entry = entry.map_err(|e| io_error("listing", path, &e))?;
        let Ok(name) = entry.file_name().into_string() else {
            non_utf8 += 1;
            continue;
        };
        let meta = match entry.metadata() {
            Ok(m) => m,
            // Removed between readdir and lstat: it is simply not there any more.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io_error("listing", &entry.path(), &e)),
        };
        entries.push(WireDirEntry {
            name,
            kind: kind_of(meta.file_type()),
            len: meta.len(),
        });
    }
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(ReadDirReply { entries, non_utf8 })
}

pub(crate) fn mkdir_all(path: &Path) -> Result<Done, WireError> {
    match fs::create_dir_all(path) {
        Ok(()) => Ok(Done {}),
        Err(e) => {
            // create_dir_all reports EEXIST when a file sits where a directory must be.
            if fs::metadata(path).map(|m| !m.is_dir()).unwrap_or(false) {
                return Err(error(
                    ErrorKind::NotADirectory,
                    Some(path),
                    format!("{} exists and is not a directory", path.display()),
                ));
            }
            Err(io_error("creating directory", path, &e))
        }
    }
}

pub(crate) fn remove(path: &Path, recursive: bool) -> Result<Done, WireError> {
    let meta = fs::symlink_metadata(path).map_err(|e| io_error("removing", path, &e))?;
    let result = if !meta.is_dir() {
        fs::remove_file(path)
    } else if recursive {
        fs::remove_dir_all(path)
    } else {
        fs::remove_dir(path)
    };
    result.map(|()| Done {}).map_err(|e| {
        if e.raw_os_error() == Some(libc::ENOTEMPTY) {
            error(
                ErrorKind::DirectoryNotEmpty,
                Some(path),
                format!("{} is a directory that is not empty", path.display()),
            )
        } else {
            io_error("removing", path, &e)
        }
    })
}

pub(crate) fn rename(from: &Path, to: &Path) -> Result<Done, WireError> {
    fs::rename(from, to)
        .map(|()| Done {})
        .map_err(|e| match fs::symlink_metadata(from) {
            Err(_) => io_error("renaming", from, &e),
            Ok(_) => io_error("renaming to", to, &e),
        })
}

pub(crate) fn realpath(path: &Path) -> Result<PathReply, WireError> {
    let real = fs::canonicalize(path).map_err(|e| io_error("resolving", path, &e))?;
    let path = real.into_os_string().into_string().map_err(|p| {
        error(
            ErrorKind::InvalidInput,
            None,
            format!("{} is not valid UTF-8", p.to_string_lossy()),
        )
    })?;
    Ok(PathReply { path })
}

/// Streams a file as [`FrameKind::Out`] frames within `window`.
pub(crate) fn read(
    spec: &ReadSpec,
    id: u32,
    out: &Outbox,
    window: &Window,
) -> Result<ReadReply, WireError> {
    let path = Path::new(&spec.path);
    let mut options = fs::OpenOptions::new();
    options.read(true);
    if spec.only_file_up_to.is_some() {
        // A fifo must be refused, not waited on; on a regular file O_NONBLOCK does
        // nothing.
        options.custom_flags(libc::O_NONBLOCK);
    }
    let mut file = options
        .open(path)
        .map_err(|e| io_error("opening", path, &e))?;
    let meta = file
        .metadata()
        .map_err(|e| io_error("reading metadata of", path, &e))?;
    if let Some(limit) = spec.only_file_up_to {
        let kind = kind_of(meta.file_type());
        if kind != WireKind::File || meta.len() > limit {
            return Ok(ReadReply {
                size: meta.len(),
                sent: 0,
                refused: Some(kind),
            });
        }
    }
    if meta.is_dir() {
        return Err(error(
            ErrorKind::IsADirectory,
            Some(path),
            format!("{} is a directory, not a file", path.display()),
        ));
    }
    if spec.offset > 0 {
        file.seek(SeekFrom::Start(spec.offset))
            .map_err(|e| io_error("seeking in", path, &e))?;
    }
    let mut left = spec.len.unwrap_or(u64::MAX);
    let mut sent = 0u64;
    let mut buf = vec![0u8; CHUNK];
    while left > 0 {
        let want = (CHUNK as u64).min(left);
        let Some(room) = window.take(want) else {
            break;
        };
        let n = loop {
            match file.read(&mut buf[..room as usize]) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io_error("reading", path, &e)),
            }
        };
        if (n as u64) < room {
            window.grant(room - n as u64);
        }
        if n == 0 {
            break;
        }
        out.send_raw(FrameKind::Out, id, &buf[..n]);
        sent += n as u64;
        left -= n as u64;
    }
    Ok(ReadReply {
        size: meta.len(),
        sent,
        refused: None,
    })
}
