//! Helpers shared by the cases: short calls that panic with a precise message.

use std::time::Duration;

use crate::exec::{ExecRequest, ExitStatus, Output};
use crate::path::RemotePath;
use crate::quote::quote;
use crate::runtime::RuntimeExt;

use super::Harness;

/// Generous deadline for helper commands, so a broken backend fails instead of hanging.
pub(super) const HELPER_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs `req` (with the helper deadline unless it has one), keeping up to 64 MiB.
pub(super) async fn run(h: &Harness, req: ExecRequest) -> Output {
    let what = format!("{:?}", req.command);
    let req = if req.timeout.is_none() {
        req.timeout(HELPER_TIMEOUT)
    } else {
        req
    };
    h.runtime
        .output(req, 64 << 20)
        .await
        .unwrap_or_else(|e| panic!("exec of {what} failed: {e}"))
}

/// Runs a script that must succeed; returns its stdout.
pub(super) async fn sh(h: &Harness, script: &str) -> String {
    let out = run(h, ExecRequest::script(script)).await;
    assert_eq!(
        out.status,
        ExitStatus::Exited(0),
        "helper script {script:?} failed; stderr: {}",
        out.stderr_lossy()
    );
    out.stdout_lossy()
}

/// `path` quoted for a script.
pub(super) fn q(path: &RemotePath) -> String {
    quote(path.as_str())
}

/// Writes a file, panicking with the path on failure.
pub(super) async fn write(h: &Harness, path: &RemotePath, data: &[u8]) {
    h.runtime
        .write_file(path, data)
        .await
        .unwrap_or_else(|e| panic!("write_file {path:?} ({} bytes) failed: {e}", data.len()));
}

/// Reads a file, panicking with the path on failure.
pub(super) async fn read(h: &Harness, path: &RemotePath) -> Vec<u8> {
    h.runtime
        .read_file(path)
        .await
        .unwrap_or_else(|e| panic!("read_file {path:?} failed: {e}"))
}

/// Deterministic pseudo-random bytes (xorshift), so failures reproduce.
pub(super) fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Where two byte strings first differ, for messages about big buffers.
pub(super) fn diff(a: &[u8], b: &[u8]) -> String {
    if a == b {
        return "equal".into();
    }
    let at = a.iter().zip(b).position(|(x, y)| x != y);
    match at {
        Some(i) => format!(
            "lengths {} and {}, first difference at byte {i} ({} vs {})",
            a.len(),
            b.len(),
            a[i],
            b[i]
        ),
        None => format!("lengths {} and {} (one is a prefix)", a.len(), b.len()),
    }
}

/// True when the runtime's user is root (who bypasses permission bits).
pub(super) async fn is_root(h: &Harness) -> bool {
    sh(h, "id -u").await.trim() == "0"
}

/// Polls until the process whose PID is in `pid_file` is gone (or a zombie, which is
/// dead but not yet reaped by its new parent), for up to `within`.
pub(super) async fn wait_gone(h: &Harness, pid_file: &RemotePath, within: Duration) {
    let script = format!(
        "pid=$(cat {f}) || exit 2\n[ -n \"$pid\" ] || exit 2\n\
         if kill -0 \"$pid\" 2>/dev/null; then\n\
           if grep -q '^State:[[:space:]]*Z' /proc/\"$pid\"/status 2>/dev/null; then exit 0; fi\n\
           exit 1\n\
         fi\nexit 0\n",
        f = q(pid_file)
    );
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let out = run(h, ExecRequest::script(script.clone())).await;
        match out.status {
            ExitStatus::Exited(0) => return,
            ExitStatus::Exited(2) => panic!(
                "the command did not write its background PID to {pid_file:?} before it was \
                 stopped"
            ),
            _ if tokio::time::Instant::now() >= deadline => {
                let pid = String::from_utf8_lossy(&read(h, pid_file).await).into_owned();
                panic!(
                    "background process {} started by the command is still alive {} s after \
                     the command was stopped: the whole process group must be killed",
                    pid.trim(),
                    within.as_secs()
                )
            }
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}
