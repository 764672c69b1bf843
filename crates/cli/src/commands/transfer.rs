//! `cmux pull` and `cmux push`: commits between the project and a workspace.

use anyhow::Result;
use cmux_core::workspace::{FastForward, PullOutcome, PushOutcome};

use super::Ctx;
use crate::args::{PullArgs, PushArgs};
use crate::backends;
use crate::progress::StderrProgress;
use crate::registry::Record;

fn short(commit: &str) -> &str {
    &commit[..commit.len().min(12)]
}

/// Why a local or in-place workspace has nothing to move.
fn same_repository(record: &Record) -> String {
    if record.in_place {
        format!("workspace {} is the project itself (in place)", record.name)
    } else {
        format!(
            "workspace {} is local: it works in the project's own repository, so its branches are the project's",
            record.name
        )
    }
}

/// `cmux pull`.
pub async fn pull(ctx: &Ctx, args: &PullArgs) -> Result<i32> {
    let record = ctx.registry.load(&args.name)?;
    let lifecycle = backends::lifecycle_for(&record.backend, &ctx.home).await?;
    let outcome = lifecycle
        .pull(
            &record.workspace(),
            args.into.as_deref(),
            &StderrProgress::new(),
        )
        .await?;
    let project = record.project.display();
    match outcome {
        PullOutcome::SameRepository => {
            out!("{}; nothing to pull", same_repository(&record))
        }
        PullOutcome::Pulled {
            branch,
            commit,
            result,
        } => match result {
            FastForward::Created => out!(
                "pulled workspace {} into project {project}: new branch {branch} at {}",
                record.name,
                short(&commit)
            ),
            FastForward::Moved { from, worktree } => {
                let files = match worktree {
                    Some(tree) => format!(", with the files of {}", tree.display()),
                    None => String::new(),
                };
                out!(
                    "pulled workspace {} into project {project}: branch {branch} fast-forwarded {}..{}{files}",
                    record.name,
                    short(&from),
                    short(&commit)
                )
            }
            FastForward::UpToDate => out!(
                "workspace {}: the project's branch {branch} is already at {}; nothing to pull",
                record.name,
                short(&commit)
            ),
            FastForward::Ahead => out!(
                "workspace {}: the project's branch {branch} already has {} and more; nothing to pull",
                record.name,
                short(&commit)
            ),
            other => out!(
                "pulled workspace {} into project {project}: branch {branch} at {} ({other:?})",
                record.name,
                short(&commit)
            ),
        },
        other => out!("workspace {}: {other:?}", record.name),
    }
    Ok(0)
}

/// `cmux push`.
pub async fn push(ctx: &Ctx, args: &PushArgs) -> Result<i32> {
    let record = ctx.registry.load(&args.name)?;
    let lifecycle = backends::lifecycle_for(&record.backend, &ctx.home).await?;
    let outcome = lifecycle
        .push(
            &record.workspace(),
            args.branch.as_deref(),
            &StderrProgress::new(),
        )
        .await?;
    match outcome {
        PushOutcome::SameRepository => {
            out!("{}; nothing to push", same_repository(&record))
        }
        PushOutcome::Sent {
            branch,
            commit,
            transferred,
        } => {
            let how = if transferred {
                ""
            } else {
                " (the host had its commits already)"
            };
            out!(
                "pushed branch {branch} ({}) to {}{how}: in workspace {}, `git rebase {branch}` now uses it",
                short(&commit),
                record.backend.label(),
                record.name
            )
        }
        other => out!("workspace {}: {other:?}", record.name),
    }
    Ok(0)
}
