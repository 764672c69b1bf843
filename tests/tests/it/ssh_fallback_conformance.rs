//! The conformance suite on `SshRuntime` without the host helper (`HelperMode::Off`:
//! the shell/SFTP path other systems and noexec homes get), against a real sshd (one
//! per case).

use std::sync::Arc;

use cmux_core::testkit::{self, Harness};
use cmux_integration_tests::sshd::TestSshd;

async fn harness() -> Harness {
    let sshd = TestSshd::start();
    let runtime = sshd.fallback_runtime();
    let scratch = sshd.scratch_path();
    Harness::new(Arc::new(runtime), scratch).keep_alive(sshd)
}

/// The whole suite: the shell/SFTP path keeps the same contract as the helper.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_suite_on_ssh_without_the_helper() {
    let report = testkit::conformance(harness).await;
    assert_eq!(report.results.len(), testkit::cases().len());
    report.assert_passed();
}
