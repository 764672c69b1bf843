//! The backend factory: the only place that knows which runtime and which
//! [`SourceProvider`] serve a [`BackendConfig`]. A new backend is wired here (and
//! in [`backend_from_flags`] for `cmux new`), nowhere else.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use cmux_backend_coder::{CheckStatus, CoderOptions, CoderRuntime};
use cmux_backend_local::{LocalRuntime, LocalSource};
use cmux_backend_ssh::source::SshSource;
use cmux_backend_ssh::{SshOptions, SshRuntime, WriteVia};
use cmux_core::workspace::{Lifecycle, SourceProvider};
use cmux_core::SharedRuntime;
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
    /// `--src-base DIR`.
    pub src_base: Option<String>,
    /// `--accept-new-host-key`.
    pub accept_new_host_key: bool,
}

/// The backend the flags ask for (`--local`, the default, when none).
pub fn backend_from_flags(flags: &BackendFlags) -> Result<BackendConfig> {
    if let Some(host) = &flags.ssh {
        return Ok(BackendConfig::Ssh {
            host: host.clone(),
            src_base: flags.src_base.clone(),
            accept_new_host_key: flags.accept_new_host_key,
            config_file: ssh_config_from_env()?,
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

/// The options of an SSH workspace's runtime: its config file, its host key policy,
/// and control sockets under `$CMUX_HOME/ssh` (shared by every cmux process, so later
/// calls attach to the same master with no new handshake).
fn ssh_options(
    config_file: Option<&PathBuf>,
    accept_new_host_key: bool,
    home: &CmuxHome,
) -> SshOptions {
    let write_via = match std::env::var("CMUX_SSH_WRITE_VIA").as_deref() {
        Ok("auto") => WriteVia::Auto,
        Ok("exec") => WriteVia::Exec,
        _ => WriteVia::Sftp,
    };
    let mut options = SshOptions::default()
        .accept_new_host_key(accept_new_host_key)
        .control_dir(home.root().join("ssh"))
        .write_via(write_via);
    if let Some(file) = config_file {
        options = options.config_file(file);
    }
    options
}

/// The environment variable bounding how long cmux waits for a Coder workspace to
/// start and answer ssh, in seconds (default 600).
pub const CODER_START_TIMEOUT_ENV: &str = "CMUX_CODER_START_TIMEOUT";

/// The options of a Coder workspace's runtime: the SSH options of an SSH workspace
/// (its config file is also the one `coder config-ssh` writes), progress on stderr,
/// and the start timeout from `CMUX_CODER_START_TIMEOUT`.
fn coder_options(config_file: Option<&PathBuf>, home: &CmuxHome) -> Result<CoderOptions> {
    // The host key policy for Coder hosts is the Coder backend's own (see its docs).
    let mut options = CoderOptions::default().ssh(ssh_options(config_file, false, home));
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
        BackendConfig::Local => Ok(Arc::new(LocalRuntime::new()?)),
        BackendConfig::Ssh {
            host,
            accept_new_host_key,
            config_file,
            ..
        } => Ok(Arc::new(SshRuntime::new(
            host.clone(),
            ssh_options(config_file.as_ref(), *accept_new_host_key, home),
        )?)),
        BackendConfig::Coder {
            workspace,
            config_file,
            ..
        } => Ok(Arc::new(CoderRuntime::new(
            workspace,
            coder_options(config_file.as_ref(), home)?,
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
                ssh_options(config_file.as_ref(), *accept_new_host_key, home),
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
            let options = ssh_options(config_file.as_ref(), *accept_new_host_key, home);
            let report = cmux_backend_ssh::doctor::doctor(host, &options).await;
            Ok(ssh_checks(report, config_file.as_ref()))
        }
        BackendConfig::Coder {
            workspace,
            config_file,
            ..
        } => {
            let options = coder_options(config_file.as_ref(), home)?;
            let report = cmux_backend_coder::doctor(workspace, &options).await;
            Ok(report
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
                .collect())
        }
        other => Err(not_supported(other)),
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
