//! The baselines: an `ssh` process per operation, over a ControlMaster (a) or on a
//! fresh connection (b), as a harness without cmux would drive a host.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{bail, Context};
use tokio::io::AsyncWriteExt;

use crate::cpu::master_pid;
use crate::setup::HOST;

/// How a baseline reaches the host.
#[derive(Clone, Debug)]
pub struct Baseline {
    config: PathBuf,
    /// `Some(path)`: (a), a ControlMaster at `path`; `None`: (b), a fresh connection.
    control_path: Option<PathBuf>,
}

impl Baseline {
    /// (a): a process per operation over a ControlMaster at `control_path`.
    pub fn with_master(config: &Path, control_path: &Path) -> Self {
        Baseline {
            config: config.to_path_buf(),
            control_path: Some(control_path.to_path_buf()),
        }
    }

    /// (b): a fresh connection per operation.
    pub fn fresh(config: &Path) -> Self {
        Baseline {
            config: config.to_path_buf(),
            control_path: None,
        }
    }

    /// The ssh options of this baseline, before the host.
    fn ssh_args(&self) -> Vec<String> {
        let mut args = vec!["-F".to_owned(), self.config.display().to_string()];
        match &self.control_path {
            Some(path) => args.extend([
                "-o".into(),
                "ControlMaster=auto".into(),
                "-o".into(),
                format!("ControlPath={}", path.display()),
                "-o".into(),
                "ControlPersist=60".into(),
            ]),
            None => args.extend([
                "-o".into(),
                "ControlMaster=no".into(),
                "-o".into(),
                "ControlPath=none".into(),
            ]),
        }
        args
    }

    /// `GIT_SSH_COMMAND` for this baseline.
    pub fn ssh_command_line(&self) -> String {
        let mut words = vec!["ssh".to_owned()];
        words.extend(self.ssh_args());
        cmux_core::quote::join(words)
    }

    /// Runs `remote` on the host with `input` on stdin; returns stdout.
    pub async fn run(&self, remote: &str, input: Option<&[u8]>) -> anyhow::Result<Vec<u8>> {
        let mut cmd = tokio::process::Command::new("ssh");
        cmd.args(self.ssh_args()).arg(HOST).arg(remote);
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        cmd.stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        let mut child = cmd.spawn().context("spawning ssh")?;
        if let Some(data) = input {
            let mut stdin = child.stdin.take().context("ssh stdin")?;
            stdin.write_all(data).await?;
            drop(stdin);
        }
        let out = child.wait_with_output().await?;
        if !out.status.success() {
            bail!(
                "ssh {remote:?} failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(out.stdout)
    }

    /// The pid of (a)'s master, once it runs.
    pub fn master_pid(&self) -> Option<u32> {
        self.control_path
            .as_deref()
            .and_then(|p| master_pid(&self.config, p, HOST))
    }

    /// Asks (a)'s master to exit, so it does not outlive the run.
    pub fn close(&self) {
        if let Some(path) = &self.control_path {
            let _ = std::process::Command::new("ssh")
                .arg("-F")
                .arg(&self.config)
                .arg("-o")
                .arg(format!("ControlPath={}", path.display()))
                .args(["-O", "exit", HOST])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}
