//! One connection to a host helper: the handshake, the writer and demultiplexer tasks,
//! and requests in flight.
//!
//! Frames of every request share the stream. The demultiplexer never blocks on a slow
//! consumer: each request's frames go to its own unbounded queue, which the helper's
//! credit windows keep bounded.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cmux_core::{Error, Result};
use cmux_protocol::{
    Frame, FrameKind, Header, Hello, Notice, Request, HEADER_LEN, PROTOCOL_VERSION,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

/// Noise a shell may print before the helper starts, at most.
const MAX_NOISE: usize = 1 << 20;

/// How a handshake ended.
#[derive(Debug)]
pub enum Handshake {
    /// The helper answered.
    Ready(Arc<HelperConnection>),
    /// The stream ended before the helper spoke; `output` is what came (a shell's
    /// message: the helper is missing or cannot run).
    Ended {
        /// What the stream carried, if anything.
        output: Vec<u8>,
    },
    /// The stream carried something that is not the protocol.
    NotProtocol {
        /// What came instead (the start of it).
        output: Vec<u8>,
        /// What was wrong with it.
        reason: String,
    },
    /// Nothing came in time.
    TimedOut,
}

/// A live connection to a host helper. Cheap to share (`Arc`).
#[derive(Debug)]
pub struct HelperConnection {
    host: String,
    hello: Hello,
    writer: mpsc::UnboundedSender<Outgoing>,
    pending: Arc<Mutex<HashMap<u32, mpsc::UnboundedSender<Frame>>>>,
    /// Requests whose frame never left this process (the stream broke before any byte
    /// of it was written): nothing of them ran, so they may be sent again elsewhere.
    unsent: Arc<Mutex<std::collections::HashSet<u32>>>,
    /// Cancelled once the writer task ended (and recorded what it never sent).
    writer_done: tokio_util::sync::CancellationToken,
    next_id: AtomicU32,
    closed: tokio_util::sync::CancellationToken,
    close_reason: Arc<Mutex<Option<String>>>,
    notices: Arc<Mutex<Vec<String>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl HelperConnection {
    /// Reads the helper's hello from `reader` (after skipping everything up to `sync`,
    /// when given: what a shell printed before the helper ran), then starts the tasks
    /// that carry frames. `host` names the host in error messages.
    pub async fn handshake<R, W>(
        host: impl Into<String>,
        mut reader: R,
        writer: W,
        sync: Option<&[u8]>,
        timeout: Duration,
    ) -> Handshake
    where
        R: AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let host = host.into();
        let hello = match tokio::time::timeout(timeout, read_hello(&mut reader, sync)).await {
            Err(_) => return Handshake::TimedOut,
            Ok(Err(outcome)) => return outcome,
            Ok(Ok(hello)) => hello,
        };
        if hello.protocol != PROTOCOL_VERSION {
            return Handshake::NotProtocol {
                output: Vec::new(),
                reason: format!(
                    "the helper speaks protocol {} and this cmux protocol {PROTOCOL_VERSION}",
                    hello.protocol
                ),
            };
        }
        let (wtx, wrx) = mpsc::unbounded_channel::<Outgoing>();
        let conn = Arc::new(HelperConnection {
            host,
            hello,
            writer: wtx,
            pending: Arc::default(),
            unsent: Arc::default(),
            writer_done: tokio_util::sync::CancellationToken::new(),
            next_id: AtomicU32::new(1),
            closed: tokio_util::sync::CancellationToken::new(),
            close_reason: Arc::default(),
            notices: Arc::default(),
        });
        tokio::spawn(write_loop(
            writer,
            wrx,
            conn.closed.clone(),
            conn.close_reason.clone(),
            conn.unsent.clone(),
            conn.writer_done.clone(),
        ));
        tokio::spawn(read_loop(
            reader,
            conn.pending.clone(),
            conn.closed.clone(),
            conn.close_reason.clone(),
            conn.notices.clone(),
            conn.host.clone(),
        ));
        Handshake::Ready(conn)
    }

    /// What the helper said about itself.
    pub fn hello(&self) -> &Hello {
        &self.hello
    }

    /// The host label used in messages.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// True once the stream broke or ended.
    pub fn is_closed(&self) -> bool {
        self.closed.is_cancelled()
    }

    /// Resolves when the connection closes.
    pub async fn closed(&self) {
        self.closed.cancelled().await;
    }

    /// Notices the helper sent (e.g. why commands lack the login environment).
    pub fn notices(&self) -> Vec<String> {
        lock(&self.notices).clone()
    }

    /// Ends the connection: the helper sees its stdin close and kills what it started.
    pub fn close(&self) {
        self.fail(Some("the connection was closed by cmux".into()));
    }

    /// Ends the connection because its transport ended (`reason` says how: the ssh
    /// channel closed, the pipe command exited).
    pub fn close_because(&self, reason: impl Into<String>) {
        self.fail(Some(reason.into()));
    }

    fn fail(&self, reason: Option<String>) {
        if let Some(reason) = reason {
            lock(&self.close_reason).get_or_insert(reason);
        }
        self.closed.cancel();
    }

    /// The error for an operation cut by the connection's end.
    pub(crate) fn lost(&self, what: &str) -> Error {
        let reason = lock(&self.close_reason)
            .clone()
            .unwrap_or_else(|| "the helper's stream ended".into());
        Error::Connection {
            host: self.host.clone(),
            message: format!("the connection to the cmux helper was lost during {what}: {reason}"),
        }
    }

    /// The error for a request refused because the connection was already closed.
    fn lost_request_never_queued(&self, what: &str) -> Error {
        match self.lost(what) {
            Error::Connection { host, message } => Error::Connection {
                host,
                message: format!("{message} ({})", cmux_core::error::NOTHING_RAN),
            },
            other => other,
        }
    }

    /// The error for request `id` cut by the connection's end: [`Error::nothing_ran`]
    /// when none of its bytes left this process.
    fn lost_request(&self, id: u32, what: &str) -> Error {
        let never_sent = lock(&self.unsent).remove(&id);
        match self.lost(what) {
            Error::Connection { host, message } if never_sent => Error::Connection {
                host,
                message: format!("{message} ({})", cmux_core::error::NOTHING_RAN),
            },
            other => other,
        }
    }

    /// Queues a frame; false when the connection is already closed (it did not leave).
    pub(crate) fn send(&self, frame: &Frame) -> bool {
        !self.is_closed() && self.writer.send(Outgoing::other(frame)).is_ok()
    }

    /// Starts `request` and returns its frames. Nothing is retried here: an error
    /// means the connection closed, and the runtime reconnects for the next operation.
    pub(crate) fn start(self: &Arc<Self>, request: &Request, what: &str) -> Result<Pending> {
        let (tx, rx) = mpsc::unbounded_channel();
        let id = {
            let mut pending = lock(&self.pending);
            let mut id = self.next_id.fetch_add(1, Ordering::Relaxed);
            while id == 0 || pending.contains_key(&id) {
                id = self.next_id.fetch_add(1, Ordering::Relaxed);
            }
            pending.insert(id, tx);
            id
        };
        let pending = Pending {
            id,
            rx,
            conn: self.clone(),
            done: false,
            what: what.to_owned(),
        };
        let frame = Frame::json(FrameKind::Request, id, request);
        if self.is_closed() || self.writer.send(Outgoing::request(id, &frame)).is_err() {
            lock(&self.pending).remove(&id);
            let mut pending = pending;
            pending.done = true;
            return Err(self.lost_request_never_queued(what));
        }
        Ok(pending)
    }
}

impl Drop for HelperConnection {
    fn drop(&mut self) {
        self.closed.cancel();
    }
}

/// Frames of one request in flight. Dropping it before the request's last frame
/// releases the request on the helper (a command is killed, a write abandoned).
#[derive(Debug)]
pub(crate) struct Pending {
    pub(crate) id: u32,
    rx: mpsc::UnboundedReceiver<Frame>,
    pub(crate) conn: Arc<HelperConnection>,
    done: bool,
    what: String,
}

impl Pending {
    /// The next frame of this request; a connection error when the stream ended.
    pub(crate) async fn next(&mut self) -> Result<Frame> {
        match self.rx.recv().await {
            Some(frame) => {
                if matches!(frame.kind, FrameKind::Reply | FrameKind::Error) {
                    self.done = true;
                    lock(&self.conn.pending).remove(&self.id);
                }
                Ok(frame)
            }
            None => {
                self.done = true;
                // Whether this request left is known once the writer has stopped.
                let _ =
                    tokio::time::timeout(Duration::from_secs(2), self.conn.writer_done.cancelled())
                        .await;
                Err(self.conn.lost_request(self.id, &self.what))
            }
        }
    }

    /// Sends a frame belonging to this request.
    pub(crate) fn send(&self, frame: &Frame) -> bool {
        self.conn.send(frame)
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if !self.done {
            lock(&self.conn.pending).remove(&self.id);
            self.conn
                .send(&Frame::new(FrameKind::Release, self.id, Vec::new()));
        }
    }
}

async fn read_hello<R: AsyncRead + Unpin>(
    reader: &mut R,
    sync: Option<&[u8]>,
) -> std::result::Result<Hello, Handshake> {
    let mut seen = Vec::new();
    if let Some(sync) = sync {
        let mut byte = [0u8; 4096];
        loop {
            if let Some(at) = find(&seen, sync) {
                // Whatever followed the marker is the start of the first frame.
                let rest = seen.split_off(at + sync.len());
                if !seen[..at].is_empty() {
                    tracing::debug!(noise = ?String::from_utf8_lossy(&seen[..at]), "the host's shell printed before the helper started");
                }
                seen = rest;
                break;
            }
            if seen.len() > MAX_NOISE {
                return Err(Handshake::NotProtocol {
                    output: seen[..4096].to_vec(),
                    reason: "more than 1 MiB of output came before the helper".into(),
                });
            }
            match reader.read(&mut byte).await {
                Ok(0) | Err(_) => return Err(Handshake::Ended { output: seen }),
                Ok(n) => seen.extend_from_slice(&byte[..n]),
            }
        }
    }
    while seen.len() < HEADER_LEN {
        let mut byte = [0u8; HEADER_LEN];
        match reader.read(&mut byte[..HEADER_LEN - seen.len()]).await {
            Ok(0) | Err(_) => return Err(Handshake::Ended { output: seen }),
            Ok(n) => seen.extend_from_slice(&byte[..n]),
        }
    }
    let mut header = [0u8; HEADER_LEN];
    header.copy_from_slice(&seen[..HEADER_LEN]);
    let header = match Header::parse(&header) {
        Ok(h) if h.kind == FrameKind::Hello => h,
        Ok(h) => {
            return Err(Handshake::NotProtocol {
                output: seen,
                reason: format!("the first frame is {:?}, not a hello", h.kind),
            })
        }
        Err(e) => {
            return Err(Handshake::NotProtocol {
                output: seen,
                reason: e.to_string(),
            })
        }
    };
    let mut body = seen.split_off(HEADER_LEN);
    let len = header.len as usize;
    if body.len() < len {
        let start = body.len();
        body.resize(len, 0);
        if reader.read_exact(&mut body[start..]).await.is_err() {
            return Err(Handshake::Ended { output: seen });
        }
    }
    // Bytes past the hello cannot exist: the helper waits for a request first.
    let frame = Frame::new(FrameKind::Hello, header.id, body);
    frame
        .parse::<Hello>("hello")
        .map_err(|e| Handshake::NotProtocol {
            output: Vec::new(),
            reason: e.to_string(),
        })
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Bytes for the writer: an encoded frame, and the id of the request it starts.
#[derive(Debug)]
struct Outgoing {
    bytes: Vec<u8>,
    starts: Option<u32>,
}

impl Outgoing {
    fn request(id: u32, frame: &Frame) -> Outgoing {
        Outgoing {
            bytes: frame.encode(),
            starts: Some(id),
        }
    }

    fn other(frame: &Frame) -> Outgoing {
        Outgoing {
            bytes: frame.encode(),
            starts: None,
        }
    }
}

async fn write_loop<W: AsyncWrite + Unpin>(
    mut writer: W,
    mut rx: mpsc::UnboundedReceiver<Outgoing>,
    closed: tokio_util::sync::CancellationToken,
    reason: Arc<Mutex<Option<String>>>,
    unsent: Arc<Mutex<std::collections::HashSet<u32>>>,
    done: tokio_util::sync::CancellationToken,
) {
    let mut buf = Vec::with_capacity(256 * 1024);
    // Requests starting in `buf`, with the offset of their first byte.
    let mut starts: Vec<(u32, usize)> = Vec::new();
    let take = |item: Outgoing, buf: &mut Vec<u8>, starts: &mut Vec<(u32, usize)>| {
        if let Some(id) = item.starts {
            starts.push((id, buf.len()));
        }
        buf.extend_from_slice(&item.bytes);
    };
    loop {
        let first = tokio::select! {
            first = rx.recv() => first,
            () = closed.cancelled() => None,
        };
        let Some(first) = first else { break };
        buf.clear();
        starts.clear();
        take(first, &mut buf, &mut starts);
        // Frames queued together leave together: pipelined requests cost one write.
        while buf.len() < 1 << 20 {
            match rx.try_recv() {
                Ok(more) => take(more, &mut buf, &mut starts),
                Err(_) => break,
            }
        }
        let mut written = 0;
        let result = async {
            while written < buf.len() {
                match writer.write(&buf[written..]).await {
                    Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
                    Ok(n) => written += n,
                    Err(e) => return Err(e),
                }
            }
            writer.flush().await
        }
        .await;
        if let Err(e) = result {
            // Requests none of whose bytes were written never reached the helper.
            lock(&unsent).extend(
                starts
                    .iter()
                    .filter(|(_, at)| *at >= written)
                    .map(|(id, _)| *id),
            );
            while let Ok(item) = rx.try_recv() {
                if let Some(id) = item.starts {
                    lock(&unsent).insert(id);
                }
            }
            lock(&reason).get_or_insert_with(|| format!("writing to the helper failed: {e}"));
            closed.cancel();
            break;
        }
    }
    // Whatever was queued after the end never left either.
    while let Ok(item) = rx.try_recv() {
        if let Some(id) = item.starts {
            lock(&unsent).insert(id);
        }
    }
    done.cancel();
    // Closing our end is what tells the helper to kill what it started.
    let _ = writer.shutdown().await;
}

async fn read_loop<R: AsyncRead + Unpin>(
    mut reader: R,
    pending: Arc<Mutex<HashMap<u32, mpsc::UnboundedSender<Frame>>>>,
    closed: tokio_util::sync::CancellationToken,
    reason: Arc<Mutex<Option<String>>>,
    notices: Arc<Mutex<Vec<String>>>,
    host: String,
) {
    let mut reader = tokio::io::BufReader::with_capacity(256 * 1024, &mut reader);
    let outcome = loop {
        let mut header = [0u8; HEADER_LEN];
        let read = tokio::select! {
            r = reader.read_exact(&mut header) => r,
            () = closed.cancelled() => break None,
        };
        if let Err(e) = read {
            break Some(if e.kind() == std::io::ErrorKind::UnexpectedEof {
                "the helper's stream ended (the helper exited or the channel closed)".to_owned()
            } else {
                format!("reading from the helper failed: {e}")
            });
        }
        let header = match Header::parse(&header) {
            Ok(h) => h,
            Err(e) => break Some(format!("the helper sent a malformed frame: {e}")),
        };
        let mut body = vec![0u8; header.len as usize];
        if let Err(e) = reader.read_exact(&mut body).await {
            break Some(format!("the helper's stream ended inside a frame: {e}"));
        }
        let frame = Frame::new(header.kind, header.id, body);
        if frame.kind == FrameKind::Notice {
            if let Ok(notice) = frame.parse::<Notice>("notice") {
                tracing::warn!(host = %host, "cmux helper: {}", notice.message);
                lock(&notices).push(notice.message);
            }
            continue;
        }
        let tx = lock(&pending).get(&frame.id).cloned();
        if let Some(tx) = tx {
            let _ = tx.send(frame);
        }
    };
    if let Some(outcome) = outcome {
        lock(&reason).get_or_insert(outcome);
    }
    closed.cancel();
    // Every request in flight learns the connection is gone.
    lock(&pending).clear();
}
