//! Many agents at once: 200 concurrent operations against an sshd with the default
//! MaxSessions (10) all succeed from one process.

use std::sync::Arc;

use cmux_core::{ExecRequest, Runtime, RuntimeExt};
use cmux_integration_tests::sshd::TestSshd;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_operations_succeed() {
    let sshd = TestSshd::start();
    let rt = Arc::new(sshd.runtime());
    let file = sshd.scratch_path().join("data.txt").expect("join");
    rt.write_file(&file, b"payload").await.expect("write");
    let mut tasks = Vec::new();
    for i in 0..200 {
        let rt = rt.clone();
        let file = file.clone();
        tasks.push(tokio::spawn(async move {
            if i % 2 == 0 {
                let out = rt
                    .output(ExecRequest::script(format!("echo {i}")), 1024)
                    .await
                    .map_err(|e| format!("exec {i}: {e}"))?;
                if out.stdout != format!("{i}\n").into_bytes() || !out.status.success() {
                    return Err(format!("exec {i}: {out:?}"));
                }
            } else {
                let data = rt
                    .read_file(&file)
                    .await
                    .map_err(|e| format!("read {i}: {e}"))?;
                if data != b"payload" {
                    return Err(format!("read {i}: {data:?}"));
                }
            }
            Ok::<_, String>(())
        }));
    }
    let mut failures = Vec::new();
    for t in tasks {
        if let Err(e) = t.await.expect("task") {
            failures.push(e);
        }
    }
    assert!(
        failures.is_empty(),
        "{} failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    // A second runtime of the same host in this process shares the masters.
    let again = sshd.runtime();
    again.ensure_ready().await.expect("ready");
}
