//! Background jobs from the command line: `cmux exec --background` starts one, `cmux
//! jobs` lists them, `cmux job-output` prints what is new, `cmux job-kill` stops one.
//! The jobs are the same ones agents see over `cmux mcp` (and share their read
//! offset): they live on the workspace's host, not in cmux.

use std::io::Write as _;
use std::time::Duration;

use anyhow::{Context, Result};
use cmux_core::jobs::{JobId, JobKilled, JobRead, JobState, Jobs, ReadLimit};
use cmux_core::tools::{JobKillOutput, JobsOutput};
use cmux_core::{ExecRequest, SharedRuntime};
use serde::Serialize;

use super::Ctx;
use crate::args::{JobKillArgs, JobOutputArgs, JobsArgs};
use crate::error::CliError;
use crate::registry::Record;
use crate::words::{cli_error, in_cli_words};

/// Bytes per read of `cmux job-output`: the whole output comes in pages (one round
/// trip each), so memory stays bounded whatever the job wrote.
const PAGE_BYTES: usize = 4 << 20;

/// `cmux exec --background`: starts `req` as a job; prints its id on stdout (for
/// scripts: `id=$(cmux exec --background ws -- make watch)`), how to follow it on stderr.
pub async fn start(record: &Record, runtime: SharedRuntime, req: ExecRequest) -> Result<i32> {
    let jobs = Jobs::new(runtime, record.path.clone());
    let started = jobs.start(req).await.map_err(cli_error)?;
    tracing::debug!(workspace = %record.name, job = %started.id, pgid = started.pgid, "job started");
    out!("{}", started.id);
    err!(
        "cmux: job {id} runs in the background in {ws}; follow it with `cmux job-output {ws} \
         {id}`, stop it with `cmux job-kill {ws} {id}`",
        id = started.id,
        ws = record.name
    );
    Ok(0)
}

/// `cmux jobs`.
pub async fn list(ctx: &Ctx, args: &JobsArgs) -> Result<i32> {
    let (record, runtime) = ctx.workspace(&args.name).await?;
    let jobs = Jobs::new(runtime, record.path.clone())
        .list()
        .await
        .map_err(cli_error)?;
    if args.json {
        out!("{}", serde_json::to_string_pretty(&jobs)?);
    } else if jobs.is_empty() {
        err!(
            "cmux: no background jobs in {ws} (start one with `cmux exec --background {ws} -- \
             COMMAND`)",
            ws = record.name
        );
    } else {
        let text = JobsOutput { jobs }.to_text();
        out!("{}", text.trim_end());
    }
    Ok(0)
}

/// What `cmux job-output --json` prints.
#[derive(Serialize)]
struct OutputJson<'a> {
    #[serde(flatten)]
    read: &'a JobRead,
    /// The new output, as text (invalid UTF-8 replaced).
    output: String,
}

/// `cmux job-output`: every byte written since the last read, in pages.
pub async fn output(ctx: &Ctx, args: &JobOutputArgs) -> Result<i32> {
    let id = JobId::parse(&args.id).map_err(cli_error)?;
    let mut wait = match args.wait {
        None => Duration::ZERO,
        Some(secs) if secs.is_finite() && secs >= 0.0 => Duration::from_secs_f64(secs.min(600.0)),
        Some(secs) => {
            return Err(CliError::usage(format!(
                "--wait {secs}: give a number of seconds from 0 to 600"
            )))
        }
    };
    let (record, runtime) = ctx.workspace(&args.name).await?;
    let jobs = Jobs::new(runtime, record.path.clone());
    let mut all = Vec::new();
    let mut first_offset = None;
    let mut stdout = std::io::stdout().lock();
    let mut last = loop {
        let read = jobs
            .read(&id, wait, ReadLimit::pages(PAGE_BYTES), None)
            .await
            .map_err(cli_error)?;
        wait = Duration::ZERO;
        first_offset.get_or_insert(read.offset);
        if args.json {
            all.extend_from_slice(&read.head);
        } else if let Err(e) = stdout.write_all(&read.head).and_then(|()| stdout.flush()) {
            // `cmux job-output ws id | head`: the reader has what it wanted.
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                return Ok(0);
            }
            return Err(e).context("writing to standard output");
        }
        if read.unread_bytes == 0 {
            break read;
        }
    };
    drop(stdout);
    last.offset = first_offset.unwrap_or(last.offset);
    if args.json {
        let json = OutputJson {
            read: &last,
            output: String::from_utf8_lossy(&all).into_owned(),
        };
        out!("{}", serde_json::to_string_pretty(&json)?);
    } else {
        err!("cmux: {}", state_note(&record.name, &id, last.state));
    }
    Ok(match last.state {
        JobState::Running => 0,
        JobState::Lost => 1,
        ended => ended.exit_status().map_or(1, |s| s.shell_code()),
    })
}

/// The line `cmux job-output` ends with, on stderr.
fn state_note(ws: &str, id: &JobId, state: JobState) -> String {
    match state {
        JobState::Running => format!(
            "job {id} is still running (`cmux job-output {ws} {id} --wait 30` waits for more)"
        ),
        JobState::Lost => format!(
            "job {id} is lost: its supervisor is gone without recording how the job ended (it \
             was killed, or the host rebooted); `cmux job-kill {ws} {id}` ends what may be left"
        ),
        ended => format!("job {id} {ended}"),
    }
}

/// `cmux job-kill`.
pub async fn kill(ctx: &Ctx, args: &JobKillArgs) -> Result<i32> {
    let id = JobId::parse(&args.id).map_err(cli_error)?;
    let (record, runtime) = ctx.workspace(&args.name).await?;
    let killed: JobKilled = Jobs::new(runtime, record.path.clone())
        .kill(&id)
        .await
        .map_err(cli_error)?;
    if args.json {
        out!("{}", serde_json::to_string_pretty(&killed)?);
    } else {
        let text = JobKillOutput { killed }.to_text();
        out!(
            "{}",
            in_cli_words(&text).replace(
                "`cmux job-output`",
                &format!("`cmux job-output {} {id}`", record.name)
            )
        );
    }
    Ok(0)
}
