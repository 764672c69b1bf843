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

/// The background-job cases: jobs are built on `exec` alone, so the fallback's
/// wrapper (which kills the command's group when the call ends) must let them live.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_cases_on_ssh_without_the_helper() {
    let report = testkit::conformance_of(|case| case.name.starts_with("job_"), harness).await;
    assert!(report.results.len() >= 10, "the job cases: {report}");
    report.assert_passed();
}

/// The whole suite. Ignored: on this path, cases outside the jobs fail for reasons
/// of the fallback itself (write_refuses_unwritable: the SFTP write replaces a
/// read-only file; and a login shell's rc file that prints on stderr, such as
/// pyenv's "cannot rehash" under parallel load, lands in commands' stderr). Run it
/// with `--ignored` once those are fixed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "fallback gaps outside the jobs: see the doc comment"]
async fn whole_suite_on_ssh_without_the_helper() {
    let report = testkit::conformance(harness).await;
    assert_eq!(report.results.len(), testkit::cases().len());
    report.assert_passed();
}
