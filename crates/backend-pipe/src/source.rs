//! [`PipeSource`]: pipe workspaces are directories that already exist at the other end
//! of the pipe (a volume mounted in the container, a checkout made by its image).
//!
//! Decision: no git sync through the pipe. The project's commits would have to reach a
//! repository in an environment cmux does not manage (its image, its volumes, its
//! lifetime), so a pipe workspace is always in place: the directory is used as it is,
//! with no worktree and no branch, and is never deleted by `cmux rm`.

use async_trait::async_trait;
use cmux_core::workspace::{Progress, Project, SourceLayout, SourceProvider, StartPoint, Synced};
use cmux_core::{Error, RemotePath, Result};

/// The pipe backend's [`SourceProvider`]: in place only.
#[derive(Clone, Debug)]
pub struct PipeSource {
    dir: RemotePath,
    command: String,
}

impl PipeSource {
    /// Workspaces of this pipe live in `dir` (absolute, inside the pipe's environment).
    pub fn new(command: impl Into<String>, dir: RemotePath) -> Self {
        PipeSource {
            dir,
            command: command.into(),
        }
    }

    fn in_place_only(&self) -> Error {
        Error::invalid(format!(
            "{}: pipe workspaces use an existing directory as it is (no git sync through the pipe): create it with --in-place --dir DIR",
            self.command
        ))
    }
}

#[async_trait]
impl SourceProvider for PipeSource {
    async fn layout(&self, _project: &Project) -> Result<SourceLayout> {
        Err(self.in_place_only())
    }

    async fn sync(
        &self,
        _project: &Project,
        _start: &StartPoint,
        _progress: &dyn Progress,
    ) -> Result<Synced> {
        Err(self.in_place_only())
    }

    async fn in_place_dir(&self, _project: &Project) -> Result<RemotePath> {
        Ok(self.dir.clone())
    }
}
