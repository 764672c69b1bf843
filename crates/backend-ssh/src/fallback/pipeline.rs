//! SFTP requests sent together instead of one after another.
//!
//! The high-level `openssh-sftp-client` API awaits each request, so an operation made
//! of four requests costs four round trips. The server answers requests in the order
//! it received them, and a request is written out on the first poll of its future:
//! polling several futures together sends them back to back, and the operation waits
//! one round trip for all of them. Handles are shared by cloning a `File` or `Dir`
//! (clones share one server handle; the last one dropped sends the close without
//! waiting for its answer).

use std::future::Future;
use std::io::SeekFrom;
use std::pin::Pin;
use std::task::Poll;

use bytes::BytesMut;
use openssh_sftp_client::error::Error as SftpError;
use openssh_sftp_client::file::File;
use openssh_sftp_client::fs::{Dir, DirEntry};
use tokio::io::AsyncSeek;

/// Largest read or write asked in one request: OpenSSH's `sftp-server` limit
/// (`limits@openssh.com`: 256 KiB messages, reads and writes up to 255 KiB). The
/// client library lowers it to what the server announced; a shorter answer is
/// continued (see [`read_to_end`]).
pub(crate) const MAX_IO: u32 = 255 * 1024;

/// Requests in flight for one read (4 MiB: the SSH channel window is 2 MiB).
const MAX_IN_FLIGHT: usize = 16;

/// Readdir requests sent at once: `sftp-server` answers up to 100 names per request,
/// so a directory of up to 300 entries (with `.` and `..`) lists in one round trip.
const READDIR_AHEAD: usize = 4;

/// Polls `futs` together and returns their outputs in order. The first poll goes
/// through them in order, so their requests leave in that order.
pub(crate) async fn join_all<F: Future>(futs: Vec<F>) -> Vec<F::Output> {
    let mut futs: Vec<Pin<Box<F>>> = futs.into_iter().map(Box::pin).collect();
    let mut outs: Vec<Option<F::Output>> = futs.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (fut, out) in futs.iter_mut().zip(outs.iter_mut()) {
            if out.is_none() {
                match fut.as_mut().poll(cx) {
                    Poll::Ready(v) => *out = Some(v),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    outs.into_iter().flatten().collect()
}

fn at(file: &File, offset: u64) -> Result<File, SftpError> {
    let mut f = file.clone();
    Pin::new(&mut f).start_seek(SeekFrom::Start(offset))?;
    Ok(f)
}

/// Reads `file` to its end, expecting `expected` bytes (from a stat sent with the
/// open). The reads covering `expected`, plus one past it that must find the end of
/// file, are sent together: one round trip when the size was right. A file that
/// grew, a short answer (a server with a lower read limit) or an unknown size
/// continues from where the data stops, again with the requests sent together.
pub(crate) async fn read_to_end(file: &File, expected: Option<u64>) -> Result<Vec<u8>, SftpError> {
    let mut out: Vec<u8> = Vec::with_capacity(
        expected
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(0)
            .min(64 << 20),
    );
    let mut limit = MAX_IO;
    // Where the caller believes the data ends; the probe read goes there.
    let mut end = expected.unwrap_or(0);
    loop {
        let start = out.len() as u64;
        end = end.max(start);
        let mut plan: Vec<(u64, u32)> = Vec::new();
        let mut off = start;
        while off < end && plan.len() + 1 < MAX_IN_FLIGHT {
            let len = u32::try_from((end - off).min(u64::from(limit))).unwrap_or(limit);
            plan.push((off, len));
            off += u64::from(len);
        }
        // The probe: finds the end of file, or the first bytes of a file that grew.
        plan.push((off, limit));
        let reads = plan
            .iter()
            .map(|&(offset, len)| async move {
                let mut f = at(file, offset)?;
                f.read(len, BytesMut::new()).await
            })
            .collect();
        let results = join_all(reads).await;
        for ((offset, len), result) in plan.into_iter().zip(results) {
            if offset != out.len() as u64 {
                break; // after a short answer: read again from where the data stops
            }
            match result? {
                None => return Ok(out),
                Some(buf) if buf.is_empty() => return Ok(out),
                Some(buf) => {
                    let n = buf.len();
                    out.extend_from_slice(&buf);
                    if n < len as usize {
                        // A short answer: the end of file, or the server's limit.
                        limit = limit.min(u32::try_from(n).unwrap_or(limit));
                        break;
                    }
                }
            }
        }
        if out.len() as u64 >= end {
            // Past the expected size: the file grew; read ahead a few requests.
            end = out.len() as u64 + u64::from(limit) * 3;
        }
    }
}

/// Writes `data` at offset 0 of `file`, the requests sent together. Any failed write
/// fails the whole: the caller must not rename the file into place.
pub(crate) async fn write_all(file: &File, data: &[u8]) -> Result<(), SftpError> {
    let mut written = 0usize;
    let mut limit = MAX_IO as usize;
    while written < data.len() {
        let mut plan = Vec::new();
        let mut off = written;
        while off < data.len() && plan.len() < MAX_IN_FLIGHT {
            let len = (data.len() - off).min(limit);
            plan.push((off, len));
            off += len;
        }
        let writes = plan
            .iter()
            .map(|&(offset, len)| async move {
                let mut f = at(file, offset as u64)?;
                f.write(&data[offset..offset + len]).await
            })
            .collect();
        let results = join_all(writes).await;
        for ((offset, len), result) in plan.into_iter().zip(results) {
            let n = result?;
            if offset != written {
                // After a short write: written again from `written` (same bytes, same
                // place).
                continue;
            }
            if n == 0 {
                return Err(std::io::Error::from(std::io::ErrorKind::WriteZero).into());
            }
            written += n;
            if n < len {
                // The server's write limit is lower than ours.
                limit = limit.min(n);
            }
        }
    }
    Ok(())
}

/// Every entry of `dir`, with [`READDIR_AHEAD`] readdir requests in flight: the
/// server answers them in order, so once one finds the end of the directory, every
/// request sent before it has already been answered with data.
pub(crate) async fn read_dir_all(dir: Dir) -> Result<Vec<DirEntry>, SftpError> {
    use futures_core::Stream;
    let mut streams: Vec<Pin<Box<openssh_sftp_client::fs::ReadDir>>> = (0..READDIR_AHEAD)
        .map(|_| Box::pin(dir.clone().read_dir()))
        .collect();
    drop(dir);
    let mut entries = Vec::new();
    // A stream is done once it found the end, or asked again after the end was found.
    let mut done = vec![false; streams.len()];
    let mut ended = false;
    std::future::poll_fn(|cx| {
        loop {
            let mut progressed = false;
            for (i, stream) in streams.iter_mut().enumerate() {
                if done[i] {
                    continue;
                }
                loop {
                    match stream.as_mut().poll_next(cx) {
                        Poll::Ready(Some(Ok(entry))) => {
                            entries.push(entry);
                            progressed = true;
                        }
                        Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(e)),
                        Poll::Ready(None) => {
                            done[i] = true;
                            ended = true;
                            progressed = true;
                            break;
                        }
                        Poll::Pending => {
                            if ended {
                                // Sent after the end was found: nothing left to learn.
                                done[i] = true;
                            }
                            break;
                        }
                    }
                }
            }
            if done.iter().all(|d| *d) {
                return Poll::Ready(Ok(()));
            }
            if !progressed {
                return Poll::Pending;
            }
        }
    })
    .await?;
    Ok(entries)
}
