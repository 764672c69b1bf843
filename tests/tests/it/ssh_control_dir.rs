//! The control directory (issue 11 #12): a file planted in it as a symlink (while it
//! had loose permissions) is never followed: cmux does not truncate the victim.

use cmux_core::Runtime;
use cmux_integration_tests::sshd::TestSshd;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_planted_log_symlink_is_not_followed() {
    let sshd = TestSshd::start();
    let rt = sshd.runtime();
    let victim = sshd.dir().join("victim");
    std::fs::write(&victim, "precious").expect("victim");
    let log = rt.control_path().with_extension("log");
    std::os::unix::fs::symlink(&victim, &log).expect("planted link");
    let err = rt
        .ensure_ready()
        .await
        .expect_err("the log cannot be opened");
    assert!(err.to_string().contains("ssh log"), "{err}");
    assert_eq!(
        std::fs::read(&victim).expect("read"),
        b"precious",
        "the victim was truncated through the planted link"
    );
}
