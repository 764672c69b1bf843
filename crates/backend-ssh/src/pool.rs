//! Connections to one host: ControlMaster sockets, their reuse across processes, the
//! channel gate per master, and the shared reconnect backoff.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use cmux_core::{quote, Error, Result};
use openssh::Session;
use openssh::Stdio;
use openssh_sftp_client::Sftp;
use tokio::sync::{OnceCell, OwnedSemaphorePermit, Semaphore};

use crate::control_dir::control_dir_for;
use crate::master::{self, liveness, stable_hash, Liveness, MasterSpec};
use crate::options::SshOptions;

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
    /// The russh connection, when [`crate::Transport`] chose russh: the helper then
    /// runs over it, and only the shell/SFTP path (a host where the helper cannot run)
    /// uses the masters above.
    pub(crate) russh: Option<crate::russh_transport::RusshHost>,
}

/// One master (a slot): the mux session, its channel gate, its SFTP session.
#[derive(Debug)]
pub(crate) struct Conn {
    pub(crate) slot: usize,
    pub(crate) session: Arc<Session>,
    pub(crate) gate: Arc<Semaphore>,
    /// The SFTP session on this master (the shell/SFTP path's, opened on first use).
    pub(crate) sftp: Mutex<Option<Arc<OnceCell<Arc<Sftp>>>>>,
    /// The remote home directory, asked once over SFTP.
    pub(crate) home: OnceCell<String>,
    /// The remote user's uid, learned from the first file cmux creates on the host.
    pub(crate) uid: OnceLock<u32>,
    /// Names this master's login-environment cache on the host (see `wrapper`): the
    /// same for every process attached to the master, new with a new master.
    pub(crate) login_key: String,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// How long a refused channel open (MaxSessions, mux backlog) is retried.
const OPEN_RETRY_FOR: Duration = Duration::from_secs(30);

/// Why [`HostState::open_channel`] failed.
pub(crate) enum OpenError {
    /// The master is gone: replace it and try again.
    Dead,
    /// Something else, already an error for the user.
    Fatal(Error),
}

impl HostState {
    /// Opens a channel for `command` on `conn`, retrying refused opens with jittered
    /// backoff (another process may hold the host's channels for a moment).
    pub(crate) async fn open_channel(
        &self,
        conn: &Arc<Conn>,
        command: &str,
        stdin: bool,
    ) -> std::result::Result<openssh::Child<Arc<Session>>, OpenError> {
        let started = Instant::now();
        let mut delay = Duration::from_millis(5);
        loop {
            let result = Session::to_raw_command(conn.session.clone(), command)
                .stdin(if stdin { Stdio::piped() } else { Stdio::null() })
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .await;
            let err = match result {
                Ok(child) => return Ok(child),
                Err(e) => e,
            };
            if liveness(&conn.session).await == Liveness::Dead {
                self.mark_dead(conn);
                return Err(OpenError::Dead);
            }
            if started.elapsed() > OPEN_RETRY_FOR {
                return Err(OpenError::Fatal(Error::Connection {
                    host: self.host.clone(),
                    message: format!(
                        "the host kept refusing new channels for {}s ({err}); its sshd MaxSessions may be below 10, \
                         or too many cmux processes share it: retry later ({})",
                        OPEN_RETRY_FOR.as_secs(),
                        cmux_core::error::NOTHING_RAN
                    ),
                }));
            }
            tracing::debug!(host = %self.host, "channel open refused ({err}); retrying");
            let jittered = delay.mul_f64(0.5 + fastrand::f64());
            tokio::time::sleep(jittered).await;
            delay = (delay * 2).min(Duration::from_millis(250));
        }
    }

    /// The masters of `host` with `opts` (none connected yet).
    pub(crate) fn new(host: String, opts: SshOptions) -> Result<HostState> {
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
        let russh = uses_russh(opts.transport)
            .then(|| russh_settings(&opts))
            .transpose()?
            .map(|settings| {
                crate::russh_transport::RusshHost::new(host.clone(), dest.clone(), settings)
            });
        Ok(HostState {
            russh,
            host,
            budget,
            dest,
            opts,
            ctl_dir,
            key,
            conns: Mutex::new(Vec::new()),
            grow: tokio::sync::Mutex::new(()),
        })
    }

    /// True when no OpenSSH client can serve this host (the russh transport was
    /// chosen because there is none, or there is none at all).
    pub(crate) fn openssh_available(&self) -> bool {
        crate::russh_transport::config::openssh_client_available()
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

/// Whether `transport` means russh on this machine.
fn uses_russh(transport: crate::options::Transport) -> bool {
    use crate::options::Transport;
    match transport {
        Transport::Russh => true,
        Transport::OpenSsh => false,
        _ => !crate::russh_transport::config::openssh_client_available(),
    }
}

/// The russh transport's settings from the options and the local account.
fn russh_settings(opts: &SshOptions) -> Result<crate::russh_transport::Settings> {
    let home = cmux_core::local_user::home_dir().ok_or_else(|| {
        Error::invalid(
            "the russh transport needs this user's home directory (for ~/.ssh), and the passwd database has none",
        )
    })?;
    let local_user = cmux_core::local_user::user_name().ok_or_else(|| {
        Error::invalid(
            "the russh transport needs this user's name, and the passwd database has none",
        )
    })?;
    Ok(crate::russh_transport::Settings {
        config_file: opts.config_file.clone(),
        config_source: opts.config_source,
        accept_new_host_key: opts.accept_new_host_key,
        connect_timeout: opts.connect_timeout,
        agent_socket: opts.agent_socket.clone(),
        home,
        local_user,
    })
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
