//! [`Lifecycle`]: create, delete, rename and fork workspaces with git run through the
//! runtime, so the same code serves every backend.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};
use crate::exec::ExecRequest;
use crate::jobs::Jobs;
use crate::path::RemotePath;
use crate::runtime::{RuntimeExt, SharedRuntime};
use crate::workspace::create_script::{self, Created};
use crate::workspace::lock::ProjectLock;
use crate::workspace::name::validate_name;
use crate::workspace::progress::{Progress, ProgressEvent};
use crate::workspace::project::{Project, StartPoint};
use crate::workspace::source::{BaseBranch, SourceProvider};
use crate::workspace::Workspace;

/// How to create a workspace.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CreateOptions {
    /// Branch to create (default: the workspace name). An existing branch of that name
    /// is checked out as it is when `from` is not given (resuming earlier work).
    pub branch: Option<String>,
    /// Revision to start from (default: the project's current branch, or HEAD).
    pub from: Option<String>,
    /// Use the project directory itself: no worktree, no branch, never deleted.
    pub in_place: bool,
}

/// What [`Lifecycle::delete`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeleteOutcome {
    /// The worktree was removed.
    Removed,
    /// The workspace directory was already gone; git's bookkeeping was pruned.
    AlreadyGone,
    /// An in-place workspace: the project directory is never deleted.
    KeptInPlace,
}

/// A workspace's state as seen in its runtime (for `doctor`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkspaceCheck {
    /// The directory exists.
    pub exists: bool,
    /// The branch checked out there (`None` when detached or missing).
    pub branch: Option<String>,
    /// Paths `git status --porcelain` reports (uncommitted changes).
    pub changes: usize,
}

/// The workspace lifecycle over one runtime and its backend's [`SourceProvider`].
#[derive(Clone, Debug)]
pub struct Lifecycle {
    runtime: SharedRuntime,
    source: Arc<dyn SourceProvider>,
    lock_dir: Option<PathBuf>,
    /// Init hooks seen by `create` (workspace dir -> present and executable), so
    /// `init` right after needs no round trip to look for one.
    hooks: Arc<Mutex<HashMap<RemotePath, Option<bool>>>>,
}

impl Lifecycle {
    /// A lifecycle running git in `runtime`, with `source` getting the project there.
    pub fn new(runtime: SharedRuntime, source: Arc<dyn SourceProvider>) -> Self {
        Lifecycle {
            runtime,
            source,
            lock_dir: None,
            hooks: Arc::default(),
        }
    }

    /// Serializes repository operations per project across processes of this machine
    /// with a lock file in `dir` (see [`ProjectLock`]). Without it, concurrent
    /// operations on one project can make git fail.
    pub fn with_lock_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.lock_dir = Some(dir.into());
        self
    }

    /// The runtime the workspaces live in.
    pub fn runtime(&self) -> &SharedRuntime {
        &self.runtime
    }

    /// How the project's source gets into the runtime.
    pub(crate) fn source(&self) -> &Arc<dyn SourceProvider> {
        &self.source
    }

    pub(crate) async fn lock(
        &self,
        project: &Project,
        progress: &dyn Progress,
    ) -> Result<Option<ProjectLock>> {
        match &self.lock_dir {
            Some(dir) => Ok(Some(
                ProjectLock::acquire_reporting(dir, project.id(), progress).await?,
            )),
            None => Ok(None),
        }
    }

    async fn git(&self, what: &str, dir: &RemotePath, args: &[&str]) -> Result<String> {
        let mut argv = vec!["git", "-C", dir.as_str()];
        argv.extend_from_slice(args);
        tracing::debug!(?argv, "git");
        self.runtime
            .run_checked(what, ExecRequest::argv(argv))
            .await
    }

    async fn git_ok(&self, dir: &RemotePath, args: &[&str]) -> Result<bool> {
        let mut argv = vec!["git", "-C", dir.as_str()];
        argv.extend_from_slice(args);
        let out = self
            .runtime
            .output(ExecRequest::argv(argv), 1 << 16)
            .await?;
        Ok(out.status.success())
    }

    async fn branch_exists(&self, repo: &RemotePath, branch: &str) -> Result<bool> {
        let refname = format!("refs/heads/{branch}");
        self.git_ok(repo, &["rev-parse", "-q", "--verify", &refname])
            .await
    }

    /// What [`Lifecycle::create`] would make, without changing anything: the
    /// workspace's directory and branch (so a caller can record it first).
    pub async fn plan(
        &self,
        name: &str,
        project: &Project,
        options: &CreateOptions,
    ) -> Result<Workspace> {
        validate_name(name)?;
        if options.in_place {
            if options.branch.is_some() || options.from.is_some() {
                return Err(Error::invalid(
                    "an in-place workspace uses the project as it is: drop --branch/--from or --in-place",
                ));
            }
            return Ok(Workspace {
                name: name.to_owned(),
                project: project.path().to_path_buf(),
                path: self.source.in_place_dir(project).await?,
                branch: None,
                in_place: true,
                base: None,
            });
        }
        if let Some(from) = &options.from {
            if from.is_empty() || from.starts_with('-') {
                return Err(Error::invalid(format!(
                    "invalid starting revision {from:?}: give a branch, tag or commit"
                )));
            }
        }
        let branch = options.branch.clone().unwrap_or_else(|| name.to_owned());
        if branch.is_empty() || branch.starts_with('-') {
            return Err(Error::invalid(format!(
                "invalid branch name {branch:?}: give a git branch name"
            )));
        }
        let layout = self.source.layout(project).await?;
        Ok(Workspace {
            name: name.to_owned(),
            project: project.path().to_path_buf(),
            path: layout.base_dir.join(name)?,
            branch: Some(branch),
            in_place: false,
            base: None,
        })
    }

    /// Creates workspace `name` of `project`: syncs the source, then
    /// `git worktree add -b <branch> <dir> <from>` in the runtime. Does not run the
    /// init hook (see [`Lifecycle::init`]).
    pub async fn create(
        &self,
        name: &str,
        project: &Project,
        options: &CreateOptions,
        progress: &dyn Progress,
    ) -> Result<Workspace> {
        let mut ws = self.plan(name, project, options).await?;
        self.runtime.ensure_ready().await?;
        if ws.in_place {
            let head = self
                .git(
                    "git symbolic-ref",
                    &ws.path,
                    &["symbolic-ref", "-q", "--short", "HEAD"],
                )
                .await
                .ok()
                .map(|b| b.trim().to_owned())
                .filter(|b| !b.is_empty());
            ws.branch = head;
            return Ok(ws);
        }
        let layout = self.source.layout(project).await?;
        let branch = ws.branch.clone().unwrap_or_else(|| name.to_owned());
        if project.has_uncommitted_changes().await? {
            progress.event(ProgressEvent::Warning(
                "the project has uncommitted changes: they are not carried into the workspace, which starts from a commit",
            ));
        }
        // Resolved once, locally: the commit to start from and the base branch.
        let start = project.start_point(options.from.as_deref()).await?;
        let _lock = self.lock(project, progress).await?;
        let synced = self.source.sync(project, &start, progress).await?;
        warn_base_not_moved(&synced.base, &start, self.runtime.host(), progress);
        // Every host step in one command (see `create_script`).
        let created = create_script::run(
            self.runtime.as_ref(),
            &layout.repo,
            &ws.path,
            &layout.base_dir,
            &start.commit,
            &branch,
            options.from.is_some(),
        )
        .await?;
        match created {
            Created::Taken => return Err(self.dir_taken(&ws.path)),
            Created::NoRevision => {
                return Err(Error::invalid(format!(
                    "revision {:?} ({}) not found in the repository {} on {}: the sync did not \
                     bring it; try again, or check that repository with `cmux doctor`",
                    start.rev,
                    start.commit,
                    layout.repo,
                    self.runtime.host()
                )))
            }
            Created::BranchExists => {
                return Err(Error::invalid(format!(
                    "branch {branch:?} already exists in project {}: choose another branch, or omit --from to continue that branch",
                    project.path().display()
                )))
            }
            Created::Made {
                hook,
                new_branch,
                commit,
            } => {
                let which = if new_branch { "new" } else { "existing" };
                progress.event(ProgressEvent::Step(&format!(
                    "created worktree {} on {which} branch {branch} at {}",
                    ws.path,
                    &commit[..commit.len().min(12)]
                )));
                self.remember_hook(&ws.path, hook);
            }
        }
        ws.branch = Some(branch);
        ws.base = start.branch;
        Ok(ws)
    }

    fn remember_hook(&self, dir: &RemotePath, hook: Option<bool>) {
        self.hooks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(dir.clone(), hook);
    }

    /// What `create` saw of the init hook in `dir` (taken: asked once).
    pub(crate) fn known_hook(&self, dir: &RemotePath) -> Option<Option<bool>> {
        self.hooks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(dir)
    }

    fn dir_taken(&self, path: &RemotePath) -> Error {
        Error::invalid(format!(
            "{}: {path} already exists (left over from an earlier workspace?): remove that directory or choose another name",
            self.runtime.host()
        ))
    }

    /// Deletes a workspace's worktree. Refuses, unless `force`, when it has
    /// uncommitted changes or commits the local project does not have. The branch is
    /// kept (for the local backend it lives in the project, so commits are safe).
    /// Idempotent: a workspace already gone is fine. An in-place workspace's directory
    /// is never deleted.
    ///
    /// The workspace's background jobs end with it, before its directory goes (each
    /// one said as a progress step): still running, nothing would list them again.
    pub async fn delete(
        &self,
        ws: &Workspace,
        force: bool,
        progress: &dyn Progress,
    ) -> Result<DeleteOutcome> {
        if ws.in_place {
            self.end_jobs(ws, force, progress).await?;
            return Ok(DeleteOutcome::KeptInPlace);
        }
        self.runtime.ensure_ready().await?;
        let project = Project::at(ws.project.clone())?;
        let layout = self.source.layout(&project).await?;
        let repo_present = self.runtime.exists(&layout.repo).await?;
        if !self.runtime.exists(&ws.path).await? {
            self.end_jobs(ws, force, progress).await?;
            if repo_present {
                let _lock = self.lock(&project, progress).await?;
                self.git("git worktree prune", &layout.repo, &["worktree", "prune"])
                    .await?;
            }
            return Ok(DeleteOutcome::AlreadyGone);
        }
        if !force {
            let status = self
                .git(
                    "git status",
                    &ws.path,
                    &["status", "--porcelain", "--untracked-files=normal"],
                )
                .await?;
            let changes = status.lines().filter(|l| !l.is_empty()).count();
            if changes > 0 {
                return Err(Error::invalid(format!(
                    "workspace {} has uncommitted changes ({changes} paths) in {}: commit or discard them, or delete with --force",
                    ws.name, ws.path
                )));
            }
            let unsynced = self.source.unsynced_commits(ws, &layout).await?;
            if !unsynced.is_empty() {
                return Err(Error::invalid(format!(
                    "workspace {} has {} commits the local project does not have (first: {}): bring them home with `cmux pull {}`, or delete with --force",
                    ws.name,
                    unsynced.len(),
                    unsynced[0],
                    ws.name
                )));
            }
        }
        self.end_jobs(ws, force, progress).await?;
        progress.event(ProgressEvent::Step(&format!(
            "removing worktree {}",
            ws.path
        )));
        let _lock = self.lock(&project, progress).await?;
        let removed = if repo_present {
            self.git(
                "git worktree remove",
                &layout.repo,
                &["worktree", "remove", "--force", ws.path.as_str()],
            )
            .await
        } else {
            Err(Error::NotFound {
                host: self.runtime.host().to_owned(),
                path: layout.repo.clone(),
            })
        };
        if let Err(e) = removed {
            // Not a worktree any more (or its repository is gone): with force, a
            // directory inside our own base directory is ours to remove.
            if force && ws.path.starts_with(&layout.base_dir) && ws.path != layout.base_dir {
                progress.event(ProgressEvent::Warning(&format!(
                    "git could not remove the worktree ({e}); removing the directory"
                )));
                self.runtime.remove(&ws.path, true).await?;
            } else {
                return Err(e);
            }
        }
        if repo_present {
            self.git("git worktree prune", &layout.repo, &["worktree", "prune"])
                .await?;
        }
        self.source.after_delete(ws, &layout).await?;
        Ok(DeleteOutcome::Removed)
    }

    /// Ends the background jobs of `ws`, which is being removed, and says what
    /// happened to them. A failure stops the removal, unless `force` (then it is a
    /// warning).
    async fn end_jobs(&self, ws: &Workspace, force: bool, progress: &dyn Progress) -> Result<()> {
        let jobs = Jobs::new(self.runtime.clone(), ws.path.clone());
        let ended = async {
            self.runtime.ensure_ready().await?;
            jobs.end_all().await
        };
        let ended = match ended.await {
            Ok(ended) => ended,
            Err(e) if force => {
                progress.event(ProgressEvent::Warning(&format!(
                    "could not end the background jobs of workspace {} ({e}); any still \
                     running on {} go on unlisted",
                    ws.name,
                    self.runtime.host()
                )));
                return Ok(());
            }
            // Unreachable: the connection error as it is (its exit code says so), and
            // the way out.
            Err(e) if e.is_connection() => {
                progress.event(ProgressEvent::Warning(&format!(
                    "workspace {} not removed: its background jobs on {} could not be ended; \
                     delete with --force to remove it anyway",
                    ws.name,
                    self.runtime.host()
                )));
                return Err(e);
            }
            Err(e) => {
                return Err(Error::invalid(format!(
                    "workspace {} not removed: its background jobs could not be ended ({e}); \
                     list and kill them (`cmux jobs {}`), or delete with --force",
                    ws.name, ws.name
                )))
            }
        };
        for job in &ended {
            let command = shown_command(&job.command);
            if job.after.is_running() {
                progress.event(ProgressEvent::Warning(&format!(
                    "background job {} ({command}) of workspace {} still runs on {} after \
                     SIGKILL (stuck in the kernel?); its files are kept",
                    job.id,
                    ws.name,
                    self.runtime.host()
                )));
            } else if job.before.is_running() {
                progress.event(ProgressEvent::Step(&format!(
                    "stopped background job {} ({command}) of workspace {}",
                    job.id, ws.name
                )));
            }
        }
        let done = ended
            .iter()
            .filter(|job| !job.before.is_running() && job.removed)
            .count();
        if done > 0 {
            progress.event(ProgressEvent::Step(&format!(
                "removed the output of {done} ended background job{} of workspace {}",
                if done == 1 { "" } else { "s" },
                ws.name
            )));
        }
        Ok(())
    }

    /// Renames a workspace: moves its worktree beside the old one and renames its
    /// branch when the branch was named after the workspace.
    pub async fn rename(
        &self,
        ws: &Workspace,
        new_name: &str,
        progress: &dyn Progress,
    ) -> Result<Workspace> {
        validate_name(new_name)?;
        let mut renamed = ws.clone();
        renamed.name = new_name.to_owned();
        if ws.in_place {
            return Ok(renamed);
        }
        self.runtime.ensure_ready().await?;
        let project = Project::at(ws.project.clone())?;
        let layout = self.source.layout(&project).await?;
        let parent = ws.path.parent().unwrap_or_else(|| layout.base_dir.clone());
        renamed.path = parent.join(new_name)?;
        if !self.runtime.exists(&ws.path).await? {
            return Err(Error::NotFound {
                host: self.runtime.host().to_owned(),
                path: ws.path.clone(),
            });
        }
        if self.runtime.exists(&renamed.path).await? {
            return Err(self.dir_taken(&renamed.path));
        }
        let _lock = self.lock(&project, progress).await?;
        let rename_branch = ws.branch.as_deref() == Some(ws.name.as_str());
        if rename_branch && self.branch_exists(&layout.repo, new_name).await? {
            return Err(Error::invalid(format!(
                "branch {new_name:?} already exists in project {}: delete it (git branch -D {new_name}) or pick another name",
                project.path().display()
            )));
        }
        progress.event(ProgressEvent::Step(&format!(
            "moving worktree {} to {}",
            ws.path, renamed.path
        )));
        self.git(
            "git worktree move",
            &layout.repo,
            &["worktree", "move", ws.path.as_str(), renamed.path.as_str()],
        )
        .await?;
        if rename_branch {
            self.git(
                "git branch -m",
                &renamed.path,
                &["branch", "-m", &ws.name, new_name],
            )
            .await?;
            renamed.branch = Some(new_name.to_owned());
        }
        // Jobs are keyed by the workspace's directory: they follow it, running or not.
        let jobs = Jobs::new(self.runtime.clone(), ws.path.clone());
        match jobs.move_to(renamed.path.clone()).await {
            Ok((_, 0)) => {}
            Ok((_, moved)) => progress.event(ProgressEvent::Step(&format!(
                "{moved} background job{} of the workspace moved with it",
                if moved == 1 { "" } else { "s" }
            ))),
            // The workspace is renamed already: not a reason to fail.
            Err(e) => progress.event(ProgressEvent::Warning(&format!(
                "the background jobs of {} stay under its old directory on {} ({e}): \
                 `cmux jobs {new_name}` will not list them",
                ws.name,
                self.runtime.host()
            ))),
        }
        Ok(renamed)
    }

    /// Creates workspace `new_name` from the HEAD of workspace `source`, on a new branch
    /// named `new_name`, beside the project's other workspaces. Uncommitted changes of
    /// `source` are not carried (a warning says so).
    pub async fn fork(
        &self,
        source: &Workspace,
        new_name: &str,
        progress: &dyn Progress,
    ) -> Result<Workspace> {
        validate_name(new_name)?;
        self.runtime.ensure_ready().await?;
        let project = Project::at(source.project.clone())?;
        let layout = self.source.layout(&project).await?;
        let ws = Workspace {
            name: new_name.to_owned(),
            project: source.project.clone(),
            path: layout.base_dir.join(new_name)?,
            branch: Some(new_name.to_owned()),
            in_place: false,
            base: source.base.clone(),
        };
        if self.runtime.exists(&ws.path).await? {
            return Err(self.dir_taken(&ws.path));
        }
        let commit = self
            .git("git rev-parse", &source.path, &["rev-parse", "HEAD"])
            .await?
            .trim()
            .to_owned();
        let status = self
            .git("git status", &source.path, &["status", "--porcelain"])
            .await?;
        if !status.trim().is_empty() {
            progress.event(ProgressEvent::Warning(&format!(
                "uncommitted changes in workspace {} are not carried to {new_name}",
                source.name
            )));
        }
        let _lock = self.lock(&project, progress).await?;
        if self.branch_exists(&layout.repo, new_name).await? {
            return Err(Error::invalid(format!(
                "branch {new_name:?} already exists in project {}: pick another name",
                project.path().display()
            )));
        }
        self.runtime.create_dir_all(&layout.base_dir).await?;
        progress.event(ProgressEvent::Step(&format!(
            "creating worktree {} on new branch {new_name} from {} ({})",
            ws.path,
            source.name,
            &commit[..commit.len().min(12)]
        )));
        self.git(
            "git worktree add",
            &layout.repo,
            &["worktree", "add", "-b", new_name, ws.path.as_str(), &commit],
        )
        .await?;
        Ok(ws)
    }

    /// Looks at a workspace in its runtime: does the directory exist, which branch,
    /// how many uncommitted changes.
    pub async fn check(&self, ws: &Workspace) -> Result<WorkspaceCheck> {
        self.runtime.ensure_ready().await?;
        if !self.runtime.exists(&ws.path).await? {
            return Ok(WorkspaceCheck {
                exists: false,
                branch: None,
                changes: 0,
            });
        }
        let branch = self
            .git(
                "git symbolic-ref",
                &ws.path,
                &["symbolic-ref", "-q", "--short", "HEAD"],
            )
            .await
            .ok()
            .map(|b| b.trim().to_owned())
            .filter(|b| !b.is_empty());
        let status = self
            .git("git status", &ws.path, &["status", "--porcelain"])
            .await?;
        Ok(WorkspaceCheck {
            exists: true,
            branch,
            changes: status.lines().filter(|l| !l.is_empty()).count(),
        })
    }
}

/// Tells why the runtime's base branch was left where it was (the workspace is made
/// anyway, from the right commit; only `git log <base>` there is behind).
fn warn_base_not_moved(base: &BaseBranch, start: &StartPoint, host: &str, progress: &dyn Progress) {
    let Some(branch) = &start.branch else { return };
    let why = match base {
        BaseBranch::CheckedOut => "a worktree there has it checked out",
        BaseBranch::HasOwnCommits => "it has commits there that the project does not have",
        _ => return,
    };
    progress.event(ProgressEvent::Warning(&format!(
        "branch {branch} on {host} was not moved to the project's {branch} ({why}): \
         `git log {branch}` in the workspace shows the older state"
    )));
}

/// A job's command as a progress line shows it: its first line, at most 60
/// characters, quoted and escaped (it comes back from the host).
fn shown_command(command: &str) -> String {
    let first = command.lines().next().unwrap_or_default();
    let mut shown: String = first.chars().take(60).collect();
    if shown.len() < command.len() {
        shown.push('…');
    }
    format!("{shown:?}")
}
