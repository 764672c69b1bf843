//! The whole conformance suite on a Coder workspace (fake `coder` CLI, ProxyCommand
//! `coder ssh --stdio` relaying to a real sshd): one Coder runtime shared by every
//! case, each case in its own scratch directory, as many cmux workspaces share one
//! Coder workspace.

use std::sync::Arc;

use cmux_backend_coder::CoderRuntime;
use cmux_backend_ssh::Transport;
use cmux_core::testkit::{self, Harness};
use cmux_core::{RemotePath, Runtime, SharedRuntime};
use cmux_integration_tests::coder::FakeCoder;
use cmux_integration_tests::sshd::TestSshd;

#[tokio::test(flavor = "multi_thread")]
async fn conformance_on_a_coder_workspace() {
    conformance_over(Transport::OpenSsh).await;
}

/// The same over the russh transport: `coder ssh --stdio` as its ProxyCommand.
#[tokio::test(flavor = "multi_thread")]
async fn conformance_on_a_coder_workspace_over_russh() {
    conformance_over(Transport::Russh).await;
}

async fn conformance_over(transport: Transport) {
    let sshd = TestSshd::start();
    let fake = FakeCoder::new(env!("CARGO_BIN_EXE_fake-coder"), &sshd, "dev");
    fake.config_ssh(&sshd, &[]);
    let (mut opts, _) = fake.options();
    opts.ssh = opts.ssh.transport(transport);
    let rt = CoderRuntime::new("dev", opts).expect("runtime");
    rt.ensure_ready().await.expect("workspace started");
    let rt: SharedRuntime = Arc::new(rt);
    let base = sshd.scratch();
    let report = testkit::conformance(|| {
        let rt = rt.clone();
        let base = base.clone();
        async move {
            let dir = tempfile::tempdir_in(&base).expect("scratch dir");
            let scratch =
                RemotePath::new(dir.path().to_str().expect("utf-8 scratch")).expect("path");
            Harness::new(rt, scratch).keep_alive(dir)
        }
    })
    .await;
    assert_eq!(rt.kind(), "coder");
    report.assert_passed();
    assert_eq!(fake.start_count("dev"), 1, "one start for the whole suite");
}
