//! The MCP server against an SSH workspace on the test sshd: the same client and
//! checks as `mcp_local`, plus a host that goes down and comes back.

use std::path::PathBuf;
use std::sync::Arc;

use cmux_core::tools::ToolContext;
use cmux_core::RemotePath;
use cmux_integration_tests::sshd::TestSshd;
use serde_json::json;

use crate::mcp_client::McpClient;
use crate::mcp_local::{
    alive, assert_tool_list, connect, connect_until, exercise_cancellation, exercise_every_tool,
    exercise_failures, exercise_timeout, parallel_sleeps, start_sleeper,
};

/// A server on a fresh workspace dir on the test sshd (which is this machine, so the
/// workspace is also a local path the test can inspect).
struct Ssh {
    sshd: TestSshd,
    ws: PathBuf,
    client: McpClient,
}

impl Ssh {
    async fn start() -> Self {
        let sshd = TestSshd::start();
        let ws = sshd.scratch().join("ws");
        std::fs::create_dir_all(&ws).expect("workspace dir");
        let root = RemotePath::new(ws.to_str().expect("utf-8 path")).expect("root");
        let ctx = ToolContext::new(Arc::new(sshd.runtime()), root);
        let client = connect(ctx);
        let init = client.initialize().await;
        assert_eq!(init["serverInfo"]["name"], "cmux", "{init}");
        Ssh { sshd, ws, client }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn list_every_tool_and_failures_over_ssh() {
    let s = Ssh::start().await;
    assert_tool_list(&s.client).await;
    exercise_every_tool(&s.client, s.ws.to_str().expect("utf-8")).await;
    exercise_failures(&s.client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_cancel_and_timeout_over_ssh() {
    let s = Ssh::start().await;
    let elapsed = parallel_sleeps(&s.client).await;
    eprintln!("mcp ssh: 8 parallel `sleep 1` calls took {elapsed:?}");
    exercise_cancellation(&s.client, &s.ws).await;
    let elapsed = exercise_timeout(&s.client).await;
    eprintln!("mcp ssh: sleep 30 with timeout_secs=1 returned after {elapsed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn end_of_input_kills_running_commands_over_ssh() {
    let sshd = TestSshd::start();
    let ws = sshd.scratch().join("ws");
    std::fs::create_dir_all(&ws).expect("workspace dir");
    let root = RemotePath::new(ws.to_str().expect("utf-8 path")).expect("root");
    let ctx = ToolContext::new(Arc::new(sshd.runtime()), root);
    let (client, server) = connect_until(ctx, tokio_util::sync::CancellationToken::new());
    client.initialize().await;
    let (_, _rx, pids) = start_sleeper(&client, &ws).await;
    client.close().await;
    tokio::time::timeout(std::time::Duration::from_secs(30), server)
        .await
        .expect("the server stops at end of input")
        .expect("server task")
        .expect("a clean stop");
    for pid in pids {
        assert!(!alive(pid), "pid {pid} outlived the server");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn survives_the_host_going_down_and_coming_back() {
    let mut s = Ssh::start().await;
    s.client
        .call(
            "write_file",
            json!({"path": "a.txt", "content": "before\n"}),
        )
        .await
        .ok();

    s.sshd.stop();
    let down = s.client.call("bash", json!({"command": "echo hi"})).await;
    assert!(
        down.is_error,
        "a call while the host is down fails: {down:?}"
    );
    // Issue 11 #18: once the connection is known refused, nothing ran, and bash says so.
    let again = s.client.call("bash", json!({"command": "echo hi"})).await;
    assert!(
        again.is_error
            && again.text.contains("did not run")
            && !again.text.contains("may or may not"),
        "{again:?}"
    );
    let down = s.client.call("read_file", json!({"path": "a.txt"})).await;
    assert!(down.is_error, "{down:?}");
    eprintln!("mcp ssh: while down: {}", down.text);

    s.sshd.restart();
    // The runtime may hold off reconnecting for a few seconds after a failure: poll.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let text = loop {
        let r = s.client.call("read_file", json!({"path": "a.txt"})).await;
        if !r.is_error {
            break r.text;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never recovered: {}",
            r.text
        );
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    };
    assert!(text.contains("before"), "{text}");
    let text = s
        .client
        .call("bash", json!({"command": "echo back"}))
        .await
        .ok();
    assert!(text.contains("back"), "{text}");
}
