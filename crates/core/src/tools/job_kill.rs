//! `job_kill`: ends a background job and everything it started.

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::tool::{Effect, Tool, ToolResult};
use super::ToolContext;
use crate::error::Result;
use crate::jobs::{JobId, JobKilled, JobState, Jobs};

/// The `job_kill` tool: see [`JobKillTool::DESCRIPTION`](Tool::DESCRIPTION).
#[derive(Clone, Copy, Debug, Default)]
pub struct JobKillTool;

#[async_trait]
impl Tool for JobKillTool {
    const NAME: &'static str = "job_kill";
    const DESCRIPTION: &'static str = "Stop a background job of this workspace (started by \
        bash with run_in_background) and every process it started: SIGTERM to its process \
        group, SIGKILL 3 s later if it is still running. Returns how it ended. A job that \
        has already ended is left as it is. Output not read yet stays readable with \
        job_output.";
    const EFFECT: Effect = Effect::Idempotent;
    type Input = JobKillInput;
    type Output = JobKillOutput;

    async fn run(
        &self,
        ctx: &ToolContext,
        input: JobKillInput,
        _cancel: CancellationToken,
    ) -> Result<JobKillOutput> {
        job_kill(ctx, input).await
    }
}

/// Input of [`job_kill`].
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JobKillInput {
    /// The job id that bash with run_in_background returned (or that jobs lists).
    pub id: String,
}

/// Result of [`job_kill`].
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct JobKillOutput {
    /// What the kill did.
    #[serde(flatten)]
    pub killed: JobKilled,
}

impl JobKillOutput {
    /// What a model sees.
    pub fn to_text(&self) -> String {
        let JobKilled { id, before, after } = &self.killed;
        match (before, after) {
            (JobState::Running, JobState::Running) => format!(
                "Job {id} was sent SIGTERM and SIGKILL but has not recorded its end yet; check \
                 with job_output."
            ),
            (JobState::Running, after) => format!(
                "Job {id} stopped: {after}. Output not read yet stays readable with job_output."
            ),
            (JobState::Lost, _) => format!(
                "Job {id} was lost (its supervisor was gone); what was left of its process \
                 group has been killed."
            ),
            (before, _) => format!("Job {id} had already ended ({before}): nothing to stop."),
        }
    }
}

impl ToolResult for JobKillOutput {
    fn text(&self) -> String {
        self.to_text()
    }
}

/// Ends a background job (its whole process group).
pub async fn job_kill(ctx: &ToolContext, input: JobKillInput) -> Result<JobKillOutput> {
    let id = JobId::parse(&input.id)?;
    let killed = Jobs::from(ctx).kill(&id).await?;
    Ok(JobKillOutput { killed })
}
