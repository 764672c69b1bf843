//! One ControlMaster: attaching to the one behind a control socket (started by this or
//! another cmux process), or starting it under a file lock so concurrent processes
//! start one master, not many; and the local mux check that tells a live master from
//! a dead one.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cmux_core::{Error, Result};
use openssh::Session;

use crate::budget::Budget;
use crate::control_dir::{open_private, read_private};
use crate::diag::{self, Failure};
use crate::options::SshOptions;

/// What it takes to reach one master.
#[derive(Debug)]
pub(crate) struct MasterSpec<'a> {
    /// The host as the user wrote it (in messages).
    pub(crate) host: &'a str,
    /// The control socket.
    pub(crate) sock: PathBuf,
    /// `ssh` options before the destination (config file, forced safety options).
    pub(crate) ssh_args: Vec<String>,
    /// The destination words (`-p PORT`, `-l USER`, `--`, the host).
    pub(crate) destination: Vec<String>,
    /// Persistence, timeouts, the slow-connection observer.
    pub(crate) opts: &'a SshOptions,
    /// The host's connection budget.
    pub(crate) budget: &'a Budget,
}

/// FNV-1a: stable across processes and builds, unlike std's hasher.
pub(crate) fn stable_hash(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in part.iter().chain(std::iter::once(&0u8)) {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// The login-environment cache key of the master behind `sock`: a hash of the
/// host's key and the socket file's identity (inode and change time), which every
/// attached process sees alike and a new master changes. Empty (no cache) when
/// the socket cannot be read.
pub(crate) fn login_key(key: &str, sock: &Path) -> String {
    use std::os::unix::fs::MetadataExt;
    match std::fs::symlink_metadata(sock) {
        Ok(m) => format!(
            "{:016x}",
            stable_hash(&[
                key.as_bytes(),
                &m.ino().to_le_bytes(),
                &m.ctime().to_le_bytes(),
                &m.ctime_nsec().to_le_bytes(),
            ])
        ),
        Err(_) => String::new(),
    }
}

/// Attaches to the master behind `sock`, waiting while it is merely busy (a burst
/// of connections fills its listen backlog): only a socket that refuses or is
/// missing counts as dead, so a live master is never replaced.
async fn try_attach(sock: &Path) -> Option<Session> {
    if !sock.exists() {
        return None;
    }
    let started = Instant::now();
    let mut delay = Duration::from_millis(5);
    loop {
        let session = Session::resume_mux(
            sock.to_path_buf().into_boxed_path(),
            Some(sock.with_extension("log").into_boxed_path()),
        );
        match liveness(&session).await {
            Liveness::Alive => return Some(session),
            Liveness::Dead => return None,
            Liveness::Busy if started.elapsed() > Duration::from_secs(15) => return None,
            Liveness::Busy => {
                tokio::time::sleep(delay.mul_f64(0.5 + fastrand::f64())).await;
                delay = (delay * 2).min(Duration::from_millis(200));
            }
        }
    }
}

/// Attaches to the slot's master if it answers, or starts one (under a file lock,
/// so concurrent processes start one master, not many).
pub(crate) async fn connect(spec: &MasterSpec<'_>) -> Result<Session> {
    let sock = &spec.sock;
    if let Some(s) = try_attach(sock).await {
        return Ok(s);
    }
    let lock_path = sock.with_extension("lock");
    let lock_file = tokio::task::spawn_blocking(move || -> std::io::Result<File> {
        let f = open_private(&lock_path, false)?;
        flock_exclusive(&f)?;
        Ok(f)
    })
    .await
    .map_err(|e| Error::backend("ssh", format!("lock task failed: {e}")))?
    .map_err(|e| {
        Error::backend(
            "ssh",
            format!("cannot lock {}: {e}", sock.with_extension("lock").display()),
        )
    })?;
    if let Some(s) = try_attach(sock).await {
        return Ok(s);
    }
    spec.budget.check().await?;
    let result = launch(spec).await;
    match result {
        Ok(()) => {
            spec.budget.clear();
            drop(lock_file);
            try_attach(sock).await.ok_or_else(|| Error::Connection {
                host: spec.host.to_owned(),
                message: format!(
                    "the ssh master started but its control socket {} does not answer; retry, or run `cmux doctor --ssh {}`",
                    sock.display(),
                    spec.host
                ),
            })
        }
        Err(failure) => {
            // Recorded before the lock is released: processes waiting on it see
            // the budget and fail fast instead of attempting too.
            spec.budget.record_failure(&failure);
            drop(lock_file);
            Err(failure.to_error(spec.host))
        }
    }
}

async fn launch(spec: &MasterSpec<'_>) -> std::result::Result<(), Failure> {
    let sock = &spec.sock;
    let log = sock.with_extension("log");
    let _ = std::fs::remove_file(sock);
    let local = |what: &str, e: std::io::Error| Failure::local(format!("{what}: {e}"));
    // Never through a planted link (O_NOFOLLOW): truncating the log must not
    // truncate someone's file.
    open_private(&log, true).map_err(|e| local("creating the ssh log", e))?;
    let stderr = open_private(&log, false).map_err(|e| local("opening the ssh log", e))?;
    let mut cmd = tokio::process::Command::new("ssh");
    cmd.args(&spec.ssh_args)
        .arg("-M")
        .arg("-S")
        .arg(sock)
        .arg("-f")
        .arg("-N")
        .arg("-E")
        .arg(&log)
        .args([
            "-o".to_owned(),
            format!(
                "ControlPersist={}s",
                spec.opts.control_persist.as_secs().max(1)
            ),
            "-o".to_owned(),
            format!(
                "ConnectTimeout={}",
                spec.opts.connect_timeout.as_secs().max(1)
            ),
            "-o".to_owned(),
            "ServerAliveInterval=15".to_owned(),
            "-o".to_owned(),
            "ServerAliveCountMax=3".to_owned(),
        ])
        .args(&spec.destination)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(stderr)
        .kill_on_drop(true);
    tracing::debug!(host = %spec.host, sock = %sock.display(), "starting ssh master");
    let mut child = cmd.spawn().map_err(|e| {
        local(
            "cannot run `ssh` (is OpenSSH's client installed and on PATH?)",
            e,
        )
    })?;
    let limit = spec.opts.connect_timeout + Duration::from_secs(30);
    let started = Instant::now();
    let waited = {
        let wait = tokio::time::timeout(limit, child.wait());
        tokio::pin!(wait);
        tokio::select! {
            done = &mut wait => (done, false),
            () = tokio::time::sleep(crate::options::SLOW_CONNECT) => {
                spec.opts.on_connect.notify(crate::options::ConnectEvent::Slow {
                    host: spec.host.to_owned(),
                    waited: started.elapsed(),
                });
                (wait.await, true)
            }
        }
    };
    let (waited, slow) = waited;
    if slow {
        let connected = matches!(&waited, Ok(Ok(status)) if status.success());
        spec.opts
            .on_connect
            .notify(crate::options::ConnectEvent::Done {
                host: spec.host.to_owned(),
                took: started.elapsed(),
                connected,
            });
    }
    let status = match waited {
        Ok(status) => status.map_err(|e| local("waiting for ssh", e))?,
        Err(_) => {
            let _ = child.kill().await;
            return Err(Failure::timeout(limit));
        }
    };
    if status.success() {
        return Ok(());
    }
    let text = read_private(&log).unwrap_or_default();
    Err(diag::classify(&text, status.code()))
}

/// What a mux alive check says about a master.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Liveness {
    /// It answered.
    Alive,
    /// Its socket is missing or refuses: the master is gone.
    Dead,
    /// It did not answer in time or the connect failed otherwise (a full backlog).
    Busy,
}

/// Checks a master with a local mux alive check (no round trip to the host).
pub(crate) async fn liveness(session: &Session) -> Liveness {
    match tokio::time::timeout(Duration::from_secs(5), session.check()).await {
        Ok(Ok(())) => Liveness::Alive,
        Ok(Err(openssh::Error::Disconnected)) => Liveness::Dead,
        Ok(Err(_)) | Err(_) => Liveness::Busy,
    }
}

#[allow(unsafe_code)]
fn flock_exclusive(file: &File) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    loop {
        // SAFETY: the fd is valid for the lifetime of `file`; flock touches no memory.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
        if rc == 0 {
            return Ok(());
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}
