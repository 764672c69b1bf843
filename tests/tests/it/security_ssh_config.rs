//! A hostile ssh config: the user's `Host` entry sets `ForwardAgent yes` (with a running
//! ssh-agent holding a key), `ForwardX11 yes`, `LocalForward`, `RemoteForward`,
//! `DynamicForward`, and `PermitLocalCommand yes` with a `LocalCommand` that touches a
//! marker file. None of it takes effect on cmux's connections, checked from the host
//! and from here: no `SSH_AUTH_SOCK` or `DISPLAY` in a command's environment, no
//! forwarded port listening on either side, no marker file. A control run of plain
//! `ssh` with the same config shows each setting does take effect there.
//! (`ssh_safety` covers `ForwardAgent <path>` and `SendEnv`.)

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cmux_core::{ExecRequest, Runtime, RuntimeExt};
use cmux_integration_tests::sshd::{SshdOptions, TestSshd};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

fn listening(port: u16) -> bool {
    TcpStream::connect_timeout(
        &format!("127.0.0.1:{port}").parse().expect("addr"),
        Duration::from_secs(2),
    )
    .is_ok()
}

/// An ssh-agent on its own socket, killed on drop.
struct Agent {
    pid: u32,
}

impl Agent {
    fn start(sock: &Path) -> Agent {
        let out = Command::new("ssh-agent")
            .arg("-a")
            .arg(sock)
            .output()
            .expect("ssh-agent");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let pid = text
            .split("SSH_AGENT_PID=")
            .nth(1)
            .and_then(|s| s.split(';').next())
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no agent pid in {text:?}"));
        Agent { pid }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(self.pid.to_string()).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwardings_and_local_command_never_take_effect() {
    let dir = tempfile::tempdir().expect("tmp");
    let agent_sock = dir.path().join("agent.sock");
    let _agent = Agent::start(&agent_sock);
    let marker = dir.path().join("local-command-ran");
    let (local_fwd, remote_fwd, dynamic_fwd) = (free_port(), free_port(), free_port());
    let sshd = TestSshd::start_with(SshdOptions {
        client_config: vec![
            format!("IdentityAgent {}", agent_sock.display()),
            "ForwardAgent yes".into(),
            "ForwardX11 yes".into(),
            "ForwardX11Trusted yes".into(),
            format!("LocalForward 127.0.0.1:{local_fwd} 127.0.0.1:22"),
            format!("RemoteForward 127.0.0.1:{remote_fwd} 127.0.0.1:22"),
            format!("DynamicForward 127.0.0.1:{dynamic_fwd}"),
            "PermitLocalCommand yes".into(),
            format!("LocalCommand touch {}", marker.display()),
        ],
        server_config: vec!["AllowTcpForwarding yes".into()],
        ..Default::default()
    });
    let add = Command::new("ssh-add")
        .arg(sshd.client_key_path())
        .env("SSH_AUTH_SOCK", &agent_sock)
        .output()
        .expect("ssh-add");
    assert!(
        add.status.success(),
        "{}",
        String::from_utf8_lossy(&add.stderr)
    );

    // Control: plain ssh with this config forwards the agent, listens on the forwarded
    // ports and runs the local command.
    let mut plain = sshd
        .ssh_command()
        .args([
            "-o",
            "ExitOnForwardFailure=no",
            sshd.alias(),
            "echo ${SSH_AUTH_SOCK:-none}; sleep 20",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("plain ssh");
    let mut first = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(plain.stdout.take().expect("stdout")),
        &mut first,
    )
    .expect("read");
    assert!(
        first.starts_with('/'),
        "control: plain ssh forwards the agent: {first:?}"
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while !(listening(local_fwd) && listening(dynamic_fwd) && listening(remote_fwd)) {
        assert!(
            Instant::now() < deadline,
            "control: plain ssh did not set up the forwards"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(marker.exists(), "control: plain ssh ran the LocalCommand");
    let _ = plain.kill();
    let _ = plain.wait();
    std::fs::remove_file(&marker).expect("reset marker");
    let deadline = Instant::now() + Duration::from_secs(20);
    while listening(local_fwd) || listening(dynamic_fwd) || listening(remote_fwd) {
        assert!(
            Instant::now() < deadline,
            "control: the forwards outlived plain ssh"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // cmux: none of it.
    let rt = sshd.runtime();
    let out = rt
        .output(
            ExecRequest::script(
                "printf '%s %s\\n' \"${SSH_AUTH_SOCK:-none}\" \"${DISPLAY:-none}\"; sleep 1",
            ),
            1024,
        )
        .await
        .expect("runs");
    assert_eq!(out.stdout_lossy(), "none none\n");
    // The master is up (it ran the command above): nothing listens for it, here or on
    // the host, and the local command never ran.
    rt.ensure_ready().await.expect("still connected");
    assert!(!listening(local_fwd), "LocalForward took effect");
    assert!(!listening(dynamic_fwd), "DynamicForward took effect");
    assert!(!listening(remote_fwd), "RemoteForward took effect");
    assert!(!marker.exists(), "LocalCommand ran");
    rt.disconnect().await;
}
