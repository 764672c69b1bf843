//! Commands: each in its own process group, supervised until its request ends.
//!
//! - The command's pid is its process group. The helper learns that the command ended
//!   with `waitid(WNOWAIT)` and reaps it only when the request ends, so until then the
//!   zombie keeps the group's number reserved: a kill can never reach a reused pid.
//! - Exit status and signal travel as an [`FrameKind::Exit`] frame: command output only
//!   ever travels inside `Out`/`ErrOut` frames, so no output can imitate a status.
//! - When the request ends (both streams closed, or the client released it), whatever
//!   is left of the group is killed: a plain `&` in a command dies with its call.
//!   Background jobs meant to outlive their call start their own session (`setsid`),
//!   which this supervision deliberately leaves alone.
//! - When the connection ends, every group still supervised is killed (see `serve`).

use std::ffi::OsString;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use cmux_protocol::{
    frame::{STREAM_ERR, STREAM_OUT},
    Done, ErrorKind, ExecCommand, ExecSpec, ExitInfo, Frame, FrameKind, Started, WireError,
};

use crate::env::LoginEnv;
use crate::errors::{error, io_error};
use crate::files::CHUNK;
use crate::outbox::Outbox;
use crate::sys::{self, Ended};
use crate::window::Window;

/// Stack of the small per-command threads (pumps, stdin writer).
const SMALL_STACK: usize = 128 * 1024;

/// What the connection's reader passes to a command's stdin.
#[derive(Debug)]
pub(crate) enum StdinChunk {
    /// More input.
    Data(Vec<u8>),
    /// End of input.
    End,
}

/// The shared state of one command, reachable from the connection's reader (kill,
/// release, credit, stdin) and from the command's own threads.
#[derive(Debug)]
pub(crate) struct ExecHandle {
    group: Mutex<Group>,
    /// Signalled when a stream ends or the request is released.
    changed: Condvar,
    pub(crate) windows: [Window; 2],
    stdin: Mutex<Option<Sender<StdinChunk>>>,
}

#[derive(Debug, Default)]
struct Group {
    pgid: Option<u32>,
    reaped: bool,
    kill_asked: bool,
    released: bool,
    open_streams: u8,
    /// Per stream (stdout, stderr): its pipe while its pump reads it, and the bytes
    /// sent so far. A pump reads and sends under this lock, so under it nothing read
    /// is unsent (see [`ExecHandle::flush_before_exit`]).
    pipes: [PipeState; 2],
}

#[derive(Debug, Default)]
struct PipeState {
    fd: Option<RawFd>,
    sent: u64,
}

/// How long the exit status may wait for output the command wrote before it exited
/// (only a client that stopped granting credit makes it wait that long).
const FLUSH_BEFORE_EXIT: Duration = Duration::from_secs(10);

impl ExecHandle {
    /// A handle for a command whose streams have `window` bytes of credit each; with
    /// `stdin`, the receiving end of its input.
    pub(crate) fn new(window: u64, stdin: bool) -> (Arc<ExecHandle>, Option<Receiver<StdinChunk>>) {
        let (tx, rx) = if stdin {
            let (tx, rx) = mpsc::channel();
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        let handle = Arc::new(ExecHandle {
            group: Mutex::new(Group {
                open_streams: 2,
                ..Group::default()
            }),
            changed: Condvar::new(),
            windows: [Window::new(window), Window::new(window)],
            stdin: Mutex::new(tx),
        });
        (handle, rx)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Group> {
        self.group.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Kills the command's group now (or as soon as it has one).
    pub(crate) fn kill(&self) {
        let mut g = self.lock();
        g.kill_asked = true;
        if let (Some(pgid), false) = (g.pgid, g.reaped) {
            sys::kill_group(pgid);
        }
    }

    /// Asks the command's group to end (SIGTERM) when the client is gone; see
    /// `serve::hang_up`.
    pub(crate) fn terminate(&self) {
        let g = self.lock();
        if let (Some(pgid), false) = (g.pgid, g.reaped) {
            sys::signal_group(pgid, libc::SIGTERM);
        }
    }

    /// Whether the command has started and its group is not yet reaped.
    pub(crate) fn is_running(&self) -> bool {
        let g = self.lock();
        g.pgid.is_some() && !g.reaped
    }

    /// The client is done with the command: end it now.
    pub(crate) fn release(&self) {
        self.lock().released = true;
        self.kill();
        for w in &self.windows {
            w.close();
        }
        self.stdin_close();
        self.changed.notify_all();
    }

    /// Passes stdin data on; false when the command takes no (more) input.
    pub(crate) fn stdin_send(&self, chunk: StdinChunk) -> bool {
        let tx = self.stdin.lock().unwrap_or_else(|e| e.into_inner());
        match tx.as_ref() {
            Some(tx) => tx.send(chunk).is_ok(),
            None => false,
        }
    }

    fn stdin_close(&self) {
        self.stdin.lock().unwrap_or_else(|e| e.into_inner()).take();
    }

    /// Waits until everything the command's pipes held when it exited has been sent
    /// (or their pumps ended, or [`FLUSH_BEFORE_EXIT`]), so its Exit frame follows its
    /// output: a client may stop reading soon after the status (a background child
    /// can keep the pipes open forever), and must not lose what came before it.
    fn flush_before_exit(&self) {
        let targets: Vec<(usize, u64)> = {
            let g = self.lock();
            g.pipes
                .iter()
                .enumerate()
                .filter_map(|(i, p)| {
                    let fd = p.fd?;
                    let waiting = sys::bytes_waiting(fd).ok()? as u64;
                    (waiting > 0).then_some((i, p.sent + waiting))
                })
                .collect()
        };
        if targets.is_empty() {
            return;
        }
        let deadline = Instant::now() + FLUSH_BEFORE_EXIT;
        let mut g = self.lock();
        loop {
            let done = targets
                .iter()
                .all(|&(i, target)| g.pipes[i].fd.is_none() || g.pipes[i].sent >= target);
            let now = Instant::now();
            if done || g.released || now >= deadline {
                return;
            }
            g = match self.changed.wait_timeout(g, deadline - now) {
                Ok((g, _)) => g,
                Err(e) => e.into_inner().0,
            };
        }
    }

    fn stream_ended(&self) {
        let mut g = self.lock();
        g.open_streams = g.open_streams.saturating_sub(1);
        drop(g);
        self.changed.notify_all();
    }
}

/// Runs command `id` to the end of its request. Errors before the start are returned;
/// afterwards every outcome travels as frames.
pub(crate) fn run(
    id: u32,
    spec: ExecSpec,
    handle: &Arc<ExecHandle>,
    stdin_rx: Option<Receiver<StdinChunk>>,
    out: &Outbox,
    login_env: &LoginEnv,
    home: &Path,
) -> Result<Done, WireError> {
    let cwd = match &spec.cwd {
        Some(c) => Path::new(c).to_path_buf(),
        None => home.to_path_buf(),
    };
    match std::fs::metadata(&cwd) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(error(
                ErrorKind::BadCwd,
                Some(&cwd),
                format!("working directory {} is not a directory", cwd.display()),
            ))
        }
        Err(e) => {
            let mut err = io_error("working directory", &cwd, &e);
            err.kind = ErrorKind::BadCwd;
            return Err(err);
        }
    }
    let base = if spec.login_env {
        login_env.vars()
    } else {
        crate::env::own_env()
    };
    let (mut command, program) = match &spec.command {
        ExecCommand::Script(script) => {
            let mut c = Command::new("bash");
            c.arg("-c").arg(script);
            (c, "bash".to_owned())
        }
        ExecCommand::Argv(argv) => {
            let Some((program, args)) = argv.split_first() else {
                return Err(error(
                    ErrorKind::InvalidInput,
                    None,
                    "empty command: give a program to run",
                ));
            };
            let mut c = Command::new(program);
            c.args(args);
            (c, program.clone())
        }
    };
    command
        .env_clear()
        .envs(base)
        // bash sources ~/.bashrc when it believes sshd started it (SSH_CLIENT set and
        // SHLVL below 1): the login environment is already there, and an interactive
        // rc file must not run, print or cost time around every command.
        .env("SHLVL", "1")
        .envs(
            spec.env
                .iter()
                .map(|(k, v)| (OsString::from(k), OsString::from(v))),
        )
        .env("PWD", &cwd)
        .current_dir(&cwd)
        .process_group(0)
        .stdin(if spec.stdin {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => return not_started(id, &spec, &program, &e, out),
    };
    let pid = child.id();
    {
        let mut g = handle.lock();
        g.pgid = Some(pid);
        if g.kill_asked {
            sys::kill_group(pid);
        }
    }
    out.send_json(FrameKind::Started, id, &Started { pid });

    let pumps = [
        (
            child.stdout.take().map(|s| File::from(OwnedFd::from(s))),
            STREAM_OUT,
        ),
        (
            child.stderr.take().map(|s| File::from(OwnedFd::from(s))),
            STREAM_ERR,
        ),
    ];
    {
        // Known before any pump runs, so `flush_before_exit` sees every pipe.
        let mut g = handle.lock();
        for (pipe, stream) in &pumps {
            g.pipes[usize::from(stream - 1)].fd = pipe.as_ref().map(AsRawFd::as_raw_fd);
        }
    }
    for (pipe, stream) in pumps {
        let (pump_handle, out) = (handle.clone(), out.clone());
        let spawned = std::thread::Builder::new()
            .stack_size(SMALL_STACK)
            .spawn(move || pump(id, stream, pipe, &pump_handle, &out));
        if spawned.is_err() {
            handle.lock().pipes[usize::from(stream - 1)].fd = None;
            handle.stream_ended();
        }
    }
    if let (Some(pipe), Some(rx)) = (child.stdin.take(), stdin_rx) {
        let out = out.clone();
        let _ = std::thread::Builder::new()
            .stack_size(SMALL_STACK)
            .spawn(move || feed_stdin(id, pipe, &rx, &out));
    } else {
        handle.stdin_close();
    }
    // The child is waited for by pid below; std's handle must not reap it.
    drop(child);

    let exit = match sys::wait_no_reap(pid) {
        Ok(Ended::Code(code)) => ExitInfo {
            code: Some(code),
            signal: None,
        },
        Ok(Ended::Signal(signal)) => ExitInfo {
            code: None,
            signal: Some(signal),
        },
        Err(e) => {
            // Cannot happen for our own child; report it rather than hang.
            out.send_json(
                FrameKind::Notice,
                0,
                &cmux_protocol::Notice {
                    message: format!("waiting for command {pid} failed: {e}"),
                },
            );
            ExitInfo {
                code: None,
                signal: Some(libc::SIGKILL),
            }
        }
    };
    handle.flush_before_exit();
    out.send_json(FrameKind::Exit, id, &exit);
    {
        let mut g = handle.lock();
        while g.open_streams > 0 && !g.released {
            g = handle.changed.wait(g).unwrap_or_else(|e| e.into_inner());
        }
        // What is left of the group (a plain `&`) dies with the call; then the pid is
        // released, and never signalled again.
        sys::kill_group(pid);
        g.reaped = true;
    }
    for w in &handle.windows {
        w.close();
    }
    sys::reap(pid);
    Ok(Done {})
}

/// A command that could not start: as a shell would report it (127 for a missing
/// program, 126 for one that cannot be executed), so argv and scripts agree.
fn not_started(
    id: u32,
    spec: &ExecSpec,
    program: &str,
    e: &std::io::Error,
    out: &Outbox,
) -> Result<Done, WireError> {
    let code = match (e.kind(), &spec.command) {
        (std::io::ErrorKind::NotFound, ExecCommand::Script(_)) => {
            return Err(error(
                ErrorKind::NotFound,
                None,
                "bash is not installed on the host (or not on the login PATH): install bash",
            ))
        }
        (std::io::ErrorKind::NotFound, _) => 127,
        _ => 126,
    };
    let what = if code == 127 {
        "command not found".to_owned()
    } else {
        e.to_string()
    };
    out.send_json(FrameKind::Started, id, &Started { pid: 0 });
    out.send_raw(
        FrameKind::ErrOut,
        id,
        format!("cmux-host: {program}: {what}\n").as_bytes(),
    );
    out.send(&Frame::new(FrameKind::StreamEnd, id, vec![STREAM_OUT]));
    out.send(&Frame::new(FrameKind::StreamEnd, id, vec![STREAM_ERR]));
    out.send_json(
        FrameKind::Exit,
        id,
        &ExitInfo {
            code: Some(code),
            signal: None,
        },
    );
    Ok(Done {})
}

fn pump(id: u32, stream: u8, pipe: Option<File>, handle: &ExecHandle, out: &Outbox) {
    let kind = if stream == STREAM_OUT {
        FrameKind::Out
    } else {
        FrameKind::ErrOut
    };
    let slot = usize::from(stream - 1);
    let window = &handle.windows[slot];
    if let Some(mut pipe) = pipe {
        let fd = pipe.as_raw_fd();
        let mut buf = vec![0u8; CHUNK];
        while let Some(room) = window.take(CHUNK as u64) {
            // Wait without the lock; then read (it will not block: one reader) and
            // send under it, so `flush_before_exit` never sees bytes in between.
            if sys::wait_readable(fd).is_err() {
                window.grant(room);
                break;
            }
            let mut g = handle.lock();
            let n = match pipe.read(&mut buf[..room as usize]) {
                Ok(0) => {
                    window.grant(room);
                    break;
                }
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {
                    window.grant(room);
                    continue;
                }
                Err(_) => {
                    window.grant(room);
                    break;
                }
            };
            if (n as u64) < room {
                window.grant(room - n as u64);
            }
            out.send_raw(kind, id, &buf[..n]);
            g.pipes[slot].sent += n as u64;
            drop(g);
            handle.changed.notify_all();
        }
        // The fd is forgotten before it closes (with `pipe`), so it is never probed
        // once another file may hold its number.
        handle.lock().pipes[slot].fd = None;
        drop(pipe);
    }
    out.send(&Frame::new(FrameKind::StreamEnd, id, vec![stream]));
    handle.stream_ended();
}

fn feed_stdin(
    id: u32,
    mut pipe: std::process::ChildStdin,
    rx: &Receiver<StdinChunk>,
    out: &Outbox,
) {
    let mut broken = false;
    while let Ok(chunk) = rx.recv() {
        match chunk {
            StdinChunk::Data(bytes) => {
                // A command that stopped reading (or exited) drops the rest; the credit
                // still flows so the client never waits on it.
                if !broken && pipe.write_all(&bytes).is_err() {
                    broken = true;
                }
                out.send(&Frame::stdin_credit(id, bytes.len() as u64));
            }
            StdinChunk::End => break,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cmux_protocol::{Header, HEADER_LEN};

    /// What the outbox wrote, kept for the test to read.
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl Write for Sink {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// Every frame's kind, request and body length, in order.
    fn frames(mut bytes: &[u8]) -> Vec<(FrameKind, u32, usize)> {
        let mut all = Vec::new();
        while bytes.len() >= HEADER_LEN {
            let mut head = [0u8; HEADER_LEN];
            head.copy_from_slice(&bytes[..HEADER_LEN]);
            let header = Header::parse(&head).expect("a valid header");
            let len = header.len as usize;
            all.push((header.kind, header.id, len));
            bytes = &bytes[HEADER_LEN + len..];
        }
        all
    }

    /// A client may stop reading a command's output soon after its exit status (a
    /// background child can hold the pipes open forever), so the Exit frame must come
    /// after every byte the command wrote before it exited. Many commands at once on
    /// two cores make the pump threads lag behind the waits.
    #[test]
    fn the_exit_frame_follows_everything_the_command_wrote() {
        const COMMANDS: u32 = 200;
        let sink = Sink::default();
        let out = Outbox::start(sink.clone(), || {});
        let login = Arc::new(LoginEnv::default());
        let threads: Vec<_> = (1..=COMMANDS)
            .map(|id| {
                let (out, login) = (out.clone(), login.clone());
                std::thread::spawn(move || {
                    let (handle, stdin) = ExecHandle::new(1 << 20, false);
                    let spec = ExecSpec {
                        command: cmux_protocol::ExecCommand::Argv(vec![
                            "sh".into(),
                            "-c".into(),
                            "printf %0700d 0; printf %0300d 0 >&2".into(),
                        ]),
                        cwd: None,
                        env: Vec::new(),
                        stdin: false,
                        login_env: false,
                        window: 1 << 20,
                    };
                    run(id, spec, &handle, stdin, &out, &login, Path::new("/")).expect("runs");
                })
            })
            .collect();
        for t in threads {
            t.join().expect("command thread");
        }
        // The outbox's writer thread drains its queue: wait until every Exit is out.
        let deadline = Instant::now() + Duration::from_secs(30);
        let all = loop {
            let bytes = sink.0.lock().unwrap_or_else(|e| e.into_inner()).clone();
            let all = frames(&bytes);
            let exits = all.iter().filter(|f| f.0 == FrameKind::Exit).count();
            if exits == COMMANDS as usize || Instant::now() > deadline {
                break all;
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        for id in 1..=COMMANDS {
            let exit = all
                .iter()
                .position(|f| f.0 == FrameKind::Exit && f.1 == id)
                .unwrap_or_else(|| panic!("command {id} sent no Exit"));
            let (before, after): (Vec<_>, Vec<_>) = all
                .iter()
                .enumerate()
                .filter(|(_, f)| f.1 == id && matches!(f.0, FrameKind::Out | FrameKind::ErrOut))
                .partition(|(i, _)| *i < exit);
            assert!(
                after.is_empty(),
                "command {id}: {} output frames came after its Exit",
                after.len()
            );
            let bytes: usize = before.iter().map(|(_, f)| f.2).sum();
            assert_eq!(bytes, 1000, "command {id}: all its output before its Exit");
        }
    }
}
