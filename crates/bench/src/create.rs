//! Workspace creation: the first workspace of a ~50 MB project (cold: every object
//! travels) and a second one (warm: nothing new to send), by cmux's lifecycle and by
//! the same git steps run as separate ssh processes.

use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use cmux_backend_ssh::source::SshSource;
use cmux_core::workspace::{CreateOptions, Lifecycle, NoProgress, Project};

use crate::cpu::{master_pid, process_cpu, CpuSample};
use crate::ops::Baseline;
use crate::report::{Row, Stats};
use crate::setup::{BenchEnv, HOST};
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
    for args in [
        vec!["init", "-q", "-b", "main"],
        vec!["add", "."],
        vec![
            "-c",
            "user.name=bench",
            "-c",
            "user.email=bench@example.invalid",
            "commit",
            "-qm",
            "project",
        ],
    ] {
        let status = std::process::Command::new("git")
            .args(&args)
            .current_dir(dir)
            .stdout(Stdio::null())
            .status()
            .context("running git")?;
        if !status.success() {
            bail!("git {args:?} failed in {}", dir.display());
        }
    }
    Ok(())
}

/// Warm creates per run: one is noise on a shared machine, so take a median.
fn warm_runs(args: &Args) -> usize {
    if args.quick {
        3
    } else {
        7
    }
}

/// One create: (elapsed, CPU).
type Sample = (Duration, Duration);

/// Median, p90 and mean CPU of `samples`.
fn stats(samples: &[Sample]) -> Stats {
    let mut times: Vec<Duration> = samples.iter().map(|s| s.0).collect();
    times.sort();
    if times.is_empty() {
        times.push(Duration::ZERO);
    }
    let at = |p: f64| {
        let i = ((times.len() as f64 - 1.0) * p).round() as usize;
        times[i.min(times.len() - 1)].as_secs_f64() * 1000.0
    };
    let cpu: Duration = samples.iter().map(|s| s.1).sum();
    Stats {
        n: samples.len(),
        median_ms: at(0.5),
        p90_ms: at(0.9),
        cpu_ms_per_op: cpu.as_secs_f64() * 1000.0 / samples.len().max(1) as f64,
    }
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

pub async fn measure_workspace_create(env: &BenchEnv, args: &Args) -> anyhow::Result<Vec<Row>> {
    let mib = if args.quick { 5 } else { 50 };
    eprintln!("  workspace create ({mib} MiB project)");
    let project_dir = env.dir.path().join("project");
    make_repo(&project_dir, mib)?;
    let project = Project::open(&project_dir).await?;
    let options = CreateOptions::default();

    // cmux: the lifecycle over the SSH runtime, source pushed through its master.
    let source =
        Arc::new(SshSource::new((*env.runtime).clone()).with_src_base(env.path("src-cmux")));
    let lifecycle =
        Lifecycle::new(env.runtime.clone(), source).with_lock_dir(env.dir.path().join("locks"));
    let master = master_pid(&env.config, &env.runtime.control_path(), HOST);
    // Own CPU, the local git/ssh children of the push, and the master.
    let cmux_cpu = || {
        let now = CpuSample::now();
        (now.own + now.children + master.map(process_cpu).unwrap_or_default()).saturating_sub(
            env.proxy_tid
                .map(crate::cpu::thread_cpu)
                .unwrap_or_default(),
        )
    };
    // The first create is cold (every object travels), the others warm.
    let names: Vec<String> = std::iter::once("ws-cold".to_owned())
        .chain((0..warm_runs(args)).map(|i| format!("ws-warm-{i}")))
        .collect();
    let mut cmux = Vec::new();
    for name in &names {
        let cpu0 = cmux_cpu();
        let t = Instant::now();
        lifecycle
            .create(name, &project, &options, &NoProgress)
            .await
            .with_context(|| format!("cmux creating {name}"))?;
        cmux.push((t.elapsed(), cmux_cpu().saturating_sub(cpu0)));
    }

    // Baselines: the same git steps as ssh processes, over a master (a) or fresh (b).
    let mut baselines = Vec::new();
    for (label, base) in [
        (
            "a",
            Baseline::with_master(&env.config, &env.dir.path().join("create-a.sock")),
        ),
        ("b", Baseline::fresh(&env.config)),
    ] {
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
            samples.push((elapsed, cpu));
        }
        baselines.push(samples);
    }
    let row = |label: &str, pick: &dyn Fn(&[Sample]) -> Stats| Row {
        op: format!("{label} ({mib} MiB)"),
        cmux: pick(&cmux),
        a: Some(pick(&baselines[0])),
        b: Some(pick(&baselines[1])),
    };
    Ok(vec![
        row("workspace create, cold", &|s| stats(&s[..1])),
        row("workspace create, warm", &|s| stats(&s[1..])),
    ])
}
