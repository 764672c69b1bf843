//! [`TestSshd`]: a real `/usr/sbin/sshd` on a free 127.0.0.1 port, with its own host
//! key, client key, authorized_keys and an isolated client configuration.
//!
//! Every test starts its own server, so tests run in parallel. The test user is the
//! current user (root on the test machines) with key authentication: a freshly
//! created account would be locked (`!` in its password field), and OpenSSH's client
//! reads `~/.ssh/config` from the passwd home, not `$HOME`. Clients must use
//! `ssh -F <config_path>` so the user's own configuration never applies.
//!
//! Dropping a `TestSshd` kills the server and every session process it forked.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Absolute path of the server: sshd refuses to re-exec itself from a relative path.
pub const SSHD: &str = "/usr/sbin/sshd";

/// The `HostKeyAlias` every generated client entry uses, so known_hosts lines do not
/// depend on the port.
pub const HOST_KEY_ALIAS: &str = "cmux-test-sshd";

/// Options for [`TestSshd::start_with`].
#[derive(Clone, Debug, Default)]
pub struct SshdOptions {
    /// Extra lines appended to the server's `sshd_config`.
    pub server_config: Vec<String>,
    /// Extra lines appended to the client's `Host` entry (e.g. `ForwardAgent yes`).
    pub client_config: Vec<String>,
    /// Leave the client's known_hosts empty (for unknown-host-key tests).
    pub empty_known_hosts: bool,
    /// Give sessions a home of their own ([`TestSshd::home`], empty at the start)
    /// instead of the account's: sshd's `SetEnv HOME=...` overrides the passwd home
    /// for the session's environment, so the login shell reads `~/.bashrc` and the
    /// wrapper reads `~/.profile` from there. The test can then plant startup files
    /// without touching the real account (the harness logs in as the current user).
    /// The session's working directory and SFTP's home stay the passwd home.
    pub private_home: bool,
}

/// A running test sshd. See the module docs.
#[derive(Debug)]
pub struct TestSshd {
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
    alias: String,
    options: SshdOptions,
}

fn run(cmd: &mut Command) -> Result<(), String> {
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn keygen(path: &Path, comment: &str) -> Result<(), String> {
    run(Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
        .arg(path))
}

fn free_port() -> Result<u16, String> {
    let listener =
        TcpListener::bind("127.0.0.1:0").map_err(|e| format!("cannot bind a free port: {e}"))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| e.to_string())
}

fn user_name() -> String {
    std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty())
        .or_else(|| {
            let out = Command::new("id").arg("-un").output().ok()?;
            Some(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        })
        .unwrap_or_else(|| "root".into())
}

impl TestSshd {
    /// Starts a server with default options (known_hosts pre-filled).
    pub fn start() -> Self {
        Self::start_with(SshdOptions::default())
    }

    /// Starts a server with `options`. Panics (it is test code) when sshd cannot start.
    pub fn start_with(options: SshdOptions) -> Self {
        match Self::try_start(options) {
            Ok(s) => s,
            Err(e) => panic!("test sshd: {e}"),
        }
    }

    fn try_start(options: SshdOptions) -> Result<Self, String> {
        std::fs::create_dir_all("/run/sshd").map_err(|e| format!("mkdir /run/sshd: {e}"))?;
        if !Path::new(SSHD).exists() {
            return Err(format!(
                "{SSHD} is missing: install it with `apt-get install -y openssh-server`"
            ));
        }
        let dir = tempfile::Builder::new()
            .prefix("cmux-sshd-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        keygen(&dir.path().join("host_key"), "cmux test host")?;
        keygen(&dir.path().join("client_key"), "cmux test client")?;
        std::fs::copy(
            dir.path().join("client_key.pub"),
            dir.path().join("authorized_keys"),
        )
        .map_err(|e| e.to_string())?;
        std::fs::create_dir(dir.path().join("scratch")).map_err(|e| e.to_string())?;
        std::fs::create_dir(dir.path().join("home")).map_err(|e| e.to_string())?;
        let alias = format!("cmux-test-{}", fastrand_suffix());
        let mut sshd = TestSshd {
            dir,
            port: 0,
            child: None,
            alias,
            options,
        };
        sshd.write_known_hosts(!sshd.options.empty_known_hosts)?;
        let mut last = String::new();
        for _ in 0..10 {
            sshd.port = free_port()?;
            sshd.write_configs()?;
            match sshd.spawn() {
                Ok(()) => return Ok(sshd),
                Err(e) => last = e,
            }
        }
        Err(format!("could not start after 10 ports: {last}"))
    }

    fn write_configs(&self) -> Result<(), String> {
        let d = self.dir.path();
        let mut server = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\n\
             AuthorizedKeysFile {d}/authorized_keys\nPidFile none\nStrictModes no\n\
             UsePAM no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n\
             PubkeyAuthentication yes\nPermitRootLogin prohibit-password\n\
             AllowAgentForwarding yes\nX11Forwarding no\nPrintMotd no\n\
             Subsystem sftp /usr/lib/openssh/sftp-server\nLogLevel VERBOSE\n",
            port = self.port,
            d = d.display()
        );
        for line in &self.options.server_config {
            let _ = writeln!(server, "{line}");
        }
        // The test account's login shell may run `pyenv init` (root's does on the CI
        // image): a session SIGKILLed during its `pyenv rehash` leaves a lock that
        // makes every later login wait 60 s. Bound that wait. sshd uses the first
        // SetEnv line, so a test's own SetEnv (above) keeps precedence.
        if self.options.private_home {
            let _ = writeln!(
                server,
                "SetEnv HOME={} PYENV_REHASH_TIMEOUT=1",
                self.home().display()
            );
        } else {
            server.push_str("SetEnv PYENV_REHASH_TIMEOUT=1\n");
        }
        std::fs::write(d.join("sshd_config"), server).map_err(|e| e.to_string())?;

        let user = user_name();
        let mut client = format!(
            "Host {alias}\n  HostName 127.0.0.1\n  Port {port}\n  User {user}\n\
             \x20 IdentityFile {d}/client_key\n  IdentitiesOnly yes\n\
             \x20 HostKeyAlias {HOST_KEY_ALIAS}\n  UserKnownHostsFile {d}/known_hosts\n\
             \x20 GlobalKnownHostsFile /dev/null\n  ConnectTimeout 10\n",
            alias = self.alias,
            port = self.port,
            d = d.display()
        );
        for line in &self.options.client_config {
            let _ = writeln!(client, "  {line}");
        }
        // The same server through `sshd -i` as a ProxyCommand: no port at all.
        let _ = write!(
            client,
            "Host {alias}-inetd\n  ProxyCommand {SSHD} -i -f {d}/sshd_config\n  User {user}\n\
             \x20 IdentityFile {d}/client_key\n  IdentitiesOnly yes\n\
             \x20 HostKeyAlias {HOST_KEY_ALIAS}\n  UserKnownHostsFile {d}/known_hosts\n\
             \x20 GlobalKnownHostsFile /dev/null\n",
            alias = self.alias,
            d = d.display()
        );
        std::fs::write(d.join("ssh_config"), client).map_err(|e| e.to_string())
    }

    /// Writes known_hosts: with the current host key, or empty.
    fn write_known_hosts(&self, with_key: bool) -> Result<(), String> {
        let content = if with_key {
            let key = std::fs::read_to_string(self.dir.path().join("host_key.pub"))
                .map_err(|e| e.to_string())?;
            let mut words = key.split_whitespace();
            let (kind, blob) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
            format!("{HOST_KEY_ALIAS} {kind} {blob}\n")
        } else {
            String::new()
        };
        std::fs::write(self.known_hosts_path(), content).map_err(|e| e.to_string())
    }

    fn spawn(&mut self) -> Result<(), String> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .map_err(|e| e.to_string())?;
        let mut child = Command::new(SSHD)
            .arg("-D")
            .arg("-e")
            .arg("-f")
            .arg(self.dir.path().join("sshd_config"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start {SSHD}: {e}"))?;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!(
                    "sshd exited with {status} on port {}: {}",
                    self.port,
                    self.log()
                ));
            }
            if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
                let mut banner = [0u8; 8];
                if stream.read_exact(&mut banner).is_ok() && &banner == b"SSH-2.0-" {
                    // Another process may own the port: only our child proves it is ours.
                    if let Ok(Some(status)) = child.try_wait() {
                        return Err(format!("sshd exited with {status}"));
                    }
                    let _ = stream.write_all(b"SSH-2.0-probe\r\n");
                    self.child = Some(child);
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("sshd did not answer on port {}", self.port));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the server and every session process it forked (the host "goes down":
    /// established connections break).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = child.id();
            // Stop the listener first so no new session appears while the tree dies.
            let _ = Command::new("kill")
                .args(["-STOP", &pid.to_string()])
                .stderr(Stdio::null())
                .status();
            for p in descendants(pid) {
                let _ = Command::new("kill")
                    .args(["-KILL", &p.to_string()])
                    .status();
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port (after [`TestSshd::stop`]).
    pub fn restart(&mut self) {
        self.stop();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self.spawn() {
                Ok(()) => return,
                // The port may linger for a moment after the kill.
                Err(e) if Instant::now() > deadline => panic!("test sshd restart: {e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    /// Replaces the server's host key (takes effect at the next [`TestSshd::restart`]);
    /// the client's known_hosts keeps the old one.
    pub fn regenerate_host_key(&self) {
        let key = self.dir.path().join("host_key");
        let _ = std::fs::remove_file(&key);
        let _ = std::fs::remove_file(key.with_extension("pub"));
        if let Err(e) = keygen(&key, "cmux test host (new)") {
            panic!("test sshd: {e}");
        }
    }

    /// Empties authorized_keys: the client's key is refused from now on.
    pub fn revoke_client_key(&self) {
        if let Err(e) = std::fs::write(self.dir.path().join("authorized_keys"), "") {
            panic!("test sshd: {e}");
        }
    }

    /// Empties the client's known_hosts (the host key becomes unknown).
    pub fn forget_host_key(&self) {
        if let Err(e) = self.write_known_hosts(false) {
            panic!("test sshd: {e}");
        }
    }

    /// The `Host` alias of the client config.
    pub fn alias(&self) -> &str {
        &self.alias
    }

    /// An alias reaching the same server through `sshd -i` as a ProxyCommand.
    pub fn inetd_alias(&self) -> String {
        format!("{}-inetd", self.alias)
    }

    /// The client config file to pass as `ssh -F`.
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("ssh_config")
    }

    /// The client's known_hosts file.
    pub fn known_hosts_path(&self) -> PathBuf {
        self.dir.path().join("known_hosts")
    }

    /// The client's private key.
    pub fn client_key_path(&self) -> PathBuf {
        self.dir.path().join("client_key")
    }

    /// The server's current public host key line.
    pub fn host_public_key(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("host_key.pub")).unwrap_or_default()
    }

    /// The listening port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The user the client logs in as.
    pub fn user(&self) -> String {
        user_name()
    }

    /// A fresh scratch directory on the "host" (the same machine), removed on drop.
    pub fn scratch(&self) -> PathBuf {
        self.dir.path().join("scratch")
    }

    /// The sessions' home with [`SshdOptions::private_home`] (an empty directory
    /// otherwise unused), removed on drop.
    pub fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    /// A temp dir of this test (for `CMUX_HOME` and the like), removed on drop.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The server's log (sshd -e).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("sshd.log")
    }

    /// `ssh -F <config> <args...>`: a client command isolated from the user's config.
    pub fn ssh_command(&self) -> Command {
        let mut cmd = Command::new("ssh");
        cmd.arg("-F").arg(self.config_path());
        cmd
    }
}

impl Drop for TestSshd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Every process below `root` (by parent pid, read from /proc).
fn descendants(root: u32) -> Vec<u32> {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            // Fields after the command name, which is in parentheses and may hold spaces.
            let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
                continue;
            };
            if let Some(ppid) = rest.split_whitespace().nth(1).and_then(|s| s.parse().ok()) {
                parents.push((pid, ppid));
            }
        }
    }
    let mut out = Vec::new();
    let mut frontier = vec![root];
    while let Some(p) = frontier.pop() {
        for (pid, ppid) in &parents {
            if *ppid == p && !out.contains(pid) {
                out.push(*pid);
                frontier.push(*pid);
            }
        }
    }
    out
}

fn fastrand_suffix() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

impl TestSshd {
    /// [`cmux_backend_ssh::SshOptions`] that reach this server through its config file,
    /// with control sockets in this test's own temp dir.
    pub fn ssh_options(&self) -> cmux_backend_ssh::SshOptions {
        cmux_backend_ssh::SshOptions::default()
            .config_file(self.config_path())
            .control_dir(self.dir().join("ctl"))
    }

    /// [`TestSshd::ssh_options`] on the russh transport (no ssh process at all).
    pub fn russh_options(&self) -> cmux_backend_ssh::SshOptions {
        self.ssh_options()
            .transport(cmux_backend_ssh::Transport::Russh)
    }

    /// An [`cmux_backend_ssh::SshRuntime`] on this server's alias over russh.
    pub fn russh_runtime(&self) -> cmux_backend_ssh::SshRuntime {
        match cmux_backend_ssh::SshRuntime::new(self.alias(), self.russh_options()) {
            Ok(rt) => rt,
            Err(e) => panic!("SshRuntime::new: {e}"),
        }
    }

    /// An [`cmux_backend_ssh::SshRuntime`] on this server's alias.
    pub fn runtime(&self) -> cmux_backend_ssh::SshRuntime {
        match cmux_backend_ssh::SshRuntime::new(self.alias(), self.ssh_options()) {
            Ok(rt) => rt,
            Err(e) => panic!("SshRuntime::new: {e}"),
        }
    }

    /// The scratch dir as a remote path.
    pub fn scratch_path(&self) -> cmux_core::RemotePath {
        match cmux_core::RemotePath::new(self.scratch().to_string_lossy().into_owned()) {
            Ok(p) => p,
            Err(e) => panic!("scratch path: {e}"),
        }
    }
}

impl TestSshd {
    /// An [`cmux_backend_ssh::SshRuntime`] on this server that never uses the host
    /// helper: the shell/SFTP path.
    pub fn fallback_runtime(&self) -> cmux_backend_ssh::SshRuntime {
        let options = self.ssh_options().helper(cmux_backend_ssh::HelperMode::Off);
        match cmux_backend_ssh::SshRuntime::new(self.alias(), options) {
            Ok(rt) => rt,
            Err(e) => panic!("SshRuntime::new: {e}"),
        }
    }

    /// An [`cmux_backend_ssh::SshRuntime`] whose helper installs under `install_dir`
    /// (a directory of this test's own) instead of the user's cache directory.
    pub fn runtime_installing_in(&self, install_dir: &Path) -> cmux_backend_ssh::SshRuntime {
        let dir = match cmux_core::RemotePath::new(install_dir.to_string_lossy().into_owned()) {
            Ok(d) => d,
            Err(e) => panic!("install dir: {e}"),
        };
        let options = self.ssh_options().helper_install_dir(dir);
        match cmux_backend_ssh::SshRuntime::new(self.alias(), options) {
            Ok(rt) => rt,
            Err(e) => panic!("SshRuntime::new: {e}"),
        }
    }
}

/// This test binary, for tests that run parts of themselves in child processes.
/// `/proc/self/exe` still runs it when a concurrent build replaced the file.
pub fn test_binary() -> PathBuf {
    if Path::new("/proc/self/exe").exists() {
        PathBuf::from("/proc/self/exe")
    } else {
        match std::env::current_exe() {
            Ok(p) => p,
            Err(e) => panic!("test binary: {e}"),
        }
    }
}

/// Variables through which a test hands its sshd to a child process of itself (see
/// [`TestSshd::child_env`] and [`runtime_in_child`]).
const CHILD_CONFIG: &str = "CMUX_IT_SSH_CONFIG";
const CHILD_ALIAS: &str = "CMUX_IT_SSH_ALIAS";
const CHILD_CTL: &str = "CMUX_IT_SSH_CTL";

impl TestSshd {
    /// The environment a child process of this test needs for [`runtime_in_child`]:
    /// this server's config, alias and the test's control dir.
    pub fn child_env(&self) -> Vec<(&'static str, String)> {
        vec![
            (CHILD_CONFIG, self.config_path().display().to_string()),
            (CHILD_ALIAS, self.alias().to_owned()),
            (CHILD_CTL, self.dir().join("ctl").display().to_string()),
        ]
    }
}

/// In a child process started with [`TestSshd::child_env`], a runtime on the parent's
/// server (sharing its control dir); `None` when run on its own (an ignored child test
/// run directly does nothing).
pub fn runtime_in_child() -> Option<cmux_backend_ssh::SshRuntime> {
    let (Ok(config), Ok(alias), Ok(ctl)) = (
        std::env::var(CHILD_CONFIG),
        std::env::var(CHILD_ALIAS),
        std::env::var(CHILD_CTL),
    ) else {
        return None;
    };
    let options = cmux_backend_ssh::SshOptions::default()
        .config_file(config)
        .control_dir(ctl);
    match cmux_backend_ssh::SshRuntime::new(alias, options) {
        Ok(rt) => Some(rt),
        Err(e) => panic!("SshRuntime::new in the child: {e}"),
    }
}
