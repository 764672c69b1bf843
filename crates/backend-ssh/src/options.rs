//! [`SshOptions`]: how [`crate::SshRuntime`] connects, and the types its fields use.
//! Configuration always comes in through these options: the crate reads no
//! environment variable (the CLI maps its variables to them).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use cmux_core::RemotePath;

/// Whether the SSH backend uses the host helper.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HelperMode {
    /// Use the helper where it can run (Linux x86_64 hosts, or builds from
    /// [`crate::SshOptions::helper_dir`]); the shell/SFTP path elsewhere.
    #[default]
    Auto,
    /// Always the shell/SFTP path.
    Off,
}

/// Which SSH implementation carries a host's connection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Transport {
    /// OpenSSH when a usable `ssh` client is on `PATH` (it answers `ssh -V`), russh
    /// otherwise.
    #[default]
    Auto,
    /// The system OpenSSH client through a ControlMaster (helper or shell/SFTP path).
    OpenSsh,
    /// russh, in this process: no ssh binary needed. Hosts where the helper cannot
    /// run use the OpenSSH path when a client exists, and fail with a clear error
    /// otherwise.
    Russh,
}

/// Where the russh transport reads a host's configuration.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ConfigSource {
    /// `ssh -G` when an `ssh` client exists, cmux's own parser otherwise.
    #[default]
    Auto,
    /// Always `ssh -G` (an error without an ssh client).
    SshG,
    /// Always cmux's own ssh_config parser (see the crate docs for what it supports).
    Builtin,
}

/// How [`crate::SshRuntime`] connects. `Default` suits a user's own hosts.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct SshOptions {
    /// An ssh config file used instead of `~/.ssh/config` (`ssh -F`).
    pub config_file: Option<PathBuf>,
    /// Accept and remember an unknown host key (`StrictHostKeyChecking=accept-new`).
    /// A changed key is refused whatever this says.
    pub accept_new_host_key: bool,
    /// Where control sockets live (created 0700). Default: `/tmp/cmux-ssh-<uid>`,
    /// checked to be the user's own and private (see the crate docs).
    pub control_dir: Option<PathBuf>,
    /// How long an idle master stays up for later calls.
    pub control_persist: Duration,
    /// `ConnectTimeout` for new masters.
    pub connect_timeout: Duration,
    /// Exec channels per master (OpenSSH's `MaxSessions` is 10 by default: keep two
    /// for SFTP and kills).
    pub channels_per_connection: usize,
    /// Masters per host this process may open when channels run out.
    pub max_connections: usize,
    /// Whether to use the host helper (see the crate docs).
    pub helper: HelperMode,
    /// A local directory with helper builds for other hosts, named
    /// `cmux-host-<os>-<arch>` (e.g. `cmux-host-linux-aarch64`).
    pub helper_dir: Option<PathBuf>,
    /// Where helpers are installed on the host (default
    /// `${XDG_CACHE_HOME:-~/.cache}/cmux/host`).
    pub helper_install_dir: Option<RemotePath>,
    /// Told about connection attempts that take long (see [`ConnectEvent`]), so a
    /// front end can say why it waits. Compared and hashed by identity.
    pub on_connect: ConnectObserver,
    /// How file writes travel (default [`WriteVia::Sftp`]; the CLI maps
    /// `CMUX_SSH_WRITE_VIA` to it).
    pub write_via: WriteVia,
    /// Which SSH implementation connects (the CLI maps `CMUX_SSH_TRANSPORT`).
    pub transport: Transport,
    /// Where the russh transport reads ssh_config.
    pub config_source: ConfigSource,
    /// The ssh-agent's socket for the russh transport (the CLI passes
    /// `$SSH_AUTH_SOCK`; `IdentityAgent` in the config wins). The OpenSSH path's
    /// `ssh` finds its agent itself.
    pub agent_socket: Option<PathBuf>,
    /// The argv prefix of a local program that carries git's ssh transport into this
    /// process, for `git push`/`fetch` of workspaces over the russh transport when no
    /// ssh client exists (the CLI passes its own `cmux __git-relay`; see `source`).
    pub git_relay: Option<Vec<String>>,
}

/// How [`crate::SshRuntime`] writes files.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum WriteVia {
    /// Always SFTP (3 round trips; the content travels only inside the SFTP stream).
    #[default]
    Sftp,
    /// One command (2 round trips) when the host is far (a round trip of 10 ms or
    /// more) and the file's mode is known; its content then appears in the host's
    /// process list for an instant: for single-user hosts only.
    Auto,
    /// One command whenever the file's mode is known (for benchmarks and tests).
    Exec,
}

/// What [`SshOptions::on_connect`] is told.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectEvent {
    /// A connection attempt to `host` has been running for [`SLOW_CONNECT`] and goes on
    /// (a slow network, a ProxyJump, a host that is starting).
    Slow {
        /// The host as the user wrote it.
        host: String,
        /// How long it has waited so far.
        waited: Duration,
    },
    /// A connection attempt that was [`ConnectEvent::Slow`] ended, after `took`.
    Done {
        /// The host as the user wrote it.
        host: String,
        /// How long the attempt took in all.
        took: Duration,
        /// Whether it connected.
        connected: bool,
    },
}

/// After how long a connection attempt is reported as [`ConnectEvent::Slow`].
pub const SLOW_CONNECT: Duration = Duration::from_secs(2);

/// A callback for [`ConnectEvent`]s (none by default). Two observers are equal when
/// they are the same callback, so options with different observers do not share
/// connections' state.
#[derive(Clone, Default)]
pub struct ConnectObserver(Option<Arc<dyn Fn(ConnectEvent) + Send + Sync>>);

impl ConnectObserver {
    /// An observer calling `f` (from a tokio task: keep it short).
    pub fn new(f: impl Fn(ConnectEvent) + Send + Sync + 'static) -> Self {
        ConnectObserver(Some(Arc::new(f)))
    }

    pub(crate) fn notify(&self, event: ConnectEvent) {
        if let Some(f) = &self.0 {
            f(event);
        }
    }

    fn id(&self) -> usize {
        self.0
            .as_ref()
            .map_or(0, |f| Arc::as_ptr(f) as *const () as usize)
    }
}

impl std::fmt::Debug for ConnectObserver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "ConnectObserver(set)"
        } else {
            "ConnectObserver(none)"
        })
    }
}

impl PartialEq for ConnectObserver {
    fn eq(&self, other: &Self) -> bool {
        self.id() == other.id()
    }
}

impl Eq for ConnectObserver {}

impl std::hash::Hash for ConnectObserver {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.id().hash(state);
    }
}

impl Default for SshOptions {
    fn default() -> Self {
        SshOptions {
            config_file: None,
            accept_new_host_key: false,
            control_dir: None,
            control_persist: Duration::from_secs(600),
            connect_timeout: Duration::from_secs(15),
            channels_per_connection: 8,
            max_connections: 4,
            helper: HelperMode::Auto,
            helper_dir: None,
            helper_install_dir: None,
            on_connect: ConnectObserver::default(),
            write_via: WriteVia::Sftp,
            transport: Transport::Auto,
            config_source: ConfigSource::Auto,
            agent_socket: None,
            git_relay: None,
        }
    }
}

impl SshOptions {
    /// Uses `path` as the ssh config file (`ssh -F`).
    pub fn config_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.config_file = Some(path.into());
        self
    }

    /// Accepts unknown host keys (never changed ones).
    pub fn accept_new_host_key(mut self, yes: bool) -> Self {
        self.accept_new_host_key = yes;
        self
    }

    /// Keeps control sockets in `dir`.
    pub fn control_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.control_dir = Some(dir.into());
        self
    }

    /// Uses the host helper or not.
    pub fn helper(mut self, mode: HelperMode) -> Self {
        self.helper = mode;
        self
    }

    /// Takes helper builds for other hosts from `dir` (`cmux-host-<os>-<arch>`).
    pub fn helper_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.helper_dir = Some(dir.into());
        self
    }

    /// Installs helpers under `dir` on the host.
    pub fn helper_install_dir(mut self, dir: RemotePath) -> Self {
        self.helper_install_dir = Some(dir);
        self
    }

    /// Sets how file writes travel.
    pub fn write_via(mut self, via: WriteVia) -> Self {
        self.write_via = via;
        self
    }

    /// Connects with `transport`.
    pub fn transport(mut self, transport: Transport) -> Self {
        self.transport = transport;
        self
    }

    /// Reads ssh_config for the russh transport from `source`.
    pub fn config_source(mut self, source: ConfigSource) -> Self {
        self.config_source = source;
        self
    }

    /// Uses the ssh-agent at `socket` (russh transport).
    pub fn agent_socket(mut self, socket: impl Into<PathBuf>) -> Self {
        self.agent_socket = Some(socket.into());
        self
    }

    /// Calls `f` about connection attempts that take over [`SLOW_CONNECT`].
    pub fn on_connect(mut self, f: impl Fn(ConnectEvent) + Send + Sync + 'static) -> Self {
        self.on_connect = ConnectObserver::new(f);
        self
    }
}
