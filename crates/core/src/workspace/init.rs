//! The project's init hook: `.cmux/init`, run in a new workspace with its output
//! streamed line by line.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};

use crate::error::Result;
use crate::exec::{BoxRead, ExecRequest, ExitStatus};
use crate::runtime::FileKind;
use crate::workspace::lifecycle::Lifecycle;
use crate::workspace::progress::{HookStream, Progress, ProgressEvent};
use crate::workspace::Workspace;

/// Path of the hook inside a workspace.
pub const INIT_HOOK: &str = ".cmux/init";

/// What [`Lifecycle::init`] found and did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InitOutcome {
    /// The workspace has no `.cmux/init`.
    NoHook,
    /// `.cmux/init` exists but is not an executable file: skipped with a warning.
    NotExecutable,
    /// The hook ran and exited 0.
    Succeeded,
    /// The hook ran and failed (the workspace is still usable).
    Failed(ExitStatus),
}

/// How long the hook's output may keep flowing after it exited (a background child
/// it started can hold the pipes open forever).
const DRAIN_GRACE: Duration = Duration::from_millis(500);

impl Lifecycle {
    /// Runs the workspace's executable `.cmux/init`, if any, in the workspace directory
    /// with `CMUX_PROJECT_PATH` (the project on this machine), `CMUX_WORKSPACE_NAME`,
    /// `CMUX_WORKSPACE_PATH` and `CMUX_RUNTIME` (the runtime's kind) set. Every output
    /// line goes to `progress` as it comes. A failing hook is an
    /// [`InitOutcome::Failed`], not an error: the workspace stays usable.
    pub async fn init(&self, ws: &Workspace, progress: &dyn Progress) -> Result<InitOutcome> {
        let runtime = self.runtime();
        let hook = ws.path.join(INIT_HOOK)?;
        // `create` already looked (one round trip saved); otherwise stat it.
        let executable = match self.known_hook(&ws.path) {
            Some(known) => known,
            None => match runtime.stat(&hook).await {
                Ok(meta) => Some(meta.kind == FileKind::File && meta.mode & 0o111 != 0),
                Err(crate::Error::NotFound { .. }) => None,
                Err(e) => return Err(e),
            },
        };
        match executable {
            None => return Ok(InitOutcome::NoHook),
            Some(false) => {
                progress.event(ProgressEvent::Warning(&format!(
                    "{INIT_HOOK} is not an executable file: skipped (chmod +x {INIT_HOOK} to run it)"
                )));
                return Ok(InitOutcome::NotExecutable);
            }
            Some(true) => {}
        }
        progress.event(ProgressEvent::Step(&format!("running {INIT_HOOK}")));
        let req = ExecRequest::argv([hook.as_str()])
            .cwd(ws.path.clone())
            .env("CMUX_PROJECT_PATH", ws.project.to_string_lossy())
            .env("CMUX_WORKSPACE_NAME", ws.name.clone())
            .env("CMUX_WORKSPACE_PATH", ws.path.as_str())
            .env("CMUX_RUNTIME", runtime.kind());
        let mut process = runtime.exec(req).await?;
        let out = process.stdout.take();
        let err = process.stderr.take();
        let mut pumps = std::pin::pin!(async {
            tokio::join!(
                pump(out, HookStream::Stdout, progress),
                pump(err, HookStream::Stderr, progress)
            )
        });
        let status = tokio::select! {
            status = process.wait() => {
                let _ = tokio::time::timeout(DRAIN_GRACE, &mut pumps).await;
                status?
            }
            _ = &mut pumps => process.wait().await?,
        };
        if status.success() {
            Ok(InitOutcome::Succeeded)
        } else {
            progress.event(ProgressEvent::Warning(&format!(
                "{INIT_HOOK} failed ({status}); the workspace {} is usable anyway",
                ws.name
            )));
            Ok(InitOutcome::Failed(status))
        }
    }
}

async fn pump(stream: Option<BoxRead>, which: HookStream, progress: &dyn Progress) {
    let Some(stream) = stream else { return };
    let mut reader = BufReader::new(stream);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                let text = String::from_utf8_lossy(&line);
                let text = text.trim_end_matches(['\n', '\r']);
                progress.event(ProgressEvent::HookLine {
                    stream: which,
                    line: text,
                });
            }
        }
    }
}
