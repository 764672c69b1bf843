//! Messages that used to mislead (issue 11 #13, #15, #16): a shell rc printing on
//! stdout breaks SFTP and is named as such (doctor does not then blame git); a stream
//! cut by a dying host is a connection error; a host that came back is used at once.

use std::time::Duration;

use cmux_core::{Error, ExecRequest, RemotePath, Runtime, RuntimeExt};
use cmux_integration_tests::sshd::{SshdOptions, TestSshd};
use tokio::io::AsyncReadExt;

/// Issue 11 #13: "hello message of length 1464159299" becomes what the shell printed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shell_printing_on_stdout_is_named_for_sftp_and_doctor() {
    let sshd = TestSshd::start_with(SshdOptions {
        private_home: true,
        ..Default::default()
    });
    std::fs::write(sshd.home().join(".bashrc"), "echo 'WELCOME to the host'\n").expect("rc");
    // The host helper skips what a shell prints before it starts (a random token
    // marks its first byte): the same host just works.
    let helper = sshd.runtime();
    let text = helper
        .read_file(&RemotePath::new("/etc/hostname").expect("path"))
        .await
        .expect("the helper reads despite the rc's output");
    assert!(!text.is_empty());
    helper.disconnect().await;
    // The shell/SFTP path cannot: the message names the cause.
    let rt = sshd.fallback_runtime();
    let err = rt
        .read_file(&RemotePath::new("/etc/hostname").expect("path"))
        .await
        .expect_err("SFTP cannot start");
    let text = err.to_string();
    assert!(
        text.contains("your shell printed \\\"WELC…\\\" on startup")
            || text.contains("your shell printed \"WELC…\" on startup"),
        "{text}"
    );
    assert!(text.contains("silent non-interactive shell"), "{text}");

    let options = sshd.ssh_options().helper(cmux_backend_ssh::HelperMode::Off);
    let report = cmux_backend_ssh::doctor::doctor(sshd.alias(), &options).await;
    let check = |name: &str| {
        report
            .checks
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("no {name} check: {report:#?}"))
            .clone()
    };
    assert!(check("git").ok, "git is installed: {report:#?}");
    let sftp = check("sftp");
    assert!(
        !sftp.ok && sftp.detail.contains("your shell printed"),
        "{sftp:?}"
    );
}

/// Issue 11 #15: the host dies while a file streams: the read fails with a
/// connection error (the CLI's exit 255), not "Background task failed".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_cut_by_the_host_dying_is_a_connection_error() {
    stream_cut_by_the_host_dying(false).await;
}

/// The same on the shell/SFTP path.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_cut_by_the_host_dying_is_a_connection_error_on_the_shell_path() {
    stream_cut_by_the_host_dying(true).await;
}

async fn stream_cut_by_the_host_dying(fallback: bool) {
    let mut sshd = TestSshd::start();
    let big = sshd.scratch().join("big");
    std::fs::write(&big, vec![b'x'; 64 << 20]).expect("big file");
    let rt = if fallback {
        sshd.fallback_runtime()
    } else {
        sshd.runtime()
    };
    let mut stream = rt
        .open_read(&RemotePath::new(big.to_string_lossy().into_owned()).expect("path"))
        .await
        .expect("opens");
    let mut first = vec![0u8; 64 << 10];
    stream.read_exact(&mut first).await.expect("first bytes");
    sshd.stop();
    let mut rest = Vec::new();
    let err = stream
        .read_to_end(&mut rest)
        .await
        .expect_err("the stream must break");
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&err);
    let mut found = None;
    while let Some(e) = source {
        if let Some(core) = e.downcast_ref::<Error>() {
            found = Some(core);
            break;
        }
        source = e.source();
    }
    let core = found.unwrap_or_else(|| panic!("no cmux error in the chain of {err:?}"));
    assert!(core.is_connection(), "{core}");
    assert_eq!(core.exit_code(), 255);
    assert!(!err.to_string().contains("Background task"), "{err}");
}

/// Issue 11 #16: after the host comes back, the next operation (and doctor) use it at
/// once instead of repeating the old "Connection refused" for the rest of the budget.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_that_came_back_is_used_at_once() {
    let mut sshd = TestSshd::start();
    let rt = sshd.runtime();
    rt.output(ExecRequest::script("true"), 1024)
        .await
        .expect("first command");
    sshd.stop();
    let err = rt
        .output(
            ExecRequest::script("true").timeout(Duration::from_secs(60)),
            1024,
        )
        .await
        .expect_err("the host is down");
    assert!(err.is_connection(), "{err}");
    sshd.restart();
    let out = rt
        .output(ExecRequest::script("echo back"), 1024)
        .await
        .expect("the host is back: used at once, not after the budget's wait");
    assert_eq!(out.stdout_lossy(), "back\n");

    // Doctor tries for real even while another process's recorded wait runs.
    sshd.stop();
    let _ = rt
        .output(
            ExecRequest::script("true").timeout(Duration::from_secs(60)),
            1024,
        )
        .await
        .expect_err("down again");
    sshd.restart();
    let report = cmux_backend_ssh::doctor::doctor(sshd.alias(), &sshd.ssh_options()).await;
    assert!(report.ok(), "{report:#?}");
}

/// Issue 12 §7: a connection attempt that takes over 2 s is reported while it runs
/// (the host here is reached through a ProxyCommand that sleeps 3 s first).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_connection_attempt_is_reported() {
    let sshd = TestSshd::start();
    let d = sshd.dir();
    let config = d.join("slow_config");
    std::fs::write(
        &config,
        format!(
            "Host slow-host\n  ProxyCommand sh -c 'sleep 3; exec {sshd_bin} -i -f {d}/sshd_config'\n  \
             User {user}\n  IdentityFile {d}/client_key\n  IdentitiesOnly yes\n  HostKeyAlias {alias}\n  \
             UserKnownHostsFile {d}/known_hosts\n  GlobalKnownHostsFile /dev/null\n",
            sshd_bin = cmux_integration_tests::sshd::SSHD,
            d = d.display(),
            user = sshd.user(),
            alias = cmux_integration_tests::sshd::HOST_KEY_ALIAS,
        ),
    )
    .expect("config");
    let events = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = events.clone();
    let options = sshd
        .ssh_options()
        .config_file(&config)
        .on_connect(move |e| seen.lock().expect("lock").push(e));
    let rt = cmux_backend_ssh::SshRuntime::new("slow-host", options).expect("runtime");
    rt.ensure_ready().await.expect("connects, slowly");
    let events = events.lock().expect("lock").clone();
    assert!(
        matches!(
            events.as_slice(),
            [
                cmux_backend_ssh::ConnectEvent::Slow { .. },
                cmux_backend_ssh::ConnectEvent::Done {
                    connected: true,
                    ..
                }
            ]
        ),
        "{events:?}"
    );
    rt.disconnect().await;
}
