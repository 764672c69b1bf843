//! The sshd harness itself: a plain `ssh -F` reaches it, by port and through `sshd -i`.

use cmux_integration_tests::sshd::TestSshd;

fn ssh_ok(sshd: &TestSshd, alias: &str) -> String {
    let out = sshd
        .ssh_command()
        .args(["-o", "BatchMode=yes", alias, "echo", "hi-from-$USER"])
        .output()
        .expect("ssh runs");
    assert!(
        out.status.success(),
        "ssh failed: {}\nsshd log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        sshd.log()
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn plain_ssh_reaches_the_test_server_by_port_and_inetd() {
    let mut sshd = TestSshd::start();
    assert_eq!(
        ssh_ok(&sshd, sshd.alias()),
        format!("hi-from-{}", sshd.user())
    );
    assert_eq!(
        ssh_ok(&sshd, &sshd.inetd_alias()),
        format!("hi-from-{}", sshd.user())
    );
    let port = sshd.port();
    sshd.restart();
    assert_eq!(sshd.port(), port);
    ssh_ok(&sshd, sshd.alias());
}
