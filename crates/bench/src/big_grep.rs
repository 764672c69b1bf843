//! grep over the big generated tree: the agent's grep tool through cmux (helper mode,
//! and once on the shell/SFTP path) next to the host's own `grep -rn` on the same
//! files (the host is this machine): time, files searched, matching lines.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use cmux_core::tools::{self, GrepOutput, ToolContext};
use serde_json::json;

use crate::measure::{ms, percentile};
use crate::report::{BigGrep, GrepRow};
use crate::setup::BenchEnv;
use crate::tree::{Tree, HANDLER_RE, NEEDLE};
use crate::Args;

/// Files and size of the tree: at least issue 10's 250 MB and 20,000 files, or a
/// small one for the quick smoke run.
pub fn tree_shape(quick: bool) -> (u64, u64) {
    if quick {
        (2_000, 16)
    } else {
        (21_000, 272)
    }
}

pub async fn measure_big_grep(env: &BenchEnv, tree: &Tree, args: &Args) -> anyhow::Result<BigGrep> {
    let runs = if args.quick { 1 } else { 5 };
    let dir = tree.dir.display().to_string();
    let mut rows = Vec::new();
    for (pattern, grep_flags) in [(NEEDLE, "-rn"), (HANDLER_RE, "-rnE")] {
        eprintln!("  big grep {pattern:?}: grep {grep_flags}");
        let mut matches = 0;
        let host = timed(runs, || {
            let out = std::process::Command::new("grep")
                .args([grep_flags, pattern, &dir])
                .output()
                .context("running grep")?;
            matches = out.stdout.iter().filter(|b| **b == b'\n').count() as u64;
            Ok(())
        })?;
        rows.push(GrepRow {
            pattern: pattern.into(),
            who: format!("`grep {grep_flags}` on the host"),
            n: runs,
            median_ms: ms(host),
            files_searched: None,
            matches,
        });
        eprintln!("  big grep {pattern:?}: cmux, helper mode");
        rows.push(
            tool_grep(
                &env.helper.tools,
                "cmux grep tool, helper mode",
                pattern,
                &dir,
                runs,
            )
            .await?,
        );
        if !args.quick && pattern == NEEDLE {
            // Once: the shell/SFTP path ships the files to this side (up to its cap).
            eprintln!("  big grep {pattern:?}: cmux, shell/SFTP path");
            rows.push(
                tool_grep(
                    &env.shell.tools,
                    "cmux grep tool, shell/SFTP path",
                    pattern,
                    &dir,
                    0,
                )
                .await?,
            );
        }
    }
    Ok(BigGrep {
        files: tree.files,
        bytes: tree.bytes,
        rows,
    })
}

/// The median of `runs` timed calls after one warm-up (the page cache warm, as for an
/// agent searching its workspace); `runs == 0` times the single first call.
fn timed(runs: usize, mut op: impl FnMut() -> anyhow::Result<()>) -> anyhow::Result<Duration> {
    let mut times = Vec::new();
    let t = Instant::now();
    op()?;
    if runs == 0 {
        return Ok(t.elapsed());
    }
    for _ in 0..runs {
        let t = Instant::now();
        op()?;
        times.push(t.elapsed());
    }
    times.sort();
    Ok(percentile(&times, 0.5))
}

async fn tool_grep(
    ctx: &ToolContext,
    who: &str,
    pattern: &str,
    dir: &str,
    runs: usize,
) -> anyhow::Result<GrepRow> {
    let call = || async {
        let out = tools::call(ctx, "grep", json!({"pattern": pattern, "path": dir})).await?;
        let Some(reply) = out.downcast_ref::<GrepOutput>() else {
            bail!("the grep tool returned no grep output");
        };
        let shown = reply.matches.iter().filter(|m| !m.context).count();
        Ok((shown + reply.omitted, reply.files_searched))
    };
    let mut times = Vec::new();
    let t = Instant::now();
    let mut last = call().await?;
    times.push(t.elapsed());
    if runs > 0 {
        times.clear();
        for _ in 0..runs {
            let t = Instant::now();
            last = call().await?;
            times.push(t.elapsed());
        }
    }
    times.sort();
    Ok(GrepRow {
        pattern: pattern.into(),
        who: who.into(),
        n: times.len(),
        median_ms: ms(percentile(&times, 0.5)),
        files_searched: Some(last.1 as u64),
        matches: last.0 as u64,
    })
}
