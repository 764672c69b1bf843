//! The conformance suite on `PipeRuntime`: a local `cmux-host` behind a pipe.

use std::sync::Arc;

use cmux_backend_pipe::{PipeOptions, PipeRuntime};
use cmux_core::testkit::{self, Harness};
use cmux_core::RemotePath;
use cmux_integration_tests::helper::{helper_command, helper_path};

async fn harness() -> Harness {
    let dir = tempfile::tempdir().expect("temp dir");
    let scratch = RemotePath::new(dir.path().to_str().expect("utf-8 temp dir")).expect("path");
    let command = helper_command();
    let runtime = PipeRuntime::new(command, PipeOptions::default()).expect("pipe runtime");
    Harness::new(Arc::new(runtime), scratch).keep_alive(dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_suite_on_a_local_pipe() {
    let report = testkit::conformance(harness).await;
    assert_eq!(report.results.len(), testkit::cases().len());
    report.assert_passed();
}

/// The helper as another local user (`runuser -u cmux-test-pipe -- cmux-host`): every
/// operation runs with that user's identity and home, as `sudo -u sandbox cmux-host`
/// would.
async fn other_user_harness() -> Harness {
    use cmux_integration_tests::users::{ensure_user, ids, PIPE_USER};
    ensure_user(PIPE_USER);
    let (uid, gid) = ids(PIPE_USER);
    let dir = tempfile::tempdir().expect("temp dir");
    std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).expect("chown scratch");
    let scratch = RemotePath::new(dir.path().to_str().expect("utf-8 temp dir")).expect("path");
    let command = format!("exec runuser -u {PIPE_USER} -- {}", helper_path().display());
    let runtime = PipeRuntime::new(command, PipeOptions::default()).expect("pipe runtime");
    Harness::new(Arc::new(runtime), scratch).keep_alive(dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_suite_through_a_pipe_into_another_user() {
    if !cmux_integration_tests::users::is_root() {
        eprintln!("skipped: becoming another user needs root");
        return;
    }
    let report = testkit::conformance(other_user_harness).await;
    assert_eq!(report.results.len(), testkit::cases().len());
    report.assert_passed();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_through_the_pipe_run_as_the_other_user() {
    if !cmux_integration_tests::users::is_root() {
        eprintln!("skipped: becoming another user needs root");
        return;
    }
    use cmux_core::{ExecRequest, RuntimeExt};
    let h = other_user_harness().await;
    let out = h
        .runtime
        .output(ExecRequest::script("id -un; echo $HOME"), 1024)
        .await
        .expect("exec");
    let text = out.stdout_lossy();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some(cmux_integration_tests::users::PIPE_USER));
    assert_eq!(
        lines.next(),
        Some(format!("/home/{}", cmux_integration_tests::users::PIPE_USER).as_str())
    );
}
