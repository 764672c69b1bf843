//! Workspace lifecycle (create, init, delete, rename, fork) over the Runtime trait.
//!
//! A workspace is a name, a project (a git repository on this machine), and a
//! directory inside a runtime holding a checkout of the project on its own branch.
//! The logic lives once, in [`Lifecycle`], running git through
//! [`Runtime::exec`](crate::Runtime::exec); a backend adds only a [`SourceProvider`]
//! (how the project's commits get into a repository inside its runtime, and where
//! workspaces live there).
//!
//! ```no_run
//! # async fn demo(rt: cmux_core::SharedRuntime,
//! #               source: std::sync::Arc<dyn cmux_core::workspace::SourceProvider>)
//! #               -> cmux_core::Result<()> {
//! use cmux_core::workspace::{CreateOptions, Lifecycle, NoProgress, Project};
//! let project = Project::open(std::path::Path::new(".")).await?;
//! let lifecycle = Lifecycle::new(rt, source).with_lock_dir("/tmp/cmux-locks");
//! let ws = lifecycle
//!     .create("feat", &project, &CreateOptions::default(), &NoProgress)
//!     .await?;
//! lifecycle.init(&ws, &NoProgress).await?;
//! # Ok(()) }
//! ```

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::path::RemotePath;

mod create_script;
mod fast_forward;
pub mod git_progress;
mod init;
mod lifecycle;
mod lock;
mod name;
mod progress;
mod project;
mod source;
mod transfer;

pub use fast_forward::{tracking_ref, FastForward};
pub use init::{InitOutcome, INIT_HOOK};
pub use lifecycle::{CreateOptions, DeleteOutcome, Lifecycle, WorkspaceCheck};
pub use lock::ProjectLock;
pub use name::{fnv1a64, project_id, validate_name, MAX_NAME_LEN};
pub use progress::{HookStream, NoProgress, Progress, ProgressEvent};
pub use project::{GitIdentity, Project, StartPoint};
pub use source::{BaseBranch, SourceLayout, SourceProvider, Synced};
pub use transfer::{PullOutcome, PushOutcome};

/// A workspace as the lifecycle knows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Workspace {
    /// Its name (see [`validate_name`]).
    pub name: String,
    /// The project's top-level directory on this machine.
    pub project: PathBuf,
    /// The workspace directory inside the runtime.
    pub path: RemotePath,
    /// The branch checked out there (`None` for an in-place workspace on a detached
    /// HEAD).
    pub branch: Option<String>,
    /// The workspace is the project directory itself (never deleted).
    pub in_place: bool,
    /// The project's local branch the workspace started from (`main`), when it
    /// started from a branch: what `push` sends and `git rebase <base>` means on a
    /// remote host. `None` for a tag, a commit, or a workspace recorded before cmux
    /// kept it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<String>,
}
