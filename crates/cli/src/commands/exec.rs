//! `cmux exec`: run a command in a workspace, streaming, with the command's exit code.
//!
//! cmux stands in for the command in the user's pipeline, so it ends the way the
//! command would have ended there:
//! - a termination signal (INT, TERM, HUP when the terminal closes, QUIT) kills the
//!   command's whole process group, and cmux exits 128+N, as a shell reports a process
//!   killed by signal N;
//! - when the reader of our stdout goes away (`cmux exec ws -- yes | head`), writing
//!   fails with EPIPE, where the command would have died of SIGPIPE: cmux kills its
//!   group and exits 141 (128+SIGPIPE), silently, as a pipe-killed process does.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use cmux_core::{BoxRead, BoxWrite, ExecRequest, ExitStatus, Stdin};
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use super::{resolve_cwd, Ctx};
use crate::args::ExecArgs;
use crate::error::CliError;

/// How long output may keep flowing after the command exited (a background child can
/// hold the pipes open forever).
const DRAIN_GRACE: Duration = Duration::from_millis(500);

/// SIGPIPE's number (13 on every Unix cmux runs on): a pipe-killed process exits
/// 128 + this.
const SIGPIPE: i32 = 13;

/// Why cmux stopped the command, when it did: the signal whose death it stands for.
#[derive(Clone, Default)]
struct StopReason(Arc<AtomicI32>);

impl StopReason {
    /// Records `signal` (the first reason wins) and cancels the command.
    fn stop(&self, signal: i32, cancel: &CancellationToken) {
        let _ = self
            .0
            .compare_exchange(0, signal, Ordering::SeqCst, Ordering::SeqCst);
        cancel.cancel();
    }

    fn signal(&self) -> Option<i32> {
        match self.0.load(Ordering::SeqCst) {
            0 => None,
            n => Some(n),
        }
    }
}

/// Runs the command; returns its shell exit code.
pub async fn run(ctx: &Ctx, args: ExecArgs) -> Result<i32> {
    let (record, runtime) = ctx.workspace(&args.name).await?;
    let mut req = if args.command.len() == 1 {
        ExecRequest::script(args.command[0].clone())
    } else {
        ExecRequest::argv(args.command.clone())
    };
    let cwd = match &args.cwd {
        Some(dir) => resolve_cwd(&runtime, &record, dir).await?,
        None => record.path.clone(),
    };
    tracing::debug!(workspace = %record.name, host = runtime.host(), cwd = %cwd, command = ?args.command, "exec");
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
    if args.background {
        return super::jobs::start(&record, runtime, req).await;
    }
    // Decision: a terminal on stdin means a human, whose keystrokes are not meant for
    // an agent's command: /dev/null. A pipe or file is passed through.
    let pipe_stdin = !std::io::stdin().is_terminal();
    if pipe_stdin {
        req = req.stdin(Stdin::Piped);
    }
    // The command runs in its own process group, so signals sent to cmux (Ctrl-C on the
    // terminal, the terminal closing) do not reach it: they become a cancel that kills
    // the whole group.
    let cancel = CancellationToken::new();
    let stopped = StopReason::default();
    req = req.cancel_token(cancel.clone());
    spawn_signal_forwarder(cancel.clone(), stopped.clone());

    let mut process = runtime.exec(req).await?;
    if let Some(stdin) = process.stdin.take() {
        tokio::spawn(copy_stdin(stdin));
    }
    let on_broken_pipe = {
        let (cancel, stopped) = (cancel.clone(), stopped.clone());
        move || stopped.stop(SIGPIPE, &cancel)
    };
    let out = tokio::spawn(pump(
        process.stdout.take(),
        tokio::io::stdout(),
        Some(on_broken_pipe),
    ));
    let err = tokio::spawn(pump(
        process.stderr.take(),
        tokio::io::stderr(),
        None::<fn()>,
    ));
    let status = process.wait().await?;
    let _ = tokio::time::timeout(DRAIN_GRACE, async {
        let _ = out.await;
        let _ = err.await;
    })
    .await;
    tracing::debug!(workspace = %record.name, %status, "exec ended");
    let signal = stopped.signal();
    match (status, signal) {
        (ExitStatus::TimedOut, _) => err!(
            "cmux: command timed out after {}s; its process group was killed",
            args.timeout.unwrap_or_default()
        ),
        // A pipe-killed process says nothing.
        (ExitStatus::Cancelled, Some(SIGPIPE)) => {}
        (ExitStatus::Cancelled, Some(signal)) => {
            err!("cmux: {}; the command was killed", signal_note(signal))
        }
        _ => {}
    }
    Ok(match (status, signal) {
        (ExitStatus::Cancelled, Some(signal)) => 128 + signal,
        _ => status.shell_code(),
    })
}

/// What a signal means to the user.
fn signal_note(signal: i32) -> &'static str {
    use tokio::signal::unix::SignalKind;
    match signal {
        s if s == SignalKind::interrupt().as_raw_value() => "interrupted",
        s if s == SignalKind::hangup().as_raw_value() => "the terminal hung up (SIGHUP)",
        s if s == SignalKind::quit().as_raw_value() => "quit (SIGQUIT)",
        _ => "terminated",
    }
}

/// Copies a process stream to ours as it comes, flushing each chunk (live output).
///
/// When our reader went away (EPIPE) and `on_broken_pipe` is given, calls it and stops:
/// the command would have died of SIGPIPE. Without it (stderr), keeps draining so the
/// command is not blocked on a full pipe, but stops writing.
async fn pump<W, F>(stream: Option<BoxRead>, mut to: W, on_broken_pipe: Option<F>)
where
    W: AsyncWrite + Unpin,
    F: FnOnce(),
{
    let Some(mut stream) = stream else { return };
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let written = match to.write_all(&buf[..n]).await {
                    Ok(()) => to.flush().await,
                    Err(e) => Err(e),
                };
                if let Err(e) = written {
                    match on_broken_pipe {
                        Some(stop) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                            tracing::debug!("stdout closed by its reader: stopping the command");
                            stop();
                        }
                        _ => {
                            let mut sink = tokio::io::sink();
                            let _ = tokio::io::copy(&mut stream, &mut sink).await;
                        }
                    }
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

/// On INT, TERM, HUP or QUIT: records the signal and cancels the command.
fn spawn_signal_forwarder(cancel: CancellationToken, stopped: StopReason) {
    use tokio::signal::unix::{signal, SignalKind};
    for kind in [
        SignalKind::interrupt(),
        SignalKind::terminate(),
        SignalKind::hangup(),
        SignalKind::quit(),
    ] {
        // Registered now, not in the task: a signal arriving before the task first
        // runs must already be caught rather than kill cmux with the default action.
        let Ok(mut stream) = signal(kind) else {
            tracing::warn!(signal = kind.as_raw_value(), "cannot watch a signal");
            continue;
        };
        let (cancel, stopped) = (cancel.clone(), stopped.clone());
        tokio::spawn(async move {
            if stream.recv().await.is_some() {
                stopped.stop(kind.as_raw_value(), &cancel);
            }
        });
    }
}
