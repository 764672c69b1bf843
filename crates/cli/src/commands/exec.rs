//! `cmux exec`: run a command in a workspace, streaming, with the command's exit code.

use std::io::IsTerminal;
use std::time::Duration;

use anyhow::Result;
use cmux_core::{BoxRead, BoxWrite, ExecRequest, ExitStatus, Stdin};
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use super::{resolve_in, Ctx};
use crate::args::ExecArgs;
use crate::error::CliError;

/// How long output may keep flowing after the command exited (a background child can
/// hold the pipes open forever).
const DRAIN_GRACE: Duration = Duration::from_millis(500);

/// Runs the command; returns its shell exit code.
pub async fn run(ctx: &Ctx, args: ExecArgs) -> Result<i32> {
    let (record, runtime) = ctx.workspace(&args.name).await?;
    let mut req = if args.command.len() == 1 {
        ExecRequest::script(args.command[0].clone())
    } else {
        ExecRequest::argv(args.command.clone())
    };
    let cwd = match &args.cwd {
        Some(dir) => resolve_in(&runtime, &record.path, dir).await?,
        None => record.path.clone(),
    };
    req = req.cwd(cwd);
    for pair in &args.env {
        let Some((key, value)) = pair.split_once('=') else {
            return Err(CliError::usage(format!(
                "--env {pair:?}: write it as NAME=VALUE"
            )));
        };
        req = req.env(key, value);
    }
    if let Some(secs) = args.timeout {
        if !(secs.is_finite() && secs > 0.0) {
            return Err(CliError::usage(format!(
                "--timeout {secs}: give a positive number of seconds"
            )));
        }
        req = req.timeout(Duration::from_secs_f64(secs));
    }
    // Decision: a terminal on stdin means a human, whose keystrokes are not meant for
    // an agent's command: /dev/null. A pipe or file is passed through.
    let pipe_stdin = !std::io::stdin().is_terminal();
    if pipe_stdin {
        req = req.stdin(Stdin::Piped);
    }
    // The command runs in its own process group, so Ctrl-C on the terminal does not
    // reach it: forward SIGINT/SIGTERM as a cancel that kills the whole group.
    let cancel = CancellationToken::new();
    req = req.cancel_token(cancel.clone());
    spawn_signal_forwarder(cancel);

    let mut process = runtime.exec(req).await?;
    if let Some(stdin) = process.stdin.take() {
        tokio::spawn(copy_stdin(stdin));
    }
    let out = tokio::spawn(pump(process.stdout.take(), tokio::io::stdout()));
    let err = tokio::spawn(pump(process.stderr.take(), tokio::io::stderr()));
    let status = process.wait().await?;
    let _ = tokio::time::timeout(DRAIN_GRACE, async {
        let _ = out.await;
        let _ = err.await;
    })
    .await;
    match status {
        ExitStatus::TimedOut => err!(
            "cmux: command timed out after {}s; its process group was killed",
            args.timeout.unwrap_or_default()
        ),
        ExitStatus::Cancelled => err!("cmux: interrupted; the command was killed"),
        _ => {}
    }
    Ok(status.shell_code())
}

/// Copies a process stream to ours as it comes, flushing each chunk (live output).
async fn pump<W: AsyncWrite + Unpin>(stream: Option<BoxRead>, mut to: W) {
    let Some(mut stream) = stream else { return };
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                // Our reader went away (`| head`): keep draining so the command is not
                // blocked on a full pipe, but stop writing.
                if to.write_all(&buf[..n]).await.is_err() || to.flush().await.is_err() {
                    let mut sink = tokio::io::sink();
                    let _ = tokio::io::copy(&mut stream, &mut sink).await;
                    break;
                }
            }
        }
    }
}

async fn copy_stdin(mut to: BoxWrite) {
    let mut stdin = tokio::io::stdin();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match stdin.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).await.is_err() {
                    return;
                }
                let _ = to.flush().await;
            }
        }
    }
    let _ = to.shutdown().await;
}

fn spawn_signal_forwarder(cancel: CancellationToken) {
    tokio::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut int), Ok(mut term)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) else {
            return;
        };
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
        cancel.cancel();
    });
}
