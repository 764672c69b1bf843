//! [`SshSource`]: how a project's commits reach an SSH host.
//!
//! One bare repository per project on the host, `<src-base>/<project-id>/.cmux-base.git`
//! (src-base default `~/cmux`), filled by a *local* `git push` through the runtime's
//! ControlMaster (no new handshake), so a second workspace of the project sends only
//! the objects the host does not have yet. Each workspace is a `git worktree` of that
//! repository (the lifecycle in core does that part). Uncommitted local changes are not
//! carried: core's lifecycle warns about them.
//!
//! The pushed revision is kept as `refs/cmux/sync/<name>` in the bare repository: it
//! marks what the local project has, so [`SourceProvider::unsynced_commits`] can tell
//! which workspace commits exist only on the host.

use async_trait::async_trait;
use cmux_core::workspace::{
    Progress, ProgressEvent, Project, SourceLayout, SourceProvider, Workspace,
};
use cmux_core::{quote, Error, ExecRequest, Result, Runtime, RuntimeExt};

use crate::SshRuntime;

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

async fn local_git(project: &Project, args: &[&str], envs: &[(&str, String)]) -> Result<String> {
    let mut cmd = tokio::process::Command::new("git");
    cmd.arg("-C")
        .arg(project.path())
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(std::process::Stdio::null());
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
        from: Option<&str>,
        progress: &dyn Progress,
    ) -> Result<String> {
        let rev = match from {
            Some(f) => f.to_owned(),
            None => project.current_head().await?,
        };
        let commit = local_git(
            project,
            &["rev-parse", "-q", "--verify", &format!("{rev}^{{commit}}")],
            &[],
        )
        .await
        .map_err(|_| {
            Error::invalid(format!(
                "{rev:?} is not a commit of project {}: give a branch, tag or commit it has",
                project.path().display()
            ))
        })?;
        let layout = self.layout(project).await?;
        let host = self.runtime.host().to_owned();
        // One SFTP stat (cheap) instead of an exec when the repository exists.
        if !self.runtime.exists(&layout.repo.join("HEAD")?).await? {
            progress.event(ProgressEvent::Step(&format!(
                "creating the shared repository {}:{}",
                host, layout.repo
            )));
            self.runtime
                .run_checked(
                    "git init --bare",
                    ExecRequest::argv(["git", "init", "--bare", "-q", layout.repo.as_str()]),
                )
                .await?;
        }
        progress.event(ProgressEvent::Step(&format!(
            "pushing {rev} to {host}:{} (only objects the host lacks travel)",
            layout.repo
        )));
        let ssh = quote::join(self.runtime.ssh_command_words());
        let url = format!("ssh://{}{}", self.runtime.url_host(), layout.repo);
        let refspec = format!("+{commit}:{}", sync_ref(&rev));
        local_git(
            project,
            &["push", "--quiet", "--no-verify", &url, &refspec],
            &[("GIT_SSH_COMMAND", ssh)],
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
                    "--format=%h %s",
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
        Ok(out.stdout_lossy().lines().map(str::to_owned).collect())
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
