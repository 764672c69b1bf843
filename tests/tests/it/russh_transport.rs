//! The russh transport (issue 13) against real test sshds: the host forms users write,
//! ProxyCommand and ProxyJump, agent keys, the host-key policy, a host dying mid
//! operation, load, and that no ssh process is involved.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use cmux_backend_ssh::{ConfigSource, ConnectionMode, SshOptions, SshRuntime, Transport};
use cmux_core::{Error, ExecRequest, Runtime, RuntimeExt};
use cmux_integration_tests::agent::TestAgent;
use cmux_integration_tests::load::assert_mixed_operations_succeed;
use cmux_integration_tests::sshd::{SshdOptions, TestSshd, HOST_KEY_ALIAS};

const SOURCES: [ConfigSource; 2] = [ConfigSource::SshG, ConfigSource::Builtin];

fn runtime(host: &str, options: SshOptions) -> SshRuntime {
    SshRuntime::new(host, options).expect("runtime")
}

/// `echo hi` on `rt`, through the helper over russh.
async fn echo(rt: &SshRuntime) -> Result<String, Error> {
    let out = rt.output(ExecRequest::argv(["echo", "hi"]), 64).await?;
    Ok(out.stdout_lossy().trim().to_owned())
}

async fn assert_works(rt: &SshRuntime) {
    assert_eq!(rt.transport(), Transport::Russh);
    assert_eq!(echo(rt).await.expect("echo over russh"), "hi");
    match rt.mode().await.expect("mode") {
        ConnectionMode::Helper { .. } => {}
        other => panic!("expected the helper over russh, got {other:?}"),
    }
}

/// A config file of this test: `text` plus the test sshd's own entries.
fn config_with(sshd: &TestSshd, dir: &Path, text: &str) -> PathBuf {
    let base = std::fs::read_to_string(sshd.config_path()).expect("sshd config");
    let path = dir.join("ssh_config");
    std::fs::write(&path, format!("{text}\n{base}")).expect("config");
    path
}

fn user() -> String {
    cmux_core::local_user::user_name().expect("user name")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alias_works_with_ssh_g_and_with_the_builtin_parser() {
    let sshd = TestSshd::start();
    for source in SOURCES {
        let rt = runtime(sshd.alias(), sshd.russh_options().config_source(source));
        assert_works(&rt).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_at_host_colon_port_works_with_known_hosts_in_brackets() {
    let sshd = TestSshd::start();
    let dir = tempfile::tempdir().expect("dir");
    let known = dir.path().join("known_hosts");
    let key = sshd.host_public_key();
    let mut words = key.split_whitespace();
    let (kind, blob) = (words.next().expect("kind"), words.next().expect("blob"));
    std::fs::write(
        &known,
        format!("[127.0.0.1]:{} {kind} {blob}\n", sshd.port()),
    )
    .expect("kh");
    let config = config_with(
        &sshd,
        dir.path(),
        &format!(
            "Host 127.0.0.1\n  IdentityFile {}\n  IdentitiesOnly yes\n  UserKnownHostsFile {}\n  GlobalKnownHostsFile /dev/null\n",
            sshd.client_key_path().display(),
            known.display()
        ),
    );
    for source in SOURCES {
        let options = sshd
            .russh_options()
            .config_file(&config)
            .config_source(source);
        let rt = runtime(&format!("{}@127.0.0.1:{}", user(), sshd.port()), options);
        assert_works(&rt).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_command_carries_the_connection() {
    let sshd = TestSshd::start();
    for source in SOURCES {
        let rt = runtime(
            &sshd.inetd_alias(),
            sshd.russh_options().config_source(source),
        );
        assert_works(&rt).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_jump_goes_through_the_jump_host() {
    let mut jump = TestSshd::start();
    let target = TestSshd::start();
    let dir = tempfile::tempdir().expect("dir");
    let target_config = std::fs::read_to_string(target.config_path()).expect("config");
    // The target's own entry, plus ProxyJump through the jump host's alias.
    let entry = target_config
        .split("\nHost ")
        .next()
        .expect("first entry")
        .replace(
            "ConnectTimeout 10",
            &format!("ConnectTimeout 10\n  ProxyJump {}", jump.alias()),
        );
    let config = config_with(&jump, dir.path(), &entry);
    for source in SOURCES {
        let options = target
            .russh_options()
            .config_file(&config)
            .config_source(source);
        let rt = runtime(target.alias(), options);
        assert_works(&rt).await;
    }
    // The connection runs inside the jump host's: when that host dies, it breaks.
    let rt = runtime(target.alias(), target.russh_options().config_file(&config));
    assert_works(&rt).await;
    jump.stop();
    let err = tokio::time::timeout(std::time::Duration::from_secs(60), async {
        loop {
            if let Err(e) = echo(&rt).await {
                break e;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("the connection through the dead jump host must fail");
    assert!(err.is_connection(), "{err}");
}

/// A key with a passphrase in the config: refused without an agent, with a message
/// naming `ssh-add`; used through the agent that holds it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_encrypted_key_is_used_through_the_agent_only() {
    let sshd = TestSshd::start();
    let dir = tempfile::tempdir().expect("dir");
    let encrypted = dir.path().join("id_ed25519");
    std::fs::copy(sshd.client_key_path(), &encrypted).expect("copy key");
    let mut public = encrypted.clone().into_os_string();
    public.push(".pub");
    let mut original_public = sshd.client_key_path().into_os_string();
    original_public.push(".pub");
    std::fs::copy(&original_public, &public).expect("copy public key");
    let status = std::process::Command::new("ssh-keygen")
        .args(["-q", "-p", "-P", "", "-N", "a passphrase", "-f"])
        .arg(&encrypted)
        .status()
        .expect("ssh-keygen -p");
    assert!(status.success());
    let base = std::fs::read_to_string(sshd.config_path()).expect("config");
    let config = dir.path().join("ssh_config");
    std::fs::write(
        &config,
        base.replace(
            &sshd.client_key_path().display().to_string(),
            &encrypted.display().to_string(),
        ),
    )
    .expect("config");

    let no_agent = runtime(sshd.alias(), sshd.russh_options().config_file(&config));
    let err = echo(&no_agent)
        .await
        .expect_err("no usable key without the agent");
    assert!(matches!(err, Error::Authentication { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("encrypted") && text.contains("ssh-add"),
        "{text}"
    );
    assert!(text.contains(&encrypted.display().to_string()), "{text}");

    let agent = TestAgent::start();
    agent.add(&sshd.client_key_path());
    let with_agent = runtime(
        sshd.alias(),
        sshd.russh_options()
            .config_file(&config)
            .agent_socket(agent.socket()),
    );
    assert_works(&with_agent).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hashed_known_hosts_entries_are_matched() {
    let sshd = TestSshd::start();
    let status = std::process::Command::new("ssh-keygen")
        .arg("-H")
        .arg("-f")
        .arg(sshd.known_hosts_path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("ssh-keygen -H");
    assert!(status.success());
    let hashed = std::fs::read_to_string(sshd.known_hosts_path()).expect("kh");
    assert!(
        hashed.starts_with("|1|") && !hashed.contains(HOST_KEY_ALIAS),
        "{hashed}"
    );
    for source in SOURCES {
        let rt = runtime(sshd.alias(), sshd.russh_options().config_source(source));
        assert_works(&rt).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_host_key_is_refused_even_when_new_keys_are_accepted() {
    let mut sshd = TestSshd::start();
    sshd.regenerate_host_key();
    sshd.restart();
    let rt = runtime(sshd.alias(), sshd.russh_options().accept_new_host_key(true));
    let err = echo(&rt).await.expect_err("a changed key must be refused");
    assert!(matches!(err, Error::HostKey { .. }), "{err}");
    assert_eq!(err.exit_code(), 255);
    let text = err.to_string();
    let known = sshd.known_hosts_path().display().to_string();
    assert!(text.contains("CHANGED"), "{text}");
    assert!(text.contains(&format!("{known} line 1")), "{text}");
    assert!(text.contains("SHA256:"), "{text}");
    assert!(text.contains("ssh-keygen -R"), "{text}");
    // Nothing was written over the old line.
    let kept = std::fs::read_to_string(sshd.known_hosts_path()).expect("kh");
    assert_eq!(kept.lines().count(), 1, "{kept}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_host_key_is_refused_then_accepted_with_the_option() {
    let sshd = TestSshd::start_with(SshdOptions {
        empty_known_hosts: true,
        ..Default::default()
    });
    let strict = runtime(sshd.alias(), sshd.russh_options());
    let err = echo(&strict)
        .await
        .expect_err("an unknown key must be refused");
    assert!(matches!(err, Error::HostKey { .. }), "{err}");
    assert!(err.to_string().contains("SHA256:"), "{err}");
    assert_eq!(
        std::fs::read_to_string(sshd.known_hosts_path()).expect("kh"),
        "",
        "a refused key is not recorded"
    );

    let accepting = runtime(sshd.alias(), sshd.russh_options().accept_new_host_key(true));
    assert_works(&accepting).await;
    let recorded = std::fs::read_to_string(sshd.known_hosts_path()).expect("kh");
    let key = sshd.host_public_key();
    let blob = key.split_whitespace().nth(1).expect("blob");
    assert!(
        recorded.starts_with(&format!("{HOST_KEY_ALIAS} ")) && recorded.contains(blob),
        "recorded as OpenSSH would (HostKeyAlias, no port): {recorded}"
    );
    // OpenSSH itself accepts the line cmux wrote.
    let out = sshd
        .ssh_command()
        .arg("-o")
        .arg("StrictHostKeyChecking=yes")
        .arg("-o")
        .arg("BatchMode=yes")
        .arg(sshd.alias())
        .arg("true")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("ssh");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // And the strict runtime that refused it now trusts it.
    assert_works(&strict).await;
}

/// The host dies while a command runs: the wait ends with a connection error (the
/// CLI's exit 255), not a status.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sshd_killed_mid_operation_is_a_connection_error() {
    let mut sshd = TestSshd::start();
    let rt = sshd.russh_runtime();
    assert_works(&rt).await;
    let mut process = rt
        .exec(ExecRequest::script("echo started; sleep 60"))
        .await
        .expect("exec");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    sshd.stop();
    let err = tokio::time::timeout(std::time::Duration::from_secs(90), process.wait())
        .await
        .expect("the wait must end when the host dies")
        .expect_err("no status from a dead host");
    assert!(err.is_connection(), "{err}");
    assert_eq!(err.exit_code(), 255);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_operations_at_once_over_russh() {
    let sshd = TestSshd::start_with(SshdOptions {
        server_config: vec!["MaxSessions 1".into()],
        ..Default::default()
    });
    let rt: Arc<dyn Runtime> = Arc::new(sshd.russh_runtime());
    rt.ensure_ready().await.expect("connected");
    assert_mixed_operations_succeed(rt, &sshd.scratch_path(), 500).await;
}

/// With the builtin parser, the russh transport starts no process on this machine:
/// no ssh, no ssh -G (nextest runs each test in its own process).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_ssh_process_is_started() {
    let sshd = TestSshd::start();
    let rt = runtime(
        sshd.alias(),
        sshd.russh_options().config_source(ConfigSource::Builtin),
    );
    let scratch = sshd.scratch_path();
    let file = scratch.join("f").expect("path");
    rt.write_file(&file, b"x").await.expect("write");
    assert_eq!(rt.read_file(&file).await.expect("read"), b"x");
    assert_works(&rt).await;
    let me = std::process::id().to_string();
    let mut ssh_children = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("proc").flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid ...`
        let Some((comm, rest)) = stat.split_once(") ") else {
            continue;
        };
        let ppid = rest.split_whitespace().nth(1).unwrap_or_default();
        if ppid == me && comm.ends_with("(ssh") {
            ssh_children.push(stat.clone());
        }
    }
    assert!(ssh_children.is_empty(), "{ssh_children:?}");
}
