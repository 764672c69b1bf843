//! `cmux mcp` end to end: an MCP client drives the real binary over stdio, with
//! hand-written JSON-RPC lines, on a local workspace and on an SSH workspace on the
//! test sshd. Every line the binary writes on stdout must be JSON (nothing but
//! protocol on stdout).

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use cmux_integration_tests::sshd::TestSshd;
use serde_json::{json, Value};

use super::ssh::{connect_lines, slow_host_config, stop_masters};
use super::{alive, read_pid, Env};

/// How long any one response may take (generous: the machine is shared).
const WAIT: Duration = Duration::from_secs(60);

/// A running `cmux mcp` and the client end of its stdio.
struct Server {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: mpsc::Receiver<Result<Value, String>>,
    stderr: Option<std::thread::JoinHandle<String>>,
    unclaimed: Vec<Value>,
    next_id: u64,
}

impl Server {
    fn start(env: &Env, name: &str) -> Server {
        Server::spawn(env.command(&["mcp", name]))
    }

    /// Starts `cmd` (a `cmux mcp` command) and completes the handshake.
    fn spawn(mut cmd: Command) -> Server {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cmux mcp starts");
        let out = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                let msg = serde_json::from_str(&line)
                    .map_err(|e| format!("stdout carried a non-JSON line {line:?}: {e}"));
                if tx.send(msg).is_err() {
                    break;
                }
            }
        });
        let mut err = child.stderr.take().expect("stderr");
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = err.read_to_string(&mut text);
            text
        });
        let stdin = child.stdin.take();
        let mut server = Server {
            child,
            stdin,
            stdout: rx,
            stderr: Some(stderr),
            unclaimed: Vec::new(),
            next_id: 1,
        };
        let id = server.request(
            "initialize",
            json!({
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "cmux-cli-tests", "version": "0"}
            }),
        );
        let init = server.response(id);
        assert_eq!(init["result"]["serverInfo"]["name"], "cmux", "{init}");
        server.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
        server
    }

    fn send_line(&mut self, line: &str) {
        self.send_bytes(line.as_bytes());
    }

    /// Writes one line of raw bytes (which need not be UTF-8).
    fn send_bytes(&mut self, line: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin.write_all(line).expect("write to cmux mcp");
        stdin.write_all(b"\n").expect("write to cmux mcp");
        stdin.flush().expect("flush to cmux mcp");
    }

    fn send(&mut self, msg: &Value) {
        self.send_line(&msg.to_string());
    }

    fn request(&mut self, method: &str, params: Value) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        id
    }

    fn start_call(&mut self, tool: &str, arguments: Value) -> u64 {
        self.request("tools/call", json!({"name": tool, "arguments": arguments}))
    }

    /// The next message from the server, whatever it answers.
    fn next(&mut self) -> Value {
        match self.stdout.recv_timeout(WAIT) {
            Ok(Ok(msg)) => msg,
            Ok(Err(e)) => panic!("{e}"),
            Err(e) => panic!("no message from cmux mcp in time ({e})"),
        }
    }

    /// The response to request `id` (other messages are kept for later).
    fn response(&mut self, id: u64) -> Value {
        if let Some(i) = self.unclaimed.iter().position(|m| m["id"] == id) {
            return self.unclaimed.remove(i);
        }
        loop {
            let msg = self.next();
            if msg["id"] == id {
                return msg;
            }
            self.unclaimed.push(msg);
        }
    }

    /// A tool result: (text, isError).
    fn result(&mut self, id: u64) -> (String, bool) {
        let resp = self.response(id);
        let result = &resp["result"];
        assert!(result.is_object(), "tools/call failed: {resp}");
        let text = result["content"]
            .as_array()
            .map(|c| {
                c.iter()
                    .filter_map(|b| b["text"].as_str())
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .unwrap_or_default();
        (text, result["isError"].as_bool().unwrap_or(false))
    }

    fn call(&mut self, tool: &str, arguments: Value) -> (String, bool) {
        let id = self.start_call(tool, arguments);
        self.result(id)
    }

    fn ok(&mut self, tool: &str, arguments: Value) -> String {
        let (text, is_error) = self.call(tool, arguments);
        assert!(!is_error, "{tool} failed: {text}");
        text
    }

    fn err(&mut self, tool: &str, arguments: Value) -> String {
        let (text, is_error) = self.call(tool, arguments);
        assert!(is_error, "{tool} should have failed: {text}");
        text
    }

    /// Waits for the process to exit; returns its exit code and stderr.
    fn wait_exit(&mut self) -> (Option<i32>, String) {
        let deadline = Instant::now() + WAIT;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status;
            }
            assert!(Instant::now() < deadline, "cmux mcp did not exit");
            std::thread::sleep(Duration::from_millis(50));
        };
        let stderr = self
            .stderr
            .take()
            .map(|h| h.join().unwrap_or_default())
            .unwrap_or_default();
        (status.code(), stderr)
    }

    /// Closes stdin (the client exits) and waits for the process.
    fn close(&mut self) -> (Option<i32>, String) {
        drop(self.stdin.take());
        self.wait_exit()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `sleep 30` in the background of a bash call; returns the request id and the
/// pids of the sleep and its shell once both run.
fn start_sleeper(server: &mut Server, ws: &Path) -> (u64, [u32; 2]) {
    let id = server.start_call(
        "bash",
        json!({"command": "sleep 30 & echo $! > sleep.pid; echo $$ > bash.pid; wait"}),
    );
    let pids = [
        read_pid(&ws.join("sleep.pid")),
        read_pid(&ws.join("bash.pid")),
    ];
    for pid in pids {
        assert!(alive(pid));
    }
    let _ = std::fs::remove_file(ws.join("sleep.pid"));
    let _ = std::fs::remove_file(ws.join("bash.pid"));
    (id, pids)
}

fn wait_gone(pids: [u32; 2]) {
    crate::wait_gone(&pids, "the command");
}

#[test]
fn mcp_serves_a_local_workspace_over_stdio() {
    let env = Env::new();
    env.ok(&["new", "feat"]);
    let ws = env.workspace_path("feat");
    // Background jobs go to the test's own cache directory.
    let mut cmd = env.command(&["mcp", "feat"]);
    cmd.env("XDG_CACHE_HOME", env.home.path().join("cache"));
    let mut s = Server::spawn(cmd);

    let id = s.request("tools/list", json!({}));
    let tools = s.response(id);
    let names: Vec<&str> = tools["result"]["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("tools/list: {tools}"))
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert_eq!(
        names,
        [
            "bash",
            "read_file",
            "write_file",
            "edit_file",
            "list_dir",
            "glob",
            "grep",
            "job_output",
            "job_kill",
            "jobs"
        ]
    );

    // Every tool.
    s.ok(
        "write_file",
        json!({"path": "notes/a.txt", "content": "one\ntwo\n"}),
    );
    let text = s.ok("read_file", json!({"path": "notes/a.txt"}));
    assert!(text.contains("1\tone") && text.contains("2\ttwo"), "{text}");
    s.ok(
        "edit_file",
        json!({"path": "notes/a.txt", "old_string": "two", "new_string": "TWO"}),
    );
    assert!(s.ok("list_dir", json!({})).contains("README.md"));
    assert!(s
        .ok("glob", json!({"pattern": "**/*.txt"}))
        .contains("notes/a.txt"));
    assert!(s
        .ok("grep", json!({"pattern": "T.O"}))
        .contains("notes/a.txt"));
    let text = s.ok("bash", json!({"command": "pwd; cat notes/a.txt"}));
    assert!(
        text.contains(&ws.display().to_string()) && text.contains("TWO"),
        "{text}"
    );

    // Failures are results the model can act on.
    let text = s.err("bash", json!({"command": "echo oops >&2; exit 3"}));
    assert!(
        text.contains("exit code 3") && text.contains("oops"),
        "{text}"
    );
    let text = s.err(
        "edit_file",
        json!({"path": "notes/a.txt", "old_string": "three", "new_string": "x"}),
    );
    assert!(text.contains("a.txt"), "{text}");
    s.err("read_file", json!({"path": "missing.txt"}));

    // Protocol errors.
    s.send_line("not json");
    let msg = s.next();
    assert_eq!(msg["error"]["code"], -32700, "{msg}");
    let id = s.request("tools/call", json!({"name": "nope", "arguments": {}}));
    let msg = s.response(id);
    assert_eq!(msg["error"]["code"], -32602, "{msg}");

    // Parallel calls.
    let started = Instant::now();
    let ids: Vec<u64> = (0..8)
        .map(|i| s.start_call("bash", json!({"command": format!("sleep 1; echo {i}")})))
        .collect();
    for id in ids {
        let (text, is_error) = s.result(id);
        assert!(!is_error, "{text}");
    }
    eprintln!(
        "cmux mcp: 8 parallel `sleep 1` calls took {:?}",
        started.elapsed()
    );

    // Cancellation kills the command.
    let (id, pids) = start_sleeper(&mut s, &ws);
    s.send(&json!({
        "jsonrpc": "2.0",
        "method": "notifications/cancelled",
        "params": {"requestId": id, "reason": "test"}
    }));
    wait_gone(pids);

    // Timeout.
    let text = s.err("bash", json!({"command": "sleep 30", "timeout_secs": 1}));
    assert!(text.contains("timed out"), "{text}");

    // A background job outlives its call...
    let text = s.ok(
        "bash",
        json!({"command": "echo $$ > job.pid; exec sleep 300", "run_in_background": true}),
    );
    assert!(text.starts_with("Started background job"), "{text}");
    let job = read_pid(&ws.join("job.pid"));
    assert!(alive(job));
    let listing = s.ok("jobs", json!({}));
    assert!(
        listing.contains("running") && listing.contains("sleep 300"),
        "{listing}"
    );

    // ...but not the session. The client exits: a clean exit, and neither a running
    // command nor the session's job outlives it.
    let (_, pids) = start_sleeper(&mut s, &ws);
    let (code, stderr) = s.close();
    assert_eq!(code, Some(0), "stderr: {stderr}");
    for pid in pids.into_iter().chain([job]) {
        assert!(!alive(pid), "pid {pid} outlived cmux mcp");
    }
}

#[test]
fn mcp_serves_an_ssh_workspace_over_stdio() {
    let env = Env::new();
    let sshd = TestSshd::start();
    let base = sshd.scratch().join("base").display().to_string();
    let ssh = |args: &[&str]| {
        let mut cmd = env.command(args);
        cmd.env("CMUX_SSH_CONFIG", sshd.config_path());
        cmd
    };
    let out = ssh(&["new", "feat", "--ssh", sshd.alias(), "--src-base", &base])
        .output()
        .expect("cmux new runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ws = env.workspace_path("feat");
    let mut s = Server::spawn(ssh(&["mcp", "feat"]));

    let id = s.request("tools/list", json!({}));
    let tools = s.response(id);
    assert_eq!(
        tools["result"]["tools"].as_array().map(Vec::len),
        Some(cmux_core::tools::TOOLS.len()),
        "{tools}"
    );
    let text = s.ok("bash", json!({"command": "pwd; echo on-the-host"}));
    assert!(
        text.contains(&ws.display().to_string()) && text.contains("on-the-host"),
        "{text}"
    );
    let text = s.err("bash", json!({"command": "exit 7"}));
    assert!(text.contains("exit code 7"), "{text}");
    s.ok("write_file", json!({"path": "f.txt", "content": "alpha\n"}));
    s.ok(
        "edit_file",
        json!({"path": "f.txt", "old_string": "alpha", "new_string": "beta"}),
    );
    s.err(
        "edit_file",
        json!({"path": "f.txt", "old_string": "alpha", "new_string": "gamma"}),
    );
    assert!(s.ok("read_file", json!({"path": "f.txt"})).contains("beta"));
    assert!(s.ok("grep", json!({"pattern": "bet"})).contains("f.txt"));

    let started = Instant::now();
    let ids: Vec<u64> = (0..8)
        .map(|i| s.start_call("bash", json!({"command": format!("sleep 1; echo {i}")})))
        .collect();
    for id in ids {
        let (text, is_error) = s.result(id);
        assert!(!is_error, "{text}");
    }
    eprintln!(
        "cmux mcp over ssh: 8 parallel `sleep 1` calls took {:?}",
        started.elapsed()
    );

    // The sshd runs on this machine: the pids are visible here.
    let (id, pids) = start_sleeper(&mut s, &ws);
    s.send(&json!({
        "jsonrpc": "2.0",
        "method": "notifications/cancelled",
        "params": {"requestId": id}
    }));
    wait_gone(pids);
    let text = s.err("bash", json!({"command": "sleep 30", "timeout_secs": 1}));
    assert!(text.contains("timed out"), "{text}");

    let (code, stderr) = s.close();
    assert_eq!(code, Some(0), "stderr: {stderr}");
}

/// Every request line gets an answer, whatever is wrong with it: a client never waits
/// forever (issue 11 item 19).
#[test]
fn mcp_answers_malformed_requests_over_stdio() {
    let env = Env::new();
    env.ok(&["new", "feat"]);
    let mut s = Server::start(&env, "feat");

    // A request with bytes that are not UTF-8 inside a string: a parse error that
    // still carries the request's id, so the client can match it.
    s.send_bytes(
        b"{\"jsonrpc\":\"2.0\",\"id\":901,\"method\":\"tools/call\",\"params\":\
          {\"name\":\"bash\",\"arguments\":{\"command\":\"echo \xff\xfe\"}}}",
    );
    let msg = s.response(901);
    assert_eq!(msg["error"]["code"], -32700, "{msg}");
    assert!(
        msg["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("UTF-8")),
        "{msg}"
    );
    // A line that is neither UTF-8 nor JSON: a parse error with a null id.
    s.send_bytes(b"\xc3\x28 \xff not even text");
    let msg = s.next();
    assert_eq!(msg["error"]["code"], -32700, "{msg}");
    assert!(msg["id"].is_null(), "{msg}");

    // `arguments` that are not an object: invalid params, not "method not found".
    let id = s.request(
        "tools/call",
        json!({"name": "bash", "arguments": "echo hi"}),
    );
    let msg = s.response(id);
    assert_eq!(msg["error"]["code"], -32602, "{msg}");
    let message = msg["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("arguments") && message.contains("object"),
        "says what is wrong: {msg}"
    );
    // Params that are not an object at all, on a method the server has.
    let id = s.request("tools/call", json!("bash"));
    let msg = s.response(id);
    assert_eq!(msg["error"]["code"], -32602, "{msg}");
    // A request that is not a valid message: invalid request, with its id.
    s.send_line(r#"{"jsonrpc":"2.0","id":902,"method":42}"#);
    let msg = s.response(902);
    assert_eq!(msg["error"]["code"], -32600, "{msg}");
    // An unknown method is still -32601.
    let id = s.request("no/such/method", json!({}));
    let msg = s.response(id);
    assert_eq!(msg["error"]["code"], -32601, "{msg}");

    // Still serving.
    assert!(s
        .ok("bash", json!({"command": "echo still here"}))
        .contains("still here"));
    let (code, stderr) = s.close();
    assert_eq!(code, Some(0), "stderr: {stderr}");
}

#[test]
fn mcp_sigterm_kills_running_commands() {
    let env = Env::new();
    env.ok(&["new", "feat"]);
    let ws = env.workspace_path("feat");
    let mut s = Server::start(&env, "feat");
    let (_, pids) = start_sleeper(&mut s, &ws);
    let status = std::process::Command::new("kill")
        .args(["-TERM", &s.child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let (_, stderr) = s.wait_exit();
    for pid in pids {
        assert!(!alive(pid), "pid {pid} outlived cmux mcp; stderr: {stderr}");
    }
}

#[test]
fn sigkilled_mcp_leaves_no_local_command() {
    let env = Env::new();
    env.ok(&["new", "feat"]);
    let ws = env.workspace_path("feat");
    let tag = crate::unique_tag("mcp-kill");
    let mut s = Server::start(&env, "feat");
    s.start_call("bash", json!({"command": crate::tagged_command(&tag)}));
    crate::wait_ready(&ws.join("ready"));
    assert!(
        !crate::tagged_processes(&tag).is_empty(),
        "the command runs"
    );
    // As the OOM killer or a crashing client would: no chance to clean up.
    s.child.kill().expect("SIGKILL cmux mcp");
    let _ = s.child.wait();
    crate::assert_no_tagged_process_within_5s(&tag, "SIGKILLed cmux mcp");
}

#[test]
fn mcp_unknown_workspace_fails_at_start() {
    let env = Env::new();
    let out = env.run(&["mcp", "nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty(), "stdout must stay clean");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no workspace named \"nope\""), "{stderr}");
}

/// Issue 12 §7 under `cmux mcp`: a slow connection is said on stderr, and stdout stays
/// the protocol alone (the helper fails the session on any non-JSON line).
#[test]
fn mcp_says_a_slow_connection_on_stderr_only() {
    let env = Env::new();
    let sshd = TestSshd::start();
    let (config, host) = slow_host_config(&sshd, 3);
    let base = sshd.scratch().join("base").display().to_string();
    let ssh = |args: &[&str]| {
        let mut cmd = env.command(args);
        cmd.env("CMUX_SSH_CONFIG", &config);
        cmd
    };
    let out = ssh(&["new", "feat", "--ssh", &host, "--src-base", &base])
        .output()
        .expect("cmux new runs");
    let new_err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{new_err}");
    let expected = connect_lines(&new_err);
    assert!(expected.contains("taking a while"), "{new_err}");

    stop_masters(&env, &config, &host);
    let mut s = Server::spawn(ssh(&["mcp", "feat"]));
    let text = s.ok("bash", json!({"command": "echo on-the-host"}));
    assert!(text.contains("on-the-host"), "{text}");
    let (code, stderr) = s.close();
    assert_eq!(code, Some(0), "stderr: {stderr}");
    assert_eq!(connect_lines(&stderr), expected, "stderr: {stderr}");
}
