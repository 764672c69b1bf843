//! Moving a local branch of the project to a commit fetched from a workspace,
//! fast-forward only: the local half of `pull`, the same for every backend.
//!
//! git refuses to fetch into a branch that a working tree has checked out, so a branch
//! checked out in the project (or in one of its local worktrees) is fast-forwarded by
//! `git merge --ff-only` *in that working tree*, which moves the files with the branch
//! and refuses when local changes would be overwritten. Any other branch is updated by
//! a fetch from the project itself, which keeps git's own refusals (not a fast-forward,
//! a branch being rebased or bisected).

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::workspace::project::Project;

/// The project's ref holding the last fetched state of workspace `name`'s branch:
/// `refs/remotes/cmux/<name>`, so `git log cmux/<name>` and `git merge cmux/<name>`
/// work in the project, as for any remote-tracking branch.
pub fn tracking_ref(name: &str) -> String {
    format!("refs/remotes/cmux/{name}")
}

/// What happened to the project's branch.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FastForward {
    /// The branch did not exist: created at the commit.
    Created,
    /// Moved forward from `from`; when it is checked out, `worktree` is the working
    /// tree whose files moved with it.
    Moved {
        /// The commit it was at.
        from: String,
        /// The working tree that has it checked out, if any.
        worktree: Option<PathBuf>,
    },
    /// Already at the commit.
    UpToDate,
    /// Already contains the commit, and has more: nothing to do.
    Ahead,
}

/// Runs `git -C dir args...` locally; `Ok(output)` whatever its exit status.
async fn git(dir: &Path, args: &[&str]) -> Result<std::process::Output> {
    tokio::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .map_err(|e| Error::Io {
            host: "local".into(),
            context: "running git (is git installed and on PATH?)".into(),
            source: e,
        })
}

fn failed(what: &str, out: &std::process::Output) -> Error {
    Error::CommandFailed {
        host: "local".into(),
        command: what.to_owned(),
        code: out.status.code().unwrap_or(-1),
        stderr: crate::runtime::tail(&String::from_utf8_lossy(&out.stderr), 2000),
    }
}

/// `git merge-base --is-ancestor a b`: exit 0 yes, 1 no, anything else an error.
async fn is_ancestor(dir: &Path, a: &str, b: &str) -> Result<bool> {
    let out = git(dir, &["merge-base", "--is-ancestor", a, b]).await?;
    match out.status.code() {
        Some(0) => Ok(true),
        Some(1) => Ok(false),
        _ => Err(failed("git merge-base", &out)),
    }
}

/// The working tree that has `refs/heads/<branch>` checked out, if any
/// (`git worktree list --porcelain -z`: NUL-separated, so no path can fake a line).
async fn checked_out_at(dir: &Path, branch: &str) -> Result<Option<PathBuf>> {
    let out = git(dir, &["worktree", "list", "--porcelain", "-z"]).await?;
    if !out.status.success() {
        return Err(failed("git worktree list", &out));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let wanted = format!("branch refs/heads/{branch}");
    let mut current: Option<&str> = None;
    for field in text.split('\0') {
        if let Some(path) = field.strip_prefix("worktree ") {
            current = Some(path);
        } else if field == wanted {
            return Ok(current.map(PathBuf::from));
        }
    }
    Ok(None)
}

/// Moves the project's branch `branch` to `commit`, which the caller fetched as
/// `fetched_ref` from workspace `workspace`: creates it, fast-forwards it (with its
/// working tree when checked out), or leaves it when it already has the commit.
/// Refuses, changing nothing, when the two have diverged, saying how to merge.
pub(crate) async fn fast_forward(
    project: &Project,
    workspace: &str,
    branch: &str,
    fetched_ref: &str,
    commit: &str,
) -> Result<FastForward> {
    let dir = project.path();
    let shown = dir.display();
    let local_ref = format!("refs/heads/{branch}");
    let valid = git(dir, &["check-ref-format", &local_ref]).await?;
    if branch.starts_with('-') || !valid.status.success() {
        return Err(Error::invalid(format!(
            "{branch:?} is not a valid branch name: give another one"
        )));
    }
    let current = git(
        dir,
        &[
            "rev-parse",
            "-q",
            "--verify",
            &format!("{local_ref}^{{commit}}"),
        ],
    )
    .await?;
    let old = String::from_utf8_lossy(&current.stdout).trim().to_owned();
    let short_ref = fetched_ref.trim_start_matches("refs/remotes/");
    if current.status.success() && !old.is_empty() {
        if old == commit {
            return Ok(FastForward::UpToDate);
        }
        if !is_ancestor(dir, &old, commit).await? {
            if is_ancestor(dir, commit, &old).await? {
                return Ok(FastForward::Ahead);
            }
            let counts = git(
                dir,
                &[
                    "rev-list",
                    "--left-right",
                    "--count",
                    &format!("{old}...{commit}"),
                ],
            )
            .await?;
            let counts = String::from_utf8_lossy(&counts.stdout);
            let mut numbers = counts.split_whitespace();
            let (ours, theirs) = (
                numbers.next().unwrap_or("?").to_owned(),
                numbers.next().unwrap_or("?").to_owned(),
            );
            return Err(Error::invalid(format!(
                "branch {branch} of project {shown} and workspace {workspace} have diverged \
                 ({ours} commits only in the project, {theirs} only in the workspace); nothing \
                 was changed. The workspace's branch is fetched as {short_ref}: merge it with \
                 `git -C {shown} merge {short_ref}` (with {branch} checked out), or bring it \
                 home as another branch with `cmux pull {workspace} --into {workspace}-pulled`"
            )));
        }
        if let Some(worktree) = checked_out_at(dir, branch).await? {
            let merged = git(&worktree, &["merge", "--ff-only", "-q", commit]).await?;
            if !merged.status.success() {
                let why = crate::runtime::tail(&String::from_utf8_lossy(&merged.stderr), 1000);
                return Err(Error::invalid(format!(
                    "branch {branch} is checked out in {} and git refused to fast-forward its \
                     working tree ({why:?}); nothing was changed. The workspace's branch is \
                     fetched as {short_ref}: commit or stash your changes there, then run \
                     `git -C {} merge --ff-only {short_ref}`",
                    worktree.display(),
                    worktree.display(),
                )));
            }
            return Ok(FastForward::Moved {
                from: old,
                worktree: Some(worktree),
            });
        }
    } else if let Some(worktree) = checked_out_at(dir, branch).await? {
        // An unborn branch checked out (a fresh `git init`): nothing to lose, but git
        // will not fetch into it; say how to get there.
        return Err(Error::invalid(format!(
            "branch {branch} is checked out in {} but has no commit yet; nothing was \
             changed. The workspace's branch is fetched as {short_ref}: run \
             `git -C {} reset --hard {short_ref}`, or pull into another branch with \
             `cmux pull {workspace} --into {workspace}-pulled`",
            worktree.display(),
            worktree.display()
        )));
    }
    // Not checked out: a fetch from the project itself, without `+`, so git checks
    // the fast-forward again and refuses a branch being rebased or bisected.
    let refspec = format!("{fetched_ref}:{local_ref}");
    let out = git(
        dir,
        &[
            "fetch",
            "-q",
            "--no-tags",
            "--no-recurse-submodules",
            ".",
            &refspec,
        ],
    )
    .await?;
    if !out.status.success() {
        return Err(failed(&format!("git fetch . {refspec}"), &out));
    }
    if old.is_empty() {
        Ok(FastForward::Created)
    } else {
        Ok(FastForward::Moved {
            from: old,
            worktree: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn git_ok(dir: &Path, args: &[&str]) -> String {
        let out = std::process::Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(["-c", "user.name=t", "-c", "user.email=t@t.invalid"])
            .args(args)
            .output()
            .expect("git runs");
        assert!(out.status.success(), "git {args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// A project on `main` with one commit, and a commit `ahead` of it kept only as
    /// the tracking ref of workspace `w` (as a fetch from a host leaves it).
    fn project() -> (tempfile::TempDir, Project, String, String) {
        let dir = tempfile::tempdir().expect("temp");
        let p = dir.path();
        git_ok(p, &["init", "-q", "-b", "main"]);
        std::fs::write(p.join("a.txt"), "a\n").expect("write");
        git_ok(p, &["add", "-A"]);
        git_ok(p, &["commit", "-qm", "first"]);
        let first = git_ok(p, &["rev-parse", "HEAD"]);
        std::fs::write(p.join("b.txt"), "b\n").expect("write");
        git_ok(p, &["add", "-A"]);
        git_ok(p, &["commit", "-qm", "agent work"]);
        let ahead = git_ok(p, &["rev-parse", "HEAD"]);
        git_ok(p, &["update-ref", &tracking_ref("w"), &ahead]);
        git_ok(p, &["reset", "-q", "--hard", &first]);
        let project = Project::at(p.to_path_buf()).expect("project");
        (dir, project, first, ahead)
    }

    #[tokio::test]
    async fn creates_a_missing_branch_and_fast_forwards_one_not_checked_out() {
        let (dir, project, first, ahead) = project();
        let r = fast_forward(&project, "w", "w", &tracking_ref("w"), &ahead)
            .await
            .expect("created");
        assert_eq!(r, FastForward::Created);
        assert_eq!(git_ok(dir.path(), &["rev-parse", "refs/heads/w"]), ahead);
        git_ok(dir.path(), &["branch", "-f", "old", &first]);
        let r = fast_forward(&project, "w", "old", &tracking_ref("w"), &ahead)
            .await
            .expect("moved");
        assert_eq!(
            r,
            FastForward::Moved {
                from: first,
                worktree: None
            }
        );
        let r = fast_forward(&project, "w", "old", &tracking_ref("w"), &ahead)
            .await
            .expect("again");
        assert_eq!(r, FastForward::UpToDate);
    }

    #[tokio::test]
    async fn a_checked_out_branch_moves_with_its_working_tree() {
        let (dir, project, first, ahead) = project();
        let r = fast_forward(&project, "w", "main", &tracking_ref("w"), &ahead)
            .await
            .expect("moved");
        let top = std::fs::canonicalize(dir.path()).expect("canonical");
        match r {
            FastForward::Moved {
                from,
                worktree: Some(tree),
            } => {
                assert_eq!(from, first);
                assert_eq!(std::fs::canonicalize(tree).expect("canonical"), top);
            }
            other => panic!("{other:?}"),
        }
        assert!(dir.path().join("b.txt").exists(), "the files moved too");
        assert_eq!(git_ok(dir.path(), &["status", "--porcelain"]), "");
    }

    #[tokio::test]
    async fn local_changes_in_the_way_refuse_with_the_next_step() {
        let (dir, project, first, ahead) = project();
        std::fs::write(dir.path().join("b.txt"), "mine\n").expect("write");
        let err = fast_forward(&project, "w", "main", &tracking_ref("w"), &ahead)
            .await
            .expect_err("refused")
            .to_string();
        assert!(
            err.contains("checked out") && err.contains("merge --ff-only cmux/w"),
            "{err}"
        );
        assert_eq!(git_ok(dir.path(), &["rev-parse", "main"]), first);
        assert_eq!(
            std::fs::read_to_string(dir.path().join("b.txt")).expect("read"),
            "mine\n"
        );
    }

    #[tokio::test]
    async fn divergence_refuses_and_an_ahead_branch_is_left_alone() {
        let (dir, project, first, ahead) = project();
        std::fs::write(dir.path().join("c.txt"), "c\n").expect("write");
        git_ok(dir.path(), &["add", "-A"]);
        git_ok(dir.path(), &["commit", "-qm", "local work"]);
        let local = git_ok(dir.path(), &["rev-parse", "HEAD"]);
        let err = fast_forward(&project, "w", "main", &tracking_ref("w"), &ahead)
            .await
            .expect_err("diverged")
            .to_string();
        assert!(
            err.contains("diverged")
                && err.contains("1 commits only in the project, 1 only in the workspace")
                && err.contains("merge cmux/w")
                && err.contains("cmux pull w --into w-pulled"),
            "{err}"
        );
        assert_eq!(git_ok(dir.path(), &["rev-parse", "main"]), local);
        let r = fast_forward(&project, "w", "main", &tracking_ref("w"), &first)
            .await
            .expect("ahead");
        assert_eq!(r, FastForward::Ahead);
    }
}
