//! Commands on the host: `bash -c` over a mux channel, killed as a process group.

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

use crate::conn::{liveness, Conn, HostState, Liveness};

/// How long a refused channel open (MaxSessions, mux backlog) is retried.
const OPEN_RETRY_FOR: Duration = Duration::from_secs(30);

/// Marker the wrapper writes on stderr (one atomic write) as its last act, with how
/// the command ended; the local side strips it.
const STATUS_MARKER: &[u8] = b"\0cmux-status:";

/// Marker the command writes on stderr first thing, with its pid (= its process
/// group); the local side strips it. A marker, not a bare first line: the user's login
/// shell may print on stderr before it (an rc file's warning), which must neither hide
/// the pid, making the command unkillable, nor be taken for it.
const PGID_MARKER: &[u8] = b"\0cmux-pgid:";

/// The wrapper bash the login shell execs.
/// - `set -m` puts the command in its own process group; the command prints its pid
///   (= that group) first on stderr as a [`PGID_MARKER`], and a timeout or cancel
///   kills that group.
/// - The mux protocol carries an exit code but no signal number, and `$?` cannot tell
///   `exit 143` from SIGTERM. Bash's job notice can: the wrapper's own stderr points
///   at a private pipe (`<(:)`; the command gets the real one), and a status above
///   128 with a notice that is not `Exit N` means "killed by a signal". The notice is
///   read in the C locale, set after the command started so the command keeps the
///   user's; a command that ends before that in a translated locale and exits with a
///   code above 128 may be reported as signalled.
/// - The status is then written on stderr as [`STATUS_MARKER`] `x<code>` or
///   `s<signal>`: the local side learns it without waiting for the mux exit message,
///   and so keeps the mux session open until stdout and stderr are drained (closing
///   it earlier makes the master drop output it still buffers).
///
/// - With `$2` = `k` ([`ExecRequest::kill_group_on_exit`]), the wrapper kills the
///   command's process group once the command exited: what it left running with `&`
///   ends with it, at no extra round trip.
///
/// `--norc`: bash started by sshd reads `~/.bashrc` even when not interactive; the
/// login shell already did (and exported what it set, PATH included), so another read
/// would only add the cost of a heavy rc file to every command.
const WRAPPER: &str = r#"set -m
exec 3>&2 5<> <(:) 2>&5
bash --norc --noprofile -c 'printf "\000cmux-pgid:%s\n" "$$" >&2
'"$1" 2>&3 3>&- 5>&- &
c=$!
LC_ALL=C
wait "$c"
s=$?
[ "$2" = k ] && kill -KILL -- -"$c" 2>/dev/null
n=
while read -t 0 -u 5 && IFS= read -r -t 1 -u 5 l; do n="$n $l"; done
k=x v=$s
if [ "$s" -gt 128 ] && [ -n "$n" ]; then
  case $n in *' Exit '*) ;; *) k=s v=$((s - 128)) ;; esac
fi
printf '\000cmux-status:%s%d\n' "$k" "$v" >&3
exit "$s"
"#;

/// The command line sent to the host (run by the user's login shell).
/// `kill_group_on_exit`: the wrapper kills what the command leaves running.
pub(crate) fn remote_command(script: &str, kill_group_on_exit: bool) -> String {
    format!(
        "exec bash --norc --noprofile -c {} cmux {} {}",
        quote::quote(WRAPPER),
        quote::quote(script),
        if kill_group_on_exit { "k" } else { "-" }
    )
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
        if liveness(&conn.session).await == Liveness::Dead {
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
    let command = remote_command(&script, req.kill_group_on_exit);
    let piped = !matches!(req.stdin, Stdin::Null);
    let (conn, permit, mut child) = open_gated(state, &command, piped).await?;

    let stdin = child.stdin().take().map(|s| Box::pin(s) as BoxWrite);
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
        tokio::spawn(async move {
            // The permit is the channel: released when the mux session ends.
            let _permit = permit;
            let mut err_eof = err_eof_rx;
            let mut marker_rx = marker_rx;
            // The status comes from the marker, written just before the wrapper exits
            // and published before stderr's end of file; without one (connection lost,
            // bash missing), from the mux exit message.
            let stderr_ended = tokio::select! {
                biased;
                _ = marker_rx.wait_for(Option::is_some) => false,
                _ = &mut err_eof => true,
            };
            let marker = *marker_rx.borrow();
            match marker {
                Some(status) => {
                    let _ = result_tx.send(Some(Ok(status)));
                    // Keep the mux session until the master flushed every byte of
                    // stdout and stderr: closing it earlier drops what it buffers.
                    let _ = out_eof_rx.await;
                    if !stderr_ended {
                        let _ = err_eof.await;
                    }
                    let _ = child.wait().await;
                }
                None => {
                    let result = child.wait().await;
                    let status = exit_status(&state, &conn, result).await;
                    let _ = result_tx.send(Some(status));
                }
            }
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

/// The status from the mux exit message, when the wrapper's marker never came (bash
/// missing, connection lost).
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
            if liveness(&conn.session).await != Liveness::Dead {
                // The wrapper itself was killed by a signal the protocol does not name.
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

/// Reads the first stderr line (the command's pid, its process group) into `pgid`,
/// takes the wrapper's status marker out into `marker`, passes everything else on,
/// and says when stderr reached end of file.
fn filter_stderr(
    mut stderr: openssh::ChildStderr,
    pgid: watch::Sender<Option<i32>>,
    marker: watch::Sender<Option<ExitStatus>>,
    eof: tokio::sync::oneshot::Sender<()>,
) -> BoxRead {
    let (mut tx, rx) = tokio::io::duplex(64 * 1024);
    tokio::spawn(async move {
        let mut buf = vec![0u8; 16 * 1024];
        let mut pending: Vec<u8> = Vec::new();
        let mut reader_gone = false;
        loop {
            let n = match stderr.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            pending.extend_from_slice(&buf[..n]);
            let taken = take_forwardable(&mut pending);
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
        if !pending.is_empty() && !reader_gone {
            let _ = tx.write_all(&pending).await;
        }
        let _ = tx.shutdown().await;
        let _ = eof.send(());
    });
    Box::pin(rx)
}

/// What [`take_forwardable`] found.
#[derive(Debug, Default, PartialEq, Eq)]
struct Taken {
    /// Bytes to pass on as the command's stderr.
    forward: Vec<u8>,
    /// The command's status, from a status marker.
    status: Option<ExitStatus>,
    /// The command's process group, from a pgid marker.
    pgid: Option<i32>,
}

/// One of the wrapper's markers at the start of a buffer.
enum Marker {
    /// Not a marker: a NUL byte of the command's own output.
    No,
    /// Maybe a marker: wait for more bytes.
    Incomplete,
    /// A complete marker, `len` bytes long.
    Status(ExitStatus, usize),
    /// A complete pgid marker, `len` bytes long.
    Pgid(i32, usize),
}

fn marker_at(rest: &[u8]) -> Marker {
    for (prefix, max_body) in [(STATUS_MARKER, 5), (PGID_MARKER, 10)] {
        if rest.len() < prefix.len() {
            if prefix.starts_with(rest) {
                return Marker::Incomplete;
            }
            continue;
        }
        if !rest.starts_with(prefix) {
            continue;
        }
        let body = &rest[prefix.len()..];
        let Some(nl) = body.iter().position(|b| *b == b'\n') else {
            return if body.len() <= max_body {
                Marker::Incomplete
            } else {
                Marker::No
            };
        };
        if nl > max_body {
            return Marker::No;
        }
        let len = prefix.len() + nl + 1;
        let Ok(text) = std::str::from_utf8(&body[..nl]) else {
            return Marker::No;
        };
        if prefix == PGID_MARKER {
            return match text.parse::<i32>() {
                Ok(p) if p > 1 => Marker::Pgid(p, len),
                _ => Marker::No,
            };
        }
        let parsed = text.split_at_checked(1).and_then(|(kind, num)| {
            let n = num.parse::<i32>().ok()?;
            match kind {
                "x" => Some(ExitStatus::Exited(n)),
                "s" => Some(ExitStatus::Signaled(n)),
                _ => None,
            }
        });
        return match parsed {
            Some(status) => Marker::Status(status, len),
            None => Marker::No,
        };
    }
    Marker::No
}

/// Splits `pending` into bytes safe to forward now and a held-back tail that may be
/// the start of a marker; removes complete markers (status, pgid), returning what they
/// say.
fn take_forwardable(pending: &mut Vec<u8>) -> Taken {
    let mut taken = Taken {
        forward: Vec::with_capacity(pending.len()),
        ..Taken::default()
    };
    let mut i = 0;
    while i < pending.len() {
        let Some(off) = pending[i..].iter().position(|b| *b == 0) else {
            taken.forward.extend_from_slice(&pending[i..]);
            i = pending.len();
            break;
        };
        taken.forward.extend_from_slice(&pending[i..i + off]);
        i += off;
        match marker_at(&pending[i..]) {
            Marker::Incomplete => break,
            Marker::No => {
                taken.forward.push(0);
                i += 1;
            }
            Marker::Status(status, len) => {
                taken.status = Some(status);
                i += len;
            }
            Marker::Pgid(pgid, len) => {
                taken.pgid = Some(pgid);
                i += len;
            }
        }
    }
    pending.drain(..i);
    taken
}

struct SshControl {
    state: Arc<HostState>,
    conn: Arc<Conn>,
    result: watch::Receiver<Option<std::result::Result<ExitStatus, String>>>,
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
            Some(Ok(status)) => Ok(status),
            Some(Err(message)) => Err(Error::Connection {
                host: self.state.host.clone(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_is_stripped_anywhere_and_partial_markers_wait() {
        let mut p = b"abc\0cmux-status:s15\ndef".to_vec();
        let t = take_forwardable(&mut p);
        assert_eq!(t.forward, b"abcdef");
        assert_eq!(t.status, Some(ExitStatus::Signaled(15)));
        assert!(p.is_empty());

        let mut p = b"x\0cmux-sta".to_vec();
        let t = take_forwardable(&mut p);
        assert_eq!((t.forward.as_slice(), t.status), (&b"x"[..], None));
        assert_eq!(p, b"\0cmux-sta");
        p.extend_from_slice(b"tus:x143\n");
        let t = take_forwardable(&mut p);
        assert_eq!(
            (t.forward.as_slice(), t.status),
            (&b""[..], Some(ExitStatus::Exited(143)))
        );

        let mut p = b"bin\0ary\0".to_vec();
        let t = take_forwardable(&mut p);
        assert_eq!(t.forward, b"bin\0ary");
        assert_eq!(p, b"\0");
    }

    #[test]
    fn pgid_marker_is_found_after_rc_noise_and_stripped() {
        // The login shell's rc warned first: the pgid still comes through.
        let mut p = b"pyenv: cannot rehash\n\0cmux-pg".to_vec();
        let t = take_forwardable(&mut p);
        assert_eq!(
            (t.forward.as_slice(), t.pgid),
            (&b"pyenv: cannot rehash\n"[..], None)
        );
        p.extend_from_slice(b"id:4242\nout\0cmux-status:x0\n");
        let t = take_forwardable(&mut p);
        assert_eq!(
            t,
            Taken {
                forward: b"out".to_vec(),
                status: Some(ExitStatus::Exited(0)),
                pgid: Some(4242),
            }
        );
        // Not a pid: passed through as the command's own bytes.
        let mut p = b"\0cmux-pgid:abc\n".to_vec();
        let t = take_forwardable(&mut p);
        assert_eq!((t.forward, t.pgid), (b"\0cmux-pgid:abc\n".to_vec(), None));
    }

    #[test]
    fn remote_command_quotes_the_script_as_one_argument() {
        let cmd = remote_command("echo 'hi'", false);
        assert!(cmd.starts_with("exec bash --norc --noprofile -c "));
        assert!(cmd.ends_with(r#" cmux 'echo '\''hi'\''' -"#), "{cmd}");
        assert!(remote_command("true", true).ends_with(" cmux true k"));
    }
}
