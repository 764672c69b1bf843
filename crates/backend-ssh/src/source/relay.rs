//! The git relay: local `git push`/`fetch` to an SSH host over the russh transport,
//! with no ssh client on this machine.
//!
//! Local git talks to a remote repository by running `$GIT_SSH_COMMAND host
//! "git-receive-pack '/path'"` and speaking git's protocol on that program's stdin and
//! stdout. Under the russh transport the connection lives in this process, so
//! a relay server (`RelayServer`) gives git a stand-in for ssh:
//!
//! 1. it listens on a unix socket in a fresh directory of mode 0700 inside the control
//!    directory (itself private and checked, see the crate docs);
//! 2. git runs with `GIT_SSH_COMMAND=<relay argv...> <socket>` and
//!    `GIT_SSH_VARIANT=simple` (git then appends only `host command`, no `-p`/`-o`);
//!    the relay program (`cmux __git-relay`, [`run_relay_client`]) connects, sends the
//!    remote command, then copies its stdin to the socket;
//! 3. this process checks the command and runs it on the host through the runtime
//!    (`git receive-pack <path>` / `git upload-pack <path>`, one helper channel), and
//!    pumps bytes: socket to the process's stdin, its stdout and stderr back as frames,
//!    then its exit code.
//!
//! Wire format. Relay to server: `[u32 big-endian length][command, UTF-8]`, then raw
//! stdin bytes until the relay shuts its write side. Server to relay: frames
//! `[u8 kind][u32 big-endian length][payload]`, kind [`FRAME_STDOUT`] or
//! [`FRAME_STDERR`], ending with one [`FRAME_EXIT`] whose payload is the exit code
//! (`i32` big-endian).
//!
//! Security. The socket's directory is ours and 0700, so only our uid can reach it;
//! each connection's peer uid is also checked (`SO_PEERCRED`) and others are refused.
//! The command must be exactly `git-receive-pack '<repo>'` or `git-upload-pack
//! '<repo>'`, quoted as git quotes it, for the one repository of this operation:
//! anything else is refused, so a process that reaches the socket can at most do what
//! the git command running then does. The host's side runs as an argv (no shell).
//! The socket and its directory are removed when the operation ends.

use std::future::Future;
use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use cmux_core::{quote, Error, ExecRequest, RemotePath, Result, Runtime, Stdin};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};

use crate::SshRuntime;

/// A frame of the remote command's standard output.
pub const FRAME_STDOUT: u8 = 1;
/// A frame of the remote command's standard error.
pub const FRAME_STDERR: u8 = 2;
/// The last frame: the remote command's exit code, an `i32` big-endian.
pub const FRAME_EXIT: u8 = 3;

/// Longest command a relay may send (git's are a service name and a path).
const MAX_COMMAND: u32 = 8192;

/// Exit code the relay uses when the connection to cmux fails or the command is
/// refused (as ssh's 255).
pub const RELAY_FAILURE: i32 = 255;

/// A listening relay socket for one git operation; removed (with its directory) on
/// drop.
pub(crate) struct RelayServer {
    dir: PathBuf,
    socket: PathBuf,
    listener: UnixListener,
    owner_uid: u32,
}

impl Drop for RelayServer {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.socket);
        let _ = std::fs::remove_dir(&self.dir);
    }
}

impl RelayServer {
    /// Listens on a socket in a new 0700 directory under the runtime's control
    /// directory.
    pub(crate) fn bind(runtime: &SshRuntime) -> Result<RelayServer> {
        use std::os::unix::fs::DirBuilderExt;
        let control = crate::control_dir_for(runtime.options())?;
        let fail = |what: &str, path: &Path, e: std::io::Error| {
            Error::backend(
                "ssh",
                format!(
                    "{}: cannot prepare the git relay socket ({what} {}): {e}; check that \
                     the control directory {} is yours and writable",
                    runtime.host(),
                    path.display(),
                    control.display()
                ),
            )
        };
        // A new name each try: `create` (not create_dir_all) fails on an existing
        // entry, so nothing planted is ever used.
        let mut attempt = 0;
        let dir = loop {
            let dir = control.join(format!(
                "git-{}-{:08x}",
                std::process::id(),
                fastrand::u32(..)
            ));
            match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
                Ok(()) => break dir,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempt < 8 => {
                    attempt += 1;
                }
                Err(e) => return Err(fail("mkdir", &dir, e)),
            }
        };
        let owner_uid = match std::fs::symlink_metadata(&dir) {
            Ok(meta) => meta.uid(),
            Err(e) => {
                let _ = std::fs::remove_dir(&dir);
                return Err(fail("stat", &dir, e));
            }
        };
        let socket = dir.join("s");
        let listener = match UnixListener::bind(&socket) {
            Ok(l) => l,
            Err(e) => {
                let _ = std::fs::remove_dir(&dir);
                return Err(fail("bind", &socket, e));
            }
        };
        Ok(RelayServer {
            dir,
            socket,
            listener,
            owner_uid,
        })
    }

    /// `GIT_SSH_COMMAND` for local git: the relay program's words and the socket,
    /// quoted for `sh` (git runs it with `sh -c`). Use with `GIT_SSH_VARIANT=simple`.
    pub(crate) fn ssh_command(&self, relay_argv: &[String]) -> String {
        let mut words = relay_argv.to_vec();
        words.push(self.socket.display().to_string());
        quote::join(words)
    }

    /// Runs `work` (the local git command) while serving relay connections for
    /// `repo` on `runtime`'s host; returns what `work` returns. Connections still open
    /// when it ends are dropped.
    pub(crate) async fn serve_during<F: Future>(
        self,
        runtime: &SshRuntime,
        repo: &RemotePath,
        work: F,
    ) -> F::Output {
        let mut connections = tokio::task::JoinSet::new();
        tokio::pin!(work);
        loop {
            tokio::select! {
                out = &mut work => return out,
                accepted = self.listener.accept() => {
                    let stream = match accepted {
                        Ok((stream, _)) => stream,
                        Err(e) => {
                            // Transient (out of descriptors): do not spin.
                            tracing::debug!(error = %e, "git relay accept failed");
                            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                            continue;
                        }
                    };
                    let runtime = runtime.clone();
                    let repo = repo.clone();
                    let owner_uid = self.owner_uid;
                    connections.spawn(async move {
                        if let Err(e) = serve(stream, &runtime, &repo, owner_uid).await {
                            tracing::debug!(error = %e, "git relay connection failed");
                        }
                    });
                }
                // Reap finished connections so the set does not grow.
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        }
    }
}

/// `s` quoted as git quotes the path of a remote command (`sq_quote_buf`): in single
/// quotes, with `'` and `!` written as `'\''` and `'\!'`.
pub fn git_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        if c == '\'' || c == '!' {
            out.push('\'');
            out.push('\\');
            out.push(c);
            out.push('\'');
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

/// The git service `command` asks for, when it is exactly `git-receive-pack '<repo>'`
/// or `git-upload-pack '<repo>'`.
fn allowed_service(command: &str, repo: &RemotePath) -> Option<&'static str> {
    let quoted = git_quote(repo.as_str());
    ["receive-pack", "upload-pack"]
        .into_iter()
        .find(|service| command == format!("git-{service} {quoted}"))
}

/// One relay connection: checks, runs the command on the host, pumps.
async fn serve(
    mut stream: UnixStream,
    runtime: &SshRuntime,
    repo: &RemotePath,
    owner_uid: u32,
) -> Result<()> {
    let host = runtime.host().to_owned();
    let io = |what: &'static str| {
        let host = host.clone();
        move |e: std::io::Error| Error::Io {
            host: "local".into(),
            context: format!("git relay for {host}:{repo}: {what}"),
            source: e,
        }
    };
    let peer = stream.peer_cred().map_err(io("reading the peer's uid"))?;
    if peer.uid() != owner_uid {
        return Err(Error::backend(
            "ssh",
            format!(
                "git relay for {host}:{repo}: refused a connection from uid {} (not ours)",
                peer.uid()
            ),
        ));
    }
    let len = stream.read_u32().await.map_err(io("reading the command"))?;
    if len > MAX_COMMAND {
        return refuse(&mut stream, &format!("command of {len} bytes is too long")).await;
    }
    let mut command = vec![0; len as usize];
    stream
        .read_exact(&mut command)
        .await
        .map_err(io("reading the command"))?;
    let command = String::from_utf8_lossy(&command).into_owned();
    let Some(service) = allowed_service(&command, repo) else {
        return refuse(
            &mut stream,
            &format!(
                "refused remote command {command:?}: only git-receive-pack/git-upload-pack \
                 of {repo} are relayed"
            ),
        )
        .await;
    };
    let request = ExecRequest::argv(["git", service, repo.as_str()]).stdin(Stdin::Piped);
    let mut process = match runtime.exec(request).await {
        Ok(p) => p,
        Err(e) => {
            return refuse(
                &mut stream,
                &format!("cannot run git {service} on {host}: {e}"),
            )
            .await
        }
    };
    let (mut from_relay, mut to_relay) = stream.into_split();
    let stdin = process.stdin.take();
    let copy_in = async move {
        if let Some(mut stdin) = stdin {
            let _ = tokio::io::copy(&mut from_relay, &mut stdin).await;
            let _ = stdin.shutdown().await;
        }
        // The exit frame ends the exchange, not the relay's end of input.
        std::future::pending::<()>().await
    };
    let mut stdout = process.stdout.take();
    let mut stderr = process.stderr.take();
    let copy_out = async {
        let mut out_buf = vec![0; 64 * 1024];
        let mut err_buf = vec![0; 16 * 1024];
        while stdout.is_some() || stderr.is_some() {
            let (kind, n) = tokio::select! {
                n = read_some(&mut stdout, &mut out_buf), if stdout.is_some() => {
                    if n == 0 { stdout = None; continue }
                    (FRAME_STDOUT, n)
                }
                n = read_some(&mut stderr, &mut err_buf), if stderr.is_some() => {
                    if n == 0 { stderr = None; continue }
                    (FRAME_STDERR, n)
                }
            };
            let payload = if kind == FRAME_STDOUT {
                &out_buf[..n]
            } else {
                &err_buf[..n]
            };
            write_frame(&mut to_relay, kind, payload)
                .await
                .map_err(io("writing to the relay"))?;
        }
        let code = process.wait().await?.shell_code();
        write_frame(&mut to_relay, FRAME_EXIT, &code.to_be_bytes())
            .await
            .map_err(io("writing to the relay"))?;
        to_relay.flush().await.map_err(io("writing to the relay"))
    };
    tokio::select! {
        () = copy_in => Ok(()),
        done = copy_out => done,
    }
}

/// Reads what `stream` has (0 at its end or on an error: the stream is then done).
async fn read_some(stream: &mut Option<cmux_core::BoxRead>, buf: &mut [u8]) -> usize {
    match stream {
        Some(s) => s.read(buf).await.unwrap_or(0),
        None => 0,
    }
}

async fn write_frame<W: tokio::io::AsyncWrite + Unpin>(
    w: &mut W,
    kind: u8,
    payload: &[u8],
) -> std::io::Result<()> {
    let mut header = [0u8; 5];
    header[0] = kind;
    header[1..].copy_from_slice(&(payload.len() as u32).to_be_bytes());
    w.write_all(&header).await?;
    w.write_all(payload).await
}

/// Tells the relay why (on its stderr) and ends with [`RELAY_FAILURE`].
async fn refuse(stream: &mut UnixStream, why: &str) -> Result<()> {
    let message = format!("cmux: {why}\n");
    let _ = write_frame(stream, FRAME_STDERR, message.as_bytes()).await;
    let _ = write_frame(stream, FRAME_EXIT, &RELAY_FAILURE.to_be_bytes()).await;
    Err(Error::backend("ssh", format!("git relay: {why}")))
}

/// The relay program's side (`cmux __git-relay SOCKET HOST COMMAND`): connects to
/// `socket`, sends `command`, copies `stdin` to it (on a thread) and the frames back
/// to `stdout`/`stderr`; returns the remote command's exit code. Synchronous: git
/// runs it as a short-lived child.
pub fn run_relay_client(
    socket: &Path,
    command: &str,
    mut stdin: impl Read + Send + 'static,
    mut stdout: impl Write,
    mut stderr: impl Write,
) -> std::io::Result<i32> {
    use std::os::unix::net::UnixStream as StdUnixStream;
    let mut stream = StdUnixStream::connect(socket)?;
    let len = u32::try_from(command.len())
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "command too long"))?;
    stream.write_all(&len.to_be_bytes())?;
    stream.write_all(command.as_bytes())?;
    let mut upload = stream.try_clone()?;
    // Detached: the exit frame ends the relay even while git still holds our stdin.
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut stdin, &mut upload);
        let _ = upload.shutdown(std::net::Shutdown::Write);
    });
    let mut reader = std::io::BufReader::new(stream);
    let mut payload = Vec::new();
    loop {
        let mut header = [0u8; 5];
        reader.read_exact(&mut header)?;
        let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
        payload.resize(len, 0);
        reader.read_exact(&mut payload)?;
        match header[0] {
            FRAME_STDOUT => {
                stdout.write_all(&payload)?;
                stdout.flush()?;
            }
            FRAME_STDERR => {
                stderr.write_all(&payload)?;
                stderr.flush()?;
            }
            FRAME_EXIT => {
                let code: [u8; 4] = payload.as_slice().try_into().map_err(|_| {
                    std::io::Error::new(std::io::ErrorKind::InvalidData, "bad exit frame")
                })?;
                return Ok(i32::from_be_bytes(code));
            }
            other => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("unknown frame kind {other}"),
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_as_git() {
        assert_eq!(git_quote("/a/b.git"), "'/a/b.git'");
        assert_eq!(git_quote("/a'b!c"), "'/a'\\''b'\\!'c'");
    }

    #[test]
    fn only_the_operations_repository_is_allowed() {
        let repo = RemotePath::new("/h/src/p/.cmux-base.git").expect("path");
        assert_eq!(
            allowed_service("git-receive-pack '/h/src/p/.cmux-base.git'", &repo),
            Some("receive-pack")
        );
        assert_eq!(
            allowed_service("git-upload-pack '/h/src/p/.cmux-base.git'", &repo),
            Some("upload-pack")
        );
        for bad in [
            "git-receive-pack '/h/src/other.git'",
            "git-receive-pack /h/src/p/.cmux-base.git",
            "git-upload-archive '/h/src/p/.cmux-base.git'",
            "git-receive-pack '/h/src/p/.cmux-base.git'; rm -rf ~",
            "sh -c id",
        ] {
            assert_eq!(allowed_service(bad, &repo), None, "{bad}");
        }
    }
}
