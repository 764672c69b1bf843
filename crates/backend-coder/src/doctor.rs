//! [`doctor`]: what is wrong between this machine and a Coder workspace, with a fix
//! per failure. Read-only: it never writes the ssh config nor starts the workspace.

use std::fmt;

use cmux_backend_ssh::SshRuntime;
use cmux_core::{ExecRequest, Runtime, RuntimeExt};
use serde::Serialize;

use crate::runtime::CoderOptions;
use crate::sshconfig;
use crate::status::WorkspaceStatus;
use crate::target::CoderTarget;

/// The outcome of one check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    /// Fine.
    Ok,
    /// Not a failure, but worth knowing (a stopped workspace cmux will start).
    Warn,
    /// Broken: see the fix.
    Fail,
    /// Not checked because an earlier check failed.
    Skipped,
}

/// One line of the report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Check {
    /// What was checked: `coder cli`, `login`, `ssh config`, `workspace`, `ssh`.
    pub name: &'static str,
    /// How it went.
    pub status: CheckStatus,
    /// What was found.
    pub detail: String,
    /// The command or step that fixes a failure.
    pub fix: Option<String>,
}

/// Everything [`doctor`] found, in order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DoctorReport {
    /// `coder.<name>` (or `coder.<name>.<agent>`).
    pub host: String,
    /// The checks, in the order they ran.
    pub checks: Vec<Check>,
}

impl DoctorReport {
    /// True when no check failed.
    pub fn ok(&self) -> bool {
        self.checks.iter().all(|c| c.status != CheckStatus::Fail)
    }
}

impl fmt::Display for DoctorReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "cmux doctor: {}", self.host)?;
        for c in &self.checks {
            let mark = match c.status {
                CheckStatus::Ok => "ok  ",
                CheckStatus::Warn => "warn",
                CheckStatus::Fail => "FAIL",
                CheckStatus::Skipped => "skip",
            };
            writeln!(f, "  [{mark}] {:<11} {}", c.name, c.detail)?;
            if let Some(fix) = &c.fix {
                writeln!(f, "         {:<11} fix: {fix}", "")?;
            }
        }
        Ok(())
    }
}

struct Builder {
    checks: Vec<Check>,
    broken: bool,
}

impl Builder {
    fn push(
        &mut self,
        name: &'static str,
        status: CheckStatus,
        detail: String,
        fix: Option<String>,
    ) {
        if status == CheckStatus::Fail {
            self.broken = true;
        }
        self.checks.push(Check {
            name,
            status,
            detail,
            fix,
        });
    }

    fn skip(&mut self, name: &'static str) {
        self.push(
            name,
            CheckStatus::Skipped,
            "not checked (fix the failure above first)".into(),
            None,
        );
    }
}

/// Checks the CLI, the login, the ssh config block, the workspace status and ssh for
/// `spec` (`my-ws` or `my-ws.agent`), with the same options a [`crate::CoderRuntime`]
/// would use.
pub async fn doctor(spec: &str, opts: &CoderOptions) -> DoctorReport {
    let mut b = Builder {
        checks: Vec::new(),
        broken: false,
    };
    let target = match CoderTarget::parse(spec) {
        Ok(t) => t,
        Err(e) => {
            b.push(
                "workspace",
                CheckStatus::Fail,
                e.to_string(),
                Some("give `my-ws` or `my-ws.agent` (`coder list` shows yours)".into()),
            );
            return DoctorReport {
                host: format!("coder.{spec}"),
                checks: b.checks,
            };
        }
    };
    let host = target.label();
    let finish = |b: Builder| DoctorReport {
        host: host.clone(),
        checks: b.checks,
    };

    // 1. The CLI.
    let cli = match opts.cli() {
        Ok(cli) => cli,
        Err(e) => {
            b.push(
                "coder cli",
                CheckStatus::Fail,
                e.to_string(),
                Some("curl -fsSL https://coder.com/install.sh | sh".into()),
            );
            for name in ["login", "ssh config", "workspace", "ssh"] {
                b.skip(name);
            }
            return finish(b);
        }
    };
    match cli.version().await {
        Ok(v) => b.push(
            "coder cli",
            CheckStatus::Ok,
            format!("{} ({v})", cli.bin().display()),
            None,
        ),
        // `version` needs no login; a failure here is the binary itself.
        Err(e) => b.push(
            "coder cli",
            CheckStatus::Fail,
            e.to_string(),
            Some("reinstall it: curl -fsSL https://coder.com/install.sh | sh".into()),
        ),
    }

    // 2. Login.
    match cli.whoami().await {
        Ok(me) => b.push(
            "login",
            CheckStatus::Ok,
            format!("{} at {}", me.username, me.url),
            None,
        ),
        Err(e) => {
            let text = e.to_string();
            let fix = if text.contains("cannot reach") {
                "check the network or VPN to the Coder deployment, then `coder whoami`"
            } else {
                "coder login <your Coder URL>"
            };
            b.push("login", CheckStatus::Fail, text, Some(fix.into()));
        }
    }

    // 3. The ssh config block (local).
    let config = opts.ssh_config_file();
    let shown = opts
        .ssh_config_path()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "~/.ssh/config".into());
    let patterns = opts
        .ssh_config_path()
        .and_then(|p| std::fs::read_to_string(p).ok())
        .map(|t| sshconfig::section_hosts(&t))
        .unwrap_or_default();
    let mut alias = None;
    let mut last_proxy = None;
    for candidate in sshconfig::candidates(&target.host_part(), &patterns) {
        match sshconfig::resolve(config, &candidate).await {
            Ok(r) if r.is_coder() => {
                alias = Some(r);
                break;
            }
            Ok(r) => {
                if last_proxy.is_none() {
                    last_proxy = Some(r.proxy_command.unwrap_or_else(|| "none".into()));
                }
            }
            Err(e) => {
                last_proxy = Some(e.to_string());
                break;
            }
        }
    }
    match &alias {
        Some(r) => b.push(
            "ssh config",
            CheckStatus::Ok,
            format!(
                "{} -> ProxyCommand {}",
                r.alias,
                r.proxy_command.as_deref().unwrap_or_default()
            ),
            None,
        ),
        None => {
            let file_flag = config
                .map(|c| format!(" --ssh-config-file {}", c.display()))
                .unwrap_or_default();
            let detail = if patterns.is_empty() {
                format!(
                    "{shown} has no Coder section; {host} does not resolve (proxycommand: {})",
                    last_proxy.unwrap_or_else(|| "none".into())
                )
            } else {
                format!("{host} does not resolve to Coder's ProxyCommand (got: {}); an earlier Host block in {shown} may override the Coder section", last_proxy.unwrap_or_else(|| "none".into()))
            };
            b.push(
                "ssh config",
                CheckStatus::Fail,
                detail,
                Some(format!("coder config-ssh --yes --use-previous-options{file_flag} (cmux runs it by itself on first use)")),
            );
        }
    }

    // 4. Workspace status.
    let mut running = false;
    let name = &target.workspace;
    match cli.workspace(name).await {
        Ok(Some(ws)) => {
            let (status, fix) = match &ws.status {
                WorkspaceStatus::Running => {
                    running = true;
                    let agent_problem = match &target.agent {
                        Some(a) if !ws.agents.is_empty() && !ws.agents.contains(a) => Some(format!(
                            "no agent {a:?} (agents: {}); use {name}.<agent>",
                            ws.agents.join(", ")
                        )),
                        None if ws.agents.len() > 1 => Some(format!(
                            "several agents ({}); name one: {name}.<agent>",
                            ws.agents.join(", ")
                        )),
                        _ => None,
                    };
                    match agent_problem {
                        Some(p) => {
                            running = false;
                            (CheckStatus::Fail, Some(p))
                        }
                        None => (CheckStatus::Ok, None),
                    }
                }
                WorkspaceStatus::Stopped
                | WorkspaceStatus::Canceled
                | WorkspaceStatus::Starting
                | WorkspaceStatus::Pending
                | WorkspaceStatus::Stopping
                | WorkspaceStatus::Canceling => (
                    CheckStatus::Warn,
                    Some(format!("cmux starts it on first use (or: coder start {name} -y)")),
                ),
                WorkspaceStatus::Failed => (
                    CheckStatus::Fail,
                    Some(format!("look at the build logs (`coder show {name}`), fix the cause, then `coder start {name}`")),
                ),
                WorkspaceStatus::Deleting | WorkspaceStatus::Deleted => (
                    CheckStatus::Fail,
                    Some(format!("coder create {name} (or pick another workspace: coder list)")),
                ),
                WorkspaceStatus::Other(_) => (
                    CheckStatus::Fail,
                    Some(format!("coder show {name}")),
                ),
            };
            let agents = if ws.agents.is_empty() {
                String::new()
            } else {
                format!(", agents: {}", ws.agents.join(", "))
            };
            b.push(
                "workspace",
                status,
                format!(
                    "{}/{name} is {} (template {}{agents})",
                    ws.owner, ws.status, ws.template
                ),
                fix,
            );
        }
        Ok(None) => b.push(
            "workspace",
            CheckStatus::Fail,
            format!("no Coder workspace named {name:?} for the logged-in user"),
            Some(format!("coder list (to see yours), or coder create {name}")),
        ),
        Err(e) => {
            let fix = if b.broken {
                None
            } else {
                Some("coder whoami, then coder list".into())
            };
            b.push("workspace", CheckStatus::Fail, e.to_string(), fix);
        }
    }

    // 5. ssh, only when everything before says it can work.
    match (alias, running) {
        (Some(r), true) => {
            let outcome = async {
                let ssh = SshRuntime::new(r.alias.clone(), opts.ssh_for_coder())?;
                ssh.ensure_ready().await?;
                ssh.run_checked(
                    "bash and git",
                    ExecRequest::script(
                        "echo \"$BASH_VERSION\"; git --version 2>/dev/null || echo 'git: missing'",
                    ),
                )
                .await
            }
            .await;
            match outcome {
                Ok(out) => {
                    let mut lines = out.lines();
                    let bash = lines.next().unwrap_or("").trim().to_owned();
                    let git = lines.next().unwrap_or("").trim().to_owned();
                    if git.contains("missing") {
                        b.push("ssh", CheckStatus::Fail, format!("connected to {} (bash {bash}), but git is missing", r.alias), Some("install git in the workspace image (cmux keeps worktrees there)".into()));
                    } else {
                        b.push("ssh", CheckStatus::Ok, format!("connected to {}: bash {bash}, {git}", r.alias), None);
                    }
                }
                Err(e) => b.push(
                    "ssh",
                    CheckStatus::Fail,
                    e.to_string(),
                    Some(format!("ssh -v {}{} true (shows where it stops; Coder's block sets LogLevel ERROR)", config.map(|c| format!("-F {} ", c.display())).unwrap_or_default(), r.alias)),
                ),
            }
        }
        _ => b.skip("ssh"),
    }
    finish(b)
}
