//! [`SourceProvider`]: the one thing a backend adds to the workspace lifecycle — how
//! the project's commits get into a git repository inside its runtime.

use std::fmt;

use async_trait::async_trait;

use crate::error::{Error, Result};
use crate::path::RemotePath;
use crate::workspace::progress::Progress;
use crate::workspace::project::{Project, StartPoint};
use crate::workspace::Workspace;

/// Where a project's workspaces live inside a runtime.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceLayout {
    /// The git repository, inside the runtime, whose worktrees the workspaces are
    /// (local: the project itself; SSH: `<src-base>/<project-id>/.cmux-base.git`).
    pub repo: RemotePath,
    /// The directory holding the workspaces: workspace `w` lives at `<base_dir>/w`
    /// (local: `$CMUX_HOME/src/<project-id>`; SSH: `<src-base>/<project-id>`).
    pub base_dir: RemotePath,
}

/// What [`SourceProvider::sync`] did with the base branch (the project's local branch
/// the start point names) in the runtime's repository.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BaseBranch {
    /// The start point is not a local branch (a tag or a commit): no branch to set.
    NotABranch,
    /// The runtime's repository is the project itself: its branches are the project's.
    Shared,
    /// The branch now points at the start point's commit, so `git log <base>` and
    /// `git rebase <base>` work in the workspaces.
    Updated,
    /// Left where it was: a worktree in the runtime has it checked out, and moving a
    /// checked-out branch would change that worktree under its feet.
    CheckedOut,
    /// Left where it was: it holds commits the project does not have (someone
    /// committed on it in the runtime); moving it would lose them.
    HasOwnCommits,
}

/// What [`SourceProvider::sync`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Synced {
    /// The base branch.
    pub base: BaseBranch,
    /// Objects had to travel (false when the runtime already had the commit).
    pub transferred: bool,
}

/// How a backend makes a project's source available in its runtime. The lifecycle
/// ([`Lifecycle`](crate::workspace::Lifecycle)) does everything else with git through
/// [`Runtime::exec`](crate::Runtime::exec), identically on every backend.
///
/// Calls that touch the repository ([`SourceProvider::sync`]) run under the
/// lifecycle's per-project lock when it has one.
#[async_trait]
pub trait SourceProvider: Send + Sync + fmt::Debug {
    /// Where `project`'s repository and workspaces are in the runtime. Must not change
    /// anything; may resolve paths (`~`) in the runtime.
    async fn layout(&self, project: &Project) -> Result<SourceLayout>;

    /// Makes `start.commit` available in [`SourceLayout::repo`] (local: nothing to do;
    /// SSH: into the bare repository, by `git push` only when the host lacks it), and
    /// sets the base branch there (`start.branch`, unless checked out or holding
    /// commits of its own: see [`BaseBranch`]). The project's git identity goes with
    /// it, so `git commit` works in the workspaces.
    async fn sync(
        &self,
        project: &Project,
        start: &StartPoint,
        progress: &dyn Progress,
    ) -> Result<Synced>;

    /// True when the workspaces work in the project's own repository (local): their
    /// branches are the project's, so there is nothing to pull or push.
    fn shares_project_repository(&self) -> bool {
        false
    }

    /// Fetches `workspace`'s branch into the project as `local_ref` (a ref the caller
    /// owns, e.g. [`tracking_ref`](crate::workspace::tracking_ref)), forcing it, and
    /// returns its commit. The default refuses: a backend whose workspaces live
    /// elsewhere must say how their commits come back.
    async fn fetch_branch(
        &self,
        workspace: &Workspace,
        _layout: &SourceLayout,
        _local_ref: &str,
        _progress: &dyn Progress,
    ) -> Result<String> {
        Err(Error::invalid(format!(
            "workspace {}: this backend cannot bring a workspace's commits back to the project",
            workspace.name
        )))
    }

    /// The directory of an in-place workspace (the project directory itself, seen from
    /// the runtime). The default refuses: only a runtime that sees the project's own
    /// files can work in place.
    async fn in_place_dir(&self, project: &Project) -> Result<RemotePath> {
        Err(Error::invalid(format!(
            "project {}: in-place workspaces are only possible on the local backend (drop --in-place)",
            project.path().display()
        )))
    }

    /// Commits of the workspace that the local project does not have (in none of its
    /// branches, tags or remote-tracking branches), one line each
    /// (`<short hash> <subject>`): deleting the workspace would lose them, so deletion
    /// is refused unless forced. Local: always none (the branch lives in the project).
    async fn unsynced_commits(
        &self,
        _workspace: &Workspace,
        _layout: &SourceLayout,
    ) -> Result<Vec<String>> {
        Ok(Vec::new())
    }

    /// Called after a workspace's worktree was removed (e.g. a remote backend may drop
    /// the branch from its shared repository). Default: nothing.
    async fn after_delete(&self, _workspace: &Workspace, _layout: &SourceLayout) -> Result<()> {
        Ok(())
    }
}
