//! [`SourceProvider`]: the one thing a backend adds to the workspace lifecycle — how
//! the project's commits get into a git repository inside its runtime.

use std::fmt;

use async_trait::async_trait;

use crate::error::{Error, Result};
use crate::path::RemotePath;
use crate::workspace::progress::Progress;
use crate::workspace::project::Project;
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

    /// Makes the project's commits available in [`SourceLayout::repo`] (local: nothing
    /// to do; SSH: `git push` into the bare repository) and returns the revision, valid
    /// in that repository, a new workspace starts from: `from` as the user wrote it
    /// (a branch, tag or commit of the project), or the project's current branch or
    /// HEAD when `None` (see [`Project::current_head`]).
    async fn sync(
        &self,
        project: &Project,
        from: Option<&str>,
        progress: &dyn Progress,
    ) -> Result<String>;

    /// The directory of an in-place workspace (the project directory itself, seen from
    /// the runtime). The default refuses: only a runtime that sees the project's own
    /// files can work in place.
    async fn in_place_dir(&self, project: &Project) -> Result<RemotePath> {
        Err(Error::invalid(format!(
            "project {}: in-place workspaces are only possible on the local backend (drop --in-place)",
            project.path().display()
        )))
    }

    /// Commits of the workspace that the local project does not have, one line each
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
