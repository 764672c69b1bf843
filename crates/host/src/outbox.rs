//! The single writer of the helper's stdout: frames from every thread go through one
//! queue, written in order and flushed when the queue runs dry (so pipelined replies
//! leave in as few writes as possible).

use std::io::Write;
use std::sync::mpsc;

use cmux_protocol::{Frame, FrameKind};

/// A handle for sending frames to the client; cheap to clone.
#[derive(Clone, Debug)]
pub(crate) struct Outbox {
    tx: mpsc::Sender<Vec<u8>>,
}

impl Outbox {
    /// Starts the writer thread on `sink`. `on_broken` runs once if writing fails (the
    /// client is gone).
    pub(crate) fn start<W: Write + Send + 'static>(
        sink: W,
        on_broken: impl FnOnce() + Send + 'static,
    ) -> Outbox {
        let (tx, rx) = mpsc::channel::<Vec<u8>>();
        std::thread::spawn(move || {
            let mut sink = std::io::BufWriter::with_capacity(256 * 1024, sink);
            let ok = (|| -> std::io::Result<()> {
                while let Ok(first) = rx.recv() {
                    sink.write_all(&first)?;
                    while let Ok(more) = rx.try_recv() {
                        sink.write_all(&more)?;
                    }
                    sink.flush()?;
                }
                Ok(())
            })();
            if ok.is_err() {
                on_broken();
            }
        });
        Outbox { tx }
    }

    /// Queues a frame.
    pub(crate) fn send(&self, frame: &Frame) {
        let _ = self.tx.send(frame.encode());
    }

    /// Queues a raw-body frame without building a [`Frame`].
    pub(crate) fn send_raw(&self, kind: FrameKind, id: u32, body: &[u8]) {
        let mut buf = Vec::with_capacity(cmux_protocol::HEADER_LEN + body.len());
        cmux_protocol::frame::encode_into(kind, id, body, &mut buf);
        let _ = self.tx.send(buf);
    }

    /// Queues bytes that are not a frame (the sync marker before the first frame).
    pub(crate) fn send_bytes(&self, bytes: Vec<u8>) {
        let _ = self.tx.send(bytes);
    }

    /// Queues a JSON frame.
    pub(crate) fn send_json<T: serde::Serialize>(&self, kind: FrameKind, id: u32, msg: &T) {
        self.send(&Frame::json(kind, id, msg));
    }
}
