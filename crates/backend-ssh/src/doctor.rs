//! `cmux doctor --ssh HOST`: what ssh resolved, whether the connection works, and
//! whether the host has what cmux needs (bash, git, the SFTP subsystem), each failure
//! with its fix.

use cmux_core::{Error, ExecRequest, ExitStatus, Runtime, RuntimeExt};
use serde::Serialize;

pub use crate::ssh_g::{parse_ssh_g, Resolved};
use crate::{SshOptions, SshRuntime};

/// One check of the report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Check {
    /// Short name: `config`, `connection`, `bash`, `git`, `sftp`.
    pub name: &'static str,
    /// Whether it passed.
    pub ok: bool,
    /// What was found (a version, ssh's diagnostic...).
    pub detail: String,
    /// How to fix a failure.
    pub fix: Option<String>,
}

/// The whole diagnosis of one host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DoctorReport {
    /// The host as the user wrote it.
    pub host: String,
    /// What `ssh -G` resolved, when it could.
    pub resolved: Option<Resolved>,
    /// The checks, in order; later checks are skipped when the connection fails.
    pub checks: Vec<Check>,
}

impl DoctorReport {
    /// True when every check passed.
    pub fn ok(&self) -> bool {
        self.checks.iter().all(|c| c.ok)
    }
}

fn pass(name: &'static str, detail: impl Into<String>) -> Check {
    Check {
        name,
        ok: true,
        detail: detail.into(),
        fix: None,
    }
}

fn fail(name: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
    Check {
        name,
        ok: false,
        detail: detail.into(),
        fix: Some(fix.into()),
    }
}

/// Diagnoses `host` with `options` (the same options a workspace would use).
pub async fn doctor(host: &str, options: &SshOptions) -> DoctorReport {
    let mut report = DoctorReport {
        host: host.to_owned(),
        resolved: None,
        checks: Vec::new(),
    };
    let dest = match crate::destination::Destination::parse(host) {
        Ok(dest) => dest,
        Err(e) => {
            report
                .checks
                .push(fail("config", e.to_string(), "give a valid host"));
            return report;
        }
    };
    let rt = match SshRuntime::new(host, options.clone()) {
        Ok(rt) => rt,
        Err(e) => {
            report
                .checks
                .push(fail("connection", e.to_string(), "give a valid host name"));
            return report;
        }
    };
    let config = if rt.transport() == crate::Transport::Russh {
        russh_config(&rt).await
    } else {
        openssh_config(&dest, options).await
    };
    match config {
        Ok(resolved) => {
            report.checks.push(pass(
                "config",
                format!(
                    "{}@{}:{}{}",
                    resolved.user,
                    resolved.hostname,
                    resolved.port,
                    resolved
                        .proxy_jump
                        .as_deref()
                        .map(|j| format!(" via {j}"))
                        .unwrap_or_default()
                ),
            ));
            report.resolved = Some(resolved);
        }
        Err(check) => {
            report.checks.push(check);
            return report;
        }
    }

    // Doctor always tries for real: a failure another cmux process recorded (the
    // connection budget's wait) says nothing about the host now.
    rt.shared.pool.budget.clear();
    if let Err(e) = rt.ensure_ready().await {
        let fix = match &e {
            Error::HostKey { .. } => "see above: verify the host key, then retry (with --accept-new-host-key for a new host)",
            Error::Authentication { .. } => "install your public key on the host (ssh-copy-id) or load your key in ssh-agent",
            _ => "check that the host is up and reachable, then retry",
        };
        report.checks.push(fail("connection", e.to_string(), fix));
        return report;
    }
    report.checks.push(pass(
        "connection",
        if rt.transport() == crate::Transport::Russh {
            "connected with the built-in SSH client (russh; no ssh process)"
        } else {
            "connected (a ControlMaster is up)"
        },
    ));

    // Tagged lines: what the host's startup files print on stdout (which also breaks
    // SFTP, see the sftp check) must not be taken for the versions.
    let probe = ExecRequest::script(
        "echo \"cmux-doctor-bash: bash $BASH_VERSION\"; if command -v git >/dev/null; then echo \"cmux-doctor-git: $(git --version)\"; else echo 'cmux-doctor-git: missing'; fi",
    );
    match rt.output(probe, 64 * 1024).await {
        Ok(out) if out.status == ExitStatus::Exited(0) => {
            let text = out.stdout_lossy();
            let tagged = |tag: &str| {
                text.lines()
                    .find_map(|l| l.split_once(tag).map(|(_, v)| v.trim().to_owned()))
            };
            report.checks.push(pass(
                "bash",
                tagged("cmux-doctor-bash:").unwrap_or_else(|| "bash".to_owned()),
            ));
            match tagged("cmux-doctor-git:") {
                Some(line) if line.starts_with("git version") => {
                    report.checks.push(pass("git", line))
                }
                Some(_) => report.checks.push(fail(
                    "git",
                    "git is not installed on the host",
                    "install git on the host (e.g. `sudo apt-get install git`)",
                )),
                None => report.checks.push(fail(
                    "git",
                    format!(
                        "the probe's output was not understood: {:?}",
                        cmux_core::runtime::tail(&text, 300)
                    ),
                    "run `git --version` on the host by hand",
                )),
            }
        }
        Ok(out) => report.checks.push(fail(
            "bash",
            format!(
                "the probe exited with {}: {:?}",
                out.status,
                out.stderr_lossy().trim()
            ),
            "cmux runs every command with bash: install bash on the host",
        )),
        Err(e) => report.checks.push(fail(
            "bash",
            e.to_string(),
            "check that the account can run commands (no ForceCommand, a valid login shell, startup files that do not exit)",
        )),
    }

    let helper_runs = matches!(rt.mode().await, Ok(crate::ConnectionMode::Helper { .. }));
    if rt.transport() == crate::Transport::Russh && helper_runs {
        report.checks.push(pass(
            "sftp",
            "not needed: the russh transport runs every operation through the helper",
        ));
        return report;
    }
    // SFTP itself, whatever path this host's operations take (the helper needs none;
    // the shell path does): a runtime on the same master that never uses the helper.
    let sftp = match SshRuntime::new(host, options.clone().helper(crate::HelperMode::Off)) {
        Ok(rt) => rt,
        Err(e) => {
            report
                .checks
                .push(fail("sftp", e.to_string(), "give a valid host name"));
            return report;
        }
    };
    match sftp.resolve_path("~").await {
        Ok(home) => report
            .checks
            .push(pass("sftp", format!("SFTP works; home is {home}"))),
        Err(e) => {
            let fix = if e.to_string().contains("your shell printed") {
                "make the host's shell startup files print nothing for non-interactive shells (see above)"
            } else {
                "enable the SFTP subsystem in the host's sshd_config (`Subsystem sftp internal-sftp` or the sftp-server path) and reload sshd"
            };
            report.checks.push(fail("sftp", e.to_string(), fix))
        }
    }
    report
}

/// What `ssh -G` resolves for the OpenSSH path, or the failed check.
async fn openssh_config(
    dest: &crate::destination::Destination,
    options: &SshOptions,
) -> std::result::Result<Resolved, Check> {
    let mut g = tokio::process::Command::new("ssh");
    if let Some(cfg) = &options.config_file {
        g.arg("-F").arg(cfg);
    }
    g.arg("-G")
        .args(dest.option_words())
        .arg("--")
        .arg(&dest.host);
    match g.output().await {
        Ok(out) if out.status.success() => Ok(parse_ssh_g(&String::from_utf8_lossy(&out.stdout))),
        Ok(out) => Err(fail(
            "config",
            format!(
                "ssh -G failed: {:?}",
                String::from_utf8_lossy(&out.stderr).trim()
            ),
            "fix the ssh configuration file ssh names above",
        )),
        Err(e) => Err(fail(
            "config",
            format!("cannot run ssh: {e}"),
            "install OpenSSH's client (`ssh`) and make sure it is on PATH",
        )),
    }
}

/// What the russh transport resolves (`ssh -G`, or its own parser), or the failed
/// check.
async fn russh_config(rt: &SshRuntime) -> std::result::Result<Resolved, Check> {
    let Some(russh) = &rt.shared.pool.russh else {
        return Err(fail("config", "no russh transport", "report this as a bug"));
    };
    match russh.config().await {
        Ok(c) => Ok(Resolved {
            hostname: c.hostname,
            user: c.user,
            port: c.port.to_string(),
            identity_files: c
                .identity_files
                .iter()
                .map(|p| p.display().to_string())
                .collect(),
            proxy_jump: c.proxy_jump,
            proxy_command: c.proxy_command,
        }),
        Err(e) => Err(fail(
            "config",
            e.to_string(),
            "fix the ssh configuration named above",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ssh_g() {
        let r = parse_ssh_g(
            "host web\nhostname 10.0.0.5\nuser deploy\nport 2222\nidentityfile ~/.ssh/id_ed25519\nidentityfile ~/.ssh/id_rsa\nproxyjump bastion\nproxycommand none\n",
        );
        assert_eq!(r.hostname, "10.0.0.5");
        assert_eq!(r.user, "deploy");
        assert_eq!(r.port, "2222");
        assert_eq!(r.identity_files.len(), 2);
        assert_eq!(r.proxy_jump.as_deref(), Some("bastion"));
        assert_eq!(r.proxy_command, None);
    }
}
