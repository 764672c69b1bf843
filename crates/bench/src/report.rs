//! The results: a Markdown table for humans and JSON for comparing runs.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use serde::Serialize;

use crate::Args;

/// Latency and CPU of one way of doing one operation.
#[derive(Clone, Debug, Serialize)]
pub struct Stats {
    pub n: usize,
    pub median_ms: f64,
    pub p90_ms: f64,
    pub cpu_ms_per_op: f64,
}

/// One operation, cmux next to the baselines.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    pub op: String,
    pub cmux: Stats,
    /// (a): ssh process per operation over a ControlMaster.
    pub a: Option<Stats>,
    /// (b): fresh ssh connection per operation.
    pub b: Option<Stats>,
}

/// Many agents at once against one host.
#[derive(Clone, Debug, Serialize)]
pub struct ConcurrencyRow {
    pub who: String,
    pub agents: usize,
    pub ops_per_agent: usize,
    pub wall_s: f64,
    pub ops_per_s: f64,
    pub failures: usize,
    pub first_failures: Vec<String>,
    pub connections_opened: u64,
    pub cpu_ms_per_op: f64,
}

impl ConcurrencyRow {
    pub fn new(
        who: &str,
        agents: usize,
        per_agent: usize,
        wall: Duration,
        failures: Vec<String>,
        connections: u64,
        cpu: Duration,
    ) -> Self {
        let total = (agents * per_agent) as f64;
        ConcurrencyRow {
            who: who.into(),
            agents,
            ops_per_agent: per_agent,
            wall_s: wall.as_secs_f64(),
            ops_per_s: total / wall.as_secs_f64().max(1e-9),
            failures: failures.len(),
            first_failures: failures.into_iter().take(3).collect(),
            connections_opened: connections,
            cpu_ms_per_op: cpu.as_secs_f64() * 1000.0 / total,
        }
    }
}

/// Everything measured at one RTT.
#[derive(Clone, Debug, Serialize)]
pub struct RttResult {
    pub rtt_ms: u64,
    pub rows: Vec<Row>,
    pub concurrency: Vec<ConcurrencyRow>,
}

/// The whole run.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub quick: bool,
    pub machine: String,
    pub date: String,
    pub command: String,
    pub results: Vec<RttResult>,
}

fn shell_line(cmd: &str, args: &[&str]) -> String {
    std::process::Command::new(cmd)
        .args(args)
        .output()
        .map(|o| {
            let text = if o.stdout.is_empty() {
                o.stderr
            } else {
                o.stdout
            };
            String::from_utf8_lossy(&text).trim().to_owned()
        })
        .unwrap_or_default()
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':').map(|(_, v)| v.trim().to_owned()))
        })
        .unwrap_or_else(|| "unknown CPU".into());
    format!(
        "{} cores ({cpu}), {}, {}",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        shell_line("uname", &["-sr"]),
        shell_line("ssh", &["-V"]),
    )
}

fn f(x: f64) -> String {
    if x >= 100.0 {
        format!("{x:.0}")
    } else if x >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

impl Report {
    pub fn new(args: &Args, results: Vec<RttResult>) -> Self {
        let mut command = String::from("cargo run --release -p cmux-bench --");
        if args.quick {
            command.push_str(" --quick");
        }
        if args.only_create {
            command.push_str(" --only create");
        }
        Report {
            quick: args.quick,
            machine: machine(),
            date: shell_line("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
            command,
            results,
        }
    }

    pub fn markdown(&self) -> String {
        let mut s = String::new();
        s.push_str("# Benchmarks\n\n");
        s.push_str(&format!(
            "Machine: {}. Run: {}. Reproduce with `{}`{}.\n\n",
            self.machine,
            self.date,
            self.command,
            if self.quick {
                " (quick mode: few iterations, figures are rough)"
            } else {
                ""
            }
        ));
        s.push_str(
            "Each row is one operation against a real OpenSSH server on this machine, through a \
             latency-injecting proxy when RTT > 0. **cmux** is the library (`SshRuntime`: \
             native mux + SFTP over one ControlMaster); **(a)** is a process per operation over \
             a ControlMaster (`ssh -o ControlMaster=auto -o ControlPath=… -o ControlPersist=60 host \
             '<cmd>'`); **(b)** is a fresh `ssh host '<cmd>'` per operation. Latencies are medians \
             (p90 in parentheses) in ms; RT = latency ÷ RTT; ×a and ×b = baseline latency ÷ cmux \
             latency (higher is better for cmux). CPU is local user+sys per operation in ms: for \
             cmux this process (minus the proxy's thread) plus its master; for the baselines the \
             ssh client processes plus (a)'s master.\n\n",
        );
        for r in &self.results {
            s.push_str(&format!("## RTT {} ms\n\n", r.rtt_ms));
            let rt_col = r.rtt_ms > 0;
            s.push_str("| operation | cmux | ");
            if rt_col {
                s.push_str("cmux RT | ");
            }
            s.push_str("(a) | ×a | (b) | ×b | CPU cmux | CPU (a) | CPU (b) | CPU ×a |\n");
            s.push_str("|---|---|");
            if rt_col {
                s.push_str("---|");
            }
            s.push_str("---|---|---|---|---|---|---|---|\n");
            for row in &r.rows {
                let c = &row.cmux;
                s.push_str(&format!(
                    "| {} | {} ({}) | ",
                    row.op,
                    f(c.median_ms),
                    f(c.p90_ms)
                ));
                if rt_col {
                    s.push_str(&format!("{} | ", f(c.median_ms / r.rtt_ms as f64)));
                }
                let base = |b: &Option<Stats>| match b {
                    Some(b) => (
                        format!("{} ({})", f(b.median_ms), f(b.p90_ms)),
                        f(b.median_ms / c.median_ms.max(1e-9)),
                        f(b.cpu_ms_per_op),
                    ),
                    None => ("–".into(), "–".into(), "–".into()),
                };
                let (a, xa, ca) = base(&row.a);
                let (b, xb, cb) = base(&row.b);
                // CPU accounting is tick-based: a few quick iterations can read as 0.
                let cpu_ratio = match &row.a {
                    Some(a) if c.cpu_ms_per_op > 0.0 => f(a.cpu_ms_per_op / c.cpu_ms_per_op),
                    _ => "–".into(),
                };
                s.push_str(&format!(
                    "{a} | {xa} | {b} | {xb} | {} | {ca} | {cb} | {cpu_ratio} |\n",
                    f(c.cpu_ms_per_op)
                ));
            }
            if r.concurrency.is_empty() {
                // Not measured (`--only create`).
                s.push('\n');
                continue;
            }
            s.push_str("\nConcurrency (mixed exec / read / stat / write / list, one host, default `MaxSessions` 10):\n\n");
            s.push_str("| who | agents × ops | wall s | ops/s | failures | connections opened | CPU ms/op |\n|---|---|---|---|---|---|---|\n");
            for c in &r.concurrency {
                s.push_str(&format!(
                    "| {} | {} × {} | {} | {} | {} | {} | {} |\n",
                    c.who,
                    c.agents,
                    c.ops_per_agent,
                    f(c.wall_s),
                    f(c.ops_per_s),
                    c.failures,
                    c.connections_opened,
                    f(c.cpu_ms_per_op)
                ));
            }
            for c in &r.concurrency {
                if let Some(first) = c.first_failures.first() {
                    s.push_str(&format!(
                        "\nFirst failure of {}: `{}`\n",
                        c.who,
                        first.replace('\n', " ")
                    ));
                }
            }
            s.push('\n');
        }
        s
    }

    pub fn write(&self, dir: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(dir)?;
        std::fs::write(dir.join("BENCHMARKS.md"), self.markdown())
            .with_context(|| format!("writing {}/BENCHMARKS.md", dir.display()))?;
        std::fs::write(
            dir.join("benchmarks.json"),
            serde_json::to_string_pretty(self)?,
        )
        .with_context(|| format!("writing {}/benchmarks.json", dir.display()))?;
        Ok(())
    }

    pub fn concurrency_failures(&self) -> Vec<String> {
        self.results
            .iter()
            .flat_map(|r| r.concurrency.iter())
            .filter(|c| c.failures > 0)
            .map(|c| {
                format!(
                    "{}: {} of {}",
                    c.who,
                    c.failures,
                    c.agents * c.ops_per_agent
                )
            })
            .collect()
    }

    /// True when cmux itself (not a baseline) failed an operation under concurrency.
    pub fn cmux_failed(&self) -> bool {
        self.results
            .iter()
            .flat_map(|r| r.concurrency.iter())
            .any(|c| c.who.starts_with("cmux") && c.failures > 0)
    }
}
