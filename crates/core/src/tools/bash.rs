//! `bash`: runs a shell command in the workspace.

use std::time::Duration;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::cut::keep_ends;
use super::tool::{Effect, Tool, ToolResult};
use super::ToolContext;
use crate::error::{Error, Result};
use crate::exec::{ExecRequest, ExitStatus};
use crate::jobs::{JobStarted, Jobs};
use crate::path::RemotePath;
use crate::runtime::{FileKind, RuntimeExt};

/// Timeout applied when the input gives none, in seconds.
pub const BASH_DEFAULT_TIMEOUT_SECS: f64 = 120.0;
/// Characters shown from the beginning of a stream too long to show whole.
pub const BASH_HEAD_CHARS: usize = 10_000;
/// Characters shown from the end of a stream too long to show whole (where a build or
/// test run reports its error).
pub const BASH_TAIL_CHARS: usize = 20_000;
/// Bytes kept per stream before cutting to characters (a character is at most 4
/// bytes). [`Process::output`](crate::Process::output) keeps a third of this from the
/// beginning and two thirds from the end, matching the head and tail characters.
const CAPTURE_BYTES: usize = (BASH_HEAD_CHARS + BASH_TAIL_CHARS) * 4;
const _: () = assert!(CAPTURE_BYTES / 3 == BASH_HEAD_CHARS * 4);

/// The `bash` tool: see [`BashTool::DESCRIPTION`](Tool::DESCRIPTION).
#[derive(Clone, Copy, Debug, Default)]
pub struct BashTool;

#[async_trait]
impl Tool for BashTool {
    const NAME: &'static str = "bash";
    const DESCRIPTION: &'static str = "Run a shell command with `bash -c` in the workspace \
        and return its stdout, its stderr (after a [stderr] line) and its exit code. Each \
        call starts a fresh non-interactive shell in the workspace directory (or `cwd`): \
        `cd`, variables and shell state do not carry over to the next call, stdin is empty, \
        and editors, pagers and password prompts are disabled. The command is killed, with \
        every process it started, after `timeout_secs` (default 120). Processes started \
        with a plain `&` are killed too when the call ends, so `&` cannot leave a server \
        or watcher running: for that, set `run_in_background` to true. The call then \
        returns a job id at once and the command keeps running, its output kept on the \
        host; read the output with job_output, stop it with job_kill, list jobs with jobs. \
        Long output keeps its first 10,000 and last 20,000 characters \
        per stream, with a note of how much was cut between them: the end of a build or \
        test log is never lost; to see everything, redirect the output to a file and grep \
        or read it. A non-zero exit is returned as an error result showing the exit code. \
        Use it for builds, tests, git and whatever the file tools do not cover; prefer \
        read_file, edit_file, write_file, grep and glob for reading, changing and \
        searching files.";
    const EFFECT: Effect = Effect::NotIdempotent {
        if_interrupted: "the command may or may not have run: check before repeating it",
    };
    type Input = BashInput;
    type Output = BashResult;

    async fn run(
        &self,
        ctx: &ToolContext,
        input: BashInput,
        cancel: CancellationToken,
    ) -> Result<BashResult> {
        if input.run_in_background {
            bash_background(ctx, input)
                .await
                .map(BashResult::Background)
        } else {
            run(ctx, input, Some(cancel))
                .await
                .map(BashResult::Finished)
        }
    }
}

/// Input of [`bash`].
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BashInput {
    /// The shell command to run with `bash -c`, e.g. `cargo test 2>&1 | tail -50`.
    /// Runs non-interactively: stdin is empty and editors and pagers are disabled.
    pub command: String,
    /// Seconds before the command and every process it started are killed (default
    /// 120). Raise it for long builds or test suites.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_secs: Option<f64>,
    /// Working directory, relative to the workspace or absolute (default: the
    /// workspace root). Each call starts fresh: `cd` in one call does not carry over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// Start the command as a background job and return its id at once, instead of
    /// waiting for it: for dev servers, watchers, and builds or test runs you want to
    /// check on later. The job keeps running after this call (`timeout_secs` does not
    /// apply); its stdout and stderr go, interleaved, to a file on the host (not a
    /// terminal: programs that buffer their output then, such as python without `-u`,
    /// show it late). Read new output with job_output, stop it with job_kill. Jobs
    /// started here end when this session ends.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub run_in_background: bool,
}

/// What the `bash` tool returns: a finished command's output, or the job a
/// `run_in_background` call started.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(untagged)]
pub enum BashResult {
    /// The command ran to its end (or its timeout).
    Finished(BashOutput),
    /// The command runs on as a background job.
    Background(BashBackground),
}

impl ToolResult for BashResult {
    fn text(&self) -> String {
        match self {
            BashResult::Finished(out) => out.to_text(),
            BashResult::Background(job) => job.to_text(),
        }
    }

    fn is_error(&self) -> bool {
        match self {
            BashResult::Finished(out) => out.is_error(),
            BashResult::Background(_) => false,
        }
    }
}

/// A command started in the background by `bash` with `run_in_background`.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct BashBackground {
    /// The job.
    #[serde(flatten)]
    pub job: JobStarted,
    /// The command as given.
    pub command: String,
    /// True when the job ends with the session that started it (an MCP session).
    pub ends_with_session: bool,
}

impl BashBackground {
    /// What a model sees: the job id and how to follow it.
    pub fn to_text(&self) -> String {
        let id = &self.job.id;
        let end = if self.ends_with_session {
            "It runs until it exits, is killed with job_kill, or this session ends."
        } else {
            "It runs until it exits or is killed with job_kill."
        };
        format!(
            "Started background job {id} (process group {}). {end}\nRead its output with \
             job_output {{\"id\": \"{id}\"}} (set wait_secs to wait for new output or its \
             end); list jobs with jobs.",
            self.job.pgid
        )
    }
}

/// Result of [`bash`]. A non-zero exit is a result, not an error.
///
/// A stream of at most 30,000 characters is kept whole in `stdout` / `stderr`. A
/// longer one keeps its first 10,000 characters there and its last 20,000 in
/// `stdout_tail` / `stderr_tail`, and counts the bytes cut between them.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct BashOutput {
    /// Standard output: all of it, or its first 10,000 characters when it was cut.
    pub stdout: String,
    /// The last 20,000 characters of standard output when it was cut; else empty.
    pub stdout_tail: String,
    /// Bytes of standard output cut between `stdout` and `stdout_tail`.
    pub stdout_cut_bytes: u64,
    /// Standard error: all of it, or its first 10,000 characters when it was cut.
    pub stderr: String,
    /// The last 20,000 characters of standard error when it was cut; else empty.
    pub stderr_tail: String,
    /// Bytes of standard error cut between `stderr` and `stderr_tail`.
    pub stderr_cut_bytes: u64,
    /// How the command ended.
    pub status: ExitStatus,
    /// The timeout that applied, in seconds.
    pub timeout_secs: f64,
}

impl BashOutput {
    /// The exit code a shell would report (124 on timeout, 128+N for signal N).
    pub fn exit_code(&self) -> i32 {
        self.status.shell_code()
    }

    /// What a model sees: stdout, stderr (labelled), a note where output was cut, the
    /// status.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let mut section = |head: &str, cut: u64, tail: &str, name: &str, label: bool| {
            if head.is_empty() && cut == 0 && tail.is_empty() {
                return;
            }
            if !out.is_empty() && !out.ends_with('\n') {
                out.push('\n');
            }
            if label {
                out.push_str("[stderr]\n");
            }
            out.push_str(head);
            if cut > 0 {
                if !out.ends_with('\n') {
                    out.push('\n');
                }
                out.push_str(&format!(
                    "[... {cut} bytes of {name} cut here; the first {BASH_HEAD_CHARS} and last \
                     {BASH_TAIL_CHARS} characters are shown: to see everything, redirect the \
                     output to a file and grep or read it ...]\n"
                ));
            }
            out.push_str(tail);
        };
        section(
            &self.stdout,
            self.stdout_cut_bytes,
            &self.stdout_tail,
            "stdout",
            false,
        );
        section(
            &self.stderr,
            self.stderr_cut_bytes,
            &self.stderr_tail,
            "stderr",
            true,
        );
        if out.is_empty() {
            out.push_str("(no output)");
        }
        if !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(&match self.status {
            ExitStatus::Exited(code) => format!("[exit code {code}]"),
            ExitStatus::Signaled(sig) => format!("[killed by signal {sig}]"),
            ExitStatus::TimedOut => format!(
                "[timed out after {} s: the command and its background processes were killed; \
                 pass a larger timeout_secs or run it in smaller steps]",
                fmt_secs(self.timeout_secs)
            ),
            ExitStatus::Cancelled => "[cancelled]".to_owned(),
        });
        out
    }
}

impl ToolResult for BashOutput {
    fn text(&self) -> String {
        self.to_text()
    }

    fn is_error(&self) -> bool {
        !self.status.success()
    }
}

/// Starts `input.command` as a background job in the workspace (or `cwd`) and returns
/// at once; `timeout_secs` does not apply. The job is recorded in the context's job
/// session, if it has one, so it ends with the session.
pub async fn bash_background(ctx: &ToolContext, input: BashInput) -> Result<BashBackground> {
    if input.command.trim().is_empty() {
        return Err(Error::invalid(
            "command is empty: give a shell command to run",
        ));
    }
    let cwd = ctx.resolve_dir(input.cwd.as_deref()).await?;
    // A job that cannot enter its directory would only show exit 126 later: check now
    // (one round trip, only when a cwd is given).
    if input.cwd.is_some()
        && !matches!(ctx.runtime.stat(&cwd).await, Ok(meta) if meta.kind == FileKind::Dir)
    {
        return Err(not_a_directory(ctx, &cwd));
    }
    let job = Jobs::from(ctx)
        .start(ExecRequest::script(input.command.clone()).cwd(cwd))
        .await?;
    let session = ctx.job_session();
    if let Some(session) = session {
        session.record(job.id.clone());
    }
    Ok(BashBackground {
        job,
        command: input.command,
        ends_with_session: session.is_some(),
    })
}

fn not_a_directory(ctx: &ToolContext, cwd: &RemotePath) -> Error {
    Error::invalid(format!(
        "{}: cannot run in {cwd}: it is not an existing directory; give an existing cwd \
         (relative to the workspace {}) or omit it",
        ctx.host(),
        ctx.root
    ))
}

fn fmt_secs(secs: f64) -> String {
    if secs.fract() == 0.0 {
        format!("{secs:.0}")
    } else {
        format!("{secs}")
    }
}

/// Runs `input.command` with `bash -c` in the workspace (or `cwd`), with a timeout
/// (default 120 s) that kills the whole process group. A background request
/// (`run_in_background`) is refused: use [`bash_background`].
pub async fn bash(ctx: &ToolContext, input: BashInput) -> Result<BashOutput> {
    run(ctx, input, None).await
}

/// [`bash`], killed when `cancel` is cancelled (status [`ExitStatus::Cancelled`]).
pub async fn bash_cancellable(
    ctx: &ToolContext,
    input: BashInput,
    cancel: CancellationToken,
) -> Result<BashOutput> {
    run(ctx, input, Some(cancel)).await
}

async fn run(
    ctx: &ToolContext,
    input: BashInput,
    cancel: Option<CancellationToken>,
) -> Result<BashOutput> {
    if input.run_in_background {
        return Err(Error::invalid(
            "run_in_background is set: start background jobs with bash_background",
        ));
    }
    let timeout_secs = input.timeout_secs.unwrap_or(BASH_DEFAULT_TIMEOUT_SECS);
    let timeout = Duration::try_from_secs_f64(timeout_secs)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| {
            Error::invalid(format!(
                "timeout_secs {timeout_secs} is not a positive number of seconds: give e.g. 120"
            ))
        })?;
    if input.command.trim().is_empty() {
        return Err(Error::invalid(
            "command is empty: give a shell command to run",
        ));
    }
    let cwd = ctx.resolve_dir(input.cwd.as_deref()).await?;
    // A plain `&` does not outlive the call: background jobs need a supervisor that
    // keeps their output and lets the agent stop them.
    let mut req = ExecRequest::script(input.command)
        .cwd(cwd.clone())
        .timeout(timeout)
        .kill_group_on_exit();
    if let Some(token) = cancel {
        req = req.cancel_token(token);
    }
    let out = ctx.runtime.output(req, CAPTURE_BYTES).await?;
    if out.status == ExitStatus::Exited(126)
        && out.stdout.is_empty()
        && ctx.runtime.stat(&cwd).await.is_err()
    {
        // The `cd` into cwd failed (exit 126 from the exec prelude): say which path.
        return Err(not_a_directory(ctx, &cwd));
    }
    let stdout = keep_ends(
        &out.stdout,
        out.stdout_dropped,
        &out.stdout_tail,
        BASH_HEAD_CHARS,
        BASH_TAIL_CHARS,
    );
    let stderr = keep_ends(
        &out.stderr,
        out.stderr_dropped,
        &out.stderr_tail,
        BASH_HEAD_CHARS,
        BASH_TAIL_CHARS,
    );
    Ok(BashOutput {
        stdout: stdout.head,
        stdout_tail: stdout.tail,
        stdout_cut_bytes: stdout.cut,
        stderr: stderr.head,
        stderr_tail: stderr.tail,
        stderr_cut_bytes: stderr.cut,
        status: out.status,
        timeout_secs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn output(stdout: &str, stderr: &str, status: ExitStatus) -> BashOutput {
        BashOutput {
            stdout: stdout.into(),
            stdout_tail: String::new(),
            stdout_cut_bytes: 0,
            stderr: stderr.into(),
            stderr_tail: String::new(),
            stderr_cut_bytes: 0,
            status,
            timeout_secs: 120.0,
        }
    }

    #[test]
    fn text_shows_streams_cut_notes_and_status() {
        assert_eq!(
            output("", "", ExitStatus::Exited(0)).to_text(),
            "(no output)\n[exit code 0]"
        );
        assert_eq!(
            output("a\n", "b", ExitStatus::Exited(1)).to_text(),
            "a\n[stderr]\nb\n[exit code 1]"
        );
        let mut cut = output("x", "", ExitStatus::Signaled(9));
        cut.stdout_cut_bytes = 12345;
        cut.stdout_tail = "the end\n".into();
        assert_eq!(
            cut.to_text(),
            "x\n[... 12345 bytes of stdout cut here; the first 10000 and last 20000 \
             characters are shown: to see everything, redirect the output to a file and grep \
             or read it ...]\nthe end\n[killed by signal 9]"
        );
        let timed = output("", "", ExitStatus::TimedOut).to_text();
        assert!(timed.contains("timed out after 120 s"), "{timed}");
    }
}
