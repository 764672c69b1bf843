//! A per-project lock on this machine, so concurrent cmux processes never run git
//! worktree operations on one repository at the same time.
//!
//! Why: git itself races there. Measured with git 2.47: 50 concurrent
//! `git worktree add` + `git worktree prune` on one repository make most of them fail
//! with "failed to read `.git/worktrees/<x>/commondir`", and concurrent
//! `git worktree remove` fail with "is not a working tree".

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::workspace::progress::{NoProgress, Progress, ProgressEvent};

/// How long a lock may be waited for silently before [`ProjectLock::acquire_reporting`]
/// says who holds it.
pub const QUIET_WAIT: Duration = Duration::from_secs(1);

/// An exclusive `flock(2)` on `<dir>/<project-id>.lock`, released on drop (and by the
/// kernel when the process dies, so a killed cmux never leaves a stale lock).
///
/// The directory is created 0700 and the file 0600: another user who could open the
/// file could hold the lock forever. While held, the file holds the holder's pid (and
/// is emptied on release), so a waiter can say whom it waits for.
#[derive(Debug)]
pub struct ProjectLock {
    file: File,
    path: PathBuf,
}

impl ProjectLock {
    /// Waits for the lock of `project_id` in `dir` (created if missing), silently.
    pub async fn acquire(dir: &Path, project_id: &str) -> Result<ProjectLock> {
        Self::acquire_reporting(dir, project_id, &NoProgress).await
    }

    /// Waits for the lock of `project_id` in `dir` (created if missing). After
    /// `QUIET_WAIT` (a second) of waiting, reports a [`ProgressEvent::Step`] "waiting for the
    /// lock held by pid N…" (or who else may hold it), once.
    pub async fn acquire_reporting(
        dir: &Path,
        project_id: &str,
        progress: &dyn Progress,
    ) -> Result<ProjectLock> {
        let dir = dir.to_path_buf();
        let path = dir.join(format!("{project_id}.lock"));
        let io = {
            let path = path.clone();
            move |what: &str, e: std::io::Error| Error::Io {
                host: "local".into(),
                context: format!("{what} lock file {}", path.display()),
                source: e,
            }
        };
        let join_error =
            |e: tokio::task::JoinError| Error::backend("cmux", format!("lock task failed: {e}"));
        let task_path = path.clone();
        let opened = tokio::task::spawn_blocking(move || -> std::io::Result<(File, bool)> {
            use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&dir)?;
            let file = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .read(true)
                .write(true)
                .mode(0o600)
                .open(&task_path)?;
            let locked = try_lock_exclusive(&file)?;
            Ok((file, locked))
        })
        .await
        .map_err(join_error)?;
        let (file, locked) = opened.map_err(|e| io("opening", e))?;
        let file = if locked {
            file
        } else {
            let mut waiting = tokio::task::spawn_blocking(move || -> std::io::Result<File> {
                lock_exclusive(&file)?;
                Ok(file)
            });
            let file = tokio::select! {
                joined = &mut waiting => joined,
                () = tokio::time::sleep(QUIET_WAIT) => {
                    progress.event(ProgressEvent::Step(&waiting_note(&path)));
                    waiting.await
                }
            };
            file.map_err(join_error)?.map_err(|e| io("locking", e))?
        };
        write_holder(&file).map_err(|e| io("writing the holder's pid into", e))?;
        tracing::debug!(lock = %path.display(), "project lock acquired");
        Ok(ProjectLock { file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ProjectLock {
    fn drop(&mut self) {
        // Still held here: nobody reads a pid that is no longer the holder's.
        let _ = self.file.set_len(0);
    }
}

/// Writes our pid into the (held) lock file.
fn write_holder(file: &File) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    file.set_len(0)?;
    file.write_all_at(format!("{}\n", std::process::id()).as_bytes(), 0)
}

/// What a waiter tells the user: who holds the lock at `path`, as far as it can know.
fn waiting_note(path: &Path) -> String {
    let shown = path.display();
    let holder = std::fs::read_to_string(path)
        .ok()
        .and_then(|text| text.trim().parse::<u32>().ok());
    match holder {
        Some(pid) if process_exists(pid) => format!(
            "waiting for the lock held by pid {pid}… ({shown}: another cmux is changing this project's workspaces)"
        ),
        Some(pid) => format!(
            "waiting for the lock {shown}… (its last holder, pid {pid}, has exited; `fuser {shown}` shows who holds it now)"
        ),
        None => format!(
            "waiting for the lock {shown}… (held by a process that is not a cmux: `fuser {shown}` shows which)"
        ),
    }
}

#[allow(unsafe_code)]
fn process_exists(pid: u32) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    // SAFETY: kill with signal 0 only checks that the process exists; no memory.
    let rc = unsafe { libc::kill(pid, 0) };
    // EPERM: it exists, as another user's process.
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Takes the lock if it is free; false when another holds it.
#[allow(unsafe_code)]
fn try_lock_exclusive(file: &File) -> std::io::Result<bool> {
    use std::os::unix::io::AsRawFd;
    loop {
        // SAFETY: flock takes a file descriptor we own for the duration of the call.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc == 0 {
            return Ok(true);
        }
        let err = std::io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EWOULDBLOCK) => return Ok(false),
            Some(libc::EINTR) => continue,
            _ => return Err(err),
        }
    }
}

#[allow(unsafe_code)]
fn lock_exclusive(file: &File) -> std::io::Result<()> {
    use std::os::unix::io::AsRawFd;
    loop {
        // SAFETY: flock takes a file descriptor we own for the duration of the call.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
        if rc == 0 {
            return Ok(());
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn lock_excludes_other_holders() {
        let dir = std::env::temp_dir().join(format!("cmux-lock-test-{}", std::process::id()));
        let inside = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (dir, inside) = (dir.clone(), inside.clone());
            tasks.push(tokio::spawn(async move {
                let _lock = ProjectLock::acquire(&dir, "p-1").await.expect("lock");
                assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0);
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                inside.fetch_sub(1, Ordering::SeqCst);
            }));
        }
        for t in tasks {
            t.await.expect("task");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
