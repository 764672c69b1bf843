//! A private `ssh-agent` for one test: its own socket in a temp dir, killed on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `ssh-agent -D` holding the keys added with [`TestAgent::add`].
#[derive(Debug)]
pub struct TestAgent {
    _dir: tempfile::TempDir,
    socket: PathBuf,
    child: Child,
}

impl TestAgent {
    /// Starts an agent with no keys. Panics (test code) when it cannot.
    pub fn start() -> Self {
        let dir = match tempfile::Builder::new().prefix("cmux-agent-").tempdir() {
            Ok(d) => d,
            Err(e) => panic!("agent temp dir: {e}"),
        };
        let socket = dir.path().join("agent.sock");
        let child = match Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&socket)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
        {
            Ok(c) => c,
            Err(e) => panic!("ssh-agent: {e} (install openssh-client)"),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !socket.exists() {
            assert!(Instant::now() < deadline, "ssh-agent made no socket");
            std::thread::sleep(Duration::from_millis(10));
        }
        TestAgent {
            _dir: dir,
            socket,
            child,
        }
    }

    /// The agent's socket (what `SSH_AUTH_SOCK` would hold).
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Adds the private key at `key` (`ssh-add`; it must need no passphrase).
    pub fn add(&self, key: &Path) {
        let out = Command::new("ssh-add")
            .arg(key)
            .env("SSH_AUTH_SOCK", &self.socket)
            .stdin(Stdio::null())
            .output();
        match out {
            Ok(o) if o.status.success() => {}
            Ok(o) => panic!("ssh-add: {}", String::from_utf8_lossy(&o.stderr)),
            Err(e) => panic!("ssh-add: {e}"),
        }
    }
}

impl Drop for TestAgent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
