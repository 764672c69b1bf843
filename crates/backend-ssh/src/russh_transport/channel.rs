//! One exec channel of a russh connection as byte streams: stdin, stdout, stderr and
//! the exit status, the shape the helper's start and install steps use on either
//! transport.

use std::pin::Pin;

use russh::client::Msg;
use russh::{Channel, ChannelMsg};
use tokio::io::{AsyncWrite, AsyncWriteExt, DuplexStream};
use tokio::sync::oneshot;

/// How much of stdout or stderr may wait for its reader before the channel's reader
/// task waits too (the host's window then stops the sender).
const PIPE_BUFFER: usize = 256 * 1024;

/// The streams of one running command.
pub(crate) struct ExecChannel {
    /// Its standard input (EOF on shutdown).
    pub(crate) stdin: Pin<Box<dyn AsyncWrite + Send>>,
    /// Its standard output.
    pub(crate) stdout: DuplexStream,
    /// Its standard error.
    pub(crate) stderr: DuplexStream,
    /// Its exit code once the channel closed (`None`: killed by a signal, or the
    /// channel closed without a status: the connection dropped).
    pub(crate) exit: oneshot::Receiver<Option<i32>>,
}

impl ExecChannel {
    /// Runs `command` on `channel` and starts the task that sorts what comes back.
    pub(crate) async fn start(channel: Channel<Msg>, command: &str) -> Result<Self, russh::Error> {
        channel.exec(true, command.as_bytes()).await?;
        let (mut read, write) = channel.split();
        let stdin = Box::pin(write.make_writer());
        let (mut out_tx, stdout) = tokio::io::duplex(PIPE_BUFFER);
        let (mut err_tx, stderr) = tokio::io::duplex(PIPE_BUFFER);
        let (exit_tx, exit) = oneshot::channel();
        tokio::spawn(async move {
            let mut code = None;
            let mut out_open = true;
            let mut err_open = true;
            while let Some(msg) = read.wait().await {
                match msg {
                    // A reader that went away stops getting data; the rest still flows.
                    ChannelMsg::Data { data } if out_open => {
                        out_open = out_tx.write_all(&data).await.is_ok();
                    }
                    ChannelMsg::ExtendedData { data, ext: 1 } if err_open => {
                        err_open = err_tx.write_all(&data).await.is_ok();
                    }
                    ChannelMsg::ExitStatus { exit_status } => {
                        code = i32::try_from(exit_status).ok();
                    }
                    ChannelMsg::Eof => {
                        let _ = out_tx.shutdown().await;
                        let _ = err_tx.shutdown().await;
                    }
                    ChannelMsg::Close => break,
                    _ => {}
                }
            }
            drop(out_tx);
            drop(err_tx);
            let _ = exit_tx.send(code);
            // Keeps the write half's channel alive until the read side ended.
            drop(write);
        });
        Ok(ExecChannel {
            stdin,
            stdout,
            stderr,
            exit,
        })
    }
}
