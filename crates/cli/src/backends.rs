//! The backend factory: the only place that knows which runtime and which
//! [`SourceProvider`] serve a [`BackendConfig`]. A new backend is wired here (and
//! in [`backend_from_flags`] for `cmux new`), nowhere else.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use cmux_backend_coder::{CheckStatus, CoderOptions, CoderRuntime};
use cmux_backend_local::{LocalRuntime, LocalSource};
use cmux_backend_pipe::{PipeOptions, PipeRuntime, PipeSource};
use cmux_backend_ssh::source::SshSource;
use cmux_backend_ssh::{ConnectionMode, HelperMode, SshOptions, SshRuntime, Transport, WriteVia};
use cmux_core::workspace::{Lifecycle, SourceProvider};
use cmux_core::{RemotePath, SharedRuntime};
use serde::Serialize;

use crate::error::CliError;
use crate::home::CmuxHome;
use crate::registry::BackendConfig;

/// The backend flags of `cmux new` (and `cmux doctor`).
#[derive(Clone, Debug, Default)]
pub struct BackendFlags {
    /// `--ssh HOST`.
    pub ssh: Option<String>,
    /// `--coder WORKSPACE`.
    pub coder: Option<String>,
    /// `--pipe COMMAND`.
    pub pipe: Option<String>,
    /// `--dir DIR` (with `--pipe`).
    pub dir: Option<String>,
    /// `--src-base DIR`.
    pub src_base: Option<String>,
    /// `--accept-new-host-key`.
    pub accept_new_host_key: bool,
}

/// The backend the flags ask for (`--local`, the default, when none).
///
/// An `--ssh` host that `ssh -G` shows behind Coder's ProxyCommand (`coder.dev` after
/// `coder config-ssh`, as Coder's docs tell users to write it) is a Coder workspace:
/// it gets the Coder backend (its host-key policy, auto-start and doctor), exactly as
/// `--coder dev` would, with a note on stderr. Costs one local `ssh -G`.
pub async fn backend_from_flags(flags: &BackendFlags) -> Result<BackendConfig> {
    if let Some(host) = &flags.ssh {
        let config_file = ssh_config_from_env()?;
        let home = home_from_env();
        if let Some(target) = cmux_backend_coder::sshconfig::coder_target_of_host(
            config_file.as_deref(),
            home.as_deref(),
            host,
        )
        .await?
        {
            err!(
                "cmux: note: {host} goes through Coder's ProxyCommand (`coder ssh --stdio`): using it as `--coder {target}` (Coder's host-key policy, auto-start and doctor)"
            );
            return Ok(BackendConfig::Coder {
                workspace: target.to_string(),
                src_base: flags.src_base.clone(),
                config_file,
            });
        }
        return Ok(BackendConfig::Ssh {
            host: host.clone(),
            src_base: flags.src_base.clone(),
            accept_new_host_key: flags.accept_new_host_key,
            config_file,
        });
    }
    if let Some(workspace) = &flags.coder {
        // Refuse a malformed name now rather than at the first command.
        cmux_backend_coder::CoderTarget::parse(workspace)?;
        return Ok(BackendConfig::Coder {
            workspace: workspace.clone(),
            src_base: flags.src_base.clone(),
            config_file: ssh_config_from_env()?,
        });
    }
    if let Some(command) = &flags.pipe {
        if flags.src_base.is_some() || flags.accept_new_host_key {
            return Err(CliError::usage(
                "--src-base and --accept-new-host-key apply to --ssh and --coder workspaces only",
            ));
        }
        // Refuse a malformed command now rather than at the first operation.
        PipeRuntime::new(command.clone(), PipeOptions::default())?;
        // `cmux new` requires --dir (clap); `cmux doctor --pipe` needs none.
        let dir = flags.dir.clone().unwrap_or_else(|| "/".to_owned());
        if !dir.starts_with('/') {
            return Err(CliError::usage(format!(
                "--dir {dir:?}: give the workspace directory at the other end of the pipe as an absolute path"
            )));
        }
        return Ok(BackendConfig::Pipe {
            command: command.clone(),
            dir,
        });
    }
    if flags.src_base.is_some() {
        return Err(CliError::usage(
            "--src-base applies to --ssh and --coder workspaces only",
        ));
    }
    if flags.accept_new_host_key {
        return Err(CliError::usage(
            "--accept-new-host-key applies to --ssh and --coder workspaces only",
        ));
    }
    Ok(BackendConfig::Local)
}

/// The environment variable naming an ssh config file to use instead of
/// `~/.ssh/config` (`ssh -F`). Read by `cmux new --ssh` (and recorded in the
/// workspace, so later commands use the same file) and by `cmux doctor --ssh`.
pub const SSH_CONFIG_ENV: &str = "CMUX_SSH_CONFIG";

/// `$CMUX_SSH_CONFIG`, made absolute (later commands may run from another directory)
/// and checked to exist, or `None` when unset or empty.
fn ssh_config_from_env() -> Result<Option<PathBuf>> {
    let Some(value) = std::env::var_os(SSH_CONFIG_ENV).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let path = PathBuf::from(value);
    let path = if path.is_absolute() {
        path
    } else {
        std::env::current_dir()
            .context("reading the current directory")?
            .join(path)
    };
    if !path.is_file() {
        return Err(CliError::usage(format!(
            "{SSH_CONFIG_ENV}={} is not a file: point it at an ssh config file, or unset it to use ~/.ssh/config",
            path.display()
        )));
    }
    // Recorded in the workspace: the plain path reads better than `proj/../cfg`.
    Ok(Some(std::fs::canonicalize(&path).unwrap_or(path)))
}

/// `CMUX_HOST_HELPER=off` makes SSH and Coder hosts use the shell/SFTP path instead
/// of the host helper (`auto`, the default, uses the helper where it runs).
pub const HOST_HELPER_ENV: &str = "CMUX_HOST_HELPER";

/// `CMUX_HOST_HELPER_DIR=DIR`: helper builds for hosts cmux carries none for, named
/// `cmux-host-<os>-<arch>` (e.g. `cmux-host-linux-aarch64`).
pub const HOST_HELPER_DIR_ENV: &str = "CMUX_HOST_HELPER_DIR";

/// `CMUX_SSH_TRANSPORT=russh|openssh|auto`: which SSH implementation connects
/// (`auto`, the default: the system OpenSSH client when one runs, russh otherwise).
pub const SSH_TRANSPORT_ENV: &str = "CMUX_SSH_TRANSPORT";

/// The SSH transport from the environment.
fn transport_from_env() -> Result<Transport> {
    match std::env::var(SSH_TRANSPORT_ENV).as_deref() {
        Err(_) | Ok("") | Ok("auto") => Ok(Transport::Auto),
        Ok("openssh") => Ok(Transport::OpenSsh),
        Ok("russh") => Ok(Transport::Russh),
        Ok(other) => Err(CliError::usage(format!(
            "{SSH_TRANSPORT_ENV}={other:?}: use `russh` (built in, no ssh needed), `openssh` (the system ssh) or `auto`"
        ))),
    }
}

/// The host helper settings from the environment.
fn helper_mode_from_env() -> Result<HelperMode> {
    match std::env::var(HOST_HELPER_ENV).as_deref() {
        Err(_) | Ok("") | Ok("auto") | Ok("on") => Ok(HelperMode::Auto),
        Ok("off") => Ok(HelperMode::Off),
        Ok(other) => Err(CliError::usage(format!(
            "{HOST_HELPER_ENV}={other:?}: use `off` (shell/SFTP path) or `auto` (the helper where it runs)"
        ))),
    }
}

/// The options of an SSH workspace's runtime: its config file, its host key policy,
/// control sockets under `$CMUX_HOME/ssh` (shared by every cmux process, so later
/// calls attach to the same master with no new handshake), the host helper
/// settings (`CMUX_HOST_HELPER`, `CMUX_HOST_HELPER_DIR`), and a line on stderr when a
/// connection takes long.
fn ssh_options(
    config_file: Option<&PathBuf>,
    accept_new_host_key: bool,
    home: &CmuxHome,
) -> Result<SshOptions> {
    let write_via = match std::env::var("CMUX_SSH_WRITE_VIA").as_deref() {
        Ok("auto") => WriteVia::Auto,
        Ok("exec") => WriteVia::Exec,
        _ => WriteVia::Sftp,
    };
    let mut options = SshOptions::default()
        .accept_new_host_key(accept_new_host_key)
        .control_dir(home.root().join("ssh"))
        .write_via(write_via)
        .helper(helper_mode_from_env()?)
        .transport(transport_from_env()?);
    if let Some(socket) = std::env::var_os("SSH_AUTH_SOCK").filter(|s| !s.is_empty()) {
        options = options.agent_socket(PathBuf::from(socket));
    }
    // Says on stderr when a connection takes over 2 s (one observer per process, so
    // runtimes of one host still share their connections).
    options.on_connect = crate::connecting::observer();
    if let Some(dir) = std::env::var_os(HOST_HELPER_DIR_ENV).filter(|d| !d.is_empty()) {
        options = options.helper_dir(PathBuf::from(dir));
    }
    if let Some(file) = config_file {
        options = options.config_file(file);
    }
    // Under the russh transport, local git reaches the host through this very binary
    // (`cmux __git-relay`), no ssh client needed.
    if let Ok(exe) = std::env::current_exe() {
        options.git_relay = Some(vec![exe.display().to_string(), "__git-relay".to_owned()]);
    }
    Ok(options)
}

/// `$HOME`, when set and not empty: the CLI's home for `~` on this machine and for
/// the ssh config file the Coder CLI writes. The libraries read no environment
/// variable; without it they use the passwd database's home.
fn home_from_env() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// This machine as a runtime, with `~` meaning `$HOME` as users of a shell expect
/// (the passwd home when `HOME` is unset).
fn local_runtime() -> Result<LocalRuntime> {
    let Some(home) = home_from_env() else {
        return Ok(LocalRuntime::new()?);
    };
    let home = home.into_os_string().into_string().map_err(|home| {
        CliError::usage(format!(
            "HOME={home:?} is not UTF-8: set HOME to your home directory's path"
        ))
    })?;
    Ok(LocalRuntime::with_home(home)?)
}

/// The environment variable bounding how long cmux waits for a Coder workspace to
/// start and answer ssh, in seconds (default 600).
pub const CODER_START_TIMEOUT_ENV: &str = "CMUX_CODER_START_TIMEOUT";

/// The options of a Coder workspace's runtime: the SSH options of an SSH workspace
/// (its config file is also the one `coder config-ssh` writes), progress on stderr,
/// the start timeout from `CMUX_CODER_START_TIMEOUT`, the `coder` binary from
/// `CMUX_CODER_BIN` or else `PATH`, and `HOME` for `~/.ssh/config`.
fn coder_options(config_file: Option<&PathBuf>, home: &CmuxHome) -> Result<CoderOptions> {
    // The host key policy for Coder hosts is the Coder backend's own (see its docs).
    let mut options = CoderOptions::default().ssh(ssh_options(config_file, false, home)?);
    if let Some(bin) = std::env::var_os(cmux_backend_coder::CODER_BIN_ENV).filter(|v| !v.is_empty())
    {
        options = options.coder_bin(PathBuf::from(bin));
    }
    if let Some(path) = std::env::var_os("PATH") {
        options = options.search_path(path);
    }
    if let Some(dir) = home_from_env() {
        options = options.home(dir);
    }
    if let Some(value) = std::env::var_os(CODER_START_TIMEOUT_ENV).filter(|v| !v.is_empty()) {
        let secs = value
            .to_str()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .filter(|s| *s > 0)
            .ok_or_else(|| {
                CliError::usage(format!(
                    "{CODER_START_TIMEOUT_ENV}={} is not a number of seconds: give e.g. 900, or unset it for 10 minutes",
                    value.to_string_lossy()
                ))
            })?;
        options = options.start_timeout(std::time::Duration::from_secs(secs));
    }
    Ok(options)
}

fn not_supported(backend: &BackendConfig) -> anyhow::Error {
    match backend {
        BackendConfig::Coder { .. } => CliError::usage(
            "the Coder backend is not supported yet by this cmux: use --local (the default)",
        ),
        _ => CliError::failure(
            "this workspace was created by a newer cmux (unknown backend kind): upgrade cmux",
        ),
    }
}

/// The runtime a workspace lives in.
pub async fn runtime_for(backend: &BackendConfig, home: &CmuxHome) -> Result<SharedRuntime> {
    match backend {
        BackendConfig::Local => Ok(Arc::new(local_runtime()?)),
        BackendConfig::Ssh {
            host,
            accept_new_host_key,
            config_file,
            ..
        } => Ok(Arc::new(SshRuntime::new(
            host.clone(),
            ssh_options(config_file.as_ref(), *accept_new_host_key, home)?,
        )?)),
        BackendConfig::Coder {
            workspace,
            config_file,
            ..
        } => Ok(Arc::new(CoderRuntime::new(
            workspace,
            coder_options(config_file.as_ref(), home)?,
        )?)),
        BackendConfig::Pipe { command, .. } => Ok(Arc::new(PipeRuntime::new(
            command.clone(),
            PipeOptions::default(),
        )?)),
        other => Err(not_supported(other)),
    }
}

/// How a backend gets the project's source into `runtime`.
pub async fn source_for(
    backend: &BackendConfig,
    _runtime: &SharedRuntime,
    home: &CmuxHome,
) -> Result<Arc<dyn SourceProvider>> {
    match backend {
        BackendConfig::Local => Ok(Arc::new(LocalSource::new(home.root()))),
        BackendConfig::Pipe { command, dir } => Ok(Arc::new(PipeSource::new(
            command.clone(),
            RemotePath::new(dir.clone())?,
        ))),
        BackendConfig::Ssh {
            host,
            src_base,
            accept_new_host_key,
            config_file,
        } => {
            // The same host and options share their connections within this process,
            // so this is the runtime's own ControlMaster (the push reuses it).
            let runtime = SshRuntime::new(
                host.clone(),
                ssh_options(config_file.as_ref(), *accept_new_host_key, home)?,
            )?;
            let mut source = SshSource::new(runtime);
            if let Some(dir) = src_base {
                source = source.with_src_base(dir.clone());
            }
            Ok(Arc::new(source))
        }
        BackendConfig::Coder {
            workspace,
            src_base,
            config_file,
        } => {
            // The SSH runtime underneath the Coder one (started and connected); the
            // same host and options share their ControlMaster within this process.
            let coder = CoderRuntime::new(workspace, coder_options(config_file.as_ref(), home)?)?;
            let mut source = SshSource::new(coder.ssh().await?.clone());
            if let Some(dir) = src_base {
                source = source.with_src_base(dir.clone());
            }
            Ok(Arc::new(source))
        }
        other => Err(not_supported(other)),
    }
}

/// The `ssh` program, its options (config file, safety options, the ControlMaster's
/// socket) and the host, for a program that talks to a remote workspace's host itself
/// (`cmux shell`), with the master connected (and a Coder workspace started) first.
pub async fn ssh_words(
    backend: &BackendConfig,
    home: &CmuxHome,
) -> Result<(String, Vec<String>, String)> {
    let ssh = match backend {
        BackendConfig::Ssh {
            host,
            accept_new_host_key,
            config_file,
            ..
        } => {
            let ssh = SshRuntime::new(
                host.clone(),
                ssh_options(config_file.as_ref(), *accept_new_host_key, home)?,
            )?;
            cmux_core::Runtime::ensure_ready(&ssh).await?;
            ssh
        }
        BackendConfig::Coder {
            workspace,
            config_file,
            ..
        } => {
            let coder = CoderRuntime::new(workspace, coder_options(config_file.as_ref(), home)?)?;
            coder.ssh().await?.clone()
        }
        other => return Err(not_supported(other)),
    };
    let mut words = ssh.ssh_command_words();
    if words.is_empty() {
        return Err(CliError::failure("the SSH backend gave no ssh command"));
    }
    let program = words.remove(0);
    Ok((program, words, cmux_core::Runtime::host(&ssh).to_owned()))
}

/// One line of `cmux doctor`.
#[derive(Clone, Debug, Serialize)]
pub struct Check {
    /// Passed.
    pub ok: bool,
    /// What was checked (`ssh config`, `connection`...).
    pub what: String,
    /// What was found, or what is wrong.
    pub detail: String,
    /// How to fix a failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
    /// Structured findings for `--json` (e.g. what `ssh -G` resolved).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<serde_json::Value>,
}

impl Check {
    /// A check without a fix or data.
    pub fn new(ok: bool, what: impl Into<String>, detail: impl Into<String>) -> Check {
        Check {
            ok,
            what: what.into(),
            detail: detail.into(),
            fix: None,
            data: None,
        }
    }
}

/// Backend-specific checks for `cmux doctor <name>` and `cmux doctor --ssh HOST`
/// (what ssh resolved, the connection, the host's tools...), printed before the
/// generic ones. Local: none (`cmux doctor` checks this machine).
pub async fn backend_checks(backend: &BackendConfig, home: &CmuxHome) -> Result<Vec<Check>> {
    match backend {
        BackendConfig::Local => Ok(Vec::new()),
        BackendConfig::Ssh {
            host,
            accept_new_host_key,
            config_file,
            ..
        } => {
            let options = ssh_options(config_file.as_ref(), *accept_new_host_key, home)?;
            let report = cmux_backend_ssh::doctor::doctor(host, &options).await;
            let connected = report.checks.iter().any(|c| c.name == "connection" && c.ok);
            let mut checks = ssh_checks(report, config_file.as_ref());
            if connected {
                let runtime = SshRuntime::new(host.clone(), options)?;
                let mode = runtime.mode().await;
                if let Ok(ConnectionMode::Helper { .. }) = &mode {
                    // Only the shell/SFTP path needs SFTP: a host without it is fine.
                    for check in checks.iter_mut().filter(|c| c.what == "ssh sftp" && !c.ok) {
                        check.ok = true;
                        check.detail = format!(
                            "not available ({}), and not needed: this host uses the host helper",
                            check.detail
                        );
                        check.fix = None;
                    }
                }
                checks.push(helper_check(mode));
            }
            Ok(checks)
        }
        BackendConfig::Coder {
            workspace,
            config_file,
            ..
        } => {
            let options = coder_options(config_file.as_ref(), home)?;
            let report = cmux_backend_coder::doctor(workspace, &options).await;
            let reached = report.checks.iter().all(|c| c.status != CheckStatus::Fail);
            let mut checks: Vec<Check> = report
                .checks
                .into_iter()
                // Not run because an earlier check failed: that failure is the news.
                .filter(|check| check.status != CheckStatus::Skipped)
                .map(|check| {
                    let detail = match check.status {
                        CheckStatus::Warn => format!("warning: {}", check.detail),
                        _ => check.detail,
                    };
                    Check {
                        ok: check.status != CheckStatus::Fail,
                        what: format!("coder {}", check.name.trim_start_matches("coder ")),
                        detail,
                        fix: check.fix,
                        data: None,
                    }
                })
                .collect();
            if reached {
                let coder = CoderRuntime::new(workspace, options)?;
                let mode = match coder.ssh().await {
                    Ok(ssh) => ssh.mode().await,
                    Err(e) => Err(e),
                };
                checks.push(helper_check(mode));
            }
            Ok(checks)
        }
        BackendConfig::Pipe { command, .. } => {
            let runtime = PipeRuntime::new(command.clone(), PipeOptions::default())?;
            let check = match runtime.connection().await {
                Err(e) => {
                    let mut check = Check::new(false, "pipe connection", e.to_string());
                    check.fix = Some(format!(
                        "run `{command}` by hand: its stdin/stdout must reach cmux-host (`cmux host-helper --output FILE` writes it for copying there)"
                    ));
                    check
                }
                Ok(conn) => {
                    let hello = conn.hello().clone();
                    let login = match conn.info().await {
                        Ok(info) => match info.login_env_error {
                            None => format!("login environment: {} variables", info.login_env_vars),
                            Some(e) => format!("commands get the helper's own environment: {e}"),
                        },
                        Err(e) => format!("could not ask the helper about its environment: {e}"),
                    };
                    Check::new(
                        true,
                        "pipe connection",
                        format!(
                            "cmux-host {} (build {}) on {} {} as uid {}, home {}; {login}",
                            hello.version, hello.build, hello.os, hello.arch, hello.uid, hello.home
                        ),
                    )
                }
            };
            runtime.disconnect().await;
            Ok(vec![check])
        }
        other => Err(not_supported(other)),
    }
}

/// How an SSH host is driven, as a `cmux doctor` line: the host helper (and whether
/// commands get the login environment), or the shell/SFTP path and why.
fn helper_check(mode: cmux_core::Result<ConnectionMode>) -> Check {
    match mode {
        Ok(ConnectionMode::Helper {
            version,
            build,
            login_env_error,
        }) => {
            let env = match login_env_error {
                None => "commands get the login environment".to_owned(),
                Some(e) => format!("warning: commands do not get the login environment: {e}"),
            };
            Check::new(
                true,
                "ssh mode",
                format!("host helper cmux-host {version} (build {build}): one round trip per operation; {env}"),
            )
        }
        Ok(ConnectionMode::Fallback { reason }) => Check::new(
            true,
            "ssh mode",
            format!("shell/SFTP path (2-3 round trips per operation): {reason}"),
        ),
        Err(e) => {
            let mut check = Check::new(false, "ssh mode", e.to_string());
            check.fix = Some(format!(
                "set {HOST_HELPER_ENV}=off to use the shell/SFTP path while this is investigated"
            ));
            check
        }
    }
}

/// The SSH doctor's report as `cmux doctor` lines: what `ssh -G` resolved goes into
/// the `config` line (and its `data` for `--json`).
fn ssh_checks(
    report: cmux_backend_ssh::doctor::DoctorReport,
    config: Option<&PathBuf>,
) -> Vec<Check> {
    let mut checks = Vec::new();
    for check in report.checks {
        let mut line = Check {
            ok: check.ok,
            what: format!("ssh {}", check.name),
            detail: check.detail,
            fix: check.fix,
            data: None,
        };
        if check.name == "config" {
            let file =
                config.map_or_else(|| "~/.ssh/config".to_owned(), |f| f.display().to_string());
            if let Some(resolved) = &report.resolved {
                let identities = if resolved.identity_files.is_empty() {
                    "none".to_owned()
                } else {
                    resolved.identity_files.join(", ")
                };
                let proxy = match (&resolved.proxy_jump, &resolved.proxy_command) {
                    (Some(jump), _) => format!("ProxyJump {jump}"),
                    (None, Some(command)) => format!("ProxyCommand {command}"),
                    (None, None) => "none".to_owned(),
                };
                line.detail = format!(
                    "{} (from {file}); identity files: {identities}; proxy: {proxy}",
                    line.detail
                );
                line.data = serde_json::to_value(resolved).ok();
            } else {
                line.detail = format!("{} (from {file})", line.detail);
            }
        }
        checks.push(line);
    }
    checks
}

/// The workspace lifecycle for `backend`, serialized per project by lock files under
/// `$CMUX_HOME/locks`.
pub async fn lifecycle_for(backend: &BackendConfig, home: &CmuxHome) -> Result<Lifecycle> {
    let runtime = runtime_for(backend, home).await?;
    let source = source_for(backend, &runtime, home).await?;
    Ok(Lifecycle::new(runtime, source).with_lock_dir(home.locks_dir()))
}
