//! A host's connection budget: after a failed connection attempt the next one waits
//! 10-12 s, shared by every operation and every cmux process through a small file in
//! the control dir (`<key>-<policy>.backoff`, written under the master's start lock),
//! so a down host sees at most 6 attempts a minute however many agents ask. Meanwhile
//! operations fail fast with the last diagnostic and the wait, unless a cheap probe
//! (one TCP connect to what `ssh -G` resolves, at most once a second) finds the host
//! accepting connections again after "connection refused".

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use cmux_core::Result;
use tokio::sync::OnceCell;

use crate::control_dir::{open_private, read_private};
use crate::diag::{Failure, Kind};

/// Spacing of connection attempts while a host is down: at most 6 a minute, from
/// every cmux process together.
const RETRY_SPACING: Duration = Duration::from_secs(10);

/// Shortest spacing of "is the host back?" probes (one TCP connect each).
const PROBE_SPACING: Duration = Duration::from_secs(1);

/// The connection budget of one host (with one config and host-key policy).
#[derive(Debug)]
pub(crate) struct Budget {
    /// The host as the user wrote it (in messages).
    host: String,
    /// The file shared with other processes.
    path: PathBuf,
    /// `ssh` arguments that print what the host resolves to (`-F cfg -G ... -- host`).
    probe_args: Vec<String>,
    backoff: Mutex<Backoff>,
    /// The address and port `ssh -G` resolves the host to (`None`: behind a
    /// ProxyJump/ProxyCommand, or unresolved), for the cheap "is it back?" probe.
    probe_target: OnceCell<Option<(String, u16)>>,
    /// When the last probe was sent.
    last_probe: Mutex<Option<Instant>>,
}

#[derive(Debug, Default)]
struct Backoff {
    failures: u32,
    next_attempt: Option<Instant>,
    last: Option<Failure>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Budget {
    /// The budget of `host`, kept in `path`; `probe_args` make `ssh` print what the
    /// host resolves to.
    pub(crate) fn new(host: String, path: PathBuf, probe_args: Vec<String>) -> Budget {
        Budget {
            host,
            path,
            probe_args,
            backoff: Mutex::new(Backoff::default()),
            probe_target: OnceCell::new(),
            last_probe: Mutex::new(None),
        }
    }

    pub(crate) fn record_failure(&self, failure: &Failure) {
        let delay = RETRY_SPACING + Duration::from_secs_f64(2.0 * fastrand::f64());
        {
            let mut b = lock(&self.backoff);
            b.failures += 1;
            b.next_attempt = Some(Instant::now() + delay);
            b.last = Some(failure.clone());
        }
        let next_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| (d + delay).as_millis())
            .unwrap_or(0);
        let line = format!(
            "{next_ms}\t{}\t{}\n",
            failure.kind.as_str(),
            failure.detail.replace(['\n', '\t'], " ")
        );
        let path = self.path.clone();
        let temp = path.with_extension(format!("tmp{}", std::process::id()));
        let written = open_private(&temp, true).and_then(|mut f| {
            use std::io::Write;
            f.write_all(line.as_bytes())
        });
        if written.is_ok() && std::fs::rename(&temp, &path).is_err() {
            let _ = std::fs::remove_file(&temp);
        }
    }

    /// Forgets the recorded failure (this process's and the shared file): the next
    /// attempt is made at once. For `doctor`, which must always try for real.
    pub(crate) fn clear(&self) {
        *lock(&self.backoff) = Backoff::default();
        let _ = std::fs::remove_file(self.path.clone());
    }

    /// Fails fast while the host's connection budget waits after a failure, unless a
    /// cheap probe finds that the host accepts TCP connections again (after "connection
    /// refused" or a timeout): then the attempt is made at once instead of waiting out
    /// the 10-12 s.
    pub(crate) async fn check(&self) -> Result<()> {
        let now = Instant::now();
        let (wait, failure) = {
            let b = lock(&self.backoff);
            match (b.next_attempt, &b.last) {
                (Some(at), Some(last)) if at > now => (Some(at - now), Some(last.clone())),
                _ => (None, None),
            }
        };
        let (wait, failure) = match (wait, failure) {
            (Some(w), Some(f)) => (w, f),
            _ => match self.read_budget_file() {
                Some(found) => found,
                None => return Ok(()),
            },
        };
        // Only after "connection refused" (nothing listened): a port that accepts now
        // is a changed host. A port that accepted but failed the handshake (an
        // overloaded sshd) is left to the budget, and so are probes themselves: at most
        // one a second.
        let refused =
            failure.kind == Kind::Connection && failure.detail.contains("Connection refused");
        if refused && self.probe_due() && self.port_accepts().await {
            tracing::info!(host = %self.host, "the host accepts connections again: trying now");
            self.clear();
            return Ok(());
        }
        let mut failure = failure;
        failure.detail.push_str(&format!(
            " (cmux waits {:.0}s before the next connection attempt to this host)",
            wait.as_secs_f64().ceil()
        ));
        Err(failure.to_error(&self.host))
    }

    /// True at most once a second: whether a probe may be sent now.
    fn probe_due(&self) -> bool {
        let mut last = lock(&self.last_probe);
        let now = Instant::now();
        match *last {
            Some(at) if now.duration_since(at) < PROBE_SPACING => false,
            _ => {
                *last = Some(now);
                true
            }
        }
    }

    /// Whether the host's ssh port accepts a TCP connection now (1 s at most). The
    /// address comes from `ssh -G`, asked once; a host reached through a ProxyJump or
    /// ProxyCommand cannot be probed this way (false).
    async fn port_accepts(&self) -> bool {
        let target = self
            .probe_target
            .get_or_init(|| async {
                let mut g = tokio::process::Command::new("ssh");
                g.args(&self.probe_args)
                    .stdin(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null());
                let out = g.output().await.ok().filter(|o| o.status.success())?;
                let resolved = crate::ssh_g::parse_ssh_g(&String::from_utf8_lossy(&out.stdout));
                if resolved.proxy_jump.is_some() || resolved.proxy_command.is_some() {
                    return None;
                }
                Some((resolved.hostname, resolved.port.parse().ok()?))
            })
            .await
            .clone();
        let Some((host, port)) = target else {
            return false;
        };
        tokio::task::spawn_blocking(move || {
            use std::net::ToSocketAddrs;
            let Ok(addrs) = (host.as_str(), port).to_socket_addrs() else {
                return false;
            };
            addrs
                .take(4)
                .any(|a| std::net::TcpStream::connect_timeout(&a, Duration::from_secs(1)).is_ok())
        })
        .await
        .unwrap_or(false)
    }

    /// Another process's recorded failure, while its wait runs.
    fn read_budget_file(&self) -> Option<(Duration, Failure)> {
        let text = read_private(&self.path.clone()).ok()?;
        let mut parts = text.trim_end_matches('\n').splitn(3, '\t');
        let next_ms: u128 = parts.next()?.parse().ok()?;
        let kind = Kind::parse(parts.next()?)?;
        let detail = parts.next()?.to_owned();
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .ok()?
            .as_millis();
        if next_ms <= now_ms {
            return None;
        }
        let wait = Duration::from_millis(u64::try_from(next_ms - now_ms).ok()?);
        // A clock jump must not lock a host out for long.
        if wait > RETRY_SPACING * 2 {
            return None;
        }
        Some((wait, Failure { kind, detail }))
    }
}
