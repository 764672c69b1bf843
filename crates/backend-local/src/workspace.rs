//! [`LocalSource`]: workspaces on this machine are git worktrees of the project itself
//! under `$CMUX_HOME/src/<project-id>/<name>`, or the project directory in place.

use std::path::PathBuf;

use async_trait::async_trait;
use cmux_core::workspace::{Progress, Project, SourceLayout, SourceProvider};
use cmux_core::{Error, RemotePath, Result};

/// The local backend's [`SourceProvider`]: the project repository is already here, so
/// there is nothing to sync, and a workspace's branch lives in the project itself
/// (deleting the worktree never loses a commit).
#[derive(Clone, Debug)]
pub struct LocalSource {
    src_dir: PathBuf,
}

impl LocalSource {
    /// Workspaces go under `<cmux_home>/src/<project-id>/<name>`. `cmux_home` must be
    /// absolute.
    pub fn new(cmux_home: impl Into<PathBuf>) -> Self {
        LocalSource {
            src_dir: cmux_home.into().join("src"),
        }
    }
}

fn remote(path: &std::path::Path) -> Result<RemotePath> {
    let text = path.to_str().ok_or_else(|| {
        Error::invalid(format!(
            "{} is not valid UTF-8: use a UTF-8 path",
            path.display()
        ))
    })?;
    RemotePath::new(text)
}

#[async_trait]
impl SourceProvider for LocalSource {
    async fn layout(&self, project: &Project) -> Result<SourceLayout> {
        Ok(SourceLayout {
            repo: remote(project.path())?,
            base_dir: remote(&self.src_dir.join(project.id()))?,
        })
    }

    async fn sync(
        &self,
        project: &Project,
        from: Option<&str>,
        _progress: &dyn Progress,
    ) -> Result<String> {
        match from {
            Some(from) => Ok(from.to_owned()),
            None => project.current_head().await,
        }
    }

    async fn in_place_dir(&self, project: &Project) -> Result<RemotePath> {
        remote(project.path())
    }
}
