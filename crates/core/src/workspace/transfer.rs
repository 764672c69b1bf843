//! Moving commits between the project and a workspace: [`Lifecycle::pull`] brings a
//! workspace's branch home, [`Lifecycle::push`] sends the project's base branch to the
//! workspace's repository. A workspace that lives in the project's own repository
//! (local) needs neither, and both say so.

use crate::error::{Error, Result};
use crate::workspace::fast_forward::{self, tracking_ref, FastForward};
use crate::workspace::lifecycle::Lifecycle;
use crate::workspace::progress::Progress;
use crate::workspace::project::Project;
use crate::workspace::source::BaseBranch;
use crate::workspace::Workspace;

/// What [`Lifecycle::pull`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PullOutcome {
    /// The workspace's branch is already a branch of the project (local workspace):
    /// nothing to fetch.
    SameRepository,
    /// The workspace's branch was fetched; `result` says what happened to the
    /// project's branch `branch`, now (or already) holding `commit`.
    Pulled {
        /// The project's branch.
        branch: String,
        /// The workspace's commit.
        commit: String,
        /// Created, moved, or left as it was.
        result: FastForward,
    },
}

/// What [`Lifecycle::push`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PushOutcome {
    /// The workspace works in the project's own repository (local): its branches are
    /// the project's, nothing to send.
    SameRepository,
    /// The branch's commit is in the workspace's repository, and the branch there is
    /// at it.
    Sent {
        /// The project's branch.
        branch: String,
        /// Its commit.
        commit: String,
        /// Objects had to travel.
        transferred: bool,
    },
}

impl Lifecycle {
    /// Brings workspace `ws`'s branch home: fetches it into the project as
    /// [`tracking_ref`] (`refs/remotes/cmux/<name>`), then moves the project's branch
    /// `into` (default: the workspace's branch name) to it, fast-forward only (see
    /// [`FastForward`]). Refuses on divergence, changing no branch, with the commands
    /// that merge. Afterwards [`Lifecycle::delete`] sees the commits as home.
    pub async fn pull(
        &self,
        ws: &Workspace,
        into: Option<&str>,
        progress: &dyn Progress,
    ) -> Result<PullOutcome> {
        if ws.in_place || self.source().shares_project_repository() {
            return Ok(PullOutcome::SameRepository);
        }
        let Some(ws_branch) = ws.branch.as_deref() else {
            return Err(Error::invalid(format!(
                "workspace {} has no branch (detached HEAD): nothing to pull",
                ws.name
            )));
        };
        let branch = into.unwrap_or(ws_branch);
        let project = Project::open(&ws.project).await?;
        self.runtime().ensure_ready().await?;
        let layout = self.source().layout(&project).await?;
        let _lock = self.lock(&project, progress).await?;
        let fetched_ref = tracking_ref(&ws.name);
        let commit = self
            .source()
            .fetch_branch(ws, &layout, &fetched_ref, progress)
            .await?;
        let result =
            fast_forward::fast_forward(&project, &ws.name, branch, &fetched_ref, &commit).await?;
        Ok(PullOutcome::Pulled {
            branch: branch.to_owned(),
            commit,
            result,
        })
    }

    /// Sends the project's branch `branch` (default: the workspace's base branch) to
    /// the workspace's repository, as that branch, so `git rebase <branch>` in the
    /// workspace sees the project's new commits. Only the objects the repository lacks
    /// travel. Refuses when the branch there is checked out or holds commits the
    /// project lacks (moving it would change a working tree or lose work).
    pub async fn push(
        &self,
        ws: &Workspace,
        branch: Option<&str>,
        progress: &dyn Progress,
    ) -> Result<PushOutcome> {
        if ws.in_place || self.source().shares_project_repository() {
            return Ok(PushOutcome::SameRepository);
        }
        let Some(branch) = branch.or(ws.base.as_deref()) else {
            return Err(Error::invalid(format!(
                "workspace {} has no base branch recorded (it started from a tag or a commit, \
                 or an older cmux made it): name the branch to send, e.g. `cmux push {} --branch main`",
                ws.name, ws.name
            )));
        };
        let project = Project::open(&ws.project).await?;
        let start = project.start_point(Some(branch)).await?;
        let Some(local_branch) = start.branch.clone() else {
            return Err(Error::invalid(format!(
                "{branch:?} is not a branch of project {}: give a local branch",
                project.path().display()
            )));
        };
        self.runtime().ensure_ready().await?;
        let _lock = self.lock(&project, progress).await?;
        let synced = self.source().sync(&project, &start, progress).await?;
        let host = self.runtime().host().to_owned();
        let short = &start.commit[..start.commit.len().min(12)];
        match synced.base {
            BaseBranch::Shared => Ok(PushOutcome::SameRepository),
            BaseBranch::Updated => Ok(PushOutcome::Sent {
                branch: local_branch,
                commit: start.commit,
                transferred: synced.transferred,
            }),
            BaseBranch::CheckedOut => Err(Error::invalid(format!(
                "{host}: branch {local_branch} is checked out in a worktree there, so it was not \
                 moved; the project's commit {short} is there too: in workspace {}, \
                 `git rebase {short}` uses it",
                ws.name
            ))),
            BaseBranch::HasOwnCommits => Err(Error::invalid(format!(
                "{host}: branch {local_branch} there has commits the project does not have, so \
                 it was not moved (that would lose them); the project's commit {short} is there \
                 too: in workspace {}, `git rebase {short}` uses it; bring those commits home \
                 first to move the branch",
                ws.name
            ))),
            BaseBranch::NotABranch => Err(Error::invalid(format!(
                "{host}: the backend did not set branch {local_branch}; the project's commit \
                 {short} is there: in workspace {}, `git rebase {short}` uses it",
                ws.name
            ))),
        }
    }
}
