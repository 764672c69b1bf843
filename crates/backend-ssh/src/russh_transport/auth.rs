//! Public-key authentication as OpenSSH does it, without prompts: the agent's keys
//! first, then the identity files that load without a passphrase. An encrypted key is
//! used only through the agent (`ssh-add` it); a failure lists what was tried.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use russh::client::{AuthResult, Handle, Handler};
use russh::keys::agent::client::AgentClient;
use russh::keys::agent::AgentIdentity;
use russh::keys::{HashAlg, PrivateKeyWithHashAlg, PublicKey};

use super::config::HostConfig;

/// Where the agent is, after `IdentityAgent` and the caller's default.
pub(crate) fn agent_socket(config: &HostConfig, default: Option<&Path>) -> Option<PathBuf> {
    match config.identity_agent.as_deref() {
        Some("none") => None,
        Some("SSH_AUTH_SOCK") | None => default.map(Path::to_path_buf),
        Some(path) => Some(PathBuf::from(path)),
    }
}

/// What was tried, for the error message.
#[derive(Default)]
struct Tried {
    lines: Vec<String>,
}

impl Tried {
    fn note(&mut self, what: String) {
        self.lines.push(what);
    }
}

/// Authenticates `user` on `handle`: `Ok(())`, or the message of an
/// [`cmux_core::Error::Authentication`] naming every key tried and the next step.
pub(crate) async fn authenticate<H: Handler>(
    handle: &mut Handle<H>,
    user: &str,
    config: &HostConfig,
    agent_default: Option<&Path>,
) -> Result<(), String> {
    let mut tried = Tried::default();
    let file_keys = public_keys_of_files(&config.identity_files);
    let mut agent_keys_used: Vec<PublicKey> = Vec::new();
    if let Some(socket) = agent_socket(config, agent_default) {
        match AgentClient::connect_uds(&socket).await {
            Err(e) => tried.note(format!("agent at {}: unreachable ({e})", socket.display())),
            Ok(mut agent) => match agent.request_identities().await {
                Err(e) => tried.note(format!("agent at {}: no key list ({e})", socket.display())),
                Ok(identities) => {
                    let keys: Vec<PublicKey> = identities
                        .into_iter()
                        .filter_map(|id| match id {
                            AgentIdentity::PublicKey { key, .. } => Some(key),
                            AgentIdentity::Certificate { .. } => None,
                        })
                        .filter(|k| {
                            !config.identities_only
                                || file_keys.iter().any(|(_, f)| f.key_data() == k.key_data())
                        })
                        .collect();
                    if keys.is_empty() {
                        tried.note(format!("agent at {}: no usable key", socket.display()));
                    }
                    for key in keys {
                        let hash = rsa_hash(handle, &key).await;
                        let fp = key.fingerprint(HashAlg::Sha256);
                        match handle
                            .authenticate_publickey_with(user, key.clone(), hash, &mut agent)
                            .await
                        {
                            Ok(AuthResult::Success) => return Ok(()),
                            Ok(AuthResult::Failure { .. }) => {
                                tried.note(format!("agent key {fp}: refused by the host"));
                            }
                            Err(e) => tried.note(format!("agent key {fp}: the agent failed ({e})")),
                        }
                        agent_keys_used.push(key);
                    }
                }
            },
        }
    } else {
        tried.note("no agent (SSH_AUTH_SOCK is not set, or IdentityAgent none)".into());
    }
    for path in &config.identity_files {
        if !path.exists() {
            continue;
        }
        let shown = path.display();
        if file_keys
            .iter()
            .any(|(p, k)| p == path && agent_keys_used.iter().any(|u| u.key_data() == k.key_data()))
        {
            continue;
        }
        let key = match russh::keys::load_secret_key(path, None) {
            Ok(key) => key,
            Err(russh::keys::Error::KeyIsEncrypted) => {
                tried.note(format!(
                    "{shown}: encrypted; cmux never asks for a passphrase: add it to your agent (ssh-add {shown})"
                ));
                continue;
            }
            Err(e) => {
                tried.note(format!(
                    "{shown}: not usable ({e}); security keys (-sk) work through the agent only"
                ));
                continue;
            }
        };
        let public = key.public_key().clone();
        let hash = rsa_hash(handle, &public).await;
        let with_hash = PrivateKeyWithHashAlg::new(Arc::new(key), hash);
        match handle.authenticate_publickey(user, with_hash).await {
            Ok(AuthResult::Success) => return Ok(()),
            Ok(AuthResult::Failure { .. }) => tried.note(format!("{shown}: refused by the host")),
            Err(e) => tried.note(format!("{shown}: {e}")),
        }
    }
    if config.identity_files.iter().all(|p| !p.exists()) {
        tried.note(format!(
            "no identity file exists ({})",
            config
                .identity_files
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    Err(format!(
        "the host refused every key for user {user:?}; tried: {}. Check that the key is in the host's ~/.ssh/authorized_keys, or set IdentityFile in ~/.ssh/config",
        tried.lines.join("; ")
    ))
}

/// The public half of each identity file: from `PATH.pub`, or from the private key
/// when it loads without a passphrase (to match agent keys under `IdentitiesOnly`).
fn public_keys_of_files(files: &[PathBuf]) -> Vec<(PathBuf, PublicKey)> {
    files
        .iter()
        .filter_map(|path| {
            let mut pub_path = path.clone().into_os_string();
            pub_path.push(".pub");
            let public = russh::keys::load_public_key(PathBuf::from(pub_path))
                .ok()
                .or_else(|| {
                    russh::keys::load_secret_key(path, None)
                        .ok()
                        .map(|k| k.public_key().clone())
                })?;
            Some((path.clone(), public))
        })
        .collect()
}

/// The signature hash an RSA key uses with this host (SHA-2 where the host says it
/// takes it); `None` for other keys.
async fn rsa_hash<H: Handler>(handle: &Handle<H>, key: &PublicKey) -> Option<HashAlg> {
    if !key.algorithm().is_rsa() {
        return None;
    }
    handle
        .best_supported_rsa_hash()
        .await
        .ok()
        .flatten()
        .flatten()
}
