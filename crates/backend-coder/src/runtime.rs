//! [`CoderRuntime`]: a Coder workspace as a cmux runtime — the Coder CLI gets it
//! running and reachable, then every operation is the SSH backend's.

use std::ffi::OsString;
use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use cmux_backend_ssh::{SshOptions, SshRuntime};
use cmux_core::{
    BoxRead, DirEntry, Error, ExecRequest, Metadata, Process, RemotePath, Result, Runtime,
    SmallFile,
};
use tokio::sync::{Mutex, OnceCell};
use tokio::time::Instant;

use crate::cli::CoderCli;
use crate::sshconfig;
use crate::status::{Workspace, WorkspaceStatus};
use crate::target::CoderTarget;

/// Receives progress lines ("starting workspace dev...") while a workspace is started
/// or waited for. The default prints them to stderr.
#[derive(Clone)]
pub struct Progress(Arc<dyn Fn(&str) + Send + Sync>);

impl Progress {
    /// Calls `f` with every line.
    pub fn new(f: impl Fn(&str) + Send + Sync + 'static) -> Self {
        Progress(Arc::new(f))
    }

    /// Prints every line to stderr.
    pub fn stderr() -> Self {
        Progress::new(|line| eprintln!("{line}"))
    }

    /// Drops every line.
    pub fn silent() -> Self {
        Progress::new(|_| {})
    }

    /// Reports one line.
    pub fn report(&self, line: &str) {
        (self.0)(line)
    }
}

impl Default for Progress {
    fn default() -> Self {
        Progress::stderr()
    }
}

impl fmt::Debug for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Progress(..)")
    }
}

/// How [`CoderRuntime`] finds the CLI, the ssh config, and how long it waits.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct CoderOptions {
    /// The `coder` binary; default: `coder` found in [`CoderOptions::search_path`].
    /// (The cmux CLI sets it from `$CMUX_CODER_BIN`.)
    pub coder_bin: Option<PathBuf>,
    /// Directories searched for `coder` when `coder_bin` is not set, in `PATH` syntax;
    /// default [`DEFAULT_SEARCH_PATH`](crate::DEFAULT_SEARCH_PATH). (The cmux CLI sets
    /// it from `$PATH`.)
    pub search_path: Option<OsString>,
    /// The local home directory whose `.ssh/config` `coder config-ssh` writes when
    /// the SSH options name no config file; default: the user's home from the passwd
    /// database, where OpenSSH's client reads it. (The cmux CLI sets it from
    /// `$HOME`, where the Coder CLI writes.)
    pub home: Option<PathBuf>,
    /// Passed to every `coder` call as `--global-config` (default: the CLI's own).
    pub global_config: Option<PathBuf>,
    /// Options of the SSH runtime underneath. Its `config_file` (`ssh -F`) is also the
    /// file `coder config-ssh --ssh-config-file` writes, and the one `ssh -G` reads.
    pub ssh: SshOptions,
    /// Bound on starting a workspace and waiting for it to answer ssh (10 minutes).
    pub start_timeout: Duration,
    /// How often the status is polled while a build runs (2 s).
    pub poll_interval: Duration,
    /// Where progress lines go (stderr by default).
    pub progress: Progress,
}

impl Default for CoderOptions {
    fn default() -> Self {
        CoderOptions {
            coder_bin: None,
            search_path: None,
            home: None,
            global_config: None,
            ssh: SshOptions::default(),
            start_timeout: Duration::from_secs(600),
            poll_interval: Duration::from_secs(2),
            progress: Progress::default(),
        }
    }
}

impl CoderOptions {
    /// Uses this `coder` binary.
    pub fn coder_bin(mut self, path: impl Into<PathBuf>) -> Self {
        self.coder_bin = Some(path.into());
        self
    }

    /// Looks for `coder` in these directories (`PATH` syntax).
    pub fn search_path(mut self, dirs: impl Into<OsString>) -> Self {
        self.search_path = Some(dirs.into());
        self
    }

    /// Takes `home/.ssh/config` as the ssh config file when the SSH options name none.
    pub fn home(mut self, dir: impl Into<PathBuf>) -> Self {
        self.home = Some(dir.into());
        self
    }

    /// Passes `--global-config dir` to the CLI.
    pub fn global_config(mut self, dir: impl Into<PathBuf>) -> Self {
        self.global_config = Some(dir.into());
        self
    }

    /// Options of the SSH runtime underneath (and its ssh config file).
    pub fn ssh(mut self, ssh: SshOptions) -> Self {
        self.ssh = ssh;
        self
    }

    /// Bound on starting a workspace.
    pub fn start_timeout(mut self, timeout: Duration) -> Self {
        self.start_timeout = timeout;
        self
    }

    /// Status polling interval while a build runs.
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// Where progress lines go.
    pub fn progress(mut self, progress: Progress) -> Self {
        self.progress = progress;
        self
    }

    /// The ssh config file in use (`None`: OpenSSH's default).
    pub fn ssh_config_file(&self) -> Option<&Path> {
        self.ssh.config_file.as_deref()
    }

    /// The ssh config file that is read and that `coder config-ssh` writes: the SSH
    /// options' file, else `.ssh/config` in [`CoderOptions::home`]. `None` when
    /// neither names one and the passwd database has no home for this user.
    pub fn ssh_config_path(&self) -> Option<PathBuf> {
        sshconfig::config_path(self.ssh_config_file(), self.home.as_deref())
    }

    pub(crate) fn cli(&self) -> Result<CoderCli> {
        CoderCli::locate(
            self.coder_bin.as_deref(),
            self.search_path.as_deref(),
            self.global_config.as_deref(),
        )
    }

    /// The SSH options for a Coder host: see "Host keys" in the crate docs.
    pub(crate) fn ssh_for_coder(&self) -> SshOptions {
        let mut ssh = self.ssh.clone().accept_new_host_key(true);
        // `coder ssh --stdio` takes 3-5 s to set up the tunnel on a warm deployment
        // (more on a bad network): the SSH default would time out the banner exchange.
        ssh.connect_timeout = ssh.connect_timeout.max(Duration::from_secs(60));
        ssh
    }
}

/// A Coder workspace (or one agent of it) as a cmux runtime. See the crate docs.
///
/// Creating one does no I/O. The first operation (or [`Runtime::ensure_ready`]) checks
/// the CLI, the login, the ssh config (running `coder config-ssh` when needed) and the
/// workspace status, starts the workspace when it is stopped, and connects; after that
/// each operation costs what it costs on the SSH backend. An operation that fails
/// because the connection is gone re-checks the status, starts the workspace again if
/// it was stopped, and is retried once.
pub struct CoderRuntime {
    target: CoderTarget,
    label: String,
    opts: CoderOptions,
    ssh: OnceCell<SshRuntime>,
    recovering: Mutex<()>,
}

impl fmt::Debug for CoderRuntime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CoderRuntime")
            .field("target", &self.target)
            .field("ssh", &self.ssh.get())
            .finish_non_exhaustive()
    }
}

impl CoderRuntime {
    /// A runtime for `spec` (`my-ws` or `my-ws.agent`). Does no I/O.
    pub fn new(spec: &str, opts: CoderOptions) -> Result<Self> {
        let target = CoderTarget::parse(spec)?;
        Ok(CoderRuntime {
            label: target.label(),
            target,
            opts,
            ssh: OnceCell::new(),
            recovering: Mutex::new(()),
        })
    }

    /// The Coder workspace (and agent) this runtime lives in.
    pub fn target(&self) -> &CoderTarget {
        &self.target
    }

    /// The options this runtime was built with.
    pub fn options(&self) -> &CoderOptions {
        &self.opts
    }

    /// The SSH runtime underneath, once connected (for tools that reuse its
    /// ControlMaster, such as a `git push`). Prepares the workspace when needed.
    pub async fn ssh(&self) -> Result<&SshRuntime> {
        self.ssh.get_or_try_init(|| self.prepare()).await
    }

    /// Preflight, ssh config, status, start, connect. Runs once per runtime.
    async fn prepare(&self) -> Result<SshRuntime> {
        let cli = self.opts.cli()?;
        let host_part = self.target.host_part();

        // Local only (`ssh -G`): a host that already resolves needs no Coder call.
        let mut alias = find_alias(&self.opts, &host_part).await?;
        if let Some(alias) = &alias {
            let ssh = SshRuntime::new(alias.clone(), self.opts.ssh_for_coder())?;
            // A live master means a running workspace: Coder closes the tunnel when
            // the workspace stops. This keeps a warm CLI call free of Coder API calls.
            if master_alive(&ssh, alias).await {
                ssh.ensure_ready().await?;
                return Ok(ssh);
            }
        }

        let workspace = self.lookup(&cli).await?;
        if alias.is_none() {
            alias = Some(self.configure_ssh(&cli).await?);
        }
        let alias = alias.ok_or_else(|| Error::backend("coder", "no ssh alias"))?;
        let ssh = SshRuntime::new(alias, self.opts.ssh_for_coder())?;
        let deadline = Instant::now() + self.opts.start_timeout;
        let started = self.ensure_running(&cli, workspace, deadline).await?;
        self.wait_for_ssh(&ssh, started, deadline).await?;
        Ok(ssh)
    }

    /// The workspace from `coder list`, or a clear error when it is missing.
    async fn lookup(&self, cli: &CoderCli) -> Result<Workspace> {
        let name = &self.target.workspace;
        cli.workspace(name).await?.ok_or_else(|| {
            Error::backend(
                "coder",
                format!(
                    "no Coder workspace named {name:?} for the logged-in user; `coder list` shows \
                     yours, `coder create {name}` makes one"
                ),
            )
        })
    }

    /// Runs `coder config-ssh --yes --use-previous-options` and finds the alias again.
    async fn configure_ssh(&self, cli: &CoderCli) -> Result<String> {
        let config = self.opts.ssh_config_file();
        let shown = self
            .opts
            .ssh_config_path()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "~/.ssh/config".into());
        self.opts.progress.report(&format!(
            "coder: {} does not resolve to Coder's ProxyCommand; running `coder config-ssh --yes --use-previous-options` ({shown})",
            self.label
        ));
        cli.config_ssh(config).await?;
        find_alias(&self.opts, &self.target.host_part())
            .await?
            .ok_or_else(|| {
                Error::backend(
                    "coder",
                    format!(
                    "{} still does not resolve to Coder's ProxyCommand after `coder config-ssh`; \
                     look at `ssh -G {}{} | grep proxycommand`: an earlier `Host` block in {shown} \
                     probably overrides the Coder section (OpenSSH uses the first value)",
                    self.label,
                    config
                        .map(|c| format!("-F {} ", c.display()))
                        .unwrap_or_default(),
                    self.label
                ),
                )
            })
    }

    /// Drives the workspace to `running`; returns true when it had to start or wait.
    async fn ensure_running(
        &self,
        cli: &CoderCli,
        mut workspace: Workspace,
        deadline: Instant,
    ) -> Result<bool> {
        let name = self.target.workspace.clone();
        let progress = &self.opts.progress;
        let mut waited = false;
        let mut starts = 0;
        let mut last_note = None;
        loop {
            let note = |status: &WorkspaceStatus, what: &str| {
                format!("coder: workspace {name} is {status}; {what}")
            };
            match &workspace.status {
                WorkspaceStatus::Running => {
                    self.check_agent(&workspace)?;
                    if waited {
                        progress.report(&format!("coder: workspace {name} is running"));
                    }
                    return Ok(waited);
                }
                WorkspaceStatus::Stopped | WorkspaceStatus::Canceled => {
                    if starts >= 2 {
                        return Err(Error::backend(
                            "coder",
                            format!(
                                "workspace {name:?} stopped again right after `coder start {name}`; \
                                 look at its build logs (`coder show {name}`, or the dashboard)"
                            ),
                        ));
                    }
                    starts += 1;
                    waited = true;
                    progress.report(&format!(
                        "coder: workspace {name} is {}; starting it (`coder start {name} -y`)",
                        workspace.status
                    ));
                    let left = deadline.saturating_duration_since(Instant::now());
                    if let Err(e) = cli.start(&name, left, progress).await {
                        // A failed build shows as `failed`: report that, with its fix.
                        if let Ok(Some(w)) = cli.workspace(&name).await {
                            if w.status == WorkspaceStatus::Failed {
                                return Err(self.failed_error());
                            }
                        }
                        return Err(match e {
                            Error::TimedOut { .. } => self.timed_out("starting"),
                            other => other,
                        });
                    }
                }
                WorkspaceStatus::Starting | WorkspaceStatus::Pending => {
                    waited = true;
                    let msg = note(&workspace.status, "waiting for its build to finish");
                    if last_note.as_ref() != Some(&msg) {
                        progress.report(&msg);
                        last_note = Some(msg);
                    }
                    self.pause(deadline, &workspace.status).await?;
                }
                WorkspaceStatus::Stopping | WorkspaceStatus::Canceling => {
                    waited = true;
                    let msg = note(
                        &workspace.status,
                        "waiting for it to stop before starting it again",
                    );
                    if last_note.as_ref() != Some(&msg) {
                        progress.report(&msg);
                        last_note = Some(msg);
                    }
                    self.pause(deadline, &workspace.status).await?;
                }
                WorkspaceStatus::Failed => return Err(self.failed_error()),
                WorkspaceStatus::Deleting | WorkspaceStatus::Deleted => {
                    return Err(Error::backend(
                        "coder",
                        format!(
                            "Coder workspace {name:?} is {}; create it again (`coder create {name}`) \
                             or use another one (`coder list`)",
                            workspace.status
                        ),
                    ))
                }
                WorkspaceStatus::Other(s) => {
                    return Err(Error::backend(
                        "coder",
                        format!(
                            "Coder workspace {name:?} has a status cmux does not know ({s:?}); \
                             `coder show {name}` tells more, `coder start {name}` may help"
                        ),
                    ))
                }
            }
            workspace = self.lookup(cli).await?;
        }
    }

    async fn pause(&self, deadline: Instant, status: &WorkspaceStatus) -> Result<()> {
        if Instant::now() >= deadline {
            return Err(self.timed_out(&format!("waiting while {status}")));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        tokio::time::sleep(self.opts.poll_interval.min(left)).await;
        Ok(())
    }

    fn timed_out(&self, what: &str) -> Error {
        Error::TimedOut {
            host: self.label.clone(),
            what: format!(
                "{what} Coder workspace {} (raise the start timeout, or look at `coder show {}`)",
                self.target.workspace, self.target.workspace
            ),
            secs: self.opts.start_timeout.as_secs_f64(),
        }
    }

    fn failed_error(&self) -> Error {
        let name = &self.target.workspace;
        Error::backend(
            "coder",
            format!(
                "Coder workspace {name:?} is in failed state (its last build failed); look at the \
                 build logs (`coder show {name}` or the dashboard), fix the cause, then \
                 `coder start {name}`"
            ),
        )
    }

    /// A running workspace must have the agent the user named (or only one agent).
    fn check_agent(&self, workspace: &Workspace) -> Result<()> {
        if workspace.agents.is_empty() {
            return Ok(());
        }
        let name = &self.target.workspace;
        match &self.target.agent {
            Some(agent) if !workspace.agents.contains(agent) => Err(Error::backend(
                "coder",
                format!(
                    "Coder workspace {name:?} has no agent {agent:?}; its agents: {} (use {name}.<agent>)",
                    workspace.agents.join(", ")
                ),
            )),
            None if workspace.agents.len() > 1 => Err(Error::backend(
                "coder",
                format!(
                    "Coder workspace {name:?} has several agents ({}); name one: {name}.<agent>",
                    workspace.agents.join(", ")
                ),
            )),
            _ => Ok(()),
        }
    }

    /// Connects; after a start, keeps trying until the agent answers or the deadline.
    async fn wait_for_ssh(&self, ssh: &SshRuntime, patient: bool, deadline: Instant) -> Result<()> {
        let mut told = false;
        loop {
            match ssh.ensure_ready().await {
                Ok(()) => return Ok(()),
                Err(e) if e.is_connection() && patient && Instant::now() < deadline => {
                    if !told {
                        self.opts
                            .progress
                            .report(&format!("coder: waiting for {} to answer ssh", self.label));
                        told = true;
                    }
                    let left = deadline.saturating_duration_since(Instant::now());
                    tokio::time::sleep(self.opts.poll_interval.min(left)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// After a connection error: starts the workspace again when it stopped. True when
    /// the operation is worth retrying.
    async fn recover(&self, ssh: &SshRuntime) -> Result<bool> {
        let _one_at_a_time = self.recovering.lock().await;
        let cli = self.opts.cli()?;
        let workspace = self.lookup(&cli).await?;
        if workspace.status == WorkspaceStatus::Running {
            // Another operation may have restarted it while this one waited.
            return Ok(ssh.ensure_ready().await.is_ok());
        }
        tracing::info!(workspace = %self.target.workspace, status = %workspace.status, "connection lost; restarting the Coder workspace");
        let deadline = Instant::now() + self.opts.start_timeout;
        self.ensure_running(&cli, workspace, deadline).await?;
        self.wait_for_ssh(ssh, true, deadline).await?;
        Ok(true)
    }

    /// Runs `op` on the SSH runtime; on a connection error, recovers and retries once.
    async fn with_recovery<T, F, Fut>(&self, op: F) -> Result<T>
    where
        F: Fn(SshRuntime) -> Fut + Send,
        Fut: Future<Output = Result<T>> + Send,
        T: Send,
    {
        let ssh = self.ssh().await?.clone();
        match op(ssh.clone()).await {
            Err(e) if e.is_connection() => match self.recover(&ssh).await {
                Ok(true) => op(ssh).await,
                Ok(false) => Err(e),
                Err(recovery) => {
                    tracing::debug!(error = %e, "connection error before recovery failed");
                    Err(recovery)
                }
            },
            other => other,
        }
    }
}

/// The first candidate alias that resolves to Coder's ProxyCommand.
async fn find_alias(opts: &CoderOptions, host_part: &str) -> Result<Option<String>> {
    let config = opts.ssh_config_file();
    let patterns = opts
        .ssh_config_path()
        .and_then(|p| std::fs::read_to_string(p).ok())
        .map(|text| sshconfig::section_hosts(&text))
        .unwrap_or_default();
    for alias in sshconfig::candidates(host_part, &patterns) {
        if sshconfig::resolve(config, &alias).await?.is_coder() {
            return Ok(Some(alias));
        }
    }
    Ok(None)
}

/// `ssh -O check` on the runtime's first control socket (local, no network).
async fn master_alive(ssh: &SshRuntime, alias: &str) -> bool {
    let words = ssh.ssh_command_words();
    let Some((program, args)) = words.split_first() else {
        return false;
    };
    tokio::process::Command::new(program)
        .args(args)
        .args(["-O", "check", "--", alias])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .status()
        .await
        .is_ok_and(|s| s.success())
}

#[async_trait]
impl Runtime for CoderRuntime {
    fn host(&self) -> &str {
        &self.label
    }

    fn kind(&self) -> &str {
        "coder"
    }

    async fn ensure_ready(&self) -> Result<()> {
        self.with_recovery(|ssh| async move { ssh.ensure_ready().await })
            .await
    }

    async fn exec(&self, req: ExecRequest) -> Result<Process> {
        self.with_recovery(|ssh| {
            let req = req.clone();
            async move { ssh.exec(req).await }
        })
        .await
    }

    async fn read_file(&self, path: &RemotePath) -> Result<Vec<u8>> {
        self.with_recovery(|ssh| async move { ssh.read_file(path).await })
            .await
    }

    async fn open_read(&self, path: &RemotePath) -> Result<BoxRead> {
        self.with_recovery(|ssh| async move { ssh.open_read(path).await })
            .await
    }

    async fn write_file(&self, path: &RemotePath, data: &[u8]) -> Result<()> {
        self.with_recovery(|ssh| async move { ssh.write_file(path, data).await })
            .await
    }

    async fn stat(&self, path: &RemotePath) -> Result<Metadata> {
        self.with_recovery(|ssh| async move { ssh.stat(path).await })
            .await
    }

    async fn read_file_up_to(&self, path: &RemotePath, max_len: u64) -> Result<SmallFile> {
        self.with_recovery(|ssh| async move { ssh.read_file_up_to(path, max_len).await })
            .await
    }

    async fn read_dir(&self, path: &RemotePath) -> Result<Vec<DirEntry>> {
        self.with_recovery(|ssh| async move { ssh.read_dir(path).await })
            .await
    }

    async fn create_dir_all(&self, path: &RemotePath) -> Result<()> {
        self.with_recovery(|ssh| async move { ssh.create_dir_all(path).await })
            .await
    }

    async fn remove(&self, path: &RemotePath, recursive: bool) -> Result<()> {
        self.with_recovery(|ssh| async move { ssh.remove(path, recursive).await })
            .await
    }

    async fn rename(&self, from: &RemotePath, to: &RemotePath) -> Result<()> {
        self.with_recovery(|ssh| async move { ssh.rename(from, to).await })
            .await
    }

    async fn resolve_path(&self, path: &str) -> Result<RemotePath> {
        self.with_recovery(|ssh| async move { ssh.resolve_path(path).await })
            .await
    }

    async fn grep(
        &self,
        req: &cmux_core::engine::GrepRequest,
    ) -> Result<Option<cmux_core::engine::GrepReply>> {
        self.with_recovery(|ssh| async move { ssh.grep(req).await })
            .await
    }

    async fn glob(
        &self,
        req: &cmux_core::engine::GlobRequest,
    ) -> Result<Option<cmux_core::engine::GlobReply>> {
        self.with_recovery(|ssh| async move { ssh.glob(req).await })
            .await
    }

    async fn edit(
        &self,
        path: &RemotePath,
        spec: &cmux_core::engine::EditSpec,
    ) -> Result<Option<cmux_core::engine::EditReply>> {
        self.with_recovery(|ssh| async move { ssh.edit(path, spec).await })
            .await
    }
}
