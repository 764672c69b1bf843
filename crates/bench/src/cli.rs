//! The `cmux` CLI as scripts call it: one process per command against an SSH
//! workspace whose master persists between calls, in helper mode and with
//! `CMUX_HOST_HELPER=off`.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{bail, Context};
use cmux_backend_ssh::SshRuntime;
use tokio::io::AsyncWriteExt;

use crate::cpu::master_pid;
use crate::measure::{measure, CpuScope};
use crate::report::{CliSection, Row};
use crate::setup::{chown_to_bench, BenchEnv, HOST};
use crate::Args;

const WORKSPACE: &str = "clibench";

/// The `cmux` binary beside this one (`target/<profile>/cmux`), if it was built.
pub fn cli_binary() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let bin = exe.parent()?.join("cmux");
    bin.is_file().then_some(bin)
}

#[derive(Clone, Copy, Debug)]
enum Cmd {
    Exec,
    Cat,
    Write,
    Ls,
}

impl Cmd {
    const ALL: [Cmd; 4] = [Cmd::Exec, Cmd::Cat, Cmd::Write, Cmd::Ls];

    fn label(self) -> &'static str {
        match self {
            Cmd::Exec => "`cmux exec ws -- true`",
            Cmd::Cat => "`cmux cat ws` 4 KiB",
            Cmd::Write => "`cmux write ws` 4 KiB",
            Cmd::Ls => "`cmux ls ws` 100 entries",
        }
    }

    fn args(self) -> &'static [&'static str] {
        match self {
            Cmd::Exec => &["exec", WORKSPACE, "--", "true"],
            Cmd::Cat => &["cat", WORKSPACE, "f4k.txt"],
            Cmd::Write => &["write", WORKSPACE, "w4k.txt"],
            Cmd::Ls => &["ls", WORKSPACE, "dir100"],
        }
    }
}

/// How the CLI is run: its binary and its environment.
struct Cli {
    bin: PathBuf,
    home: PathBuf,
    config: PathBuf,
}

impl Cli {
    async fn run(
        &self,
        args: &[&str],
        helper_off: bool,
        input: Option<&[u8]>,
    ) -> anyhow::Result<Vec<u8>> {
        let mut cmd = tokio::process::Command::new(&self.bin);
        cmd.args(args)
            .env("CMUX_HOME", &self.home)
            .env("CMUX_SSH_CONFIG", &self.config)
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            });
        if helper_off {
            cmd.env("CMUX_HOST_HELPER", "off");
        } else {
            cmd.env_remove("CMUX_HOST_HELPER");
        }
        let mut child = cmd
            .spawn()
            .with_context(|| format!("running {}", self.bin.display()))?;
        if let Some(data) = input {
            let mut stdin = child.stdin.take().context("cmux stdin")?;
            stdin.write_all(data).await?;
        }
        let out = child.wait_with_output().await?;
        if !out.status.success() {
            bail!(
                "cmux {args:?} failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(out.stdout)
    }

    async fn op(&self, cmd: Cmd, helper_off: bool) -> anyhow::Result<()> {
        let input = matches!(cmd, Cmd::Write).then_some(&[b'w'; 4096][..]);
        let out = self.run(cmd.args(), helper_off, input).await?;
        if matches!(cmd, Cmd::Cat) && out.len() != 4096 {
            bail!("cmux cat printed {} bytes, expected 4096", out.len());
        }
        Ok(())
    }
}

/// A small project: the files the commands read.
pub fn make_project(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir.join("dir100"))?;
    for i in 0..100 {
        std::fs::write(
            dir.join(format!("dir100/entry-{i:03}.txt")),
            format!("{i}\n"),
        )?;
    }
    std::fs::write(dir.join("f4k.txt"), vec![b'x'; 4096])?;
    crate::setup::commit_project(dir)
}

pub async fn measure_cli(env: &BenchEnv, args: &Args) -> anyhow::Result<CliSection> {
    let Some(bin) = cli_binary() else {
        return Ok(CliSection {
            rows: Vec::new(),
            skipped: Some(
                "the cmux binary is not beside cmux-bench: run `cargo build --release -p \
                 cmux-cli` first"
                    .into(),
            ),
        });
    };
    eprintln!("  CLI ({})", bin.display());
    let project = env.dir.path().join("cli-project");
    make_project(&project)?;
    let cli = Cli {
        bin,
        home: env.dir.path().join("cli-home"),
        config: env.config.clone(),
    };
    let src_base = env.path("cli-src");
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
        false,
        None,
    )
    .await?;
    // The CLI's master (under $CMUX_HOME/ssh), for its CPU: a runtime with the same
    // host and config names the same socket.
    let socket = SshRuntime::new(
        HOST,
        cmux_backend_ssh::SshOptions::default()
            .config_file(&env.config)
            .control_dir(cli.home.join("ssh")),
    )?
    .control_path();
    let scope = CpuScope::Children {
        master: master_pid(&env.config, &socket, HOST),
    };
    let n = match (args.quick, env.rtt.is_zero()) {
        (true, _) => 3,
        (false, true) => 30,
        (false, false) => 15,
    };
    let mut rows = Vec::new();
    for cmd in Cmd::ALL {
        eprintln!("  {}", cmd.label());
        let helper = measure(n, scope, |_| cli.op(cmd, false)).await?;
        let shell = measure(n, scope, |_| cli.op(cmd, true)).await?;
        rows.push(Row {
            op: cmd.label().into(),
            helper,
            shell: Some(shell),
            a: None,
            b: None,
        });
    }
    Ok(CliSection {
        rows,
        skipped: None,
    })
}
