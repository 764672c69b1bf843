//! Background jobs on an SSH host outlive the connection that started them: the host
//! helper (and the shell path's wrapper) kill every process group of a dropped
//! connection, but a job's supervisor has its own session. After a reconnect, the
//! output the job wrote meanwhile is there.

use std::sync::Arc;
use std::time::Duration;

use cmux_backend_ssh::SshRuntime;
use cmux_core::jobs::{JobState, Jobs, ReadLimit};
use cmux_core::{ExecRequest, SharedRuntime};
use cmux_integration_tests::jobs::forget_jobs;
use cmux_integration_tests::sshd::TestSshd;

async fn survives_a_dropped_connection(sshd: &TestSshd, runtime: SshRuntime) {
    let runtime = Arc::new(runtime);
    let shared: SharedRuntime = runtime.clone();
    let root = sshd.scratch_path();
    let jobs = Jobs::new(shared, root.clone());
    let go = sshd.scratch().join("go");
    let started = jobs
        .start(
            ExecRequest::script(
                "echo before; n=0; until [ -e go ] || [ $n -ge 3000 ]; do sleep 0.05; n=$((n + 1)); done; echo after; exit 4",
            )
            .cwd(root),
        )
        .await
        .expect("start");
    let read = jobs
        .read(&started.id, Duration::from_secs(30), ReadLimit::AGENT, None)
        .await
        .expect("first read");
    assert_eq!(read.head, b"before\n");
    assert_eq!(read.state, JobState::Running);

    runtime.disconnect().await;
    // While cmux has no connection, the job goes on and writes (the sshd is this
    // machine: the test creates `go` directly).
    std::fs::write(&go, "").expect("go");
    let mut text = Vec::new();
    let mut state = JobState::Running;
    for _ in 0..20 {
        let read = jobs
            .read(&started.id, Duration::from_secs(10), ReadLimit::AGENT, None)
            .await
            .expect("a read after the reconnect");
        text.extend_from_slice(&read.head);
        state = read.state;
        if !state.is_running() {
            break;
        }
    }
    assert_eq!(
        String::from_utf8_lossy(&text),
        "after\n",
        "the output written while disconnected"
    );
    assert_eq!(state, JobState::Exited { code: 4 });
    forget_jobs(&jobs, &started.output_path).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_survives_a_dropped_connection_with_the_helper() {
    let sshd = TestSshd::start();
    survives_a_dropped_connection(&sshd, sshd.runtime()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_survives_a_dropped_connection_without_the_helper() {
    let sshd = TestSshd::start();
    survives_a_dropped_connection(&sshd, sshd.fallback_runtime()).await;
}
