//! Timeouts and cancellation kill the whole process group on the host.

use std::time::{Duration, Instant};

use cmux_core::{ExecRequest, ExitStatus, Runtime, RuntimeExt};
use cmux_integration_tests::sshd::TestSshd;
use tokio_util::sync::CancellationToken;

fn alive(pid: i32) -> bool {
    // The "host" is this machine: /proc shows the remote processes (zombies count as gone).
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, r)| r.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

async fn wait_gone(pid: i32) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if !alive(pid) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

fn read_pid(path: &std::path::Path) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(pid) = std::fs::read_to_string(path)
            .ok()
            .and_then(|s| s.trim().parse().ok())
        {
            return pid;
        }
        assert!(Instant::now() < deadline, "pid file never written");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test]
async fn timeout_kills_background_children_on_the_host() {
    let sshd = TestSshd::start();
    let rt = sshd.runtime();
    let pidfile = sshd.scratch().join("bg.pid");
    let script = format!("sleep 300 & echo $! > {}; sleep 300", pidfile.display());
    let out = rt
        .output(
            ExecRequest::script(script).timeout(Duration::from_secs(1)),
            1 << 20,
        )
        .await
        .expect("runs");
    assert_eq!(out.status, ExitStatus::TimedOut);
    let bg = read_pid(&pidfile);
    assert!(
        wait_gone(bg).await,
        "background sleep {bg} survived the timeout"
    );
    // The runtime is still usable afterwards.
    let out = rt
        .output(ExecRequest::script("echo ok"), 1024)
        .await
        .expect("runs");
    assert_eq!(out.stdout, b"ok\n");
}

#[tokio::test]
async fn cancel_kills_the_group() {
    let sshd = TestSshd::start();
    let rt = sshd.runtime();
    let pidfile = sshd.scratch().join("bg.pid");
    let token = CancellationToken::new();
    let mut p = rt
        .exec(
            ExecRequest::script(format!("sleep 300 & echo $! > {}; wait", pidfile.display()))
                .cancel_token(token.clone()),
        )
        .await
        .expect("starts");
    let bg = read_pid(&pidfile);
    token.cancel();
    assert_eq!(p.wait().await.expect("waits"), ExitStatus::Cancelled);
    assert!(
        wait_gone(bg).await,
        "background sleep {bg} survived the cancel"
    );
}

/// Issue 11 #9: a command's timeout covers the wait for a free channel: with every
/// channel taken by a long command, a command with a 2 s timeout reports `TimedOut`
/// (and did not start) instead of waiting for a channel and then running.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_timeout_covers_the_wait_for_a_channel() {
    let sshd = TestSshd::start();
    // Channels are the shell/SFTP path's limit (the helper needs one per connection).
    let mut options = sshd.ssh_options().helper(cmux_backend_ssh::HelperMode::Off);
    options.channels_per_connection = 1;
    options.max_connections = 1;
    let rt = cmux_backend_ssh::SshRuntime::new(sshd.alias(), options).expect("runtime");
    let mut busy = rt
        .exec(ExecRequest::script("sleep 60").timeout(Duration::from_secs(120)))
        .await
        .expect("the long command starts");
    let marker = sshd.scratch().join("ran");
    let out = rt
        .output(
            ExecRequest::script(format!(
                "touch {}",
                cmux_core::quote::quote(&marker.to_string_lossy())
            ))
            .timeout(Duration::from_secs(2)),
            1 << 16,
        )
        .await
        .expect("a status, not an error");
    assert_eq!(out.status, ExitStatus::TimedOut);
    assert!(
        out.stderr_lossy().contains("did not start"),
        "{}",
        out.stderr_lossy()
    );
    busy.kill().await.expect("kill");
    let _ = busy.wait().await;
    assert!(!marker.exists(), "the timed-out command must never run");
}
