//! `$CMUX_HOME` (default `~/.cmux`): the registry, local worktrees and lock files.
//!
//! Everything here is private to the user: directories 0700, files 0600. The registry
//! names projects and hosts, and a lock file another user can open is a lock they can
//! hold forever. [`CmuxHome::ensure_private`] runs at every start and tightens what an
//! older cmux (or a umask) left looser.

use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context, Result};

/// The cmux state directory and the paths inside it.
#[derive(Clone, Debug)]
pub struct CmuxHome {
    root: PathBuf,
}

impl CmuxHome {
    /// `$CMUX_HOME` (made absolute), else `$HOME/.cmux`.
    pub fn from_env() -> Result<CmuxHome> {
        let root = match std::env::var_os("CMUX_HOME").filter(|v| !v.is_empty()) {
            Some(dir) => PathBuf::from(dir),
            None => {
                let home = std::env::var_os("HOME")
                    .filter(|v| !v.is_empty())
                    .ok_or_else(|| {
                        anyhow!("neither CMUX_HOME nor HOME is set: set CMUX_HOME to a directory cmux may write to")
                    })?;
                PathBuf::from(home).join(".cmux")
            }
        };
        let root = if root.is_absolute() {
            root
        } else {
            std::env::current_dir()
                .context("reading the current directory")?
                .join(root)
        };
        Ok(CmuxHome { root })
    }

    /// The directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// One JSON file per workspace.
    pub fn workspaces_dir(&self) -> PathBuf {
        self.root.join("workspaces")
    }

    /// Per-project lock files.
    pub fn locks_dir(&self) -> PathBuf {
        self.root.join("locks")
    }

    /// Local worktrees, `src/<project-id>/<name>`.
    pub fn src_dir(&self) -> PathBuf {
        self.root.join("src")
    }

    /// Creates the directory (0700) when missing and makes it and everything below it
    /// private: directories 0700, other files 0600. Below `src/`, only `src/` and its
    /// project directories are tightened: the worktrees inside are the user's
    /// checkouts, whose modes are git's business (and are unreachable for others once
    /// their parents are 0700). Symlinks are never followed.
    pub fn ensure_private(&self) -> Result<()> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.root)
            .with_context(|| {
                format!(
                    "creating {} (set CMUX_HOME to a directory you may write to)",
                    self.root.display()
                )
            })?;
        // The root itself may be a symlink the user chose: follow it, only here.
        let meta = std::fs::metadata(&self.root)
            .with_context(|| format!("reading {}", self.root.display()))?;
        tighten(&self.root, &meta)?;
        // Not into a project directory of src/: its entries are worktrees.
        let src = self.src_dir();
        tighten_entries(&self.root, &|dir| dir.parent() != Some(src.as_path()))
    }
}

/// Tightens every entry of `dir`, and the entries below each directory for which
/// `descend` says so. Symlinks are skipped, never followed.
fn tighten_entries(dir: &Path, descend: &dyn Fn(&Path) -> bool) -> Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("listing {}", dir.display())),
    };
    for entry in entries {
        let entry = entry.with_context(|| format!("listing {}", dir.display()))?;
        let path = entry.path();
        let meta = match std::fs::symlink_metadata(&path) {
            Ok(meta) => meta,
            // Removed since the listing (another cmux): nothing to tighten.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        if meta.file_type().is_symlink() {
            continue;
        }
        tighten(&path, &meta)?;
        if meta.is_dir() && descend(&path) {
            tighten_entries(&path, descend)?;
        }
    }
    Ok(())
}

/// chmod 0700 (directory) or 0600 (anything else) when group or others have any bit.
fn tighten(path: &Path, meta: &std::fs::Metadata) -> Result<()> {
    if meta.mode() & 0o077 == 0 {
        return Ok(());
    }
    let mode = if meta.is_dir() { 0o700 } else { 0o600 };
    tracing::debug!(path = %path.display(), old = format!("{:o}", meta.mode() & 0o7777), new = format!("{mode:o}"), "tightening the mode");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).with_context(|| {
        format!(
            "making {} private (mode {mode:o}); it should belong to you (uid {}): fix its owner, or set CMUX_HOME to a directory of your own",
            path.display(),
            meta.uid()
        )
    })
}
