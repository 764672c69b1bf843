//! Commands on the host: `bash -c` over a mux channel, killed as a process group.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use cmux_core::exec::quote_path;
use cmux_core::{
    BoxRead, BoxWrite, Error, ExecRequest, ExitStatus, Process, ProcessControl, Result, Stdin,
};
use openssh::Session;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

use super::wrapper;
use super::Fallback;
use crate::master::{liveness, Liveness};
use crate::pool::{Conn, OpenError};

/// How long, after the status marker, the channel's end (both streams and the exit
/// code) is awaited to confirm the status before the marker alone is trusted (a
/// background process of the command may hold stdout open). Short: a command that
/// leaves such a process returns this much later; the marker carries the nonce, so
/// trusting it alone is still safe.
const CONFIRM_WITHIN: Duration = Duration::from_millis(500);

/// The script the job runs: the working directory, then the command. The variables
/// are exported by the wrapper (the request's own come on stdin), see
/// [`super::wrapper`].
fn job_script(req: &ExecRequest) -> Result<String> {
    req.validate()?;
    let mut s = String::new();
    if let Some(cwd) = &req.cwd {
        s.push_str(&format!("cd {} || exit 126\n", quote_path(cwd)));
    }
    s.push_str(&req.command.to_script()?);
    s.push('\n');
    Ok(s)
}

/// A channel for a command, or why none was waited for to the end.
enum Opened {
    /// The channel, its gate permit, and the command started on it.
    Channel(
        Box<(
            Arc<Conn>,
            tokio::sync::OwnedSemaphorePermit,
            openssh::Child<Arc<Session>>,
        )>,
    ),
    /// The request's timeout or cancellation came first: nothing ran.
    Stopped(ExitStatus),
}

/// Opens a gated channel, replacing a dead master once. The wait for a connection and
/// a free channel counts against the request's timeout and honours its cancellation.
async fn open_gated(
    state: &Arc<Fallback>,
    command: &(dyn Fn(&Conn) -> String + Sync),
    stdin: bool,
    req: &ExecRequest,
) -> Result<Opened> {
    let deadline = req.timeout.map(|t| tokio::time::Instant::now() + t);
    let cancel = req.cancel.clone().unwrap_or_default();
    for _ in 0..3 {
        let sleep = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        let (conn, permit) = tokio::select! {
            channel = state.exec_channel() => channel?,
            () = sleep => return Ok(Opened::Stopped(ExitStatus::TimedOut)),
            () = cancel.cancelled() => return Ok(Opened::Stopped(ExitStatus::Cancelled)),
        };
        match state.open_channel(&conn, &command(&conn), stdin).await {
            Ok(child) => return Ok(Opened::Channel(Box::new((conn, permit, child)))),
            Err(OpenError::Fatal(e)) => return Err(e),
            Err(OpenError::Dead) => continue,
        }
    }
    Err(Error::Connection {
        host: state.host.clone(),
        message: format!(
            "the ssh connection keeps dying right after it is made; try `{}` by hand ({})",
            state.manual_ssh(),
            cmux_core::error::NOTHING_RAN
        ),
    })
}

/// A command stopped before it started (its timeout or cancellation came while it
/// waited for a connection or a free channel): it reports that status, and says why
/// on stderr.
fn stopped_before_start(state: &Fallback, status: ExitStatus, req: &ExecRequest) -> Process {
    let note = format!(
        "cmux: {status} while waiting for a free channel to {} (at most {} commands run at once per connection); \
         the command did not start\n",
        state.host, state.opts.channels_per_connection
    );
    let stderr = Box::pin(std::io::Cursor::new(note.into_bytes())) as BoxRead;
    Process::new(
        state.host.clone(),
        None,
        Some(Box::pin(tokio::io::empty()) as BoxRead),
        Some(stderr),
        Box::new(NotStarted(status)),
        req,
    )
}

/// The control of a command that never started.
struct NotStarted(ExitStatus);

#[async_trait]
impl ProcessControl for NotStarted {
    async fn wait(&mut self) -> Result<ExitStatus> {
        Ok(self.0)
    }

    async fn kill(&mut self) -> Result<()> {
        Ok(())
    }
}

/// How a command ended, as the waiter task publishes it.
#[derive(Clone, Debug)]
enum Outcome {
    /// The wrapper's status, confirmed by the channel when it could be.
    Status(ExitStatus),
    /// The connection broke: the message for [`Error::Connection`].
    Lost(String),
    /// No trustworthy status: the message for [`Error::Backend`].
    NoStatus(String),
}

pub(crate) async fn spawn(state: &Arc<Fallback>, req: ExecRequest) -> Result<Process> {
    let script = job_script(&req)?;
    let env_on_stdin = !req.env.is_empty();
    let piped = env_on_stdin || !matches!(req.stdin, Stdin::Null);
    let asked = tokio::time::Instant::now();
    let kill_on_exit = req.kill_group_on_exit;
    let command =
        |conn: &Conn| wrapper::remote_command(&script, env_on_stdin, &conn.login_key, kill_on_exit);
    let (conn, permit, mut child) = match open_gated(state, &command, piped, &req).await? {
        Opened::Channel(opened) => *opened,
        Opened::Stopped(status) => return Ok(stopped_before_start(state, status, &req)),
    };
    let mut req = req;
    // The timeout covers the wait for a channel too: what is left of it.
    if let Some(t) = req.timeout {
        req.timeout = Some(t.saturating_sub(asked.elapsed()));
    }

    let mut stdin = child.stdin().take();
    if env_on_stdin {
        if let Some(pipe) = stdin.as_mut() {
            // The values travel inside the encrypted channel, read by the wrapper
            // before the command starts (never on the host's command line).
            pipe.write_all(&wrapper::env_header(&req.env))
                .await
                .map_err(|e| Error::Connection {
                    host: state.host.clone(),
                    message: format!(
                        "cannot send the command's environment over the channel: {e}; the command did not start"
                    ),
                })?;
        }
    }
    let stdin = stdin.map(|s| Box::pin(s) as BoxWrite);
    let (out_eof_tx, out_eof_rx) = tokio::sync::oneshot::channel();
    let stdout = child.stdout().take().map(|s| {
        Box::pin(EofNotify {
            inner: s,
            eof: Some(out_eof_tx),
        }) as BoxRead
    });
    let (pgid_tx, pgid_rx) = watch::channel(None);
    let (marker_tx, marker_rx) = watch::channel(None);
    let (err_eof_tx, err_eof_rx) = tokio::sync::oneshot::channel();
    let stderr = child
        .stderr()
        .take()
        .map(|s| filter_stderr(s, pgid_tx, marker_tx, err_eof_tx));

    let (result_tx, result_rx) = watch::channel(None);
    {
        let state = state.clone();
        let conn = conn.clone();
        let pgid = pgid_rx.clone();
        tokio::spawn(async move {
            // The permit is the channel: released when the mux session ends.
            let _permit = permit;
            let streams = Streams {
                marker: marker_rx,
                pgid,
                out_eof: out_eof_rx,
                err_eof: err_eof_rx,
            };
            settle(&state, &conn, child, streams, &result_tx).await;
        });
    }
    let control = SshControl {
        state: state.clone(),
        conn,
        result: result_rx,
        pgid: pgid_rx,
    };
    Ok(Process::new(
        state.host.clone(),
        stdin,
        stdout,
        stderr,
        Box::new(control),
        &req,
    ))
}

/// Waits for the command's end and works out how it ended (see the crate docs): the
/// wrapper's status marker, confirmed by the channel's exit code once both streams
/// ended. When the streams stay open past [`CONFIRM_WITHIN`] after the marker (a
/// background process holds them), the marker is published through `early` at once,
/// and the session is kept until the streams end (closing it earlier makes the master
/// drop output it still buffers).
async fn settle(
    state: &Arc<Fallback>,
    conn: &Arc<Conn>,
    child: openssh::Child<Arc<Session>>,
    streams: Streams,
    result: &watch::Sender<Option<Outcome>>,
) {
    let Streams {
        mut marker,
        pgid,
        mut out_eof,
        mut err_eof,
    } = streams;
    let publish = |o: Outcome| {
        let _ = result.send(Some(o));
    };
    let stderr_ended = tokio::select! {
        biased;
        _ = marker.wait_for(Option::is_some) => None,
        login_noise = &mut err_eof => Some(login_noise.unwrap_or_default()),
    };
    let status = *marker.borrow();
    let Some(status) = status else {
        // Stderr ended without the status: the channel's exit says why.
        let _ = tokio::time::timeout(CONFIRM_WITHIN, &mut out_eof).await;
        let login_noise = match stderr_ended {
            Some(noise) => noise,
            // The marker's sender went away first: stderr's end comes next.
            None => err_eof.await.unwrap_or_default(),
        };
        let started = pgid.borrow().is_some();
        let exit = child.wait().await;
        publish(no_status(state, conn, started, &login_noise, exit).await);
        return;
    };
    let stderr_ended = stderr_ended.is_some();
    let drained = async {
        let _ = (&mut out_eof).await;
        if !stderr_ended {
            let _ = (&mut err_eof).await;
        }
    };
    tokio::pin!(drained);
    if tokio::time::timeout(CONFIRM_WITHIN, &mut drained)
        .await
        .is_err()
    {
        publish(Outcome::Status(status));
        drained.await;
        let exit = child.wait().await;
        if let Outcome::NoStatus(m) = confirm(status, exit) {
            tracing::warn!(host = %state.host, "{m}");
        }
        return;
    }
    publish(confirm(status, child.wait().await));
}

/// What the waiter watches: the markers found on stderr and the ends of both streams.
struct Streams {
    marker: watch::Receiver<Option<ExitStatus>>,
    pgid: watch::Receiver<Option<i32>>,
    out_eof: tokio::sync::oneshot::Receiver<()>,
    /// Stderr's end, with what the login shell printed before the wrapper started.
    err_eof: tokio::sync::oneshot::Receiver<Vec<u8>>,
}

/// The exit code a mux exit message carried (`None`: no code, the wrapper died).
fn exit_code(
    result: &std::result::Result<std::process::ExitStatus, openssh::Error>,
) -> Option<i32> {
    match result {
        Ok(status) => status.code(),
        // openssh reports exit code 127 as an error.
        Err(openssh::Error::Remote(e)) if e.kind() == std::io::ErrorKind::NotFound => Some(127),
        Err(_) => None,
    }
}

/// The wrapper's `status`, checked against the channel's own exit code.
fn confirm(
    status: ExitStatus,
    exit: std::result::Result<std::process::ExitStatus, openssh::Error>,
) -> Outcome {
    let expected = wrapper::expected_exit_code(status).and_then(|c| i32::try_from(c).ok());
    match exit_code(&exit) {
        Some(code) if Some(code) == expected => Outcome::Status(status),
        Some(code) => Outcome::NoStatus(format!(
            "the command's status is inconsistent: cmux's wrapper reported {status} but the channel ended with \
             exit code {code}; the result cannot be trusted: check the command's effects before repeating it"
        )),
        // No exit message (the connection dropped right after the marker): the marker,
        // which only the wrapper can write, is the status.
        None => Outcome::Status(status),
    }
}

/// Why the status marker never came, from the channel's exit.
async fn no_status(
    state: &Fallback,
    conn: &Arc<Conn>,
    started: bool,
    login_noise: &[u8],
    exit: std::result::Result<std::process::ExitStatus, openssh::Error>,
) -> Outcome {
    let host = &state.host;
    let code = exit_code(&exit);
    if code.is_none() && liveness(&conn.session).await == Liveness::Dead {
        state.mark_dead(conn);
        let e = exit.err().map(|e| e.to_string()).unwrap_or_default();
        return Outcome::Lost(format!(
            "the connection was lost while the command ran ({e}); the command may still be running on the host. \
             Retry once the host is reachable (`{}`)",
            state.manual_ssh()
        ));
    }
    let code_text = code.map_or("no exit code".to_owned(), |c| format!("exit code {c}"));
    if !started {
        let cause = if code == Some(127) {
            "Bash may be missing on the host (cmux runs every command with bash: install it), or"
        } else {
            "Most likely,"
        };
        let said = if login_noise.is_empty() {
            String::new()
        } else {
            format!(
                " It printed: {:?}.",
                cmux_core::runtime::tail(&String::from_utf8_lossy(login_noise), 500)
            )
        };
        return Outcome::NoStatus(format!(
            "the command did not run: the login shell on {host} ended ({code_text}) before cmux's wrapper started.{said} \
             {cause} the host's shell startup files (~/.bashrc for bash, ~/.zshenv for zsh...) `exit` or `exec` \
             in non-interactive shells: make them return early when the shell is not interactive, then check with \
             `ssh {host} true`"
        ));
    }
    Outcome::NoStatus(format!(
        "the command's status never came back (the channel ended with {code_text}): cmux's wrapper on {host} was \
         killed, or the command killed it; the command may have run: check its effects before repeating it"
    ))
}

/// Stdout that reports when it reached end of file (or was dropped unread).
struct EofNotify<R> {
    inner: R,
    eof: Option<tokio::sync::oneshot::Sender<()>>,
}

impl<R: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for EofNotify<R> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let poll = std::pin::Pin::new(&mut self.inner).poll_read(cx, buf);
        let at_eof = match &poll {
            std::task::Poll::Ready(Ok(())) => buf.filled().len() == before && buf.remaining() > 0,
            std::task::Poll::Ready(Err(_)) => true,
            std::task::Poll::Pending => false,
        };
        if at_eof {
            if let Some(tx) = self.eof.take() {
                let _ = tx.send(());
            }
        }
        poll
    }
}

impl<R> Drop for EofNotify<R> {
    fn drop(&mut self) {
        if let Some(tx) = self.eof.take() {
            let _ = tx.send(());
        }
    }
}

/// Reads the wrapper's markers out of stderr ([`wrapper::MarkerParser`]): the
/// command's process group into `pgid`, its status into `marker`; passes the
/// command's bytes on, and says when stderr reached end of file, with what the login
/// shell printed before the command (its startup files' noise, kept out of the
/// command's stderr).
fn filter_stderr(
    mut stderr: openssh::ChildStderr,
    pgid: watch::Sender<Option<i32>>,
    marker: watch::Sender<Option<ExitStatus>>,
    eof: tokio::sync::oneshot::Sender<Vec<u8>>,
) -> BoxRead {
    let (mut tx, rx) = tokio::io::duplex(64 * 1024);
    tokio::spawn(async move {
        let mut buf = vec![0u8; 16 * 1024];
        let mut parser = wrapper::MarkerParser::default();
        let mut reader_gone = false;
        loop {
            let n = match stderr.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let taken = parser.feed(&buf[..n]);
            if let Some(p) = taken.pgid {
                let _ = pgid.send(Some(p));
            }
            if let Some(status) = taken.status {
                let _ = marker.send(Some(status));
            }
            let forward = taken.forward;
            if !forward.is_empty() && !reader_gone && tx.write_all(&forward).await.is_err() {
                // The reader is gone; keep draining so the channel can close.
                reader_gone = true;
            }
        }
        let rest = parser.finish();
        if !rest.is_empty() && !reader_gone {
            let _ = tx.write_all(&rest).await;
        }
        let _ = tx.shutdown().await;
        let login_noise = parser.before_start().to_vec();
        if !login_noise.is_empty() {
            tracing::debug!(
                "the login shell printed on stderr before the command: {:?}",
                String::from_utf8_lossy(&login_noise)
            );
        }
        let _ = eof.send(login_noise);
    });
    Box::pin(rx)
}

struct SshControl {
    state: Arc<Fallback>,
    conn: Arc<Conn>,
    result: watch::Receiver<Option<Outcome>>,
    pgid: watch::Receiver<Option<i32>>,
}

#[async_trait]
impl ProcessControl for SshControl {
    async fn wait(&mut self) -> Result<ExitStatus> {
        let result = match self.result.wait_for(Option::is_some).await {
            Ok(r) => r.clone(),
            Err(_) => None,
        };
        match result {
            Some(Outcome::Status(status)) => Ok(status),
            Some(Outcome::Lost(message)) => Err(Error::Connection {
                host: self.state.host.clone(),
                message,
            }),
            Some(Outcome::NoStatus(message)) => Err(Error::Backend {
                backend: format!("ssh {}", self.state.host),
                message,
            }),
            None => Err(Error::backend("ssh", "the command's waiter stopped early")),
        }
    }

    async fn kill(&mut self) -> Result<()> {
        if self.result.borrow().is_some() {
            return Ok(());
        }
        let known = *self.pgid.borrow();
        if let Some(pgid) = known {
            return kill_group(&self.state, &self.conn, pgid).await;
        }
        // Not started yet (a slow login shell): kill it as soon as it reports its
        // process group, however late, unless it ends first.
        let (state, conn) = (self.state.clone(), self.conn.clone());
        let (mut pgid, mut result) = (self.pgid.clone(), self.result.clone());
        tokio::spawn(async move {
            let late = tokio::select! {
                p = pgid.wait_for(Option::is_some) => p.ok().and_then(|p| *p),
                _ = result.wait_for(Option::is_some) => None,
            };
            if let Some(p) = late {
                if let Err(e) = kill_group(&state, &conn, p).await {
                    tracing::warn!(host = %state.host, "late kill failed: {e}");
                }
            }
        });
        Ok(())
    }
}

/// `kill -KILL -- -<pgid>` on the host, on a channel outside the gate (the spare one),
/// so a kill never waits behind the commands it is meant to stop.
async fn kill_group(state: &Arc<Fallback>, conn: &Arc<Conn>, pgid: i32) -> Result<()> {
    let command = format!("kill -KILL -- -{pgid} 2>/dev/null; true");
    let child = match state.open_channel(conn, &command, false).await {
        Ok(child) => child,
        // The master died: the host's sshd hangs up the session, which ends the
        // command's session with SIGHUP; nothing else can reach it.
        Err(OpenError::Dead) => return Ok(()),
        Err(OpenError::Fatal(e)) => return Err(e),
    };
    let _ = child.wait().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_script_applies_cwd_but_carries_no_variables() {
        let req = ExecRequest::script("echo hi")
            .env("SECRET", "s3cr3t value")
            .cwd(cmux_core::RemotePath::new("~/my dir").expect("path"));
        let s = job_script(&req).expect("script");
        assert_eq!(s, "cd ~/'my dir' || exit 126\necho hi\n");
        assert!(!wrapper::remote_command(&s, true, "", false).contains("s3cr3t"));
    }
}
