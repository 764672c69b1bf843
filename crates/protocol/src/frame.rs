//! Frames: a 9-byte header, then the body.
//!
//! ```text
//! +----------------+--------+----------------+-----------------+
//! | body len (u32) | kind   | request id     | body            |
//! | big endian     | (u8)   | (u32, BE)      | (len bytes)     |
//! +----------------+--------+----------------+-----------------+
//! ```
//!
//! Request ids are chosen by the client, unique among its requests in flight; id 0 is
//! the connection itself ([`FrameKind::Hello`], [`FrameKind::Notice`]). Frames of many
//! requests interleave freely: that is what makes the protocol pipelined.

use std::io::{self, Read};

use crate::ProtocolError;

/// Bytes of a frame header.
pub const HEADER_LEN: usize = 9;

/// Largest body a frame may carry. Data is sent in chunks far below this; a header
/// announcing more means the stream is not this protocol (e.g. a shell's banner read as
/// a length: "WELC" is 1,464,159,299 bytes).
pub const MAX_BODY: u32 = 16 << 20;

/// Stream number of a command's standard output (or a file's content) in
/// [`FrameKind::Credit`] and [`FrameKind::StreamEnd`] bodies.
pub const STREAM_OUT: u8 = 1;
/// Stream number of a command's standard error.
pub const STREAM_ERR: u8 = 2;

/// What a frame is. Values below 16 travel from the client to the helper, values from
/// 16 up from the helper to the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum FrameKind {
    /// Client: a JSON [`Request`](crate::Request) starting request `id`.
    Request = 1,
    /// Client: bytes for request `id` (a command's stdin, a file's new content).
    Data = 2,
    /// Client: end of the data of request `id` (stdin closed, content complete).
    DataEnd = 3,
    /// Client: kill the process group of command `id` now (SIGKILL).
    Kill = 4,
    /// Client: done with request `id`. For a command: whatever is left of its process
    /// group is killed and its pipes closed (a background `&` dies with its call). For a
    /// write: the temporary file is removed if the content was not complete.
    Release = 5,
    /// Client: room for `n` more bytes on stream `s` of request `id` (body: `s` as u8,
    /// `n` as u64 BE). The helper never has more unacknowledged bytes in flight per
    /// stream than the window the request asked for, so a reader that stops reading
    /// stops its command, not the connection.
    Credit = 6,

    /// Helper: its first frame, unprompted, JSON [`Hello`](crate::Hello); id 0.
    Hello = 16,
    /// Helper: request `id` succeeded; JSON body specific to the request. Last frame
    /// of the request.
    Reply = 17,
    /// Helper: request `id` failed; JSON [`WireError`](crate::WireError). Last frame of
    /// the request.
    Error = 18,
    /// Helper: command `id` started; JSON [`Started`](crate::Started).
    Started = 19,
    /// Helper: bytes of command `id`'s stdout, or of the file read by request `id`.
    Out = 20,
    /// Helper: bytes of command `id`'s stderr.
    ErrOut = 21,
    /// Helper: stream `s` (body: one byte) of request `id` reached its end.
    StreamEnd = 22,
    /// Helper: command `id` ended; JSON [`ExitInfo`](crate::ExitInfo). Its streams may
    /// still carry data (a background child holding the pipe); the request ends with a
    /// [`FrameKind::Reply`] once both streams ended or it is released.
    Exit = 23,
    /// Helper: `n` more bytes of command `id`'s stdin were written into its pipe (body:
    /// u64 BE), so the client may send that many more.
    StdinCredit = 24,
    /// Helper: something the user should know about the connection (JSON
    /// [`Notice`](crate::Notice)); id 0.
    Notice = 25,
}

impl FrameKind {
    /// The kind for a byte, or an error for values this version does not define.
    pub fn from_u8(b: u8) -> Result<FrameKind, ProtocolError> {
        use FrameKind::*;
        Ok(match b {
            1 => Request,
            2 => Data,
            3 => DataEnd,
            4 => Kill,
            5 => Release,
            6 => Credit,
            16 => Hello,
            17 => Reply,
            18 => Error,
            19 => Started,
            20 => Out,
            21 => ErrOut,
            22 => StreamEnd,
            23 => Exit,
            24 => StdinCredit,
            25 => Notice,
            other => return Err(ProtocolError::UnknownKind(other)),
        })
    }
}

/// A decoded frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Bytes of body that follow.
    pub len: u32,
    /// The frame's kind.
    pub kind: FrameKind,
    /// The request it belongs to (0: the connection).
    pub id: u32,
}

impl Header {
    /// Parses and checks a header.
    pub fn parse(bytes: &[u8; HEADER_LEN]) -> Result<Header, ProtocolError> {
        let len = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        if len > MAX_BODY {
            return Err(ProtocolError::TooLarge { len });
        }
        let kind = FrameKind::from_u8(bytes[4])?;
        let id = u32::from_be_bytes([bytes[5], bytes[6], bytes[7], bytes[8]]);
        Ok(Header { len, kind, id })
    }
}

/// A whole frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// What it is.
    pub kind: FrameKind,
    /// The request it belongs to.
    pub id: u32,
    /// Its body.
    pub body: Vec<u8>,
}

impl Frame {
    /// A frame with a raw body.
    pub fn new(kind: FrameKind, id: u32, body: Vec<u8>) -> Frame {
        Frame { kind, id, body }
    }

    /// A frame whose body is `message` as JSON.
    pub fn json<T: serde::Serialize>(kind: FrameKind, id: u32, message: &T) -> Frame {
        // Serializing our own plain structs cannot fail; an empty body would be
        // refused by the peer's parser, never misread.
        let body = serde_json::to_vec(message).unwrap_or_default();
        Frame { kind, id, body }
    }

    /// The body parsed as JSON `T` (`what` names it in errors).
    pub fn parse<T: serde::de::DeserializeOwned>(
        &self,
        what: &'static str,
    ) -> Result<T, ProtocolError> {
        serde_json::from_slice(&self.body).map_err(|source| ProtocolError::Json { what, source })
    }

    /// A [`FrameKind::Credit`] frame.
    pub fn credit(id: u32, stream: u8, bytes: u64) -> Frame {
        let mut body = Vec::with_capacity(9);
        body.push(stream);
        body.extend_from_slice(&bytes.to_be_bytes());
        Frame::new(FrameKind::Credit, id, body)
    }

    /// Parses a [`FrameKind::Credit`] body: (stream, bytes).
    pub fn parse_credit(&self) -> Result<(u8, u64), ProtocolError> {
        match self.body.as_slice() {
            [stream, rest @ ..] if rest.len() == 8 => {
                let mut n = [0u8; 8];
                n.copy_from_slice(rest);
                Ok((*stream, u64::from_be_bytes(n)))
            }
            _ => Err(ProtocolError::BadLength {
                what: "credit",
                len: self.body.len(),
            }),
        }
    }

    /// A [`FrameKind::StdinCredit`] frame.
    pub fn stdin_credit(id: u32, bytes: u64) -> Frame {
        Frame::new(FrameKind::StdinCredit, id, bytes.to_be_bytes().to_vec())
    }

    /// Parses a [`FrameKind::StdinCredit`] body.
    pub fn parse_u64(&self, what: &'static str) -> Result<u64, ProtocolError> {
        <[u8; 8]>::try_from(self.body.as_slice())
            .map(u64::from_be_bytes)
            .map_err(|_| ProtocolError::BadLength {
                what,
                len: self.body.len(),
            })
    }

    /// Appends the encoded frame to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        encode_into(self.kind, self.id, &self.body, out);
    }

    /// The encoded frame.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + self.body.len());
        self.encode_into(&mut out);
        out
    }
}

/// Appends a frame of `kind` for `id` with `body` to `out`. Bodies longer than
/// [`MAX_BODY`] must be split by the caller (data chunks are far smaller).
pub fn encode_into(kind: FrameKind, id: u32, body: &[u8], out: &mut Vec<u8>) {
    let len = u32::try_from(body.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.push(kind as u8);
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(body);
}

/// Reads frames from a blocking reader (the helper's stdin).
#[derive(Debug)]
pub struct FrameReader<R> {
    inner: R,
}

impl<R: Read> FrameReader<R> {
    /// Wraps `inner` (buffer it: frames are read header first).
    pub fn new(inner: R) -> Self {
        FrameReader { inner }
    }

    /// The next frame; `Ok(None)` at a clean end of stream (between frames).
    pub fn next_frame(&mut self) -> io::Result<Option<Frame>> {
        let mut header = [0u8; HEADER_LEN];
        let mut filled = 0;
        while filled < HEADER_LEN {
            match self.inner.read(&mut header[filled..]) {
                Ok(0) if filled == 0 => return Ok(None),
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        let header = Header::parse(&header).map_err(io::Error::other)?;
        let mut body = vec![0u8; header.len as usize];
        self.inner.read_exact(&mut body)?;
        Ok(Some(Frame::new(header.kind, header.id, body)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_interleave() {
        let mut wire = Vec::new();
        Frame::new(FrameKind::Out, 7, b"hello".to_vec()).encode_into(&mut wire);
        Frame::credit(9, STREAM_ERR, 1 << 40).encode_into(&mut wire);
        Frame::new(FrameKind::DataEnd, 7, Vec::new()).encode_into(&mut wire);
        let mut reader = FrameReader::new(wire.as_slice());
        let a = reader.next_frame().expect("read").expect("frame");
        assert_eq!(
            (a.kind, a.id, a.body.as_slice()),
            (FrameKind::Out, 7, &b"hello"[..])
        );
        let b = reader.next_frame().expect("read").expect("frame");
        assert_eq!(b.parse_credit().expect("credit"), (STREAM_ERR, 1 << 40));
        let c = reader.next_frame().expect("read").expect("frame");
        assert_eq!((c.kind, c.body.len()), (FrameKind::DataEnd, 0));
        assert!(reader.next_frame().expect("clean end").is_none());
    }

    #[test]
    fn text_is_not_a_frame() {
        // A login shell's banner read as a header: refused, not trusted.
        let mut reader = FrameReader::new(&b"WELCOME to the host\n"[..]);
        let err = reader.next_frame().expect_err("not a frame");
        assert!(err.to_string().contains("over the limit"), "{err}");
        let mut header = [0u8; HEADER_LEN];
        header[4] = 99;
        assert!(matches!(
            Header::parse(&header),
            Err(ProtocolError::UnknownKind(99))
        ));
    }

    #[test]
    fn a_cut_stream_is_an_error_not_a_short_frame() {
        let wire = Frame::new(FrameKind::Out, 1, vec![1, 2, 3]).encode();
        let mut reader = FrameReader::new(&wire[..wire.len() - 1]);
        assert!(reader.next_frame().is_err());
        let mut reader = FrameReader::new(&wire[..4]);
        assert!(reader.next_frame().is_err());
    }
}
