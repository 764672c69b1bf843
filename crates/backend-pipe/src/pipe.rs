//! [`PipeRuntime`]: a workspace reached through any command whose stdin and stdout are
//! a `cmux-host` (`docker exec -i box cmux-host`, `kubectl exec -i pod -- cmux-host`,
//! `sudo -u sandbox cmux-host`).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use cmux_core::engine::{EditReply, EditSpec, GlobReply, GlobRequest, GrepReply, GrepRequest};
use cmux_core::{
    BoxRead, DirEntry, Error, ExecRequest, Metadata, Process, RemotePath, Result, Runtime,
    SmallFile,
};

use crate::connection::{Handshake, HelperConnection};

/// How [`PipeRuntime`] starts its command.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PipeOptions {
    /// How long the helper may take to say hello once the command started.
    pub handshake_timeout: Duration,
}

impl Default for PipeOptions {
    fn default() -> Self {
        PipeOptions {
            handshake_timeout: Duration::from_secs(30),
        }
    }
}

/// A runtime whose every operation goes to a `cmux-host` at the other end of a local
/// command's stdio. The command runs with `sh -c` when the first operation needs it and
/// again after it ends; closing the connection (dropping the runtime, or the process
/// exiting) ends the helper, which kills every command it started.
#[derive(Debug)]
pub struct PipeRuntime {
    command: String,
    options: PipeOptions,
    conn: tokio::sync::Mutex<Option<Arc<HelperConnection>>>,
    last_stderr: Arc<Mutex<Vec<u8>>>,
}

/// Bytes of the command's stderr kept for error messages.
const STDERR_KEPT: usize = 4096;

impl PipeRuntime {
    /// A runtime reached through `command` (a shell command line). Does not run it: the
    /// first operation or [`Runtime::ensure_ready`] does.
    pub fn new(command: impl Into<String>, options: PipeOptions) -> Result<Self> {
        let command = command.into();
        if command.trim().is_empty() {
            return Err(Error::invalid(
                "the pipe command is empty: give a command whose stdin/stdout reach cmux-host, e.g. 'docker exec -i box cmux-host'",
            ));
        }
        if command.chars().any(|c| c.is_control() && c != '\t') {
            return Err(Error::invalid(
                "the pipe command contains control characters: give it on one line",
            ));
        }
        Ok(PipeRuntime {
            command,
            options,
            conn: tokio::sync::Mutex::new(None),
            last_stderr: Arc::default(),
        })
    }

    /// The command line.
    pub fn command(&self) -> &str {
        &self.command
    }

    /// The live connection, starting the command when there is none.
    pub async fn connection(&self) -> Result<Arc<HelperConnection>> {
        let mut slot = self.conn.lock().await;
        if let Some(conn) = slot.as_ref().filter(|c| !c.is_closed()) {
            return Ok(conn.clone());
        }
        let conn = self.start().await?;
        *slot = Some(conn.clone());
        Ok(conn)
    }

    /// Ends the connection; the next operation starts the command again.
    pub async fn disconnect(&self) {
        if let Some(conn) = self.conn.lock().await.take() {
            conn.close();
        }
    }

    async fn start(&self) -> Result<Arc<HelperConnection>> {
        let mut child = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(&self.command)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| Error::Connection {
                host: self.command.clone(),
                message: format!("cannot run the pipe command with sh: {e}"),
            })?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(Error::backend(
                &self.command,
                "the pipe command has no stdio",
            ));
        };
        self.last_stderr
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        if let Some(mut stderr) = child.stderr.take() {
            let kept = self.last_stderr.clone();
            tokio::spawn(async move {
                use tokio::io::AsyncReadExt;
                let mut buf = [0u8; 4096];
                while let Ok(n) = stderr.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    let mut kept = kept.lock().unwrap_or_else(|e| e.into_inner());
                    kept.extend_from_slice(&buf[..n]);
                    let excess = kept.len().saturating_sub(STDERR_KEPT);
                    kept.drain(..excess);
                }
            });
        }
        let outcome = HelperConnection::handshake(
            self.command.clone(),
            stdout,
            stdin,
            None,
            self.options.handshake_timeout,
        )
        .await;
        let conn = match outcome {
            Handshake::Ready(conn) => conn,
            other => {
                let _ = child.kill().await;
                return Err(self.start_error(other));
            }
        };
        // The command lives as long as the connection; then it is reaped.
        let watched = conn.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = child.wait() => watched.close_because("the pipe command exited"),
                () = watched.closed() => {
                    // Closing stdin ends the helper; give the command a moment to exit.
                    if tokio::time::timeout(Duration::from_secs(5), child.wait()).await.is_err() {
                        let _ = child.kill().await;
                    }
                }
            }
        });
        Ok(conn)
    }

    fn start_error(&self, outcome: Handshake) -> Error {
        let stderr = {
            let kept = self.last_stderr.lock().unwrap_or_else(|e| e.into_inner());
            String::from_utf8_lossy(&kept).trim().to_owned()
        };
        let said = if stderr.is_empty() {
            String::new()
        } else {
            format!(" It said: {stderr}.")
        };
        let hint = "check that the command runs `cmux-host` at its end (`cmux host-helper --output FILE` writes the helper for copying into a container)";
        let message = match outcome {
            Handshake::Ready(_) => return Error::backend(&self.command, "unreachable"),
            Handshake::Ended { .. } => {
                format!("the pipe command ended before the cmux helper answered.{said} {hint}")
            }
            Handshake::NotProtocol { output, reason } => format!(
                "the pipe command printed something that is not the cmux helper protocol ({reason}; it began {:?}).{said} {hint}",
                String::from_utf8_lossy(&output[..output.len().min(80)])
            ),
            Handshake::TimedOut => format!(
                "the cmux helper did not answer within {}s.{said} {hint}",
                self.options.handshake_timeout.as_secs()
            ),
        };
        Error::Connection {
            host: self.command.clone(),
            message,
        }
    }
}

#[async_trait]
impl Runtime for PipeRuntime {
    fn host(&self) -> &str {
        &self.command
    }

    fn kind(&self) -> &str {
        "pipe"
    }

    async fn ensure_ready(&self) -> Result<()> {
        self.connection().await.map(|_| ())
    }

    async fn exec(&self, req: ExecRequest) -> Result<Process> {
        self.connection().await?.exec(req).await
    }

    async fn read_file(&self, path: &RemotePath) -> Result<Vec<u8>> {
        self.connection().await?.read_file(path).await
    }

    async fn read_file_up_to(&self, path: &RemotePath, max_len: u64) -> Result<SmallFile> {
        self.connection()
            .await?
            .read_file_up_to(path, max_len)
            .await
    }

    async fn open_read(&self, path: &RemotePath) -> Result<BoxRead> {
        self.connection().await?.open_read(path).await
    }

    async fn write_file(&self, path: &RemotePath, data: &[u8]) -> Result<()> {
        self.connection().await?.write_file(path, data).await
    }

    async fn stat(&self, path: &RemotePath) -> Result<Metadata> {
        self.connection().await?.stat(path).await
    }

    async fn read_dir(&self, path: &RemotePath) -> Result<Vec<DirEntry>> {
        self.connection().await?.read_dir(path).await
    }

    async fn create_dir_all(&self, path: &RemotePath) -> Result<()> {
        self.connection().await?.create_dir_all(path).await
    }

    async fn remove(&self, path: &RemotePath, recursive: bool) -> Result<()> {
        self.connection().await?.remove(path, recursive).await
    }

    async fn rename(&self, from: &RemotePath, to: &RemotePath) -> Result<()> {
        self.connection().await?.rename(from, to).await
    }

    async fn resolve_path(&self, path: &str) -> Result<RemotePath> {
        self.connection().await?.resolve_path(path)
    }

    async fn grep(&self, req: &GrepRequest) -> Result<Option<GrepReply>> {
        self.connection().await?.grep(req).await.map(Some)
    }

    async fn glob(&self, req: &GlobRequest) -> Result<Option<GlobReply>> {
        self.connection().await?.glob(req).await.map(Some)
    }

    async fn edit(&self, path: &RemotePath, spec: &EditSpec) -> Result<Option<EditReply>> {
        self.connection().await?.edit(path, spec).await.map(Some)
    }
}
