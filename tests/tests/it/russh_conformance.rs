//! The whole conformance suite over the russh transport, against a real sshd (one per
//! case), through the host helper.

use std::sync::Arc;

use cmux_core::testkit::{self, Harness};
use cmux_integration_tests::sshd::TestSshd;

async fn harness() -> Harness {
    let sshd = TestSshd::start();
    let runtime = sshd.russh_runtime();
    assert_eq!(runtime.transport(), cmux_backend_ssh::Transport::Russh);
    match runtime.mode().await {
        Ok(cmux_backend_ssh::ConnectionMode::Helper { .. }) => {}
        other => panic!("expected helper mode over russh, got {other:?}"),
    }
    let scratch = sshd.scratch_path();
    Harness::new(Arc::new(runtime), scratch).keep_alive(sshd)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_suite_over_russh() {
    let report = testkit::conformance(harness).await;
    assert_eq!(report.results.len(), testkit::cases().len());
    report.assert_passed();
}
