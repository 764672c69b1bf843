//! [`SshSource`]: how a project's commits reach an SSH host, and come back.
//!
//! One bare repository per project on the host, `<src-base>/<project-id>/.cmux-base.git`
//! (src-base default `~/cmux`). Each workspace is a `git worktree` of that repository
//! (the lifecycle in core does that part). Uncommitted local changes are not carried:
//! core's lifecycle warns about them.
//!
//! Sync is one command on the host (`sync_script`) that makes the repository, gives it
//! the project's git identity and, when the host already has the commit (a second
//! workspace of a project), moves the refs itself: one round trip. Only when the
//! commit is missing does a *local* `git push` run through the runtime's ControlMaster
//! (no new handshake), sending only the objects the host lacks.
//!
//! The synced revision is kept as `refs/cmux/sync/<name>`: it marks what the local
//! project has. The base branch (the project's branch the workspace started from) is
//! kept under its own name, `refs/heads/<base>`, so `git log main` and `git rebase
//! main` work in the workspaces; a base branch checked out by a worktree, or holding
//! commits made on the host, is never moved.
//!
//! Under the russh transport, git's ssh is the git relay instead (`relay`): the git
//! command on the host runs through the runtime's own connection.
//!
//! Coming back, [`SourceProvider::fetch_branch`] is a local `git fetch` over the same
//! master (or relay); [`SourceProvider::unsynced_commits`] asks the host for the
//! workspace's commits no sync ref has, then drops those the project has at home
//! (`home`).

mod home;
pub mod relay;
mod sync_script;

use async_trait::async_trait;
use cmux_core::workspace::{
    BaseBranch, Progress, ProgressEvent, Project, SourceLayout, SourceProvider, StartPoint, Synced,
    Workspace,
};
use cmux_core::{quote, Error, ExecRequest, RemotePath, Result, Runtime, RuntimeExt};

use self::sync_script::BaseState;

use crate::{SshRuntime, Transport};

/// Default directory holding projects on the host.
pub const DEFAULT_SRC_BASE: &str = "~/cmux";

/// The SSH backend's [`SourceProvider`].
#[derive(Clone, Debug)]
pub struct SshSource {
    runtime: SshRuntime,
    src_base: String,
}

impl SshSource {
    /// Projects go under [`DEFAULT_SRC_BASE`] on the runtime's host.
    pub fn new(runtime: SshRuntime) -> Self {
        SshSource {
            runtime,
            src_base: DEFAULT_SRC_BASE.to_owned(),
        }
    }

    /// Uses `src_base` (a path on the host, `~` allowed) instead of `~/cmux`.
    pub fn with_src_base(mut self, src_base: impl Into<String>) -> Self {
        self.src_base = src_base.into();
        self
    }
}

/// `refs/cmux/sync/<from>` with anything git would refuse replaced.
fn sync_ref(from: &str) -> String {
    let cleaned: String = from
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let cleaned = cleaned
        .split('/')
        .filter(|p| !p.is_empty() && !p.starts_with('.') && !p.ends_with(".lock"))
        .collect::<Vec<_>>()
        .join("/");
    if cleaned.is_empty() {
        "refs/cmux/sync/head".to_owned()
    } else {
        format!("refs/cmux/sync/{cleaned}")
    }
}

/// `git -C <project> <args>` that never prompts and reads no input.
fn git_in(project: &Project, args: &[&str]) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new("git");
    cmd.arg("-C")
        .arg(project.path())
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(std::process::Stdio::null());
    cmd
}

async fn local_git(project: &Project, args: &[&str], envs: &[(&str, String)]) -> Result<String> {
    let mut cmd = git_in(project, args);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = cmd.output().await.map_err(|e| Error::Io {
        host: "local".into(),
        context: "running git (is git installed and on PATH?)".into(),
        source: e,
    })?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    } else {
        Err(Error::CommandFailed {
            host: "local".into(),
            command: format!("git {}", args.first().copied().unwrap_or("")),
            code: out.status.code().unwrap_or(-1),
            stderr: cmux_core::runtime::tail(&String::from_utf8_lossy(&out.stderr), 2000),
        })
    }
}

impl SshSource {
    /// The repository's URL for a local git talking through [`Self::ssh_command`].
    fn url(&self, repo: &RemotePath) -> String {
        format!("ssh://{}{}", self.runtime.url_host(), repo)
    }

    /// `GIT_SSH_COMMAND` for local git: the runtime's ssh, reusing its master.
    fn ssh_command(&self) -> String {
        quote::join(self.runtime.ssh_command_words())
    }

    /// A local git command that talks to the host's `repo` (`push`, `fetch`, given
    /// `--progress` and [`Self::url`]), its progress reported as
    /// [`ProgressEvent::Transfer`]s of `what`; a failure is `command`'s.
    ///
    /// OpenSSH transport: git's ssh is the runtime's, reusing its master. russh
    /// transport: git's ssh is the relay ([`relay`]), whose remote command runs through
    /// the runtime's connection, whether or not an ssh client exists.
    async fn git_over_ssh(
        &self,
        project: &Project,
        args: &[&str],
        repo: &RemotePath,
        what: &str,
        command: &str,
        progress: &dyn Progress,
    ) -> Result<String> {
        let mut cmd = git_in(project, args);
        let out = if self.runtime.transport() == Transport::Russh {
            let Some(relay_argv) = self.runtime.options().git_relay.as_deref() else {
                return Err(Error::backend(
                    "ssh",
                    format!(
                        "{}: {command} of {repo} over the russh transport needs the git relay \
                         (SshOptions::git_relay, which the cmux CLI sets); without it, use an \
                         ssh client with CMUX_SSH_TRANSPORT=openssh",
                        self.runtime.host()
                    ),
                ));
            };
            let server = relay::RelayServer::bind(&self.runtime)?;
            cmd.env("GIT_SSH_COMMAND", server.ssh_command(relay_argv))
                .env("GIT_SSH_VARIANT", "simple");
            server
                .serve_during(
                    &self.runtime,
                    repo,
                    cmux_core::workspace::git_progress::run_with_progress(cmd, what, progress),
                )
                .await
        } else {
            cmd.env("GIT_SSH_COMMAND", self.ssh_command());
            cmux_core::workspace::git_progress::run_with_progress(cmd, what, progress).await
        };
        let out = out.map_err(|e| Error::Io {
            host: "local".into(),
            context: "running git (is git installed and on PATH?)".into(),
            source: e,
        })?;
        if out.status.success() {
            return Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned());
        }
        Err(Error::CommandFailed {
            host: "local".into(),
            command: command.into(),
            code: out.status.code().unwrap_or(-1),
            stderr: cmux_core::runtime::tail(&String::from_utf8_lossy(&out.stderr), 2000),
        })
    }
}

#[async_trait]
impl SourceProvider for SshSource {
    async fn layout(&self, project: &Project) -> Result<SourceLayout> {
        let base_dir = self
            .runtime
            .resolve_path(&format!(
                "{}/{}",
                self.src_base.trim_end_matches('/'),
                project.id()
            ))
            .await?;
        Ok(SourceLayout {
            repo: base_dir.join(".cmux-base.git")?,
            base_dir,
        })
    }

    async fn sync(
        &self,
        project: &Project,
        start: &StartPoint,
        progress: &dyn Progress,
    ) -> Result<Synced> {
        let layout = self.layout(project).await?;
        let host = self.runtime.host().to_owned();
        let identity = project.identity().await?;
        let sync_ref = sync_ref(&start.rev);
        let base = start.branch.as_deref();
        // One round trip: make the repository, set the identity, move the refs when
        // the host has the commit.
        let found = sync_script::run(
            &self.runtime,
            &layout.repo,
            &start.commit,
            &sync_ref,
            base,
            &identity,
        )
        .await?;
        if found.created {
            progress.event(ProgressEvent::Step(&format!(
                "created the shared repository {host}:{}",
                layout.repo
            )));
            if identity.name.is_none() || identity.email.is_none() {
                progress.event(ProgressEvent::Warning(&format!(
                    "project {} has no git user.name/user.email: commits in its workspaces on {host} need the host's own",
                    project.path().display()
                )));
            }
        }
        let base_of = |state: BaseState| match state {
            BaseState::None => BaseBranch::NotABranch,
            BaseState::Movable | BaseState::Updated => BaseBranch::Updated,
            BaseState::CheckedOut => BaseBranch::CheckedOut,
            BaseState::OwnCommits => BaseBranch::HasOwnCommits,
        };
        if found.present {
            return Ok(Synced {
                base: base_of(found.base),
                transferred: false,
            });
        }
        progress.event(ProgressEvent::Step(&format!(
            "pushing {} to {host}:{} (only objects the host lacks travel)",
            start.rev, layout.repo
        )));
        let mut refspecs = vec![format!("+{}:{sync_ref}", start.commit)];
        if let (BaseState::Movable, Some(base)) = (found.base, base) {
            refspecs.push(format!("+{}:refs/heads/{base}", start.commit));
        }
        let url = self.url(&layout.repo);
        let mut args = vec!["push", "--progress", "--no-verify", url.as_str()];
        args.extend(refspecs.iter().map(String::as_str));
        self.git_over_ssh(
            project,
            &args,
            &layout.repo,
            &format!("push to {host}"),
            "git push",
            progress,
        )
        .await
        .map_err(|e| match e {
            Error::CommandFailed { stderr, code, .. } => Error::CommandFailed {
                host,
                command: format!("git push to {}", layout.repo),
                code,
                stderr,
            },
            e => e,
        })?;
        Ok(Synced {
            base: base_of(found.base),
            transferred: true,
        })
    }

    async fn fetch_branch(
        &self,
        workspace: &Workspace,
        layout: &SourceLayout,
        local_ref: &str,
        progress: &dyn Progress,
    ) -> Result<String> {
        let Some(branch) = &workspace.branch else {
            return Err(Error::invalid(format!(
                "workspace {} has no branch (detached HEAD): nothing to fetch",
                workspace.name
            )));
        };
        let project = Project::at(workspace.project.clone())?;
        let host = self.runtime.host().to_owned();
        progress.event(ProgressEvent::Step(&format!(
            "fetching branch {branch} from {host}:{}",
            layout.repo
        )));
        let url = self.url(&layout.repo);
        let refspec = format!("+refs/heads/{branch}:{local_ref}");
        self.git_over_ssh(
            &project,
            &[
                "fetch",
                "--progress",
                "--no-tags",
                "--no-recurse-submodules",
                &url,
                &refspec,
            ],
            &layout.repo,
            &format!("fetch from {host}"),
            "git fetch",
            progress,
        )
        .await
        .map_err(|e| match e {
            Error::CommandFailed { stderr, .. } if stderr.contains("couldn't find remote ref") => {
                Error::invalid(format!(
                    "{host}: branch {branch} of workspace {} is not in {} (deleted or renamed \
                     there?): check with `cmux exec {} -- git branch --show-current`",
                    workspace.name, layout.repo, workspace.name
                ))
            }
            Error::CommandFailed { stderr, code, .. } => Error::CommandFailed {
                host: host.clone(),
                command: format!("git fetch from {}", layout.repo),
                code,
                stderr,
            },
            e => e,
        })?;
        let commit = local_git(
            &project,
            &[
                "rev-parse",
                "-q",
                "--verify",
                &format!("{local_ref}^{{commit}}"),
            ],
            &[],
        )
        .await?;
        Ok(commit)
    }

    async fn unsynced_commits(
        &self,
        workspace: &Workspace,
        layout: &SourceLayout,
    ) -> Result<Vec<String>> {
        let Some(branch) = &workspace.branch else {
            return Ok(Vec::new());
        };
        let out = self
            .runtime
            .output(
                ExecRequest::argv([
                    "git",
                    "-C",
                    layout.repo.as_str(),
                    "log",
                    "--format=%H %h %s",
                    &format!("refs/heads/{branch}"),
                    "--not",
                    "--glob=refs/cmux/sync/*",
                    "--",
                ]),
                1 << 20,
            )
            .await?;
        if !out.status.success() {
            // No such branch (already gone): nothing to lose.
            return Ok(Vec::new());
        }
        // `<full> <short> <subject>`: the host's word for what only it has; the project
        // may have fetched some since (cmux pull, or git fetch by hand).
        let stdout = out.stdout_lossy();
        let commits: Vec<(&str, &str)> = stdout
            .lines()
            .filter_map(|l| l.split_once(' '))
            .filter(|(full, _)| full.len() >= 40 && full.bytes().all(|b| b.is_ascii_hexdigit()))
            .collect();
        let fulls: Vec<String> = commits.iter().map(|(f, _)| (*f).to_owned()).collect();
        let project = Project::at(workspace.project.clone())?;
        let away = home::not_home(&project, &fulls).await?;
        Ok(commits
            .into_iter()
            .filter(|(full, _)| away.contains(*full))
            .map(|(_, rest)| {
                // The subject is host text: escaped, so it cannot drive a terminal.
                let (short, subject) = rest.split_once(' ').unwrap_or((rest, ""));
                format!("{short} {subject:?}")
            })
            .collect())
    }

    async fn after_delete(&self, workspace: &Workspace, layout: &SourceLayout) -> Result<()> {
        if let Some(branch) = &workspace.branch {
            let _ = self
                .runtime
                .output(
                    ExecRequest::argv([
                        "git",
                        "-C",
                        layout.repo.as_str(),
                        "branch",
                        "-D",
                        "--",
                        branch,
                    ]),
                    1 << 16,
                )
                .await?;
        }
        // The project's mirror of the workspace's branch goes with it, unless it holds
        // commits the project has nowhere else (after a forced rm).
        if let Ok(project) = Project::at(workspace.project.clone()) {
            if project.path().is_dir() {
                let tracking = cmux_core::workspace::tracking_ref(&workspace.name);
                home::drop_tracking_ref_if_home(&project, &tracking).await?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_refs_are_valid_names() {
        assert_eq!(sync_ref("main"), "refs/cmux/sync/main");
        assert_eq!(sync_ref("feat/x y"), "refs/cmux/sync/feat/x_y");
        assert_eq!(sync_ref("../.hidden"), "refs/cmux/sync/head");
        assert_eq!(sync_ref("v1.0~1"), "refs/cmux/sync/v1.0_1");
    }
}
