//! `cmux cat`, `write`, `edit`, `ls`: file operations in a workspace. Relative paths
//! are relative to the workspace directory. Errors speak CLI words (`--all`, `cmux
//! cat`), not the agent tools' (`replace_all`, `read_file`).

use anyhow::{Context, Result};
use cmux_core::tools::{edit_file, list_dir, EditFileInput, ListDirInput, ToolContext};
use cmux_core::{Error, RemotePath, RuntimeExt, SharedRuntime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{resolve_in, Ctx};
use crate::args::{EditArgs, LsArgs, PathArgs, WriteArgs};
use crate::error::CliError;
use crate::words::cli_error;

/// Streams the file to stdout (never held whole in memory).
pub async fn cat(ctx: &Ctx, args: &PathArgs) -> Result<i32> {
    let (record, runtime) = ctx.workspace(&args.name).await?;
    let path = resolve_in(&runtime, &record.path, &args.path).await?;
    tracing::debug!(workspace = %record.name, host = runtime.host(), %path, "cat");
    let mut reader = runtime.open_read(&path).await.map_err(cli_error)?;
    let mut out = tokio::io::stdout();
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0u64;
    loop {
        let n = reader
            .read(&mut buf)
            .await
            .with_context(|| format!("{}: reading {path}", runtime.host()))?;
        if n == 0 {
            break;
        }
        total += n as u64;
        if let Err(e) = out.write_all(&buf[..n]).await {
            // `cmux cat big | head`: the reader is satisfied; not an error.
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                tracing::debug!(%path, bytes = total, "cat: stdout closed by its reader");
                return Ok(0);
            }
            return Err(e).context("writing to standard output");
        }
    }
    tracing::debug!(%path, bytes = total, "cat done");
    match out.flush().await {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(e).context("writing to standard output")
        }
        _ => Ok(0),
    }
}

/// Replaces the file with stdin, atomically; missing parent directories are created.
/// A read-only or foreign file is refused unless `--force`.
pub async fn write(ctx: &Ctx, args: &WriteArgs) -> Result<i32> {
    let (record, runtime) = ctx.workspace(&args.name).await?;
    let path = resolve_in(&runtime, &record.path, &args.path).await?;
    let mut data = Vec::new();
    tokio::io::stdin()
        .read_to_end(&mut data)
        .await
        .context("reading standard input")?;
    tracing::debug!(workspace = %record.name, host = runtime.host(), %path, bytes = data.len(), force = args.force, "write");
    match runtime.write_file_creating_dirs(&path, &data).await {
        Ok(()) => Ok(0),
        Err(Error::NotWritable { path: target, .. }) if args.force => {
            replace_by_new_file(&runtime, &path, &target, &data).await?;
            Ok(0)
        }
        Err(e) => Err(refusal_or(e, "write")),
    }
}

/// `--force`: removes `target` (the file a write of `path` would replace: the link's
/// target through a symlink), then writes `data` as a new file through `path`.
async fn replace_by_new_file(
    runtime: &SharedRuntime,
    path: &RemotePath,
    target: &RemotePath,
    data: &[u8],
) -> Result<()> {
    tracing::debug!(%target, "--force: removing the file, then writing a new one");
    runtime.remove(target, false).await.map_err(cli_error)?;
    runtime.write_file(path, data).await.map_err(cli_error)
}

/// A [`Error::NotWritable`] with the CLI's way out (`--force` on `command`); any other
/// error in CLI words.
fn refusal_or(err: Error, command: &str) -> anyhow::Error {
    match err {
        Error::NotWritable { host, path, reason } => CliError::failure(format!(
            "{host}: {path}: {reason}; not replaced: make it writable (`chmod u+w`), or pass --force to `cmux {command}` to replace it with a new file of yours"
        )),
        other => cli_error(other),
    }
}

/// Replaces an exact string (the agent tool `edit_file`). A read-only or foreign file
/// is refused unless `--force`.
pub async fn edit(ctx: &Ctx, args: EditArgs) -> Result<i32> {
    let (record, runtime) = ctx.workspace(&args.name).await?;
    tracing::debug!(workspace = %record.name, host = runtime.host(), path = %args.path, all = args.all, force = args.force, "edit");
    let tool = ToolContext::new(runtime.clone(), record.path.clone());
    let input = EditFileInput {
        path: args.path.clone(),
        old_string: args.old,
        new_string: args.new,
        replace_all: args.all,
    };
    let out = match edit_file(&tool, input.clone()).await {
        Ok(out) => out,
        Err(Error::NotWritable { path: target, .. }) if args.force => {
            // The edit itself applied (the refusal comes at the write): make the file a
            // new one of ours with the same bytes, then edit that.
            let bytes = runtime.read_file(&target).await.map_err(cli_error)?;
            let path = resolve_in(&runtime, &record.path, &args.path).await?;
            replace_by_new_file(&runtime, &path, &target, &bytes).await?;
            edit_file(&tool, input).await.map_err(cli_error)?
        }
        Err(e) => return Err(refusal_or(e, "edit")),
    };
    err!(
        "cmux: {}",
        crate::words::in_cli_words(out.to_text().trim_end())
    );
    Ok(0)
}

/// Lists one directory level (the agent tool `list_dir`).
pub async fn ls(ctx: &Ctx, args: &LsArgs) -> Result<i32> {
    let (record, runtime) = ctx.workspace(&args.name).await?;
    let tool = ToolContext::new(runtime, record.path.clone());
    let out = list_dir(
        &tool,
        ListDirInput {
            path: args.path.clone(),
        },
    )
    .await
    .map_err(cli_error)?;
    if args.json {
        out!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        let text = out.to_text();
        out!("{}", text.trim_end());
    }
    Ok(0)
}
