//! Many separate processes against one host (as 100 `cmux exec` at once would be):
//! they share one ControlMaster through its socket, and refused channel opens (the
//! host's MaxSessions) are retried, so every operation succeeds.

use std::process::Stdio;
use std::time::Instant;

use cmux_core::{ExecRequest, RuntimeExt};
use cmux_integration_tests::sshd::TestSshd;

const PROCESSES: usize = 100;

/// Run by the parent test in child processes (ignored on its own).
#[tokio::test]
#[ignore = "child of many_processes_share_one_host"]
async fn child_process() {
    let Some(rt) = cmux_integration_tests::sshd::runtime_in_child() else {
        return;
    };
    let id = std::process::id();
    let out = rt
        .output(ExecRequest::script(format!("echo {id}")), 1024)
        .await
        .expect("exec from a separate process");
    assert_eq!(out.stdout_lossy().trim(), id.to_string());
    assert!(out.status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_processes_share_one_host() {
    let sshd = TestSshd::start();
    let ctl = sshd.dir().join("ctl");
    let exe = cmux_integration_tests::sshd::test_binary();
    let started = Instant::now();
    let mut children = Vec::new();
    for _ in 0..PROCESSES {
        let child = tokio::process::Command::new(&exe)
            .args([
                "ssh_multiprocess::child_process",
                "--exact",
                "--ignored",
                "--test-threads=1",
            ])
            .envs(sshd.child_env())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn child");
        children.push(child);
    }
    let mut failures = Vec::new();
    for child in children {
        let out = child.wait_with_output().await.expect("child output");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() || !text.contains("1 passed") {
            failures.push(text);
        }
    }
    eprintln!(
        "{PROCESSES} processes done in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    assert!(
        failures.is_empty(),
        "{} of {PROCESSES} processes failed; first: {}",
        failures.len(),
        failures.first().map(String::as_str).unwrap_or("")
    );
    // They shared slot 0's master instead of each starting one.
    let masters = std::fs::read_dir(&ctl)
        .expect("ctl dir")
        .flatten()
        .filter(|e| e.path().extension().is_none())
        .count();
    assert!(masters <= 4, "{masters} control sockets");
}
