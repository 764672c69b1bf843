//! The results: a Markdown report for humans (summary of issue 10's targets first)
//! and JSON for comparing runs.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use serde::Serialize;

use crate::summary::{self, Status};
use crate::Args;

/// Latency and CPU of one way of doing one operation.
#[derive(Clone, Debug, Serialize)]
pub struct Stats {
    pub n: usize,
    pub median_ms: f64,
    pub p90_ms: f64,
    /// Local CPU (user + system) per operation.
    pub cpu_ms_per_op: f64,
    /// The host helper's own CPU per operation (helper mode only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_cpu_ms_per_op: Option<f64>,
}

/// One operation: cmux in helper mode next to the shell/SFTP path and the baselines.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    pub op: String,
    /// cmux through the host helper.
    pub helper: Stats,
    /// cmux on the shell/SFTP path (`HelperMode::Off`).
    pub shell: Option<Stats>,
    /// (a): ssh process per operation over a ControlMaster.
    pub a: Option<Stats>,
    /// (b): fresh ssh connection per operation.
    pub b: Option<Stats>,
}

/// Many operations at once against one host.
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
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_cpu_ms_per_op: Option<f64>,
}

impl ConcurrencyRow {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        who: &str,
        agents: usize,
        per_agent: usize,
        wall: Duration,
        failures: Vec<String>,
        connections: u64,
        cpu: Duration,
        host_cpu: Option<Duration>,
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
            host_cpu_ms_per_op: host_cpu.map(|c| c.as_secs_f64() * 1000.0 / total),
        }
    }

    pub fn total(&self) -> usize {
        self.agents * self.ops_per_agent
    }
}

/// The first operation of a new process on a host.
#[derive(Clone, Debug, Serialize)]
pub struct FirstOpRow {
    pub case: String,
    pub n: usize,
    pub median_ms: f64,
    pub max_ms: f64,
}

/// A connected runtime doing nothing.
#[derive(Clone, Debug, Serialize)]
pub struct IdleRow {
    pub who: String,
    pub seconds: u64,
    /// This process (minus the proxy) and the runtime's master.
    pub local_cpu_ms_per_s: f64,
    /// The helper on the host.
    pub host_cpu_ms_per_s: Option<f64>,
}

/// One search of the big tree.
#[derive(Clone, Debug, Serialize)]
pub struct GrepRow {
    pub pattern: String,
    pub who: String,
    pub n: usize,
    pub median_ms: f64,
    /// What the tool reports (grep -rn searches every file).
    pub files_searched: Option<u64>,
    /// Matching lines (shown + omitted past the tool's cap).
    pub matches: u64,
}

/// grep over the big generated tree.
#[derive(Clone, Debug, Serialize)]
pub struct BigGrep {
    pub files: u64,
    pub bytes: u64,
    pub rows: Vec<GrepRow>,
}

/// The CLI rows, or why there are none.
#[derive(Clone, Debug, Serialize)]
pub struct CliSection {
    pub rows: Vec<Row>,
    pub skipped: Option<String>,
}

/// Everything measured at one RTT.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RttResult {
    pub rtt_ms: u64,
    pub tools: Vec<Row>,
    pub runtime: Vec<Row>,
    pub create: Vec<Row>,
    pub cli: Option<CliSection>,
    pub concurrency: Vec<ConcurrencyRow>,
    pub max_sessions_1: Vec<ConcurrencyRow>,
    pub first_op: Vec<FirstOpRow>,
    pub idle: Vec<IdleRow>,
    pub big_grep: Option<BigGrep>,
    /// The russh transport beside the OpenSSH path (issue 13).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub russh: Option<crate::russh_rows::RusshSection>,
}

/// The helper cmux carries.
#[derive(Clone, Debug, Serialize)]
pub struct HelperSize {
    pub version: String,
    pub build: String,
    /// The executable on the host.
    pub size_bytes: u64,
    /// What is uploaded (gzip).
    pub gz_bytes: u64,
}

impl HelperSize {
    pub fn bundled() -> Option<Self> {
        cmux_host_bundle::bundled().map(|b| HelperSize {
            version: b.version.to_owned(),
            build: b.build.to_owned(),
            size_bytes: b.size,
            gz_bytes: b.gz.len() as u64,
        })
    }
}

/// The whole run.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub quick: bool,
    pub machine: String,
    pub date: String,
    pub command: String,
    pub helper: Option<HelperSize>,
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

/// A figure with 3 significant digits or so.
pub fn f(x: f64) -> String {
    if x >= 100.0 {
        format!("{x:.0}")
    } else if x >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

const METHOD: &str = "Each row runs against a real OpenSSH server on this machine (the test \
harness's sshd, logged in as a plain account), through a latency-injecting proxy when RTT > 0. \
**helper** is cmux driving the host through its helper `cmux-host` (the default: one channel, one \
request per operation); **shell/SFTP** is cmux with the helper off (`CMUX_HOST_HELPER=off`: a \
shell wrapper per command, SFTP for files), on the same master; **(a)** is an `ssh` process per \
operation over a ControlMaster (`ssh -o ControlMaster=auto -o ControlPath=… -o ControlPersist=60 \
host '<cmd>'`); **(b)** is a fresh `ssh host '<cmd>'` per operation. Latencies are medians (p90 \
in parentheses) in ms after one warm-up call; RT = median ÷ RTT; ×a = (a)'s median ÷ the \
helper's. CPU is user+system ms per operation: *local* is this process (minus the proxy's \
thread) plus cmux's ssh master, or for the baselines and the CLI the reaped child processes \
plus (a)'s master; *host* is the helper process's own CPU on the host (this machine, read from \
/proc in 10 ms ticks; the commands it runs are not counted). MCP rows call the agent tool by \
name with JSON input through `cmux_core::tools::call`, exactly as the MCP server runs an MCP \
client's call (the MCP framing on stdio is not included).";

impl Report {
    pub fn new(args: &Args, results: Vec<RttResult>) -> Self {
        let mut command = String::from(
            "cargo build --release -p cmux-cli && cargo run --release -p cmux-bench --",
        );
        if args.quick {
            command.push_str(" --quick");
        }
        if args.only_create {
            command.push_str(" --only create");
        }
        if args.only_russh {
            command.push_str(" --only russh");
        }
        Report {
            quick: args.quick,
            machine: machine(),
            date: shell_line("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
            command,
            helper: HelperSize::bundled(),
            results,
        }
    }

    pub fn markdown(&self) -> String {
        let mut s = String::new();
        s.push_str("# Benchmarks\n\n");
        let _ = writeln!(
            s,
            "Machine: {}. Run: {}. Reproduce with `{}`{}.\n",
            self.machine,
            self.date,
            self.command,
            if self.quick {
                " (quick mode: few iterations, a small grep tree; figures are rough)"
            } else {
                ""
            }
        );
        // Issue 10's summary reads the main tables, which a russh-only run has not.
        if !self.command.contains("--only russh") {
            s.push_str(&summary::markdown(self));
        }
        match &self.helper {
            Some(h) => {
                let _ = writeln!(
                    s,
                    "The helper (`cmux-host` {}, build {}, static Linux x86_64): **{} bytes \
                     ({:.2} MiB) on disk** on the host, **{} bytes ({:.2} MiB) uploaded** \
                     (gzip), once per host and version.\n",
                    h.version,
                    h.build,
                    h.size_bytes,
                    h.size_bytes as f64 / 1048576.0,
                    h.gz_bytes,
                    h.gz_bytes as f64 / 1048576.0
                );
            }
            None => s.push_str("This build carries no helper.\n\n"),
        }
        s.push_str("## How it is measured\n\n");
        s.push_str(METHOD);
        s.push_str("\n\n");
        for r in &self.results {
            r.markdown(&mut s);
        }
        s
    }

    /// Writes the markdown and JSON reports into `dir` (the russh-only run under its own
    /// names) and says which files it wrote.
    pub fn write(&self, dir: &Path, only_russh: bool) -> anyhow::Result<String> {
        std::fs::create_dir_all(dir)?;
        // The russh rows alone go beside the main table, which keeps its own run.
        let (md, json) = if only_russh {
            ("BENCHMARKS-russh.md", "benchmarks-russh.json")
        } else {
            ("BENCHMARKS.md", "benchmarks.json")
        };
        std::fs::write(dir.join(md), self.markdown())
            .with_context(|| format!("writing {}/{md}", dir.display()))?;
        std::fs::write(dir.join(json), serde_json::to_string_pretty(self)? + "\n")
            .with_context(|| format!("writing {}/{json}", dir.display()))?;
        Ok(format!("{0}/{md} and {0}/{json}", dir.display()))
    }

    /// Failures of cmux in helper mode under concurrency: these are bugs, not noise.
    pub fn helper_failures(&self) -> Vec<String> {
        self.results
            .iter()
            .flat_map(|r| r.concurrency.iter().chain(&r.max_sessions_1))
            .filter(|c| c.who.contains("helper") && c.failures > 0)
            .map(|c| {
                format!(
                    "{}: {} of {} failed, first: {}",
                    c.who,
                    c.failures,
                    c.total(),
                    c.first_failures.first().map(String::as_str).unwrap_or("")
                )
            })
            .collect()
    }

    /// Operations that failed in the russh rows: bugs of the transport (or of the
    /// OpenSSH side they are measured beside).
    pub fn russh_failures(&self) -> Vec<String> {
        self.results
            .iter()
            .flat_map(|r| {
                r.russh.iter().flat_map(move |s| {
                    s.errors
                        .iter()
                        .map(move |e| format!("RTT {} ms: {e}", r.rtt_ms))
                })
            })
            .collect()
    }

    /// Summary targets that were missed (printed, never a failure: figures on a shared
    /// machine are noisy).
    pub fn missed(&self) -> Vec<String> {
        summary::targets(self)
            .into_iter()
            .filter(|t| t.status == Status::Missed)
            .map(|t| format!("{}: {}", t.target, t.figure))
            .collect()
    }
}

/// A table cell: median (p90).
fn lat(s: &Stats) -> String {
    format!("{} ({})", f(s.median_ms), f(s.p90_ms))
}

fn opt(x: Option<f64>) -> String {
    x.map(f).unwrap_or_else(|| "–".into())
}

fn ops_table(s: &mut String, rows: &[Row], rtt_ms: u64, baselines: bool) {
    let rt = |x: &Stats| {
        if rtt_ms > 0 {
            f(x.median_ms / rtt_ms as f64)
        } else {
            "–".into()
        }
    };
    s.push_str("| operation | helper | RT | shell/SFTP | RT |");
    if baselines {
        s.push_str(" (a) | (b) | ×a |");
    }
    s.push_str(" CPU helper | host CPU helper | CPU shell |");
    if baselines {
        s.push_str(" CPU (a) | CPU (b) | CPU ×a |");
    }
    s.push('\n');
    let cols = if baselines { 14 } else { 8 };
    s.push('|');
    s.push_str(&"---|".repeat(cols));
    s.push('\n');
    for row in rows {
        let h = &row.helper;
        let shell = row.shell.as_ref();
        let _ = write!(
            s,
            "| {} | {} | {} | {} | {} |",
            row.op,
            lat(h),
            rt(h),
            shell.map(lat).unwrap_or_else(|| "–".into()),
            shell.map(rt).unwrap_or_else(|| "–".into()),
        );
        if baselines {
            let _ = write!(
                s,
                " {} | {} | {} |",
                row.a.as_ref().map(lat).unwrap_or_else(|| "–".into()),
                row.b.as_ref().map(lat).unwrap_or_else(|| "–".into()),
                opt(row.a.as_ref().map(|a| a.median_ms / h.median_ms.max(1e-9))),
            );
        }
        let _ = write!(
            s,
            " {} | {} | {} |",
            f(h.cpu_ms_per_op),
            opt(h.host_cpu_ms_per_op),
            opt(shell.map(|x| x.cpu_ms_per_op)),
        );
        if baselines {
            // CPU accounting is tick-based: a few quick iterations can read as 0.
            let ratio = match &row.a {
                Some(a) if h.cpu_ms_per_op > 0.0 => f(a.cpu_ms_per_op / h.cpu_ms_per_op),
                _ => "–".into(),
            };
            let _ = write!(
                s,
                " {} | {} | {ratio} |",
                opt(row.a.as_ref().map(|x| x.cpu_ms_per_op)),
                opt(row.b.as_ref().map(|x| x.cpu_ms_per_op)),
            );
        }
        s.push('\n');
    }
    s.push('\n');
}

fn concurrency_table(s: &mut String, rows: &[ConcurrencyRow]) {
    s.push_str("| who | ops | wall s | ops/s | failures | connections opened | CPU ms/op | host CPU ms/op |\n|---|---|---|---|---|---|---|---|\n");
    for c in rows {
        let _ = writeln!(
            s,
            "| {} | {} × {} | {} | {} | {} | {} | {} | {} |",
            c.who,
            c.agents,
            c.ops_per_agent,
            f(c.wall_s),
            f(c.ops_per_s),
            c.failures,
            c.connections_opened,
            f(c.cpu_ms_per_op),
            opt(c.host_cpu_ms_per_op),
        );
    }
    for c in rows {
        if let Some(first) = c.first_failures.first() {
            let _ = writeln!(
                s,
                "\nFirst failure of {}: `{}`",
                c.who,
                first.replace(['\n', '`'], " ")
            );
        }
    }
    s.push('\n');
}

impl RttResult {
    fn markdown(&self, s: &mut String) {
        let _ = writeln!(s, "## RTT {} ms\n", self.rtt_ms);
        if !self.tools.is_empty() {
            s.push_str("### MCP tools\n\nEach tool called by name with JSON input (`tools::call`), as the MCP server runs it. glob and grep search a small workspace of 40 files.\n\n");
            ops_table(s, &self.tools, self.rtt_ms, true);
        }
        if !self.runtime.is_empty() {
            s.push_str("### Runtime operations\n\nThe `Runtime` trait's calls, as the CLI and the tools make them.\n\n");
            ops_table(s, &self.runtime, self.rtt_ms, true);
        }
        if !self.create.is_empty() {
            s.push_str("### Workspace create\n\nA project of incompressible files pushed to the host (cold: every object travels), then warm creates (median of several: nothing new to send). CPU includes the local git and ssh processes of the push; the baselines run the same git steps as ssh processes.\n\n");
            ops_table(s, &self.create, self.rtt_ms, true);
        }
        if let Some(cli) = &self.cli {
            s.push_str("### CLI\n\nThe `cmux` binary, one process per command, against an SSH workspace whose master persists between calls (`$CMUX_HOME/ssh`); **shell/SFTP** is `CMUX_HOST_HELPER=off`. Each process starts its own helper on the master. CPU is the cmux process plus the master.\n\n");
            match &cli.skipped {
                Some(why) => {
                    let _ = writeln!(s, "Not measured: {why}.\n");
                }
                None => ops_table(s, &cli.rows, self.rtt_ms, false),
            }
        }
        if !self.concurrency.is_empty() {
            s.push_str("### Concurrency\n\nAgents at once, each doing mixed operations (exec / read / stat / write / list) in turn, one process, one runtime shared by every agent; default `MaxSessions` 10. Connections are counted at the proxy.\n\n");
            concurrency_table(s, &self.concurrency);
        }
        if !self.max_sessions_1.is_empty() {
            s.push_str("### 500 operations at once, `MaxSessions 1`\n\nOne process starts 500 mixed operations at the same time against an sshd that allows one session per connection.\n\n");
            concurrency_table(s, &self.max_sessions_1);
        }
        if !self.first_op.is_empty() {
            s.push_str("### First operation on a host\n\nA new runtime with a fresh control directory (no master) runs `exec true`; the time runs from its creation to the command's end. *Not installed*: a fresh install directory and no saved login environment, so the helper is uploaded, checked and started first.\n\n| case | median ms | max ms | n |\n|---|---|---|---|\n");
            for r in &self.first_op {
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {} |",
                    r.case,
                    f(r.median_ms),
                    f(r.max_ms),
                    r.n
                );
            }
            s.push('\n');
        }
        if let Some(russh) = &self.russh {
            russh.markdown(s, self.rtt_ms);
        }
        if !self.idle.is_empty() {
            s.push_str("### Idle\n\nA connected runtime (its own master; helper up in helper mode) doing nothing after one command.\n\n| who | seconds | local CPU ms/s | host CPU ms/s (helper) |\n|---|---|---|---|\n");
            for r in &self.idle {
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {} |",
                    r.who,
                    r.seconds,
                    f(r.local_cpu_ms_per_s),
                    opt(r.host_cpu_ms_per_s)
                );
            }
            s.push('\n');
        }
        if let Some(g) = &self.big_grep {
            let _ = writeln!(
                s,
                "### grep over a big tree\n\nA generated tree of {} files, {:.0} MB (source-like text). The grep tool is called with the tree as its path (matches counted as shown + omitted past its 500-line cap); `grep` runs on the host directly. Medians after a warm-up (page cache warm); the shell/SFTP path runs once.\n\n| pattern | who | median ms | files searched | matching lines | n |\n|---|---|---|---|---|---|",
                g.files,
                g.bytes as f64 / 1e6
            );
            for r in &g.rows {
                let _ = writeln!(
                    s,
                    "| `{}` | {} | {} | {} | {} | {} |",
                    r.pattern,
                    r.who,
                    f(r.median_ms),
                    r.files_searched
                        .map(|n| n.to_string())
                        .unwrap_or_else(|| format!("{} (all)", g.files)),
                    r.matches,
                    r.n
                );
            }
            s.push('\n');
        }
    }
}
