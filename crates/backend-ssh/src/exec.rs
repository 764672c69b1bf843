//! Commands on the host: `bash -c` over a mux channel, killed as a process group.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use cmux_core::{
    quote, BoxRead, BoxWrite, Error, ExecRequest, ExitStatus, Process, ProcessControl, Result,
    Stdin,
};
use openssh::{Session, Stdio};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::conn::{Conn, HostState};

/// How long a refused channel open (MaxSessions, mux backlog) is retried.
const OPEN_RETRY_FOR: Duration = Duration::from_secs(30);

/// The command line sent to the host: the login shell execs bash (keeping its pid, the
/// session and process-group id sshd gave it), which prints `$$` on stderr first.
///
/// `--norc`: bash started by sshd reads `~/.bashrc` even when not interactive; the
/// login shell already did (and exported what it set, PATH included), so the second
/// read would only double the cost of a heavy rc file on every command.
pub(crate) fn remote_command(script: &str) -> String {
    let inner = format!("printf '%s\\n' \"$$\" >&2\n{script}");
    format!("exec bash --norc --noprofile -c {}", quote::quote(&inner))
}

pub(crate) enum OpenError {
    /// The master is gone: replace it and try again.
    Dead,
    /// Something else, already an error for the user.
    Fatal(Error),
}

/// Opens a channel for `command` on `conn`, retrying refused opens with jittered
/// backoff (another process may hold the host's channels for a moment).
pub(crate) async fn open(
    state: &HostState,
    conn: &Arc<Conn>,
    command: &str,
    stdin: bool,
) -> std::result::Result<openssh::Child<Arc<Session>>, OpenError> {
    let started = Instant::now();
    let mut delay = Duration::from_millis(5);
    loop {
        let result = Session::to_raw_command(conn.session.clone(), command)
            .stdin(if stdin { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .await;
        let err = match result {
            Ok(child) => return Ok(child),
            Err(e) => e,
        };
        if conn.session.check().await.is_err() {
            state.mark_dead(conn);
            return Err(OpenError::Dead);
        }
        if started.elapsed() > OPEN_RETRY_FOR {
            return Err(OpenError::Fatal(Error::Connection {
                host: state.host.clone(),
                message: format!(
                    "the host kept refusing new channels for {}s ({err}); its sshd MaxSessions may be below 10, \
                     or too many cmux processes share it: retry later",
                    OPEN_RETRY_FOR.as_secs()
                ),
            }));
        }
        tracing::debug!(host = %state.host, "channel open refused ({err}); retrying");
        let jittered = delay.mul_f64(0.5 + fastrand::f64());
        tokio::time::sleep(jittered).await;
        delay = (delay * 2).min(Duration::from_millis(250));
    }
}

/// Opens a gated channel, replacing a dead master once.
async fn open_gated(
    state: &Arc<HostState>,
    command: &str,
    stdin: bool,
) -> Result<(
    Arc<Conn>,
    tokio::sync::OwnedSemaphorePermit,
    openssh::Child<Arc<Session>>,
)> {
    for _ in 0..3 {
        let (conn, permit) = state.exec_channel().await?;
        match open(state, &conn, command, stdin).await {
            Ok(child) => return Ok((conn, permit, child)),
            Err(OpenError::Fatal(e)) => return Err(e),
            Err(OpenError::Dead) => continue,
        }
    }
    Err(Error::Connection {
        host: state.host.clone(),
        message: format!(
            "the ssh connection keeps dying right after it is made; try `{}` by hand",
            state.manual_ssh()
        ),
    })
}

pub(crate) async fn spawn(state: &Arc<HostState>, req: ExecRequest) -> Result<Process> {
    let script = req.to_shell_script()?;
    let command = remote_command(&script);
    let piped = !matches!(req.stdin, Stdin::Null);
    let (conn, permit, mut child) = open_gated(state, &command, piped).await?;

    let stdin = child.stdin().take().map(|s| Box::pin(s) as BoxWrite);
    let stdout = child.stdout().take().map(|s| Box::pin(s) as BoxRead);
    let (pgid_tx, pgid_rx) = watch::channel(None);
    let stderr = child.stderr().take().map(|s| strip_pgid_line(s, pgid_tx));

    let done = Arc::new(AtomicBool::new(false));
    let waiter = {
        let done = done.clone();
        let state = state.clone();
        let conn = conn.clone();
        tokio::spawn(async move {
            // The permit is the channel: it is released when the channel closes.
            let _permit = permit;
            let result = child.wait().await;
            done.store(true, Ordering::SeqCst);
            exit_status(&state, &conn, result).await
        })
    };
    let control = SshControl {
        state: state.clone(),
        conn,
        waiter: Some(waiter),
        finished: None,
        pgid: pgid_rx,
        done,
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

async fn exit_status(
    state: &HostState,
    conn: &Arc<Conn>,
    result: std::result::Result<std::process::ExitStatus, openssh::Error>,
) -> std::result::Result<ExitStatus, String> {
    match result {
        Ok(status) => Ok(ExitStatus::Exited(status.code().unwrap_or(-1))),
        // openssh reports exit code 127 as an error; it is the command's own status.
        Err(openssh::Error::Remote(e)) if e.kind() == std::io::ErrorKind::NotFound => {
            Ok(ExitStatus::Exited(127))
        }
        Err(e) => {
            // No exit code: killed by a signal (the mux protocol does not say which),
            // or the connection died.
            if conn.session.check().await.is_ok() {
                Ok(ExitStatus::Signaled(0))
            } else {
                state.mark_dead(conn);
                Err(format!(
                    "the connection was lost while the command ran ({e}); the command may still be running on the host. \
                     Retry once the host is reachable (`{}`)",
                    state.manual_ssh()
                ))
            }
        }
    }
}

/// Reads the first stderr line (the remote `$$`) into `pgid` and passes the rest on.
fn strip_pgid_line(mut stderr: openssh::ChildStderr, pgid: watch::Sender<Option<i32>>) -> BoxRead {
    let (mut tx, rx) = tokio::io::duplex(64 * 1024);
    tokio::spawn(async move {
        let mut head = Vec::with_capacity(32);
        let mut buf = [0u8; 4096];
        let rest_start;
        loop {
            let n = match stderr.read(&mut buf).await {
                Ok(0) | Err(_) => {
                    let _ = tx.write_all(&head).await;
                    let _ = tx.shutdown().await;
                    return;
                }
                Ok(n) => n,
            };
            head.extend_from_slice(&buf[..n]);
            if let Some(nl) = head.iter().position(|b| *b == b'\n') {
                rest_start = nl + 1;
                break;
            }
            if head.len() > 64 {
                // Not our line (bash missing on the host?): pass everything through.
                rest_start = 0;
                break;
            }
        }
        let parsed = std::str::from_utf8(&head[..rest_start])
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok())
            .filter(|p| *p > 1);
        let skip = if parsed.is_some() { rest_start } else { 0 };
        let _ = pgid.send(parsed);
        if tx.write_all(&head[skip..]).await.is_ok() {
            let _ = tokio::io::copy(&mut stderr, &mut tx).await;
        }
        let _ = tx.shutdown().await;
    });
    Box::pin(rx)
}

struct SshControl {
    state: Arc<HostState>,
    conn: Arc<Conn>,
    waiter: Option<JoinHandle<std::result::Result<ExitStatus, String>>>,
    finished: Option<std::result::Result<ExitStatus, String>>,
    pgid: watch::Receiver<Option<i32>>,
    done: Arc<AtomicBool>,
}

#[async_trait]
impl ProcessControl for SshControl {
    async fn wait(&mut self) -> Result<ExitStatus> {
        if self.finished.is_none() {
            if let Some(waiter) = &mut self.waiter {
                let r = waiter
                    .await
                    .unwrap_or_else(|e| Err(format!("waiting task failed: {e}")));
                self.waiter = None;
                self.finished = Some(r);
            }
        }
        match &self.finished {
            Some(Ok(status)) => Ok(*status),
            Some(Err(message)) => Err(Error::Connection {
                host: self.state.host.clone(),
                message: message.clone(),
            }),
            None => Err(Error::backend("ssh", "process already reaped")),
        }
    }

    async fn kill(&mut self) -> Result<()> {
        if self.done.load(Ordering::SeqCst) {
            return Ok(());
        }
        // The pgid arrives with the process's first output; a process that has not
        // started yet is given a moment.
        let pgid = {
            let mut rx = self.pgid.clone();
            let waited =
                tokio::time::timeout(Duration::from_secs(10), rx.wait_for(|p| p.is_some())).await;
            match waited {
                Ok(Ok(p)) => *p,
                _ => None,
            }
        };
        let Some(pgid) = pgid else {
            tracing::warn!(host = %self.state.host, "cannot kill: the command never reported its process group");
            return Ok(());
        };
        if self.done.load(Ordering::SeqCst) {
            return Ok(());
        }
        kill_group(&self.state, &self.conn, pgid).await
    }
}

/// `kill -KILL -- -<pgid>` on the host, on a channel outside the gate (the spare one),
/// so a kill never waits behind the commands it is meant to stop.
async fn kill_group(state: &Arc<HostState>, conn: &Arc<Conn>, pgid: i32) -> Result<()> {
    let command = format!("kill -KILL -- -{pgid} 2>/dev/null; true");
    let child = match open(state, conn, &command, false).await {
        Ok(child) => child,
        // The master died: the host's sshd hangs up the session, which ends the
        // command's session with SIGHUP; nothing else can reach it.
        Err(OpenError::Dead) => return Ok(()),
        Err(OpenError::Fatal(e)) => return Err(e),
    };
    let _ = child.wait().await;
    Ok(())
}
