//! # cmux-backend-ssh
//!
//! [`SshRuntime`] runs commands and file operations on any SSH host over one
//! multiplexed connection (an OpenSSH ControlMaster driven through the `openssh` crate's
//! native mux). On a host where it can run, every operation goes to the **host
//! helper** (`cmux-host`, see `docs/PROTOCOL.md`) over one channel of that master: one
//! round trip per operation, typed statuses, grep/glob/edit on the host, no limit from
//! sshd's `MaxSessions`. Elsewhere (another system or architecture without a build, a
//! noexec home, [`HelperMode::Off`]) the **shell/SFTP path** runs commands through a
//! bash wrapper on a channel each and files over one SFTP session; it passes the same
//! conformance suite. [`SshRuntime::mode`] says which a host uses and why.
//!
//! ```no_run
//! # async fn demo() -> cmux_core::Result<()> {
//! use cmux_backend_ssh::{SshOptions, SshRuntime};
//! use cmux_core::{ExecRequest, RuntimeExt};
//! let rt = SshRuntime::new("ovh-1", SshOptions::default())?;
//! let out = rt.output(ExecRequest::script("uname -a"), 1 << 20).await?;
//! # Ok(()) }
//! ```
//!
//! ## Layout (one responsibility per module; imports go one way, down this list)
//!
//! - `lib.rs`: [`SshRuntime`], which sends each operation to the helper or to the
//!   shell/SFTP path, and owns the helper path's only retry (below).
//! - `shared`: one host's state in this process (pool, helper slot, fallback state),
//!   shared by every runtime of the same host and options.
//! - `helper/`: starting, installing and checking the host helper on a channel of the
//!   pool's master (`cmux_backend_pipe::HelperConnection` speaks the protocol).
//! - `fallback/`: the shell/SFTP path (`exec` + `wrapper`, `files` + `sftp` +
//!   `pipeline`, `exec_write`).
//! - `pool`: the masters of one host, their channel gates, and opening a channel.
//! - `master`: attaching to or starting one ControlMaster; its liveness.
//! - `budget`: the connection budget shared by every cmux process of the machine.
//! - `control_dir`, `destination`, `diag`, `ssh_g`, `options`: the control directory,
//!   host specs, ssh's diagnostics, `ssh -G`, the options.
//! - `doctor`, `source`: diagnosis of a host, and how a project's commits get there.
//!
//! ## Retries
//!
//! A retry happens only where the request provably did not reach the host: a refused
//! channel open (the host's `MaxSessions`, the master's backlog) is retried for 30 s in
//! `pool`; a helper request none of whose bytes left this process before the channel
//! broke ([`cmux_core::Error::nothing_ran`]) is sent once more on a new connection, in
//! `lib.rs`. Anything else in flight when a connection breaks fails with
//! [`Error::Connection`] (it may have run), and the next operation reconnects.
//!
//! ## Decisions (the shell/SFTP path's details are in `fallback/`)
//!
//! - **Configuration is OpenSSH's**: the host is passed to the system `ssh` as written
//!   (alias, `user@host`, hostname), so `~/.ssh/config`, `Include`, `ProxyJump`,
//!   `ProxyCommand`, keys and the agent behave as in a terminal. A port or user written
//!   with the host becomes ssh's `-p`/`-l`: `host:port`, `user@host:port`,
//!   `[::1]:2222` (a bare `::1` is an address), `ssh://[user@]host[:port]`.
//!   [`SshOptions::config_file`] is `ssh -F`.
//! - **Forced safety options** on every master, placed on the command line so they win
//!   over any config file: `ForwardAgent=no`, `ForwardX11=no`,
//!   `ClearAllForwardings=yes`, `PermitLocalCommand=no`, `BatchMode=yes`,
//!   `StrictHostKeyChecking=yes` (`accept-new` only with
//!   [`SshOptions::accept_new_host_key`]). No local environment variable reaches the
//!   host: with native mux the session request carries no environment at all, so a
//!   `SendEnv` in the user's config has nothing to send (`SetEnv` literals from the
//!   config still apply: they are the user's explicit choice, not local state).
//! - **Control sockets**: `<control dir>/<16 hex of a hash of host+config>-<slot>`.
//!   The control dir is [`SshOptions::control_dir`] (the CLI passes
//!   `$CMUX_HOME/ssh`), created with mode 0700. Without one, or when it would leave a
//!   socket path above 86 bytes (OpenSSH adds a 17-byte temporary suffix and macOS
//!   allows 104), it is `/tmp/cmux-ssh-<uid>`: created 0700, and an existing one is
//!   used only when it is a real directory owned by the user with mode 0700 (never
//!   repaired: what was planted while it was open would stay). Every file cmux opens
//!   there (logs, locks, the backoff file) is opened with `O_NOFOLLOW`, mode 0600.
//!   The crate reads no environment variable. Masters persist
//!   [`SshOptions::control_persist`] idle (10 min by default), so later CLI calls attach
//!   to them with no handshake; an attached socket is checked (a local mux alive check)
//!   once per process, and a dead one is replaced when an operation finds it dead.
//! - **Gating**: at most [`SshOptions::channels_per_connection`] exec channels (8) per
//!   master, plus the SFTP channel and one spare channel for kills: 10, OpenSSH's
//!   default `MaxSessions`. Beyond that, up to [`SshOptions::max_connections`] masters
//!   (slots) per host are opened, then operations queue. Across processes (many `cmux`
//!   invocations share slot 0; starting a master takes a file lock so concurrent
//!   processes start one, not many), a refused channel open is retried with jittered
//!   backoff for up to 30 s: nothing ran on the host when an open is refused, so the
//!   retry is safe.
//! - **Files**: one SFTP session per master, flush interval 0; paths are made
//!   absolute locally with the home directory asked once per connection. Writes: temp
//!   file beside the (symlink-resolved) target, mode of the old file restored, then
//!   `posix-rename`. Recursive removal is one `rm -rf` on the host.
//! - **Round trips per file operation**: the client library awaits each request, but
//!   the server answers in order, so cmux sends the requests that do not depend on an
//!   answer together (polling their futures at once; clones of a file handle share
//!   it). stat = 1; read = 2 (open + stat of the path, then every read of the
//!   expected size plus one that must find the end of file; the close is sent
//!   unawaited); list = 2 up to ~300 entries (opendir, then 4 readdirs); SFTP write
//!   = 3 ((1) lstat of the target + creation of the temp file, (2) the writes + the
//!   mode change, (3) `posix-rename`, sent only after every write answered OK: the
//!   server would run a rename queued behind a failed write and tear the target).
//!   The sweep of stale temp files (once per directory per 10 min) runs beside the
//!   write.
//! - **Writes to a far host, opt-in** ([`WriteVia::Auto`], `CMUX_SSH_WRITE_VIA=auto`
//!   in the CLI; off by default
//!   because the content would appear in the host's process list, readable by other
//!   users of the host: see `exec_write`. When on: shortest SFTP round trip seen
//!   ≥ 10 ms, and the file's mode known from an earlier read, stat or write): one
//!   command, 2 round trips,
//!   whose text carries the content (a `printf` builtin into an exclusively created
//!   temp file, a `find -perm` check that the target is still a regular file of that
//!   mode, `mv`); see `exec_write`. Data on stdin would cost a third round trip
//!   (sshd grants the channel's window only once the command started). At loopback
//!   the SFTP write (~0.5 ms) beats the command (~7 ms: login shell, `find`, `mv`),
//!   hence the threshold. So an agent's edit (read + write) is 2 + 2 round trips far
//!   away. Measured at 50 ms RTT (`cmux-bench`, medians): exec `true` 2.23 RT, stat
//!   1.06, read 4 KiB 2.12, read 1 MiB 2.18, list 100 entries 2.14, write 4 KiB 2.23
//!   with the opt-in (3.2 the default SFTP way), edit 4.35 with the opt-in (~5.3
//!   by default). What is left above whole round trips is the
//!   host's process starts (sshd's fork, the login shell, `find`/`mv` or the
//!   wrapper's bash) or the 1 MiB transfer itself.
//! - **Commands**: the login shell execs a small bash wrapper (`--norc`: the login
//!   shell already read `~/.bashrc`; see `wrapper`) that takes the login environment
//!   (`/etc/profile`, then `~/.bash_profile`, `~/.bash_login` or `~/.profile`, sourced
//!   in a subshell with their output discarded), exports the non-interactive
//!   variables, and runs `bash -c <script>` as a job (`set -m`), so the command is its
//!   own process group. The request's variables travel on stdin ahead of the
//!   command's input (never on a command line: `ps` shows those to every user of the
//!   host); requests without variables and without stdin send nothing on stdin, so
//!   they cost no extra round trip. A timeout or cancel runs `kill -KILL -- -<pgid>`
//!   on the host over a spare channel; the request's timeout and cancellation also
//!   cover the wait for a connection and a free channel (the command then reports
//!   `TimedOut`/`Cancelled` and did not start).
//! - **Markers**: the wrapper draws a 128-bit nonce on the host (`$SRANDOM`, from
//!   `getrandom`, or `/dev/urandom`), writes `\0cmux-start:<nonce>:<pgid>` on stderr
//!   before the command may start, and `\0cmux-status:<nonce>:x<code>` (or
//!   `s<signal>`) as its last act. The command can print but not read its stderr, and
//!   the nonce is in no argument, variable or file: a marker the command prints is its
//!   own output, whatever it says. The status is checked against the channel's exit
//!   code once both streams ended; when a background process keeps them open for
//!   0.5 s after the marker, the marker alone is used.
//! - **Exit status**: the mux protocol carries an exit code but no signal number, and
//!   ssh's own 255 would be ambiguous, so the status comes from the marker (`Exited(n)`
//!   or `Signaled(n)`, told apart by bash's job notice). A command exiting 255 is
//!   `Exited(255)`; a connection lost while it runs is [`Error::Connection`]; a
//!   channel that ends without the status (the host's shell startup files `exit`
//!   before the wrapper runs, bash missing, the wrapper killed) is an
//!   [`Error::Backend`] naming the likely cause, never a success. The mux session
//!   stays open until stdout and stderr are drained (closing it earlier makes the
//!   master drop output it still buffers).
//! - **Reconnects**: one connection budget per host, shared by every operation and
//!   every cmux process through a small file in the control dir
//!   (`<key>-<policy>.backoff`, written under the master's start lock): after a
//!   failed attempt the next one waits 10–12 s, so a down host sees at most 6
//!   attempts a minute however many agents ask; meanwhile operations fail fast with
//!   the last diagnostic and the wait. A master is "dead" only
//!   when its socket is missing or refuses; a busy one (a burst filling its listen
//!   backlog) is waited for, never replaced.
//!
//! ## The russh transport ([`Transport::Russh`])
//!
//! [`SshOptions::transport`] picks the SSH implementation. `Auto` (the default) uses the
//! system OpenSSH client when `ssh -V` runs, and russh otherwise; the CLI maps
//! `CMUX_SSH_TRANSPORT=russh|openssh|auto`. Over russh, cmux makes one TCP connection
//! per host and process (TCP_NODELAY on) and runs the host helper on one session
//! channel of it: no ssh process, no ControlMaster, no SFTP.
//!
//! - **Configuration stays OpenSSH's**: `ssh -G` resolves the host when an ssh client
//!   exists; otherwise cmux's own parser reads `~/.ssh/config` then
//!   `/etc/ssh/ssh_config` ([`SshOptions::config_file`] replaces both, as `ssh -F`).
//!   It supports `Host` (wildcards, `!`), `Match` (`all`, `host`, `originalhost`,
//!   `user`, `localuser`, `final`, `canonical`, negated), `Include` (globs), `HostName`,
//!   `User`, `Port`, `IdentityFile`, `IdentitiesOnly`, `IdentityAgent`, `HostKeyAlias`,
//!   `UserKnownHostsFile`, `GlobalKnownHostsFile`, `StrictHostKeyChecking`,
//!   `HashKnownHosts`, `ProxyCommand`, `ProxyJump`, `ConnectTimeout`,
//!   `ServerAliveInterval` and `ServerAliveCountMax`, with OpenSSH's first-value-wins
//!   rule and its `%` tokens. `Match exec` and the other `Match` criteria are refused with
//!   the file and line (they need OpenSSH); other keywords are ignored.
//!   [`SshOptions::config_source`] forces one source.
//! - **Authentication**: the agent's keys first ([`SshOptions::agent_socket`], which the
//!   CLI fills from `SSH_AUTH_SOCK`; `IdentityAgent` wins), filtered by
//!   `IdentitiesOnly`; then each identity file (default `id_rsa`, `id_ecdsa`,
//!   `id_ecdsa_sk`, `id_ed25519`, `id_ed25519_sk`) that loads without a passphrase.
//!   Nothing prompts: an encrypted key works through the agent only, and a failure lists
//!   every key tried and why (`encrypted: add it to your agent (ssh-add PATH)`).
//!   Security keys (`-sk`) work through the agent only.
//! - **Host keys**: the OpenSSH path's policy. The key must be in the user's or global
//!   known_hosts (hashed `|1|` entries, `[host]:port`, wildcards and `!` patterns,
//!   `HostKeyAlias`, `@revoked`). A changed key is always refused with both fingerprints
//!   and the line to remove; an unknown key only with [`SshOptions::accept_new_host_key`],
//!   and it is then appended as OpenSSH would (hashed under `HashKnownHosts yes`; a new
//!   file is created 0600). Host certificates (`@cert-authority`) are not supported: use
//!   the OpenSSH transport for them.
//! - **Proxies**: `ProxyCommand` runs under `/bin/sh -c` with its stdio as the stream
//!   (Coder's `coder ssh --stdio` included); `ProxyJump` opens a `direct-tcpip` channel
//!   on the jump host's own russh connection (hops in order, at most 8).
//! - **Safety**: no agent forwarding, X11, port forwarding or environment is ever
//!   requested; keepalives every `ServerAliveInterval` (15 s by default), so a dead peer
//!   ends the connection, and what was in flight fails with [`Error::Connection`] (exit
//!   255 in the CLI). A channel open that fails on a connection found dead is retried
//!   once on a new connection (nothing ran).
//! - **Where the helper cannot run** (another system without a build, a noexec home), the
//!   host uses the shell/SFTP path through OpenSSH when an ssh client exists; without one
//!   the operation fails naming the reason and the two ways out.
//! - **Git** (workspace sync, `pull`) over russh: see `source`.
//! - **Reuse across processes**: none. Each process pays a handshake (TCP, key exchange,
//!   authentication: about 5 round trips before the helper starts) where the OpenSSH path
//!   attaches to a ControlMaster that outlives the process; `docs/BENCHMARKS.md` has both.
//!   That is why `Auto` keeps OpenSSH where it exists: russh wins for long-lived
//!   processes (MCP servers, library users) and where no ssh client exists (Windows
//!   without ControlMaster, embedded use), and a local per-user mux that would keep a
//!   russh connection across CLI calls is left for later.
//!
//! ## When the process holding the runtime is killed (shell/SFTP path)
//!
//! If the process that holds an `SshRuntime` dies without unwinding (SIGKILL, the OOM
//! killer, a crashed MCP client taking `cmux mcp` with it), nothing on this machine
//! can stop its commands any more. What remains, as measured against OpenSSH 9.2:
//! - the **master** (a separate `ssh` process) outlives it and serves later cmux
//!   processes; it exits after [`SshOptions::control_persist`] without clients;
//! - the master closes the dead process's channels, and sshd closes their pipes on
//!   the host. A **running command is not signalled**: one that writes on stdout dies
//!   at its next write (SIGPIPE/EPIPE); one that writes nothing, or only on stderr
//!   (sshd keeps draining it), runs on with its background children until it ends by
//!   itself. Nobody holds its process group any more: on the host, its wrapper is
//!   the `bash --norc --noprofile -c set -m ...` process above it (`ps -ef --forest`);
//! - a **write in flight** leaves the target intact (all or nothing) and its private
//!   staging directory, removed by the temporary-file rule of `cmux_core::temp` once
//!   10 minutes old;
//! - a dropped [`cmux_core::Process`] (not a killed process) is different: its group
//!   is killed on the host, as a timeout would.
//!
//! The host helper (helper mode) supervises what it starts and closes this gap; this
//! path stays as the fallback where the helper cannot run.
//!
//! ## What the host needs
//!
//! bash, a POSIX-compatible login shell (sh, bash, dash, zsh, ksh: the command line is
//! POSIX-quoted), the SFTP subsystem, and git for workspaces.
//! [`doctor::doctor`] checks all of it. Every command pays the login shell's startup
//! (e.g. a heavy `~/.bashrc`, which bash reads for commands run by sshd) once.

#![deny(missing_docs)]

mod budget;
mod control_dir;
mod destination;
mod diag;
pub mod doctor;
mod fallback;
mod helper;
mod master;
mod options;
mod pool;
mod russh_transport;
mod shared;
pub mod source;
mod ssh_g;

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use cmux_core::engine::{EditReply, EditSpec, GlobReply, GlobRequest, GrepReply, GrepRequest};
use cmux_core::{
    BoxRead, DirEntry, Error, ExecRequest, Metadata, Process, RemotePath, Result, Runtime,
    SmallFile,
};

pub use control_dir::control_dir_for;
pub use helper::ConnectionMode;
pub use options::{
    ConfigSource, ConnectEvent, ConnectObserver, HelperMode, SshOptions, Transport, WriteVia,
    SLOW_CONNECT,
};

/// An SSH host as a cmux runtime. Cheap to clone; clones (and every `SshRuntime` of
/// the same host and options in this process) share connections and backoff.
#[derive(Clone, Debug)]
pub struct SshRuntime {
    shared: Arc<shared::Shared>,
}

impl SshRuntime {
    /// A runtime for `host`: an ssh config alias, `user@host` or a hostname, with an
    /// optional port (`host:port`, `[::1]:2222`), or `ssh://[user@]host[:port]`. Does
    /// not connect: the first operation or [`Runtime::ensure_ready`] does.
    pub fn new(host: impl Into<String>, options: SshOptions) -> Result<Self> {
        let host = host.into();
        validate_host(&host)?;
        Ok(SshRuntime {
            shared: shared::Shared::get(host, options)?,
        })
    }

    /// The options this runtime was built with.
    pub fn options(&self) -> &SshOptions {
        &self.shared.pool.opts
    }

    /// The control socket of the first master (for `ssh -o ControlPath=...`, e.g. a
    /// `git push` that reuses the connection).
    pub fn control_path(&self) -> PathBuf {
        self.shared.pool.socket_path(0)
    }

    /// The `ssh` argv prefix (`ssh -F <cfg> -o ControlPath=<socket> -o <safety>...`,
    /// and `-p`/`-l` when the host was written with a port or a user) that reuses the
    /// master: for tools such as `GIT_SSH_COMMAND`, with [`SshRuntime::url_host`].
    pub fn ssh_command_words(&self) -> Vec<String> {
        self.shared.pool.client_words()
    }

    /// The host for an `ssh://` URL given to a tool that runs
    /// [`SshRuntime::ssh_command_words`] (git): the host word without the port
    /// (carried by `-p`), IPv6 addresses in brackets.
    pub fn url_host(&self) -> String {
        self.shared.pool.dest.url_host()
    }

    /// Asks every master of this host that this process opened or attached to to exit
    /// (`ssh -O exit`). Later operations reconnect.
    pub async fn disconnect(&self) {
        self.shared.helper.close().await;
        if let Some(russh) = &self.shared.pool.russh {
            russh.close().await;
        }
        self.shared.pool.disconnect_all().await;
    }

    /// The SSH implementation this runtime's helper connection uses
    /// ([`Transport::OpenSsh`] or [`Transport::Russh`]; `Auto` is resolved when the
    /// runtime is made).
    pub fn transport(&self) -> Transport {
        if self.shared.pool.russh.is_some() {
            Transport::Russh
        } else {
            Transport::OpenSsh
        }
    }

    /// How this host is driven: through the host helper, or the shell/SFTP path and
    /// why. Connects (and installs the helper) when needed.
    pub async fn mode(&self) -> Result<ConnectionMode> {
        self.shared.helper.mode(&self.shared.pool).await
    }
}

fn validate_host(host: &str) -> Result<()> {
    if host.is_empty() {
        return Err(Error::invalid(
            "ssh host is empty: give an alias, user@host or a hostname",
        ));
    }
    if host.starts_with('-') || host.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Error::invalid(format!(
            "ssh host {host:?} is not a host name: it may not start with '-' or contain spaces"
        )));
    }
    Ok(())
}

/// Runs `$op` through the host helper, or `$fallback` on the shell/SFTP path. A
/// request that provably never reached the host (the helper's connection broke before
/// any byte of it left this process: [`Error::nothing_ran`]) is sent once more, on a
/// new connection. That is the helper path's only retry, and its only owner.
macro_rules! helper_or_fallback {
    ($self:ident, |$h:ident| $op:expr, $fallback:expr) => {{
        let mut retried = false;
        loop {
            match $self.shared.helper.connection(&$self.shared.pool).await? {
                None => break $fallback.await,
                Some($h) => match $op.await {
                    Err(e) if !retried && e.nothing_ran() => {
                        tracing::debug!(host = %$self.shared.pool.host, "resending a request that never left: {e}");
                        retried = true;
                    }
                    other => break other,
                },
            }
        }
    }};
}

#[async_trait]
impl Runtime for SshRuntime {
    fn host(&self) -> &str {
        &self.shared.pool.host
    }

    fn kind(&self) -> &str {
        "ssh"
    }

    async fn ensure_ready(&self) -> Result<()> {
        if self.shared.pool.russh.is_some() {
            return self
                .shared
                .helper
                .connection(&self.shared.pool)
                .await
                .map(|_| ());
        }
        // A local mux alive check (no round trip to the host): a master that died since
        // the last operation is replaced here rather than by the next operation.
        let conn = self.shared.pool.primary().await?;
        if master::liveness(&conn.session).await == master::Liveness::Dead {
            self.shared.pool.mark_dead(&conn);
            self.shared.pool.primary().await?;
        }
        self.shared
            .helper
            .connection(&self.shared.pool)
            .await
            .map(|_| ())
    }

    async fn exec(&self, req: ExecRequest) -> Result<Process> {
        helper_or_fallback!(
            self,
            |h| h.exec(req.clone()),
            fallback::exec::spawn(&self.shared.fallback, req)
        )
    }

    async fn read_file(&self, path: &RemotePath) -> Result<Vec<u8>> {
        helper_or_fallback!(
            self,
            |h| h.read_file(path),
            fallback::files::read(&self.shared.fallback, path)
        )
    }

    async fn read_file_up_to(&self, path: &RemotePath, max_len: u64) -> Result<SmallFile> {
        helper_or_fallback!(
            self,
            |h| h.read_file_up_to(path, max_len),
            cmux_core::runtime::read_file_up_to_by_stat(self, path, max_len)
        )
    }

    async fn open_read(&self, path: &RemotePath) -> Result<BoxRead> {
        helper_or_fallback!(
            self,
            |h| h.open_read(path),
            fallback::files::open_read(&self.shared.fallback, path)
        )
    }

    async fn write_file(&self, path: &RemotePath, data: &[u8]) -> Result<()> {
        helper_or_fallback!(
            self,
            |h| h.write_file(path, data),
            fallback::files::write(&self.shared.fallback, path, data)
        )
    }

    async fn stat(&self, path: &RemotePath) -> Result<Metadata> {
        helper_or_fallback!(
            self,
            |h| h.stat(path),
            fallback::files::stat(&self.shared.fallback, path)
        )
    }

    async fn read_dir(&self, path: &RemotePath) -> Result<Vec<DirEntry>> {
        helper_or_fallback!(
            self,
            |h| h.read_dir(path),
            fallback::files::read_dir(&self.shared.fallback, path)
        )
    }

    async fn create_dir_all(&self, path: &RemotePath) -> Result<()> {
        helper_or_fallback!(
            self,
            |h| h.create_dir_all(path),
            fallback::files::create_dir_all(&self.shared.fallback, path)
        )
    }

    async fn remove(&self, path: &RemotePath, recursive: bool) -> Result<()> {
        helper_or_fallback!(
            self,
            |h| h.remove(path, recursive),
            fallback::files::remove(&self.shared.fallback, path, recursive)
        )
    }

    async fn rename(&self, from: &RemotePath, to: &RemotePath) -> Result<()> {
        helper_or_fallback!(
            self,
            |h| h.rename(from, to),
            fallback::files::rename(&self.shared.fallback, from, to)
        )
    }

    async fn resolve_path(&self, path: &str) -> Result<RemotePath> {
        helper_or_fallback!(
            self,
            |h| async { h.resolve_path(path) },
            fallback::files::resolve(&self.shared.fallback, path)
        )
    }

    async fn grep(&self, req: &GrepRequest) -> Result<Option<GrepReply>> {
        helper_or_fallback!(self, |h| async { h.grep(req).await.map(Some) }, async {
            Ok(None)
        })
    }

    async fn glob(&self, req: &GlobRequest) -> Result<Option<GlobReply>> {
        helper_or_fallback!(self, |h| async { h.glob(req).await.map(Some) }, async {
            Ok(None)
        })
    }

    async fn edit(&self, path: &RemotePath, spec: &EditSpec) -> Result<Option<EditReply>> {
        helper_or_fallback!(
            self,
            |h| async { h.edit(path, spec).await.map(Some) },
            async { Ok(None) }
        )
    }
}
