//! Connections to one host: ControlMaster sockets, their reuse across processes, the
//! channel gate per master, and the shared reconnect backoff.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use cmux_core::{quote, Error, Result};
use openssh::Session;
use openssh_sftp_client::{Sftp, SftpOptions};
use tokio::sync::{OnceCell, OwnedSemaphorePermit, Semaphore};

use crate::control_dir::control_dir_for;
use crate::master::{self, liveness, stable_hash, Liveness, MasterSpec};
use crate::options::SshOptions;

/// How long a refused SFTP channel is retried (as long as exec channels: a burst of
/// separate cmux processes can hold a host's sessions that long on a busy machine).
const SFTP_RETRY_FOR: Duration = Duration::from_secs(30);

/// One host (with one set of options) in this process: its masters and its backoff.
#[derive(Debug)]
pub(crate) struct HostState {
    /// The host as the user wrote it (in messages).
    pub(crate) host: String,
    /// What ssh is given for it: the host word, and the port and user written with it.
    pub(crate) dest: crate::destination::Destination,
    pub(crate) opts: SshOptions,
    ctl_dir: PathBuf,
    key: String,
    conns: Mutex<Vec<Arc<Conn>>>,
    grow: tokio::sync::Mutex<()>,
    /// The connection budget shared with other processes.
    pub(crate) budget: crate::budget::Budget,
    /// Directories whose stale temporary files were swept recently.
    pub(crate) sweeper: cmux_core::temp::TempSweeper,
    /// The shortest SFTP round trip seen, in microseconds (`u64::MAX`: none yet).
    min_rtt_us: std::sync::atomic::AtomicU64,
    /// Modes of files seen recently (for writes through a command).
    pub(crate) modes: crate::exec_write::ModeCache,
    /// The host helper's connection, once started (or why it is not used).
    pub(crate) helper_slot: crate::helper::HelperSlot,
}

/// One master (a slot): the mux session, its channel gate, its SFTP session.
#[derive(Debug)]
pub(crate) struct Conn {
    pub(crate) slot: usize,
    pub(crate) session: Arc<Session>,
    pub(crate) gate: Arc<Semaphore>,
    sftp: Mutex<Option<Arc<OnceCell<Arc<Sftp>>>>>,
    home: OnceCell<String>,
    /// The remote user's uid, learned from the first file cmux creates on the host.
    pub(crate) uid: OnceLock<u32>,
    /// Names this master's login-environment cache on the host (see `wrapper`): the
    /// same for every process attached to the master, new with a new master.
    pub(crate) login_key: String,
}

type Registry = Mutex<HashMap<(String, SshOptions), Weak<HostState>>>;

fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(Default::default)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl HostState {
    /// The state shared by every runtime of `host` with `opts` in this process.
    pub(crate) fn shared(host: String, opts: SshOptions) -> Result<Arc<HostState>> {
        let reg_key = (host.clone(), opts.clone());
        let mut reg = lock(registry());
        if let Some(state) = reg.get(&reg_key).and_then(Weak::upgrade) {
            return Ok(state);
        }
        let dest = crate::destination::Destination::parse(&host)?;
        let ctl_dir = control_dir_for(&opts)?;
        let config = opts
            .config_file
            .as_ref()
            .map(|p| p.as_os_str().as_encoded_bytes().to_vec())
            .unwrap_or_default();
        let hash = stable_hash(&[host.as_bytes(), &config]);
        let key = format!("{hash:016x}");
        // Per host, config and host-key policy: accepting a new key right after a
        // strict refusal is a deliberate new attempt.
        let policy = if opts.accept_new_host_key {
            "accept-new"
        } else {
            "strict"
        };
        let budget_path = ctl_dir.join(format!("{key}-{policy}.backoff"));
        let mut probe_args: Vec<String> = match &opts.config_file {
            Some(cfg) => vec!["-F".into(), cfg.to_string_lossy().into_owned()],
            None => Vec::new(),
        };
        probe_args.push("-G".into());
        probe_args.extend(dest.option_words());
        probe_args.push("--".into());
        probe_args.push(dest.host.clone());
        let budget = crate::budget::Budget::new(host.clone(), budget_path, probe_args);
        let state = Arc::new(HostState {
            host,
            budget,
            dest,
            opts,
            ctl_dir,
            key,
            conns: Mutex::new(Vec::new()),
            grow: tokio::sync::Mutex::new(()),
            sweeper: cmux_core::temp::TempSweeper::new(),
            min_rtt_us: std::sync::atomic::AtomicU64::new(u64::MAX),
            modes: Default::default(),
            helper_slot: Default::default(),
        });
        reg.retain(|_, w| w.strong_count() > 0);
        reg.insert(reg_key, Arc::downgrade(&state));
        Ok(state)
    }

    /// Records how long one SFTP round trip took (a single request, or requests sent
    /// together and answered at once).
    pub(crate) fn note_rtt(&self, took: Duration) {
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.min_rtt_us
            .fetch_min(us, std::sync::atomic::Ordering::Relaxed);
    }

    /// The shortest round trip seen to this host, if any.
    pub(crate) fn min_rtt(&self) -> Option<Duration> {
        match self.min_rtt_us.load(std::sync::atomic::Ordering::Relaxed) {
            u64::MAX => None,
            us => Some(Duration::from_micros(us)),
        }
    }

    pub(crate) fn socket_path(&self, slot: usize) -> PathBuf {
        self.ctl_dir.join(format!("{}-{slot}", self.key))
    }

    /// Options forced on every ssh invocation, whatever the config says (command-line
    /// options win over config files in OpenSSH).
    fn safety_options(&self) -> Vec<String> {
        let strict = if self.opts.accept_new_host_key {
            "accept-new"
        } else {
            "yes"
        };
        [
            "ForwardAgent=no".to_owned(),
            "ForwardX11=no".to_owned(),
            "ClearAllForwardings=yes".to_owned(),
            "PermitLocalCommand=no".to_owned(),
            "BatchMode=yes".to_owned(),
            format!("StrictHostKeyChecking={strict}"),
        ]
        .into_iter()
        .flat_map(|o| ["-o".to_owned(), o])
        .collect()
    }

    pub(crate) fn config_words(&self) -> Vec<String> {
        match &self.opts.config_file {
            Some(cfg) => vec!["-F".into(), cfg.to_string_lossy().into_owned()],
            None => Vec::new(),
        }
    }

    /// `ssh` words that reuse slot 0's master (and connect directly, with the same
    /// safety options, when it is gone).
    pub(crate) fn client_words(&self) -> Vec<String> {
        let mut words = vec!["ssh".to_owned()];
        words.extend(self.config_words());
        words.extend(self.safety_options());
        words.extend([
            "-o".into(),
            format!("ControlPath={}", self.socket_path(0).display()),
            "-o".into(),
            "ControlMaster=no".into(),
        ]);
        words.extend(self.dest.option_words());
        words
    }

    /// The `ssh` argv that checks or talks to an existing master.
    pub(crate) fn base_ssh_args(&self) -> Vec<String> {
        let mut words = self.config_words();
        words.extend(self.safety_options());
        words
    }

    fn live(&self) -> Vec<Arc<Conn>> {
        lock(&self.conns).clone()
    }

    /// Forgets a master found dead; the next operation replaces it.
    pub(crate) fn mark_dead(&self, conn: &Arc<Conn>) {
        let mut conns = lock(&self.conns);
        if conns.iter().any(|c| Arc::ptr_eq(c, conn)) {
            tracing::info!(host = %self.host, slot = conn.slot, "ssh master is gone; it will be replaced");
            conns.retain(|c| !Arc::ptr_eq(c, conn));
            conn.gate.close();
        }
    }

    /// The first master (connecting if needed): the one SFTP runs on.
    pub(crate) async fn primary(&self) -> Result<Arc<Conn>> {
        if let Some(c) = self.live().into_iter().next() {
            return Ok(c);
        }
        let _grow = self.grow.lock().await;
        if let Some(c) = self.live().into_iter().next() {
            return Ok(c);
        }
        self.add_conn().await
    }

    /// A master with an exec channel free right now, and the permit for it (no wait,
    /// no new master).
    pub(crate) fn exec_channel_now(&self) -> Option<(Arc<Conn>, OwnedSemaphorePermit)> {
        self.live()
            .into_iter()
            .find_map(|c| c.gate.clone().try_acquire_owned().ok().map(|p| (c, p)))
    }

    /// A master with a free exec channel, and the permit for it.
    pub(crate) async fn exec_channel(&self) -> Result<(Arc<Conn>, OwnedSemaphorePermit)> {
        loop {
            let conns = self.live();
            for c in &conns {
                if let Ok(p) = c.gate.clone().try_acquire_owned() {
                    return Ok((c.clone(), p));
                }
            }
            if conns.len() < self.opts.max_connections.max(1) {
                let _grow = self.grow.lock().await;
                let conns = self.live();
                for c in &conns {
                    if let Ok(p) = c.gate.clone().try_acquire_owned() {
                        return Ok((c.clone(), p));
                    }
                }
                if conns.len() < self.opts.max_connections.max(1) {
                    match self.add_conn().await {
                        Ok(c) => {
                            if let Ok(p) = c.gate.clone().try_acquire_owned() {
                                return Ok((c, p));
                            }
                            continue;
                        }
                        // More masters are a bonus: with one up, queue on it instead.
                        Err(e) if conns.is_empty() => return Err(e),
                        Err(e) => tracing::debug!(host = %self.host, "extra master failed: {e}"),
                    }
                }
            }
            let conns = self.live();
            if conns.is_empty() {
                continue;
            }
            let c = conns[fastrand::usize(..conns.len())].clone();
            if let Ok(p) = c.gate.clone().acquire_owned().await {
                return Ok((c, p));
            }
        }
    }

    async fn add_conn(&self) -> Result<Arc<Conn>> {
        let used: Vec<usize> = self.live().iter().map(|c| c.slot).collect();
        let slot = (0..).find(|s| !used.contains(s)).unwrap_or(0);
        let mut destination = self.dest.option_words();
        destination.push("--".into());
        destination.push(self.dest.host.clone());
        let spec = MasterSpec {
            host: &self.host,
            sock: self.socket_path(slot),
            ssh_args: self.base_ssh_args(),
            destination,
            opts: &self.opts,
            budget: &self.budget,
        };
        let session = master::connect(&spec).await?;
        let login_key = master::login_key(&self.key, &spec.sock);
        let conn = Arc::new(Conn {
            slot,
            session: Arc::new(session),
            gate: Arc::new(Semaphore::new(self.opts.channels_per_connection.max(1))),
            sftp: Mutex::new(None),
            home: OnceCell::new(),
            uid: OnceLock::new(),
            login_key,
        });
        lock(&self.conns).push(conn.clone());
        Ok(conn)
    }

    /// The SFTP session of `conn`, opened on first use (flush interval 0: the default
    /// batching adds ~2 ms to every request).
    pub(crate) async fn sftp(&self, conn: &Conn) -> Result<Arc<Sftp>> {
        let cell = lock(&conn.sftp)
            .get_or_insert_with(Default::default)
            .clone();
        cell.get_or_try_init(|| async {
            // A refused channel (the host's MaxSessions, taken by other processes for
            // a moment, or the master's socket backlog) is retried like exec channels;
            // a dead master is not, nor a host without SFTP (the channel opened, then
            // the subsystem ended: waiting will not change that).
            let started = Instant::now();
            let mut delay = Duration::from_millis(10);
            loop {
                let result = Sftp::from_clonable_session(
                    conn.session.clone(),
                    SftpOptions::new().flush_interval(Duration::ZERO),
                )
                .await;
                let err = match result {
                    Ok(sftp) => return Ok(Arc::new(sftp)),
                    Err(e) => e,
                };
                // Refusals fail at the mux ("failed to connect to the ssh multiplex
                // server"); a missing subsystem as "the remote process has terminated".
                if let Some(printed) = shell_noise(&err) {
                    return Err(Error::Connection {
                        host: self.host.clone(),
                        message: format!(
                            "cannot start the SFTP subsystem: your shell printed {printed:?} on startup; SFTP \
                             needs a silent non-interactive shell. Make the host's startup files (~/.bashrc, \
                             ~/.zshenv...) print only when the shell is interactive (`case $- in *i*) ...`), \
                             then check that `ssh {} true` prints nothing",
                            self.host
                        ),
                    });
                }
                let refused = err.to_string().contains("multiplex server");
                let dead = liveness(&conn.session).await == Liveness::Dead;
                if !refused || dead || started.elapsed() > SFTP_RETRY_FOR {
                    let next = if refused && !dead {
                        format!(
                            "the host kept refusing a channel for {}s (too many sessions at once for its MaxSessions?): retry later",
                            SFTP_RETRY_FOR.as_secs()
                        )
                    } else {
                        format!(
                            "check that the host's sshd has `Subsystem sftp` configured (`cmux doctor --ssh {}`)",
                            self.host
                        )
                    };
                    return Err(Error::Connection {
                        host: self.host.clone(),
                        message: format!("cannot start the SFTP subsystem: {err}; {next}"),
                    });
                }
                tokio::time::sleep(delay.mul_f64(0.5 + fastrand::f64())).await;
                delay = (delay * 2).min(Duration::from_millis(500));
            }
        })
        .await
        .cloned()
    }

    /// Drops the SFTP session of `conn` (its channel broke); the next use opens another.
    pub(crate) fn reset_sftp(&self, conn: &Conn) {
        lock(&conn.sftp).take();
    }

    /// The remote home directory, asked once per connection.
    pub(crate) async fn home<'a>(&self, conn: &'a Conn) -> Result<&'a str> {
        let sftp = self.sftp(conn).await?;
        conn.home
            .get_or_try_init(|| async {
                let mut fs = sftp.fs();
                let home = fs.canonicalize(".").await.map_err(|e| Error::Connection {
                    host: self.host.clone(),
                    message: format!("cannot resolve the home directory over SFTP: {e}"),
                })?;
                Ok::<_, Error>(home.to_string_lossy().into_owned())
            })
            .await
            .map(String::as_str)
    }

    /// Asks the masters this process uses to exit.
    pub(crate) async fn disconnect_all(&self) {
        let conns: Vec<Arc<Conn>> = std::mem::take(&mut *lock(&self.conns));
        for c in conns {
            c.gate.close();
            let _ = tokio::process::Command::new("ssh")
                .args(self.config_words())
                .arg("-S")
                .arg(self.socket_path(c.slot))
                .args(self.dest.option_words())
                .args(["-O", "exit", "--", &self.dest.host])
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
                .await;
        }
    }

    /// A shell-quoted description of how to reach the host by hand, for messages.
    pub(crate) fn manual_ssh(&self) -> String {
        let mut words = vec!["ssh".to_owned()];
        words.extend(self.config_words());
        words.extend(self.dest.option_words());
        words.push(self.dest.host.clone());
        quote::join(words)
    }
}

/// What the user's shell printed on stdout before the SFTP server started, when that
/// is why SFTP failed: the client read those bytes as the length of the server's hello
/// message (e.g. 1464159299 for "WELC"), so they are its first four bytes.
fn shell_noise(err: &openssh_sftp_client::Error) -> Option<String> {
    match err {
        openssh_sftp_client::Error::SftpServerHelloMsgTooLong { len } => {
            Some(format!("{}…", String::from_utf8_lossy(&len.to_be_bytes())))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_names_are_stable_and_short() {
        let a = stable_hash(&[b"host", b"/cfg"]);
        assert_eq!(a, stable_hash(&[b"host", b"/cfg"]));
        assert_ne!(a, stable_hash(&[b"hos", b"t/cfg"]));
    }
}
