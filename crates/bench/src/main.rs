//! `cmux-bench`: what each cmux operation costs over SSH, in helper mode and on the
//! shell/SFTP path, next to ssh baselines, at loopback and at an injected round-trip
//! time; the figures issue 10 sets targets for.
//!
//! It starts its own sshd (the test harness's) and a latency proxy, then measures each
//! operation four ways in the same run:
//! - **helper**: the library (`SshRuntime`) through the host helper `cmux-host`;
//! - **shell/SFTP**: the library with the helper off (a shell wrapper per command,
//!   SFTP for files);
//! - **(a)** a process per operation over a ControlMaster
//!   (`ssh -o ControlMaster=auto -o ControlPath=… -o ControlPersist=60 host '<cmd>'`);
//! - **(b)** a fresh `ssh host '<cmd>'` per operation.
//!
//! Plus: the MCP tools through the tool layer, workspace creation, the CLI as separate
//! processes, concurrency (also against `MaxSessions 1`), the first operation on a
//! host without the helper, the russh transport beside the OpenSSH path (issue 13:
//! cold start, operations, CPU, the CLI), idle CPU, and grep over a big generated
//! tree next to the host's own `grep -rn`. It prints figures and ratios and never fails on a slow
//! figure: only a failed operation (a bug) fails the run.
//!
//! Usage: `cargo build --release -p cmux-cli && cargo run --release -p cmux-bench --
//! [--quick] [--out DIR | --no-write] [--rtt MS]... [--only create|russh] [--grep-tree DIR]`.
//! Writes `DIR/BENCHMARKS.md` and `DIR/benchmarks.json` (default DIR: `docs`).

mod baseline;
mod big_grep;
mod cli;
mod concurrency;
mod cpu;
mod create;
mod first_op;
mod idle;
mod measure;
mod ops;
mod report;
mod russh_rows;
mod setup;
mod summary;
mod tools;
mod tree;
mod why;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use cmux_integration_tests::sshd::SshdOptions;

/// Command-line options.
#[derive(Debug, Clone)]
pub struct Args {
    /// Few iterations and a small grep tree: a smoke run for CI (must pass, not be
    /// fast).
    pub quick: bool,
    /// Where BENCHMARKS.md and benchmarks.json go (`None`: print only).
    pub out: Option<PathBuf>,
    /// Round-trip times to measure at, in milliseconds.
    pub rtts: Vec<u64>,
    /// Only the workspace-create rows (`--only create`): a quick look at one change.
    pub only_create: bool,
    /// Only the russh transport's rows (`--only russh`), written to
    /// `DIR/BENCHMARKS-russh.md` so the main table keeps its own run.
    pub only_russh: bool,
    /// Where the big grep tree is generated and kept across runs (default: the run's
    /// scratch directory, removed at the end).
    pub grep_tree: Option<PathBuf>,
}

const HELP: &str =
    "cmux-bench [--quick] [--out DIR | --no-write] [--rtt MS]... [--only create|russh] [--grep-tree DIR]

Measures cmux operations over SSH (helper mode and the shell/SFTP path) next to ssh
baselines (default RTTs: 0 and 50 ms) and writes DIR/BENCHMARKS.md and
DIR/benchmarks.json (default DIR: docs).

--quick          few iterations and a small grep tree (a smoke run)
--only create    only the workspace-create rows
--only russh     only the russh transport's rows (DIR/BENCHMARKS-russh.md)
--grep-tree DIR  generate the big grep tree in DIR and keep it for later runs
The CLI rows need the cmux binary beside this one: cargo build --release -p cmux-cli";

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        quick: false,
        out: Some(PathBuf::from("docs")),
        rtts: Vec::new(),
        only_create: false,
        only_russh: false,
        grep_tree: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--quick" => args.quick = true,
            "--out" => {
                args.out = Some(PathBuf::from(it.next().context("--out needs a directory")?))
            }
            "--no-write" => args.out = None,
            "--rtt" => args.rtts.push(
                it.next()
                    .context("--rtt needs milliseconds")?
                    .parse()
                    .context("--rtt takes whole milliseconds")?,
            ),
            "--only" => match it.next().as_deref() {
                Some("create") => args.only_create = true,
                Some("russh") => args.only_russh = true,
                other => bail!("--only takes `create` or `russh`, not {other:?}"),
            },
            "--grep-tree" => {
                args.grep_tree = Some(PathBuf::from(
                    it.next().context("--grep-tree needs a directory")?,
                ))
            }
            "-h" | "--help" => {
                println!("{HELP}");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?} (see --help)"),
        }
    }
    if args.rtts.is_empty() {
        args.rtts = vec![0, 50];
    }
    Ok(args)
}

/// A directory for the whole run (the big grep tree), readable by the account the
/// benchmark logs in as; removed at the end.
struct RunDir {
    path: PathBuf,
    _temp: Option<tempfile::TempDir>,
}

impl RunDir {
    fn new(bench_account: bool) -> anyhow::Result<Self> {
        if bench_account {
            let path = setup::bench_home().join(format!("bench-{}-run", std::process::id()));
            std::fs::create_dir_all(&path)?;
            Ok(RunDir { path, _temp: None })
        } else {
            let temp = tempfile::Builder::new()
                .prefix("cmux-bench-run-")
                .tempdir()?;
            Ok(RunDir {
                path: temp.path().to_path_buf(),
                _temp: Some(temp),
            })
        }
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        if self._temp.is_none() {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    runtime.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let bench_account = setup::ensure_bench_account()?;
    let run_dir = RunDir::new(bench_account)?;
    let tree = if args.only_create || args.only_russh {
        None
    } else {
        let (files, mib) = big_grep::tree_shape(args.quick);
        let dir = match &args.grep_tree {
            Some(dir) => dir.clone(),
            None => run_dir.path.join("grep-tree"),
        };
        eprintln!(
            "== grep tree: {files} files, {mib} MiB in {}",
            dir.display()
        );
        Some(tree::ensure(&dir, files, mib)?)
    };
    let mut results = Vec::new();
    for &rtt in &args.rtts {
        let one_way = Duration::from_millis(rtt) / 2;
        eprintln!("== RTT {rtt} ms");
        let env = setup::BenchEnv::start(one_way, SshdOptions::default()).await?;
        let mut result = report::RttResult {
            rtt_ms: rtt,
            ..Default::default()
        };
        if args.only_russh {
            result.russh = Some(russh_rows::measure_russh(&env, &args).await);
            results.push(result);
            continue;
        }
        if !args.only_create {
            result.tools = tools::measure_tools(&env, &args).await?;
            result.runtime = ops::measure_runtime_ops(&env, &args).await?;
        }
        result.create = create::measure_workspace_create(&env, &args).await?;
        if let Some(tree) = &tree {
            result.cli = Some(cli::measure_cli(&env, &args).await?);
            result.concurrency = concurrency::measure_agents(&env, &args).await?;
            result.first_op = first_op::measure_first_op(&env, &args).await?;
            result.russh = Some(russh_rows::measure_russh(&env, &args).await);
            result.big_grep = Some(big_grep::measure_big_grep(&env, tree, &args).await?);
            result.idle = idle::measure_idle(&env, &args).await?;
            eprintln!("  starting an sshd with MaxSessions 1");
            drop(env);
            let max1 = SshdOptions {
                server_config: vec!["MaxSessions 1".into()],
                ..Default::default()
            };
            let env = setup::BenchEnv::start(one_way, max1).await?;
            result.max_sessions_1 = concurrency::measure_max_sessions_1(&env, &args).await?;
        }
        results.push(result);
    }
    eprintln!("== report");
    drop(run_dir);
    let report = report::Report::new(&args, results);
    println!("{}", report.markdown());
    if let Some(dir) = &args.out {
        let written = report.write(dir, args.only_russh)?;
        eprintln!("wrote {written}");
    }
    for missed in report.missed() {
        eprintln!("target missed: {missed}");
    }
    let russh_failures = report.russh_failures();
    for failure in &russh_failures {
        eprintln!("FAILURE over the russh transport: {failure}");
    }
    let failures = report.helper_failures();
    for failure in &failures {
        eprintln!("FAILURES in helper mode under concurrency: {failure}");
    }
    if !failures.is_empty() {
        bail!("cmux operations failed under concurrency in helper mode (see the tables)");
    }
    if !russh_failures.is_empty() {
        bail!("cmux operations failed over the russh transport (see its section)");
    }
    Ok(())
}
