//! Every runtime operation as one request on a helper connection: one round trip each
//! (a write's data frames travel right behind its request, unawaited).

use std::sync::Arc;

use cmux_core::engine::{EditReply, EditSpec, GlobReply, GlobRequest, GrepReply, GrepRequest};
use cmux_core::{
    BoxRead, DirEntry, Error, ExecRequest, FileKind, Metadata, Process, RemotePath, Result,
    SmallFile,
};
use cmux_protocol::frame::STREAM_OUT;
use cmux_protocol::{
    Done, EditRequest, Frame, FrameKind, InfoReply, PathReply, ReadDirReply, ReadReply, ReadSpec,
    Request, StatReply, WireError, WireKind, WriteReply, WriteSpec,
};
use serde::de::DeserializeOwned;

use crate::connection::{HelperConnection, Pending};
use crate::errors::from_wire;
use crate::streams::{CreditReturn, FrameStream};

/// Window of a streamed read: 2 MiB, as OpenSSH's channel window.
const STREAM_WINDOW: u64 = 2 << 20;
/// Bytes per data frame of a write.
const WRITE_CHUNK: usize = 256 * 1024;

fn kind(k: WireKind) -> FileKind {
    match k {
        WireKind::File => FileKind::File,
        WireKind::Dir => FileKind::Dir,
        WireKind::Symlink => FileKind::Symlink,
        WireKind::Other => FileKind::Other,
    }
}

impl HelperConnection {
    /// `path` made absolute: `~` and relative paths against the helper's home.
    pub fn absolute(&self, path: &RemotePath) -> String {
        let home = self.hello().home.trim_end_matches('/');
        let s = path.as_str();
        if s.starts_with('/') {
            s.to_owned()
        } else if s == "~" {
            home.to_owned()
        } else if let Some(rest) = s.strip_prefix("~/") {
            format!("{home}/{rest}")
        } else {
            format!("{home}/{s}")
        }
    }

    /// [`cmux_core::Runtime::resolve_path`]: `~` expanded, absolute, normalised; no
    /// round trip (the home came with the hello).
    pub fn resolve_path(&self, path: &str) -> Result<RemotePath> {
        let path = RemotePath::new(path)?;
        if path.as_str().starts_with('~') && !path.is_home_relative() {
            return Err(Error::invalid(format!(
                "{}: {path}: `~user` paths are not supported: use an absolute path",
                self.host()
            )));
        }
        Ok(RemotePath::new(self.absolute(&path))?.normalize())
    }

    /// Sends `request` and waits for its reply.
    async fn call<T: DeserializeOwned>(
        self: &Arc<Self>,
        request: &Request,
        what: &str,
        path: Option<&RemotePath>,
    ) -> Result<T> {
        let mut pending = self.start(request, what)?;
        loop {
            let frame = pending.next().await?;
            if let Some(result) = self.final_frame(&frame, path) {
                return result;
            }
        }
    }

    /// The result carried by a request's last frame, `None` for other frames.
    fn final_frame<T: DeserializeOwned>(
        &self,
        frame: &Frame,
        path: Option<&RemotePath>,
    ) -> Option<Result<T>> {
        let odd = |e: cmux_protocol::ProtocolError| {
            Error::backend(self.host(), format!("the helper answered oddly: {e}"))
        };
        match frame.kind {
            FrameKind::Reply => Some(frame.parse("reply").map_err(odd)),
            FrameKind::Error => Some(match frame.parse::<WireError>("error") {
                Ok(err) => Err(from_wire(self.host(), path, err)),
                Err(e) => Err(odd(e)),
            }),
            _ => None,
        }
    }

    /// [`cmux_core::Runtime::stat`].
    pub async fn stat(self: &Arc<Self>, path: &RemotePath) -> Result<Metadata> {
        let r: StatReply = self
            .call(
                &Request::Stat {
                    path: self.absolute(path),
                    no_follow: false,
                },
                "a stat",
                Some(path),
            )
            .await?;
        Ok(Metadata {
            kind: kind(r.kind),
            len: r.len,
            mode: r.mode,
            modified: Some(r.modified),
        })
    }

    /// [`cmux_core::Runtime::read_dir`].
    pub async fn read_dir(self: &Arc<Self>, path: &RemotePath) -> Result<Vec<DirEntry>> {
        let r: ReadDirReply = self
            .call(
                &Request::ReadDir {
                    path: self.absolute(path),
                },
                "a listing",
                Some(path),
            )
            .await?;
        if r.non_utf8 > 0 {
            tracing::debug!(host = %self.host(), %path, skipped = r.non_utf8, "entries with non-UTF-8 names left out");
        }
        Ok(r.entries
            .into_iter()
            .map(|e| DirEntry {
                name: e.name,
                kind: kind(e.kind),
                len: e.len,
            })
            .collect())
    }

    /// [`cmux_core::Runtime::create_dir_all`].
    pub async fn create_dir_all(self: &Arc<Self>, path: &RemotePath) -> Result<()> {
        let _: Done = self
            .call(
                &Request::MkdirAll {
                    path: self.absolute(path),
                },
                "creating a directory",
                Some(path),
            )
            .await?;
        Ok(())
    }

    /// [`cmux_core::Runtime::remove`].
    pub async fn remove(self: &Arc<Self>, path: &RemotePath, recursive: bool) -> Result<()> {
        let _: Done = self
            .call(
                &Request::Remove {
                    path: self.absolute(path),
                    recursive,
                },
                "a removal",
                Some(path),
            )
            .await?;
        Ok(())
    }

    /// [`cmux_core::Runtime::rename`].
    pub async fn rename(self: &Arc<Self>, from: &RemotePath, to: &RemotePath) -> Result<()> {
        let _: Done = self
            .call(
                &Request::Rename {
                    from: self.absolute(from),
                    to: self.absolute(to),
                },
                "a rename",
                Some(from),
            )
            .await?;
        Ok(())
    }

    /// The canonical path of an existing `path`, every symlink resolved.
    pub async fn realpath(self: &Arc<Self>, path: &RemotePath) -> Result<RemotePath> {
        let r: PathReply = self
            .call(
                &Request::Realpath {
                    path: self.absolute(path),
                },
                "resolving a path",
                Some(path),
            )
            .await?;
        RemotePath::new(r.path)
    }

    /// What the helper knows about its environment (for `cmux doctor`).
    pub async fn info(self: &Arc<Self>) -> Result<InfoReply> {
        self.call(&Request::Info, "asking the helper for its state", None)
            .await
    }

    /// [`cmux_core::Runtime::read_file`].
    pub async fn read_file(self: &Arc<Self>, path: &RemotePath) -> Result<Vec<u8>> {
        Ok(self.read_whole(path, None).await?.0)
    }

    /// [`cmux_core::Runtime::read_file_up_to`]: one request, the helper checking the
    /// kind and size before it reads.
    pub async fn read_file_up_to(
        self: &Arc<Self>,
        path: &RemotePath,
        max_len: u64,
    ) -> Result<SmallFile> {
        let (data, reply) = self.read_whole(path, Some(max_len)).await?;
        Ok(match reply.refused {
            None => SmallFile::Read(data),
            Some(WireKind::File) => SmallFile::TooLarge(reply.size),
            Some(other) => SmallFile::NotAFile(kind(other)),
        })
    }

    /// A whole-file read (`only_file_up_to`: see [`ReadSpec`]) and its final reply.
    async fn read_whole(
        self: &Arc<Self>,
        path: &RemotePath,
        only_file_up_to: Option<u64>,
    ) -> Result<(Vec<u8>, ReadReply)> {
        let spec = ReadSpec {
            path: self.absolute(path),
            offset: 0,
            len: None,
            window: None,
            only_file_up_to,
        };
        let mut pending = self.start(&Request::Read(spec), "a read")?;
        let mut data = Vec::new();
        loop {
            let frame = pending.next().await?;
            if frame.kind == FrameKind::Out {
                data.extend_from_slice(&frame.body);
            } else if let Some(result) = self.final_frame::<ReadReply>(&frame, Some(path)) {
                return Ok((data, result?));
            }
        }
    }

    /// [`cmux_core::Runtime::open_read`]: one round trip to the first byte (so a
    /// missing file is an error here), then the rest within a 2 MiB window.
    pub async fn open_read(self: &Arc<Self>, path: &RemotePath) -> Result<BoxRead> {
        let spec = ReadSpec {
            path: self.absolute(path),
            offset: 0,
            len: None,
            window: Some(STREAM_WINDOW),
            only_file_up_to: None,
        };
        let mut pending = self.start(&Request::Read(spec), "a read")?;
        let first = pending.next().await?;
        let credit = CreditReturn {
            conn: self.clone(),
            id: pending.id,
            stream: STREAM_OUT,
            step: STREAM_WINDOW / 4,
            owed: 0,
        };
        let (tx, stream) = FrameStream::new(Some(credit));
        match first.kind {
            FrameKind::Out => {}
            _ => {
                if let Some(result) = self.final_frame::<ReadReply>(&first, Some(path)) {
                    result?;
                }
                // An empty file: the reply came first.
                drop(tx);
                return Ok(Box::pin(stream));
            }
        }
        let stream = stream.with_first(first.body);
        let conn = self.clone();
        let path = path.clone();
        tokio::spawn(async move {
            let _keep = &conn;
            pump_read(pending, tx, &conn, &path).await;
        });
        Ok(Box::pin(stream))
    }

    /// [`cmux_core::Runtime::write_file`]: the request and every data frame leave
    /// together; one round trip.
    pub async fn write_file(self: &Arc<Self>, path: &RemotePath, data: &[u8]) -> Result<()> {
        self.write_file_with(path, data, false).await.map(|_| ())
    }

    /// An atomic write; `force` replaces a file the user cannot write or does not own.
    /// Returns the file actually written (a symlink's target) and its mode.
    pub async fn write_file_with(
        self: &Arc<Self>,
        path: &RemotePath,
        data: &[u8],
        force: bool,
    ) -> Result<(RemotePath, u32)> {
        let spec = WriteSpec {
            path: self.absolute(path),
            force,
        };
        let mut pending = self.start(&Request::Write(spec), "a write")?;
        for chunk in data.chunks(WRITE_CHUNK) {
            pending.send(&Frame::new(FrameKind::Data, pending.id, chunk.to_vec()));
        }
        pending.send(&Frame::new(FrameKind::DataEnd, pending.id, Vec::new()));
        loop {
            let frame = pending.next().await?;
            if let Some(result) = self.final_frame::<WriteReply>(&frame, Some(path)) {
                let reply = result?;
                return Ok((RemotePath::new(reply.path)?, reply.mode));
            }
        }
    }

    /// [`cmux_core::Runtime::grep`], run by the helper where the files are.
    pub async fn grep(self: &Arc<Self>, req: &GrepRequest) -> Result<GrepReply> {
        let path = RemotePath::new(req.path.clone()).ok();
        self.call(&Request::Grep(req.clone()), "a grep", path.as_ref())
            .await
    }

    /// [`cmux_core::Runtime::glob`], run by the helper where the files are.
    pub async fn glob(self: &Arc<Self>, req: &GlobRequest) -> Result<GlobReply> {
        let path = RemotePath::new(req.path.clone()).ok();
        self.call(&Request::Glob(req.clone()), "a glob", path.as_ref())
            .await
    }

    /// [`cmux_core::Runtime::edit`]: read, replace and atomic write in one request.
    pub async fn edit(self: &Arc<Self>, path: &RemotePath, spec: &EditSpec) -> Result<EditReply> {
        let req = EditRequest {
            path: self.absolute(path),
            spec: spec.clone(),
            force: false,
        };
        self.call(&Request::Edit(req), "an edit", Some(path)).await
    }

    /// [`cmux_core::Runtime::exec`].
    pub async fn exec(self: &Arc<Self>, req: ExecRequest) -> Result<Process> {
        let cwd = req.cwd.as_ref().map(|c| self.absolute(c));
        crate::process::spawn(self, req, cwd).await
    }
}

async fn pump_read(
    mut pending: Pending,
    tx: crate::streams::ChunkSender,
    conn: &HelperConnection,
    path: &RemotePath,
) {
    loop {
        let frame = match pending.next().await {
            Ok(f) => f,
            Err(e) => {
                // The cmux error rides inside, so a caller finds Error::Connection.
                let _ = tx.send(Err(e.into_io(std::io::ErrorKind::ConnectionAborted)));
                return;
            }
        };
        match frame.kind {
            FrameKind::Out => {
                // The reader dropped its stream: dropping `pending` releases the read.
                let sent = tx.send(Ok(frame.body));
                if sent.is_err() {
                    return;
                }
            }
            FrameKind::Reply => return,
            FrameKind::Error => {
                let error = match frame.parse::<WireError>("error") {
                    Ok(e) => from_wire(conn.host(), Some(path), e),
                    Err(e) => Error::backend(conn.host(), e.to_string()),
                };
                let _ = tx.send(Err(error.into_io(std::io::ErrorKind::Other)));
                return;
            }
            _ => {}
        }
    }
}
