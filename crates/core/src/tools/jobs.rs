//! `jobs`: the background jobs of the workspace.

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::tool::{Effect, Tool, ToolResult};
use super::ToolContext;
use crate::error::Result;
use crate::jobs::{JobInfo, Jobs};

/// Characters of a command shown in the listing (its first line).
const SHOWN_COMMAND_CHARS: usize = 80;

/// The `jobs` tool: see [`JobsTool::DESCRIPTION`](Tool::DESCRIPTION).
#[derive(Clone, Copy, Debug, Default)]
pub struct JobsTool;

#[async_trait]
impl Tool for JobsTool {
    const NAME: &'static str = "jobs";
    const DESCRIPTION: &'static str = "List the background jobs of this workspace, whoever \
        started them (this session, another agent, or a person with `cmux exec \
        --background`): id, state (running, exited with its code, killed by a signal, or \
        lost when its supervisor died without recording its end), age, output size and how \
        much of it is unread, and the command. Jobs whose output was read after they ended \
        are removed, as are jobs that ended over 24 hours ago.";
    const EFFECT: Effect = Effect::ReadOnly;
    type Input = JobsInput;
    type Output = JobsOutput;

    async fn run(
        &self,
        ctx: &ToolContext,
        _input: JobsInput,
        _cancel: CancellationToken,
    ) -> Result<JobsOutput> {
        Ok(JobsOutput {
            jobs: Jobs::from(ctx).list().await?,
        })
    }
}

/// Input of the `jobs` tool: none.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JobsInput {}

/// Result of the `jobs` tool.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct JobsOutput {
    /// The jobs, oldest first.
    pub jobs: Vec<JobInfo>,
}

impl JobsOutput {
    /// What a model sees: a line per job.
    pub fn to_text(&self) -> String {
        if self.jobs.is_empty() {
            return "No background jobs in this workspace (start one with bash and \
                    run_in_background: true)."
                .to_owned();
        }
        let rows: Vec<[String; 5]> = self
            .jobs
            .iter()
            .map(|job| {
                [
                    job.id.to_string(),
                    job.state.to_string(),
                    job.age_secs.map(age).unwrap_or_else(|| "?".into()),
                    format!("{} B ({} unread)", job.output_bytes, job.unread_bytes),
                    shown_command(&job.command),
                ]
            })
            .collect();
        table(["ID", "STATE", "AGE", "OUTPUT", "COMMAND"], &rows)
    }
}

impl ToolResult for JobsOutput {
    fn text(&self) -> String {
        self.to_text()
    }
}

/// Rows under a header, columns padded to their widest cell (the last one is not).
pub(crate) fn table<const N: usize>(header: [&str; N], rows: &[[String; N]]) -> String {
    let mut widths = header.map(|h| h.chars().count());
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<&str>| {
        let mut text = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == N {
                text.push_str(cell);
            } else {
                text.push_str(&format!("{cell:<width$}  ", width = widths[i]));
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
    out
}

/// The first line of a command, shortened, with its control characters escaped.
pub(crate) fn shown_command(command: &str) -> String {
    let first = command.lines().next().unwrap_or_default();
    let mut shown: String = first.chars().take(SHOWN_COMMAND_CHARS).collect();
    if shown.len() < command.trim_end().len() {
        shown.push('…');
    }
    crate::error::escape_controls(&shown).into_owned()
}

/// `42s`, `5m`, `3h`, `2d`.
pub(crate) fn age(secs: u64) -> String {
    match secs {
        0..=59 => format!("{secs}s"),
        60..=3599 => format!("{}m", secs / 60),
        3600..=86_399 => format!("{}h", secs / 3600),
        _ => format!("{}d", secs / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::{JobId, JobState};

    fn job(id: &str, state: JobState, command: &str) -> JobInfo {
        JobInfo {
            id: JobId::parse(id).expect("id"),
            state,
            pgid: Some(42),
            started: Some(1_700_000_000),
            age_secs: Some(125),
            command: command.into(),
            output_bytes: 2048,
            unread_bytes: 100,
        }
    }

    #[test]
    fn listing_is_a_table_with_one_line_per_job() {
        let out = JobsOutput {
            jobs: vec![
                job("aaaa2222", JobState::Running, "npm run dev"),
                job(
                    "bbbb3333",
                    JobState::Exited { code: 1 },
                    "cargo test\necho \x1b[2J done",
                ),
            ],
        };
        assert_eq!(
            out.to_text(),
            "ID        STATE               AGE  OUTPUT               COMMAND\n\
             aaaa2222  running             2m   2048 B (100 unread)  npm run dev\n\
             bbbb3333  exited with code 1  2m   2048 B (100 unread)  cargo test…\n"
        );
        assert!(JobsOutput { jobs: vec![] }
            .to_text()
            .starts_with("No background jobs"));
        assert_eq!(shown_command("a\x1bb"), "a\\u{1b}b");
        assert_eq!(age(59), "59s");
        assert_eq!(age(86_400 * 3), "3d");
    }
}
