//! The user's ssh configuration is honoured as OpenSSH does: aliases, Include,
//! ProxyCommand.

use cmux_core::{ExecRequest, RuntimeExt};
use cmux_integration_tests::sshd::TestSshd;

#[tokio::test]
async fn alias_include_and_proxy_command_resolve() {
    let sshd = TestSshd::start();
    // A top-level config that only Includes the harness's file, as ~/.ssh/config often does.
    let top = sshd.dir().join("top_config");
    std::fs::write(&top, format!("Include {}\n", sshd.config_path().display())).expect("write");
    for alias in [sshd.alias().to_owned(), sshd.inetd_alias()] {
        let rt =
            cmux_backend_ssh::SshRuntime::new(alias.clone(), sshd.ssh_options().config_file(&top))
                .expect("runtime");
        let out = rt
            .output(ExecRequest::script("echo $USER"), 1024)
            .await
            .unwrap_or_else(|e| panic!("{alias}: {e}"));
        assert_eq!(out.stdout_lossy().trim(), sshd.user(), "{alias}");
    }
}

#[tokio::test]
async fn doctor_reports_resolution_and_host_tools() {
    let sshd = TestSshd::start();
    let report = cmux_backend_ssh::doctor::doctor(sshd.alias(), &sshd.ssh_options()).await;
    assert!(report.ok(), "{report:#?}");
    let resolved = report.resolved.as_ref().expect("ssh -G");
    assert_eq!(resolved.hostname, "127.0.0.1");
    assert_eq!(resolved.port, sshd.port().to_string());
    let names: Vec<&str> = report.checks.iter().map(|c| c.name).collect();
    assert_eq!(names, ["config", "connection", "bash", "git", "sftp"]);

    sshd.revoke_client_key();
    let other = cmux_backend_ssh::SshOptions::default()
        .config_file(sshd.config_path())
        .control_dir(sshd.dir().join("ctl2"));
    let report = cmux_backend_ssh::doctor::doctor(sshd.alias(), &other).await;
    let conn = report
        .checks
        .iter()
        .find(|c| c.name == "connection")
        .expect("check");
    assert!(!conn.ok && conn.fix.is_some(), "{report:#?}");
}

#[tokio::test]
async fn proxy_jump_works_with_the_forced_safety_options() {
    let sshd = TestSshd::start();
    let d = sshd.dir();
    let top = d.join("jump_config");
    std::fs::write(
        &top,
        format!(
            // Include first: after a Host line it would only apply inside that block.
            "Include {inc}\nHost jumped\n  HostName 127.0.0.1\n  Port {port}\n  User {user}\n  \
             IdentityFile {key}\n  IdentitiesOnly yes\n  HostKeyAlias {alias_key}\n  \
             UserKnownHostsFile {kh}\n  GlobalKnownHostsFile /dev/null\n  ProxyJump {jump}\n",
            port = sshd.port(),
            user = sshd.user(),
            key = sshd.client_key_path().display(),
            alias_key = cmux_integration_tests::sshd::HOST_KEY_ALIAS,
            kh = sshd.known_hosts_path().display(),
            jump = sshd.alias(),
            inc = sshd.config_path().display(),
        ),
    )
    .expect("write");
    let rt = cmux_backend_ssh::SshRuntime::new("jumped", sshd.ssh_options().config_file(&top))
        .expect("runtime");
    let out = rt
        .output(ExecRequest::script("echo via-jump"), 1024)
        .await
        .unwrap_or_else(|e| panic!("through ProxyJump: {e}"));
    assert_eq!(out.stdout_lossy().trim(), "via-jump");
    let report =
        cmux_backend_ssh::doctor::doctor("jumped", &sshd.ssh_options().config_file(&top)).await;
    assert_eq!(
        report
            .resolved
            .as_ref()
            .and_then(|r| r.proxy_jump.as_deref()),
        Some(sshd.alias())
    );
}

/// Issue 12 §6: hosts written with a port (`host:port`, `ssh://user@host:port`) reach
/// that port (ssh's `-p`), with the rest of the configuration from the config file.
#[tokio::test]
async fn hosts_with_a_port_and_a_user_reach_that_port() {
    let sshd = TestSshd::start();
    let d = sshd.dir();
    // A config matching the bare address: keys and known_hosts, but no Port.
    let config = d.join("by_address");
    std::fs::write(
        &config,
        format!(
            "Host 127.0.0.1\n  IdentityFile {key}\n  IdentitiesOnly yes\n  HostKeyAlias {alias}\n  \
             UserKnownHostsFile {known}\n  GlobalKnownHostsFile /dev/null\n",
            key = sshd.client_key_path().display(),
            alias = cmux_integration_tests::sshd::HOST_KEY_ALIAS,
            known = sshd.known_hosts_path().display(),
        ),
    )
    .expect("config");
    let port = sshd.port();
    for host in [
        format!("127.0.0.1:{port}"),
        format!("{}@127.0.0.1:{port}", sshd.user()),
        format!("ssh://{}@127.0.0.1:{port}", sshd.user()),
    ] {
        let rt = cmux_backend_ssh::SshRuntime::new(
            host.clone(),
            sshd.ssh_options().config_file(&config),
        )
        .expect("runtime");
        let out = rt
            .output(ExecRequest::script("echo $USER"), 1024)
            .await
            .unwrap_or_else(|e| panic!("{host}: {e}"));
        assert_eq!(out.stdout_lossy().trim(), sshd.user(), "{host}");
        let report =
            cmux_backend_ssh::doctor::doctor(&host, &sshd.ssh_options().config_file(&config)).await;
        let resolved = report.resolved.as_ref().expect("ssh -G");
        assert_eq!(resolved.port, port.to_string(), "{host}: {report:#?}");
        rt.disconnect().await;
    }
}
