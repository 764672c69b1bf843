//! The MCP server (`cmux_mcp::serve`) driven over an in-process pipe by a JSON-RPC
//! client, against a local workspace in a temp dir: handshake, tools/list, every tool,
//! tool failures as `isError` results, protocol errors, parallel calls, cancellation
//! and timeouts.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cmux_backend_local::LocalRuntime;
use cmux_core::tools::ToolContext;
use cmux_core::RemotePath;
use serde_json::{json, Value};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::mcp_client::{wait, McpClient};

/// A server on a fresh local workspace, with a connected and initialized client.
pub struct Local {
    _home: tempfile::TempDir,
    /// The workspace directory.
    pub ws: PathBuf,
    /// The client.
    pub client: McpClient,
    /// The initialize result.
    pub init: Value,
}

impl Local {
    pub async fn start() -> Self {
        let (home, ws, ctx) = local_ctx();
        let client = connect(ctx);
        let init = client.initialize().await;
        Local {
            _home: home,
            ws,
            client,
            init,
        }
    }
}

/// Serves `ctx` in this process over a duplex pipe; returns the client end.
pub fn connect(ctx: ToolContext) -> McpClient {
    connect_until(ctx, CancellationToken::new()).0
}

/// [`connect`] with a shutdown token; also returns the server task.
pub fn connect_until(
    ctx: ToolContext,
    shutdown: CancellationToken,
) -> (McpClient, JoinHandle<cmux_core::Result<()>>) {
    let (client_io, server_io) = tokio::io::duplex(1 << 16);
    let (server_read, server_write) = tokio::io::split(server_io);
    let server = tokio::spawn(cmux_mcp::serve_until(
        ctx,
        server_read,
        server_write,
        shutdown,
    ));
    let (client_read, client_write) = tokio::io::split(client_io);
    (McpClient::new(client_read, client_write), server)
}

/// A local workspace context on a fresh temp home; returns (home, workspace, ctx).
pub fn local_ctx() -> (tempfile::TempDir, PathBuf, ToolContext) {
    let home = tempfile::tempdir().expect("temp home");
    let ws = home.path().join("ws");
    std::fs::create_dir(&ws).expect("workspace dir");
    let runtime =
        LocalRuntime::with_home(home.path().to_str().expect("utf-8 temp path")).expect("rt");
    let root = RemotePath::new(ws.to_str().expect("utf-8 temp path")).expect("root");
    (home, ws, ToolContext::new(Arc::new(runtime), root))
}

/// The tools and their required arguments, as the issue specifies them.
pub const EXPECTED_TOOLS: &[(&str, &[&str], &[&str])] = &[
    (
        "bash",
        &["command"],
        &["timeout_secs", "cwd", "run_in_background"],
    ),
    ("read_file", &["path"], &["offset", "limit"]),
    ("write_file", &["path", "content"], &[]),
    (
        "edit_file",
        &["path", "old_string", "new_string"],
        &["replace_all"],
    ),
    ("list_dir", &[], &["path"]),
    ("glob", &["pattern"], &["path"]),
    (
        "grep",
        &["pattern"],
        &[
            "path",
            "glob",
            "type",
            "output_mode",
            "case_insensitive",
            "fixed_strings",
            "multiline",
            "before_context",
            "after_context",
            "context",
        ],
    ),
    ("job_output", &["id"], &["wait_secs"]),
    ("job_kill", &["id"], &[]),
    ("jobs", &[], &[]),
];

/// Checks `tools/list` against [`EXPECTED_TOOLS`].
pub async fn assert_tool_list(client: &McpClient) {
    let resp = client.request("tools/list", json!({})).await;
    let tools = resp["result"]["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("tools/list failed: {resp}"))
        .clone();
    let names: Vec<&str> = tools.iter().filter_map(|t| t["name"].as_str()).collect();
    let expected: Vec<&str> = EXPECTED_TOOLS.iter().map(|(n, _, _)| *n).collect();
    assert_eq!(names, expected);
    for (tool, (name, required, optional)) in tools.iter().zip(EXPECTED_TOOLS) {
        let schema = &tool["inputSchema"];
        assert_eq!(schema["type"], "object", "{name}: {schema}");
        let mut req: Vec<&str> = schema["required"]
            .as_array()
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        req.sort_unstable();
        let mut want = required.to_vec();
        want.sort_unstable();
        assert_eq!(req, want, "required arguments of {name}: {schema}");
        let props = schema["properties"].as_object().expect("properties");
        assert_eq!(
            props.len(),
            required.len() + optional.len(),
            "{name}: {schema}"
        );
        for arg in required.iter().chain(optional.iter()) {
            let desc = props[*arg]["description"].as_str().unwrap_or_default();
            assert!(
                desc.len() > 10,
                "{name}.{arg} needs a description: {schema}"
            );
        }
        assert!(
            tool["description"].as_str().unwrap_or_default().len() > 40,
            "{name} needs a description"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn initialize_and_list_tools() {
    let s = Local::start().await;
    assert_eq!(s.init["serverInfo"]["name"], "cmux");
    assert!(s.init["capabilities"]["tools"].is_object(), "{}", s.init);
    let instructions = s.init["instructions"].as_str().unwrap_or_default();
    assert!(
        instructions.contains(s.ws.to_str().expect("utf-8")),
        "{instructions}"
    );
    assert_tool_list(&s.client).await;
}

/// Every tool once, on a fresh workspace at `ws` (as the server sees it).
pub async fn exercise_every_tool(client: &McpClient, ws: &str) {
    let text = client
        .call(
            "write_file",
            json!({"path": "src/notes.txt", "content": "alpha\nbeta\ngamma\n"}),
        )
        .await
        .ok();
    assert!(text.contains("notes.txt"), "{text}");

    let text = client
        .call("read_file", json!({"path": "src/notes.txt"}))
        .await
        .ok();
    assert!(
        text.contains("1\talpha") && text.contains("3\tgamma"),
        "{text}"
    );
    let text = client
        .call(
            "read_file",
            json!({"path": "src/notes.txt", "offset": 2, "limit": 1}),
        )
        .await
        .ok();
    assert!(
        text.contains("2\tbeta") && !text.contains("gamma\n"),
        "{text}"
    );

    client
        .call(
            "edit_file",
            json!({"path": "src/notes.txt", "old_string": "beta", "new_string": "BETA"}),
        )
        .await
        .ok();
    client
        .call(
            "edit_file",
            json!({"path": "src/notes.txt", "old_string": "a\n", "new_string": "a!\n", "replace_all": true}),
        )
        .await
        .ok();
    let text = client
        .call("read_file", json!({"path": "src/notes.txt"}))
        .await
        .ok();
    assert!(
        text.contains("alpha!") && text.contains("BETA") && text.contains("gamma!"),
        "{text}"
    );

    let text = client.call("list_dir", json!({})).await.ok();
    assert!(text.contains("src"), "{text}");
    let text = client.call("list_dir", json!({"path": "src"})).await.ok();
    assert!(text.contains("notes.txt"), "{text}");

    let text = client
        .call("glob", json!({"pattern": "**/*.txt"}))
        .await
        .ok();
    assert!(text.contains("src/notes.txt"), "{text}");
    let text = client
        .call("glob", json!({"pattern": "*.txt", "path": "src"}))
        .await
        .ok();
    assert!(text.contains("notes.txt"), "{text}");

    let text = client.call("grep", json!({"pattern": "BE.A"})).await.ok();
    assert!(
        text.contains("notes.txt") && text.contains("BETA"),
        "{text}"
    );
    let text = client
        .call("grep", json!({"pattern": "gamma", "glob": "*.rs"}))
        .await;
    assert!(!text.text.contains("notes.txt:"), "{}", text.text);

    let text = client
        .call("bash", json!({"command": "pwd; cat src/notes.txt | wc -l"}))
        .await
        .ok();
    assert!(text.contains(ws) && text.contains('3'), "{text}");
    assert!(text.contains("exit code 0"), "{text}");
    let text = client
        .call("bash", json!({"command": "pwd", "cwd": "src"}))
        .await
        .ok();
    assert!(text.contains(&format!("{ws}/src")), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_tool_works() {
    let s = Local::start().await;
    exercise_every_tool(&s.client, s.ws.to_str().expect("utf-8")).await;
    assert_eq!(
        std::fs::read_to_string(s.ws.join("src/notes.txt")).expect("file"),
        "alpha!\nBETA\ngamma!\n"
    );
}

/// Failures come back as `isError` results the model can act on, and the server keeps
/// serving.
pub async fn exercise_failures(client: &McpClient) {
    let text = client
        .call(
            "bash",
            json!({"command": "echo out; echo oops >&2; exit 3"}),
        )
        .await
        .err();
    assert!(
        text.contains("exit code 3") && text.contains("oops") && text.contains("out"),
        "{text}"
    );

    let text = client
        .call("read_file", json!({"path": "missing.txt"}))
        .await
        .err();
    assert!(
        text.contains("missing.txt") && text.contains("no such file"),
        "{text}"
    );

    client
        .call("write_file", json!({"path": "f.txt", "content": "one\n"}))
        .await
        .ok();
    let text = client
        .call(
            "edit_file",
            json!({"path": "f.txt", "old_string": "two", "new_string": "three"}),
        )
        .await
        .err();
    assert!(text.contains("f.txt"), "{text}");

    let text = client.call("bash", json!({"cmd": "ls"})).await.err();
    assert!(
        text.contains("invalid arguments") && text.contains("cmd"),
        "{text}"
    );
    let text = client.call("read_file", json!({"path": 42})).await.err();
    assert!(text.contains("invalid arguments"), "{text}");

    // Still serving.
    client.call("bash", json!({"command": "true"})).await.ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failures_are_error_results() {
    let s = Local::start().await;
    exercise_failures(&s.client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn malformed_requests_get_json_rpc_errors() {
    let s = Local::start().await;
    let c = &s.client;

    let resp = c
        .request(
            "tools/call",
            json!({"name": "no_such_tool", "arguments": {}}),
        )
        .await;
    assert_eq!(resp["error"]["code"], -32602, "{resp}");
    assert!(
        resp["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("bash"),
        "{resp}"
    );

    let resp = c.request("no/such/method", json!({})).await;
    assert_eq!(resp["error"]["code"], -32601, "{resp}");

    let resp = c.request("tools/call", json!({"arguments": {}})).await;
    assert!(resp["error"]["code"].is_i64(), "{resp}");

    // A structurally invalid message is answered with an id-less -32600 error, a line
    // that is not JSON with an id-less -32700 parse error; the server keeps serving.
    c.send_line(r#"{"jsonrpc":"2.0","id":"x","method":42}"#)
        .await;
    let other = next_unsolicited(c).await;
    assert_eq!(other["error"]["code"], -32600, "{other}");
    c.send_line("this is not json").await;
    let other = next_unsolicited(c).await;
    assert_eq!(other["error"]["code"], -32700, "{other}");
    assert!(other["id"].is_null(), "{other}");
    // A request larger than the transport accepts is answered, not dropped.
    let big = "x".repeat(17 << 20);
    let resp = c
        .request(
            "tools/call",
            json!({"name": "write_file", "arguments": {"path": "big.txt", "content": big}}),
        )
        .await;
    assert_eq!(resp["error"]["code"], -32600, "{}", resp["error"]);
    assert!(
        resp["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("too large"),
        "{}",
        resp["error"]
    );

    let resp = c.request("ping", json!({})).await;
    assert!(resp.get("result").is_some(), "{resp}");
    c.call("bash", json!({"command": "echo still here"}))
        .await
        .ok();
}

async fn next_unsolicited(c: &McpClient) -> Value {
    tokio::time::timeout(Duration::from_secs(30), async {
        c.other.lock().await.recv().await
    })
    .await
    .expect("an answer to the invalid message")
    .expect("message")
}

/// 8 concurrent `sleep 1` calls all complete; returns the wall time.
pub async fn parallel_sleeps(client: &McpClient) -> Duration {
    let started = Instant::now();
    let mut waiting = Vec::new();
    for i in 0..8 {
        let (_, rx) = client
            .start_call(
                "bash",
                json!({"command": format!("sleep 1; echo done {i}")}),
            )
            .await;
        waiting.push((i, rx));
    }
    for (i, rx) in waiting {
        let result = crate::mcp_client::ToolResult::from_response(wait(rx).await);
        let text = result.ok();
        assert!(text.contains(&format!("done {i}")), "{text}");
    }
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_calls_run_concurrently() {
    let s = Local::start().await;
    let elapsed = parallel_sleeps(&s.client).await;
    eprintln!("mcp local: 8 parallel `sleep 1` calls took {elapsed:?}");
}

/// True while `pid` is a live (not zombie) process.
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .map(|(_, rest)| !rest.trim_start().starts_with('Z'))
            .unwrap_or(false),
        Err(_) => false,
    }
}

pub async fn wait_for_file(path: &Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(text) = std::fs::read_to_string(path) {
            if text.ends_with('\n') {
                return text;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Cancels a running `bash` call and waits until its processes are gone; `ws` is the
/// workspace as a path on this machine (where the pid files appear).
pub async fn exercise_cancellation(client: &McpClient, ws: &Path) {
    let (id, rx, [sleep_pid, bash_pid]) = start_sleeper(client, ws).await;

    client
        .notify(
            "notifications/cancelled",
            json!({"requestId": id, "reason": "test"}),
        )
        .await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while alive(sleep_pid) || alive(bash_pid) {
        assert!(
            Instant::now() < deadline,
            "the cancelled command is still running"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A cancelled request gets no response (MCP: the receiver should not answer it),
    // and the server keeps serving.
    drop(rx);
    client
        .call("bash", json!({"command": "echo after"}))
        .await
        .ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cancellation_kills_the_command() {
    let s = Local::start().await;
    exercise_cancellation(&s.client, &s.ws).await;
}

/// Starts a `bash` call running `sleep 30` in the background of its shell; returns
/// the request id, its response receiver, and the pids of the sleep and the shell
/// once both are running.
pub async fn start_sleeper(
    client: &McpClient,
    ws: &Path,
) -> (u64, tokio::sync::oneshot::Receiver<Value>, [u32; 2]) {
    let (id, rx) = client
        .start_call(
            "bash",
            json!({"command": "sleep 30 & echo $! > sleep.pid; echo $$ > bash.pid; wait"}),
        )
        .await;
    let mut pids = [0u32; 2];
    for (pid, file) in pids.iter_mut().zip(["sleep.pid", "bash.pid"]) {
        *pid = wait_for_file(&ws.join(file))
            .await
            .trim()
            .parse()
            .expect("pid");
        assert!(alive(*pid), "{file}");
    }
    (id, rx, pids)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shutdown_kills_running_commands() {
    let (_home, ws, ctx) = local_ctx();
    let shutdown = CancellationToken::new();
    let (client, server) = connect_until(ctx, shutdown.clone());
    client.initialize().await;
    let (_, _rx, pids) = start_sleeper(&client, &ws).await;
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(30), server)
        .await
        .expect("the server stops")
        .expect("server task")
        .expect("a clean stop");
    // The server returns only once the commands are killed: no polling needed.
    for pid in pids {
        assert!(!alive(pid), "pid {pid} outlived the server");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn end_of_input_kills_running_commands() {
    let (_home, ws, ctx) = local_ctx();
    let (client, server) = connect_until(ctx, CancellationToken::new());
    client.initialize().await;
    let (_, _rx, pids) = start_sleeper(&client, &ws).await;
    client.close().await;
    tokio::time::timeout(Duration::from_secs(30), server)
        .await
        .expect("the server stops at end of input")
        .expect("server task")
        .expect("a clean stop");
    for pid in pids {
        assert!(!alive(pid), "pid {pid} outlived the server");
    }
}

/// `timeout_secs` = 1 on `sleep 30`: the result says it timed out.
pub async fn exercise_timeout(client: &McpClient) -> Duration {
    let started = Instant::now();
    let text = client
        .call("bash", json!({"command": "sleep 30", "timeout_secs": 1}))
        .await
        .err();
    assert!(text.contains("timed out"), "{text}");
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn timeout_kills_the_command() {
    let s = Local::start().await;
    let elapsed = exercise_timeout(&s.client).await;
    eprintln!("mcp local: sleep 30 with timeout_secs=1 returned after {elapsed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn read_file_returns_images_as_image_content() {
    use cmux_core::testkit::PNG_1X1;
    let s = Local::start().await;
    // A screenshot without an extension: told by its content.
    std::fs::write(s.ws.join("screenshot"), PNG_1X1).expect("write png");
    let result = s
        .client
        .call("read_file", json!({"path": "screenshot"}))
        .await;
    assert!(!result.is_error, "{result:?}");
    let image = &result.content[0];
    assert_eq!(image["type"], "image", "{image}");
    assert_eq!(image["mimeType"], "image/png", "{image}");
    assert_eq!(
        image["data"],
        cmux_core::tools::Content::base64(PNG_1X1),
        "the file's bytes, base64"
    );
    assert!(result.text.contains("image/png"), "{}", result.text);
    // Over the image cap: an error result saying why and what to do.
    let mut big = PNG_1X1.to_vec();
    big.resize(cmux_core::tools::READ_MAX_IMAGE_BYTES as usize + 1, 0);
    std::fs::write(s.ws.join("big.png"), big).expect("write big png");
    let text = s
        .client
        .call("read_file", json!({"path": "big.png"}))
        .await
        .err();
    assert!(text.contains("image limit"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn long_bash_output_keeps_the_error_at_the_end() {
    let s = Local::start().await;
    let text = s
        .client
        .call(
            "bash",
            json!({"command": "for i in $(seq 1 3000); do echo \"   Compiling crate-$i v0.1.0\"; done; \
                   echo 'error[E0425]: cannot find value `x` in this scope' >&2; \
                   for i in $(seq 1 3000); do echo \"   Compiling late-$i v0.1.0\"; done; \
                   echo 'error: could not compile `app`'; exit 101"}),
        )
        .await
        .err();
    assert!(
        text.starts_with("   Compiling crate-1 v0.1.0\n"),
        "the head stays"
    );
    assert!(
        text.contains("bytes of stdout cut here"),
        "the cut is marked: {}",
        &text[..200]
    );
    assert!(
        text.ends_with(
            "   Compiling late-3000 v0.1.0\nerror: could not compile `app`\n[stderr]\n\
             error[E0425]: cannot find value `x` in this scope\n[exit code 101]"
        ),
        "the end of stdout, and stderr, stay: {}",
        &text[text.len().saturating_sub(400)..]
    );
}
