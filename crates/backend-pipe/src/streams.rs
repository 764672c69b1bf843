//! Byte streams over frames: a command's stdout/stderr (or a streamed file) as
//! `AsyncRead`, its stdin as `AsyncWrite`, both within the helper's credit windows.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll, Waker};

use cmux_protocol::{Frame, FrameKind};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::mpsc;

use crate::connection::HelperConnection;

/// Largest data frame the client sends.
const MAX_DATA_FRAME: usize = 256 * 1024;

/// Chunks of one stream, as the request's frame task hands them over.
pub(crate) type ChunkSender = mpsc::UnboundedSender<io::Result<Vec<u8>>>;

/// Gives the helper room again as bytes are consumed (in steps of a quarter window,
/// so a reader costs a credit frame per quarter window, not per read).
#[derive(Debug)]
pub(crate) struct CreditReturn {
    pub(crate) conn: Arc<HelperConnection>,
    pub(crate) id: u32,
    pub(crate) stream: u8,
    pub(crate) step: u64,
    pub(crate) owed: u64,
}

impl CreditReturn {
    fn consumed(&mut self, n: usize) {
        self.owed += n as u64;
        if self.owed >= self.step {
            self.conn
                .send(&Frame::credit(self.id, self.stream, self.owed));
            self.owed = 0;
        }
    }
}

/// A stream of bytes received as frames.
#[derive(Debug)]
pub(crate) struct FrameStream {
    rx: mpsc::UnboundedReceiver<io::Result<Vec<u8>>>,
    chunk: Vec<u8>,
    pos: usize,
    credit: Option<CreditReturn>,
    ended: bool,
}

impl FrameStream {
    /// A stream fed through the returned sender; `credit` returns room to the helper.
    pub(crate) fn new(credit: Option<CreditReturn>) -> (ChunkSender, FrameStream) {
        let (tx, rx) = mpsc::unbounded_channel();
        (
            tx,
            FrameStream {
                rx,
                chunk: Vec::new(),
                pos: 0,
                credit,
                ended: false,
            },
        )
    }

    /// Starts the stream with bytes already received.
    pub(crate) fn with_first(mut self, chunk: Vec<u8>) -> FrameStream {
        self.chunk = chunk;
        self.pos = 0;
        self
    }
}

impl AsyncRead for FrameStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.pos < this.chunk.len() {
                let n = buf.remaining().min(this.chunk.len() - this.pos);
                buf.put_slice(&this.chunk[this.pos..this.pos + n]);
                this.pos += n;
                if let Some(credit) = &mut this.credit {
                    credit.consumed(n);
                }
                return Poll::Ready(Ok(()));
            }
            if this.ended {
                return Poll::Ready(Ok(()));
            }
            match ready!(this.rx.poll_recv(cx)) {
                Some(Ok(chunk)) => {
                    this.chunk = chunk;
                    this.pos = 0;
                }
                Some(Err(e)) => {
                    this.ended = true;
                    return Poll::Ready(Err(e));
                }
                None => this.ended = true,
            }
        }
    }
}

/// Room the helper granted for a command's stdin.
#[derive(Debug)]
pub(crate) struct StdinCredit {
    state: Mutex<CreditState>,
}

#[derive(Debug)]
struct CreditState {
    room: u64,
    waker: Option<Waker>,
    closed: bool,
}

impl StdinCredit {
    pub(crate) fn new(room: u64) -> Arc<StdinCredit> {
        Arc::new(StdinCredit {
            state: Mutex::new(CreditState {
                room,
                waker: None,
                closed: false,
            }),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CreditState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The helper wrote `n` more bytes into the pipe.
    pub(crate) fn grant(&self, n: u64) {
        let mut s = self.lock();
        s.room = s.room.saturating_add(n);
        if let Some(w) = s.waker.take() {
            w.wake();
        }
    }

    /// The command's request ended: writes fail from now on.
    pub(crate) fn close(&self) {
        let mut s = self.lock();
        s.closed = true;
        if let Some(w) = s.waker.take() {
            w.wake();
        }
    }
}

/// A command's stdin: data frames within the granted room; closing (or dropping) it
/// sends the end of input.
#[derive(Debug)]
pub(crate) struct StdinSink {
    pub(crate) conn: Arc<HelperConnection>,
    pub(crate) id: u32,
    pub(crate) credit: Arc<StdinCredit>,
    pub(crate) ended: bool,
}

impl AsyncWrite for StdinSink {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.ended {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let n = {
            let mut s = this.credit.lock();
            if s.closed {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::BrokenPipe,
                    "the command ended",
                )));
            }
            if s.room == 0 {
                s.waker = Some(cx.waker().clone());
                return Poll::Pending;
            }
            let n = buf
                .len()
                .min(MAX_DATA_FRAME)
                .min(usize::try_from(s.room).unwrap_or(usize::MAX));
            s.room -= n as u64;
            n
        };
        if !this
            .conn
            .send(&Frame::new(FrameKind::Data, this.id, buf[..n].to_vec()))
        {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the connection to the host is closed",
            )));
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.end();
        Poll::Ready(Ok(()))
    }
}

impl StdinSink {
    fn end(&mut self) {
        if !self.ended {
            self.ended = true;
            self.conn
                .send(&Frame::new(FrameKind::DataEnd, self.id, Vec::new()));
        }
    }
}

impl Drop for StdinSink {
    fn drop(&mut self) {
        self.end();
    }
}
