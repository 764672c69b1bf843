//! Helper mode: every operation of a host over one channel to `cmux-host`.
//!
//! On first use per process and host, cmux runs the start script on a channel of the
//! host's master: it `exec`s the installed helper (no extra round trip when it is
//! there) or reports the host's OS, architecture and whether it has gzip. cmux then
//! uploads the matching build (bundled Linux x86_64, or from
//! [`crate::SshOptions::helper_dir`]) with the install script and starts it again.
//!
//! The helper is installed per version under a content-addressed 0700 directory
//! (`${XDG_CACHE_HOME:-~/.cache}/cmux/host/<version>-<sha256 prefix>/cmux-host`), only
//! ever renamed there after its size and SHA-256 were checked, so a cut upload is never
//! run; before it runs, the file and directory must be owned by the user; once running
//! it must announce the exact build cmux carries, or it is reinstalled once.
//!
//! A host where the helper cannot run (another OS or architecture without a build, a
//! noexec home, an upload that fails) uses the shell/SFTP path, with the reason logged
//! and shown by `cmux doctor`; so does [`HelperMode::Off`]. A connection failure is
//! not such a reason: it is the operation's error, and the next operation tries again.

mod artifact;
mod scripts;

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cmux_backend_pipe::{Handshake, HelperConnection};
use cmux_core::{Error, Result};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::options::HelperMode;
use crate::pool::OpenError;
use crate::pool::{Conn, HostState};

pub(crate) use artifact::normalize;

/// How one host is driven, as [`crate::SshRuntime::mode`] reports it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum ConnectionMode {
    /// Through the host helper.
    Helper {
        /// The helper's version.
        version: String,
        /// Its build id.
        build: String,
        /// Why commands lack the login environment, when they do.
        login_env_error: Option<String>,
    },
    /// Through shell commands and SFTP.
    Fallback {
        /// Why the helper is not used.
        reason: String,
    },
}

/// The helper state of one host in this process.
#[derive(Debug, Default)]
pub(crate) struct HelperSlot {
    slot: tokio::sync::Mutex<Slot>,
}

#[derive(Debug, Default)]
enum Slot {
    #[default]
    Untried,
    Live(Arc<HelperConnection>),
    Unavailable(String),
}

/// How a helper that exists but cannot be executed is reported (no reinstall helps).
const NOEXEC: &str = "the helper cannot be executed on the host";

/// How long the helper may take to say hello.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long an upload may take.
const INSTALL_TIMEOUT: Duration = Duration::from_secs(180);

impl HelperSlot {
    /// The helper connection of `pool`'s host, or `None` when it uses the shell/SFTP
    /// path.
    pub(crate) async fn connection(
        &self,
        pool: &HostState,
    ) -> Result<Option<Arc<HelperConnection>>> {
        if pool.opts.helper == HelperMode::Off {
            return fallback_or_error(pool, "the host helper is turned off (CMUX_HOST_HELPER=off)");
        }
        let mut slot = self.slot.lock().await;
        match &*slot {
            Slot::Live(c) if !c.is_closed() => return Ok(Some(c.clone())),
            Slot::Unavailable(reason) => return fallback_or_error(pool, reason),
            _ => {}
        }
        match start(pool).await? {
            Ok(conn) => {
                *slot = Slot::Live(conn.clone());
                Ok(Some(conn))
            }
            Err(reason) => {
                tracing::info!(host = %pool.host, "using the shell/SFTP path: {reason}");
                let answer = fallback_or_error(pool, &reason);
                *slot = Slot::Unavailable(reason);
                answer
            }
        }
    }

    /// What [`crate::SshRuntime::mode`] reports.
    pub(crate) async fn mode(&self, pool: &HostState) -> Result<ConnectionMode> {
        if pool.opts.helper == HelperMode::Off {
            return Ok(ConnectionMode::Fallback {
                reason: "the host helper is turned off (CMUX_HOST_HELPER=off)".into(),
            });
        }
        match self.connection(pool).await? {
            Some(conn) => {
                let info = conn.info().await?;
                Ok(ConnectionMode::Helper {
                    version: conn.hello().version.clone(),
                    build: conn.hello().build.clone(),
                    login_env_error: info.login_env_error,
                })
            }
            None => {
                let slot = self.slot.lock().await;
                let reason = match &*slot {
                    Slot::Unavailable(r) => r.clone(),
                    _ => "the helper is not running".into(),
                };
                Ok(ConnectionMode::Fallback { reason })
            }
        }
    }

    /// Closes the helper connection (its commands are killed by the helper).
    pub(crate) async fn close(&self) {
        let mut slot = self.slot.lock().await;
        if let Slot::Live(c) = &*slot {
            c.close();
        }
        *slot = Slot::Untried;
    }
}

/// `Ok(None)` (use the shell/SFTP path) for a host where the helper cannot run,
/// or an error when that path needs an OpenSSH client this machine lacks.
fn fallback_or_error(pool: &HostState, reason: &str) -> Result<Option<Arc<HelperConnection>>> {
    if pool.russh.is_some() && !pool.openssh_available() {
        return Err(Error::backend(
            "ssh",
            format!(
                "{}: the cmux helper cannot run on this host ({reason}), and its other path (shell commands and SFTP) needs an OpenSSH client, which this machine lacks: install OpenSSH's ssh, or make the helper runnable there",
                pool.host
            ),
        ));
    }
    Ok(None)
}

/// Starts the helper: `Ok(Ok(conn))`, `Ok(Err(reason))` to fall back, `Err` for a
/// connection failure.
async fn start(state: &HostState) -> Result<std::result::Result<Arc<HelperConnection>, String>> {
    let builds = artifact::all(state.opts.helper_dir.as_deref());
    if builds.is_empty() {
        return Ok(Err(
            "this cmux carries no helper build (built with CMUX_HOST_BUNDLE=skip) and no helper directory is set".into(),
        ));
    }
    let base = scripts::base_dir_expr(state.opts.helper_install_dir.as_ref());
    let mut reinstalled = false;
    for _ in 0..3 {
        let sync = sync_marker();
        let dirs: Vec<String> = builds.iter().map(|(_, _, a)| a.dir_name()).collect();
        let script = scripts::start_script(&base, &dirs, &sync);
        let launched = launch(state, &script, &sync).await?;
        match launched {
            Launched::Ready(helper) => {
                let hello = helper.hello().clone();
                let (os, arch) = normalize(&hello.os, &hello.arch);
                let expected = builds
                    .iter()
                    .find(|(o, a, _)| *o == os && *a == arch)
                    .map(|(_, _, art)| art.clone());
                match expected {
                    Some(art) if art.build.as_ref().is_some_and(|b| *b != hello.build) => {
                        helper.close();
                        if reinstalled {
                            return Ok(Err(format!(
                                "the helper on the host reports build {} after a reinstall of build {}",
                                hello.build,
                                art.build.unwrap_or_default()
                            )));
                        }
                        tracing::info!(host = %state.host, found = %hello.build, "the helper on the host is another build: reinstalling it");
                        if let Err(why) = install(state, &base, &art, true).await? {
                            return Ok(Err(why));
                        }
                        reinstalled = true;
                    }
                    _ => return Ok(Ok(helper)),
                }
            }
            Launched::Missing { os, arch, gzip } => {
                if reinstalled {
                    // Installed, yet not executable: `[ -x ]` fails on a noexec mount.
                    return Ok(Err(format!(
                        "{NOEXEC}: it was installed, but the system refuses to execute it there (is its directory on a filesystem mounted noexec, as some homes are? set another install directory)"
                    )));
                }
                let (os_n, arch_n) = normalize(&os, &arch);
                let Some((_, _, art)) = builds.iter().find(|(o, a, _)| *o == os_n && *a == arch_n)
                else {
                    return Ok(Err(format!(
                        "no helper build for this host's system ({os} {arch}); set CMUX_HOST_HELPER_DIR to a directory holding cmux-host-{os_n}-{arch_n}"
                    )));
                };
                tracing::info!(host = %state.host, "installing the cmux helper ({} bytes)", art.size);
                if let Err(why) = install(state, &base, art, gzip).await? {
                    return Ok(Err(why));
                }
                reinstalled = true;
            }
            Launched::Failed(why) if why.starts_with(NOEXEC) || reinstalled => return Ok(Err(why)),
            Launched::Failed(why) => {
                // Something at the build's path that does not work as the helper (a
                // foreign or damaged file): install the real build once over it.
                tracing::info!(host = %state.host, "the installed helper did not start ({why}): reinstalling it");
                let Launched::Missing { os, arch, gzip } =
                    launch(state, &scripts::probe_script(), &sync).await?
                else {
                    return Ok(Err(why));
                };
                let (os_n, arch_n) = normalize(&os, &arch);
                let Some((_, _, art)) = builds.iter().find(|(o, a, _)| *o == os_n && *a == arch_n)
                else {
                    return Ok(Err(why));
                };
                if let Err(why) = install(state, &base, art, gzip).await? {
                    return Ok(Err(why));
                }
                reinstalled = true;
            }
        }
    }
    Ok(Err("the helper could not be started".into()))
}

enum Launched {
    Ready(Arc<HelperConnection>),
    Missing {
        os: String,
        arch: String,
        gzip: bool,
    },
    Failed(String),
}

fn sync_marker() -> String {
    let a = fastrand::u64(..);
    let b = fastrand::u64(..);
    format!("cmux-sync-{a:016x}{b:016x}")
}

/// A command running on the host, on either transport: its streams, its exit code,
/// and the connection under it.
struct HostCommand {
    stdin: Option<Pin<Box<dyn AsyncWrite + Send>>>,
    stdout: Option<Pin<Box<dyn AsyncRead + Send>>>,
    stderr: Option<Pin<Box<dyn AsyncRead + Send>>>,
    /// The exit code (`None`: a signal, or no status because the channel broke).
    exit: Pin<Box<dyn Future<Output = Option<i32>> + Send>>,
    via: Via,
}

/// The connection a [`HostCommand`] runs on.
enum Via {
    Master(Arc<Conn>),
    Russh(Arc<crate::russh_transport::Link>),
}

impl Via {
    /// True when the connection died (it is then forgotten: the next operation makes
    /// another).
    async fn died(&self, state: &HostState) -> bool {
        match self {
            Via::Master(conn) => {
                let dead =
                    crate::master::liveness(&conn.session).await == crate::master::Liveness::Dead;
                if dead {
                    state.mark_dead(conn);
                }
                dead
            }
            Via::Russh(link) => {
                let dead = link.is_closed();
                if let (true, Some(host)) = (dead, &state.russh) {
                    host.forget(link).await;
                }
                dead
            }
        }
    }
}

/// Opens a channel running `command`: on the russh connection, or on the host's
/// master, replacing a master found dead (a killed master leaves its socket behind)
/// up to twice.
async fn open_channel(state: &HostState, command: &str) -> Result<HostCommand> {
    if let Some(russh) = &state.russh {
        let (link, exec) = russh.open_exec(command).await?;
        let crate::russh_transport::ExecChannel {
            stdin,
            stdout,
            stderr,
            exit,
        } = exec;
        return Ok(HostCommand {
            stdin: Some(stdin),
            stdout: Some(Box::pin(stdout)),
            stderr: Some(Box::pin(stderr)),
            exit: Box::pin(async move { exit.await.ok().flatten() }),
            via: Via::Russh(link),
        });
    }
    for _ in 0..3 {
        let conn = state.primary().await?;
        match state.open_channel(&conn, command, true).await {
            Ok(mut child) => {
                let stdin = child.stdin().take();
                let stdout = child.stdout().take();
                let stderr = child.stderr().take();
                return Ok(HostCommand {
                    stdin: stdin.map(|s| Box::pin(s) as Pin<Box<dyn AsyncWrite + Send>>),
                    stdout: stdout.map(|s| Box::pin(s) as Pin<Box<dyn AsyncRead + Send>>),
                    stderr: stderr.map(|s| Box::pin(s) as Pin<Box<dyn AsyncRead + Send>>),
                    exit: Box::pin(async move { child.wait().await.ok().and_then(|s| s.code()) }),
                    via: Via::Master(conn),
                });
            }
            Err(OpenError::Fatal(e)) => return Err(e),
            // `open` forgot the dead master: the next round connects again.
            Err(OpenError::Dead) => continue,
        }
    }
    Err(Error::Connection {
        host: state.host.clone(),
        message: format!(
            "the ssh connection keeps dying while starting the cmux helper ({}); retry, or run `{}` by hand",
            cmux_core::error::NOTHING_RAN,
            state.manual_ssh()
        ),
    })
}

async fn launch(state: &HostState, script: &str, sync: &str) -> Result<Launched> {
    let mut command = open_channel(state, script).await?;
    let (Some(stdin), Some(stdout)) = (command.stdin.take(), command.stdout.take()) else {
        return Ok(Launched::Failed("the helper channel has no stdio".into()));
    };
    let stderr_text = Arc::new(Mutex::new(Vec::new()));
    let stderr_task = command.stderr.take().map(|mut err| {
        let kept = stderr_text.clone();
        let host = state.host.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                let mut kept = kept.lock().unwrap_or_else(|e| e.into_inner());
                if kept.len() < 64 * 1024 {
                    kept.extend_from_slice(&buf[..n]);
                } else {
                    tracing::debug!(host = %host, "helper stderr: {}", String::from_utf8_lossy(&buf[..n]));
                }
            }
        })
    });
    let outcome = HelperConnection::handshake(
        state.host.clone(),
        stdout,
        stdin,
        Some(sync.as_bytes()),
        HANDSHAKE_TIMEOUT,
    )
    .await;
    let said = |text: &Arc<Mutex<Vec<u8>>>| {
        String::from_utf8_lossy(&text.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
    };
    match outcome {
        Handshake::Ready(helper) => {
            // The channel lives as long as the connection: when it ends (the master
            // died, the helper exited), the connection closes and the next operation
            // starts another.
            let watched = helper.clone();
            let HostCommand { exit, via, .. } = command;
            tokio::spawn(async move {
                // The connection lives as long as its helper channel.
                let _via = via;
                let mut wait = exit;
                tokio::select! {
                    _ = &mut wait => watched.close_because(
                        "the ssh channel to the helper closed (the connection dropped, or the helper exited)",
                    ),
                    () = watched.closed() => {
                        let _ = tokio::time::timeout(Duration::from_secs(5), &mut wait).await;
                    }
                }
            });
            Ok(Launched::Ready(helper))
        }
        Handshake::Ended { .. } => {
            let status = tokio::time::timeout(Duration::from_secs(10), command.exit).await;
            if let Some(task) = stderr_task {
                let _ = tokio::time::timeout(Duration::from_secs(2), task).await;
            }
            let stderr = said(&stderr_text);
            if let Some(line) = stderr
                .lines()
                .find_map(|l| l.split_once(scripts::MISSING_MARKER))
            {
                let mut words = line.1.split_whitespace();
                let os = words.next().unwrap_or_default().to_owned();
                let arch = words.next().unwrap_or_default().to_owned();
                let gzip = words.next() == Some("gzip");
                return Ok(Launched::Missing { os, arch, gzip });
            }
            if command.via.died(state).await {
                return Err(Error::Connection {
                    host: state.host.clone(),
                    message: "the ssh connection died while starting the cmux helper".into(),
                });
            }
            let code = status.ok().flatten();
            let stderr = stderr.trim();
            if code == Some(126) || stderr.contains("ermission denied") {
                return Ok(Launched::Failed(format!(
                    "{NOEXEC} (is its directory on a filesystem mounted noexec, as some homes are?): {}",
                    cmux_core::runtime::tail(stderr, 300)
                )));
            }
            Ok(Launched::Failed(format!(
                "the helper did not start (exit {}): {}",
                code.map_or("unknown".to_owned(), |c| c.to_string()),
                cmux_core::runtime::tail(stderr, 300)
            )))
        }
        Handshake::NotProtocol { reason, .. } => Ok(Launched::Failed(format!(
            "the helper's channel carried something else than the helper protocol: {reason}"
        ))),
        Handshake::TimedOut => Ok(Launched::Failed(format!(
            "the helper did not answer within {}s",
            HANDSHAKE_TIMEOUT.as_secs()
        ))),
    }
}

/// Uploads `art` with the install script: `Ok(Err(why))` when the host refused it.
async fn install(
    state: &HostState,
    base: &str,
    art: &artifact::Artifact,
    host_has_gzip: bool,
) -> Result<std::result::Result<(), String>> {
    let (bytes, gzipped) = match art.upload_bytes(host_has_gzip) {
        Ok(b) => b,
        Err(why) => return Ok(Err(why)),
    };
    let script = scripts::install_script(base, &art.dir_name(), art.size, &art.sha256, gzipped);
    let mut command = open_channel(state, &script).await?;
    let mut stdin = command.stdin.take();
    let mut stdout = command.stdout.take();
    let mut stderr = command.stderr.take();
    let exit = &mut command.exit;
    let run = async {
        let feed = async {
            if let Some(stdin) = stdin.as_mut() {
                let _ = stdin.write_all(&bytes).await;
                let _ = stdin.shutdown().await;
            }
            drop(stdin.take());
        };
        let read_out = async {
            let mut out = Vec::new();
            if let Some(s) = stdout.as_mut() {
                let _ = s.read_to_end(&mut out).await;
            }
            out
        };
        let read_err = async {
            let mut err = Vec::new();
            if let Some(s) = stderr.as_mut() {
                let _ = s.read_to_end(&mut err).await;
            }
            err
        };
        let ((), out, err) = tokio::join!(feed, read_out, read_err);
        let status = exit.await;
        (out, err, status)
    };
    let Ok((out, err, status)) = tokio::time::timeout(INSTALL_TIMEOUT, run).await else {
        return Ok(Err(format!(
            "uploading the helper took more than {}s",
            INSTALL_TIMEOUT.as_secs()
        )));
    };
    let ok = status == Some(0) && String::from_utf8_lossy(&out).contains("installed");
    if ok {
        return Ok(Ok(()));
    }
    if command.via.died(state).await {
        return Err(Error::Connection {
            host: state.host.clone(),
            message: "the ssh connection died while uploading the cmux helper; retry".into(),
        });
    }
    Ok(Err(format!(
        "installing the helper failed: {}",
        cmux_core::runtime::tail(String::from_utf8_lossy(&err).trim(), 300)
    )))
}
