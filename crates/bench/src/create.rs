//! Workspace creation: the first workspace of a ~50 MB project (cold: every object
//! travels) and later ones (warm: nothing new to send), by cmux's lifecycle in helper
//! mode and on the shell/SFTP path, and by the same git steps run as separate ssh
//! processes.

use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use cmux_backend_ssh::source::SshSource;
use cmux_core::workspace::{CreateOptions, Lifecycle, NoProgress, Project};

use crate::baseline::Baseline;
use crate::cpu::{process_cpu, thread_cpu, CpuSample};
use crate::measure::{stats_of, Iterations};
use crate::report::{Row, Stats};
use crate::setup::{BenchEnv, Side, HOST};
use crate::Args;

/// A git repository of `mib` MiB of incompressible files, one commit.
fn make_repo(dir: &Path, mib: usize) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for i in 0..mib {
        let mut data = Vec::with_capacity(1 << 20);
        while data.len() < 1 << 20 {
            // xorshift64: fast, and git cannot compress it away.
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            data.extend_from_slice(&x.to_le_bytes());
        }
        std::fs::write(dir.join(format!("blob-{i:03}.bin")), data)?;
    }
    crate::setup::commit_project(dir)
}

/// Warm creates per run: one is noise on a shared machine, so take a median.
fn warm_runs(args: &Args) -> usize {
    if args.quick {
        1
    } else {
        7
    }
}

/// One create: (elapsed, local CPU, helper CPU on the host).
type Sample = (Duration, Duration, Option<Duration>);

/// Median, p90 and mean CPU of `samples`.
fn stats(samples: &[Sample]) -> Stats {
    let cpu = samples.iter().map(|s| s.1).sum();
    let host = samples.iter().map(|s| s.2).sum::<Option<Duration>>();
    stats_of(samples.iter().map(|s| s.0).collect(), cpu, host)
}

/// The same steps without cmux: make the bare repository, push, add a worktree.
async fn baseline_create(
    base: &Baseline,
    project: &Path,
    bare: &str,
    dir: &str,
    name: &str,
    first: bool,
) -> anyhow::Result<()> {
    let q = cmux_core::quote::quote;
    if first {
        base.run(&format!("git init -q --bare {}", q(bare)), None)
            .await?;
    }
    let status = tokio::process::Command::new("git")
        .current_dir(project)
        .env("GIT_SSH_COMMAND", base.ssh_command_line())
        .args(["push", "-q"])
        .arg(format!("{HOST}:{bare}"))
        .arg("HEAD:refs/heads/main")
        .stdout(Stdio::null())
        .status()
        .await?;
    if !status.success() {
        bail!("git push to {bare} failed");
    }
    base.run(
        &format!(
            "git -C {} worktree add -q -b {} {} main",
            q(bare),
            q(name),
            q(dir)
        ),
        None,
    )
    .await?;
    Ok(())
}

/// Creates a cold workspace then `warm` warm ones through cmux on `side`, its source
/// repository under `src_base`.
async fn cmux_creates(
    env: &BenchEnv,
    side: &Side,
    helper_pid: Option<u32>,
    project: &Project,
    src_base: &str,
    names: &[String],
) -> anyhow::Result<Vec<Sample>> {
    let source =
        Arc::new(SshSource::new((*side.runtime).clone()).with_src_base(env.path(src_base)));
    let lifecycle = Lifecycle::new(side.runtime.clone(), source)
        .with_lock_dir(env.dir.path().join(format!("locks-{src_base}")));
    // Own CPU, the local git/ssh children of the push, and the master.
    let local_cpu = || {
        let now = CpuSample::now();
        (now.own + now.children + env.master_pid.map(process_cpu).unwrap_or_default())
            .saturating_sub(env.proxy_tid.map(thread_cpu).unwrap_or_default())
    };
    let host_cpu = || helper_pid.map(process_cpu);
    let mut samples = Vec::new();
    for name in names {
        let (cpu0, host0) = (local_cpu(), host_cpu());
        let t = Instant::now();
        lifecycle
            .create(name, project, &CreateOptions::default(), &NoProgress)
            .await
            .with_context(|| format!("cmux creating {name} under {src_base}"))?;
        let elapsed = t.elapsed();
        let host = match (host0, host_cpu()) {
            (Some(b), Some(a)) => Some(a.saturating_sub(b)),
            _ => None,
        };
        samples.push((elapsed, local_cpu().saturating_sub(cpu0), host));
    }
    Ok(samples)
}

pub async fn measure_workspace_create(env: &BenchEnv, args: &Args) -> anyhow::Result<Vec<Row>> {
    let mib = if args.quick { 5 } else { 50 };
    eprintln!("  workspace create ({mib} MiB project)");
    let project_dir = env.dir.path().join("project");
    make_repo(&project_dir, mib)?;
    let project = Project::open(&project_dir).await?;
    // The first create is cold (every object travels), the others warm.
    let names: Vec<String> = std::iter::once("ws-cold".to_owned())
        .chain((0..warm_runs(args)).map(|i| format!("ws-warm-{i}")))
        .collect();
    let helper = cmux_creates(
        env,
        &env.helper,
        env.helper_pid,
        &project,
        "src-helper",
        &names,
    )
    .await?;
    let shell = cmux_creates(env, &env.shell, None, &project, "src-shell", &names).await?;

    // Baselines: the same git steps as ssh processes, over a master (a) or fresh (b).
    let mut baselines = Vec::new();
    let mut ways = vec![(
        "a",
        Baseline::with_master(&env.config, &env.dir.path().join("create-a.sock")),
    )];
    // The smoke run has no (b) far away (a handshake per step): see `Iterations`.
    if Iterations::new(args.quick, env.rtt).b > 0 {
        ways.push(("b", Baseline::fresh(&env.config)));
    }
    for (label, base) in ways {
        let bare = env.path(&format!("src-{label}/base.git"));
        let mut samples = Vec::new();
        for (i, name) in names.iter().enumerate() {
            let dir = env.path(&format!("src-{label}/{name}"));
            let master = base.master_pid();
            let cpu0 = CpuSample::now().children + master.map(process_cpu).unwrap_or_default();
            let t = Instant::now();
            baseline_create(&base, &project_dir, &bare, &dir, name, i == 0).await?;
            let elapsed = t.elapsed();
            let master = base.master_pid();
            let cpu = (CpuSample::now().children + master.map(process_cpu).unwrap_or_default())
                .saturating_sub(cpu0);
            samples.push((elapsed, cpu, None));
        }
        base.close();
        baselines.push(samples);
    }
    let row = |label: &str, pick: &dyn Fn(&[Sample]) -> Stats| Row {
        op: format!("{label} ({mib} MiB)"),
        helper: pick(&helper),
        shell: Some(pick(&shell)),
        a: baselines.first().map(|s| pick(s)),
        b: baselines.get(1).map(|s| pick(s)),
    };
    Ok(vec![
        row("workspace create, cold", &|s| stats(&s[..1])),
        row("workspace create, warm", &|s| stats(&s[1..])),
    ])
}
