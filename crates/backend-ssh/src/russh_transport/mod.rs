//! The pure-Rust transport (russh): no ssh binary, one TCP connection per host and
//! process, the host helper on one session channel of it.
//!
//! - `config`: how to reach a host, from `ssh -G` or cmux's own ssh_config parser.
//! - `known_hosts`: OpenSSH's host-key policy over the user's known_hosts files.
//! - `auth`: the agent, then identity files that need no passphrase.
//! - `link`: one connection (TCP, `ProxyCommand` or `ProxyJump`).
//! - `channel`: an exec channel as stdin/stdout/stderr and an exit code.

mod auth;
mod channel;
pub(crate) mod config;
pub(crate) mod known_hosts;
mod link;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use cmux_core::{Error, Result};

pub(crate) use channel::ExecChannel;
pub(crate) use link::Link;

use self::config::{ConfigSource, HostConfig, Lookup};
use crate::destination::Destination;

/// What every connection of one runtime is made with (from [`crate::SshOptions`]).
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    /// `ssh -F`.
    pub(crate) config_file: Option<PathBuf>,
    /// Where the configuration is read.
    pub(crate) config_source: ConfigSource,
    /// Accept and record an unknown host key.
    pub(crate) accept_new_host_key: bool,
    /// For connect, handshake and authentication each, unless the config says.
    pub(crate) connect_timeout: Duration,
    /// The agent's socket (the CLI passes `$SSH_AUTH_SOCK`).
    pub(crate) agent_socket: Option<PathBuf>,
    /// The local user's home (the passwd entry's, as OpenSSH).
    pub(crate) home: PathBuf,
    /// The local user's name.
    pub(crate) local_user: String,
}

impl Settings {
    /// The configuration of `host` as written (`user@name:port`, an alias).
    pub(crate) fn resolve(&self, dest: &Destination) -> Result<HostConfig> {
        config::resolve(
            &Lookup {
                host: &dest.host,
                port: dest.port,
                user: dest.user.as_deref(),
                config_file: self.config_file.as_deref(),
                home: &self.home,
                local_user: &self.local_user,
            },
            self.config_source,
        )
    }

    /// The configuration of the jump host `spec`, reached itself through `earlier`
    /// (the hops before it, as `ProxyJump` lists them), whatever its own config says.
    pub(crate) fn resolve_jump(&self, spec: &str, earlier: Option<&str>) -> Result<HostConfig> {
        let dest = Destination::parse(spec)?;
        let mut config = self.resolve(&dest)?;
        config.proxy_command = None;
        config.proxy_jump = earlier.map(str::to_owned);
        Ok(config)
    }
}

/// The russh connection of one host in this process.
#[derive(Debug)]
pub(crate) struct RusshHost {
    host: String,
    dest: Destination,
    settings: Settings,
    link: tokio::sync::Mutex<Option<Arc<Link>>>,
}

impl RusshHost {
    /// Not connected yet.
    pub(crate) fn new(host: String, dest: Destination, settings: Settings) -> Self {
        RusshHost {
            host,
            dest,
            settings,
            link: tokio::sync::Mutex::new(None),
        }
    }

    /// The live connection, made when there is none.
    pub(crate) async fn link(&self) -> Result<Arc<Link>> {
        let mut slot = self.link.lock().await;
        if let Some(link) = slot.as_ref().filter(|l| !l.is_closed()) {
            return Ok(link.clone());
        }
        // Reading config files or running `ssh -G` blocks.
        let (settings, dest) = (self.settings.clone(), self.dest.clone());
        let config = tokio::task::spawn_blocking(move || settings.resolve(&dest))
            .await
            .map_err(|e| {
                Error::backend("ssh", format!("resolving the ssh config failed: {e}"))
            })??;
        let link = Arc::new(link::connect(&self.host, &config, &self.settings, 0).await?);
        *slot = Some(link.clone());
        Ok(link)
    }

    /// This host's configuration, read now (`ssh -G` or the builtin parser).
    pub(crate) async fn config(&self) -> Result<HostConfig> {
        // Reading config files or running `ssh -G` blocks.
        let (settings, dest) = (self.settings.clone(), self.dest.clone());
        tokio::task::spawn_blocking(move || settings.resolve(&dest))
            .await
            .map_err(|e| Error::backend("ssh", format!("resolving the ssh config failed: {e}")))?
    }

    /// Runs `command` on a new session channel, reconnecting once when the connection
    /// turns out dead before the channel opened (nothing ran then).
    pub(crate) async fn open_exec(&self, command: &str) -> Result<(Arc<Link>, ExecChannel)> {
        let mut last = None;
        for _ in 0..2 {
            let link = self.link().await?;
            match link.handle.channel_open_session().await {
                Ok(channel) => {
                    return match ExecChannel::start(channel, command).await {
                        Ok(exec) => Ok((link, exec)),
                        Err(e) => Err(Error::Connection {
                            host: self.host.clone(),
                            message: format!(
                                "the host refused to run a command on its channel: {e}"
                            ),
                        }),
                    };
                }
                Err(e) => {
                    self.forget(&link).await;
                    last = Some(e);
                }
            }
        }
        Err(Error::Connection {
            host: self.host.clone(),
            message: format!(
                "the ssh connection closed while opening a channel ({}; {})",
                last.map_or_else(String::new, |e| e.to_string()),
                cmux_core::error::NOTHING_RAN
            ),
        })
    }

    /// Drops `link` if it is still the current one (found dead).
    pub(crate) async fn forget(&self, link: &Arc<Link>) {
        let mut slot = self.link.lock().await;
        if slot.as_ref().is_some_and(|l| Arc::ptr_eq(l, link)) {
            *slot = None;
        }
    }

    /// Closes the connection; the next operation connects again.
    pub(crate) async fn close(&self) {
        if let Some(link) = self.link.lock().await.take() {
            let _ = link
                .handle
                .disconnect(russh::Disconnect::ByApplication, "", "en")
                .await;
        }
    }
}
