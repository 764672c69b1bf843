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
