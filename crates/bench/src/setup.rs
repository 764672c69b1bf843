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
    pub tools: ToolContext,
}

fn write_config(path: &Path, sshd: &TestSshd, port: u16) -> anyhow::Result<()> {
    let text = format!(
        "Host {HOST}\n  HostName 127.0.0.1\n  Port {port}\n  User {user}\n  IdentityFile {key}\n  IdentitiesOnly yes\n  UserKnownHostsFile {kh}\n  HostKeyAlias {HOST_KEY_ALIAS}\n  StrictHostKeyChecking yes\n  LogLevel ERROR\n",
        user = sshd.user(),
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
        write_config(&config, &sshd, direct_port)?;
        write_config(&counted_config, &sshd, proxy.port())?;
        let scratch = sshd.scratch();
        prepare_files(&scratch)?;
        let runtime = Arc::new(SshRuntime::new(
            HOST,
            SshOptions::default()
                .config_file(&config)
                .control_dir(dir.path().join("cmux-ctl")),
        )?);
        runtime.ensure_ready().await?;
        let root = RemotePath::new(scratch.display().to_string())?;
        let tools = ToolContext::new(runtime.clone(), root);
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
            tools,
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
