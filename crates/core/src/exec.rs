//! Running commands: [`ExecRequest`] in, [`Process`] out, [`ExitStatus`] at the end.
//!
//! Timeouts and cancellation are enforced here, once, for every backend: a backend only
//! provides a [`ProcessControl`] that can wait for its process and kill its whole
//! process group.

use std::fmt;
use std::pin::Pin;
use std::time::Duration;

use async_trait::async_trait;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};
use crate::path::RemotePath;
use crate::quote;

/// A boxed byte stream from a process or a file.
pub type BoxRead = Pin<Box<dyn AsyncRead + Send>>;
/// A boxed byte sink into a process.
pub type BoxWrite = Pin<Box<dyn AsyncWrite + Send>>;

/// What to run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// A shell script, run as `bash -c <script>`.
    Script(String),
    /// A program and its arguments, run without any shell interpretation of the words.
    Argv(Vec<String>),
}

impl Command {
    /// The script `bash -c` runs for this command (argv words are quoted).
    pub fn to_script(&self) -> Result<String> {
        match self {
            Command::Script(s) => Ok(s.clone()),
            Command::Argv(words) if words.is_empty() => {
                Err(Error::invalid("empty command: give a program to run"))
            }
            Command::Argv(words) => Ok(format!("exec {}", quote::join(words))),
        }
    }
}

/// Where the process's standard input comes from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Stdin {
    /// `/dev/null` (the default: an agent's command must never wait for input).
    #[default]
    Null,
    /// A pipe the caller writes through [`Process::stdin`].
    Piped,
    /// These bytes, then end of input.
    Bytes(Vec<u8>),
}

/// A command to run in a runtime, with its environment. Build it with
/// [`ExecRequest::script`] or [`ExecRequest::argv`] and the builder methods.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ExecRequest {
    /// What to run.
    pub command: Command,
    /// Working directory (default: the runtime user's home).
    pub cwd: Option<RemotePath>,
    /// Variables exported to the command, in order.
    pub env: Vec<(String, String)>,
    /// Standard input.
    pub stdin: Stdin,
    /// Deadline after which the whole process group is killed and the status is
    /// [`ExitStatus::TimedOut`].
    pub timeout: Option<Duration>,
    /// Cancelling this token kills the whole process group; the status is then
    /// [`ExitStatus::Cancelled`].
    pub cancel: Option<CancellationToken>,
    /// When the command exits, kill what it left running in its process group
    /// (children started with `&`), so the call leaves nothing behind. A backend may
    /// do it where the command runs (the SSH wrapper does, at no extra round trip);
    /// [`Process::wait`] then also asks the backend's [`ProcessControl::kill`] (a
    /// signal locally; a no-op for a backend whose command has already ended).
    pub kill_group_on_exit: bool,
}

impl ExecRequest {
    /// Runs `script` with `bash -c`.
    pub fn script(script: impl Into<String>) -> Self {
        Self::new(Command::Script(script.into()))
    }

    /// Runs `argv[0]` with the other words as its arguments, no shell interpretation.
    pub fn argv<I, S>(argv: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self::new(Command::Argv(argv.into_iter().map(Into::into).collect()))
    }

    fn new(command: Command) -> Self {
        ExecRequest {
            command,
            cwd: None,
            env: Vec::new(),
            stdin: Stdin::Null,
            timeout: None,
            cancel: None,
            kill_group_on_exit: false,
        }
    }

    /// Sets the working directory.
    pub fn cwd(mut self, cwd: RemotePath) -> Self {
        self.cwd = Some(cwd);
        self
    }

    /// Exports `key=value` to the command.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Sets standard input.
    pub fn stdin(mut self, stdin: Stdin) -> Self {
        self.stdin = stdin;
        self
    }

    /// Sets the timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Sets the cancellation token.
    pub fn cancel_token(mut self, token: CancellationToken) -> Self {
        self.cancel = Some(token);
        self
    }

    /// Kills what the command leaves running in its process group when it exits
    /// (see [`ExecRequest::kill_group_on_exit`]).
    pub fn kill_group_on_exit(mut self) -> Self {
        self.kill_group_on_exit = true;
        self
    }

    /// Checks what every backend must refuse: bad variable names, NUL bytes.
    pub fn validate(&self) -> Result<()> {
        for (key, value) in &self.env {
            if !quote::is_valid_env_name(key) {
                return Err(Error::invalid(format!(
                    "invalid environment variable name {key:?}: use letters, digits and _ and do not start with a digit"
                )));
            }
            if value.contains('\0') {
                return Err(Error::invalid(format!(
                    "environment variable {key} contains a NUL byte"
                )));
            }
        }
        let words: &[String] = match &self.command {
            Command::Script(s) => std::slice::from_ref(s),
            Command::Argv(w) => w,
        };
        if words.iter().any(|w| w.contains('\0')) {
            return Err(Error::invalid("command contains a NUL byte"));
        }
        self.command.to_script().map(|_| ())
    }

    /// The `bash` source that applies cwd and env, then runs the command: what remote
    /// backends send to the host. Non-interactive variables (`GIT_EDITOR=true`...) are
    /// exported first so a command never waits on an editor or a password prompt.
    pub fn to_shell_script(&self) -> Result<String> {
        self.validate()?;
        let mut s = String::from(NON_INTERACTIVE_EXPORTS);
        for (key, value) in &self.env {
            s.push_str(&format!("export {key}={}\n", quote::quote(value)));
        }
        if let Some(cwd) = &self.cwd {
            s.push_str(&format!("cd {} || exit 126\n", quote_path(cwd)));
        }
        s.push_str(&self.command.to_script()?);
        s.push('\n');
        Ok(s)
    }
}

/// Variables exported to every command so nothing waits for a human.
pub const NON_INTERACTIVE_ENV: &[(&str, &str)] = &[
    ("GIT_EDITOR", "true"),
    ("GIT_SEQUENCE_EDITOR", "true"),
    ("EDITOR", "true"),
    ("VISUAL", "true"),
    ("GIT_TERMINAL_PROMPT", "0"),
    ("GIT_PAGER", "cat"),
    ("PAGER", "cat"),
];

const NON_INTERACTIVE_EXPORTS: &str = "export GIT_EDITOR=true GIT_SEQUENCE_EDITOR=true EDITOR=true VISUAL=true GIT_TERMINAL_PROMPT=0 GIT_PAGER=cat PAGER=cat\n";

/// Quotes a path for the shell, keeping a leading `~/` unquoted so the shell expands it.
pub fn quote_path(path: &RemotePath) -> String {
    let s = path.as_str();
    if s == "~" {
        "~".into()
    } else if let Some(rest) = s.strip_prefix("~/") {
        format!("~/{}", quote::quote(rest))
    } else {
        quote::quote(s)
    }
}

/// How a process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", tag = "status", content = "value")]
pub enum ExitStatus {
    /// It exited with this code.
    Exited(i32),
    /// It was killed by this signal number.
    Signaled(i32),
    /// It ran past its timeout; its process group was killed.
    TimedOut,
    /// It was cancelled; its process group was killed.
    Cancelled,
}

impl ExitStatus {
    /// True for `Exited(0)`.
    pub fn success(self) -> bool {
        self == ExitStatus::Exited(0)
    }

    /// The exit code a shell would report: the code, 128+signal, 124 for a timeout
    /// (as timeout(1)), 130 for a cancellation (as Ctrl-C).
    pub fn shell_code(self) -> i32 {
        match self {
            ExitStatus::Exited(c) => c,
            ExitStatus::Signaled(s) => 128 + s,
            ExitStatus::TimedOut => 124,
            ExitStatus::Cancelled => 130,
        }
    }
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitStatus::Exited(c) => write!(f, "exit code {c}"),
            ExitStatus::Signaled(s) => write!(f, "killed by signal {s}"),
            ExitStatus::TimedOut => f.write_str("timed out"),
            ExitStatus::Cancelled => f.write_str("cancelled"),
        }
    }
}

/// The backend's side of a running process.
#[async_trait]
pub trait ProcessControl: Send {
    /// Waits for the process to end; returns `Exited` or `Signaled`. Must be
    /// cancel-safe: [`Process::wait`] may drop this future to kill the process.
    async fn wait(&mut self) -> Result<ExitStatus>;

    /// Kills the whole process group of the command (on the host, for remote
    /// backends), including background children it started. Idempotent.
    async fn kill(&mut self) -> Result<()>;
}

/// A running command. Take `stdin`/`stdout`/`stderr` to stream, then [`Process::wait`].
/// The timeout and cancellation of the request are enforced while `wait` runs.
///
/// **Dropping a `Process` whose end was not awaited kills it**, like `tokio::process`
/// with `kill_on_drop`: its whole process group is killed through the backend (on the
/// host for remote backends) on the current tokio runtime, and what it held (a remote
/// channel, a slot) is freed. So is dropping a future that owns one (a tool call that
/// is abandoned, [`Process::output`] dropped mid-way). Dropped outside a tokio runtime,
/// nothing can be sent: the command is left to end by itself.
pub struct Process {
    /// Standard input, when the request asked for [`Stdin::Piped`].
    pub stdin: Option<BoxWrite>,
    /// Standard output.
    pub stdout: Option<BoxRead>,
    /// Standard error.
    pub stderr: Option<BoxRead>,
    control: Box<dyn ProcessControl>,
    deadline: Option<(Instant, Duration)>,
    cancel: Option<CancellationToken>,
    kill_group_on_exit: bool,
    host: String,
    /// `wait` returned a final status: nothing is left to kill on drop.
    ended: bool,
}

impl fmt::Debug for Process {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Process")
            .field("host", &self.host)
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}

/// Grace given to stdout/stderr to reach end of file after the process ended (a
/// background child may keep the pipe open forever).
const DRAIN_GRACE: Duration = Duration::from_millis(500);
/// How long to wait for a killed process to be reaped.
const KILL_GRACE: Duration = Duration::from_secs(10);

impl Process {
    /// Assembles a process from a backend's pipes and control. `req` supplies the
    /// timeout (counted from now), the cancellation token, and for [`Stdin::Bytes`]
    /// the bytes to feed: pass `stdin` as the pipe, it is written and closed in the
    /// background.
    pub fn new(
        host: impl Into<String>,
        stdin: Option<BoxWrite>,
        stdout: Option<BoxRead>,
        stderr: Option<BoxRead>,
        control: Box<dyn ProcessControl>,
        req: &ExecRequest,
    ) -> Self {
        let mut stdin = stdin;
        // Only `Bytes` consumes the pipe here: `Piped` hands it to the caller.
        if let Stdin::Bytes(bytes) = &req.stdin {
            if let Some(mut pipe) = stdin.take() {
                let bytes = bytes.clone();
                tokio::spawn(async move {
                    // A command that exits without reading its input closes the pipe:
                    // that is its business, not an error.
                    let _ = pipe.write_all(&bytes).await;
                    let _ = pipe.shutdown().await;
                });
            }
        } else if req.stdin == Stdin::Null {
            stdin = None;
        }
        Process {
            stdin,
            stdout,
            stderr,
            control,
            deadline: req.timeout.map(|t| (Instant::now() + t, t)),
            cancel: req.cancel.clone(),
            kill_group_on_exit: req.kill_group_on_exit,
            host: host.into(),
            ended: false,
        }
    }

    /// Waits for the process, killing its whole process group on timeout or
    /// cancellation, and when it exits if the request asked for
    /// [`ExecRequest::kill_group_on_exit`].
    pub async fn wait(&mut self) -> Result<ExitStatus> {
        let deadline = self.deadline;
        let cancel = self.cancel.clone().unwrap_or_default();
        let outcome = {
            let sleep = async {
                match deadline {
                    Some((at, _)) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                status = self.control.wait() => {
                    let status = status?;
                    self.ended = true;
                    if self.kill_group_on_exit {
                        // The command is done: its status stands even if the kill fails.
                        if let Err(e) = self.control.kill().await {
                            tracing::warn!(
                                host = %self.host,
                                error = %e,
                                "could not kill what the command left running"
                            );
                        }
                    }
                    return Ok(status);
                }
                () = sleep => ExitStatus::TimedOut,
                () = cancel.cancelled() => ExitStatus::Cancelled,
            }
        };
        self.control.kill().await?;
        self.ended = true;
        // Reap it so nothing is left behind; a backend that cannot confirm within the
        // grace period has still been asked to kill.
        let _ = tokio::time::timeout(KILL_GRACE, self.control.wait()).await;
        Ok(outcome)
    }

    /// Kills the process group now.
    pub async fn kill(&mut self) -> Result<()> {
        self.control.kill().await
    }

    /// Closes stdin (if piped), reads stdout and stderr to the end while waiting, and
    /// keeps at most `cap` bytes of each. A stream that fits in `cap` is kept whole in
    /// [`Output::stdout`] / [`Output::stderr`]; a longer one keeps its first third of
    /// `cap` there and its last two thirds in [`Output::stdout_tail`] /
    /// [`Output::stderr_tail`], so the end of a build log (where the error is) is never
    /// lost. The bytes in between are read, counted and dropped: memory stays at `cap`
    /// per stream however much the command prints.
    pub async fn output(mut self, cap: usize) -> Result<Output> {
        drop(self.stdin.take());
        let (done_tx, done_rx) = tokio::sync::watch::channel(false);
        let out = tokio::spawn(read_capped(self.stdout.take(), cap, done_rx.clone()));
        let err = tokio::spawn(read_capped(self.stderr.take(), cap, done_rx));
        let status = self.wait().await;
        let _ = done_tx.send(true);
        let join = |r: Result<Capture, tokio::task::JoinError>| {
            r.map_err(|e| Error::backend("cmux", format!("output reader failed: {e}")))
        };
        let (out, err) = (join(out.await)?, join(err.await)?);
        Ok(Output {
            status: status?,
            stdout: out.head,
            stdout_tail: out.tail.into(),
            stdout_dropped: out.dropped,
            stderr: err.head,
            stderr_tail: err.tail.into(),
            stderr_dropped: err.dropped,
        })
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if self.ended {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let mut control = std::mem::replace(&mut self.control, Box::new(Ended));
        runtime.spawn(async move {
            if control.kill().await.is_ok() {
                // Reaped, so the backend frees what the command held.
                let _ = tokio::time::timeout(KILL_GRACE, control.wait()).await;
            }
        });
    }
}

/// The control left in a dropped [`Process`] once its own went to the kill task.
struct Ended;

#[async_trait]
impl ProcessControl for Ended {
    async fn wait(&mut self) -> Result<ExitStatus> {
        Err(Error::backend("cmux", "the process was dropped"))
    }

    async fn kill(&mut self) -> Result<()> {
        Ok(())
    }
}

/// What [`Process::output`] keeps of one stream: everything up to `cap` bytes; past
/// that, the first `cap / 3` bytes (`head`) and the last `cap - cap / 3` (`tail`), with
/// the count of the bytes dropped in between.
#[derive(Debug)]
struct Capture {
    head: Vec<u8>,
    tail: std::collections::VecDeque<u8>,
    dropped: u64,
    cap: usize,
    /// True once the stream outgrew `cap` and `head` was cut to its final length.
    split: bool,
}

impl Capture {
    fn new(cap: usize) -> Self {
        Capture {
            head: Vec::new(),
            tail: std::collections::VecDeque::new(),
            dropped: 0,
            cap,
            split: false,
        }
    }

    fn head_cap(&self) -> usize {
        self.cap / 3
    }

    fn tail_cap(&self) -> usize {
        self.cap - self.head_cap()
    }

    fn push(&mut self, mut data: &[u8]) {
        if !self.split {
            let room = self.cap - self.head.len();
            if data.len() <= room {
                self.head.extend_from_slice(data);
                return;
            }
            // The stream outgrows the cap: what lies past the head's share starts the tail.
            self.split = true;
            let keep = self.head_cap();
            let rest = self.head.split_off(keep.min(self.head.len()));
            self.tail.extend(rest);
            let fill = keep.saturating_sub(self.head.len()).min(data.len());
            self.head.extend_from_slice(&data[..fill]);
            data = &data[fill..];
        }
        let tail_cap = self.tail_cap();
        if data.len() >= tail_cap {
            self.dropped += (self.tail.len() + data.len() - tail_cap) as u64;
            self.tail.clear();
            self.tail.extend(&data[data.len() - tail_cap..]);
        } else {
            let excess = (self.tail.len() + data.len()).saturating_sub(tail_cap);
            self.tail.drain(..excess);
            self.dropped += excess as u64;
            self.tail.extend(data);
        }
    }
}

async fn read_capped(
    stream: Option<BoxRead>,
    cap: usize,
    mut done: tokio::sync::watch::Receiver<bool>,
) -> Capture {
    let mut capture = Capture::new(cap);
    let Some(mut stream) = stream else {
        return capture;
    };
    let mut buf = vec![0u8; 64 * 1024];
    let mut grace: Option<Instant> = None;
    loop {
        let read = async {
            match grace {
                Some(at) => tokio::time::timeout_at(at, stream.read(&mut buf))
                    .await
                    .ok(),
                None => Some(stream.read(&mut buf).await),
            }
        };
        tokio::select! {
            r = read => match r {
                Some(Ok(0)) | Some(Err(_)) | None => break,
                Some(Ok(n)) => capture.push(&buf[..n]),
            },
            changed = done.changed(), if grace.is_none() => {
                if changed.is_err() || *done.borrow() {
                    grace = Some(Instant::now() + DRAIN_GRACE);
                }
            }
        }
    }
    capture
}

/// A finished command's status and (capped) output.
///
/// Each stream is kept whole when it fits in the cap given to [`Process::output`].
/// A longer stream keeps its beginning and its end: `stdout` holds the first third of
/// the cap, `stdout_tail` the last two thirds, and `stdout_dropped` counts the bytes
/// cut between them (likewise for stderr). So `stdout` followed by `stdout_tail` is
/// the whole stream exactly when `stdout_dropped` is 0.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Output {
    /// How it ended.
    pub status: ExitStatus,
    /// Standard output: all of it when it fitted in the cap, else its first bytes (a
    /// third of the cap).
    pub stdout: Vec<u8>,
    /// The last bytes of standard output (two thirds of the cap) when it did not fit;
    /// empty when it did.
    pub stdout_tail: Vec<u8>,
    /// Bytes of standard output read and dropped between `stdout` and `stdout_tail`.
    pub stdout_dropped: u64,
    /// Standard error: all of it when it fitted in the cap, else its first bytes.
    pub stderr: Vec<u8>,
    /// The last bytes of standard error when it did not fit; empty when it did.
    pub stderr_tail: Vec<u8>,
    /// Bytes of standard error read and dropped between `stderr` and `stderr_tail`.
    pub stderr_dropped: u64,
}

impl Output {
    /// Stdout as text (invalid UTF-8 replaced): the whole stream, or its beginning, a
    /// line `[... N bytes cut ...]` and its end.
    pub fn stdout_lossy(&self) -> String {
        lossy(&self.stdout, self.stdout_dropped, &self.stdout_tail)
    }

    /// Stderr as text (invalid UTF-8 replaced), cut in the middle as
    /// [`Output::stdout_lossy`] is.
    pub fn stderr_lossy(&self) -> String {
        lossy(&self.stderr, self.stderr_dropped, &self.stderr_tail)
    }
}

fn lossy(head: &[u8], dropped: u64, tail: &[u8]) -> String {
    let mut text = String::from_utf8_lossy(head).into_owned();
    if dropped > 0 {
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&format!("[... {dropped} bytes cut ...]\n"));
    }
    text.push_str(&String::from_utf8_lossy(tail));
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argv_becomes_exec_of_quoted_words() {
        let cmd = Command::Argv(vec!["printf".into(), "%s".into(), "a b".into()]);
        assert_eq!(cmd.to_script().expect("script"), "exec printf %s 'a b'");
        assert!(Command::Argv(vec![]).to_script().is_err());
    }

    #[test]
    fn shell_script_applies_env_and_cwd() {
        let req = ExecRequest::script("echo hi")
            .env("A", "x y")
            .cwd(RemotePath::new("~/my dir").expect("path"));
        let s = req.to_shell_script().expect("script");
        assert!(s.contains("export A='x y'\n"));
        assert!(s.contains("cd ~/'my dir' || exit 126\n"));
        assert!(s.ends_with("echo hi\n"));
    }

    fn captured(cap: usize, chunks: &[&[u8]]) -> (Vec<u8>, Vec<u8>, u64) {
        let mut c = Capture::new(cap);
        for chunk in chunks {
            c.push(chunk);
        }
        (c.head, c.tail.into(), c.dropped)
    }

    #[test]
    fn capture_keeps_a_stream_that_fits_whole() {
        assert_eq!(
            captured(9, &[b"abc", b"defghi"]),
            (b"abcdefghi".to_vec(), vec![], 0)
        );
        assert_eq!(captured(9, &[]), (vec![], vec![], 0));
    }

    #[test]
    fn capture_keeps_head_and_tail_of_a_longer_stream() {
        // cap 9: head 3, tail 6, whatever the chunking.
        let stream = b"0123456789abcdefghijklmnopqrstuvwxyz";
        let want = (b"012".to_vec(), b"uvwxyz".to_vec(), 27);
        assert_eq!(captured(9, &[stream]), want);
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(captured(9, &bytes), want);
        let fours: Vec<&[u8]> = stream.chunks(4).collect();
        assert_eq!(captured(9, &fours), want);
        assert_eq!(captured(9, &[b"0123456789", b"ab"]).0, b"012".to_vec());
        assert_eq!(captured(9, &[b"0123456789", b"ab"]).1, b"6789ab".to_vec());
        // One byte over: the byte after the head is the only one dropped.
        assert_eq!(
            captured(9, &[b"0123456789"]),
            (b"012".to_vec(), b"456789".to_vec(), 1)
        );
        assert_eq!(captured(0, &[b"ab"]), (vec![], vec![], 2));
    }

    #[test]
    fn lossy_text_marks_the_cut() {
        let out = Output {
            status: ExitStatus::Exited(0),
            stdout: b"start".to_vec(),
            stdout_tail: b"end\n".to_vec(),
            stdout_dropped: 42,
            stderr: b"whole\n".to_vec(),
            stderr_tail: Vec::new(),
            stderr_dropped: 0,
        };
        assert_eq!(out.stdout_lossy(), "start\n[... 42 bytes cut ...]\nend\n");
        assert_eq!(out.stderr_lossy(), "whole\n");
    }

    #[test]
    fn bad_env_names_are_refused() {
        assert!(ExecRequest::script("true")
            .env("A-B", "1")
            .validate()
            .is_err());
        assert!(ExecRequest::script("true")
            .env("A", "a\0")
            .validate()
            .is_err());
    }
}
