//! Answers unparsable input with a JSON-RPC parse error.
//!
//! rmcp silently skips a line that is not JSON (to avoid error storms between two
//! peers). JSON-RPC 2.0 asks for a `-32700` parse error, and a client or a human
//! typing at `cmux mcp` learns more from an answer than from silence, so the input is
//! screened here: lines that parse as JSON go on to rmcp, other lines get a parse
//! error with a null id. A line that is not valid UTF-8 (which rmcp would also drop,
//! leaving the client waiting for ever) gets a parse error too, with the request's id
//! when one can still be read, so the client can match it to its request. A request
//! that is JSON but not a message rmcp can take (`params` that are a string, a
//! `method` that is a number) is answered here with its id: rmcp would answer
//! without one, and the client would still wait for its answer. A request larger than rmcp accepts (16 MiB), which rmcp would
//! drop without a word, gets an error naming the limit. Responses from rmcp and these errors are merged line by line
//! into the one output stream, so they never interleave.
//!
//! Cost: one extra copy of each message through an in-memory pipe and one JSON scan
//! of each incoming line; nothing next to a tool call.

use rmcp::model::ClientJsonRpcMessage;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader, DuplexStream};
use tokio::sync::mpsc;

/// Capacity of the in-memory pipes between the screen and rmcp.
const PIPE_BYTES: usize = 256 * 1024;

/// The streams rmcp serves on, and the tasks that connect them to the real ones.
pub(crate) struct Screened {
    /// What rmcp reads: the input lines that are JSON.
    pub to_rmcp: DuplexStream,
    /// Where rmcp writes its messages.
    pub from_rmcp: DuplexStream,
    /// Copies rmcp's output and the parse errors to the real writer; ends when rmcp's
    /// output ends.
    pub output: tokio::task::JoinHandle<()>,
}

/// Starts screening `reader` and merging into `writer`.
pub(crate) fn screen<R, W>(reader: R, writer: W) -> Screened
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (rmcp_reads, screen_writes) = tokio::io::duplex(PIPE_BYTES);
    let (rmcp_writes, merge_reads) = tokio::io::duplex(PIPE_BYTES);
    let (errors_tx, errors_rx) = mpsc::unbounded_channel();
    tokio::spawn(screen_input(reader, screen_writes, errors_tx));
    let output = tokio::spawn(merge_output(merge_reads, errors_rx, writer));
    Screened {
        to_rmcp: rmcp_reads,
        from_rmcp: rmcp_writes,
        output,
    }
}

async fn screen_input<R: AsyncRead + Unpin>(
    reader: R,
    mut to_rmcp: DuplexStream,
    errors: mpsc::UnboundedSender<Vec<u8>>,
) {
    let mut reader = BufReader::new(reader);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line).await {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "reading MCP input failed; stopping");
                break;
            }
        }
        let body = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&line);
        let body = body.trim_ascii();
        if body.is_empty() {
            continue;
        }
        if let Err(e) = std::str::from_utf8(body) {
            tracing::debug!(error = %e, "MCP input line is not UTF-8");
            let _ = errors.send(not_utf8(body, &e));
            continue;
        }
        if body.len() > MAX_MESSAGE_BYTES {
            // rmcp would drop it without an answer and the client would wait forever.
            match serde_json::from_slice::<Envelope>(body) {
                Ok(Envelope { id: Some(id), .. }) if !id.is_null() => {
                    let _ = errors.send(too_large(id, body.len()));
                }
                Ok(_) => tracing::warn!(bytes = body.len(), "dropped an oversized notification"),
                Err(e) => {
                    let _ = errors.send(parse_error(&e));
                }
            }
            continue;
        }
        match serde_json::from_slice::<ClientJsonRpcMessage>(body) {
            Ok(_) => {}
            Err(e) if e.is_syntax() || e.is_eof() => {
                tracing::debug!(error = %e, "unparsable MCP input line");
                let _ = errors.send(parse_error(&e));
                continue;
            }
            Err(e) => match serde_json::from_slice::<Envelope>(body) {
                Ok(Envelope {
                    id: Some(id),
                    method,
                }) if !id.is_null() => {
                    tracing::debug!(error = %e, "malformed MCP request");
                    let _ = errors.send(malformed(id, method, &e));
                    continue;
                }
                // A malformed notification: rmcp ignores or answers it as it sees fit.
                _ => {}
            },
        }
        if to_rmcp.write_all(body).await.is_err() || to_rmcp.write_all(b"\n").await.is_err() {
            break;
        }
    }
    // Dropping `to_rmcp` is rmcp's end of input.
}

/// The largest message rmcp accepts.
const MAX_MESSAGE_BYTES: usize = rmcp::transport::async_rw::DEFAULT_MAX_LINE_LENGTH;

/// Just the id and method of a message (the rest is skipped).
#[derive(serde::Deserialize)]
struct Envelope {
    #[serde(default)]
    id: Option<serde_json::Value>,
    #[serde(default)]
    method: Option<serde_json::Value>,
}

/// The answer to a request that is JSON but not a valid message: invalid params
/// (-32602) for a method this server has, else invalid request (-32600).
fn malformed(
    id: serde_json::Value,
    method: Option<serde_json::Value>,
    e: &serde_json::Error,
) -> Vec<u8> {
    let (code, message) = match method.as_ref().and_then(|m| m.as_str()) {
        Some(method) if crate::server::KNOWN_METHODS.contains(&method) => (
            -32602,
            format!("invalid params for {method}: {e}: see the MCP specification"),
        ),
        _ => (
            -32600,
            format!(
                "invalid request: {e}: send {{\"jsonrpc\": \"2.0\", \"id\": <id>, \
                 \"method\": <string>, \"params\": {{...}}}}"
            ),
        ),
    };
    line(serde_json::json!({
        "jsonrpc": "2.0",
        "id": id,
        "error": {"code": code, "message": message},
    }))
}

fn too_large(id: serde_json::Value, bytes: usize) -> Vec<u8> {
    line(serde_json::json!({
        "jsonrpc": "2.0",
        "id": id,
        "error": {
            "code": -32600,
            "message": format!(
                "request too large: {bytes} bytes, the limit is {} MiB per message; send \
                 large content in parts (e.g. write_file a first part, then append with bash)",
                MAX_MESSAGE_BYTES >> 20
            ),
        }
    }))
}

fn line(msg: serde_json::Value) -> Vec<u8> {
    let mut bytes = msg.to_string().into_bytes();
    bytes.push(b'\n');
    bytes
}

/// A parse error for a line that is not UTF-8, carrying the request's id when the
/// rest of the line still reads as JSON (the bad bytes are usually inside a string).
fn not_utf8(body: &[u8], e: &std::str::Utf8Error) -> Vec<u8> {
    let id = serde_json::from_str::<Envelope>(&String::from_utf8_lossy(body))
        .ok()
        .and_then(|envelope| envelope.id)
        .unwrap_or(serde_json::Value::Null);
    line(serde_json::json!({
        "jsonrpc": "2.0",
        "id": id,
        "error": {
            "code": -32700,
            "message": format!(
                "Parse error: the message is not valid UTF-8 (bad byte at offset {}): send \
                 JSON-RPC messages as UTF-8 text, with other bytes escaped or base64-encoded",
                e.valid_up_to()
            ),
        }
    }))
}

fn parse_error(e: &serde_json::Error) -> Vec<u8> {
    line(serde_json::json!({
        "jsonrpc": "2.0",
        "id": null,
        "error": {
            "code": -32700,
            "message": format!("Parse error: {e}: send one JSON-RPC message per line"),
        }
    }))
}

async fn merge_output<W: AsyncWrite + Unpin>(
    from_rmcp: DuplexStream,
    mut errors: mpsc::UnboundedReceiver<Vec<u8>>,
    mut writer: W,
) {
    let mut from_rmcp = BufReader::new(from_rmcp);
    // `read_until` is cancel-safe with a kept buffer: a partial line stays in `line`
    // while a parse error is written, and the next call completes it.
    let mut line = Vec::new();
    let mut errors_open = true;
    loop {
        tokio::select! {
            read = from_rmcp.read_until(b'\n', &mut line) => {
                let done = !matches!(read, Ok(n) if n > 0);
                if !line.is_empty() && write_line(&mut writer, &line).await.is_err() {
                    return;
                }
                line.clear();
                if done {
                    break;
                }
            }
            error = errors.recv(), if errors_open => match error {
                Some(bytes) => {
                    if write_line(&mut writer, &bytes).await.is_err() {
                        return;
                    }
                }
                None => errors_open = false,
            },
        }
    }
    // rmcp is done: flush parse errors already queued, then stop (input may never end).
    while let Ok(bytes) = errors.try_recv() {
        if write_line(&mut writer, &bytes).await.is_err() {
            return;
        }
    }
}

async fn write_line<W: AsyncWrite + Unpin>(writer: &mut W, line: &[u8]) -> std::io::Result<()> {
    writer.write_all(line).await?;
    if !line.ends_with(b"\n") {
        writer.write_all(b"\n").await?;
    }
    writer.flush().await
}
