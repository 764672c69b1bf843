//! A minimal MCP client for the tests: newline-delimited JSON-RPC written by hand, so
//! the tests see exactly what goes over the wire. Responses are routed to their
//! request by id, so many requests can be in flight at once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::{mpsc, oneshot, Mutex};

type Writer = Box<dyn AsyncWrite + Send + Unpin>;

/// How long any single response may take before the test fails (generous: the
/// machine is shared).
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(60);

/// A JSON-RPC client over a byte stream pair.
pub struct McpClient {
    writer: Arc<Mutex<Writer>>,
    pending: Arc<Mutex<HashMap<u64, oneshot::Sender<Value>>>>,
    /// Messages that answer no pending request (id-less errors, notifications).
    pub other: Mutex<mpsc::UnboundedReceiver<Value>>,
    next_id: AtomicU64,
}

impl McpClient {
    /// Starts reading `reader` in the background.
    pub fn new(
        reader: impl AsyncRead + Send + Unpin + 'static,
        writer: impl AsyncWrite + Send + Unpin + 'static,
    ) -> Self {
        let pending: Arc<Mutex<HashMap<u64, oneshot::Sender<Value>>>> = Arc::default();
        let (other_tx, other_rx) = mpsc::unbounded_channel();
        let routes = pending.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(reader).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let msg: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("server wrote a non-JSON line {line:?}: {e}"));
                let waiter = match msg.get("id").and_then(Value::as_u64) {
                    Some(id) if msg.get("method").is_none() => routes.lock().await.remove(&id),
                    _ => None,
                };
                match waiter {
                    Some(tx) => {
                        let _ = tx.send(msg);
                    }
                    None => {
                        let _ = other_tx.send(msg);
                    }
                }
            }
        });
        McpClient {
            writer: Arc::new(Mutex::new(Box::new(writer))),
            pending,
            other: Mutex::new(other_rx),
            next_id: AtomicU64::new(1),
        }
    }

    /// Writes one raw line (for malformed-input tests).
    pub async fn send_line(&self, line: &str) {
        let mut w = self.writer.lock().await;
        w.write_all(line.as_bytes()).await.expect("write to server");
        w.write_all(b"\n").await.expect("write to server");
        w.flush().await.expect("flush to server");
    }

    /// Closes the server's input (end of file), as a client does when it exits.
    pub async fn close(&self) {
        let mut w = self.writer.lock().await;
        w.shutdown().await.expect("close the server's input");
    }

    /// Sends a request; returns its id and a receiver for the whole response message.
    pub async fn start(&self, method: &str, params: Value) -> (u64, oneshot::Receiver<Value>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.pending.lock().await.insert(id, tx);
        let msg = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        self.send_line(&msg.to_string()).await;
        (id, rx)
    }

    /// Sends a request and waits for the whole response message.
    pub async fn request(&self, method: &str, params: Value) -> Value {
        let (_, rx) = self.start(method, params).await;
        wait(rx).await
    }

    /// Sends a notification.
    pub async fn notify(&self, method: &str, params: Value) {
        let msg = json!({"jsonrpc": "2.0", "method": method, "params": params});
        self.send_line(&msg.to_string()).await;
    }

    /// The handshake: `initialize`, then `notifications/initialized`. Returns the
    /// initialize result.
    pub async fn initialize(&self) -> Value {
        let resp = self
            .request(
                "initialize",
                json!({
                    "protocolVersion": "2025-06-18",
                    "capabilities": {},
                    "clientInfo": {"name": "cmux-tests", "version": "0"}
                }),
            )
            .await;
        let result = resp
            .get("result")
            .cloned()
            .unwrap_or_else(|| panic!("initialize failed: {resp}"));
        self.notify("notifications/initialized", json!({})).await;
        result
    }

    /// `tools/call`; returns the call's result object (`content`, `isError`).
    pub async fn call(&self, tool: &str, arguments: Value) -> ToolResult {
        let (_, rx) = self.start_call(tool, arguments).await;
        ToolResult::from_response(wait(rx).await)
    }

    /// Starts a `tools/call` without waiting for it.
    pub async fn start_call(
        &self,
        tool: &str,
        arguments: Value,
    ) -> (u64, oneshot::Receiver<Value>) {
        self.start("tools/call", json!({"name": tool, "arguments": arguments}))
            .await
    }
}

/// Waits for a response message.
pub async fn wait(rx: oneshot::Receiver<Value>) -> Value {
    tokio::time::timeout(RESPONSE_TIMEOUT, rx)
        .await
        .expect("no response from the MCP server in time")
        .expect("the MCP server closed the stream before answering")
}

/// A `tools/call` result.
#[derive(Debug)]
pub struct ToolResult {
    /// The text content, joined.
    pub text: String,
    /// `isError`.
    pub is_error: bool,
    /// Every content block, as sent (text, image...).
    pub content: Vec<Value>,
}

impl ToolResult {
    /// Reads a `tools/call` response message; panics on a JSON-RPC error.
    pub fn from_response(resp: Value) -> Self {
        let result = resp
            .get("result")
            .unwrap_or_else(|| panic!("tools/call answered with an error: {resp}"));
        let content = result["content"]
            .as_array()
            .unwrap_or_else(|| panic!("result without content: {resp}"))
            .clone();
        let text = content
            .iter()
            .filter_map(|c| c["text"].as_str())
            .collect::<Vec<_>>()
            .join("\n");
        ToolResult {
            text,
            is_error: result["isError"].as_bool().unwrap_or(false),
            content,
        }
    }

    /// Asserts success and returns the text.
    pub fn ok(self) -> String {
        assert!(!self.is_error, "tool failed: {}", self.text);
        self.text
    }

    /// Asserts failure and returns the text.
    pub fn err(self) -> String {
        assert!(self.is_error, "tool should have failed: {}", self.text);
        self.text
    }
}
