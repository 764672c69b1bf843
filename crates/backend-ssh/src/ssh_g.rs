//! What OpenSSH resolved for a host (`ssh -G`), for diagnostics and for probing
//! whether a host that was down accepts connections again.

use serde::Serialize;

/// What OpenSSH resolved for the host (`ssh -G`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Resolved {
    /// The real host name or address.
    pub hostname: String,
    /// The login user.
    pub user: String,
    /// The port.
    pub port: String,
    /// Identity files ssh will try (those that exist or not).
    pub identity_files: Vec<String>,
    /// `ProxyJump`, when set.
    pub proxy_jump: Option<String>,
    /// `ProxyCommand`, when set.
    pub proxy_command: Option<String>,
}

/// Parses `ssh -G` output.
pub fn parse_ssh_g(text: &str) -> Resolved {
    let mut r = Resolved::default();
    for line in text.lines() {
        let Some((key, value)) = line.split_once(' ') else {
            continue;
        };
        let value = value.trim().to_owned();
        match key {
            "hostname" => r.hostname = value,
            "user" => r.user = value,
            "port" => r.port = value,
            "identityfile" => r.identity_files.push(value),
            "proxyjump" if value != "none" => r.proxy_jump = Some(value),
            "proxycommand" if value != "none" => r.proxy_command = Some(value),
            _ => {}
        }
    }
    r
}
