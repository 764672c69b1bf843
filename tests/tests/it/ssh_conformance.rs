//! The whole conformance suite on `SshRuntime`, against a real sshd (one per case).

use std::sync::Arc;

use cmux_core::testkit::{self, Harness};
use cmux_integration_tests::sshd::TestSshd;

async fn harness() -> Harness {
    let sshd = TestSshd::start();
    let runtime = sshd.runtime();
    // The suite must prove the helper: a silent fallback would test the other path.
    match runtime.mode().await {
        Ok(cmux_backend_ssh::ConnectionMode::Helper { .. }) => {}
        other => panic!("expected helper mode on the test sshd, got {other:?}"),
    }
    let scratch = sshd.scratch_path();
    Harness::new(Arc::new(runtime), scratch).keep_alive(sshd)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_suite_on_ssh() {
    let report = testkit::conformance(harness).await;
    assert_eq!(report.results.len(), testkit::cases().len());
    report.assert_passed();
}
