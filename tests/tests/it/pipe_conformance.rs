//! The conformance suite on `PipeRuntime`: a local `cmux-host` behind a pipe.

use std::sync::Arc;

use cmux_backend_pipe::{PipeOptions, PipeRuntime};
use cmux_core::testkit::{self, Harness};
use cmux_core::RemotePath;
use cmux_integration_tests::helper::helper_path;

async fn harness() -> Harness {
    let dir = tempfile::tempdir().expect("temp dir");
    let scratch = RemotePath::new(dir.path().to_str().expect("utf-8 temp dir")).expect("path");
    let command = format!("exec {}", helper_path().display());
    let runtime = PipeRuntime::new(command, PipeOptions::default()).expect("pipe runtime");
    Harness::new(Arc::new(runtime), scratch).keep_alive(dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_suite_on_a_local_pipe() {
    let report = testkit::conformance(harness).await;
    assert_eq!(report.results.len(), testkit::cases().len());
    report.assert_passed();
}
