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
            host: host.into(),
            ended: false,
        }
    }

    /// Waits for the process, killing its whole process group on timeout or
    /// cancellation.
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
                    self.ended = status.is_ok();
                    return status;
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
    /// keeps at most `cap` bytes of each; the rest is drained and counted.
    pub async fn output(mut self, cap: usize) -> Result<Output> {
        drop(self.stdin.take());
        let (done_tx, done_rx) = tokio::sync::watch::channel(false);
        let out = tokio::spawn(read_capped(self.stdout.take(), cap, done_rx.clone()));
        let err = tokio::spawn(read_capped(self.stderr.take(), cap, done_rx));
        let status = self.wait().await;
        let _ = done_tx.send(true);
        let join = |r: Result<Capped, tokio::task::JoinError>| {
            r.map_err(|e| Error::backend("cmux", format!("output reader failed: {e}")))
        };
        let (out, err) = (join(out.await)?, join(err.await)?);
        Ok(Output {
            status: status?,
            stdout: out.bytes,
            stderr: err.bytes,
            stdout_dropped: out.dropped,
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

struct Capped {
    bytes: Vec<u8>,
    dropped: u64,
}

async fn read_capped(
    stream: Option<BoxRead>,
    cap: usize,
    mut done: tokio::sync::watch::Receiver<bool>,
) -> Capped {
    let mut capped = Capped {
        bytes: Vec::new(),
        dropped: 0,
    };
    let Some(mut stream) = stream else {
        return capped;
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
                Some(Ok(n)) => {
                    let room = cap.saturating_sub(capped.bytes.len());
                    let keep = room.min(n);
                    capped.bytes.extend_from_slice(&buf[..keep]);
                    capped.dropped += (n - keep) as u64;
                }
            },
            changed = done.changed(), if grace.is_none() => {
                if changed.is_err() || *done.borrow() {
                    grace = Some(Instant::now() + DRAIN_GRACE);
                }
            }
        }
    }
    capped
}

/// A finished command's status and (capped) output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Output {
    /// How it ended.
    pub status: ExitStatus,
    /// Standard output, at most the cap.
    pub stdout: Vec<u8>,
    /// Standard error, at most the cap.
    pub stderr: Vec<u8>,
    /// Bytes of stdout read past the cap and dropped.
    pub stdout_dropped: u64,
    /// Bytes of stderr read past the cap and dropped.
    pub stderr_dropped: u64,
}

impl Output {
    /// Stdout as text (invalid UTF-8 replaced).
    pub fn stdout_lossy(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Stderr as text (invalid UTF-8 replaced).
    pub fn stderr_lossy(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
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
