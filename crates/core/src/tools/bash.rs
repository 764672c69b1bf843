//! `bash`: runs a shell command in the workspace.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::text::cut_to_chars;
use super::ToolContext;
use crate::error::{Error, Result};
use crate::exec::{ExecRequest, ExitStatus};
use crate::runtime::RuntimeExt;

/// Timeout applied when the input gives none, in seconds.
pub const BASH_DEFAULT_TIMEOUT_SECS: f64 = 120.0;
/// Characters of each stream shown to the model.
const MAX_CHARS: usize = 30_000;
/// Bytes kept per stream before cutting to characters (a character is at most 4 bytes).
const MAX_BYTES: usize = MAX_CHARS * 4;

/// Input of [`bash`].
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct BashInput {
    /// The script, run with `bash -c`.
    pub command: String,
    /// Seconds before the command and everything it started are killed (default 120).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_secs: Option<f64>,
    /// Working directory (default: the workspace); relative to the workspace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
}

/// Result of [`bash`]. A non-zero exit is a result, not an error.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct BashOutput {
    /// Standard output (at most 30,000 characters).
    pub stdout: String,
    /// Standard error (at most 30,000 characters).
    pub stderr: String,
    /// Bytes of stdout cut from what is shown.
    pub stdout_cut_bytes: u64,
    /// Bytes of stderr cut from what is shown.
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

    /// What a model sees: stdout, stderr (labelled), notes on cut output, the status.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let mut section = |text: &str, cut: u64, name: &str, label: bool| {
            if text.is_empty() && cut == 0 {
                return;
            }
            if !out.is_empty() && !out.ends_with('\n') {
                out.push('\n');
            }
            if label {
                out.push_str("[stderr]\n");
            }
            out.push_str(text);
            if cut > 0 {
                if !out.ends_with('\n') {
                    out.push('\n');
                }
                out.push_str(&format!("[... {cut} more bytes of {name} cut]"));
            }
        };
        section(&self.stdout, self.stdout_cut_bytes, "stdout", false);
        section(&self.stderr, self.stderr_cut_bytes, "stderr", true);
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

fn fmt_secs(secs: f64) -> String {
    if secs.fract() == 0.0 {
        format!("{secs:.0}")
    } else {
        format!("{secs}")
    }
}

/// Runs `input.command` with `bash -c` in the workspace (or `cwd`), with a timeout
/// (default 120 s) that kills the whole process group.
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
    let mut req = ExecRequest::script(input.command)
        .cwd(cwd.clone())
        .timeout(timeout);
    if let Some(token) = cancel {
        req = req.cancel_token(token);
    }
    let out = ctx.runtime.output(req, MAX_BYTES).await?;
    if out.status == ExitStatus::Exited(126)
        && out.stdout.is_empty()
        && ctx.runtime.stat(&cwd).await.is_err()
    {
        // The `cd` into cwd failed (exit 126 from the exec prelude): say which path.
        return Err(Error::invalid(format!(
            "{}: cannot run in {cwd}: it is not an existing directory; give an existing cwd \
             (relative to the workspace {}) or omit it",
            ctx.host(),
            ctx.root
        )));
    }
    let (stdout, out_cut) = cut_to_chars(&out.stdout, MAX_CHARS);
    let (stderr, err_cut) = cut_to_chars(&out.stderr, MAX_CHARS);
    Ok(BashOutput {
        stdout,
        stderr,
        stdout_cut_bytes: out_cut + out.stdout_dropped,
        stderr_cut_bytes: err_cut + out.stderr_dropped,
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
            stderr: stderr.into(),
            stdout_cut_bytes: 0,
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
        assert_eq!(
            cut.to_text(),
            "x\n[... 12345 more bytes of stdout cut]\n[killed by signal 9]"
        );
        let timed = output("", "", ExitStatus::TimedOut).to_text();
        assert!(timed.contains("timed out after 120 s"), "{timed}");
    }
}
