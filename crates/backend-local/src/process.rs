//! Local commands: `bash -c` in a new process group, killed as a group.

use std::process::Stdio;

use async_trait::async_trait;
use cmux_core::{
    Error, ExecRequest, ExitStatus, Process, ProcessControl, RemotePath, Result, Stdin,
};

use std::sync::Arc;

use crate::watchdog::Watchdog;
use crate::HOST;

/// Starts `req`; its process group is registered with `watchdog` until it is reaped.
pub(crate) fn spawn(
    home: &RemotePath,
    req: ExecRequest,
    watchdog: Option<Arc<Watchdog>>,
) -> Result<Process> {
    // The same script remote backends send: cwd, env and the non-interactive variables
    // behave identically everywhere.
    let script = req.to_shell_script()?;
    let mut cmd = tokio::process::Command::new("bash");
    cmd.arg("-c")
        .arg(script)
        .current_dir(home.as_str())
        .process_group(0)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(match req.stdin {
            Stdin::Null => Stdio::null(),
            Stdin::Piped | Stdin::Bytes(_) => Stdio::piped(),
        });
    let mut child = cmd.spawn().map_err(|e| Error::Io {
        host: HOST.into(),
        context: "starting bash (is bash installed and on PATH?)".into(),
        source: e,
    })?;
    let pgid = child.id().and_then(|id| i32::try_from(id).ok());
    let watched = match (&watchdog, pgid) {
        (Some(watchdog), Some(pgid)) => {
            watchdog.register(pgid);
            Some((watchdog.clone(), pgid))
        }
        _ => None,
    };
    let stdin = child
        .stdin
        .take()
        .map(|s| Box::pin(s) as cmux_core::BoxWrite);
    let stdout = child
        .stdout
        .take()
        .map(|s| Box::pin(s) as cmux_core::BoxRead);
    let stderr = child
        .stderr
        .take()
        .map(|s| Box::pin(s) as cmux_core::BoxRead);
    let control = LocalControl {
        child,
        pgid,
        watched,
    };
    Ok(Process::new(
        HOST,
        stdin,
        stdout,
        stderr,
        Box::new(control),
        &req,
    ))
}

struct LocalControl {
    child: tokio::process::Child,
    pgid: Option<i32>,
    /// The watchdog this command's group is registered with, until it is reaped.
    watched: Option<(Arc<Watchdog>, i32)>,
}

impl LocalControl {
    fn unregister(&mut self) {
        if let Some((watchdog, pgid)) = self.watched.take() {
            watchdog.unregister(pgid);
        }
    }
}

impl Drop for LocalControl {
    fn drop(&mut self) {
        // Not reaped by us: whoever reaps it later frees its number, which must then
        // not be in the watchdog's list.
        self.unregister();
    }
}

#[async_trait]
impl ProcessControl for LocalControl {
    async fn wait(&mut self) -> Result<ExitStatus> {
        use std::os::unix::process::ExitStatusExt;
        let status = self.child.wait().await.map_err(|e| Error::Io {
            host: HOST.into(),
            context: "waiting for command".into(),
            source: e,
        })?;
        // Reaped: from now on the pgid may name an unrelated process.
        self.unregister();
        Ok(match (status.code(), status.signal()) {
            (Some(code), _) => ExitStatus::Exited(code),
            (None, Some(sig)) => ExitStatus::Signaled(sig),
            (None, None) => ExitStatus::Exited(-1),
        })
    }

    async fn kill(&mut self) -> Result<()> {
        if let Some(pgid) = self.pgid {
            kill_group(pgid);
        }
        Ok(())
    }
}

/// Sends SIGKILL to every process of the group `pgid` (the command and its children).
#[allow(unsafe_code)]
fn kill_group(pgid: i32) {
    // SAFETY: killpg takes plain integers and touches no memory of ours. ESRCH (the
    // group is already gone) is the expected outcome of a second kill.
    unsafe {
        libc::killpg(pgid, libc::SIGKILL);
    }
}
