//! One function per subcommand; each returns the exit code.

mod doctor;
mod exec;
mod files;
mod git_relay;
mod host_helper;
mod jobs;
mod lifecycle;
mod list;
mod mcp;
mod shell;
mod transfer;

use anyhow::Result;
use cmux_core::{RemotePath, SharedRuntime};

use crate::args::Cmd;
use crate::backends;
use crate::home::CmuxHome;
use crate::registry::{Record, Registry};

/// The state every command starts from.
pub struct Ctx {
    /// `$CMUX_HOME`.
    pub home: CmuxHome,
    /// The workspace registry.
    pub registry: Registry,
}

impl Ctx {
    fn open() -> Result<Ctx> {
        let home = CmuxHome::from_env()?;
        home.ensure_private()?;
        let registry = Registry::open(home.workspaces_dir())?;
        Ok(Ctx { home, registry })
    }

    /// A workspace's record and its runtime, ready for use.
    pub async fn workspace(&self, name: &str) -> Result<(Record, SharedRuntime)> {
        let record = self.registry.load(name)?;
        let runtime = backends::runtime_for(&record.backend, &self.home).await?;
        runtime.ensure_ready().await?;
        Ok((record, runtime))
    }
}

/// Runs a subcommand.
pub async fn run(cmd: Cmd) -> Result<i32> {
    if let Cmd::HostHelper(args) = &cmd {
        return host_helper::run(args);
    }
    if let Cmd::GitRelay(args) = &cmd {
        return Ok(git_relay::run(args));
    }
    if let Cmd::Doctor(args) = &cmd {
        // Doctor must work even when CMUX_HOME is broken: it is what diagnoses that.
        return doctor::run(args).await;
    }
    let ctx = Ctx::open()?;
    match cmd {
        Cmd::New(args) => lifecycle::new(&ctx, args).await,
        Cmd::List(args) => list::run(&ctx, &args),
        Cmd::Exec(args) => exec::run(&ctx, args).await,
        Cmd::Jobs(args) => jobs::list(&ctx, &args).await,
        Cmd::JobOutput(args) => jobs::output(&ctx, &args).await,
        Cmd::JobKill(args) => jobs::kill(&ctx, &args).await,
        Cmd::Cat(args) => files::cat(&ctx, &args).await,
        Cmd::Write(args) => files::write(&ctx, &args).await,
        Cmd::Edit(args) => files::edit(&ctx, args).await,
        Cmd::Ls(args) => files::ls(&ctx, &args).await,
        Cmd::Pull(args) => transfer::pull(&ctx, &args).await,
        Cmd::Push(args) => transfer::push(&ctx, &args).await,
        Cmd::Rm(args) => lifecycle::rm(&ctx, &args).await,
        Cmd::Rename(args) => lifecycle::rename(&ctx, &args).await,
        Cmd::Fork(args) => lifecycle::fork(&ctx, &args).await,
        Cmd::Doctor(_) => Ok(0),
        Cmd::Mcp(args) => mcp::run(&ctx, &args).await,
        Cmd::Shell(args) => shell::run(&ctx, &args).await,
        Cmd::HostHelper(_) | Cmd::GitRelay(_) => Ok(0),
    }
}

/// `path` as given to cat/write/edit/ls/--cwd: `~` forms through the runtime,
/// absolute as is, relative against the workspace directory.
pub async fn resolve_in(
    runtime: &SharedRuntime,
    root: &RemotePath,
    path: &str,
) -> Result<RemotePath> {
    if path.starts_with('~') {
        return Ok(runtime.resolve_path(path).await?);
    }
    Ok(root.join(path)?.normalize())
}

/// `--cwd dir` of `cmux exec`, resolved in the workspace and checked to be a
/// directory: a clear error before anything runs, instead of bash's raw `cd` failure
/// and exit 126. Costs one `stat` (one round trip on SSH), only when `--cwd` is given.
pub async fn resolve_cwd(
    runtime: &SharedRuntime,
    record: &Record,
    dir: &str,
) -> Result<RemotePath> {
    let path = resolve_in(runtime, &record.path, dir).await?;
    let problem = match runtime.stat(&path).await {
        Ok(meta) if meta.kind == cmux_core::FileKind::Dir => return Ok(path),
        Ok(_) => "is not a directory",
        Err(cmux_core::Error::NotFound { .. }) => "does not exist",
        Err(e) => return Err(e.into()),
    };
    Err(crate::error::CliError::failure(format!(
        "--cwd {dir:?}: {path} {problem} on {} (workspace {}); nothing was run: give a directory of the workspace (see `cmux ls {}`)",
        runtime.host(),
        record.name,
        record.name,
    )))
}
