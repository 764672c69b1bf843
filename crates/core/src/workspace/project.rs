//! The project: a git repository on this machine that workspaces are made from.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::workspace::name::project_id;

/// Where a new workspace starts: a revision of the project resolved once, locally.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StartPoint {
    /// The revision as named: the user's `--from` text, else the project's current
    /// branch, else its HEAD commit (detached).
    pub rev: String,
    /// The commit it names (40 or 64 hex digits).
    pub commit: String,
    /// The local branch it names (`main` for `main` or `refs/heads/main`), `None` for
    /// a tag, a commit or a remote-tracking branch: the workspace's *base branch*.
    pub branch: Option<String>,
}

/// The project's git identity (`user.name` and `user.email` as `git config` reads
/// them in the project: local, global and system configuration).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GitIdentity {
    /// `user.name`, when set.
    pub name: Option<String>,
    /// `user.email`, when set.
    pub email: Option<String>,
}

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
    /// Resolves `from` (or, when `None`, the current branch or HEAD, as
    /// [`Project::current_head`] names it) to a commit and, when it names a local
    /// branch, that branch. One local `git rev-parse`. An unknown revision is a
    /// one-line error naming the project.
    pub async fn start_point(&self, from: Option<&str>) -> Result<StartPoint> {
        // No `--from`: HEAD, named below after its branch (or its commit, detached).
        let rev = from.unwrap_or("HEAD").to_owned();
        let not_found = || {
            Error::invalid(format!(
                "revision {rev:?} not found in project {}: give a branch, tag or commit of the project",
                self.path.display()
            ))
        };
        if rev.is_empty() || rev.starts_with('-') {
            return Err(not_found());
        }
        // The commit, then (for a ref) its full name, then the `--` that ends the
        // list: `--symbolic-full-name` prints nothing for a bare commit.
        let out = local_git(
            &self.path,
            &[
                "rev-parse",
                "-q",
                &format!("{rev}^{{commit}}"),
                "--symbolic-full-name",
                &rev,
                "--",
            ],
        )
        .await?
        .ok_or_else(not_found)?;
        let mut lines = out.lines().map(str::trim).filter(|l| *l != "--");
        let commit = lines
            .next()
            .filter(|c| c.len() >= 40 && c.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(not_found)?
            .to_owned();
        let branch = lines
            .next()
            .and_then(|full| full.strip_prefix("refs/heads/"))
            .filter(|b| !b.is_empty())
            .map(str::to_owned);
        let rev = match (from, &branch) {
            (Some(_), _) => rev,
            (None, Some(branch)) => branch.clone(),
            (None, None) => commit.clone(),
        };
        Ok(StartPoint {
            rev,
            commit,
            branch,
        })
    }

    /// The project's `user.name` and `user.email` (one local `git config`).
    pub async fn identity(&self) -> Result<GitIdentity> {
        let Some(out) = local_git(
            &self.path,
            &["config", "-z", "--get-regexp", r"^user\.(name|email)$"],
        )
        .await?
        else {
            // git exits 1 when neither is set.
            return Ok(GitIdentity::default());
        };
        let mut identity = GitIdentity::default();
        // `-z`: `key\nvalue\0` per entry; the last of each key wins, as for git.
        for entry in out.split('\0') {
            let Some((key, value)) = entry.split_once('\n') else {
                continue;
            };
            let value = Some(value.to_owned()).filter(|v| !v.trim().is_empty());
            match key {
                "user.name" => identity.name = value,
                "user.email" => identity.email = value,
                _ => {}
            }
        }
        Ok(identity)
    }

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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn git(dir: &Path, args: &[&str]) -> String {
        let out = std::process::Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .output()
            .expect("git runs");
        assert!(out.status.success(), "git {args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    #[tokio::test]
    async fn start_points_name_the_commit_and_the_base_branch_if_any() {
        let dir = tempfile::tempdir().expect("temp");
        let p = dir.path();
        git(p, &["init", "-q", "-b", "main"]);
        git(
            p,
            &[
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@t.invalid",
                "commit",
                "-q",
                "--allow-empty",
                "-m",
                "one",
            ],
        );
        git(p, &["tag", "v1"]);
        git(p, &["branch", "feat/x"]);
        let head = git(p, &["rev-parse", "HEAD"]);
        let project = Project::at(p.to_path_buf()).expect("project");
        let at = |rev: Option<&str>| {
            let project = project.clone();
            let rev = rev.map(str::to_owned);
            async move { project.start_point(rev.as_deref()).await }
        };
        let current = at(None).await.expect("current");
        assert_eq!(
            (current.rev.as_str(), current.branch.as_deref()),
            ("main", Some("main"))
        );
        assert_eq!(current.commit, head);
        let feat = at(Some("feat/x")).await.expect("branch");
        assert_eq!(feat.branch.as_deref(), Some("feat/x"));
        let full = at(Some("refs/heads/feat/x")).await.expect("full name");
        assert_eq!(full.branch.as_deref(), Some("feat/x"));
        for not_a_branch in ["v1", head.as_str(), &head[..8]] {
            let sp = at(Some(not_a_branch)).await.expect("resolves");
            assert_eq!((sp.commit.as_str(), sp.branch), (head.as_str(), None));
        }
        let err = at(Some("nope")).await.expect_err("unknown").to_string();
        assert!(err.contains("\"nope\" not found in project"), "{err}");
        git(p, &["checkout", "-q", "--detach"]);
        let detached = at(None).await.expect("detached");
        assert_eq!(
            (detached.rev.as_str(), detached.branch),
            (head.as_str(), None)
        );
    }

    #[tokio::test]
    async fn identity_is_what_git_config_says_the_projects_own_first() {
        let dir = tempfile::tempdir().expect("temp");
        let p = dir.path();
        git(p, &["init", "-q"]);
        git(p, &["config", "user.name", "A Person"]);
        git(p, &["config", "user.email", "a@person.invalid"]);
        // Read as cmux reads it: with whatever global configuration the user has,
        // which the project's own overrides.
        let project = Project::at(p.to_path_buf()).expect("project");
        let identity = project.identity().await.expect("read");
        assert_eq!(identity.name.as_deref(), Some("A Person"));
        assert_eq!(identity.email.as_deref(), Some("a@person.invalid"));
    }
}
