//! Commands through the helper: one request, typed frames for the start, the streams
//! and the exit; nothing in the output is interpreted.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use cmux_core::exec::NON_INTERACTIVE_ENV;
use cmux_core::{
    BoxRead, BoxWrite, Command, Error, ExecRequest, ExitStatus, Process, ProcessControl, Result,
    Stdin,
};
use cmux_protocol::frame::{STREAM_ERR, STREAM_OUT};
use cmux_protocol::{
    ExecCommand, ExecSpec, ExitInfo, Frame, FrameKind, Request, Started, WireError, DEFAULT_WINDOW,
    STDIN_WINDOW,
};
use tokio::sync::watch;

use crate::connection::{HelperConnection, Pending};
use crate::errors::from_wire;
use crate::streams::{ChunkSender, CreditReturn, FrameStream, StdinCredit, StdinSink};

type StatusCell = Option<std::result::Result<ExitStatus, String>>;

/// Starts `req` on the helper. Returns once the helper said the command started (one
/// round trip), so a bad working directory is an error here, not an exit code.
pub(crate) async fn spawn(
    conn: &Arc<HelperConnection>,
    req: ExecRequest,
    cwd: Option<String>,
) -> Result<Process> {
    req.validate()?;
    let command = match &req.command {
        Command::Script(s) => ExecCommand::Script(s.clone()),
        Command::Argv(words) => ExecCommand::Argv(words.clone()),
    };
    let env = NON_INTERACTIVE_ENV
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .chain(req.env.iter().cloned())
        .collect();
    let spec = ExecSpec {
        command,
        cwd,
        env,
        stdin: !matches!(req.stdin, Stdin::Null),
        login_env: true,
        window: DEFAULT_WINDOW,
    };
    let mut pending = conn.start(&Request::Exec(spec), "a command")?;
    let host = conn.host().to_owned();
    let first = pending.next().await?;
    match first.kind {
        FrameKind::Started => {
            first
                .parse::<Started>("started")
                .map_err(|e| Error::backend(&host, format!("the helper answered oddly: {e}")))?;
        }
        FrameKind::Error => {
            let err: WireError = first
                .parse("error")
                .map_err(|e| Error::backend(&host, format!("the helper answered oddly: {e}")))?;
            return Err(from_wire(&host, req.cwd.as_ref(), err));
        }
        other => {
            return Err(Error::backend(
                &host,
                format!("the helper answered a command with {other:?}"),
            ))
        }
    }
    let id = pending.id;
    let credit = |stream| {
        Some(CreditReturn {
            conn: conn.clone(),
            id,
            stream,
            step: DEFAULT_WINDOW / 4,
            owed: 0,
        })
    };
    let (out_tx, stdout) = FrameStream::new(credit(STREAM_OUT));
    let (err_tx, stderr) = FrameStream::new(credit(STREAM_ERR));
    let stdin_credit = StdinCredit::new(STDIN_WINDOW);
    let stdin = (!matches!(req.stdin, Stdin::Null)).then(|| {
        Box::pin(StdinSink {
            conn: conn.clone(),
            id,
            credit: stdin_credit.clone(),
            ended: false,
        }) as BoxWrite
    });
    let (status_tx, status_rx) = watch::channel::<StatusCell>(None);
    let done = Arc::new(AtomicBool::new(false));
    tokio::spawn(route(
        host.clone(),
        pending,
        [Some(out_tx), Some(err_tx)],
        status_tx,
        stdin_credit,
        done.clone(),
    ));
    let control = HelperControl {
        conn: conn.clone(),
        id,
        status: status_rx,
        done,
    };
    Ok(Process::new(
        host,
        stdin,
        Some(Box::pin(stdout) as BoxRead),
        Some(Box::pin(stderr) as BoxRead),
        Box::new(control),
        &req,
    ))
}

/// Hands the request's frames to the streams and the status until its last frame.
async fn route(
    host: String,
    mut pending: Pending,
    mut streams: [Option<ChunkSender>; 2],
    status: watch::Sender<StatusCell>,
    stdin_credit: Arc<StdinCredit>,
    done: Arc<AtomicBool>,
) {
    let lost = loop {
        let frame = match pending.next().await {
            Ok(f) => f,
            Err(e) => break Some(e.to_string()),
        };
        match frame.kind {
            FrameKind::Out | FrameKind::ErrOut => {
                let slot = usize::from(frame.kind == FrameKind::ErrOut);
                if let Some(tx) = &streams[slot] {
                    let _ = tx.send(Ok(frame.body));
                }
            }
            FrameKind::StreamEnd => {
                if let Some(&s) = frame.body.first() {
                    if s == STREAM_OUT || s == STREAM_ERR {
                        streams[usize::from(s - 1)] = None;
                    }
                }
            }
            FrameKind::Exit => {
                let st = match frame.parse::<ExitInfo>("exit") {
                    Ok(ExitInfo {
                        signal: Some(sig), ..
                    }) => Ok(ExitStatus::Signaled(sig)),
                    Ok(ExitInfo { code: Some(c), .. }) => Ok(ExitStatus::Exited(c)),
                    Ok(_) => Err("the helper reported an exit with no status".to_owned()),
                    Err(e) => Err(format!("the helper sent a malformed exit: {e}")),
                };
                status.send_replace(Some(st));
            }
            FrameKind::StdinCredit => {
                if let Ok(n) = frame.parse_u64("stdin credit") {
                    stdin_credit.grant(n);
                }
            }
            FrameKind::Reply => break None,
            FrameKind::Error => {
                let message = frame
                    .parse::<WireError>("error")
                    .map(|e| e.message)
                    .unwrap_or_else(|e| e.to_string());
                break Some(message);
            }
            _ => {}
        }
    };
    done.store(true, Ordering::Release);
    stdin_credit.close();
    if let Some(reason) = lost {
        for tx in streams.iter().flatten() {
            // The cmux error rides inside, so a caller finds Error::Connection.
            let error = Error::Connection {
                host: host.clone(),
                message: reason.clone(),
            };
            let _ = tx.send(Err(error.into_io(io::ErrorKind::ConnectionAborted)));
        }
        status.send_if_modified(|cell| {
            if cell.is_none() {
                *cell = Some(Err(format!(
                    "{reason}; the helper stops what it started when its connection drops, so the command was killed"
                )));
                true
            } else {
                false
            }
        });
    }
}

/// The backend side of a helper command.
struct HelperControl {
    conn: Arc<HelperConnection>,
    id: u32,
    status: watch::Receiver<StatusCell>,
    done: Arc<AtomicBool>,
}

#[async_trait]
impl ProcessControl for HelperControl {
    async fn wait(&mut self) -> Result<ExitStatus> {
        let cell = self
            .status
            .wait_for(Option::is_some)
            .await
            .map(|c| c.clone())
            .map_err(|_| self.conn.lost("a command"))?;
        match cell {
            Some(Ok(status)) => Ok(status),
            Some(Err(message)) => Err(Error::Connection {
                host: self.conn.host().to_owned(),
                message,
            }),
            None => Err(self.conn.lost("a command")),
        }
    }

    async fn kill(&mut self) -> Result<()> {
        // A closed connection already killed it: the helper kills its groups then.
        if !self.done.load(Ordering::Acquire) {
            self.conn
                .send(&Frame::new(FrameKind::Kill, self.id, Vec::new()));
        }
        Ok(())
    }
}

impl Drop for HelperControl {
    fn drop(&mut self) {
        // Whatever is left of the command (a plain `&`) ends with its Process.
        if !self.done.load(Ordering::Acquire) {
            self.conn
                .send(&Frame::new(FrameKind::Release, self.id, Vec::new()));
        }
    }
}
