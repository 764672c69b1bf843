//! `cmux shell`: an interactive login shell in a workspace, like `devpod ssh`.
//!
//! Local: `$SHELL -l` (bash when unset) in the workspace directory. SSH and Coder:
//! `ssh -t` through the workspace's ControlMaster (no new handshake; a Coder workspace
//! is started first), running the host user's `$SHELL -l` in the workspace directory.
//! cmux then *becomes* that program (`exec`): the terminal, its signals and the exit
//! code are the shell's, with no cmux process in between.

use std::io::IsTerminal;
use std::os::unix::process::CommandExt;
use std::process::Command;

use anyhow::Result;
use cmux_core::{quote, RemotePath};

use super::Ctx;
use crate::args::ShellArgs;
use crate::backends;
use crate::error::CliError;
use crate::registry::BackendConfig;

/// Replaces cmux with the shell; returns only when it could not be started.
pub async fn run(ctx: &Ctx, args: &ShellArgs) -> Result<i32> {
    let record = ctx.registry.load(&args.name)?;
    let mut command = match &record.backend {
        BackendConfig::Local => {
            if !std::path::Path::new(record.path.as_str()).is_dir() {
                return Err(CliError::failure(format!(
                    "workspace {} is gone ({} is missing): remove its entry with `cmux rm {}`",
                    record.name, record.path, record.name
                )));
            }
            let shell = std::env::var_os("SHELL")
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "bash".into());
            let mut command = Command::new(shell);
            command.arg("-l").current_dir(record.path.as_str());
            command
        }
        backend => {
            let (program, words, host) = backends::ssh_words(backend, &ctx.home).await?;
            let mut command = Command::new(program);
            // A terminal gets a remote one; a pipe (a script) gets none, and no warning.
            let tty = if std::io::stdin().is_terminal() {
                "-t"
            } else {
                "-T"
            };
            command
                .args(words)
                .arg(tty)
                .arg("--")
                .arg(&host)
                .arg(remote_shell(&record.path));
            command
        }
    };
    tracing::debug!(workspace = %record.name, ?command, "shell");
    let err = command.exec();
    Err(CliError::failure(format!(
        "cannot start a shell for workspace {} ({:?}): {err}",
        record.name,
        command.get_program()
    )))
}

/// The host's command: the user's login shell in the workspace directory.
fn remote_shell(dir: &RemotePath) -> String {
    format!(
        "cd {} || exit 1; exec \"${{SHELL:-bash}}\" -l",
        quote::quote(dir.as_str())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_remote_command_quotes_the_directory() {
        let dir = RemotePath::new("/home/u/cmux/p-1/it's here").expect("path");
        assert_eq!(
            remote_shell(&dir),
            "cd '/home/u/cmux/p-1/it'\\''s here' || exit 1; exec \"${SHELL:-bash}\" -l"
        );
    }
}
