//! The measured operations, each run by cmux and by the two ssh baselines.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use cmux_backend_ssh::{SshOptions, SshRuntime};
use cmux_core::tools::{edit_file, EditFileInput};
use cmux_core::{ExecRequest, Runtime, RuntimeExt};
use tokio::io::AsyncWriteExt;

use crate::cpu::{master_pid, process_cpu, CpuSample};
use crate::report::{ConcurrencyRow, Row, Stats};
use crate::setup::{BenchEnv, HOST};
use crate::Args;

/// Iteration counts: (cmux, baseline a, baseline b).
fn iterations(args: &Args, rtt: Duration) -> (usize, usize, usize) {
    match (args.quick, rtt.is_zero()) {
        (true, true) => (30, 10, 3),
        (true, false) => (5, 3, 2),
        (false, true) => (300, 100, 30),
        (false, false) => (30, 15, 8),
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

/// Which CPU a measurement counts besides the latency.
#[derive(Clone, Copy)]
enum CpuScope {
    /// This process minus the proxy thread, plus the cmux master.
    Own {
        master: Option<u32>,
        proxy_tid: Option<i32>,
    },
    /// Reaped ssh client processes, plus the baseline's master if any.
    Children { master: Option<u32> },
}

fn cpu_now(scope: CpuScope) -> Duration {
    let sample = CpuSample::now();
    match scope {
        CpuScope::Own { master, proxy_tid } => {
            let proxy = proxy_tid.map(crate::cpu::thread_cpu).unwrap_or_default();
            sample.own.saturating_sub(proxy) + master.map(process_cpu).unwrap_or_default()
        }
        CpuScope::Children { master } => {
            sample.children + master.map(process_cpu).unwrap_or_default()
        }
    }
}

async fn measure<F, Fut>(n: usize, scope: CpuScope, mut op: F) -> anyhow::Result<Stats>
where
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    // One warm-up call: connection set-up is not what this row measures.
    op(0).await?;
    let cpu_before = cpu_now(scope);
    let mut lat = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        op(i + 1).await?;
        lat.push(t.elapsed());
    }
    let cpu = cpu_now(scope).saturating_sub(cpu_before);
    lat.sort();
    Ok(Stats {
        n,
        median_ms: ms(percentile(&lat, 0.5)),
        p90_ms: ms(percentile(&lat, 0.9)),
        cpu_ms_per_op: ms(cpu) / n as f64,
    })
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// How a baseline reaches the host.
#[derive(Clone)]
pub struct Baseline {
    config: PathBuf,
    /// `Some(path)`: (a), a ControlMaster at `path`; `None`: (b), a fresh connection.
    control_path: Option<PathBuf>,
}

impl Baseline {
    /// (a): a process per operation over a ControlMaster at `control_path`.
    pub fn with_master(config: &Path, control_path: &Path) -> Self {
        Baseline {
            config: config.to_path_buf(),
            control_path: Some(control_path.to_path_buf()),
        }
    }

    /// (b): a fresh connection per operation.
    pub fn fresh(config: &Path) -> Self {
        Baseline {
            config: config.to_path_buf(),
            control_path: None,
        }
    }

    /// The ssh options of this baseline, before the host.
    fn ssh_args(&self) -> Vec<String> {
        let mut args = vec!["-F".to_owned(), self.config.display().to_string()];
        match &self.control_path {
            Some(path) => args.extend([
                "-o".into(),
                "ControlMaster=auto".into(),
                "-o".into(),
                format!("ControlPath={}", path.display()),
                "-o".into(),
                "ControlPersist=60".into(),
            ]),
            None => args.extend([
                "-o".into(),
                "ControlMaster=no".into(),
                "-o".into(),
                "ControlPath=none".into(),
            ]),
        }
        args
    }

    /// `GIT_SSH_COMMAND` for this baseline.
    pub fn ssh_command_line(&self) -> String {
        let mut words = vec!["ssh".to_owned()];
        words.extend(self.ssh_args());
        cmux_core::quote::join(words)
    }

    fn command(&self, remote: &str) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new("ssh");
        cmd.args(self.ssh_args());
        cmd.arg(HOST).arg(remote);
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        cmd
    }

    /// Runs `remote` on the host with `input` on stdin; returns stdout.
    pub async fn run(&self, remote: &str, input: Option<&[u8]>) -> anyhow::Result<Vec<u8>> {
        let mut cmd = self.command(remote);
        cmd.stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        let mut child = cmd.spawn().context("spawning ssh")?;
        if let Some(data) = input {
            let mut stdin = child.stdin.take().context("ssh stdin")?;
            stdin.write_all(data).await?;
            drop(stdin);
        }
        let out = child.wait_with_output().await?;
        if !out.status.success() {
            bail!(
                "ssh {remote:?} failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(out.stdout)
    }

    /// The pid of (a)'s master, once it runs.
    pub fn master_pid(&self) -> Option<u32> {
        self.control_path
            .as_deref()
            .and_then(|p| master_pid(&self.config, p, HOST))
    }
}

#[derive(Clone, Copy, Debug)]
enum Op {
    ExecTrue,
    Read4k,
    Read1m,
    Write4k,
    Stat,
    Edit,
    List100,
    /// Write and edit with the opt-in 2-round-trip write (`CMUX_SSH_WRITE_VIA=auto`).
    Write4kAuto,
    EditAuto,
}

impl Op {
    const ALL: [Op; 9] = [
        Op::ExecTrue,
        Op::Read4k,
        Op::Read1m,
        Op::Write4k,
        Op::Stat,
        Op::Edit,
        Op::List100,
        Op::Write4kAuto,
        Op::EditAuto,
    ];

    fn label(self) -> &'static str {
        match self {
            Op::ExecTrue => "exec `true`",
            Op::Read4k => "read 4 KiB",
            Op::Read1m => "read 1 MiB",
            Op::Write4k => "write 4 KiB",
            Op::Stat => "stat",
            Op::Edit => "agent edit",
            Op::List100 => "list 100 entries",
            Op::Write4kAuto => "write 4 KiB, opt-in exec write",
            Op::EditAuto => "agent edit, opt-in exec write",
        }
    }
}

fn edit_strings(i: usize) -> (&'static str, &'static str) {
    // Alternate so every call finds exactly one match.
    if i.is_multiple_of(2) {
        ("ALPHA", "BETA")
    } else {
        ("BETA", "ALPHA")
    }
}

async fn cmux_op(env: &BenchEnv, op: Op, i: usize) -> anyhow::Result<()> {
    // The opt-in write is an option of the runtime: its rows use the runtime that has it.
    let rt = match op {
        Op::Write4kAuto | Op::EditAuto => &env.runtime_auto,
        _ => &env.runtime,
    };
    match op {
        Op::ExecTrue => {
            let out = rt.output(ExecRequest::script("true"), 1 << 16).await?;
            if !out.status.success() {
                bail!("true failed: {}", out.status);
            }
        }
        Op::Read4k => {
            let data = rt.read_file(&env.remote("f4k")?).await?;
            if data.len() != 4096 {
                bail!("read {} bytes, expected 4096", data.len());
            }
        }
        Op::Read1m => {
            let data = rt.read_file(&env.remote("f1m")?).await?;
            if data.len() != 1 << 20 {
                bail!("read {} bytes, expected 1 MiB", data.len());
            }
        }
        Op::Write4k | Op::Write4kAuto => rt.write_file(&env.remote("w4k")?, &[b'w'; 4096]).await?,
        Op::Stat => {
            rt.stat(&env.remote("f4k")?).await?;
        }
        Op::Edit | Op::EditAuto => {
            let (old, new) = edit_strings(i);
            // A file per row: each row makes an odd number of edits (warm-up + n), so
            // a shared file would start the next row on the other string.
            let path = if matches!(op, Op::EditAuto) {
                "edit-auto.txt"
            } else {
                "edit.txt"
            };
            let tools = if matches!(op, Op::EditAuto) {
                &env.tools_auto
            } else {
                &env.tools
            };
            edit_file(
                tools,
                EditFileInput {
                    path: path.into(),
                    old_string: old.into(),
                    new_string: new.into(),
                    replace_all: false,
                },
            )
            .await?;
        }
        Op::List100 => {
            let entries = rt.read_dir(&env.remote("dir100")?).await?;
            if entries.len() != 100 {
                bail!("listed {} entries, expected 100", entries.len());
            }
        }
    }
    Ok(())
}

async fn baseline_op(env: &BenchEnv, base: &Baseline, op: Op, i: usize) -> anyhow::Result<()> {
    let q = |name: &str| cmux_core::quote::quote(&env.path(name));
    match op {
        Op::ExecTrue => {
            base.run("true", None).await?;
        }
        Op::Read4k => {
            base.run(&format!("cat {}", q("f4k")), None).await?;
        }
        Op::Read1m => {
            base.run(&format!("cat {}", q("f1m")), None).await?;
        }
        Op::Write4k | Op::Write4kAuto => {
            // Atomic, like cmux: temp file beside the target, then rename.
            let cmd = format!(
                "cat > {t} && mv {t} {f}",
                t = q("w4k.b.tmp"),
                f = q("w4k.b")
            );
            base.run(&cmd, Some(&[b'w'; 4096])).await?;
        }
        Op::Stat => {
            base.run(&format!("stat -c '%s %a %Y %F' {}", q("f4k")), None)
                .await?;
        }
        Op::Edit | Op::EditAuto => {
            // What a harness without cmux does: read, replace locally, write back.
            let (old, new) = edit_strings(i);
            let text = base.run(&format!("cat {}", q("edit-b.txt")), None).await?;
            let text = String::from_utf8(text)?.replacen(old, new, 1);
            let cmd = format!(
                "cat > {t} && mv {t} {f}",
                t = q("edit-b.tmp"),
                f = q("edit-b.txt")
            );
            base.run(&cmd, Some(text.as_bytes())).await?;
        }
        Op::List100 => {
            base.run(&format!("ls -la {}", q("dir100")), None).await?;
        }
    }
    Ok(())
}

/// The per-operation rows.
pub async fn measure_operations(env: &BenchEnv, args: &Args) -> anyhow::Result<Vec<Row>> {
    let original = std::fs::read(env.scratch.join("edit.txt"))?;
    std::fs::copy(
        env.scratch.join("edit.txt"),
        env.scratch.join("edit-auto.txt"),
    )?;
    let (n_cmux, n_a, n_b) = iterations(args, env.rtt);
    let with_master = Baseline {
        config: env.config.clone(),
        control_path: Some(env.dir.path().join("a.sock")),
    };
    let fresh = Baseline {
        config: env.config.clone(),
        control_path: None,
    };
    with_master.run("true", None).await?;
    let master_a = with_master.master_pid();
    let master_cmux = master_pid(&env.config, &env.runtime.control_path(), HOST);
    let own = CpuScope::Own {
        master: master_cmux,
        proxy_tid: env.proxy_tid,
    };
    let mut rows = Vec::new();
    for op in Op::ALL {
        eprintln!("  {}", op.label());
        // Every row starts from the same text, so the alternating edits always match.
        // (Writing into the existing files keeps their owner, the bench account.)
        std::fs::write(env.scratch.join("edit.txt"), &original)?;
        std::fs::write(env.scratch.join("edit-b.txt"), &original)?;
        let cmux = measure(n_cmux, own, |i| cmux_op(env, op, i)).await?;
        let a = measure(n_a, CpuScope::Children { master: master_a }, |i| {
            baseline_op(env, &with_master, op, i)
        })
        .await?;
        let b = measure(n_b, CpuScope::Children { master: None }, |i| {
            baseline_op(env, &fresh, op, i)
        })
        .await?;
        rows.push(Row {
            op: op.label().into(),
            cmux,
            a: Some(a),
            b: Some(b),
        });
    }
    Ok(rows)
}

/// `agents` tasks × `per_agent` mixed operations at once against one host.
pub async fn measure_concurrency(
    env: &BenchEnv,
    args: &Args,
) -> anyhow::Result<Vec<ConcurrencyRow>> {
    let (agents, per_agent) = if args.quick { (10, 5) } else { (50, 20) };
    let mut rows = Vec::new();

    // cmux: one process, one runtime shared by every agent, as the MCP server or an
    // embedding harness holds it. A fresh control dir so its connections are counted.
    let rt = Arc::new(SshRuntime::new(
        HOST,
        SshOptions::default()
            .config_file(&env.counted_config)
            .control_dir(env.dir.path().join("conc-ctl")),
    )?);
    let conc_rt = rt.clone();
    let before = env.proxy.connections_accepted();
    let cpu0 = cpu_now(CpuScope::Own {
        master: None,
        proxy_tid: env.proxy_tid,
    });
    let scratch = env.scratch.clone();
    let (wall, failures) = run_agents(agents, per_agent, move |agent, i| {
        let (rt, scratch) = (rt.clone(), scratch.clone());
        async move { mixed_cmux_op(&rt, &scratch, agent, i).await }
    })
    .await?;
    let cpu = cpu_now(CpuScope::Own {
        master: None,
        proxy_tid: env.proxy_tid,
    })
    .saturating_sub(cpu0);
    let rows_cmux = ConcurrencyRow::new(
        "cmux (one process, shared runtime)",
        agents,
        per_agent,
        wall,
        failures,
        env.proxy.connections_accepted() - before,
        cpu,
    );
    rows.push(rows_cmux);
    conc_rt.disconnect().await;

    // (a): a process per operation through one ControlMaster.
    let base = Baseline {
        config: env.counted_config.clone(),
        control_path: Some(env.dir.path().join("conc-a.sock")),
    };
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
    rows.push(ConcurrencyRow::new(
        "(a) ssh process per op, ControlMaster",
        agents,
        per_agent,
        wall,
        failures,
        env.proxy.connections_accepted() - before,
        cpu,
    ));
    Ok(rows)
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
                    failures.push(e.to_string());
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
    rt: &SshRuntime,
    scratch: &Path,
    agent: usize,
    i: usize,
) -> anyhow::Result<()> {
    let path = |name: String| cmux_core::RemotePath::new(scratch.join(name).display().to_string());
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
