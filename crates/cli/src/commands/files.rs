//! `cmux cat`, `write`, `edit`, `ls`: file operations in a workspace. Relative paths
//! are relative to the workspace directory.

use anyhow::{Context, Result};
use cmux_core::tools::{edit_file, list_dir, EditFileInput, ListDirInput, ToolContext};
use cmux_core::RuntimeExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{resolve_in, Ctx};
use crate::args::{EditArgs, LsArgs, PathArgs};

/// Streams the file to stdout (never held whole in memory).
pub async fn cat(ctx: &Ctx, args: &PathArgs) -> Result<i32> {
    let (record, runtime) = ctx.workspace(&args.name).await?;
    let path = resolve_in(&runtime, &record.path, &args.path).await?;
    let mut reader = runtime.open_read(&path).await?;
    let mut out = tokio::io::stdout();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = reader
            .read(&mut buf)
            .await
            .with_context(|| format!("{}: reading {path}", runtime.host()))?;
        if n == 0 {
            break;
        }
        if let Err(e) = out.write_all(&buf[..n]).await {
            // `cmux cat big | head`: the reader is satisfied; not an error.
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                return Ok(0);
            }
            return Err(e).context("writing to standard output");
        }
    }
    match out.flush().await {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(e).context("writing to standard output")
        }
        _ => Ok(0),
    }
}

/// Replaces the file with stdin, atomically; missing parent directories are created.
pub async fn write(ctx: &Ctx, args: &PathArgs) -> Result<i32> {
    let (record, runtime) = ctx.workspace(&args.name).await?;
    let path = resolve_in(&runtime, &record.path, &args.path).await?;
    let mut data = Vec::new();
    tokio::io::stdin()
        .read_to_end(&mut data)
        .await
        .context("reading standard input")?;
    if let Some(parent) = path.parent() {
        if !runtime.exists(&parent).await? {
            runtime.create_dir_all(&parent).await?;
        }
    }
    runtime.write_file(&path, &data).await?;
    Ok(0)
}

/// Replaces an exact string (the agent tool `edit_file`).
pub async fn edit(ctx: &Ctx, args: EditArgs) -> Result<i32> {
    let (record, runtime) = ctx.workspace(&args.name).await?;
    let tool = ToolContext::new(runtime, record.path.clone());
    let out = edit_file(
        &tool,
        EditFileInput {
            path: args.path,
            old_string: args.old,
            new_string: args.new,
            replace_all: args.all,
        },
    )
    .await?;
    err!("cmux: {}", out.to_text().trim_end());
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
    .await?;
    if args.json {
        out!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        let text = out.to_text();
        out!("{}", text.trim_end());
    }
    Ok(0)
}
