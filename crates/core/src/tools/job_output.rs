//! `job_output`: a background job's output since the last read, and how it stands.

use std::time::Duration;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::cut::keep_ends;
use super::tool::{Effect, Tool, ToolResult};
use super::ToolContext;
use crate::error::{Error, Result};
use crate::jobs::{JobId, JobState, Jobs, ReadLimit, JOB_MAX_WAIT_SECS};

/// Bytes shown from the beginning of new output too long to show whole.
pub const JOB_HEAD_BYTES: usize = ReadLimit::AGENT.head;
/// Bytes shown from the end of new output too long to show whole.
pub const JOB_TAIL_BYTES: usize = ReadLimit::AGENT.tail;

/// The `job_output` tool: see [`JobOutputTool::DESCRIPTION`](Tool::DESCRIPTION).
#[derive(Clone, Copy, Debug, Default)]
pub struct JobOutputTool;

#[async_trait]
impl Tool for JobOutputTool {
    const NAME: &'static str = "job_output";
    const DESCRIPTION: &'static str = "Read a background job's output (stdout and stderr \
        interleaved) written since the last read, and whether it is still running or how it \
        ended (exit code or signal). Jobs are started by bash with run_in_background in \
        this workspace; each read returns only what is new, so call it again to follow a \
        server's log or a long build. With wait_secs, waits (up to 600 s) for new output or \
        the job's end when there is none yet: use it instead of sleeping in bash. New \
        output longer than 30,000 bytes keeps its first 10,000 and last 20,000 bytes, with \
        a note of how much was cut and the file on the host holding all of it (grep or \
        read_file it). A job is removed once it has ended and its output was read, or 24 \
        hours after it ended.";
    const EFFECT: Effect = Effect::ReadOnly;
    type Input = JobOutputInput;
    type Output = JobOutput;

    async fn run(
        &self,
        ctx: &ToolContext,
        input: JobOutputInput,
        cancel: CancellationToken,
    ) -> Result<JobOutput> {
        job_output(ctx, input, Some(cancel)).await
    }
}

/// Input of [`job_output`].
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JobOutputInput {
    /// The job id that bash with run_in_background returned (or that jobs lists).
    pub id: String,
    /// Seconds to wait for new output or the job's end when there is none yet (default
    /// 0: return at once; at most 600). Returns as soon as anything new arrives. Stay
    /// below your client's tool-call timeout (often 60 s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_secs: Option<f64>,
}

/// Result of [`job_output`].
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct JobOutput {
    /// The job.
    pub id: JobId,
    /// How it stands.
    #[serde(flatten)]
    pub state: JobState,
    /// The new output: all of it, or its first 10,000 bytes when it was cut.
    pub output: String,
    /// The last 20,000 bytes of the new output when it was cut; else empty.
    pub output_tail: String,
    /// Bytes cut between `output` and `output_tail` (still in `output_path`).
    pub cut_bytes: u64,
    /// Bytes the job has written in all.
    pub output_bytes: u64,
    /// The file on the host that holds the job's whole output.
    pub output_path: String,
}

impl JobOutput {
    /// What a model sees: the new output, a note where it was cut, the job's state.
    pub fn to_text(&self) -> String {
        let mut out = self.output.clone();
        if self.cut_bytes > 0 {
            if !out.is_empty() && !out.ends_with('\n') {
                out.push('\n');
            }
            out.push_str(&format!(
                "[... {} bytes cut here; the first {JOB_HEAD_BYTES} and last {JOB_TAIL_BYTES} \
                 bytes are shown; all of the output is in {:?} on the host until the \
                 job is removed: grep or read_file it ...]\n",
                self.cut_bytes, self.output_path
            ));
        }
        out.push_str(&self.output_tail);
        if out.is_empty() {
            out.push_str("(no new output)");
        }
        if !out.ends_with('\n') {
            out.push('\n');
        }
        let id = &self.id;
        out.push_str(&match self.state {
            JobState::Running => format!(
                "[job {id} is still running: call job_output again for more (wait_secs waits \
                 for it), job_kill stops it]"
            ),
            JobState::Lost => format!(
                "[job {id} is lost: its supervisor is gone without recording how the job \
                 ended (it was killed, or the host rebooted); job_kill ends what may be left \
                 of it]"
            ),
            state => format!("[job {id} {state}]"),
        });
        out
    }
}

impl ToolResult for JobOutput {
    fn text(&self) -> String {
        self.to_text()
    }
}

/// The output of a background job since the last read, waiting up to `wait_secs` for
/// some when there is none yet. `cancel` stops the wait.
pub async fn job_output(
    ctx: &ToolContext,
    input: JobOutputInput,
    cancel: Option<CancellationToken>,
) -> Result<JobOutput> {
    let id = JobId::parse(&input.id)?;
    let wait = match input.wait_secs {
        None => Duration::ZERO,
        Some(secs) if secs.is_finite() && secs >= 0.0 => {
            Duration::from_secs_f64(secs.min(JOB_MAX_WAIT_SECS))
        }
        Some(secs) => {
            return Err(Error::invalid(format!(
                "wait_secs {secs} is not a number of seconds from 0 to {JOB_MAX_WAIT_SECS}: \
                 give e.g. 10"
            )))
        }
    };
    let read = Jobs::from(ctx)
        .read(&id, wait, ReadLimit::AGENT, cancel)
        .await?;
    // The host cut in bytes; this only drops the pieces of characters the cuts split
    // (a byte is at most a character: nothing more is cut).
    let shown = keep_ends(
        &read.head,
        read.cut_bytes,
        &read.tail,
        JOB_HEAD_BYTES,
        JOB_TAIL_BYTES,
    );
    Ok(JobOutput {
        id,
        state: read.state,
        output: shown.head,
        output_tail: shown.tail,
        cut_bytes: shown.cut,
        output_bytes: read.output_bytes,
        output_path: read.output_path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn output(text: &str, state: JobState) -> JobOutput {
        JobOutput {
            id: JobId::parse("k3x9mf2a").expect("id"),
            state,
            output: text.into(),
            output_tail: String::new(),
            cut_bytes: 0,
            output_bytes: text.len() as u64,
            output_path: "/home/u/.cache/cmux/jobs/w-1/k3x9mf2a/out".into(),
        }
    }

    #[test]
    fn text_shows_output_cut_note_and_state() {
        assert_eq!(
            output("", JobState::Running).to_text(),
            "(no new output)\n[job k3x9mf2a is still running: call job_output again for more \
             (wait_secs waits for it), job_kill stops it]"
        );
        assert_eq!(
            output("done\n", JobState::Exited { code: 3 }).to_text(),
            "done\n[job k3x9mf2a exited with code 3]"
        );
        let mut cut = output("head", JobState::Signaled { signal: 15 });
        cut.cut_bytes = 99;
        cut.output_tail = "tail\n".into();
        assert_eq!(
            cut.to_text(),
            "head\n[... 99 bytes cut here; the first 10000 and last 20000 bytes are \
             shown; all of the output is in \"/home/u/.cache/cmux/jobs/w-1/k3x9mf2a/out\" on \
             the host until the job is removed: grep or read_file it ...]\ntail\n[job \
             k3x9mf2a killed by signal 15]"
        );
        assert!(output("", JobState::Lost).to_text().contains("is lost"));
    }
}
