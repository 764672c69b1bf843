//! The SFTP session of each master (opened on first use, flush interval 0: the default
//! batching adds ~2 ms to every request) and the home directory asked through it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cmux_core::{Error, Result};
use openssh_sftp_client::{Sftp, SftpOptions};

use super::Fallback;
use crate::master::{liveness, Liveness};
use crate::pool::Conn;

/// How long a refused SFTP channel is retried (as long as exec channels: a burst of
/// separate cmux processes can hold a host's sessions that long on a busy machine).
const SFTP_RETRY_FOR: Duration = Duration::from_secs(30);

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Fallback {
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
