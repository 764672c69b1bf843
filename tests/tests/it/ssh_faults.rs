//! Failures of the host and of the local master: clear errors, then recovery.

use std::time::{Duration, Instant};

use cmux_core::{Error, ExecRequest, Runtime, RuntimeExt};
use cmux_integration_tests::sshd::TestSshd;

#[tokio::test]
async fn sshd_killed_mid_operation_then_recovery() {
    let mut sshd = TestSshd::start();
    let rt = sshd.runtime();
    let file = sshd.scratch_path().join("f").expect("join");
    rt.write_file(&file, b"x").await.expect("write");
    let mut p = rt
        .exec(ExecRequest::script("sleep 60"))
        .await
        .expect("starts");
    sshd.stop();
    let err = tokio::time::timeout(Duration::from_secs(30), p.wait())
        .await
        .expect("wait returns once the connection is gone")
        .expect_err("a lost connection is an error, not an exit status");
    assert!(err.is_connection(), "{err:?}");
    assert!(err.to_string().contains(sshd.alias()), "{err}");

    let err = rt.read_file(&file).await.expect_err("host is down");
    assert!(matches!(err, Error::Connection { .. }), "{err:?}");
    let err = rt
        .output(ExecRequest::script("true"), 1024)
        .await
        .expect_err("down");
    assert!(err.is_connection(), "{err:?}");

    sshd.restart();
    // The shared backoff allows an attempt within ~10 s.
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        match rt.read_file(&file).await {
            Ok(data) => {
                assert_eq!(data, b"x");
                break;
            }
            Err(e) if e.is_connection() && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => panic!("no recovery after restart: {e}"),
        }
    }
    let out = rt
        .output(ExecRequest::script("echo back"), 1024)
        .await
        .expect("exec");
    assert_eq!(out.stdout, b"back\n");
}

fn master_pid(sshd: &TestSshd, rt: &cmux_backend_ssh::SshRuntime) -> u32 {
    let out = sshd
        .ssh_command()
        .arg("-S")
        .arg(rt.control_path())
        .args(["-O", "check", sshd.alias()])
        .output()
        .expect("ssh -O check");
    let text = String::from_utf8_lossy(&out.stderr).into_owned();
    text.split("pid=")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no master pid in {text:?}"))
}

#[tokio::test]
async fn killed_master_is_replaced_transparently() {
    let sshd = TestSshd::start();
    let rt = sshd.runtime();
    let file = sshd.scratch_path().join("f").expect("join");
    rt.write_file(&file, b"x").await.expect("write");
    for round in 0..2 {
        let pid = master_pid(&sshd, &rt);
        let _ = std::process::Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
        std::thread::sleep(Duration::from_millis(100));
        let out = rt
            .output(ExecRequest::script("echo again"), 1024)
            .await
            .unwrap_or_else(|e| panic!("round {round}: exec after the master died: {e}"));
        assert_eq!(out.stdout, b"again\n");
        assert_eq!(
            rt.read_file(&file).await.expect("read after reconnect"),
            b"x"
        );
        assert_ne!(master_pid(&sshd, &rt), pid, "a new master");
    }
    // A stale socket file from a dead master does not block a new process either.
    let pid = master_pid(&sshd, &rt);
    let _ = std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status();
    let fresh = cmux_backend_ssh::SshRuntime::new(
        sshd.alias(),
        sshd.ssh_options().accept_new_host_key(true),
    )
    .expect("runtime");
    fresh
        .ensure_ready()
        .await
        .expect("replaces the stale master");
}

#[tokio::test]
async fn disconnect_closes_the_master_and_the_next_operation_reconnects() {
    let sshd = TestSshd::start();
    let rt = sshd.runtime();
    rt.ensure_ready().await.expect("ready");
    let pid = master_pid(&sshd, &rt);
    rt.disconnect().await;
    let check = sshd
        .ssh_command()
        .arg("-S")
        .arg(rt.control_path())
        .args(["-O", "check", sshd.alias()])
        .output()
        .expect("ssh -O check");
    assert!(!check.status.success(), "the master exited");
    let out = rt
        .output(ExecRequest::script("echo hi"), 1024)
        .await
        .expect("reconnects");
    assert_eq!(out.stdout, b"hi\n");
    assert_ne!(master_pid(&sshd, &rt), pid);
}
