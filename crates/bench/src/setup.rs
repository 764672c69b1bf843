//! The benchmark's world: a real sshd, a latency proxy in front of it, client configs,
//! the files the operations touch, and cmux runtimes on it in both modes.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use cmux_backend_ssh::{ConnectionMode, HelperMode, SshOptions, SshRuntime};
use cmux_core::tools::ToolContext;
use cmux_core::{ExecRequest, RemotePath, Runtime, RuntimeExt};
use cmux_integration_tests::proxy::LatencyProxy;
use cmux_integration_tests::sshd::{SshdOptions, TestSshd, HOST_KEY_ALIAS};

use crate::cpu::master_pid;

/// Host alias every benchmark config defines.
pub const HOST: &str = "bench";

/// The account the benchmark logs in as. Every remote command starts the account's
/// login shell, which reads its rc files: root's here runs `pyenv init` (~80 ms per
/// command), which would measure this machine's dotfiles instead of the transport. As
/// root, the benchmark uses a plain account with Debian's default dotfiles (created if
/// missing), as on a typical server; otherwise the current user.
pub const BENCH_USER: &str = "cmuxbench";

/// One cmux runtime on the benchmark host, with the agent tools on it.
pub struct Side {
    pub runtime: Arc<SshRuntime>,
    pub tools: ToolContext,
}

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
    /// Files on the "host" (the same machine: the bench account's directory).
    pub scratch: PathBuf,
    /// Where this environment's helpers are installed on the host (inside `scratch`,
    /// so every run starts without one and leaves none behind).
    pub install_dir: RemotePath,
    /// True when logged in as [`BENCH_USER`] (the benchmark runs as root).
    pub bench_account: bool,
    /// cmux through the host helper (the default).
    pub helper: Side,
    /// cmux on the shell/SFTP path ([`HelperMode::Off`]), on the same master.
    pub shell: Side,
    /// The helper process serving [`BenchEnv::helper`] (on this machine: the host is
    /// local), for its CPU.
    pub helper_pid: Option<u32>,
    /// The master both sides share, for its CPU.
    pub master_pid: Option<u32>,
}

/// Makes sure [`BENCH_USER`] exists and can log in with a key; true when the
/// benchmark uses it (it runs as root).
pub fn ensure_bench_account() -> anyhow::Result<bool> {
    if !cmux_integration_tests::users::is_root() {
        return Ok(false);
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
    Ok(true)
}

/// The bench account's home.
pub fn bench_home() -> PathBuf {
    PathBuf::from(format!("/home/{BENCH_USER}"))
}

/// Gives `path` (recursively) to the bench account.
pub fn chown_to_bench(path: &Path) -> anyhow::Result<()> {
    let status = std::process::Command::new("chown")
        .arg("-R")
        .arg(format!("{BENCH_USER}:{BENCH_USER}"))
        .arg(path)
        .status()
        .context("running chown")?;
    anyhow::ensure!(status.success(), "chown of {} failed", path.display());
    Ok(())
}

/// The account and directory operations work in: a fresh directory per environment.
fn account(sshd: &TestSshd) -> anyhow::Result<(String, PathBuf, bool)> {
    if !ensure_bench_account()? {
        return Ok((sshd.user(), sshd.scratch(), false));
    }
    static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let run = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let scratch = bench_home().join(format!("bench-{}-{run}", std::process::id()));
    std::fs::create_dir_all(&scratch)?;
    chown_to_bench(&scratch)?;
    Ok((BENCH_USER.to_owned(), scratch, true))
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
    /// A host at `one_way` delay each way, its sshd configured by `sshd_options`.
    pub async fn start(one_way: Duration, sshd_options: SshdOptions) -> anyhow::Result<Self> {
        let sshd = TestSshd::start_with(sshd_options);
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
        let (user, scratch, bench_account) = account(&sshd)?;
        write_config(&config, &sshd, &user, direct_port)?;
        write_config(&counted_config, &sshd, &user, proxy.port())?;
        prepare_files(&scratch)?;
        if bench_account {
            chown_to_bench(&scratch)?;
        }
        let install_dir = RemotePath::new(scratch.join(".cmux-host").display().to_string())?;
        let options = SshOptions::default()
            .config_file(&config)
            .control_dir(dir.path().join("cmux-ctl"))
            .helper_install_dir(install_dir.clone());
        let root = RemotePath::new(scratch.display().to_string())?;
        let side = |mode: HelperMode| -> anyhow::Result<Side> {
            let runtime = Arc::new(SshRuntime::new(HOST, options.clone().helper(mode))?);
            let tools = ToolContext::new(runtime.clone(), root.clone());
            Ok(Side { runtime, tools })
        };
        let helper = side(HelperMode::Auto)?;
        let shell = side(HelperMode::Off)?;
        helper.runtime.ensure_ready().await?;
        shell.runtime.ensure_ready().await?;
        require_helper(&helper.runtime).await?;
        let helper_pid = helper_pid(&helper.runtime).await;
        let master_pid = master_pid(&config, &helper.runtime.control_path(), HOST);
        Ok(BenchEnv {
            _sshd: sshd,
            proxy,
            proxy_tid: Some(proxy_tid),
            dir,
            rtt,
            config,
            counted_config,
            scratch,
            install_dir,
            bench_account,
            helper,
            shell,
            helper_pid,
            master_pid,
        })
    }

    pub fn path(&self, name: &str) -> String {
        self.scratch.join(name).display().to_string()
    }

    pub fn remote(&self, name: &str) -> anyhow::Result<RemotePath> {
        Ok(RemotePath::new(self.path(name))?)
    }

    /// Options for another runtime on this host: its own control dir `ctl` (a master
    /// of its own), helpers installed under `install_dir`, through `config`.
    pub fn options(&self, config: &Path, ctl: &str, install_dir: &RemotePath) -> SshOptions {
        SshOptions::default()
            .config_file(config)
            .control_dir(self.dir.path().join(ctl))
            .helper_install_dir(install_dir.clone())
    }
}

/// Fails unless `rt` runs through the host helper: every "helper" figure would
/// otherwise measure the shell/SFTP path.
pub async fn require_helper(rt: &SshRuntime) -> anyhow::Result<()> {
    match rt.mode().await? {
        ConnectionMode::Helper { .. } => Ok(()),
        ConnectionMode::Fallback { reason } => bail!(
            "the benchmark host does not run the host helper ({reason}); build cmux with its \
             bundled helper (do not set CMUX_HOST_BUNDLE=skip)"
        ),
    }
}

/// The pid of the helper serving `rt`: a command's parent is the helper that started
/// it (the host is this machine, so the pid is ours to read in /proc).
pub async fn helper_pid(rt: &SshRuntime) -> Option<u32> {
    let out = rt
        .output(ExecRequest::script("echo $PPID"), 4096)
        .await
        .ok()?;
    let pid: u32 = String::from_utf8_lossy(&out.stdout).trim().parse().ok()?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let is_helper = cmdline
        .split(|b| *b == 0)
        .next()
        .is_some_and(|exe| exe.ends_with(b"cmux-host"));
    is_helper.then_some(pid)
}

/// Lines of the small workspace's files holding the grep row's needle.
pub const SMALL_NEEDLE: &str = "needle_in_small";

fn prepare_files(scratch: &Path) -> anyhow::Result<()> {
    std::fs::write(scratch.join("f4k"), vec![b'x'; 4096])?;
    // A 4 KiB text file for read_file: 64 lines of 64 bytes.
    let line = format!("{:<63}\n", "a line of source text, as agents read them");
    std::fs::write(scratch.join("f4k.txt"), line.repeat(64))?;
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
    // The small workspace glob and grep search: 40 source files, a few matches.
    for i in 0..40 {
        let sub = scratch.join(format!("small/src/m{}", i % 4));
        std::fs::create_dir_all(&sub)?;
        let mut text = String::new();
        for l in 0..60 {
            if (i * 60 + l) % 97 == 0 {
                text.push_str(&format!("    // {SMALL_NEEDLE} {i}:{l}\n"));
            } else {
                text.push_str(&format!("    let value_{l} = compute({i}, {l});\n"));
            }
        }
        std::fs::write(sub.join(format!("file{i:02}.rs")), text)?;
    }
    std::fs::write(scratch.join("small/README.md"), "# small\n")?;
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
        if self.bench_account && self.scratch.starts_with(bench_home()) {
            let _ = std::fs::remove_dir_all(&self.scratch);
        }
    }
}

/// Makes `dir` a git repository on `main` whose one commit holds all its files: the
/// project the create and CLI rows start from.
pub fn commit_project(dir: &Path) -> anyhow::Result<()> {
    for args in [
        vec!["init", "-q", "-b", "main"],
        vec!["add", "."],
        vec![
            "-c",
            "user.name=bench",
            "-c",
            "user.email=bench@example.invalid",
            "commit",
            "-qm",
            "project",
        ],
    ] {
        let status = std::process::Command::new("git")
            .args(&args)
            .current_dir(dir)
            .stdout(std::process::Stdio::null())
            .status()
            .context("running git")?;
        if !status.success() {
            bail!("git {args:?} failed in {}", dir.display());
        }
    }
    Ok(())
}
