//! `$CMUX_HOME` (default `~/.cmux`): the registry, local worktrees and lock files.

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
}
