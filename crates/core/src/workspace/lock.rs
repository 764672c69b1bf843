//! A per-project lock on this machine, so concurrent cmux processes never run git
//! worktree operations on one repository at the same time.
//!
//! Why: git itself races there. Measured with git 2.47: 50 concurrent
//! `git worktree add` + `git worktree prune` on one repository make most of them fail
//! with "failed to read .git/worktrees/<x>/commondir", and concurrent
//! `git worktree remove` fail with "is not a working tree".

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// An exclusive `flock(2)` on `<dir>/<project-id>.lock`, released on drop (and by the
/// kernel when the process dies, so a killed cmux never leaves a stale lock).
#[derive(Debug)]
pub struct ProjectLock {
    _file: File,
    path: PathBuf,
}

impl ProjectLock {
    /// Waits for the lock of `project_id` in `dir` (created if missing).
    pub async fn acquire(dir: &Path, project_id: &str) -> Result<ProjectLock> {
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
        let task_path = path.clone();
        let joined = tokio::task::spawn_blocking(move || -> std::io::Result<File> {
            std::fs::create_dir_all(&dir)?;
            let file = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&task_path)?;
            lock_exclusive(&file)?;
            Ok(file)
        })
        .await
        .map_err(|e| Error::backend("cmux", format!("lock task failed: {e}")))?;
        let file = joined.map_err(|e| io("locking", e))?;
        tracing::debug!(lock = %path.display(), "project lock acquired");
        Ok(ProjectLock { _file: file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(unix)]
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

#[cfg(not(unix))]
fn lock_exclusive(_file: &File) -> std::io::Result<()> {
    // No flock: callers are serialized by nothing but git's own locks.
    Ok(())
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
