//! The backend factory: the only place that knows which runtime and which
//! [`SourceProvider`] serve a [`BackendConfig`]. A new backend is wired here (and
//! in [`backend_from_flags`] for `cmux new`), nowhere else.

use std::sync::Arc;

use anyhow::Result;
use cmux_backend_local::{LocalRuntime, LocalSource};
use cmux_core::workspace::{Lifecycle, SourceProvider};
use cmux_core::SharedRuntime;

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
        });
    }
    if let Some(workspace) = &flags.coder {
        return Ok(BackendConfig::Coder {
            workspace: workspace.clone(),
            src_base: flags.src_base.clone(),
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

fn not_supported(backend: &BackendConfig) -> anyhow::Error {
    match backend {
        BackendConfig::Ssh { .. } => CliError::usage(
            "the SSH backend is not supported yet by this cmux: use --local (the default)",
        ),
        BackendConfig::Coder { .. } => CliError::usage(
            "the Coder backend is not supported yet by this cmux: use --local (the default)",
        ),
        _ => CliError::failure(
            "this workspace was created by a newer cmux (unknown backend kind): upgrade cmux",
        ),
    }
}

/// The runtime a workspace lives in.
pub async fn runtime_for(backend: &BackendConfig, _home: &CmuxHome) -> Result<SharedRuntime> {
    match backend {
        BackendConfig::Local => Ok(Arc::new(LocalRuntime::new()?)),
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
        other => Err(not_supported(other)),
    }
}

/// One line of `cmux doctor`.
#[derive(Clone, Debug)]
pub struct Check {
    /// Passed.
    pub ok: bool,
    /// What was checked (`ssh config`, `connection`...).
    pub what: String,
    /// What was found, or what is wrong and how to fix it.
    pub detail: String,
}

/// Backend-specific checks for `cmux doctor <name>` and `cmux doctor --ssh HOST`
/// (what ssh resolved, the connection, the host's tools...), printed before the
/// generic ones. Local: none (`cmux doctor` checks this machine).
pub async fn backend_checks(backend: &BackendConfig, _home: &CmuxHome) -> Result<Vec<Check>> {
    match backend {
        BackendConfig::Local => Ok(Vec::new()),
        other => Err(not_supported(other)),
    }
}

/// The workspace lifecycle for `backend`, serialized per project by lock files under
/// `$CMUX_HOME/locks`.
pub async fn lifecycle_for(backend: &BackendConfig, home: &CmuxHome) -> Result<Lifecycle> {
    let runtime = runtime_for(backend, home).await?;
    let source = source_for(backend, &runtime, home).await?;
    Ok(Lifecycle::new(runtime, source).with_lock_dir(home.locks_dir()))
}
