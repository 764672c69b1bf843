//! `cmux doctor`: checks cmux's prerequisites, or one workspace.

use anyhow::Result;
use cmux_core::{ExecRequest, RuntimeExt};

use super::Ctx;
use crate::args::DoctorArgs;
use crate::backends::{self, Check};
use crate::error::CliError;
use crate::home::CmuxHome;

/// The checks so far: printed as they come (human), or all at the end (`--json`).
struct Report {
    json: bool,
    checks: Vec<Check>,
}

impl Report {
    fn new(json: bool) -> Report {
        Report {
            json,
            checks: Vec::new(),
        }
    }

    fn line(&mut self, ok: bool, what: &str, detail: &str) {
        self.push(Check::new(ok, what, detail));
    }

    fn push(&mut self, check: Check) {
        if !self.json {
            out!(
                "{} {}: {}",
                if check.ok { "ok  " } else { "FAIL" },
                printable(&check.what),
                printable(&check.detail)
            );
            if let Some(fix) = &check.fix {
                out!("     fix: {}", printable(fix));
            }
        }
        self.checks.push(check);
    }

    fn failed(&self) -> bool {
        self.checks.iter().any(|c| !c.ok)
    }

    /// Prints the JSON document (with `--json`); the exit code: 1 when a check failed.
    fn finish(self) -> Result<i32> {
        let code = if self.failed() { 1 } else { 0 };
        if self.json {
            let doc = serde_json::json!({ "ok": code == 0, "checks": self.checks });
            out!("{}", serde_json::to_string_pretty(&doc)?);
        }
        Ok(code)
    }
}

/// `text` with control characters escaped: details quote what a host printed, which
/// must not drive the terminal.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// Prints one line per check (or JSON); exits 1 when any failed.
pub async fn run(args: &DoctorArgs) -> Result<i32> {
    let mut report = Report::new(args.json);
    if args.ssh.is_some() || args.coder.is_some() || args.pipe.is_some() {
        let flags = backends::BackendFlags {
            ssh: args.ssh.clone(),
            coder: args.coder.clone(),
            pipe: args.pipe.clone(),
            accept_new_host_key: args.accept_new_host_key,
            ..Default::default()
        };
        let backend = backends::backend_from_flags(&flags).await?;
        let home = CmuxHome::from_env()?;
        for check in backends::backend_checks(&backend, &home).await? {
            report.push(check);
        }
        return report.finish();
    }
    if args.accept_new_host_key {
        return Err(CliError::usage(
            "--accept-new-host-key applies to `cmux doctor --ssh HOST` only",
        ));
    }
    match &args.name {
        None => local(&mut report).await,
        Some(name) => workspace(&mut report, name).await?,
    }
    report.finish()
}

fn version_of(program: &str) -> std::result::Result<String, String> {
    match std::process::Command::new(program)
        .arg("--version")
        .output()
    {
        Ok(out) if out.status.success() => Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .unwrap_or("")
            .trim()
            .to_owned()),
        Ok(out) => Err(format!("`{program} --version` failed ({})", out.status)),
        Err(e) => Err(format!("not found ({e}): install {program}")),
    }
}

async fn local(report: &mut Report) {
    for program in ["git", "bash"] {
        match version_of(program) {
            Ok(v) => report.line(true, program, &v),
            Err(e) => report.line(false, program, &e),
        }
    }
    match CmuxHome::from_env() {
        Err(e) => report.line(false, "CMUX_HOME", &format!("{e:#}")),
        Ok(home) => {
            let dir = home.root().to_path_buf();
            let probe = dir.join(format!(".doctor-probe.{}", std::process::id()));
            if let Err(e) = home.ensure_private() {
                report.line(false, "CMUX_HOME", &format!("{e:#}"));
                return;
            }
            let result = write_private(&probe).and_then(|()| std::fs::remove_file(&probe));
            match result {
                Ok(()) => report.line(
                    true,
                    "CMUX_HOME",
                    &format!("{} is writable and private (0700)", dir.display()),
                ),
                Err(e) => report.line(
                    false,
                    "CMUX_HOME",
                    &format!(
                        "{} is not writable ({e}): set CMUX_HOME to a writable directory",
                        dir.display()
                    ),
                ),
            }
        }
    }
}

/// Creates `path` with mode 0600 and a few bytes.
fn write_private(path: &std::path::Path) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?
        .write_all(b"ok")
}

async fn workspace(report: &mut Report, name: &str) -> Result<()> {
    let home = CmuxHome::from_env()?;
    home.ensure_private()?;
    let ctx = Ctx {
        registry: crate::registry::Registry::open(home.workspaces_dir())?,
        home,
    };
    let record = ctx.registry.load(name)?;
    report.line(
        true,
        "registry",
        &format!(
            "{} ({}, project {})",
            ctx.registry.file_of(name).display(),
            record.backend.label(),
            record.project.display()
        ),
    );
    match backends::backend_checks(&record.backend, &ctx.home).await {
        Ok(checks) => {
            for check in checks {
                report.push(check);
            }
            if report.failed() {
                // The host is not usable: the checks below would only repeat that.
                return Ok(());
            }
        }
        Err(e) => {
            report.line(false, "backend", &format!("{e:#}"));
            return Ok(());
        }
    }
    let lifecycle = match backends::lifecycle_for(&record.backend, &ctx.home).await {
        Ok(l) => l,
        Err(e) => {
            report.line(false, "backend", &format!("{e:#}"));
            return Ok(());
        }
    };
    let runtime = lifecycle.runtime().clone();
    if let Err(e) = runtime.ensure_ready().await {
        report.line(false, "runtime", &e.to_string());
        return Ok(());
    }
    match runtime
        .output(ExecRequest::script("true"), 1024)
        .await
        .map(|o| o.status)
    {
        Ok(s) if s.success() => {
            report.line(true, "runtime", &format!("{} answers", runtime.host()))
        }
        Ok(s) => report.line(false, "runtime", &format!("`true` ended with {s}")),
        Err(e) => report.line(false, "runtime", &e.to_string()),
    }
    match lifecycle.check(&record.workspace()).await {
        Ok(check) if check.exists => {
            // Display, not as_str: it escapes control characters in hostile names.
            let shown = record.path.to_string();
            report.line(true, "directory", &shown);
            let branch = check.branch.unwrap_or_else(|| "(detached)".into());
            report.line(
                true,
                "git",
                &format!("on {branch}, {} uncommitted change(s)", check.changes),
            );
        }
        Ok(_) => report.line(
            false,
            "directory",
            &format!(
                "{} is missing: remove the entry with `cmux rm {name}`",
                record.path
            ),
        ),
        Err(e) => report.line(false, "git", &e.to_string()),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::printable;

    #[test]
    fn host_text_cannot_drive_the_terminal() {
        assert_eq!(
            printable("bash 5.2\u{1b}[2J\r\x07"),
            "bash 5.2\\u{1b}[2J\\r\\u{7}"
        );
        assert_eq!(printable("ok: é ü"), "ok: é ü");
    }
}
