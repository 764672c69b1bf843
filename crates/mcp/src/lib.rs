//! # cmux-mcp
//!
//! Serves one cmux workspace's agent tools to any agent over the
//! [Model Context Protocol](https://modelcontextprotocol.io) on stdio, with the
//! official Rust SDK (`rmcp`). `cmux mcp <workspace>` is a thin call into
//! [`serve_stdio`].
//!
//! Tools: every tool of [`cmux_core::tools::TOOLS`] (`bash`, `read_file`, `write_file`,
//! `edit_file`, `list_dir`, `glob`, `grep`, and the background jobs' `job_output`,
//! `job_kill` and `jobs`), listed and run from their one definition there, so they behave the same on every backend and a new tool needs no change
//! here. Text results are text content; images `read_file` reads are image content
//! (base64, with their mimeType).
//!
//! - Tool failures (a non-zero exit, a missing file, a non-matching edit, bad
//!   arguments) are results with `isError: true` and a message the model can act on;
//!   only an unknown tool name or a malformed message is a JSON-RPC error: `-32602`
//!   for an unknown tool or params that do not fit the method (e.g. `arguments` that
//!   are not an object), `-32601` for an unknown method, `-32600` for a message that
//!   is not a request, and `-32700` for a line that is not JSON or not UTF-8. Every
//!   request gets an answer: a client never waits forever.
//! - Every `tools/call` runs in its own task: calls in flight proceed concurrently.
//! - `notifications/cancelled` for a running `bash` call kills the command's whole
//!   process group on the host.
//! - The server holds one runtime (one connection) for its lifetime. A dropped
//!   connection fails only the calls in flight; read-only and idempotent tools are
//!   retried once after the runtime reconnects.
//! - No command outlives the server: when the input ends (or [`serve_until`]'s token
//!   is cancelled, on SIGINT/SIGTERM/SIGHUP for [`serve_stdio`]), calls still running
//!   get a few seconds, then their commands are killed before the server returns.
//! - Background jobs (`bash` with `run_in_background`) outlive their call and a
//!   dropped connection to the host, but not the session: when it ends as above, the
//!   jobs it started are killed (SIGTERM, then SIGKILL) before the server returns.
//!   Jobs started elsewhere (`cmux exec --background`, another session) are left
//!   alone. A server killed outright (SIGKILL) leaves its jobs running; `jobs` and
//!   `cmux jobs` still list them.
//! - Nothing but protocol goes to stdout: logs go through `tracing` (the binary
//!   installs a stderr subscriber), and [`serve_stdio`] points the process's own
//!   stdout at stderr so no stray print or child process can corrupt the stream.
//!
//! ```no_run
//! # async fn demo(ctx: cmux_core::tools::ToolContext) -> cmux_core::Result<()> {
//! cmux_mcp::serve_stdio(ctx).await
//! # }
//! ```

#![deny(missing_docs)]

mod screen;
mod server;
mod stdio;

use std::sync::Arc;

use cmux_core::jobs::{JobSession, Jobs};
use cmux_core::tools::ToolContext;
use cmux_core::{Error, Result};
use rmcp::service::QuitReason;
use rmcp::ServiceExt;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::sync::CancellationToken;

pub use server::WorkspaceServer;

/// How long the last responses may take to reach the client after the input ended.
const OUTPUT_DRAIN: std::time::Duration = std::time::Duration::from_secs(10);
/// How long cancelled calls may take to kill their commands when the server stops.
const KILL_WAIT: std::time::Duration = std::time::Duration::from_secs(15);
/// How long ending the session's background jobs may take (SIGTERM, SIGKILL 3 s later,
/// all jobs at once).
const JOBS_KILL_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// Serves the workspace `ctx` over MCP on this process's stdin and stdout until the
/// client closes stdin.
///
/// The real stdout is kept for the protocol alone: file descriptor 1 is pointed at
/// stderr and fd 0 at `/dev/null` first, so prints and child processes cannot write
/// into (or read from) the JSON-RPC stream.
pub async fn serve_stdio(ctx: ToolContext) -> Result<()> {
    let (reader, writer) = stdio::take_protocol_streams()?;
    let shutdown = CancellationToken::new();
    tokio::spawn(cancel_on_signals(shutdown.clone()));
    serve_until(ctx, reader, writer, shutdown).await
}

/// Serves the workspace `ctx` over MCP on `reader` / `writer` (newline-delimited
/// JSON-RPC) until `reader` reaches end of file. A line that is not JSON is answered
/// with a `-32700` parse error; a message that is JSON but not a valid request with a
/// `-32600` invalid-request error.
///
/// The runtime is readied in the background so a slow connect does not delay the
/// handshake; a host that is down makes calls fail with `isError` results until it is
/// back, it does not stop the server.
///
/// When the input ends, calls still running get a few seconds to answer; then their
/// commands are killed, and so are the background jobs this session started; this
/// returns once they are (no command outlives the server).
pub async fn serve<R, W>(ctx: ToolContext, reader: R, writer: W) -> Result<()>
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    serve_until(ctx, reader, writer, CancellationToken::new()).await
}

/// [`serve`], stopping early when `shutdown` is cancelled: running commands are killed
/// and this returns once they are. [`serve_stdio`] cancels it on SIGINT, SIGTERM and
/// SIGHUP, so a client that kills its server leaves no command running on the host.
pub async fn serve_until<R, W>(
    ctx: ToolContext,
    reader: R,
    writer: W,
    shutdown: CancellationToken,
) -> Result<()>
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let session = Arc::new(JobSession::new());
    let ctx = ctx.with_job_session(session.clone());
    let runtime = ctx.runtime.clone();
    tokio::spawn(async move {
        if let Err(e) = runtime.ensure_ready().await {
            tracing::warn!(error = %e, "workspace host not ready yet; calls will retry the connection");
        }
    });
    tracing::info!(host = ctx.host(), root = %ctx.root, "serving MCP");
    let screened = screen::screen(reader, writer);
    let jobs = Jobs::from(&ctx);
    let server = WorkspaceServer::new(ctx);
    let calls = server.calls();
    let running = match server
        .serve_with_ct((screened.to_rmcp, screened.from_rmcp), shutdown.clone())
        .await
    {
        Ok(running) => running,
        Err(_) if shutdown.is_cancelled() => return Ok(()),
        Err(e) => {
            return Err(Error::backend(
                "mcp",
                format!("the MCP client did not complete the handshake: {e}"),
            ))
        }
    };
    let quit = running.waiting().await;
    // rmcp has cancelled the calls still running: wait until their commands are
    // killed, and let the last responses reach the client.
    calls.close();
    if tokio::time::timeout(KILL_WAIT, calls.wait()).await.is_err() {
        tracing::warn!("some tool calls did not stop in time");
    }
    end_session_jobs(&jobs, &session).await;
    if tokio::time::timeout(OUTPUT_DRAIN, screened.output)
        .await
        .is_err()
    {
        tracing::warn!("the MCP client did not take the last responses in time");
    }
    match quit {
        Ok(QuitReason::JoinError(e)) | Err(e) => Err(Error::backend(
            "mcp",
            format!("the MCP server task failed: {e}"),
        )),
        Ok(reason) => {
            tracing::info!(?reason, "MCP server stopped");
            Ok(())
        }
    }
}

/// Kills the background jobs the session started (those still running), logging what
/// could not be killed: the session ended normally, so its jobs end with it.
async fn end_session_jobs(jobs: &Jobs, session: &JobSession) {
    if session.started().is_empty() {
        return;
    }
    match tokio::time::timeout(JOBS_KILL_WAIT, jobs.kill_session(session)).await {
        Err(_) => tracing::warn!(
            "the session's background jobs did not all stop in time; `cmux jobs` lists them"
        ),
        Ok(outcomes) => {
            for (id, outcome) in outcomes {
                match outcome {
                    Ok(killed) if killed.before.is_running() => {
                        tracing::info!(job = %id, state = %killed.after, "session ended: job killed")
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(job = %id, error = %e, "could not kill a job of the session")
                    }
                }
            }
        }
    }
}

/// Cancels `shutdown` on the first SIGINT, SIGTERM or SIGHUP.
async fn cancel_on_signals(shutdown: CancellationToken) {
    use tokio::signal::unix::{signal, SignalKind};
    let mut streams = Vec::new();
    for kind in [
        SignalKind::interrupt(),
        SignalKind::terminate(),
        SignalKind::hangup(),
    ] {
        match signal(kind) {
            Ok(stream) => streams.push(stream),
            Err(e) => tracing::warn!(error = %e, "cannot watch a termination signal"),
        }
    }
    if streams.is_empty() {
        return;
    }
    let any = any_signal(&mut streams);
    any.await;
    tracing::info!("termination signal: stopping the MCP server");
    shutdown.cancel();
}

/// Resolves when any of `streams` delivers a signal.
async fn any_signal(streams: &mut [tokio::signal::unix::Signal]) {
    std::future::poll_fn(|cx| {
        for stream in streams.iter_mut() {
            if stream.poll_recv(cx).is_ready() {
                return std::task::Poll::Ready(());
            }
        }
        std::task::Poll::Pending
    })
    .await
}
