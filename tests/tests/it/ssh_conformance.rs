//! The whole conformance suite on `SshRuntime`, against a real sshd (one per case).

use std::sync::Arc;

use cmux_core::testkit::{self, Harness};
use cmux_integration_tests::sshd::TestSshd;

async fn harness() -> Harness {
    let sshd = TestSshd::start();
    let runtime = sshd.runtime();
    let scratch = sshd.scratch_path();
    Harness::new(Arc::new(runtime), scratch).keep_alive(sshd)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_suite_on_ssh() {
    let report = testkit::conformance(harness).await;
    assert_eq!(report.results.len(), testkit::cases().len());
    report.assert_passed();
}
