//! `cmux new`, `rm`, `rename`, `fork`: the registry around the core lifecycle.

use std::path::PathBuf;

use anyhow::{Context, Result};
use cmux_core::workspace::{validate_name, CreateOptions, DeleteOutcome, Lifecycle, Project};

use super::Ctx;
use crate::args::{ForkArgs, NewArgs, RenameArgs, RmArgs};
use crate::backends::{self, BackendFlags};
use crate::error::CliError;
use crate::progress::StderrProgress;
use crate::registry::{duplicate_error, BackendConfig, Record, State};

fn project_dir(arg: Option<PathBuf>) -> Result<PathBuf> {
    let cwd = std::env::current_dir().context("reading the current directory")?;
    let dir = match arg {
        Some(dir) if dir.is_absolute() => dir,
        Some(dir) => cwd.join(dir),
        None => cwd,
    };
    if !dir.exists() {
        return Err(CliError::failure(format!(
            "project directory {} does not exist: pass a git repository with --project DIR (default: the current directory)",
            dir.display()
        )));
    }
    Ok(dir)
}

fn print_record(record: &Record, json: bool, verb: &str) -> Result<()> {
    if json {
        out!("{}", serde_json::to_string_pretty(record)?);
    } else {
        let branch = match (&record.branch, record.in_place) {
            (_, true) => "in place".to_owned(),
            (Some(b), false) => format!("branch {b}"),
            (None, false) => "detached".to_owned(),
        };
        out!(
            "{verb} workspace {} ({}, {branch}) at {}",
            record.name,
            record.backend.label(),
            record.path
        );
    }
    Ok(())
}

async fn run_init(lifecycle: &Lifecycle, record: &Record) -> Result<()> {
    lifecycle
        .init(&record.workspace(), &StderrProgress::new())
        .await
        .map(|_| ())
        .or_else(|e| {
            // The workspace exists and is usable: a hook that could not even start is
            // a warning, like a hook that failed.
            err!("cmux: warning: init hook not run: {e}");
            Ok(())
        })
}

/// `cmux new`.
pub async fn new(ctx: &Ctx, args: NewArgs) -> Result<i32> {
    validate_name(&args.name)?;
    let backend = backends::backend_from_flags(&BackendFlags {
        ssh: args.ssh.clone(),
        coder: args.coder.clone(),
        pipe: args.pipe.clone(),
        dir: args.dir.clone(),
        src_base: args.src_base.clone(),
        accept_new_host_key: args.accept_new_host_key,
    })
    .await?;
    if ctx.registry.exists(&args.name) {
        return Err(duplicate_error(
            &args.name,
            ctx.registry.load(&args.name).ok(),
        ));
    }
    let project = Project::open(&project_dir(args.project)?).await?;
    let lifecycle = backends::lifecycle_for(&backend, &ctx.home).await?;
    let options = CreateOptions {
        branch: args.branch,
        from: args.from,
        // A pipe workspace is an existing directory at the other end, used as it is.
        in_place: args.in_place || matches!(backend, BackendConfig::Pipe { .. }),
    };
    let planned = lifecycle.plan(&args.name, &project, &options).await?;
    let mut record = Record::new(&planned, backend, State::Creating);
    // Reserved before any work, released if creation fails.
    let reservation = ctx.registry.reserve(&record)?;
    // The lifecycle warns when the project is dirty; a remote workspace says it
    // anyway, so nobody expects their local edits there.
    let remote_and_clean =
        record.backend != BackendConfig::Local && !project.has_uncommitted_changes().await?;
    let ws = lifecycle
        .create(&args.name, &project, &options, &StderrProgress::new())
        .await?;
    if remote_and_clean {
        err!(
            "cmux: note: the workspace has the project's commits; uncommitted local changes are never carried to {}",
            record.backend.label()
        );
    }
    record.update_from(&ws);
    record.state = State::Ready;
    ctx.registry.save(&record)?;
    reservation.keep();
    run_init(&lifecycle, &record).await?;
    print_record(&record, args.json, "created")?;
    Ok(0)
}

/// `cmux rm`.
pub async fn rm(ctx: &Ctx, args: &RmArgs) -> Result<i32> {
    validate_name(&args.name)?;
    if !ctx.registry.exists(&args.name) {
        err!(
            "cmux: no workspace named {:?}: nothing to remove",
            args.name
        );
        return Ok(0);
    }
    let record = ctx.registry.load(&args.name)?;
    let lifecycle = backends::lifecycle_for(&record.backend, &ctx.home).await?;
    let outcome = lifecycle
        .delete(&record.workspace(), args.force, &StderrProgress::new())
        .await?;
    ctx.registry.remove(&record.name)?;
    let note = match outcome {
        DeleteOutcome::Removed => format!("removed {}", record.path),
        DeleteOutcome::AlreadyGone => format!("{} was already gone", record.path),
        DeleteOutcome::KeptInPlace => format!("in place: {} kept", record.path),
    };
    let remote = record.backend != BackendConfig::Local;
    match (&record.branch, outcome) {
        // A local workspace's branch lives in the project and stays.
        (Some(branch), _) if !record.in_place && !remote => out!(
            "removed workspace {} ({note}; branch {branch} kept)",
            record.name
        ),
        // A remote one's lives in the host's shared repository, which drops it with
        // the worktree: rm refused while it had commits the project lacks, unless
        // --force.
        (Some(branch), DeleteOutcome::Removed) if remote => {
            let commits = if args.force {
                "with --force: any commits only it had are gone"
            } else {
                "the project has all its commits"
            };
            out!(
                "removed workspace {} ({}: {note}; branch {branch} deleted on the host, {commits})",
                record.name,
                record.backend.label()
            )
        }
        (Some(branch), DeleteOutcome::AlreadyGone) if remote => out!(
            "removed workspace {} ({}: {note}; branch {branch} left in the host's shared repository)",
            record.name,
            record.backend.label()
        ),
        _ if remote => out!(
            "removed workspace {} ({}: {note})",
            record.name,
            record.backend.label()
        ),
        _ => out!("removed workspace {} ({note})", record.name),
    }
    Ok(0)
}

/// `cmux rename`.
pub async fn rename(ctx: &Ctx, args: &RenameArgs) -> Result<i32> {
    validate_name(&args.new)?;
    let old = ctx.registry.load(&args.old)?;
    if args.old == args.new {
        return Ok(0);
    }
    if ctx.registry.exists(&args.new) {
        return Err(duplicate_error(
            &args.new,
            ctx.registry.load(&args.new).ok(),
        ));
    }
    let lifecycle = backends::lifecycle_for(&old.backend, &ctx.home).await?;
    let mut record = old.clone();
    record.name = args.new.clone();
    record.state = State::Creating;
    let reservation = ctx.registry.reserve(&record)?;
    let ws = lifecycle
        .rename(&old.workspace(), &args.new, &StderrProgress::new())
        .await?;
    record.update_from(&ws);
    record.state = old.state;
    ctx.registry.save(&record)?;
    reservation.keep();
    ctx.registry.remove(&old.name)?;
    print_record(&record, false, "renamed")?;
    Ok(0)
}

/// `cmux fork`.
pub async fn fork(ctx: &Ctx, args: &ForkArgs) -> Result<i32> {
    validate_name(&args.new)?;
    let source = ctx.registry.load(&args.source)?;
    if ctx.registry.exists(&args.new) {
        return Err(duplicate_error(
            &args.new,
            ctx.registry.load(&args.new).ok(),
        ));
    }
    let lifecycle = backends::lifecycle_for(&source.backend, &ctx.home).await?;
    let mut record = source.clone();
    record.name = args.new.clone();
    record.in_place = false;
    record.state = State::Creating;
    record.created_at = crate::registry::now_secs();
    let reservation = ctx.registry.reserve(&record)?;
    let ws = lifecycle
        .fork(&source.workspace(), &args.new, &StderrProgress::new())
        .await?;
    record.update_from(&ws);
    record.state = State::Ready;
    ctx.registry.save(&record)?;
    reservation.keep();
    run_init(&lifecycle, &record).await?;
    print_record(&record, false, "forked")?;
    Ok(0)
}
