//! The project: a git repository on this machine that workspaces are made from.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::workspace::name::project_id;

/// A project: a local git repository (its top-level directory).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Project {
    path: PathBuf,
    id: String,
}

impl Project {
    /// Opens the git repository containing `dir` (which may be a subdirectory of it):
    /// checks it exists, is a git work tree and has at least one commit. Errors are one
    /// line and say what to do.
    pub async fn open(dir: &Path) -> Result<Project> {
        let shown = dir.display();
        let meta = match tokio::fs::metadata(dir).await {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::invalid(format!(
                    "project directory {shown} does not exist: give the path of a git repository"
                )))
            }
            Err(e) => {
                return Err(Error::Io {
                    host: "local".into(),
                    context: format!("reading project directory {shown}"),
                    source: e,
                })
            }
        };
        if !meta.is_dir() {
            return Err(Error::invalid(format!(
                "project {shown} is not a directory: give the path of a git repository"
            )));
        }
        let top = local_git(dir, &["rev-parse", "--show-toplevel"])
            .await?
            .ok_or_else(|| {
                Error::invalid(format!(
                    "{shown} is not a git repository: run `git init` there and commit, or use a git repository as the project"
                ))
            })?;
        let project = Project::at(PathBuf::from(top.trim_end_matches('\n')))?;
        if local_git(
            &project.path,
            &["rev-parse", "-q", "--verify", "HEAD^{commit}"],
        )
        .await?
        .is_none()
        {
            return Err(Error::invalid(format!(
                "project {} has no commit yet: commit something first (workspaces start from a commit)",
                project.path.display()
            )));
        }
        Ok(project)
    }

    /// A project at `path` as recorded earlier, without checking it (it may be gone).
    /// `path` must be absolute and valid UTF-8.
    pub fn at(path: PathBuf) -> Result<Project> {
        let text = path.to_str().ok_or_else(|| {
            Error::invalid(format!(
                "project path {} is not valid UTF-8: move the project to a UTF-8 path",
                path.display()
            ))
        })?;
        if !path.is_absolute() {
            return Err(Error::invalid(format!(
                "project path {text:?} is not absolute"
            )));
        }
        let id = project_id(text);
        Ok(Project { path, id })
    }

    /// The repository's top-level directory on this machine.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The path as a string (checked UTF-8 at construction).
    pub fn path_str(&self) -> &str {
        self.path.to_str().unwrap_or_default()
    }

    /// `<sanitized dir name>-<8 hex digits of its path's FNV-1a hash>`.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The project's current branch (`main`), or its HEAD commit when detached: the
    /// default base of a new workspace.
    pub async fn current_head(&self) -> Result<String> {
        if let Some(branch) = local_git(&self.path, &["symbolic-ref", "-q", "--short", "HEAD"])
            .await?
            .filter(|b| !b.trim().is_empty())
        {
            return Ok(branch.trim().to_owned());
        }
        local_git(
            &self.path,
            &["rev-parse", "-q", "--verify", "HEAD^{commit}"],
        )
        .await?
        .map(|c| c.trim().to_owned())
        .ok_or_else(|| {
            Error::invalid(format!(
                "project {} has no commit yet: commit something first",
                self.path.display()
            ))
        })
    }
}

impl Project {
    /// True when tracked files of the project have uncommitted changes (they are not
    /// carried into a new workspace, which starts from a commit).
    pub async fn has_uncommitted_changes(&self) -> Result<bool> {
        Ok(local_git(
            &self.path,
            &["status", "--porcelain", "--untracked-files=no"],
        )
        .await?
        .is_some_and(|s| !s.trim().is_empty()))
    }
}

/// Runs `git -C dir args...` on this machine: `Some(stdout)` on success, `None` when
/// git exits non-zero.
pub(crate) async fn local_git(dir: &Path, args: &[&str]) -> Result<Option<String>> {
    let out = tokio::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .map_err(|e| Error::Io {
            host: "local".into(),
            context: "running git (is git installed and on PATH?)".into(),
            source: e,
        })?;
    Ok(out
        .status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned()))
}
