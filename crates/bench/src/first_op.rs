//! The first operation a new process makes on a host: a fresh control dir (no
//! master yet) and, for the first case, no helper installed: the time of the first
//! `exec true` includes the connection, the helper's upload and its start.

use std::time::{Duration, Instant};

use anyhow::bail;
use cmux_backend_ssh::{HelperMode, SshRuntime};
use cmux_core::{ExecRequest, RemotePath, RuntimeExt};

use crate::baseline::Baseline;
use crate::measure::{ms, percentile};
use crate::report::FirstOpRow;
use crate::setup::{bench_home, require_helper, BenchEnv, HOST};
use crate::Args;

/// The cases, in the order they run for each sample.
const CASES: [&str; 4] = [
    "helper not installed (connect + upload + start + exec)",
    "helper installed, no master (connect + start + exec)",
    "shell/SFTP path, no master (connect + exec)",
    "(b) fresh `ssh host true`",
];

pub async fn measure_first_op(env: &BenchEnv, args: &Args) -> anyhow::Result<Vec<FirstOpRow>> {
    let samples = if args.quick { 1 } else { 5 };
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); CASES.len()];
    for k in 0..samples {
        eprintln!("  first operation, sample {}", k + 1);
        let install = RemotePath::new(env.path(&format!(".first-op-host-{k}")))?;
        forget_login_env(env);
        times[0]
            .push(first_exec(env, &format!("first-{k}-cold"), &install, HelperMode::Auto).await?);
        times[1]
            .push(first_exec(env, &format!("first-{k}-warm"), &install, HelperMode::Auto).await?);
        times[2]
            .push(first_exec(env, &format!("first-{k}-shell"), &install, HelperMode::Off).await?);
        let t = Instant::now();
        Baseline::fresh(&env.config).run("true", None).await?;
        times[3].push(t.elapsed());
    }
    Ok(CASES
        .iter()
        .zip(times)
        .map(|(case, mut t)| {
            t.sort();
            FirstOpRow {
                case: (*case).to_owned(),
                n: t.len(),
                median_ms: ms(percentile(&t, 0.5)),
                max_ms: ms(t.last().copied().unwrap_or_default()),
            }
        })
        .collect())
}

/// A new runtime (control dir `ctl`, helpers under `install`), timed from its
/// creation to the end of its first `exec true`; it disconnects afterwards.
async fn first_exec(
    env: &BenchEnv,
    ctl: &str,
    install: &RemotePath,
    mode: HelperMode,
) -> anyhow::Result<Duration> {
    let options = env.options(&env.config, ctl, install).helper(mode);
    let t = Instant::now();
    let rt = SshRuntime::new(HOST, options)?;
    let out = rt.output(ExecRequest::script("true"), 1 << 16).await?;
    let elapsed = t.elapsed();
    if !out.status.success() {
        bail!("the first `true` failed: {}", out.status);
    }
    if mode == HelperMode::Auto {
        require_helper(&rt).await?;
    }
    rt.disconnect().await;
    Ok(elapsed)
}

/// A host that never ran the helper has no saved login environment either: remove
/// the bench account's (the helper then captures it before the first command). Only
/// the benchmark's own account is touched, never the user's.
fn forget_login_env(env: &BenchEnv) {
    if env.bench_account {
        let _ = std::fs::remove_file(bench_home().join(".cache/cmux/login-env"));
    }
}
