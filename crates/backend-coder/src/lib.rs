//! # cmux-backend-coder
//!
//! [`CoderRuntime`] puts cmux workspaces in a Coder workspace the user already has:
//! the `coder` CLI gets the workspace running and reachable, then every operation is
//! the SSH backend's ([`cmux_backend_ssh::SshRuntime`]) on host `coder.<name>` (or
//! `coder.<name>.<agent>` for `name.agent`). Many cmux workspaces share one Coder
//! workspace (each is a git worktree there): cmux never creates Coder workspaces.
//!
//! ```no_run
//! # async fn demo() -> cmux_core::Result<()> {
//! use cmux_backend_coder::{CoderOptions, CoderRuntime};
//! use cmux_core::{ExecRequest, RuntimeExt};
//! let rt = CoderRuntime::new("my-ws", CoderOptions::default())?;
//! let out = rt.output(ExecRequest::script("uname -a"), 1 << 20).await?;
//! # Ok(()) }
//! ```
//!
//! ## What the first operation does
//!
//! 1. **CLI**: `coder` from [`CoderOptions::coder_bin`], else found in
//!    [`CoderOptions::search_path`] ([`DEFAULT_SEARCH_PATH`] unless set). Missing: an
//!    error with the install command. This crate reads no environment variable: the
//!    cmux CLI maps `$CMUX_CODER_BIN`, `$PATH` and `$HOME` to these options.
//! 2. **ssh config** (local, `ssh -G`, with the same `-F` file as the SSH runtime):
//!    does `coder.<name>` resolve to Coder's ProxyCommand (`<coder> ... ssh --stdio`)?
//!    `ssh -G` applies `Include`, `Match exec` and first-value-wins exactly as the
//!    connection will, so this works with every block Coder has written: the
//!    per-workspace stanzas (≤ v2.18), the wildcard `Host coder.*` (≥ v2.19), and the
//!    suffix form `Host *.coder` + `Match` (≈ v2.22; the alias is then `<name>.coder`,
//!    or whatever prefix/suffix the section's `Host` lines show). When nothing
//!    resolves, cmux runs `coder config-ssh --yes --use-previous-options`
//!    (`--use-previous-options` keeps the `-o` options the user gave before: `--yes`
//!    alone would drop them) and checks again.
//! 3. **Warm path**: when the SSH runtime's ControlMaster for that alias is alive
//!    (`ssh -O check`, local), the workspace is running (Coder closes the tunnel when
//!    a workspace stops), so a CLI call on a warm workspace makes no Coder API call.
//! 4. **Status** from `coder list --search "owner:me name:<name>" -o json` (exact name
//!    match done here; empty output means no workspace): `running` goes on;
//!    `stopped`/`canceled` → `coder start <name> -y` (its build log goes to the
//!    [`Progress`] callback, stderr by default); `starting`/`pending` → wait;
//!    `stopping`/`canceling` → wait until stopped, then start; `failed`, `deleted`,
//!    missing → an error naming the workspace and the fix. Not logged in or
//!    deployment unreachable → a one-line error with `coder login <url>` or the
//!    network hint. All bounded by [`CoderOptions::start_timeout`] (10 minutes).
//! 5. **Connect**, retrying until the agent answers ssh after a start.
//!
//! A workspace that stops later is started again: an operation that fails with a
//! connection error re-checks the status, starts the workspace if it is not running,
//! waits for ssh, and is retried once (a connection error means the operation did not
//! reach the host). Recoveries are serialised so concurrent agents trigger one start.
//!
//! ## Host keys
//!
//! Coder's block sets `StrictHostKeyChecking=no` and `UserKnownHostsFile=/dev/null`
//! for its hosts, because a workspace's host key changes on every rebuild. cmux's SSH
//! backend forces `StrictHostKeyChecking=yes` on the command line (which wins over the
//! config), which would refuse every Coder host. For Coder hosts cmux uses
//! `StrictHostKeyChecking=accept-new` instead, and only once `ssh -G` has shown that
//! the host's ProxyCommand is Coder's `ssh --stdio` tunnel. Why this is safe: that
//! tunnel is authenticated by Coder itself — the CLI reaches the deployment over TLS
//! with the user's session token, and the deployment routes it to that workspace's
//! agent over Coder's own encrypted network — so the SSH host key adds no
//! authentication of its own. With Coder's `UserKnownHostsFile=/dev/null` nothing is
//! ever remembered, so a rebuilt workspace is accepted. If the user's own config
//! points these hosts at a real known_hosts file (an earlier `Host` block wins in
//! OpenSSH), `accept-new` still refuses a *changed* key: the user opted into
//! checking, and the error says which line to remove. A `coder.<name>` host that does
//! not go through Coder's ProxyCommand is never contacted.
//!
//! Every other safety rule of the SSH backend (no agent/X11/port forwarding,
//! `BatchMode`, process-group kills, channel gating) holds unchanged. The SSH
//! `ConnectTimeout` is raised to at least 60 s for Coder hosts: through a
//! ProxyCommand it bounds the banner exchange, and `coder ssh --stdio` takes seconds to
//! set up its tunnel.
//!
//! ## Diagnostics
//!
//! [`doctor()`] checks the CLI, the login, the ssh config block, the workspace status
//! and ssh (bash and git on the workspace), read-only, with a fix per failure.

#![deny(missing_docs)]

mod cli;
pub mod doctor;
mod runtime;
pub mod sshconfig;
mod status;
mod target;

pub use cli::{CoderCli, Login, CODER_BIN_ENV, DEFAULT_SEARCH_PATH};
pub use doctor::{doctor, Check, CheckStatus, DoctorReport};
pub use runtime::{CoderOptions, CoderRuntime, Progress};
pub use status::{Workspace, WorkspaceStatus};
pub use target::CoderTarget;
