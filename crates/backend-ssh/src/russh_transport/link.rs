//! One russh connection: how its byte stream is made (TCP, a `ProxyCommand`'s stdio,
//! or a `direct-tcpip` channel of the `ProxyJump` host), the host-key check, and
//! authentication.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cmux_core::{Error, Result};
use russh::client::{Config, Handle, Handler};
use russh::keys::PublicKeyOrCertificate;
use tokio::io::{AsyncRead, AsyncWrite};

use super::config::HostConfig;
use super::known_hosts::{self, Verdict};
use super::Settings;

/// How many `ProxyJump` hops one connection may take (OpenSSH has no limit; a loop
/// in a config must end somewhere).
const MAX_JUMPS: usize = 8;

/// Keepalive when the config sets no `ServerAliveInterval`: a dead peer is noticed
/// within about a minute, as the OpenSSH path's masters do.
const DEFAULT_KEEPALIVE: Duration = Duration::from_secs(15);

/// A live connection, and what keeps its transport alive.
pub(crate) struct Link {
    /// The session.
    pub(crate) handle: Handle<Client>,
    /// The `ProxyCommand` process (killed with the link).
    _proxy: Option<tokio::process::Child>,
    /// The `ProxyJump` host's connection carrying this one.
    _jump: Option<Arc<Link>>,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link")
            .field("closed", &self.handle.is_closed())
            .finish()
    }
}

impl Link {
    /// True once the session ended (the host went away, keepalives went unanswered).
    pub(crate) fn is_closed(&self) -> bool {
        self.handle.is_closed()
    }
}

/// The host-key check of one connection attempt, and why it refused, if it did.
pub(crate) struct Client {
    files: Vec<PathBuf>,
    name: String,
    accept_new: bool,
    hash_new: bool,
    refusal: Arc<Mutex<Option<String>>>,
}

impl Handler for Client {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> std::result::Result<bool, Self::Error> {
        let PublicKeyOrCertificate::PublicKey { key, .. } = key else {
            self.refuse("the host presented a certificate; cmux's russh transport checks plain host keys only (use CMUX_SSH_TRANSPORT=openssh)".into());
            return Ok(false);
        };
        let fingerprint = known_hosts::fingerprint(key);
        match known_hosts::check(&self.files, std::slice::from_ref(&self.name), key) {
            Verdict::Known => Ok(true),
            Verdict::Unknown if self.accept_new => {
                let Some(file) = self.files.first() else {
                    self.refuse(format!(
                        "{} is not in known_hosts and no known_hosts file is configured",
                        self.name
                    ));
                    return Ok(false);
                };
                if let Err(e) = known_hosts::learn(file, &self.name, key, self.hash_new) {
                    self.refuse(format!(
                        "cannot record the new host key in {}: {e}",
                        file.display()
                    ));
                    return Ok(false);
                }
                tracing::info!(host = %self.name, %fingerprint, file = %file.display(), "recorded a new host key");
                Ok(true)
            }
            Verdict::Unknown => {
                self.refuse(format!(
                    "the host {} is not in {} (its key is {fingerprint}); check the fingerprint, then connect once with ssh or pass --accept-new-host-key (CMUX_SSH_ACCEPT_NEW=1)",
                    self.name,
                    self.files.first().map_or_else(|| "known_hosts".into(), |f| f.display().to_string())
                ));
                Ok(false)
            }
            Verdict::Changed {
                file,
                line,
                recorded_fingerprint,
            } => {
                self.refuse(format!(
                    "THE HOST KEY OF {} HAS CHANGED: it is now {fingerprint}, {} line {line} records {recorded_fingerprint}. Someone may be intercepting the connection. If the host was reinstalled on purpose, remove that line (ssh-keygen -R '{}' -f {}) and connect again",
                    self.name,
                    file.display(),
                    self.name,
                    file.display()
                ));
                Ok(false)
            }
            Verdict::Revoked { file, line } => {
                self.refuse(format!(
                    "the host key of {} ({fingerprint}) is revoked ({} line {line})",
                    self.name,
                    file.display()
                ));
                Ok(false)
            }
        }
    }
}

impl Client {
    fn refuse(&self, why: String) {
        *self.refusal.lock().unwrap_or_else(|e| e.into_inner()) = Some(why);
    }
}

/// Connects to `config`'s host (through its proxy or jump hosts), checks its key and
/// authenticates. `label` names the host in errors.
pub(crate) fn connect<'a>(
    label: &'a str,
    config: &'a HostConfig,
    settings: &'a Settings,
    depth: usize,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Link>> + Send + 'a>> {
    Box::pin(async move {
        let conn_err = |message: String| Error::Connection {
            host: label.to_owned(),
            message,
        };
        if depth > MAX_JUMPS {
            return Err(conn_err(format!(
                "more than {MAX_JUMPS} ProxyJump hops: is there a loop in ~/.ssh/config? ({})",
                cmux_core::error::NOTHING_RAN
            )));
        }
        let timeout = config.connect_timeout.unwrap_or(settings.connect_timeout);
        let mut proxy = None;
        let mut jump = None;
        let stream: Box<dyn TransportBox> = if let Some(command) = &config.proxy_command {
            let (child, stream) = spawn_proxy(command).map_err(|e| {
                conn_err(format!(
                    "cannot start the ProxyCommand `{command}`: {e} ({})",
                    cmux_core::error::NOTHING_RAN
                ))
            })?;
            proxy = Some(child);
            Box::new(stream)
        } else if let Some(jumps) = &config.proxy_jump {
            let (via, rest) = split_last_jump(jumps);
            // Reading config files or running `ssh -G` blocks.
            let (jump_settings, hop, earlier) =
                (settings.clone(), via.to_owned(), rest.map(str::to_owned));
            let hop_config = tokio::task::spawn_blocking(move || {
                jump_settings.resolve_jump(&hop, earlier.as_deref())
            })
            .await
            .map_err(|e| conn_err(format!("resolving the jump host's ssh config failed: {e}")))??;
            let hop = Arc::new(connect(via, &hop_config, settings, depth + 1).await?);
            let channel = hop
                .handle
                .channel_open_direct_tcpip(
                    config.hostname.clone(),
                    u32::from(config.port),
                    "127.0.0.1",
                    0,
                )
                .await
                .map_err(|e| {
                    conn_err(format!(
                        "the jump host {via} could not reach {}:{} ({e}; {})",
                        config.hostname,
                        config.port,
                        cmux_core::error::NOTHING_RAN
                    ))
                })?;
            jump = Some(hop);
            Box::new(channel.into_stream())
        } else {
            let addr = (config.hostname.as_str(), config.port);
            let tcp = tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr))
                .await
                .map_err(|_| {
                    conn_err(format!(
                        "no answer from {} port {} within {}s ({})",
                        config.hostname,
                        config.port,
                        timeout.as_secs(),
                        cmux_core::error::NOTHING_RAN
                    ))
                })?
                .map_err(|e| {
                    conn_err(format!(
                        "cannot connect to {} port {}: {e} ({})",
                        config.hostname,
                        config.port,
                        cmux_core::error::NOTHING_RAN
                    ))
                })?;
            let _ = tcp.set_nodelay(true);
            Box::new(tcp)
        };
        let name = known_hosts::host_name_for(
            config.host_key_alias.as_deref(),
            &config.hostname,
            config.port,
        );
        let mut files = config.user_known_hosts_files.clone();
        files.extend(config.global_known_hosts_files.iter().cloned());
        let refusal = Arc::new(Mutex::new(None));
        let client = Client {
            // The OpenSSH path's policy: `StrictHostKeyChecking=yes` whatever the
            // config says, `accept-new` only when the caller asked.
            accept_new: settings.accept_new_host_key,
            hash_new: config.hash_known_hosts,
            name,
            refusal: refusal.clone(),
            files: files.clone(),
        };
        let russh_config = Arc::new(session_config(config, &files, &client.name));
        let handshake = russh::client::connect_stream(russh_config, stream, client);
        let mut handle = match tokio::time::timeout(timeout, handshake).await {
            Err(_) => {
                return Err(conn_err(format!(
                    "the ssh handshake with {} did not finish within {}s ({})",
                    config.hostname,
                    timeout.as_secs(),
                    cmux_core::error::NOTHING_RAN
                )))
            }
            Ok(Err(e)) => {
                if let Some(why) = refusal.lock().unwrap_or_else(|e| e.into_inner()).take() {
                    return Err(Error::HostKey {
                        host: label.to_owned(),
                        message: why,
                    });
                }
                return Err(conn_err(format!(
                    "the ssh handshake with {} port {} failed: {e} ({})",
                    config.hostname,
                    config.port,
                    cmux_core::error::NOTHING_RAN
                )));
            }
            Ok(Ok(handle)) => handle,
        };
        let auth = super::auth::authenticate(
            &mut handle,
            &config.user,
            config,
            settings.agent_socket.as_deref(),
        );
        match tokio::time::timeout(timeout, auth).await {
            Err(_) => {
                return Err(conn_err(format!(
                    "authentication did not finish within {}s ({})",
                    timeout.as_secs(),
                    cmux_core::error::NOTHING_RAN
                )))
            }
            Ok(Err(message)) => {
                return Err(Error::Authentication {
                    host: label.to_owned(),
                    message,
                })
            }
            Ok(Ok(())) => {}
        }
        Ok(Link {
            handle,
            _proxy: proxy,
            _jump: jump,
        })
    })
}

/// The byte stream an SSH session runs over.
trait TransportBox: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> TransportBox for T {}

/// russh's settings for one connection: keepalives as configured (or
/// [`DEFAULT_KEEPALIVE`]), TCP_NODELAY, and the host key algorithms already on record
/// first, as OpenSSH orders them.
fn session_config(config: &HostConfig, files: &[PathBuf], name: &str) -> Config {
    let mut c = Config {
        nodelay: true,
        keepalive_interval: Some(config.server_alive_interval.unwrap_or(DEFAULT_KEEPALIVE)),
        keepalive_max: config.server_alive_count_max as usize,
        inactivity_timeout: None,
        ..Config::default()
    };
    let known = known_hosts::known_algorithms(files, &[name.to_owned()]);
    if !known.is_empty() {
        let mut order: Vec<russh::keys::Algorithm> = known.clone();
        order.extend(
            c.preferred
                .key
                .iter()
                .filter(|a| !known.contains(a))
                .cloned(),
        );
        c.preferred.key = order.into();
    }
    c
}

/// `A,B,C`: the last hop (`C`, the one next to the target) and the ones before it.
fn split_last_jump(jumps: &str) -> (&str, Option<&str>) {
    match jumps.rsplit_once(',') {
        Some((rest, last)) => (last.trim(), Some(rest.trim())),
        None => (jumps.trim(), None),
    }
}

/// Starts `command` through `sh -c` with its stdin and stdout as the stream; its
/// stderr goes to the log.
fn spawn_proxy(
    command: &str,
) -> std::io::Result<(
    tokio::process::Child,
    impl AsyncRead + AsyncWrite + Unpin + Send,
)> {
    let mut child = tokio::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(command)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
        return Err(std::io::Error::other("the proxy command has no stdio"));
    };
    if let Some(mut stderr) = child.stderr.take() {
        tokio::spawn(async move {
            use tokio::io::AsyncBufReadExt;
            let mut lines = tokio::io::BufReader::new(&mut stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                tracing::info!("ProxyCommand: {}", cmux_core::error::escape_controls(&line));
            }
        });
    }
    Ok((child, tokio::io::join(stdout, stdin)))
}
