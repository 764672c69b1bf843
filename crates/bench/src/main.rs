//! `cmux-bench`: what each cmux operation costs over SSH, next to the alternatives, at
//! loopback and at an injected round-trip time.
//!
//! It starts its own sshd (the test harness's) and a latency proxy, then measures each
//! operation three ways in the same run:
//! - **cmux**: the library (`SshRuntime`: native mux + SFTP on one master);
//! - **(a)** a process per operation over a ControlMaster
//!   (`ssh -o ControlMaster=auto -o ControlPath=… -o ControlPersist=60 host '<cmd>'`);
//! - **(b)** a fresh `ssh host '<cmd>'` per operation.
//!
//! Usage: `cargo run --release -p cmux-bench -- [--quick] [--out DIR] [--rtt MS]...`
//! Writes `DIR/BENCHMARKS.md` and `DIR/benchmarks.json` (default DIR: `docs`).

mod cpu;
mod create;
mod ops;
mod report;
mod setup;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};

/// Command-line options.
#[derive(Debug, Clone)]
pub struct Args {
    /// Few iterations: a smoke run for CI (must pass, not be fast).
    pub quick: bool,
    /// Where BENCHMARKS.md and benchmarks.json go (`None`: print only).
    pub out: Option<PathBuf>,
    /// Round-trip times to measure at, in milliseconds.
    pub rtts: Vec<u64>,
    /// Only the workspace-create rows (`--only create`): a quick look at one change.
    pub only_create: bool,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        quick: false,
        out: Some(PathBuf::from("docs")),
        rtts: Vec::new(),
        only_create: false,
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
                other => bail!("--only takes `create`, not {other:?}"),
            },
            "-h" | "--help" => {
                println!("cmux-bench [--quick] [--out DIR | --no-write] [--rtt MS]... [--only create]\n\nMeasures cmux operations over SSH next to ssh baselines (default RTTs: 0 and 50 ms).\n--only create measures workspace creation alone.");
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

fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    runtime.block_on(async move {
        let mut results = Vec::new();
        for &rtt in &args.rtts {
            let one_way = Duration::from_millis(rtt) / 2;
            eprintln!("== RTT {rtt} ms");
            let env = setup::BenchEnv::start(one_way).await?;
            let mut rows = Vec::new();
            if !args.only_create {
                rows.extend(ops::measure_operations(&env, &args).await?);
            }
            rows.extend(create::measure_workspace_create(&env, &args).await?);
            let conc = if args.only_create {
                Vec::new()
            } else {
                ops::measure_concurrency(&env, &args).await?
            };
            results.push(report::RttResult {
                rtt_ms: rtt,
                rows,
                concurrency: conc,
            });
        }
        let report = report::Report::new(&args, results);
        println!("{}", report.markdown());
        if let Some(dir) = &args.out {
            report.write(dir)?;
            eprintln!(
                "wrote {}/BENCHMARKS.md and {}/benchmarks.json",
                dir.display(),
                dir.display()
            );
        }
        for failure in report.concurrency_failures() {
            eprintln!("FAILURES under concurrency: {failure}");
        }
        if report.cmux_failed() {
            bail!("cmux operations failed under concurrency (see the table)");
        }
        Ok(())
    })
}
