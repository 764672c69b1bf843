//! The connection: reads frames from stdin, runs each request on its own thread,
//! routes data, credits, kills and releases to the request they belong to, and when
//! stdin closes ends every process group it started ([`hang_up`]) and exits.

use std::collections::HashMap;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cmux_protocol::{
    ErrorKind, Frame, FrameKind, FrameReader, Hello, InfoReply, Request, WireError,
    PROTOCOL_VERSION,
};
use serde::Serialize;

use crate::env::LoginEnv;
use crate::errors::error;
use crate::exec::{self, ExecHandle, StdinChunk};
use crate::outbox::Outbox;
use crate::window::Window;
use crate::write::{self, Chunk};
use crate::{files, sys};

type Table<T> = Mutex<HashMap<u32, T>>;

/// Commands in flight, by request id. Shared with the writer thread, which ends the
/// connection when the client stops reading.
type Execs = Arc<Table<Arc<ExecHandle>>>;

struct State {
    out: Outbox,
    execs: Execs,
    writes: Table<Sender<Chunk>>,
    reads: Table<Arc<Window>>,
    login_env: Arc<LoginEnv>,
    home: PathBuf,
    umask: u32,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Serves the protocol on stdin/stdout until stdin closes; the process exit code.
pub(crate) fn serve(sync: Option<&str>) -> i32 {
    let umask = sys::read_umask();
    let home = crate::env::home_dir().unwrap_or_else(|| PathBuf::from("/"));
    let (stdin, stdout) = sys::stdio_files();
    let execs: Execs = Arc::default();
    let login_env = Arc::new(LoginEnv::default());
    let out = {
        let (execs, login_env) = (execs.clone(), login_env.clone());
        Outbox::start(stdout, move || {
            // The client stopped reading: same as a closed stdin.
            hang_up(&execs, &login_env);
            std::process::exit(0);
        })
    };
    login_env.capture_in_background();
    if let Some(sync) = sync {
        out.send_bytes(sync.as_bytes().to_vec());
    }
    out.send_json(
        FrameKind::Hello,
        0,
        &Hello {
            protocol: PROTOCOL_VERSION,
            version: env!("CARGO_PKG_VERSION").to_owned(),
            build: crate::BUILD.to_owned(),
            pid: std::process::id(),
            uid: sys::uid(),
            home: home.to_string_lossy().into_owned(),
            os: std::env::consts::OS.to_owned(),
            arch: std::env::consts::ARCH.to_owned(),
        },
    );
    {
        // Tell the client once why commands lack the login environment.
        let login_env = login_env.clone();
        let out = out.clone();
        std::thread::spawn(move || {
            if let Some(message) = login_env.wait_error() {
                out.send_json(FrameKind::Notice, 0, &cmux_protocol::Notice { message });
            }
        });
    }
    let state = Arc::new(State {
        out,
        execs,
        writes: Mutex::default(),
        reads: Mutex::default(),
        login_env,
        home,
        umask,
    });
    let mut reader = FrameReader::new(BufReader::with_capacity(256 * 1024, stdin));
    loop {
        match reader.next_frame() {
            Ok(Some(frame)) => handle_frame(&state, frame),
            Ok(None) => break,
            Err(e) => {
                eprintln!("cmux-host: the connection broke: {e}");
                break;
            }
        }
    }
    hang_up(&state.execs, &state.login_env);
    0
}

/// How long commands get to end on SIGTERM when the client is gone, before SIGKILL.
const HANG_UP_GRACE: Duration = Duration::from_millis(500);

/// The client is gone: every command still supervised, and the login shell capturing
/// the environment, get SIGTERM on their group, and SIGKILL once they have ended or
/// [`HANG_UP_GRACE`] has passed. TERM first because a program killed outright leaves
/// debris: git removes its `.lock` files on TERM, not on KILL (an interrupted
/// workspace create must not fail the next one), and so does pyenv's rehash in a
/// startup file (its stale lock stalls every later login shell for a minute).
fn hang_up(execs: &Execs, login_env: &LoginEnv) {
    let handles: Vec<Arc<ExecHandle>> = lock(execs).values().cloned().collect();
    for handle in &handles {
        handle.terminate();
    }
    login_env.signal(libc::SIGTERM);
    let deadline = Instant::now() + HANG_UP_GRACE;
    while Instant::now() < deadline
        && (login_env.is_capturing() || handles.iter().any(|h| h.is_running()))
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    for handle in &handles {
        handle.kill();
    }
    login_env.signal(libc::SIGKILL);
}

fn handle_frame(state: &Arc<State>, frame: Frame) {
    let id = frame.id;
    match frame.kind {
        FrameKind::Request => match frame.parse::<Request>("request") {
            Ok(request) => start_request(state, id, request),
            Err(e) => reply::<()>(
                &state.out,
                id,
                Err(error(ErrorKind::InvalidInput, None, e.to_string())),
            ),
        },
        FrameKind::Data | FrameKind::DataEnd => {
            let end = frame.kind == FrameKind::DataEnd;
            if let Some(tx) = lock(&state.writes).get(&id) {
                let _ = tx.send(if end {
                    Chunk::End
                } else {
                    Chunk::Data(frame.body)
                });
                return;
            }
            let handle = lock(&state.execs).get(&id).cloned();
            if let Some(handle) = handle {
                handle.stdin_send(if end {
                    StdinChunk::End
                } else {
                    StdinChunk::Data(frame.body)
                });
            }
        }
        FrameKind::Kill => {
            let handle = lock(&state.execs).get(&id).cloned();
            if let Some(h) = handle {
                h.kill();
            }
        }
        FrameKind::Release => {
            let handle = lock(&state.execs).get(&id).cloned();
            if let Some(h) = handle {
                h.release();
            }
            // Dropping the sender abandons an incomplete write (its temp file goes).
            lock(&state.writes).remove(&id);
            if let Some(w) = lock(&state.reads).get(&id) {
                w.close();
            }
        }
        FrameKind::Credit => {
            let Ok((stream, bytes)) = frame.parse_credit() else {
                return;
            };
            if let Some(w) = lock(&state.reads).get(&id) {
                w.grant(bytes);
                return;
            }
            let handle = lock(&state.execs).get(&id).cloned();
            if let (Some(h), 1..=2) = (handle, stream) {
                h.windows[usize::from(stream - 1)].grant(bytes);
            }
        }
        // Frames only a helper sends: a confused client; nothing to do.
        _ => {}
    }
}

fn start_request(state: &Arc<State>, id: u32, request: Request) {
    let in_flight = lock(&state.execs).contains_key(&id)
        || lock(&state.writes).contains_key(&id)
        || lock(&state.reads).contains_key(&id);
    if in_flight {
        return reply::<()>(
            &state.out,
            id,
            Err(error(
                ErrorKind::InvalidInput,
                None,
                format!("request id {id} is already in flight"),
            )),
        );
    }
    // Registered before the next frame is read, so data that follows finds its request.
    let job: Box<dyn FnOnce() + Send> = match request {
        Request::Exec(spec) => {
            let (handle, stdin_rx) = ExecHandle::new(spec.window, spec.stdin);
            lock(&state.execs).insert(id, handle.clone());
            let state = state.clone();
            Box::new(move || {
                let result = exec::run(
                    id,
                    spec,
                    &handle,
                    stdin_rx,
                    &state.out,
                    &state.login_env,
                    &state.home,
                );
                lock(&state.execs).remove(&id);
                reply(&state.out, id, result);
            })
        }
        Request::Write(spec) => {
            let (tx, rx) = mpsc::channel();
            lock(&state.writes).insert(id, tx);
            let state = state.clone();
            Box::new(move || {
                let result = write::write(&spec, &rx, state.umask);
                lock(&state.writes).remove(&id);
                reply(&state.out, id, result);
            })
        }
        Request::Read(spec) => {
            let window = Arc::new(Window::new(spec.window.unwrap_or(u64::MAX)));
            lock(&state.reads).insert(id, window.clone());
            let state = state.clone();
            Box::new(move || {
                let result = files::read(&spec, id, &state.out, &window);
                lock(&state.reads).remove(&id);
                reply(&state.out, id, result);
            })
        }
        other => {
            let state = state.clone();
            Box::new(move || simple(&state, id, other))
        }
    };
    if std::thread::Builder::new().spawn(job).is_err() {
        lock(&state.execs).remove(&id);
        lock(&state.writes).remove(&id);
        lock(&state.reads).remove(&id);
        reply::<()>(
            &state.out,
            id,
            Err(error(
                ErrorKind::Io,
                None,
                "the helper cannot start another thread (the user's process limit?): retry when fewer operations run",
            )),
        );
    }
}

fn simple(state: &State, id: u32, request: Request) {
    let out = &state.out;
    match request {
        Request::Stat { path, no_follow } => {
            reply(out, id, files::stat(Path::new(&path), no_follow))
        }
        Request::ReadDir { path } => reply(out, id, files::read_dir(Path::new(&path))),
        Request::MkdirAll { path } => reply(out, id, files::mkdir_all(Path::new(&path))),
        Request::Remove { path, recursive } => {
            reply(out, id, files::remove(Path::new(&path), recursive))
        }
        Request::Rename { from, to } => {
            reply(out, id, files::rename(Path::new(&from), Path::new(&to)))
        }
        Request::Realpath { path } => reply(out, id, files::realpath(Path::new(&path))),
        Request::Info => {
            let (login_env_error, login_env_vars) = state.login_env.status().unwrap_or((None, 0));
            let info = InfoReply {
                login_env_error,
                login_env_vars,
                exe: std::env::current_exe()
                    .map(|p| p.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                in_flight: lock(&state.execs).len() + lock(&state.reads).len(),
            };
            reply(out, id, Ok::<_, WireError>(info))
        }
        Request::Grep(req) => reply(out, id, crate::tools::grep(&req)),
        Request::Glob(req) => reply(out, id, crate::tools::glob(&req)),
        Request::Edit(req) => reply(out, id, crate::tools::edit(&req, state.umask)),
        Request::Exec(_) | Request::Write(_) | Request::Read(_) => {}
    }
}

fn reply<T: Serialize>(out: &Outbox, id: u32, result: Result<T, WireError>) {
    match result {
        Ok(value) => out.send_json(FrameKind::Reply, id, &value),
        Err(err) => out.send_json(FrameKind::Error, id, &err),
    }
}
