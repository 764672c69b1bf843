//! Mixed operations at once, for the concurrency tests of every transport.

use std::sync::Arc;

use cmux_core::{ExecRequest, RemotePath, Runtime, RuntimeExt};

/// Runs `count` operations at once on `rt` (exec, write + read back, stat, list, in
/// turn, under `scratch`) and returns the errors of those that failed.
pub async fn mixed_operations_at_once(
    rt: Arc<dyn Runtime>,
    scratch: &RemotePath,
    count: usize,
) -> Vec<String> {
    let mut tasks = Vec::new();
    for i in 0..count {
        let rt = rt.clone();
        let scratch = scratch.clone();
        tasks.push(tokio::spawn(async move {
            let path: RemotePath = scratch.join(&format!("f{i}"))?;
            match i % 4 {
                0 => {
                    let out = rt
                        .output(ExecRequest::argv(["echo", &i.to_string()]), 64)
                        .await?;
                    assert_eq!(out.stdout_lossy().trim(), i.to_string());
                }
                1 => {
                    rt.write_file(&path, i.to_string().as_bytes()).await?;
                    assert_eq!(rt.read_file(&path).await?, i.to_string().into_bytes());
                }
                2 => {
                    rt.stat(&scratch).await?;
                }
                _ => {
                    rt.read_dir(&scratch).await?;
                }
            }
            Ok::<_, cmux_core::Error>(())
        }));
    }
    let mut failures = Vec::new();
    for t in tasks {
        match t.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failures.push(e.to_string()),
            Err(e) => failures.push(format!("task failed: {e}")),
        }
    }
    failures
}

/// [`mixed_operations_at_once`], failing the test (with the first errors) unless
/// every operation succeeded.
pub async fn assert_mixed_operations_succeed(
    rt: Arc<dyn Runtime>,
    scratch: &RemotePath,
    count: usize,
) {
    let failures = mixed_operations_at_once(rt, scratch, count).await;
    assert!(
        failures.is_empty(),
        "{} of {count} failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
}
