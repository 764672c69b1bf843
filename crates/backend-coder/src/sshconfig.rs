//! What OpenSSH resolves for a Coder host (`ssh -G`), and which aliases the Coder
//! section of the ssh config offers.
//!
//! The section `coder config-ssh` writes has changed over the years (see the crate
//! docs): per-workspace `Host coder.<ws>` stanzas (≤ v2.18), the wildcard
//! `Host coder.*` (≥ v2.19), and the suffix form `Host *.coder` + `Match ... !exec`
//! (≈ v2.22). cmux does not parse OpenSSH's grammar: it asks `ssh -G`, which applies
//! `Include`, `Match` and first-value-wins exactly as the real connection will.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use cmux_core::{Error, Result};

/// The markers of the section `coder config-ssh` manages.
pub const START_MARKER: &str = "# ------------START-CODER-----------";
/// See [`START_MARKER`].
pub const END_MARKER: &str = "# ------------END-CODER------------";

/// What `ssh -G <alias>` resolved that matters here.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resolved {
    /// The alias asked about.
    pub alias: String,
    /// `proxycommand`, when one applies.
    pub proxy_command: Option<String>,
    /// `userknownhostsfile`.
    pub known_hosts: String,
}

impl Resolved {
    /// True when the ProxyCommand is Coder's tunnel (`<coder> ... ssh --stdio ...`).
    pub fn is_coder(&self) -> bool {
        self.proxy_command.as_deref().is_some_and(is_coder_proxy)
    }
}

/// True for Coder's ProxyCommand: a `ssh` subcommand followed by `--stdio`, as
/// `coder config-ssh` (and the IDE extensions) write it, whatever the binary's path.
pub fn is_coder_proxy(command: &str) -> bool {
    let words: Vec<&str> = command.split_whitespace().collect();
    words
        .iter()
        .position(|w| *w == "ssh")
        .is_some_and(|i| words[i + 1..].contains(&"--stdio"))
}

/// Runs `ssh -G [-F config] <alias>` (local, no connection).
pub async fn resolve(config: Option<&Path>, alias: &str) -> Result<Resolved> {
    let mut cmd = tokio::process::Command::new("ssh");
    if let Some(cfg) = config {
        cmd.arg("-F").arg(cfg);
    }
    cmd.arg("-G")
        .arg("--")
        .arg(alias)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(30), cmd.output())
        .await
        .map_err(|_| {
            Error::backend(
                "coder",
                format!("`ssh -G {alias}` did not finish in 30 s (a `Match exec` in the ssh config hangs?)"),
            )
        })?
        .map_err(|e| {
            Error::backend(
                "coder",
                format!("cannot run `ssh -G {alias}`: {e}; install OpenSSH's client"),
            )
        })?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(Error::backend(
            "coder",
            format!(
                "`ssh -G {alias}` failed: {:?}; fix the ssh config{}",
                cmux_core::runtime::tail(&stderr, 400),
                config
                    .map(|c| format!(" {}", c.display()))
                    .unwrap_or_default()
            ),
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut resolved = Resolved {
        alias: alias.to_owned(),
        ..Resolved::default()
    };
    for line in text.lines() {
        let (key, value) = line.split_once(' ').unwrap_or((line, ""));
        match key {
            "proxycommand" if value != "none" => resolved.proxy_command = Some(value.to_owned()),
            "userknownhostsfile" => resolved.known_hosts = value.to_owned(),
            _ => {}
        }
    }
    Ok(resolved)
}

/// The Coder workspace behind an SSH host as the user wrote it (`coder.dev`,
/// `dev.coder`, or whatever the Coder section's `Host` patterns allow), when `ssh -G`
/// shows that the host goes through Coder's ProxyCommand (`coder ssh --stdio`); `None`
/// for any other host, including one `ssh -G` refuses (the SSH backend then says why)
/// and `user@host` (Coder's hosts are named by alias).
///
/// Such a host must be used as a Coder workspace (its host-key policy, auto-start and
/// doctor): as a plain SSH host its key cannot be checked (`ssh-keyscan` cannot go
/// through a ProxyCommand) and a stopped workspace is never started.
///
/// `config` is the ssh config file (`ssh -F`), `None` for OpenSSH's default; `home` is
/// the local home whose `.ssh/config` that default is (see [`config_path`]).
pub async fn coder_target_of_host(
    config: Option<&Path>,
    home: Option<&Path>,
    host: &str,
) -> Result<Option<crate::CoderTarget>> {
    if host.contains('@') {
        return Ok(None);
    }
    match resolve(config, host).await {
        Ok(resolved) if resolved.is_coder() => {}
        _ => return Ok(None),
    }
    let patterns = config_path(config, home)
        .and_then(|p| std::fs::read_to_string(p).ok())
        .map(|text| section_hosts(&text))
        .unwrap_or_default();
    let host_part = host_part_of(host, &patterns).ok_or_else(|| {
        Error::backend(
            "coder",
            format!(
                "{host:?} goes through Coder's ProxyCommand, but cmux cannot tell which Coder \
                 workspace it is (it is neither coder.<workspace> nor <workspace>.coder); use \
                 `--coder <workspace>`"
            ),
        )
    })?;
    crate::CoderTarget::parse(&host_part).map(Some)
}

/// `dev` (or `dev.agent`) from `coder.dev` / `dev.coder` / what a section pattern
/// (`<prefix>*`, `*.<suffix>`) allows.
fn host_part_of(host: &str, section_patterns: &[String]) -> Option<String> {
    let mut prefixes = vec!["coder.".to_owned()];
    let mut suffixes = vec![".coder".to_owned()];
    for pattern in section_patterns {
        if let Some(prefix) = pattern.strip_suffix('*').filter(|p| !p.contains('*')) {
            prefixes.push(prefix.to_owned());
        } else if let Some(suffix) = pattern.strip_prefix('*').filter(|s| !s.contains('*')) {
            suffixes.push(suffix.to_owned());
        }
    }
    let stripped = prefixes
        .iter()
        .filter(|p| !p.is_empty())
        .find_map(|p| host.strip_prefix(p.as_str()))
        .or_else(|| {
            suffixes
                .iter()
                .filter(|s| !s.is_empty())
                .find_map(|s| host.strip_suffix(s.as_str()))
        })?;
    (!stripped.is_empty()).then(|| stripped.to_owned())
}

/// The ssh config file `coder config-ssh` writes to: `config` when given, else
/// `.ssh/config` in `home`, else in the user's home from the passwd database (where
/// OpenSSH's client reads it). `None` when there is no such home.
pub fn config_path(config: Option<&Path>, home: Option<&Path>) -> Option<PathBuf> {
    match config {
        Some(c) => Some(c.to_path_buf()),
        None => home
            .map(Path::to_path_buf)
            .or_else(cmux_core::local_user::home_dir)
            .map(|h| h.join(".ssh/config")),
    }
}

/// The `Host` patterns inside the Coder section of `text` (empty without a section).
pub fn section_hosts(text: &str) -> Vec<String> {
    let Some(start) = text.find(START_MARKER) else {
        return Vec::new();
    };
    let end = text[start..]
        .find(END_MARKER)
        .map(|e| start + e)
        .unwrap_or(text.len());
    text[start..end]
        .lines()
        .filter_map(|line| {
            let line = line.trim();
            let (key, rest) = line.split_once(char::is_whitespace)?;
            key.eq_ignore_ascii_case("host").then_some(rest)
        })
        .flat_map(|rest| rest.split_whitespace().map(str::to_owned))
        .collect()
}

/// Aliases to try for `host_part` (`ws` or `ws.agent`), best first: `coder.<x>`, then
/// what the Coder section's patterns allow (`<prefix><x>`, `<x>.<suffix>`), then
/// `<x>.coder`.
pub fn candidates(host_part: &str, section_patterns: &[String]) -> Vec<String> {
    let mut out = vec![format!("coder.{host_part}")];
    for pattern in section_patterns {
        let alias = if let Some(prefix) = pattern.strip_suffix('*') {
            (!prefix.contains('*')).then(|| format!("{prefix}{host_part}"))
        } else if let Some(suffix) = pattern.strip_prefix("*.") {
            (!suffix.contains('*')).then(|| format!("{host_part}.{suffix}"))
        } else {
            None
        };
        if let Some(alias) = alias {
            if !out.contains(&alias) {
                out.push(alias);
            }
        }
    }
    let suffix_form = format!("{host_part}.coder");
    if !out.contains(&suffix_form) {
        out.push(suffix_form);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_coder_proxy_commands() {
        assert!(is_coder_proxy(
            "/usr/local/bin/coder --global-config /home/u/.config/coderv2 ssh --stdio --ssh-host-prefix coder. %h"
        ));
        assert!(is_coder_proxy(
            "\"C:\\Program Files\\Coder\\bin\\coder.exe\" --global-config C:\\x ssh --stdio dev"
        ));
        assert!(!is_coder_proxy("ssh -W %h:%p jump"));
        assert!(!is_coder_proxy("nc %h %p"));
    }

    #[test]
    fn workspace_names_from_host_names() {
        let section = vec!["coder.*".to_owned(), "*.corp".to_owned()];
        assert_eq!(host_part_of("coder.dev", &[]).as_deref(), Some("dev"));
        assert_eq!(
            host_part_of("coder.dev.main", &[]).as_deref(),
            Some("dev.main")
        );
        assert_eq!(host_part_of("dev.coder", &[]).as_deref(), Some("dev"));
        assert_eq!(host_part_of("dev.corp", &section).as_deref(), Some("dev"));
        assert_eq!(host_part_of("dev.corp", &[]), None);
        assert_eq!(host_part_of("coder.", &[]), None);
    }

    #[test]
    fn candidates_follow_the_section() {
        let text = "Host a\n\n# ------------START-CODER-----------\n#\nHost coder.*\n\tX y\n\nHost *.corp\n\nMatch host *.corp !exec \"c\"\n# ------------END-CODER------------\nHost after.*\n";
        let hosts = section_hosts(text);
        assert_eq!(hosts, vec!["coder.*".to_owned(), "*.corp".to_owned()]);
        assert_eq!(
            candidates("dev", &hosts),
            vec!["coder.dev", "dev.corp", "dev.coder"]
        );
        assert_eq!(candidates("dev.main", &[])[0], "coder.dev.main");
    }
}
