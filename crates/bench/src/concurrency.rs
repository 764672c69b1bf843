//! Many operations at once against one host: agents × operations in turn (helper
//! mode, shell/SFTP path, a process per operation), and one burst of 500 operations
//! against an sshd that allows one session per connection (`MaxSessions 1`).

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use cmux_backend_ssh::{HelperMode, SshRuntime};
use cmux_core::{ExecRequest, RemotePath, Runtime, RuntimeExt};

use crate::baseline::Baseline;
use crate::cpu::{process_cpu, CpuSample};
use crate::measure::{cpu_now, CpuScope};
use crate::report::ConcurrencyRow;
use crate::setup::{helper_pid, BenchEnv, HOST};
use crate::Args;

/// `agents` tasks × `per_agent` mixed operations against one host, cmux in both modes
/// (one process, one runtime shared by every agent, as the MCP server or an embedding
/// harness holds it) and (a).
pub async fn measure_agents(env: &BenchEnv, args: &Args) -> anyhow::Result<Vec<ConcurrencyRow>> {
    let (agents, per_agent) = if args.quick { (10, 5) } else { (50, 20) };
    let mut rows = Vec::new();
    for (who, mode) in [
        ("cmux, helper mode", HelperMode::Auto),
        ("cmux, shell/SFTP path", HelperMode::Off),
    ] {
        eprintln!("  {agents} agents × {per_agent} ops, {who}");
        // A control dir of its own, through the counting proxy: its connections count.
        let ctl = format!("conc-ctl-{mode:?}");
        let options = env
            .options(&env.counted_config, &ctl, &env.install_dir)
            .helper(mode);
        let row = burst_cmux(env, who, options, agents, per_agent).await?;
        rows.push(row);
    }

    // (a): a process per operation through one ControlMaster.
    eprintln!("  {agents} agents × {per_agent} ops, (a)");
    let base = Baseline::with_master(&env.counted_config, &env.dir.path().join("conc-a.sock"));
    let before = env.proxy.connections_accepted();
    let cpu0 = CpuSample::now().children;
    let (agent_base, scratch) = (base.clone(), env.scratch.clone());
    let (wall, failures) = run_agents(agents, per_agent, move |agent, i| {
        let (base, scratch) = (agent_base.clone(), scratch.clone());
        async move { mixed_baseline_op(&base, &scratch, agent, i).await }
    })
    .await?;
    let cpu = CpuSample::now().children.saturating_sub(cpu0)
        + base.master_pid().map(process_cpu).unwrap_or_default();
    base.close();
    rows.push(ConcurrencyRow::new(
        "(a) ssh process per op, ControlMaster",
        agents,
        per_agent,
        wall,
        failures,
        env.proxy.connections_accepted() - before,
        cpu,
        None,
    ));
    Ok(rows)
}

/// 500 operations started at once from one process against `env`, whose sshd allows
/// one session per connection: helper mode, then the shell/SFTP path.
pub async fn measure_max_sessions_1(
    env: &BenchEnv,
    args: &Args,
) -> anyhow::Result<Vec<ConcurrencyRow>> {
    let mut rows = Vec::new();
    let mut modes = vec![("cmux, helper mode", HelperMode::Auto)];
    if !args.quick {
        // The shell path needs a session per operation: this shows what the helper
        // removes (it can take the full 30 s of channel retries).
        modes.push(("cmux, shell/SFTP path", HelperMode::Off));
    }
    for (who, mode) in modes {
        eprintln!("  500 operations at once, MaxSessions 1, {who}");
        let ctl = format!("max1-ctl-{mode:?}");
        let options = env
            .options(&env.counted_config, &ctl, &env.install_dir)
            .helper(mode);
        rows.push(burst_cmux(env, who, options, 500, 1).await?);
    }
    Ok(rows)
}

/// Runs `agents` × `per_agent` mixed operations through one new runtime built with
/// `options`; connects first (what is measured is the operations, not the start).
async fn burst_cmux(
    env: &BenchEnv,
    who: &str,
    options: cmux_backend_ssh::SshOptions,
    agents: usize,
    per_agent: usize,
) -> anyhow::Result<ConcurrencyRow> {
    let rt = Arc::new(SshRuntime::new(HOST, options)?);
    let before = env.proxy.connections_accepted();
    rt.ensure_ready().await?;
    let master = crate::cpu::master_pid(&env.counted_config, &rt.control_path(), HOST);
    let helper = helper_pid(&rt).await;
    let scope = CpuScope::Own {
        master,
        proxy_tid: env.proxy_tid,
        helper,
    };
    let (cpu0, host0) = cpu_now(scope);
    let scratch = env.scratch.clone();
    let agent_rt = rt.clone();
    let (wall, failures) = run_agents(agents, per_agent, move |agent, i| {
        let (rt, scratch) = (agent_rt.clone(), scratch.clone());
        async move { mixed_cmux_op(rt.as_ref(), &scratch, agent, i).await }
    })
    .await?;
    let (cpu1, host1) = cpu_now(scope);
    let host = match (host0, host1) {
        (Some(b), Some(a)) => Some(a.saturating_sub(b)),
        _ => None,
    };
    let row = ConcurrencyRow::new(
        who,
        agents,
        per_agent,
        wall,
        failures,
        env.proxy.connections_accepted() - before,
        cpu1.saturating_sub(cpu0),
        host,
    );
    rt.disconnect().await;
    Ok(row)
}

/// Runs `agents` tasks at once, each doing `per_agent` operations `op(agent, i)` in
/// turn; returns the wall time and every failure's message.
async fn run_agents<F, Fut>(
    agents: usize,
    per_agent: usize,
    op: F,
) -> anyhow::Result<(Duration, Vec<String>)>
where
    F: Fn(usize, usize) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send,
{
    let start = Instant::now();
    let mut tasks = Vec::new();
    for agent in 0..agents {
        let op = op.clone();
        tasks.push(tokio::spawn(async move {
            let mut failures = Vec::new();
            for i in 0..per_agent {
                if let Err(e) = op(agent, i).await {
                    failures.push(format!("{e:#}"));
                }
            }
            failures
        }));
    }
    let mut failures = Vec::new();
    for task in tasks {
        failures.extend(task.await?);
    }
    Ok((start.elapsed(), failures))
}

async fn mixed_cmux_op(
    rt: &dyn Runtime,
    scratch: &Path,
    agent: usize,
    i: usize,
) -> anyhow::Result<()> {
    let path = |name: String| RemotePath::new(scratch.join(name).display().to_string());
    match (agent + i) % 5 {
        0 => {
            let out = rt.output(ExecRequest::script("true"), 1 << 16).await?;
            if !out.status.success() {
                bail!("exec true: {}", out.status);
            }
        }
        1 => {
            rt.read_file(&path("f4k".into())?).await?;
        }
        2 => {
            rt.stat(&path("f4k".into())?).await?;
        }
        3 => {
            rt.write_file(&path(format!("agent-{agent}.txt"))?, b"agent output\n")
                .await?
        }
        _ => {
            rt.read_dir(&path("dir100".into())?).await?;
        }
    }
    Ok(())
}

async fn mixed_baseline_op(
    base: &Baseline,
    scratch: &Path,
    agent: usize,
    i: usize,
) -> anyhow::Result<()> {
    let q = |name: &str| cmux_core::quote::quote(&scratch.join(name).display().to_string());
    let cmd = match (agent + i) % 5 {
        0 => "true".to_owned(),
        1 => format!("cat {}", q("f4k")),
        2 => format!("stat {}", q("f4k")),
        3 => {
            let f = q(&format!("agent-b-{agent}.txt"));
            base.run(
                &format!("cat > {f}.tmp && mv {f}.tmp {f}"),
                Some(b"agent output\n"),
            )
            .await?;
            return Ok(());
        }
        _ => format!("ls -la {}", q("dir100")),
    };
    base.run(&cmd, None).await?;
    Ok(())
}
