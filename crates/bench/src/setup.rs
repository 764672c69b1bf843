//! The benchmark's world: a real sshd, a latency proxy in front of it, client configs,
//! and the files the operations touch.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use cmux_backend_ssh::{SshOptions, SshRuntime};
use cmux_core::tools::ToolContext;
use cmux_core::{RemotePath, Runtime};
use cmux_integration_tests::proxy::LatencyProxy;
use cmux_integration_tests::sshd::{TestSshd, HOST_KEY_ALIAS};

/// Host alias every benchmark config defines.
pub const HOST: &str = "bench";

pub struct BenchEnv {
    /// Kept alive for the whole run.
    pub _sshd: TestSshd,
    pub proxy: LatencyProxy,
    /// The proxy's own thread, whose CPU is not cmux's.
    pub proxy_tid: Option<i32>,
    pub dir: tempfile::TempDir,
    /// Round-trip time injected (zero: straight to sshd on loopback).
    pub rtt: Duration,
    /// Client config for per-operation rows (through the proxy when rtt > 0).
    pub config: PathBuf,
    /// Client config that always goes through the proxy (its connections are counted).
    pub counted_config: PathBuf,
    /// Files on the "host" (the same machine: the sshd's scratch dir).
    pub scratch: PathBuf,
    pub runtime: Arc<SshRuntime>,
    /// The same host with the opt-in 2-round-trip write ([`cmux_backend_ssh::WriteVia::Auto`]).
    pub runtime_auto: Arc<SshRuntime>,
    pub tools: ToolContext,
    /// Tools on [`BenchEnv::runtime_auto`].
    pub tools_auto: ToolContext,
}

/// The account the benchmark logs in as. Every remote command starts the account's
/// login shell, which reads its rc files: root's here runs `pyenv init` (~80 ms per
/// command), which would measure this machine's dotfiles instead of the transport. As
/// root, the benchmark uses a plain account with Debian's default dotfiles (created if
/// missing), as on a typical server; otherwise the current user.
pub const BENCH_USER: &str = "cmuxbench";

fn bench_account(sshd: &TestSshd) -> anyhow::Result<(String, PathBuf)> {
    if sshd.user() != "root" {
        return Ok((sshd.user(), sshd.scratch()));
    }
    let exists = std::process::Command::new("id")
        .arg(BENCH_USER)
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !exists {
        let status = std::process::Command::new("useradd")
            .args(["-m", "-s", "/bin/bash", BENCH_USER])
            .status()
            .context("running useradd")?;
        anyhow::ensure!(status.success(), "useradd {BENCH_USER} failed");
    }
    // A new account is locked (`!`); sshd without PAM refuses locked accounts.
    let status = std::process::Command::new("usermod")
        .args(["-p", "*", BENCH_USER])
        .status()
        .context("running usermod")?;
    anyhow::ensure!(status.success(), "usermod -p '*' {BENCH_USER} failed");
    let home = PathBuf::from(format!("/home/{BENCH_USER}"));
    // One directory per environment: each RTT's run starts from nothing.
    static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let run = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let scratch = home.join(format!("bench-{}-{run}", std::process::id()));
    std::fs::create_dir_all(&scratch)?;
    let status = std::process::Command::new("chown")
        .arg("-R")
        .arg(format!("{BENCH_USER}:{BENCH_USER}"))
        .arg(&scratch)
        .status()?;
    anyhow::ensure!(status.success(), "chown of {} failed", scratch.display());
    Ok((BENCH_USER.to_owned(), scratch))
}

fn write_config(path: &Path, sshd: &TestSshd, user: &str, port: u16) -> anyhow::Result<()> {
    let text = format!(
        "Host {HOST}\n  HostName 127.0.0.1\n  Port {port}\n  User {user}\n  IdentityFile {key}\n  IdentitiesOnly yes\n  UserKnownHostsFile {kh}\n  HostKeyAlias {HOST_KEY_ALIAS}\n  StrictHostKeyChecking yes\n  LogLevel ERROR\n",
        key = sshd.client_key_path().display(),
        kh = sshd.known_hosts_path().display(),
    );
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

impl BenchEnv {
    pub async fn start(one_way: Duration) -> anyhow::Result<Self> {
        let sshd = TestSshd::start();
        let target = format!("127.0.0.1:{}", sshd.port()).parse()?;
        let (proxy, proxy_tid) = start_proxy_thread(target, one_way)?;
        let dir = tempfile::Builder::new().prefix("cmux-bench-").tempdir()?;
        let config = dir.path().join("ssh_config");
        let counted_config = dir.path().join("ssh_config_counted");
        let rtt = one_way * 2;
        let direct_port = if rtt.is_zero() {
            sshd.port()
        } else {
            proxy.port()
        };
        let (user, scratch) = bench_account(&sshd)?;
        write_config(&config, &sshd, &user, direct_port)?;
        write_config(&counted_config, &sshd, &user, proxy.port())?;
        prepare_files(&scratch)?;
        if user == BENCH_USER {
            std::process::Command::new("chown")
                .arg("-R")
                .arg(format!("{BENCH_USER}:{BENCH_USER}"))
                .arg(&scratch)
                .status()?;
        }
        let options = SshOptions::default()
            .config_file(&config)
            .control_dir(dir.path().join("cmux-ctl"));
        let runtime = Arc::new(SshRuntime::new(HOST, options.clone())?);
        runtime.ensure_ready().await?;
        // The opt-in write's rows: the same master, writes through a command.
        let runtime_auto = Arc::new(SshRuntime::new(
            HOST,
            options.write_via(cmux_backend_ssh::WriteVia::Auto),
        )?);
        runtime_auto.ensure_ready().await?;
        let root = RemotePath::new(scratch.display().to_string())?;
        let tools = ToolContext::new(runtime.clone(), root.clone());
        let tools_auto = ToolContext::new(runtime_auto.clone(), root);
        Ok(BenchEnv {
            _sshd: sshd,
            proxy,
            proxy_tid: Some(proxy_tid),
            dir,
            rtt,
            config,
            counted_config,
            scratch,
            runtime,
            runtime_auto,
            tools,
            tools_auto,
        })
    }

    pub fn path(&self, name: &str) -> String {
        self.scratch.join(name).display().to_string()
    }

    pub fn remote(&self, name: &str) -> anyhow::Result<RemotePath> {
        Ok(RemotePath::new(self.path(name))?)
    }
}

fn prepare_files(scratch: &Path) -> anyhow::Result<()> {
    std::fs::write(scratch.join("f4k"), vec![b'x'; 4096])?;
    let mib: Vec<u8> = (0..1 << 20).map(|i| (i % 251) as u8).collect();
    std::fs::write(scratch.join("f1m"), mib)?;
    let dir = scratch.join("dir100");
    std::fs::create_dir_all(&dir)?;
    for i in 0..100 {
        std::fs::write(dir.join(format!("entry-{i:03}.txt")), format!("{i}\n"))?;
    }
    let mut text = String::new();
    for i in 0..200 {
        text.push_str(&format!("line {i} of a source file under edit\n"));
    }
    text.push_str("let marker = ALPHA;\n");
    std::fs::write(scratch.join("edit.txt"), text)?;
    Ok(())
}

/// Runs the proxy on a thread of its own, so its CPU can be told apart from cmux's.
fn start_proxy_thread(
    target: std::net::SocketAddr,
    one_way: Duration,
) -> anyhow::Result<(LatencyProxy, i32)> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("latency-proxy".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            };
            let tid = crate::cpu::current_tid();
            rt.block_on(async move {
                let started = LatencyProxy::start(target, one_way).await.map(|p| (p, tid));
                let _ = tx.send(started);
                std::future::pending::<()>().await
            });
        })?;
    Ok(rx.recv()??)
}

impl Drop for BenchEnv {
    fn drop(&mut self) {
        // The bench account's scratch lives outside the temp dir: remove it too.
        if self.scratch.starts_with(format!("/home/{BENCH_USER}")) {
            let _ = std::fs::remove_dir_all(&self.scratch);
        }
    }
}
