//! The russh transport (issue 13) beside the OpenSSH path, both in helper mode: the
//! first operation of a new runtime on a host whose helper is installed, the raw
//! runtime operations on a warm runtime, their local CPU, and the CLI as separate
//! processes (`CMUX_SSH_TRANSPORT=russh`, a handshake per process, against
//! `openssh`, which attaches to the ControlMaster an earlier process left).
//!
//! A failed russh operation is recorded in the section (and fails the run after the
//! report is written): it is a bug of the transport, not a slow figure.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use cmux_backend_ssh::{SshOptions, SshRuntime, Transport};
use cmux_core::{ExecRequest, Runtime, RuntimeExt};
use serde::Serialize;

use crate::cli::{cli_binary, make_project};
use crate::cpu::{master_pid, process_cpu, thread_cpu, CpuSample};
use crate::measure::{measure, stats_of, CpuScope, Iterations};
use crate::ops::{cmux_op, Op};
use crate::report::{f, Stats};
use crate::setup::{chown_to_bench, helper_pid, require_helper, BenchEnv, HOST};
use crate::Args;

/// The CLI workspace of these rows (in a `CMUX_HOME` of their own).
const WORKSPACE: &str = "russhbench";

/// One operation over both transports.
#[derive(Clone, Debug, Serialize)]
pub struct TransportRow {
    /// What was measured.
    pub op: String,
    /// The OpenSSH path (ControlMaster, helper mode).
    pub openssh: Stats,
    /// The russh transport (helper mode).
    pub russh: Stats,
    /// russh's median ÷ OpenSSH's.
    pub latency_ratio: f64,
    /// russh's local CPU per operation ÷ OpenSSH's (none when OpenSSH's reads 0).
    pub cpu_ratio: Option<f64>,
}

impl TransportRow {
    fn new(op: &str, openssh: Stats, russh: Stats) -> Self {
        let latency_ratio = russh.median_ms / openssh.median_ms.max(1e-9);
        let cpu_ratio =
            (openssh.cpu_ms_per_op > 0.0).then(|| russh.cpu_ms_per_op / openssh.cpu_ms_per_op);
        TransportRow {
            op: op.to_owned(),
            openssh,
            russh,
            latency_ratio,
            cpu_ratio,
        }
    }
}

/// The russh rows at one RTT.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RusshSection {
    /// A new runtime's first `exec true`, the helper installed (connect, helper
    /// start, exec).
    pub cold: Option<TransportRow>,
    /// Raw runtime operations on a warm runtime of each transport.
    pub ops: Vec<TransportRow>,
    /// `cmux exec ws -- true` as a separate process with each transport.
    pub cli: Option<TransportRow>,
    /// Why the CLI row is missing when it was not measured (no `cmux` binary).
    pub cli_skipped: Option<String>,
    /// Operations that failed over russh (or the OpenSSH side of a row): bugs.
    pub errors: Vec<String>,
}

/// Measures every russh row at `env`'s RTT; a part that fails is recorded in
/// [`RusshSection::errors`] and the others still run.
pub async fn measure_russh(env: &BenchEnv, args: &Args) -> RusshSection {
    let mut section = RusshSection::default();
    eprintln!("  russh: cold first operation");
    match measure_cold(env, args).await {
        Ok(row) => section.cold = Some(row),
        Err(e) => section.errors.push(format!("cold first operation: {e:#}")),
    }
    match measure_ops(env, args, &mut section.ops).await {
        Ok(()) => {}
        Err(e) => section.errors.push(format!("runtime operations: {e:#}")),
    }
    match cli_binary() {
        None => {
            section.cli_skipped = Some(
                "the cmux binary is not beside cmux-bench: run `cargo build --release -p \
                 cmux-cli` first"
                    .into(),
            )
        }
        Some(bin) => {
            eprintln!("  russh: CLI `cmux exec -- true`");
            match measure_cli(env, args, bin).await {
                Ok(row) => section.cli = Some(row),
                Err(e) => section.errors.push(format!("CLI: {e:#}")),
            }
        }
    }
    section
}

/// Options of a runtime of its own (control dir `ctl`: a new master on the OpenSSH
/// path, a new process-wide state on either) over `transport`, with the helper
/// `env` installed.
fn options(env: &BenchEnv, ctl: &str, transport: Transport) -> SshOptions {
    env.options(&env.config, ctl, &env.install_dir)
        .transport(transport)
}

/// Fails unless `rt` runs over `transport` through the host helper.
async fn require(rt: &SshRuntime, transport: Transport) -> anyhow::Result<()> {
    if rt.transport() != transport {
        bail!(
            "the runtime uses {:?}, not the {transport:?} transport asked for",
            rt.transport()
        );
    }
    require_helper(rt).await
}

/// The proxy thread's CPU so far (it is not cmux's).
fn proxy_cpu(env: &BenchEnv) -> Duration {
    env.proxy_tid.map(thread_cpu).unwrap_or_default()
}

/// One cold start: a new runtime (control dir `ctl`) timed from its creation to the
/// end of its first `exec true`, and the local CPU that cost: this process (minus the
/// proxy), the ssh processes it waited for (the master's launch) and, on the OpenSSH
/// path, the daemonised master's own CPU. The runtime disconnects and is dropped.
async fn cold_start(
    env: &BenchEnv,
    ctl: &str,
    transport: Transport,
) -> anyhow::Result<(Duration, Duration)> {
    let options = options(env, ctl, transport);
    let cpu0 = CpuSample::now();
    let proxy0 = proxy_cpu(env);
    let t = Instant::now();
    let rt = SshRuntime::new(HOST, options)?;
    let out = rt.output(ExecRequest::script("true"), 1 << 16).await?;
    let elapsed = t.elapsed();
    let cpu1 = CpuSample::now();
    let proxy1 = proxy_cpu(env);
    if !out.status.success() {
        bail!("the first `true` failed: {}", out.status);
    }
    let master = match transport {
        Transport::Russh => Duration::ZERO,
        _ => master_pid(&env.config, &rt.control_path(), HOST)
            .map(process_cpu)
            .unwrap_or_default(),
    };
    require(&rt, transport).await?;
    rt.disconnect().await;
    drop(rt);
    let own = cpu1
        .own
        .saturating_sub(cpu0.own)
        .saturating_sub(proxy1.saturating_sub(proxy0));
    let children = cpu1.children.saturating_sub(cpu0.children);
    Ok((elapsed, own + children + master))
}

/// Cold starts of both transports in turn, each sample on a new control dir.
async fn measure_cold(env: &BenchEnv, args: &Args) -> anyhow::Result<TransportRow> {
    let samples = match (args.quick, env.rtt.is_zero()) {
        (true, _) => 2,
        (false, true) => 15,
        (false, false) => 8,
    };
    let mut lat = [Vec::new(), Vec::new()];
    let mut cpu = [Duration::ZERO; 2];
    for k in 0..samples {
        for (i, transport) in [Transport::OpenSsh, Transport::Russh]
            .into_iter()
            .enumerate()
        {
            let ctl = format!("russh-cold-{i}-{k}");
            let (t, c) = cold_start(env, &ctl, transport)
                .await
                .with_context(|| format!("{transport:?}, sample {}", k + 1))?;
            lat[i].push(t);
            cpu[i] += c;
        }
    }
    let [l0, l1] = lat;
    Ok(TransportRow::new(
        "first `exec true`, helper installed (connect + start + exec)",
        stats_of(l0, cpu[0], None),
        stats_of(l1, cpu[1], None),
    ))
}

/// The raw runtime operations on `env`'s OpenSSH helper runtime and on a warm russh
/// runtime, one after the other for each operation.
async fn measure_ops(
    env: &BenchEnv,
    args: &Args,
    rows: &mut Vec<TransportRow>,
) -> anyhow::Result<()> {
    let n = Iterations::new(args.quick, env.rtt).cmux;
    let openssh = env.helper.runtime.as_ref();
    require(openssh, Transport::OpenSsh).await?;
    let russh = SshRuntime::new(HOST, options(env, "russh-warm", Transport::Russh))?;
    russh.ensure_ready().await?;
    require(&russh, Transport::Russh).await?;
    let openssh_scope = CpuScope::Own {
        master: env.master_pid,
        proxy_tid: env.proxy_tid,
        helper: env.helper_pid,
    };
    let russh_scope = CpuScope::Own {
        master: None,
        proxy_tid: env.proxy_tid,
        helper: helper_pid(&russh).await,
    };
    let result = async {
        for op in Op::ALL {
            eprintln!("  russh: {}", op.label());
            let a = measure(n, openssh_scope, |_| cmux_op(env, openssh, op))
                .await
                .context("OpenSSH")?;
            let b = measure(n, russh_scope, |_| cmux_op(env, &russh, op))
                .await
                .with_context(|| format!("russh, {}", op.label()))?;
            rows.push(TransportRow::new(op.label(), a, b));
        }
        anyhow::Ok(())
    }
    .await;
    russh.disconnect().await;
    result
}

/// The `cmux` binary with a `CMUX_HOME` of its own.
struct Cli {
    bin: PathBuf,
    home: PathBuf,
    config: PathBuf,
}

impl Cli {
    /// Runs `cmux args` over `transport` (`openssh` or `russh`); fails on a non-zero
    /// exit with its stderr.
    async fn run(&self, args: &[&str], transport: &str) -> anyhow::Result<()> {
        let out = tokio::process::Command::new(&self.bin)
            .args(args)
            .env("CMUX_HOME", &self.home)
            .env("CMUX_SSH_CONFIG", &self.config)
            .env("CMUX_SSH_TRANSPORT", transport)
            .env_remove("CMUX_HOST_HELPER")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .await
            .with_context(|| format!("running {}", self.bin.display()))?;
        if !out.status.success() {
            bail!(
                "CMUX_SSH_TRANSPORT={transport} cmux {args:?} failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    }
}

/// `cmux exec ws -- true`, a process per call, with each transport. The OpenSSH
/// calls attach to the master the workspace's creation left (its CPU counted); the
/// russh calls connect each time.
async fn measure_cli(env: &BenchEnv, args: &Args, bin: PathBuf) -> anyhow::Result<TransportRow> {
    let project = env.dir.path().join("russh-cli-project");
    make_project(&project)?;
    let cli = Cli {
        bin,
        home: env.dir.path().join("russh-cli-home"),
        config: env.config.clone(),
    };
    let src_base = env.path("russh-cli-src");
    if env.bench_account {
        std::fs::create_dir_all(&src_base)?;
        chown_to_bench(Path::new(&src_base))?;
    }
    let project_arg = project.display().to_string();
    cli.run(
        &[
            "new",
            WORKSPACE,
            "--ssh",
            HOST,
            "--project",
            &project_arg,
            "--src-base",
            &src_base,
        ],
        "openssh",
    )
    .await?;
    // The CLI's master, as cli.rs finds it: a runtime of the same host and config
    // names the same socket under $CMUX_HOME/ssh.
    let socket = SshRuntime::new(
        HOST,
        SshOptions::default()
            .config_file(&env.config)
            .control_dir(cli.home.join("ssh")),
    )?
    .control_path();
    let n = match (args.quick, env.rtt.is_zero()) {
        (true, _) => 3,
        (false, true) => 30,
        (false, false) => 15,
    };
    let argv = ["exec", WORKSPACE, "--", "true"];
    let result = async {
        // Warm-up first, so the master exists when its pid is read.
        cli.run(&argv, "openssh").await?;
        let openssh_scope = CpuScope::Children {
            master: master_pid(&env.config, &socket, HOST),
        };
        let a = measure(n, openssh_scope, |_| cli.run(&argv, "openssh")).await?;
        let b = measure(n, CpuScope::Children { master: None }, |_| {
            cli.run(&argv, "russh")
        })
        .await?;
        anyhow::Ok(TransportRow::new("`cmux exec ws -- true`", a, b))
    }
    .await;
    close_master(&env.config, &socket);
    result
}

/// Asks the CLI's master to exit (it would otherwise linger for its ControlPersist).
fn close_master(config: &Path, socket: &Path) {
    let _ = std::process::Command::new("ssh")
        .arg("-F")
        .arg(config)
        .arg("-o")
        .arg(format!("ControlPath={}", socket.display()))
        .args(["-O", "exit", HOST])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Ratios within this of a "no more than OpenSSH" target read as equal: figures on a
/// shared machine move by a few percent from run to run.
const EQUAL_WITHIN: f64 = 0.05;

/// "met" or "**missed**" for `ratio` against `target` (at most), "–" without one.
fn verdict(ratio: Option<f64>, target: f64) -> &'static str {
    match ratio {
        Some(r) if r <= target => "met",
        Some(_) => "**missed**",
        None => "–",
    }
}

/// As [`verdict`] against 1, with "≈" for a ratio within [`EQUAL_WITHIN`] above it
/// (the target is "equal or better").
fn verdict_equal(ratio: Option<f64>) -> &'static str {
    match ratio {
        Some(r) if r > 1.0 && r <= 1.0 + EQUAL_WITHIN => "≈ (within 5%)",
        other => verdict(other, 1.0),
    }
}

impl RusshSection {
    /// The section's Markdown, for the RTT `rtt_ms`.
    pub fn markdown(&self, s: &mut String, rtt_ms: u64) {
        let rt = |x: &Stats| {
            if rtt_ms > 0 {
                f(x.median_ms / rtt_ms as f64)
            } else {
                "–".into()
            }
        };
        s.push_str(
            "### russh transport (issue 13)\n\ncmux's built-in SSH client \
             (`Transport::Russh`, `CMUX_SSH_TRANSPORT=russh`: one TCP connection inside the \
             process, the helper on one session channel, no ssh binary, no ControlMaster) \
             beside the OpenSSH path (`Transport::OpenSsh`: a ControlMaster), both in \
             helper mode against the same host and ssh config. Latencies are medians (p90) \
             in ms; RT = median ÷ RTT; ratios are russh ÷ OpenSSH. Local CPU is user+system \
             ms per operation: this process (minus the proxy's thread) plus, on the OpenSSH \
             path, its ssh master (and the ssh processes it waited for); russh has no other \
             process. Targets: a cold first operation at most 0.5× OpenSSH's time; per \
             operation, latency and local CPU at most OpenSSH's (ratio ≤ 1; up to 5% \
             above reads ≈, equal within noise).\n\n",
        );
        for e in &self.errors {
            let _ = writeln!(s, "**Failed**: `{}`\n", e.replace(['\n', '`'], " "));
        }
        if let Some(c) = &self.cold {
            let _ = writeln!(
                s,
                "**Cold first operation**: a new runtime (a fresh control dir: no master; \
                 over russh a new connection state, every runtime dropped between samples) \
                 runs `exec true` on a host whose helper is installed: TCP, handshake, \
                 authentication, the helper's start, the command. CPU includes the master's \
                 launch on the OpenSSH path.\n\n\
                 | case | OpenSSH | RT | russh | RT | russh ÷ OpenSSH | target ≤ 0.5 | CPU \
                 OpenSSH | CPU russh | n |\n|---|---|---|---|---|---|---|---|---|---|\n\
                 | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
                c.op,
                lat(&c.openssh),
                rt(&c.openssh),
                lat(&c.russh),
                rt(&c.russh),
                f(c.latency_ratio),
                verdict(Some(c.latency_ratio), 0.5),
                f(c.openssh.cpu_ms_per_op),
                f(c.russh.cpu_ms_per_op),
                c.openssh.n,
            );
        }
        if !self.ops.is_empty() {
            s.push_str(
                "**Runtime operations** on a warm runtime of each transport (the OpenSSH \
                 one is the helper runtime of the tables above, measured again here, next \
                 to russh). *host CPU* is the helper's own CPU on the host.\n\n\
                 | operation | OpenSSH | RT | russh | RT | russh ÷ OpenSSH | latency ≤ 1 | \
                 CPU OpenSSH | CPU russh | CPU russh ÷ OpenSSH | CPU ≤ 1 | host CPU OpenSSH | \
                 host CPU russh |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
            );
            for r in &self.ops {
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                    r.op,
                    lat(&r.openssh),
                    rt(&r.openssh),
                    lat(&r.russh),
                    rt(&r.russh),
                    f(r.latency_ratio),
                    verdict_equal(Some(r.latency_ratio)),
                    f(r.openssh.cpu_ms_per_op),
                    f(r.russh.cpu_ms_per_op),
                    r.cpu_ratio.map(f).unwrap_or_else(|| "–".into()),
                    verdict_equal(r.cpu_ratio),
                    opt(r.openssh.host_cpu_ms_per_op),
                    opt(r.russh.host_cpu_ms_per_op),
                );
            }
            s.push('\n');
        }
        if let Some(why) = &self.cli_skipped {
            let _ = writeln!(s, "CLI row not measured: {why}.\n");
        }
        if let Some(c) = &self.cli {
            let _ = writeln!(
                s,
                "**Connection reuse across CLI calls**: `cmux exec ws -- true`, one process \
                 per call. With `CMUX_SSH_TRANSPORT=openssh` each process attaches to the \
                 ControlMaster an earlier one left (`$CMUX_HOME/ssh`) and starts its own \
                 helper on it; with `russh` each process makes its own connection (TCP, \
                 handshake, authentication) and starts the helper. CPU is the cmux \
                 processes plus, for OpenSSH, the master. No target: this is the price of \
                 no ControlMaster.\n\n\
                 | command | OpenSSH (master reused) | RT | russh (connection per process) | \
                 RT | russh ÷ OpenSSH | CPU OpenSSH | CPU russh | n |\n\
                 |---|---|---|---|---|---|---|---|---|\n\
                 | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
                c.op,
                lat(&c.openssh),
                rt(&c.openssh),
                lat(&c.russh),
                rt(&c.russh),
                f(c.latency_ratio),
                f(c.openssh.cpu_ms_per_op),
                f(c.russh.cpu_ms_per_op),
                c.openssh.n,
            );
        }
    }
}

/// A table cell: median (p90).
fn lat(s: &Stats) -> String {
    format!("{} ({})", f(s.median_ms), f(s.p90_ms))
}

fn opt(x: Option<f64>) -> String {
    x.map(f).unwrap_or_else(|| "–".into())
}
