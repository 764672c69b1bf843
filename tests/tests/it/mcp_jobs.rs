//! Background jobs through the MCP server: started by `bash` with `run_in_background`,
//! followed with `job_output`, listed with `jobs`, stopped with `job_kill`, and ended
//! with the session that started them (only those).

use std::time::Duration;

use cmux_core::jobs::{JobState, Jobs, ReadLimit};
use cmux_core::ExecRequest;
use cmux_integration_tests::jobs::forget_jobs;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::mcp_client::McpClient;
use crate::mcp_local::{alive, connect_until, local_ctx, wait_for_file};

/// The job id in a `bash` background result's text ("Started background job <id> ...").
fn job_id(text: &str) -> String {
    text.split_whitespace()
        .skip_while(|w| *w != "job")
        .nth(1)
        .unwrap_or_else(|| panic!("no job id in {text:?}"))
        .to_owned()
}

async fn start_job(client: &McpClient, command: &str) -> String {
    let text = client
        .call(
            "bash",
            json!({"command": command, "run_in_background": true}),
        )
        .await
        .ok();
    assert!(text.starts_with("Started background job"), "{text}");
    assert!(text.contains("this session ends"), "{text}");
    job_id(&text)
}

/// Calls job_output until the job's text says it ended; returns all the text.
async fn output_until_ended(client: &McpClient, id: &str) -> String {
    let mut all = String::new();
    for _ in 0..30 {
        let text = client
            .call("job_output", json!({"id": id, "wait_secs": 10}))
            .await
            .ok();
        all.push_str(&text);
        if !text.contains("is still running") {
            return all;
        }
    }
    panic!("job {id} did not end: {all}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn jobs_through_mcp_and_the_session_end_kills_only_its_own() {
    let (_home, ws, ctx) = local_ctx();
    let jobs = Jobs::from(&ctx);
    let (client, server) = connect_until(ctx, CancellationToken::new());
    client.initialize().await;

    // Started, followed, finished.
    let quick = start_job(&client, "echo one; echo two >&2; exit 3").await;
    let text = output_until_ended(&client, &quick).await;
    assert!(
        text.contains("one\ntwo\n") && text.contains(&format!("[job {quick} exited with code 3]")),
        "{text}"
    );
    // Stopped with job_kill, with what it started.
    let server_job = start_job(&client, "sleep 300 & echo $! > child.pid; sleep 300").await;
    let child: u32 = wait_for_file(&ws.join("child.pid"))
        .await
        .trim()
        .parse()
        .expect("pid");
    let text = client
        .call("job_kill", json!({"id": server_job}))
        .await
        .ok();
    assert!(text.contains("stopped: killed by signal 15"), "{text}");
    assert!(!alive(child), "the job's child {child} outlived job_kill");

    // One job of this session, one started elsewhere (as `cmux exec --background`).
    let mine = start_job(&client, "echo $$ > mine.pid; exec sleep 300").await;
    let mine_pid: u32 = wait_for_file(&ws.join("mine.pid"))
        .await
        .trim()
        .parse()
        .expect("pid");
    let root = cmux_core::RemotePath::new(ws.to_str().expect("utf-8")).expect("root");
    let outsider = jobs
        .start(ExecRequest::script("sleep 300").cwd(root))
        .await
        .expect("a job started outside the session");
    let listing = client.call("jobs", json!({})).await.ok();
    for id in [&mine, outsider.id.as_str()] {
        assert!(listing.contains(id), "{id} listed: {listing}");
    }
    assert!(listing.contains("running"), "{listing}");
    let unknown = client
        .call("job_output", json!({"id": "zzzz9999"}))
        .await
        .err();
    assert!(unknown.contains("no job zzzz9999"), "{unknown}");
    let bad = client.call("job_output", json!({"id": "../x"})).await.err();
    assert!(bad.contains("is not a job id"), "{bad}");

    // The session ends normally (the client closes its input): its jobs end with it,
    // before the server returns.
    client.close().await;
    tokio::time::timeout(Duration::from_secs(60), server)
        .await
        .expect("the server stops at end of input")
        .expect("server task")
        .expect("a clean stop");
    assert!(!alive(mine_pid), "job {mine} of the session outlived it");
    let listed = jobs.list().await.expect("list");
    let state = |id: &str| listed.iter().find(|j| j.id.as_str() == id).map(|j| j.state);
    assert_eq!(state(&mine), Some(JobState::Signaled { signal: 15 }));
    assert_eq!(
        state(outsider.id.as_str()),
        Some(JobState::Running),
        "a job the session did not start runs on"
    );
    forget_jobs(&jobs, &outsider.output_path).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_shutdown_signal_ends_the_sessions_jobs_too() {
    let (_home, ws, ctx) = local_ctx();
    let jobs = Jobs::from(&ctx);
    let shutdown = CancellationToken::new();
    let (client, server) = connect_until(ctx, shutdown.clone());
    client.initialize().await;
    let id = start_job(&client, "echo $$ > job.pid; exec sleep 300").await;
    let pid: u32 = wait_for_file(&ws.join("job.pid"))
        .await
        .trim()
        .parse()
        .expect("pid");
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(60), server)
        .await
        .expect("the server stops")
        .expect("server task")
        .expect("a clean stop");
    assert!(!alive(pid), "job {id} outlived the session");
    let id = cmux_core::jobs::JobId::parse(&id).expect("id");
    let read = jobs
        .read(&id, Duration::ZERO, ReadLimit::pages(0), None)
        .await
        .expect("the state of the job");
    assert_eq!(read.state, JobState::Signaled { signal: 15 });
    forget_jobs(&jobs, &read.output_path).await;
}
